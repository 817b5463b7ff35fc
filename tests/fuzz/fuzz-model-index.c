/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A hostile model.safetensors.index.json in a model folder whose only
 * weights are one valid shard: names must stay inside the folder, and a
 * model that loads must be usable. */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "fuzz-util.h"

#define SHARD "model-00001-of-00001.safetensors"

static const char *
model_dir (void)
{
  static char *dir;
  if (dir == NULL)
    {
      g_autoptr (GError) error = NULL;
      const GbModelShape shape = { .n_layer = 1, .n_head = 2, .n_embd = 8, .n_positions = 16, .n_vocab = 257 };
      dir = g_build_filename (fuzz_dir (), "model", NULL);
      g_autofree char *single = g_build_filename (dir, "model.safetensors", NULL);
      g_autofree char *shard = g_build_filename (dir, SHARD, NULL);
      if (g_mkdir (dir, 0700) != 0 || !gb_vocab_write_bytes (dir, &error) ||
          !gb_model_write_random (dir, &shape, GB_DTYPE_F32, 1, &error) || g_rename (single, shard) != 0)
        g_error ("cannot set up the model folder: %s", error ? error->message : g_strerror (errno));
    }
  return dir;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *dir = model_dir ();
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_autoptr (GError) error = NULL;

  if (!g_file_set_contents (index, (const char *) data, (gssize) size, &error))
    g_error ("%s", error->message);
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  if (model == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == GB_ERROR, "a refusal is a GB_ERROR");
      FUZZ_CHECK (strstr (error->message, dir) != NULL, "the error names the folder or a file in it");
      return 0;
    }
  const gint32 tokens[] = { 1, 2, 3 };
  g_autoptr (GbTrace) trace = gb_model_forward (model, tokens, 3, NULL, NULL, 0, NULL, &error);
  FUZZ_CHECK (trace != NULL && trace->logits != NULL, "a loaded model runs");
  return 0;
}
