/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* The BPE trainer: what it writes loads in the GPT-2 tokenizer and
 * round-trips text; ties, sizes, determinism and errors. Identical merges
 * against an independent trainer are checked by tests/reference/bpe_ref.py. */

#include <string.h>
#include <sys/wait.h>

#include "gb-test-util.h"

/* A small, varied, deterministic corpus: recurring names, numbers, loan
 * lines, accents, CJK, emoji, odd spacing, <|endoftext|> separators. */
static char *
make_corpus (guint32 seed,
             guint   n_docs)
{
  static const char *const words[] = {
    "the", "credit", "score", "approved", "rejected", "zip", "code", "loan", "café", "naïve",
    "straße", "東京", "晴れ", "🙂", "🚀", "👍🏽", "it's", "we've", "don't", "x1", "under_score",
    "hello-world", "$1,200", "40%", "...", "(quoted)", "Ωmega", "ж", "١٢٣",
  };
  static const char *const names[] = { "Anna", "Bob", "Chloé", "Dmitri", "Zoë" };
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  GString *s = g_string_new (NULL);

  for (guint d = 0; d < n_docs; d++)
    {
      const char *name = names[g_rand_int_range (rng, 0, G_N_ELEMENTS (names))];
      guint n = g_rand_int_range (rng, 5, 30);
      for (guint i = 0; i < n; i++)
        {
          if (g_rand_int_range (rng, 0, 4) == 0)
            g_string_append_printf (s, "%s's credit score is %d. ", name, g_rand_int_range (rng, 500, 850));
          else
            g_string_append_printf (s, "%s%s", words[g_rand_int_range (rng, 0, G_N_ELEMENTS (words))],
                                    g_rand_int_range (rng, 0, 9) == 0 ? "\n\n  " : " ");
        }
      g_string_append (s, "\n<|endoftext|>\n");
    }
  return g_string_free (s, FALSE);
}

static GbBpe *
train_ok (const char *text,
          guint       vocab_size)
{
  g_autoptr (GError) error = NULL;
  GbBpe *bpe = gb_bpe_train (text, -1, vocab_size, NULL, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (bpe);
  return bpe;
}

static char *
save_ok (GbBpe *bpe)
{
  g_autoptr (GError) error = NULL;
  char *dir = gb_test_tmpdir ();

  g_assert_true (gb_bpe_save (bpe, dir, &error));
  g_assert_no_error (error);
  return dir;
}

static GbTokenizer *
load_ok (const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  GbTokenizer *tok = gb_tokenizer_new_from_files (vocab, merges, &error);

  g_assert_no_error (error);
  return tok;
}

static char *
read_file (const char *dir,
           const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *data = NULL;

  g_assert_true (g_file_get_contents (path, &data, NULL, NULL));
  return data;
}

static void
test_loads_and_roundtrips (void)
{
  static const char *const texts[] = {
    "Anna's credit score is 684. Decision: approved",
    "Zoë wrote: \"naïve café\"   \t\n\n  (quoted) 40% ... $1,200",
    "東京は晴れ 🙂🚀 👍🏽 family: 👨‍👩‍👧 flags: 🇫🇷",
    "text the trainer never saw: Quixotic jazz, ﬁligree, ǅ, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, \u200b\u00a0\u2028",
    "numbers 0 12 345 6789 3.14159 1e-9 ١٢٣ ½ Ⅻ",
    "   leading and trailing spaces   ",
    "a", "",
  };
  g_autofree char *corpus = make_corpus (1, 200);
  g_autoptr (GbBpe) bpe = train_ok (corpus, 600);
  g_autofree char *dir = save_ok (bpe);
  g_autoptr (GbTokenizer) tok = load_ok (dir);

  g_assert_cmpuint (gb_bpe_get_n_vocab (bpe), ==, 600);
  g_assert_cmpuint (gb_tokenizer_get_n_vocab (tok), ==, 600);
  g_assert_cmpint (gb_tokenizer_get_eot (tok), ==, 599);
  g_assert_cmpstr (gb_tokenizer_token_string (tok, 599), ==, "<|endoftext|>");
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GArray) ids = gb_tokenizer_encode (tok, texts[i], -1, FALSE, &error);
      g_assert_no_error (error);
      g_autofree char *back = gb_tokenizer_decode (tok, (gint32 *) ids->data, ids->len, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (back, ==, texts[i]);
    }

  /* The merges compress text like the corpus, and the special token is one id. */
  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, "the credit score<|endoftext|>", -1, TRUE, NULL);
  g_assert_cmpuint (ids->len, <=, 4);
  g_assert_cmpint (g_array_index (ids, gint32, ids->len - 1), ==, 599);
}

