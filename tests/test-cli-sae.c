/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* glassbox-cli sae train | features | eval, through the real executable, on
 * a tiny random model and tiny budgets. */

#include <json-glib/json-glib.h>
#include <string.h>

#include "gb-test-util.h"

static char *model_dir;
static char *corpus;

static void
assert_one_error_line (const char *err)
{
  g_assert_true (g_str_has_prefix (err, "glassbox-cli: error: "));
  g_assert_true (strchr (err, '\n') == err + strlen (err) - 1);
}

static char *
train (const char *name,
       const char *kind_arg,
       const char *kind_value)
{
  char *dir = gb_test_tmp_path (name, NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (gb_test_cli (&out, &err, "sae", "train", "--model", model_dir, "--layer", "1", "--corpus", corpus, "--output", dir,
                        "--latent", "48", kind_arg, kind_value, "--tokens", "1024", "--batch", "64", "--heldout-tokens", "200",
                        NULL), ==, 0);
  g_assert_nonnull (strstr (out, dir));
  g_assert_nonnull (strstr (out, "held-out: explained variance"));
  return dir;
}

static void
test_train (void)
{
  g_autofree char *topk = train ("topk", "--topk", "4");
  g_autofree char *l1 = train ("l1", "--l1", "0.5");
  const char *files[] = { "cfg.json", "sae_weights.safetensors", "sparsity.safetensors", "glassbox_norm.safetensors" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *p = g_build_filename (topk, files[i], NULL);
      g_assert_true (g_file_test (p, G_FILE_TEST_EXISTS));
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GbSae) a = gb_sae_load (topk, &error);
  g_assert_no_error (error);
  g_assert_cmpint (a->kind, ==, GB_SAE_TOPK);
  g_assert_cmpuint (a->k, ==, 4);
  g_assert_cmpuint (a->d_sae, ==, 48);
  g_assert_cmpint (a->hook, ==, GB_HOOK_RESID_POST);
  g_autoptr (GbSae) b = gb_sae_load (l1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (b->kind, ==, GB_SAE_STANDARD);
}

static void
test_features (void)
{
  g_autofree char *dir = train ("feat", "--topk", "3");
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (gb_test_cli (&out, &err, "sae", "features", "--model", model_dir, "--sae", dir, "--corpus", corpus, "--json",
                        "--top", "5", "--tokens", "500", NULL), ==, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_int_member (root, "n_tokens"), ==, 500);
  JsonObject *m = json_object_get_object_member (root, "metrics");
  g_assert_true (json_object_has_member (m, "explained_variance") && json_object_has_member (m, "loss_increase"));
  JsonArray *feats = json_object_get_array_member (root, "features");
  g_assert_cmpuint (json_array_get_length (feats), ==, 5);
  double prev = 2;
  for (guint i = 0; i < 5; i++)
    {
      JsonObject *f = json_array_get_object_element (feats, i);
      double freq = json_object_get_double_member (f, "frequency");
      g_assert_cmpfloat (freq, <=, prev); /* sorted by frequency */
      prev = freq;
      JsonArray *top = json_object_get_array_member (f, "top");
      if (freq > 0)
        {
          g_assert_cmpuint (json_array_get_length (top), >, 0);
          JsonObject *c = json_array_get_object_element (top, 0);
          g_assert_cmpuint (json_array_get_length (json_object_get_array_member (c, "tokens")), ==,
                            json_array_get_length (json_object_get_array_member (c, "acts")));
          g_assert_cmpuint (json_array_get_length (json_object_get_array_member (f, "promoted")), ==, 10);
        }
    }
  /* The cache: features.json, and the same answer from it. */
  g_autofree char *cache = g_build_filename (dir, "features.json", NULL);
  g_assert_true (g_file_test (cache, G_FILE_TEST_EXISTS));
  g_assert_cmpint (gb_test_cli (&out2, &err2, "sae", "features", "--model", model_dir, "--sae", dir, "--corpus", corpus, "--json",
                        "--top", "5", "--tokens", "500", NULL), ==, 0);
  g_assert_cmpstr (out, ==, out2);
  /* The text form. */
  g_autofree char *text = NULL, *err3 = NULL;
  g_assert_cmpint (gb_test_cli (&text, &err3, "sae", "features", "--model", model_dir, "--sae", dir, "--corpus", corpus, "--top", "2",
                        "--tokens", "500", NULL), ==, 0);
  g_assert_nonnull (strstr (text, "explained variance"));
  g_assert_nonnull (strstr (text, "[["));
  /* eval */
  g_autofree char *ev = NULL, *err4 = NULL;
  g_assert_cmpint (gb_test_cli (&ev, &err4, "sae", "eval", "--model", model_dir, "--sae", dir, "--corpus", corpus, "--tokens", "300",
                        "--json", NULL), ==, 0);
  g_autoptr (JsonParser) p2 = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p2, ev, -1, &error));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (json_parser_get_root (p2)), "n_tokens"), >=, 300);
}

