/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* The command-line contract (DESIGN.md): exit 0 on success, 1 with one line
 * "glassbox-cli: error: ..." on a runtime error, 2 on a usage error. */

#include <string.h>

#include "gb-test-util.h"

static char *model_dir;


static void
assert_one_error_line (const GbTestResult *r)
{
  g_assert_true (g_str_has_prefix (r->err, "glassbox-cli: error: "));
  g_assert_true (g_str_has_suffix (r->err, "\n"));
  g_assert_true (strchr (r->err, '\n') == r->err + strlen (r->err) - 1); /* exactly one line */
}

static void
test_help_and_usage (void)
{
  g_auto (GbTestResult) help = { 0 }, sub = { 0 }, unknown = { 0 }, none = { 0 }, bad_opt = { 0 }, missing = { 0 };

  gb_test_run_cli (&help, "--help", NULL);
  g_assert_cmpint (help.status, ==, 0);
  g_assert_nonnull (strstr (help.out, "generate"));
  const char *subs[] = { "tokenize", "run", "generate", "init-model", "train", "eval", "grad", "train-tokenizer" };
  for (guint i = 0; i < G_N_ELEMENTS (subs); i++)
    {
      g_auto (GbTestResult) r = { 0 };
      gb_test_run_cli (&r, subs[i], "--help", NULL);
      g_assert_cmpint (r.status, ==, 0);
      g_assert_nonnull (strstr (r.out, "Usage:"));
    }
  gb_test_run_cli (&unknown, "frobnicate", NULL);
  g_assert_cmpint (unknown.status, ==, 2);
  assert_one_error_line (&unknown);
  gb_test_run_cli (&none, NULL);
  g_assert_cmpint (none.status, ==, 2);
  gb_test_run_cli (&bad_opt, "run", "--no-such-option", NULL);
  g_assert_cmpint (bad_opt.status, ==, 2);
  assert_one_error_line (&bad_opt);
  gb_test_run_cli (&missing, "run", "--model", model_dir, "--text", "hi", NULL);
  g_assert_cmpint (missing.status, ==, 2); /* --dump is required */
  assert_one_error_line (&missing);
}

static void
test_runtime_errors (void)
{
  g_autofree char *empty = gb_test_tmpdir ();
  g_auto (GbTestResult) no_model = { 0 }, bad_tokens = { 0 }, bad_utf8 = { 0 };

  gb_test_run_cli (&no_model, "generate", "--model", empty, "--prompt", "hi", NULL);
  g_assert_cmpint (no_model.status, ==, 1);
  assert_one_error_line (&no_model);
  g_assert_nonnull (strstr (no_model.err, "config.json"));

  g_autofree char *out = g_build_filename (empty, "dump", NULL);
  gb_test_run_cli (&bad_tokens, "run", "--model", model_dir, "--tokens", "1,2,99999", "--dump", out, NULL);
  g_assert_cmpint (bad_tokens.status, ==, 1);
  assert_one_error_line (&bad_tokens);
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));

  gb_test_run_cli (&bad_utf8, "generate", "--model", model_dir, "--prompt", "caf\xc3", NULL);
  g_assert_cmpint (bad_utf8.status, ==, 1);
  assert_one_error_line (&bad_utf8);
}

static void
test_run_dump (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *out = g_build_filename (dir, "dump", NULL);
  g_auto (GbTestResult) r = { 0 };
  const char *files[] = { "logits.npy", "attention.npy", "resid_pre.npy", "resid_mid.npy", "resid_post.npy",
                          "mlp_post.npy", "tokens.json" };

  gb_test_run_cli (&r, "run", "--model", model_dir, "--text", "Hello", "--dump", out, NULL);
  g_assert_cmpint (r.status, ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (out, files[i], NULL);
      g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
    }
  g_autofree char *attn = g_build_filename (out, "attention.npy", NULL);
  g_autofree char *contents = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (attn, &contents, &len, NULL));
  /* 2 layers, 4 heads, 5 byte tokens. */
  g_assert_nonnull (memmem (contents, 128, "'shape': (2, 4, 5, 5)", 21));
  g_autofree char *tokens = g_build_filename (out, "tokens.json", NULL);
  g_autofree char *json = NULL;
  g_assert_true (g_file_get_contents (tokens, &json, NULL, NULL));
  g_assert_nonnull (strstr (json, "\"strings\""));
}