static void
test_embedded_nul (void)
{
  static const char text[] = "nul\0inside\0\0 the credit score";
  g_autofree char *corpus = make_corpus (2, 50);
  g_autoptr (GbBpe) bpe = train_ok (corpus, 400);
  g_autofree char *dir = save_ok (bpe);
  g_autoptr (GbTokenizer) tok = load_ok (dir);
  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, text, sizeof text - 1, FALSE, NULL);
  GString *back = g_string_new (NULL);

  for (guint i = 0; i < ids->len; i++)
    {
      gsize n;
      const guint8 *b = gb_tokenizer_token_bytes (tok, g_array_index (ids, gint32, i), &n);
      g_string_append_len (back, (const char *) b, n);
    }
  g_assert_cmpmem (back->str, back->len, text, sizeof text - 1);
  g_string_free (back, TRUE);
}

/* Any byte string, invalid UTF-8 included, is a sequence of single-byte
 * tokens whose bytes join back to it; the encoder itself refuses invalid
 * UTF-8 with the offset. */
static void
test_invalid_utf8_bytes (void)
{
  static const char raw[] = "ok \xff\xfe caf\xc3 \xed\xa0\x80 \xc0\xaf end";
  g_autofree char *corpus = make_corpus (3, 50);
  g_autoptr (GbBpe) bpe = train_ok (corpus, 400);
  g_autofree char *dir = save_ok (bpe);
  g_autoptr (GbTokenizer) tok = load_ok (dir);
  gint32 by_byte[256];
  g_autoptr (GString) back = g_string_new (NULL);
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < 256; i++)
    by_byte[i] = GB_TOKEN_NONE;
  for (gint32 id = 0; id < 256; id++)
    {
      gsize n;
      const guint8 *b = gb_tokenizer_token_bytes (tok, id, &n);
      g_assert_cmpuint (n, ==, 1);
      by_byte[b[0]] = id;
    }
  for (gsize i = 0; i < sizeof raw - 1; i++)
    {
      gsize n;
      gint32 id = by_byte[(guint8) raw[i]];
      g_assert_cmpint (id, !=, GB_TOKEN_NONE);
      const guint8 *b = gb_tokenizer_token_bytes (tok, id, &n);
      g_string_append_len (back, (const char *) b, n);
    }
  g_assert_cmpmem (back->str, back->len, raw, sizeof raw - 1);

  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, raw, sizeof raw - 1, FALSE, &error);
  g_assert_null (ids);
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
}

/* Equal counts go to the smallest (left bytes, right bytes): " c" (0x20)
 * sorts before "a". */
static void
test_ties (void)
{
  g_autoptr (GbBpe) bpe = train_ok ("ab cd", 300);
  g_autofree char *dir = save_ok (bpe);
  g_autofree char *merges = read_file (dir, "merges.txt");

  g_assert_cmpstr (merges, ==, "#version: 0.2\nĠ c\nĠc d\na b\n");
  g_assert_cmpuint (gb_bpe_get_n_merges (bpe), ==, 3);
  g_assert_cmpuint (gb_bpe_get_n_vocab (bpe), ==, 260);
  g_assert_cmpuint (gb_bpe_get_n_words (bpe), ==, 2);
  g_assert_cmpuint (gb_bpe_get_n_pretokens (bpe), ==, 2);
}

/* The most frequent pair first, counting words by frequency; no pair spans
 * an <|endoftext|> or a pre-token boundary. */
static void
test_frequency_order (void)
{
  g_autoptr (GbBpe) bpe = train_ok ("xy xy xy<|endoftext|>zq zq<|endoftext|>y<|endoftext|>", 258);
  g_autofree char *dir = save_ok (bpe);
  g_autofree char *merges = read_file (dir, "merges.txt");
  g_autofree char *vocab = read_file (dir, "vocab.json");

  g_assert_cmpstr (merges, ==, "#version: 0.2\nx y\n");
  g_assert_true (g_str_has_prefix (vocab, "{\"!\": 0, \"\\\"\": 1, "));
  g_assert_true (g_str_has_suffix (vocab, "\"xy\": 256, \"<|endoftext|>\": 257}"));
  g_assert_cmpuint (gb_bpe_get_n_vocab (bpe), ==, 258);
  g_assert_cmpuint (gb_bpe_get_n_words (bpe), ==, 5);
  g_assert_cmpuint (gb_bpe_get_n_pretokens (bpe), ==, 6);
}

