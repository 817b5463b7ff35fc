/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* glassbox-cli heads and attention, through the real executable. */

#include <json-glib/json-glib.h>
#include <string.h>

#include "gb-test-util.h"

static char *model_dir;

static void
test_heads_json (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (gb_test_cli (&out, &err, "heads", "--model", model_dir, "--json", NULL), ==, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonArray *heads = json_object_get_array_member (root, "heads");
  g_assert_cmpuint (json_array_get_length (heads), ==, 2 * 3);
  JsonObject *h = json_array_get_object_element (heads, 5);
  g_assert_cmpint (json_object_get_int_member (h, "layer"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (h, "head"), ==, 2);
  JsonObject *scores = json_object_get_object_member (h, "scores");
  const char *roles[] = { "previous-token", "first-token", "self", "induction", "diffuse" };
  for (guint r = 0; r < G_N_ELEMENTS (roles); r++)
    {
      double v = json_object_get_double_member (scores, roles[r]);
      g_assert_true (v >= 0 && v <= 1.00001);
    }
  /* The table form has one line per head plus a header. */
  g_autofree char *table = NULL, *err2 = NULL;
  g_assert_cmpint (gb_test_cli (&table, &err2, "heads", "--model", model_dir, NULL), ==, 0);
  g_auto (GStrv) lines = g_strsplit (g_strstrip (table), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 1 + 6);
}

static void
test_attention_outputs (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  const char *exts[] = { "png", "svg", "pdf", "npy", "json" };

  for (guint e = 0; e < G_N_ELEMENTS (exts); e++)
    {
      g_autofree char *path = g_strdup_printf ("%s/a.%s", dir, exts[e]);
      g_autofree char *out = NULL, *err = NULL, *data = NULL;
      gsize len;
      g_assert_cmpint (gb_test_cli (&out, &err, "attention", "--model", model_dir, "--text", "Hello world", "--layer", "1",
                            "--head", "2", "--output", path, NULL), ==, 0);
      g_assert_cmpstr (err, ==, "");
      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      g_assert_cmpuint (len, >, 100);
    }
  /* The .npy holds [11, 11] float32 whose rows sum to 1. */
  g_autofree char *npy = g_strdup_printf ("%s/a.npy", dir), *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (npy, &data, &len, NULL));
  g_assert_nonnull (strstr (data + 10, "(11, 11)"));
  const float *w = (const float *) (data + len - 11 * 11 * sizeof (float));
  for (guint i = 0; i < 11; i++)
    {
      double sum = 0;
      for (guint j = 0; j < 11; j++)
        sum += w[i * 11 + j];
      g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-3);
    }
  /* PNG scale 2 doubles the pixels; mean, rollout and all heads work. */
  g_autofree char *p1 = g_strdup_printf ("%s/m.png", dir), *p2 = g_strdup_printf ("%s/m2.png", dir);
  g_autofree char *pa = g_strdup_printf ("%s/all.png", dir), *pr = g_strdup_printf ("%s/r.svg", dir);
  g_autofree char *o = NULL, *e = NULL;
  g_assert_cmpint (gb_test_cli (&o, &e, "attention", "--model", model_dir, "--text", "Hi", "--layer", "0", "--mean", "--output", p1, NULL), ==, 0);
  g_clear_pointer (&o, g_free);
  g_clear_pointer (&e, g_free);
  g_assert_cmpint (gb_test_cli (&o, &e, "attention", "--model", model_dir, "--text", "Hi", "--layer", "0", "--mean", "--scale", "2", "--output", p2, NULL), ==, 0);
  g_clear_pointer (&o, g_free);
  g_clear_pointer (&e, g_free);
  g_assert_cmpint (gb_test_cli (&o, &e, "attention", "--model", model_dir, "--text", "Hi", "--rollout", "--norm", "log", "--output", pr, NULL), ==, 0);
  g_clear_pointer (&o, g_free);
  g_clear_pointer (&e, g_free);
  g_assert_cmpint (gb_test_cli (&o, &e, "attention", "--model", model_dir, "--text", "Hi", "--all-heads", "--output", pa, NULL), ==, 0);
  g_autofree char *b1 = NULL, *b2 = NULL;
  gsize l1, l2;
  g_assert_true (g_file_get_contents (p1, &b1, &l1, NULL) && g_file_get_contents (p2, &b2, &l2, NULL));
  /* IHDR width and height (big-endian at offset 16). */
  g_assert_cmpuint (GUINT32_FROM_BE (*(guint32 *) (b2 + 16)), ==, 2 * GUINT32_FROM_BE (*(guint32 *) (b1 + 16)));
}

static void
test_attention_errors (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *png = g_build_filename (dir, "x.png", NULL), *bmp = g_build_filename (dir, "x.bmp", NULL);
  struct
  {
    const char *args[8];
    int         status;
  } cases[] = {
    { { "--text", "Hi", "--head", "0", "--output", png }, 2 },                        /* no --layer */
    { { "--text", "Hi", "--layer", "0", "--output", png }, 2 },                       /* no kind */
    { { "--text", "Hi", "--layer", "7", "--head", "0", "--output", png }, 2 },        /* layer out of range */
    { { "--text", "Hi", "--layer", "0", "--head", "3", "--output", png }, 2 },        /* head out of range */
    { { "--text", "Hi", "--rollout", "--norm", "cubic", "--output", png }, 2 },
    { { "--text", "Hi", "--rollout", "--output", bmp }, 1 },                          /* unknown format */
    { { "--text", "", "--rollout", "--output", png }, 2 },
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autofree char *out = NULL, *err = NULL;
      const char *const *a = cases[c].args;
      int status = gb_test_cli (&out, &err, "attention", "--model", model_dir, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL);
      g_test_message ("case %u: %s", c, err);
      g_assert_cmpint (status, ==, cases[c].status);
      g_assert_true (g_str_has_prefix (err, "glassbox-cli: error: "));
    }
}

/* An existing file is replaced only with --force. */
static void
test_attention_force (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "keep.svg", NULL);
  g_autofree char *out = NULL, *err = NULL, *data = NULL;

  g_assert_true (g_file_set_contents (path, "earlier", -1, NULL));
  g_assert_cmpint (gb_test_cli (&out, &err, "attention", "--model", model_dir, "--text", "Hi", "--rollout", "--output", path, NULL), ==, 2);
  g_assert_nonnull (strstr (err, "glassbox-cli: error: "));
  g_assert_nonnull (strstr (err, "keep.svg already exists (use --force"));
  g_assert_true (g_file_get_contents (path, &data, NULL, NULL));
  g_assert_cmpstr (data, ==, "earlier");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_clear_pointer (&data, g_free);
  g_assert_cmpint (gb_test_cli (&out, &err, "attention", "--model", model_dir, "--text", "Hi", "--rollout", "--force", "--output", path, NULL), ==, 0);
  g_assert_true (g_file_get_contents (path, &data, NULL, NULL));
  g_assert_true (g_str_has_prefix (data, "<?xml"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  model_dir = gb_test_tmpdir ();
  gb_test_write_model (model_dir, 2, 3, 12, 64, FALSE, 3);
  g_test_add_func ("/cli/heads/json", test_heads_json);
  g_test_add_func ("/cli/attention/outputs", test_attention_outputs);
  g_test_add_func ("/cli/attention/errors", test_attention_errors);
  g_test_add_func ("/cli/attention/force", test_attention_force);
  return g_test_run ();
}