static void
test_generate (void)
{
  g_auto (GbTestResult) a = { 0 }, b = { 0 }, greedy = { 0 };

  gb_test_run_cli (&a, "generate", "--model", model_dir, "--prompt", "Once", "--max-new-tokens", "12", "--temperature", "1",
       "--seed", "4", NULL);
  gb_test_run_cli (&b, "generate", "--model", model_dir, "--prompt", "Once", "--max-new-tokens", "12", "--temperature", "1",
       "--seed", "4", NULL);
  gb_test_run_cli (&greedy, "generate", "--model", model_dir, "--prompt", "Once", "--max-new-tokens", "12", NULL);
  g_assert_cmpint (a.status, ==, 0);
  g_assert_cmpint (greedy.status, ==, 0);
  g_assert_cmpstr (a.out, ==, b.out);
  g_assert_true (g_utf8_validate (a.out, -1, NULL));
  g_assert_cmpuint (strlen (a.out), >, 1);
}

static void
test_init_model_refuses_overwrite (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *out = g_build_filename (dir, "m", NULL);
  g_auto (GbTestResult) first = { 0 }, again = { 0 }, forced = { 0 }, bad = { 0 };

  gb_test_run_cli (&first, "init-model", "--preset", "tiny", "--seed", "2", "--output", out, NULL);
  g_assert_cmpint (first.status, ==, 0);
  gb_test_run_cli (&again, "init-model", "--preset", "tiny", "--seed", "2", "--output", out, NULL);
  g_assert_cmpint (again.status, ==, 2);
  g_assert_nonnull (strstr (again.err, "--force"));
  gb_test_run_cli (&forced, "init-model", "--preset", "tiny", "--seed", "2", "--output", out, "--force", "--dtype", "bf16", NULL);
  g_assert_cmpint (forced.status, ==, 0);
  gb_test_run_cli (&bad, "init-model", "--preset", "gpt5", "--seed", "2", "--output", out, NULL);
  g_assert_cmpint (bad.status, ==, 2);

  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (out, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (gb_model_get_config (model)->n_layer, ==, 2);
}

static char *
read_file (const char *dir,
           const char *name,
           gsize      *len)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *data = NULL;
  g_assert_true (g_file_get_contents (path, &data, len, NULL));
  return data;
}