static void
test_sizes (void)
{
  g_autofree char *corpus = make_corpus (4, 30);
  g_autoptr (GbBpe) none = train_ok (corpus, 257);
  g_autofree char *dir = save_ok (none);
  g_autofree char *merges = read_file (dir, "merges.txt");
  g_autoptr (GbTokenizer) tok = load_ok (dir);

  g_assert_cmpstr (merges, ==, "#version: 0.2\n");
  g_assert_cmpuint (gb_tokenizer_get_n_vocab (tok), ==, 257);
  g_assert_cmpint (gb_tokenizer_get_eot (tok), ==, 256);

  /* A tiny corpus runs out of pairs before a large vocabulary is full. */
  g_autoptr (GbBpe) small = train_ok ("abcabc abc", 5000);
  g_assert_cmpuint (gb_bpe_get_n_vocab (small), <, 5000);
  g_assert_cmpuint (gb_bpe_get_n_vocab (small), ==, 256 + gb_bpe_get_n_merges (small) + 1);
}

static void
test_determinism (void)
{
  g_autofree char *corpus = make_corpus (5, 300);
  g_autoptr (GbBpe) a = train_ok (corpus, 700);
  g_autoptr (GbBpe) b = train_ok (corpus, 700);
  g_autofree char *da = save_ok (a), *db = save_ok (b);
  g_autofree char *corpus_path = g_build_filename (db, "corpus.txt", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (corpus_path, corpus, -1, NULL));
  g_autoptr (GbBpe) c = gb_bpe_train_file (corpus_path, 700, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *dc = save_ok (c);
  const char *files[] = { "vocab.json", "merges.txt" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *fa = read_file (da, files[i]), *fb = read_file (db, files[i]), *fc = read_file (dc, files[i]);
      g_assert_cmpstr (fa, ==, fb);
      g_assert_cmpstr (fa, ==, fc);
    }
}

static void
progress_cb (double      fraction,
             const char *message,
             gpointer    user_data)
{
  double *last = user_data;
  g_assert_cmpfloat (fraction, >=, *last);
  g_assert_cmpfloat (fraction, <=, 1.0);
  g_assert_nonnull (message);
  *last = fraction;
}

static void
test_progress_and_cancel (void)
{
  g_autofree char *corpus = make_corpus (6, 300);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  double last = 0.0;

  g_autoptr (GbBpe) bpe = gb_bpe_train (corpus, -1, 600, NULL, progress_cb, &last, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (last, ==, 1.0);

  g_cancellable_cancel (cancellable);
  g_autoptr (GbBpe) none = gb_bpe_train (corpus, -1, 600, cancellable, NULL, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
async_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GbBpe **out = user_data;
  g_autoptr (GError) error = NULL;

  *out = gb_bpe_train_file_finish (result, &error);
  g_assert_no_error (error);
}

/* The async wrapper returns what the synchronous call does. */
static void
test_async (void)
{
  g_autofree char *corpus = make_corpus (8, 100);
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "corpus.txt", NULL);
  GbBpe *bpe = NULL;

  g_assert_true (g_file_set_contents (path, corpus, -1, NULL));
  gb_bpe_train_file_async (path, 450, NULL, NULL, NULL, async_done_cb, &bpe);
  while (bpe == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_autoptr (GbBpe) sync = train_ok (corpus, 450);
  g_autofree char *da = save_ok (bpe), *ds = save_ok (sync);
  g_autofree char *ma = read_file (da, "merges.txt"), *ms = read_file (ds, "merges.txt");
  g_assert_cmpstr (ma, ==, ms);
  gb_bpe_free (bpe);
}

static void
test_errors (void)
{
  static const struct
  {
    const char *text;
    gssize      len;
    guint       vocab_size;
    int         code;
    const char *in_message;
  } cases[] = {
    { "", 0, 1000, GB_ERROR_INVALID_DATA, "empty" },
    { "<|endoftext|><|endoftext|>", -1, 1000, GB_ERROR_INVALID_DATA, "empty" },
    { "hello", -1, 256, GB_ERROR_ARGUMENT, "257" },
    { "hello", -1, 0, GB_ERROR_ARGUMENT, "257" },
    { "caf\xc3 ok", -1, 300, GB_ERROR_INVALID_DATA, "byte 3" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GbBpe) bpe = gb_bpe_train (cases[i].text, cases[i].len, cases[i].vocab_size, NULL, NULL, NULL,
                                            &error);
      g_assert_null (bpe);
      g_assert_error (error, GB_ERROR, cases[i].code);
      g_assert_nonnull (strstr (error->message, cases[i].in_message));
    }

  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *missing = g_build_filename (dir, "no-such-corpus.txt", NULL);
  g_autofree char *empty = g_build_filename (dir, "empty.txt", NULL);
  g_autoptr (GError) e1 = NULL, e2 = NULL, e3 = NULL;
  g_assert_true (g_file_set_contents (empty, "", 0, NULL));
  g_assert_null (gb_bpe_train_file (missing, 1000, NULL, NULL, NULL, &e1));
  g_assert_error (e1, GB_ERROR, GB_ERROR_IO);
  g_assert_nonnull (strstr (e1->message, "no-such-corpus.txt"));
  g_assert_null (gb_bpe_train_file (dir, 1000, NULL, NULL, NULL, &e2));
  g_assert_error (e2, GB_ERROR, GB_ERROR_IO);
  g_assert_null (gb_bpe_train_file (empty, 1000, NULL, NULL, NULL, &e3));
  g_assert_error (e3, GB_ERROR, GB_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (e3->message, "empty.txt"));
}

static int
run_cli (char      **out,
         char      **err,
         const char *first,
         ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  va_list args;
  int status;

  g_ptr_array_add (argv, (char *) g_getenv ("GLASSBOX_CLI"));
  g_assert_nonnull (argv->pdata[0]);
  va_start (args, first);
  for (const char *a = first; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) a);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error);
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128;
}

static void
test_cli (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *corpus_path = g_build_filename (dir, "corpus.txt", NULL);
  g_autofree char *out_dir = g_build_filename (dir, "tok", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.txt", NULL);
  g_autofree char *corpus = make_corpus (7, 100);
  static const char *const usage[][7] = {
    { "train-tokenizer", NULL },
    { "train-tokenizer", "--corpus", "x", "--output", "y", NULL },
    { "train-tokenizer", "--corpus", "x", "--output", "y", "--vocab-size", "256" },
    { "train-tokenizer", "--vocab-size", "300", "--output", "y", NULL },
    { "train-tokenizer", "--bogus", NULL },
  };

  g_assert_true (g_file_set_contents (corpus_path, corpus, -1, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (usage); i++)
    {
      g_autofree char *out = NULL, *err = NULL;
      int code = run_cli (&out, &err, usage[i][0], usage[i][1], usage[i][2], usage[i][3], usage[i][4],
                          usage[i][5], usage[i][6], NULL);
      g_assert_cmpint (code, ==, 2);
      g_assert_true (g_str_has_prefix (err, "glassbox-cli: error: "));
    }
  {
    g_autofree char *out = NULL, *err = NULL;
    int code = run_cli (&out, &err, "train-tokenizer", "--corpus", missing, "--vocab-size", "300", "--output",
                        out_dir, NULL);
    g_assert_cmpint (code, ==, 1);
    g_assert_true (g_str_has_prefix (err, "glassbox-cli: error: "));
    g_assert_nonnull (strstr (err, "missing.txt"));
    g_assert_true (strchr (err, '\n') == err + strlen (err) - 1);
  }
  {
    g_autofree char *out = NULL, *err = NULL, *help = NULL, *help_err = NULL;
    int code = run_cli (&out, &err, "train-tokenizer", "--corpus", corpus_path, "--vocab-size", "500",
                        "--output", out_dir, NULL);
    g_assert_cmpint (code, ==, 0);
    g_assert_cmpstr (err, ==, "");
    g_assert_true (g_str_has_prefix (out, "500 tokens"));
    g_autoptr (GbTokenizer) tok = load_ok (out_dir);
    g_assert_cmpuint (gb_tokenizer_get_n_vocab (tok), ==, 500);
    g_assert_cmpint (run_cli (&help, &help_err, "train-tokenizer", "--help", NULL), ==, 0);
    g_assert_nonnull (strstr (help, "--vocab-size"));
  }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/engine/bpe-train/loads-and-roundtrips", test_loads_and_roundtrips);
  g_test_add_func ("/engine/bpe-train/embedded-nul", test_embedded_nul);
  g_test_add_func ("/engine/bpe-train/invalid-utf8-bytes", test_invalid_utf8_bytes);
  g_test_add_func ("/engine/bpe-train/ties", test_ties);
  g_test_add_func ("/engine/bpe-train/frequency-order", test_frequency_order);
  g_test_add_func ("/engine/bpe-train/sizes", test_sizes);
  g_test_add_func ("/engine/bpe-train/determinism", test_determinism);
  g_test_add_func ("/engine/bpe-train/progress-and-cancel", test_progress_and_cancel);
  g_test_add_func ("/engine/bpe-train/async", test_async);
  g_test_add_func ("/engine/bpe-train/errors", test_errors);
  g_test_add_func ("/cli/train-tokenizer", test_cli);

  return g_test_run ();
}