typedef struct
{
  const char *name;
  const char *args[16];
  int         status;
  const char *needle;
} ErrorCase;

static void
test_errors (void)
{
  g_autofree char *tmp = gb_test_tmpdir ();
  g_autofree char *out_dir = g_build_filename (tmp, "o", NULL);
  g_autofree char *bad_sae = g_build_filename (tmp, "bad-sae", NULL);
  g_mkdir_with_parents (bad_sae, 0755);
  g_autofree char *bad_cfg = g_build_filename (bad_sae, "cfg.json", NULL);
  g_file_set_contents (bad_cfg, "{\"d_in\": 16, \"d_sae\": 8}", -1, NULL);
  const ErrorCase cases[] = {
    { "no subcommand", { "sae", NULL }, 2, NULL },
    { "unknown subcommand", { "sae", "fit", NULL }, 2, "fit" },
    { "train without --layer", { "sae", "train", "--model", model_dir, "--corpus", corpus, "--output", out_dir, NULL }, 2, "--layer" },
    { "--l1 and --topk", { "sae", "train", "--model", model_dir, "--layer", "0", "--corpus", corpus, "--output", out_dir, "--l1", "1", "--topk", "4", NULL }, 2, "exclude" },
    { "negative --tokens", { "sae", "train", "--model", model_dir, "--layer", "0", "--corpus", corpus, "--output", out_dir, "--tokens", "-5", NULL }, 2, "negative" },
    { "unknown hook", { "sae", "train", "--model", model_dir, "--layer", "0", "--hook", "q", "--corpus", corpus, "--output", out_dir, NULL }, 2, "--hook" },
    { "layer past the model", { "sae", "train", "--model", model_dir, "--layer", "9", "--corpus", corpus, "--output", out_dir, NULL }, 1, "layer 9" },
    { "missing corpus", { "sae", "train", "--model", model_dir, "--layer", "0", "--corpus", "/nonexistent/c.txt", "--output", out_dir, NULL }, 1, "/nonexistent/c.txt" },
    { "features without --sae", { "sae", "features", "--model", model_dir, "--corpus", corpus, NULL }, 2, "--sae" },
    { "features on a broken SAE", { "sae", "features", "--model", model_dir, "--sae", bad_sae, "--corpus", corpus, NULL }, 1, "hook" },
    { "eval on a missing SAE", { "sae", "eval", "--model", model_dir, "--sae", "/nonexistent/sae", "--corpus", corpus, NULL }, 1, "/nonexistent/sae" },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (GPtrArray) argv = g_ptr_array_new ();
      g_autoptr (GError) error = NULL;
      g_autofree char *out = NULL, *err = NULL;
      int status;
      g_ptr_array_add (argv, (char *) g_getenv ("GLASSBOX_CLI"));
      for (guint i = 0; cases[c].args[i]; i++)
        g_ptr_array_add (argv, (char *) cases[c].args[i]);
      g_ptr_array_add (argv, NULL);
      g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
      g_assert_no_error (error);
      g_test_message ("%s: %s", cases[c].name, err);
      g_assert_cmpint (WEXITSTATUS (status), ==, cases[c].status);
      if (cases[c].needle)
        {
          assert_one_error_line (err);
          g_assert_nonnull (strstr (err, cases[c].needle));
        }
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  model_dir = gb_test_tmp_path ("model", NULL);
  gb_test_write_model (model_dir, 2, 2, 16, 32, FALSE, 11);
  corpus = gb_test_tmp_path ("corpus.txt", NULL);
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < 40; i++)
    g_string_append_printf (s, "Applicant %u, zip %u, asks for $%u,000.\n", i, 40100 + i % 5, 2 + i % 9);
  g_file_set_contents (corpus, s->str, -1, NULL);
  g_string_free (s, TRUE);
  g_test_add_func ("/cli/sae/train", test_train);
  g_test_add_func ("/cli/sae/features", test_features);
  g_test_add_func ("/cli/sae/errors", test_errors);
  int status = g_test_run ();
  g_free (model_dir);
  g_free (corpus);
  return status;
}