static void
test_train_resume_eval (void)
{
  /* Training stopped half-way and resumed gives the bytes an uninterrupted
   * run gives; eval reports a loss; bad input fails by name. */
  g_autofree char *root = gb_test_tmp_path ("train", NULL);
  g_autofree char *tok = g_build_filename (root, "tok", NULL);
  g_autofree char *corpus = g_build_filename (root, "corpus.txt", NULL);
  g_autofree char *bad = g_build_filename (root, "bad.txt", NULL);
  g_autofree char *a = g_build_filename (root, "a", NULL), *b = g_build_filename (root, "b", NULL);
  g_mkdir_with_parents (tok, 0755);
  gb_test_write_vocab (tok, FALSE);
  g_autoptr (GString) text = g_string_new (NULL);
  for (guint i = 0; i < 60; i++)
    g_string_append_printf (text, "Application %u\nCredit score: %u\nDecision: %s\n<|endoftext|>\n", i, 500 + i * 7,
                            i % 3 ? "approved" : "rejected");
  g_assert_true (g_file_set_contents (corpus, text->str, text->len, NULL));
  g_assert_true (g_file_set_contents (bad, "ok \xff\xfe bytes", -1, NULL));
#define TRAIN_ARGS "train", "--corpus", corpus, "--tokenizer", tok, "--layers", "1", "--heads", "2", "--embd", "16", \
    "--context", "32", "--batch", "4", "--steps", "12", "--warmup", "2", "--checkpoint-every", "5", "--emphasis", "Decision:=5"
  g_auto (GbTestResult) straight = { 0 }, first = { 0 }, second = { 0 }, eval = { 0 };
  gb_test_run_cli (&straight, TRAIN_ARGS, "--output", a, NULL);
  g_assert_cmpint (straight.status, ==, 0);
  g_assert_nonnull (strstr (straight.out, "emphasis Decision:=5: 60 positions"));
  gb_test_run_cli (&first, TRAIN_ARGS, "--output", b, "--stop-after", "7", NULL);
  g_assert_cmpint (first.status, ==, 0);
  g_assert_nonnull (strstr (first.out, "stopped at step 7"));
  gb_test_run_cli (&second, TRAIN_ARGS, "--output", b, "--resume", NULL);
  g_assert_cmpint (second.status, ==, 0);
  g_assert_nonnull (strstr (second.out, "resuming at step 7"));
  gsize la, lb;
  g_autofree char *wa = read_file (a, "model.safetensors", &la), *wb = read_file (b, "model.safetensors", &lb);
  g_assert_cmpuint (la, ==, lb);
  g_assert_true (memcmp (wa, wb, la) == 0);

  /* Evaluating on held-out text does not change the weights, and the log
   * has a held-out loss only at the steps it was measured (every 5th and
   * the last). */
  g_autofree char *c = g_build_filename (root, "c", NULL);
  g_auto (GbTestResult) with_eval = { 0 };
  gb_test_run_cli (&with_eval, TRAIN_ARGS, "--output", c, "--heldout", corpus, "--eval-every", "5", NULL);
  g_assert_cmpint (with_eval.status, ==, 0);
  gsize lc;
  g_autofree char *wc = read_file (c, "model.safetensors", &lc);
  g_assert_cmpuint (lc, ==, la);
  g_assert_true (memcmp (wa, wc, la) == 0);
  gsize llog;
  g_autofree char *log = read_file (c, "train_log.jsonl", &llog);
  g_auto (GStrv) rows = g_strsplit (log, "\n", -1);
  guint n_rows = 0;
  for (guint i = 0; rows[i] != NULL && rows[i][0] != '\0'; i++, n_rows++)
    {
      const gboolean measured = (i + 1) % 5 == 0 || i + 1 == 12;
      g_test_message ("%s", rows[i]);
      g_assert_true ((strstr (rows[i], "\"eval_loss\": null") == NULL) == measured);
    }
  g_assert_cmpuint (n_rows, ==, 12);

  /* The same, stopped at step 7 and resumed after a row for a step past the
   * checkpoint (as a kill after step 8 leaves): one row per step, in order,
   * and the weights again byte-identical. */
  g_autofree char *d = g_build_filename (root, "d", NULL);
  g_auto (GbTestResult) d1 = { 0 }, d2 = { 0 };
  gb_test_run_cli (&d1, TRAIN_ARGS, "--output", d, "--heldout", corpus, "--eval-every", "5", "--stop-after", "7", NULL);
  g_assert_cmpint (d1.status, ==, 0);
  g_autofree char *dlog_path = g_build_filename (d, "train_log.jsonl", NULL);
  g_autofree char *stopped = NULL;
  g_assert_true (g_file_get_contents (dlog_path, &stopped, NULL, NULL));
  g_autofree char *killed =
    g_strconcat (stopped, "{\"step\": 8, \"loss\": 9.99999, \"eval_loss\": null, \"lr\": 1.000e-03, \"tokens_per_s\": 1}\n", NULL);
  g_assert_true (g_file_set_contents (dlog_path, killed, -1, NULL));
  gb_test_run_cli (&d2, TRAIN_ARGS, "--output", d, "--heldout", corpus, "--eval-every", "5", "--resume", NULL);
  g_assert_cmpint (d2.status, ==, 0);
  gsize ld, ldlog;
  g_autofree char *wd = read_file (d, "model.safetensors", &ld);
  g_assert_cmpuint (ld, ==, la);
  g_assert_true (memcmp (wa, wd, la) == 0);
  g_autofree char *dlog = read_file (d, "train_log.jsonl", &ldlog);
  g_assert_null (strstr (dlog, "9.99999"));
  g_auto (GStrv) drows = g_strsplit (dlog, "\n", -1);
  for (guint i = 0; i < 12; i++)
    {
      g_autofree char *head = g_strdup_printf ("{\"step\": %u, ", i + 1);
      const gboolean measured = (i + 1) % 5 == 0 || i + 1 == 12;
      g_assert_true (g_str_has_prefix (drows[i], head));
      g_assert_true ((strstr (drows[i], "\"eval_loss\": null") == NULL) == measured);
    }
  g_assert_cmpstr (drows[12], ==, "");
  g_assert_null (drows[13]);

  gb_test_run_cli (&eval, "eval", "--model", a, "--corpus", corpus, "--json", NULL);
  g_assert_cmpint (eval.status, ==, 0);
  g_assert_nonnull (strstr (eval.out, "\"perplexity\""));

  g_auto (GbTestResult) no_corpus = { 0 }, bad_emph = { 0 }, bad_utf8 = { 0 }, no_ckpt = { 0 }, bad_eval = { 0 };
  gb_test_run_cli (&no_corpus, "train", "--output", a, NULL);
  g_assert_cmpint (no_corpus.status, ==, 2);
  gb_test_run_cli (&bad_emph, TRAIN_ARGS, "--output", a, "--emphasis", "Decision:", NULL);
  g_assert_cmpint (bad_emph.status, ==, 2);
  gb_test_run_cli (&bad_utf8, "train", "--corpus", bad, "--tokenizer", tok, "--output", a, NULL);
  g_assert_cmpint (bad_utf8.status, ==, 1);
  assert_one_error_line (&bad_utf8);
  g_assert_nonnull (strstr (bad_utf8.err, "bad.txt"));
  gb_test_run_cli (&no_ckpt, TRAIN_ARGS, "--output", root, "--resume", NULL);
  g_assert_cmpint (no_ckpt.status, ==, 1);
  assert_one_error_line (&no_ckpt);
  gb_test_run_cli (&bad_eval, "eval", "--model", a, "--corpus", bad, NULL);
  g_assert_cmpint (bad_eval.status, ==, 1);
  assert_one_error_line (&bad_eval);
#undef TRAIN_ARGS
}

