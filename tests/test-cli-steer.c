/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* glassbox-cli steer train/export/import/show and generate --steer, through
 * the real executable: exit 0 on success, 1 with one line
 * "glassbox-cli: error: ..." naming the file on a runtime error, 2 on a
 * usage error. */

#include <string.h>

#include "gb-test-util.h"

static char *model_dir, *wide_dir, *pairs_path;


static void
assert_error_line (const GbTestResult *r,
                   int           status,
                   const char   *says)
{
  g_test_message ("exit %d: %s", r->status, r->err);
  g_assert_cmpint (r->status, ==, status);
  g_assert_true (g_str_has_prefix (r->err, "glassbox-cli: error: "));
  g_assert_true (strchr (r->err, '\n') == r->err + strlen (r->err) - 1);
  if (says != NULL)
    g_assert_nonnull (strstr (r->err, says));
}

static char *
write_file (const char *name,
            const char *text)
{
  char *path = gb_test_tmp_path (name, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

static void
test_usage (void)
{
  g_auto (GbTestResult) help = { 0 }, train_help = { 0 }, none = { 0 }, unknown = { 0 }, missing = { 0 };
  g_auto (GbTestResult) bad_layers = { 0 }, backwards = { 0 }, bad_method = { 0 }, holdout = { 0 };

  gb_test_run_cli (&help, "steer", "--help", NULL);
  g_assert_cmpint (help.status, ==, 0);
  g_assert_nonnull (strstr (help.out, "train"));
  g_assert_nonnull (strstr (help.out, "export"));
  gb_test_run_cli (&train_help, "steer", "train", "--help", NULL);
  g_assert_cmpint (train_help.status, ==, 0);
  g_assert_nonnull (strstr (train_help.out, "--layers"));
  gb_test_run_cli (&none, "steer", NULL);
  assert_error_line (&none, 2, "subcommand");
  gb_test_run_cli (&unknown, "steer", "frob", NULL);
  assert_error_line (&unknown, 2, "frob");
  gb_test_run_cli (&missing, "steer", "train", "--pairs", pairs_path, NULL);
  assert_error_line (&missing, 2, "required");
  gb_test_run_cli (&bad_layers, "steer", "train", "--pairs", pairs_path, "--layers", "x", "--output", "/tmp/never.json", NULL);
  assert_error_line (&bad_layers, 2, "--layers");
  gb_test_run_cli (&backwards, "steer", "train", "--pairs", pairs_path, "--layers", "3-1", "--output", "/tmp/never.json", NULL);
  assert_error_line (&backwards, 2, "backwards");
  gb_test_run_cli (&bad_method, "steer", "train", "--pairs", pairs_path, "--layers", "1", "--method", "ica", "--output",
       "/tmp/never.json", NULL);
  assert_error_line (&bad_method, 2, "mean or pca");
  gb_test_run_cli (&holdout, "steer", "train", "--pairs", pairs_path, "--layers", "1", "--holdout", "-1", "--output",
       "/tmp/never.json", NULL);
  assert_error_line (&holdout, 2, NULL);
  g_assert_false (g_file_test ("/tmp/never.json", G_FILE_TEST_EXISTS));
}

static void
test_train_and_generate (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *vec = g_build_filename (dir, "vec.json", NULL);
  g_autofree char *gguf = g_build_filename (dir, "vec.gguf", NULL);
  g_autofree char *back = g_build_filename (dir, "back.json", NULL);
  g_auto (GbTestResult) train = { 0 }, base = { 0 }, zero = { 0 }, strong = { 0 }, exp = { 0 }, imp = { 0 }, show = { 0 };
  g_auto (GbTestResult) from_gguf = { 0 }, late = { 0 };

  gb_test_run_cli (&train, "steer", "train", "--model", model_dir, "--pairs", pairs_path, "--layers", "0,1", "--output", vec,
       NULL);
  g_test_message ("%s", train.out);
  g_assert_cmpint (train.status, ==, 0);
  g_assert_nonnull (strstr (train.out, "blocks.1.hook_resid_post"));
  g_assert_nonnull (strstr (train.out, "held-out"));
  g_autoptr (GError) error = NULL;
  g_autoptr (GbSteerVector) v = gb_steer_vector_load (vec, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (v->n_layers, ==, 2);
  g_assert_cmpuint (v->n_train, ==, 8);

  gb_test_run_cli (&base, "generate", "--model", model_dir, "--prompt", "The day", "-n", "16", NULL);
  gb_test_run_cli (&zero, "generate", "--model", model_dir, "--prompt", "The day", "-n", "16", "--steer", vec, "--multiplier",
       "0", NULL);
  gb_test_run_cli (&strong, "generate", "--model", model_dir, "--prompt", "The day", "-n", "16", "--steer", vec, "--multiplier",
       "300", NULL);
  g_assert_cmpint (base.status, ==, 0);
  g_assert_cmpint (zero.status, ==, 0);
  g_assert_cmpint (strong.status, ==, 0);
  g_assert_cmpstr (base.out, ==, zero.out);
  g_assert_cmpstr (base.out, !=, strong.out);

  /* Steering only from a position past the end of the text = baseline. */
  gb_test_run_cli (&late, "generate", "--model", model_dir, "--prompt", "The day", "-n", "16", "--steer", vec, "--multiplier",
       "300", "--steer-from", "60", NULL);
  g_assert_cmpstr (base.out, ==, late.out);

  /* GGUF: block 0 warns (exit 0), and the file steers the same. */
  gb_test_run_cli (&exp, "steer", "export", "--vector", vec, "--output", gguf, NULL);
  g_assert_cmpint (exp.status, ==, 0);
  g_assert_true (g_str_has_prefix (exp.err, "glassbox-cli: warning: "));
  g_assert_nonnull (strstr (exp.err, "llama.cpp refuses"));
  gb_test_run_cli (&from_gguf, "generate", "--model", model_dir, "--prompt", "The day", "-n", "16", "--steer", gguf,
       "--multiplier", "300", NULL);
  g_assert_cmpint (from_gguf.status, ==, 0);
  g_assert_cmpstr (from_gguf.out, ==, strong.out);
  gb_test_run_cli (&imp, "steer", "import", "--gguf", gguf, "--output", back, NULL);
  g_assert_cmpint (imp.status, ==, 0);
  gb_test_run_cli (&show, "steer", "show", back, NULL);
  g_assert_cmpint (show.status, ==, 0);
  g_assert_nonnull (strstr (show.out, "method unknown"));
  g_assert_nonnull (strstr (show.out, "blocks.0.hook_resid_post"));
}

static void
test_runtime_errors (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *vec = g_build_filename (dir, "vec.json", NULL);
  g_autofree char *not_json = write_file ("not.json", "positive, negative\nhappy, sad\n");
  g_autofree char *no_pairs = write_file ("none.json", "{\"name\": \"x\", \"pairs\": []}");
  g_autofree char *empty_text = write_file ("empty.json", "{\"pairs\": [{\"positive\": \"a\", \"negative\": \"\"}]}");
  g_autofree char *missing_field = write_file ("field.jsonl", "{\"positive\": \"a\", \"negative\": \"b\"}\n{\"positive\": \"c\"}\n");
  g_autofree char *garbage = write_file ("garbage.json", "{\"format\": \"glassbox-steering-vector\"}");
  struct
  {
    const char *pairs, *says;
  } bad_pairs[] = {
    { "/nonexistent/pairs.json", "/nonexistent/pairs.json" },
    { not_json, "not JSON or JSONL" },
    { no_pairs, "no pairs" },
    { empty_text, "pair 1: the negative text is empty" },
    { missing_field, "line 2 has no \"negative\"" },
  };

  /* A vector already there survives every failed run. */
  g_auto (GbTestResult) first = { 0 };
  gb_test_run_cli (&first, "steer", "train", "--model", model_dir, "--pairs", pairs_path, "--layers", "1", "--output", vec, "-q",
       NULL);
  g_assert_cmpint (first.status, ==, 0);
  g_autofree char *before = NULL;
  g_assert_true (g_file_get_contents (vec, &before, NULL, NULL));

  for (guint i = 0; i < G_N_ELEMENTS (bad_pairs); i++)
    {
      g_auto (GbTestResult) r = { 0 };
      gb_test_run_cli (&r, "steer", "train", "--model", model_dir, "--pairs", bad_pairs[i].pairs, "--layers", "1", "--output", vec,
           NULL);
      assert_error_line (&r, 1, bad_pairs[i].says);
      g_assert_nonnull (strstr (r.err, bad_pairs[i].pairs));
    }
  g_auto (GbTestResult) no_block = { 0 }, wide = { 0 }, corrupt = { 0 }, absent = { 0 };
  gb_test_run_cli (&no_block, "steer", "train", "--model", model_dir, "--pairs", pairs_path, "--layers", "5", "--output", vec, NULL);
  assert_error_line (&no_block, 1, "blocks 0-1 only");
  g_autofree char *after = NULL;
  g_assert_true (g_file_get_contents (vec, &after, NULL, NULL));
  g_assert_cmpstr (before, ==, after);

  /* A vector for another model's width, a corrupt one, a missing one. */
  g_autofree char *wide_vec = g_build_filename (dir, "wide.json", NULL);
  g_auto (GbTestResult) wtrain = { 0 };
  gb_test_run_cli (&wtrain, "steer", "train", "--model", wide_dir, "--pairs", pairs_path, "--layers", "1", "--output", wide_vec,
       "-q", NULL);
  g_assert_cmpint (wtrain.status, ==, 0);
  gb_test_run_cli (&wide, "generate", "--model", model_dir, "--prompt", "hi", "--steer", wide_vec, NULL);
  assert_error_line (&wide, 1, "48 wide but the model's residual stream is 64");
  g_assert_nonnull (strstr (wide.err, wide_vec));
  gb_test_run_cli (&corrupt, "generate", "--model", model_dir, "--prompt", "hi", "--steer", garbage, NULL);
  assert_error_line (&corrupt, 1, garbage);
  gb_test_run_cli (&absent, "steer", "export", "--vector", "/nonexistent/v.json", "--output", "/tmp/never.gguf", NULL);
  assert_error_line (&absent, 1, "/nonexistent/v.json");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* init-model's tiny preset (2 blocks, n_embd 64) responds to steering at
   * large multipliers; its residual differences are small (random weights). */
  model_dir = gb_test_tmp_path ("tiny", NULL);
  g_auto (GbTestResult) init = { 0 };
  gb_test_run_cli (&init, "init-model", "--preset", "tiny", "--seed", "1", "--output", model_dir, NULL);
  g_assert_cmpint (init.status, ==, 0);
  wide_dir = gb_test_tmpdir ();
  gb_test_write_model (wide_dir, 2, 4, 48, 64, FALSE, 9);
  g_autoptr (GString) pairs = g_string_new ("{\"name\": \"mood\", \"description\": \"test\", \"pairs\": [");
  for (guint i = 0; i < 10; i++)
    g_string_append_printf (pairs, "%s{\"positive\": \"I love it %u\", \"negative\": \"I hate it %u\"}", i ? "," : "",
                            i, i);
  g_string_append (pairs, "]}");
  pairs_path = write_file ("pairs.json", pairs->str);
  g_test_add_func ("/cli/steer/usage", test_usage);
  g_test_add_func ("/cli/steer/train-and-generate", test_train_and_generate);
  g_test_add_func ("/cli/steer/runtime-errors", test_runtime_errors);
  int status = g_test_run ();
  g_free (model_dir);
  g_free (wide_dir);
  g_free (pairs_path);
  return status;
}
