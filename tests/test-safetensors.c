/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

#include <math.h>
#include <string.h>

#include "gb-test-util.h"

static void
test_f16_roundtrip (void)
{
  /* Every half value converts to float and back to itself (NaNs stay NaN). */
  for (guint h = 0; h < 0x10000; h++)
    {
      float f = gb_f16_to_f32 ((guint16) h);
      guint16 back = gb_f32_to_f16 (f);
      if (isnan (f))
        g_assert_true (isnan (gb_f16_to_f32 (back)));
      else
        g_assert_cmpuint (back, ==, h);
    }
}

static void
test_f16_rounding (void)
{
  const struct { float in; guint16 out; } cases[] = {
    { 1.0f, 0x3c00 },          { -2.0f, 0xc000 },       { 65504.f, 0x7bff },   { 65520.f, 0x7c00 },
    { 1e-8f, 0x0000 },         { 5.960464477539063e-08f, 0x0001 },             { 1.00048828125f, 0x3c00 }, /* tie to even */
    { 1.00146484375f, 0x3c02 }, /* tie to even, up */ { INFINITY, 0x7c00 }, { 0.333333333f, 0x3555 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmphex (gb_f32_to_f16 (cases[i].in), ==, cases[i].out);
}

static void
test_bf16 (void)
{
  g_assert_cmphex (gb_f32_to_bf16 (1.0f), ==, 0x3f80);
  g_assert_cmphex (gb_f32_to_bf16 (1.00390625f), ==, 0x3f80); /* tie to even: down */
  g_assert_cmphex (gb_f32_to_bf16 (1.01171875f), ==, 0x3f82); /* tie to even: up */
  g_assert_true (isnan (gb_bf16_to_f32 (gb_f32_to_bf16 (NAN))));
  for (guint h = 0; h < 0x10000; h++)
    {
      float f = gb_bf16_to_f32 ((guint16) h);
      if (!isnan (f))
        g_assert_cmphex (gb_f32_to_bf16 (f), ==, h);
    }
}

static void
test_write_read (gconstpointer data)
{
  GbDtype dtype = GPOINTER_TO_INT (data);
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "t.safetensors", NULL);
  float a[6] = { 1, -2, 0.5f, 3.25f, -0.125f, 7 }, b[3] = { 0.1f, 0.2f, 0.3f };
  GbTensorOut t[] = { { "a", 2, { 2, 3 }, a }, { "b.weight", 1, { 3 }, b } };
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GError) error = NULL;

  g_hash_table_insert (meta, "format", "pt");
  g_assert_true (gb_safetensors_write (path, t, 2, dtype, meta, &error));
  g_assert_no_error (error);

  g_autoptr (GbSafetensors) st = gb_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (gb_safetensors_get_n_tensors (st), ==, 2);
  g_assert_cmpstr (g_hash_table_lookup (gb_safetensors_get_metadata (st), "format"), ==, "pt");
  const GbTensorView *v = gb_safetensors_lookup (st, "a");
  g_assert_nonnull (v);
  g_assert_cmpint (v->dtype, ==, dtype);
  g_assert_cmpuint (v->n_dims, ==, 2);
  g_assert_cmpint (v->shape[0], ==, 2);
  g_assert_cmpint (v->shape[1], ==, 3);
  g_assert_cmpuint (v->n_bytes, ==, 6 * gb_dtype_size (dtype));
  for (guint i = 0; i < 6; i++)
    {
      float got;
      guint16 h;
      if (dtype == GB_DTYPE_F32)
        memcpy (&got, v->data + 4 * i, 4);
      else
        {
          memcpy (&h, v->data + 2 * i, 2);
          got = dtype == GB_DTYPE_F16 ? gb_f16_to_f32 (h) : gb_bf16_to_f32 (h);
        }
      g_assert_cmpfloat (got, ==, a[i]); /* all exactly representable */
    }
  g_assert_null (gb_safetensors_lookup (st, "missing"));
}

static void
test_atomic_write_keeps_old (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "f.txt", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;

  g_assert_true (gb_file_write_atomic (path, "old", 3, FALSE, &error));
  g_assert_false (gb_file_write_atomic (path, "new", 3, FALSE, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_IO);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "old");

  /* An abandoned write leaves neither a temporary nor a changed file. */
  GbAtomicFile *file = gb_atomic_file_new (path, TRUE, NULL);
  g_assert_true (gb_atomic_file_write (file, "partial", 7, NULL));
  gb_atomic_file_free (file);
  g_clear_pointer (&contents, g_free);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "old");
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (g_dir_read_name (d) != NULL)
    n++;
  g_assert_cmpuint (n, ==, 1);
}

static void
test_npy (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "x.npy", NULL);
  float data[6] = { 1, 2, 3, 4, 5, 6 };
  gint64 shape[] = { 2, 3 };
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len;

  g_assert_true (gb_npy_write_f32 (path, data, shape, 2, &error));
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  g_assert_cmpmem (contents, 6, "\x93NUMPY", 6);
  guint16 hlen = (guint8) contents[8] | ((guint8) contents[9] << 8);
  g_assert_cmpuint ((10 + hlen) % 64, ==, 0);
  g_assert_nonnull (memmem (contents, 10 + hlen, "'shape': (2, 3)", strlen ("'shape': (2, 3)")));
  g_assert_nonnull (memmem (contents, 10 + hlen, "'descr': '<f4'", strlen ("'descr': '<f4'")));
  g_assert_cmpuint (len, ==, 10 + hlen + sizeof data);
  g_assert_cmpmem (contents + 10 + hlen, sizeof data, data, sizeof data);

  gint64 one[] = { 4 };
  g_assert_true (gb_npy_write_f32 (path, data, one, 1, &error));
  g_clear_pointer (&contents, g_free);
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  g_assert_nonnull (strstr (contents + 10, "'shape': (4,)"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/safetensors/f16-roundtrip", test_f16_roundtrip);
  g_test_add_func ("/engine/safetensors/f16-rounding", test_f16_rounding);
  g_test_add_func ("/engine/safetensors/bf16", test_bf16);
  g_test_add_data_func ("/engine/safetensors/write-read/f32", GINT_TO_POINTER (GB_DTYPE_F32), test_write_read);
  g_test_add_data_func ("/engine/safetensors/write-read/f16", GINT_TO_POINTER (GB_DTYPE_F16), test_write_read);
  g_test_add_data_func ("/engine/safetensors/write-read/bf16", GINT_TO_POINTER (GB_DTYPE_BF16), test_write_read);
  g_test_add_func ("/engine/io/atomic-write", test_atomic_write_keeps_old);
  g_test_add_func ("/engine/io/npy", test_npy);
  return g_test_run ();
}