/* Saves never replace earlier files unasked: a second dump into the same
 * folder is a usage error naming the file, until --force. */
static void
test_outputs_need_force (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *run_dir = g_build_filename (dir, "run", NULL), *grad_dir = g_build_filename (dir, "grad", NULL);
  g_autofree char *tok_dir = g_build_filename (dir, "tok", NULL), *corpus = g_build_filename (dir, "c.txt", NULL);
  g_autofree char *logits = g_build_filename (run_dir, "logits.npy", NULL);

  g_assert_true (g_file_set_contents (corpus, "the cat sat on the mat, the cat sat", -1, NULL));
  const char *const first[][12] = {
    { "run", "--model", model_dir, "--text", "Hello", "--dump", run_dir, NULL },
    { "grad", "--model", model_dir, "--text", "Hello there", "--dump", grad_dir, NULL },
    { "train-tokenizer", "--corpus", corpus, "--vocab-size", "260", "--output", tok_dir, "--quiet", NULL },
  };
  const char *const holds[] = { "tokens.json", "grads.safetensors", "vocab.json" };
  for (guint c = 0; c < G_N_ELEMENTS (first); c++)
    {
      g_auto (GbTestResult) a = { 0 }, b = { 0 }, forced = { 0 };
      const char *const *v = first[c];
      gb_test_run_cli (&a, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], NULL);
      g_assert_cmpint (a.status, ==, 0);
      gb_test_run_cli (&b, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], NULL);
      g_test_message ("%s again: %s", v[0], b.err);
      g_assert_cmpint (b.status, ==, 2);
      assert_one_error_line (&b);
      g_assert_nonnull (strstr (b.err, holds[c]));
      g_assert_nonnull (strstr (b.err, "--force"));
      gb_test_run_cli (&forced, v[0], "--force", v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], NULL);
      g_assert_cmpint (forced.status, ==, 0);
    }
  g_assert_true (g_file_test (logits, G_FILE_TEST_EXISTS));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  model_dir = gb_test_tmpdir ();
  gb_test_write_model (model_dir, 2, 4, 32, 64, FALSE, 9);
  g_test_add_func ("/cli/help-and-usage", test_help_and_usage);
  g_test_add_func ("/cli/runtime-errors", test_runtime_errors);
  g_test_add_func ("/cli/run-dump", test_run_dump);
  g_test_add_func ("/cli/generate", test_generate);
  g_test_add_func ("/cli/train-resume-eval", test_train_resume_eval);
  g_test_add_func ("/cli/outputs-need-force", test_outputs_need_force);
  g_test_add_func ("/cli/init-model", test_init_model_refuses_overwrite);
  int status = g_test_run ();
  g_free (model_dir);
  return status;
}
