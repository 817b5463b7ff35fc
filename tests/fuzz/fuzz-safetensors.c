/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A hostile model.safetensors: header length, JSON header, dtypes, shapes,
 * offsets. Whatever opens must describe bytes inside the file. */
#include "fuzz-util.h"

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *path = fuzz_write ("model.safetensors", data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (GbSafetensors) st = gb_safetensors_open (path, &error);

  if (st == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == GB_ERROR, "a refusal is a GB_ERROR");
      FUZZ_CHECK (g_str_has_prefix (error->message, path), "the error names the file");
      return 0;
    }
  FUZZ_CHECK (error == NULL, "no error on success");
  guint64 sum = 0;
  for (guint i = 0; i < gb_safetensors_get_n_tensors (st); i++)
    {
      const GbTensorView *t = gb_safetensors_get_nth (st, i);
      FUZZ_CHECK (gb_safetensors_lookup (st, t->name) == t, "lookup finds the tensor");
      FUZZ_CHECK (t->n_dims <= GB_MAX_DIMS, "dimensions within bounds");
      FUZZ_CHECK ((guint64) t->n_elements * gb_dtype_size (t->dtype) == t->n_bytes, "bytes match the shape");
      /* Every byte of every tensor must be readable (inside the mapping). */
      for (gsize b = 0; b < t->n_bytes; b++)
        sum += t->data[b];
    }
  GHashTableIter iter;
  gpointer k, v;
  g_hash_table_iter_init (&iter, gb_safetensors_get_metadata (st));
  while (g_hash_table_iter_next (&iter, &k, &v))
    FUZZ_CHECK (k != NULL && v != NULL, "metadata are strings");
  return sum == G_MAXUINT64;  /* keeps the reads */
}
