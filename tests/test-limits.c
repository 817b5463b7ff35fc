/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Hostile sizes: each refused with a clear error before any large
 * allocation, without a crash or a hang, in bounded memory. */
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gb-json.h"
#include "gb-gemm.h"
#include "gb-test-util.h"

/* Peak resident memory of this process so far, in bytes. */
static guint64
peak_rss (void)
{
  g_autofree char *status = NULL;
  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  const char *line = strstr (status, "VmHWM:");
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen ("VmHWM:"), NULL, 10) * 1024;
}

static void
write_config (const char *dir,
              const char *json)
{
  g_autofree char *path = g_build_filename (dir, "config.json", NULL);
  g_assert_true (g_file_set_contents (path, json, -1, NULL));
}

static void
assert_refused (GError     *error,
                int         code,
                const char *file,
                const char *words)
{
  g_assert_error (error, GB_ERROR, code);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, file));
  g_assert_nonnull (strstr (error->message, words));
}

static void
test_config_layers (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;

  gb_test_write_vocab (dir, FALSE);
  write_config (dir, "{\"model_type\": \"gpt2\", \"n_layer\": 1000000, \"n_head\": 4, \"n_embd\": 64,"
                     " \"n_positions\": 128, \"vocab_size\": 257}");
  guint64 before = peak_rss ();
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_null (model);
  assert_refused (error, GB_ERROR_LIMIT, "config.json", "n_layer");
  g_assert_cmpuint (peak_rss () - before, <, 64 << 20);
}

static char *
deep (gsize depth,
      const char *prefix)
{
  GString *s = g_string_new (prefix);
  for (gsize i = 0; i < depth; i++)
    g_string_append_c (s, '[');
  for (gsize i = 0; i < depth; i++)
    g_string_append_c (s, ']');
  if (*prefix)
    g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

/* json-glib recursed once per level: a million levels overflowed the stack. */
static void
test_deep_json (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *json = deep (1000000, "");
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (config, json, -1, NULL));
  g_assert_null (gb_config_load (config, &error));
  assert_refused (error, GB_ERROR_FORMAT, "config.json", "nested deeper than");
  g_clear_error (&error);

  /* As a safetensors header, and a member's value. */
  g_autofree char *member = deep (1000000, "{\"w\": ");
  guint64 len = GUINT64_TO_LE (strlen (member));
  g_autoptr (GByteArray) file = g_byte_array_new ();
  g_byte_array_append (file, (const guint8 *) &len, 8);
  g_byte_array_append (file, (const guint8 *) member, (guint) strlen (member));
  g_autofree char *st = g_build_filename (dir, "deep.safetensors", NULL);
  g_assert_true (g_file_set_contents (st, (const char *) file->data, file->len, NULL));
  g_assert_null (gb_safetensors_open (st, &error));
  assert_refused (error, GB_ERROR_FORMAT, "deep.safetensors", "nested deeper than");
  g_clear_error (&error);

  /* As a shard index, in an otherwise valid model folder. */
  gb_test_write_vocab (dir, FALSE);
  write_config (dir, "{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4,"
                     " \"n_positions\": 4, \"vocab_size\": 257}");
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_assert_true (g_file_set_contents (index, member, -1, NULL));
  g_assert_null (gb_model_load (dir, NULL, NULL, NULL, &error));
  assert_refused (error, GB_ERROR_FORMAT, "model.safetensors.index.json", "nested deeper than");
  g_clear_error (&error);

  /* And as vocab.json. */
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  g_assert_true (g_file_set_contents (vocab, member, -1, NULL));
  g_assert_null (gb_tokenizer_new_from_files (vocab, merges, &error));
  assert_refused (error, GB_ERROR_FORMAT, "vocab.json", "nested deeper than");
}

/* The same guard in every JSON the later features read: pair sets (JSON and
 * JSONL), steering vectors, SAE cfg.json, application schemas. */
static void
test_deep_json_features (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *member = deep (1000000, "{\"pairs\": ");
  g_autoptr (GError) error = NULL;

  g_assert_null (gb_pair_set_parse (member, -1, "pairs.json", &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "pairs.json"));
  g_assert_nonnull (strstr (error->message, "nested deeper than"));
  g_clear_error (&error);

  g_autofree char *jsonl = g_strconcat ("{\"positive\": \"a\", \"negative\": \"b\"}\n", member, "\n", NULL);
  g_assert_null (gb_pair_set_parse (jsonl, -1, "pairs.jsonl", &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "pairs.jsonl"));
  g_clear_error (&error);

  g_autofree char *vec = g_build_filename (dir, "vector.json", NULL);
  g_assert_true (g_file_set_contents (vec, member, -1, NULL));
  g_assert_null (gb_steer_vector_load (vec, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "vector.json"));
  g_assert_nonnull (strstr (error->message, "nested deeper than"));
  g_clear_error (&error);

  g_autofree char *cfg = g_build_filename (dir, "cfg.json", NULL);
  g_assert_true (g_file_set_contents (cfg, member, -1, NULL));
  g_assert_null (gb_sae_load (dir, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "cfg.json"));
  g_assert_nonnull (strstr (error->message, "nested deeper than"));
  g_clear_error (&error);

  g_assert_null (gb_app_schema_new_from_data (member, -1, "schema.json", &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "schema.json"));
  g_assert_nonnull (strstr (error->message, "nested deeper than"));
}

/* A 10 GB file that is all holes behind a header that matches the config:
 * 1,310,720 x 4,096 F16 embeddings, which would become 21 GB of float32. */
static void
test_sparse_model (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;
  const guint64 rows = 1310720, cols = 4096, n_bytes = rows * cols * 2;

  gb_test_write_vocab (dir, FALSE);
  write_config (dir, "{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_head\": 32, \"n_embd\": 4096,"
                     " \"n_positions\": 1024, \"vocab_size\": 1310720}");
  g_autofree char *header = g_strdup_printf ("{\"wte.weight\": {\"dtype\": \"F16\", \"shape\": [%" G_GUINT64_FORMAT
                                             ", %" G_GUINT64_FORMAT "], \"data_offsets\": [0, %" G_GUINT64_FORMAT "]}}",
                                             rows, cols, n_bytes);
  guint64 len = GUINT64_TO_LE (strlen (header));
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  FILE *f = fopen (path, "wb");
  g_assert_nonnull (f);
  g_assert_cmpint (fwrite (&len, 8, 1, f), ==, 1);
  g_assert_cmpint (fwrite (header, strlen (header), 1, f), ==, 1);
  g_assert_cmpint (fclose (f), ==, 0);
  g_assert_cmpint (truncate (path, (off_t) (8 + strlen (header) + n_bytes)), ==, 0);

  guint64 before = peak_rss ();
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_null (model);
  assert_refused (error, GB_ERROR_FORMAT, "model.safetensors", "sparse or incomplete");
  g_assert_cmpuint (peak_rss () - before, <, 64 << 20);
}

/* Weights that would not fit in memory once converted to float32 are
 * refused before the first conversion (here with a 1 MiB budget). */
static void
test_memory_budget (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;
  const GbModelShape shape = { .n_layer = 2, .n_head = 4, .n_embd = 128, .n_positions = 128, .n_vocab = 257 };

  gb_test_write_vocab (dir, FALSE);
  g_assert_true (gb_model_write_random (dir, &shape, GB_DTYPE_F16, 1, &error));
  g_setenv ("GLASSBOX_MEMORY_LIMIT_MB", "1", TRUE);
  g_autoptr (GbModel) refused = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_unsetenv ("GLASSBOX_MEMORY_LIMIT_MB");
  g_assert_null (refused);
  /* 1.8 MB of float32 copies, and 1.7 MB more for the packed copies of the
   * blocks' matrices where the CPU packs them. */
  assert_refused (error, GB_ERROR_LIMIT, dir, gb_packed_supported () ? "needs 3.5" : "needs 1.8");
  g_clear_error (&error);

  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (model);
}

/* A 100 MB prompt is refused at once, before it is tokenised. */
static void
test_prompt_size (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;

  gb_test_write_model (dir, 1, 2, 8, 64, FALSE, 1);
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_assert_true (gb_model_check_prompt_size (model, 1000, &error));
  g_assert_true (gb_model_check_prompt_size (model, 1 << 20, &error));
  g_assert_false (gb_model_check_prompt_size (model, 100 * 1000 * 1000, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, "the text is 100.0"));
  g_assert_nonnull (strstr (error->message, "reads at most 64 tokens"));
}

/* A config may ask for a long context: a pass that would need more memory
 * than there is (here a 4 MiB budget: 2 heads x 2048^2 attention weights
 * recorded is 32 MiB) is refused before anything is allocated; a short
 * one runs. */
static void
test_forward_memory (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;

  gb_test_write_model (dir, 1, 2, 8, 2048, FALSE, 1);
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autofree gint32 *tokens = g_new0 (gint32, 2048);
  const GbRecord rec = { .hooks = { [GB_HOOK_PATTERN] = GB_ALL_LAYERS }, .logits = GB_LOGITS_ALL };

  g_setenv ("GLASSBOX_MEMORY_LIMIT_MB", "4", TRUE);
  guint64 before = peak_rss ();
  g_autoptr (GbTrace) refused = gb_model_forward (model, tokens, 2048, &rec, NULL, 0, NULL, &error);
  g_assert_null (refused);
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, "running 2048 tokens"));
  g_assert_cmpuint (peak_rss () - before, <, 16 << 20);
  g_clear_error (&error);
  g_autoptr (GbTrace) fine = gb_model_forward (model, tokens, 16, &rec, NULL, 0, NULL, &error);
  g_unsetenv ("GLASSBOX_MEMORY_LIMIT_MB");
  g_assert_no_error (error);
  g_assert_nonnull (fine);
}

/* A model folder from an archive can hold FIFOs where files should be:
 * opening one would wait for a writer forever. Each is refused at once. */
static void
test_fifos (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  const char *const names[] = { "config.json", "vocab.json", "merges.txt", "model.safetensors" };
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      /* A valid model, then one of its files replaced by a FIFO. */
      gb_test_write_model (dir, 1, 2, 8, 16, FALSE, 1);
      g_autofree char *path = g_build_filename (dir, names[i], NULL);
      g_assert_cmpint (g_unlink (path), ==, 0);
      g_assert_cmpint (mkfifo (path, 0600), ==, 0);
      g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
      g_assert_null (model);
      g_test_message ("%s: %s", names[i], error->message);
      g_assert_error (error, GB_ERROR, GB_ERROR_IO);
      g_assert_nonnull (strstr (error->message, names[i]));
      g_assert_nonnull (strstr (error->message, "not a regular file"));
      g_clear_error (&error);
      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  /* And the Hugging Face cache scan passes over a FIFO refs/main. */
  g_autofree char *cache = gb_test_tmpdir ();
  g_autofree char *snap = g_build_filename (cache, "models--a--b", "snapshots", "0123", NULL);
  g_autofree char *refs = g_build_filename (cache, "models--a--b", "refs", NULL);
  g_autofree char *ref = g_build_filename (refs, "main", NULL);
  g_assert_cmpint (g_mkdir_with_parents (snap, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (refs, 0700), ==, 0);
  gb_test_write_model (snap, 1, 2, 8, 16, FALSE, 1);
  g_assert_cmpint (mkfifo (ref, 0600), ==, 0);
  g_autoptr (GPtrArray) found = gb_hub_scan (cache);
  g_assert_cmpuint (found->len, ==, 1);
  g_assert_cmpstr (((GbHubModel *) found->pdata[0])->repo_id, ==, "a/b");
}

/* json-glib reads 010 as octal 8 (and 0x10 as 16) where every other JSON
 * reader refuses both: "d_sae": 00016757775 became 3,923,965 and the SAE
 * loader asked for 3 GB (found by fuzz-sae-cfg in CI). */
static void
test_json_leading_zero (void)
{
  const char *refused[] = { "[010]", "[-010]", "{\"n\": 00016757775}", "[0x10]", "[1, 02]", "[00]" };
  const char *accepted[] = { "[0]", "[-0]", "[0.5]", "[-0.05]", "[1e05]", "[1E-05]", "[100]", "[1.05]",
                             "{\"s\": \"010\"}", "[0, 10, 0]" };

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) root = gb_json_parse (refused[i], strlen (refused[i]), 8, "x.json", &error);
      g_test_message ("%s", refused[i]);
      g_assert_null (root);
      assert_refused (error, GB_ERROR_FORMAT, "x.json", "leading zero");
    }
  for (guint i = 0; i < G_N_ELEMENTS (accepted); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) root = gb_json_parse (accepted[i], strlen (accepted[i]), 8, "x.json", &error);
      g_test_message ("%s", accepted[i]);
      g_assert_no_error (error);
      g_assert_nonnull (root);
    }

  /* Through a loader: the model's config.json. */
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;
  gb_test_write_vocab (dir, FALSE);
  write_config (dir, "{\"model_type\": \"gpt2\", \"n_layer\": 010, \"n_head\": 4, \"n_embd\": 64,"
                     " \"n_positions\": 128, \"vocab_size\": 257}");
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_null (model);
  assert_refused (error, GB_ERROR_FORMAT, "config.json", "leading zero");
}

/* An SAE cfg.json that claims a width its weights do not have is refused by
 * the weights' shape before anything that size is allocated (the largest
 * width the limits allow, 2 x 1 TiB of weights: allocating first aborted). */
static void
test_sae_claimed_width (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GbSae) small = gb_sae_new (GB_SAE_STANDARD, 4, 8, 0);

  g_assert_true (gb_sae_save (small, dir, &error));
  g_autofree char *cfg = g_build_filename (dir, "cfg.json", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (cfg, &text, NULL, NULL));
  g_autoptr (GString) big = g_string_new (text);
  g_assert_cmpuint (g_string_replace (big, "\"d_in\" : 4", "\"d_in\" : 65536", 1), ==, 1);
  g_assert_cmpuint (g_string_replace (big, "\"d_sae\" : 8", "\"d_sae\" : 4194304", 1), ==, 1);
  g_assert_true (g_file_set_contents (cfg, big->str, -1, NULL));
  /* Allocating first aborted here (g_new0 of 1 TiB). */
  g_autoptr (GbSae) sae = gb_sae_load (dir, &error);
  g_assert_null (sae);
  assert_refused (error, GB_ERROR_SHAPE, "sae_weights.safetensors", "W_enc");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/limits/config-layers", test_config_layers);
  g_test_add_func ("/limits/deep-json", test_deep_json);
  g_test_add_func ("/limits/deep-json-features", test_deep_json_features);
  g_test_add_func ("/limits/sparse-model", test_sparse_model);
  g_test_add_func ("/limits/memory-budget", test_memory_budget);
  g_test_add_func ("/limits/prompt-size", test_prompt_size);
  g_test_add_func ("/limits/fifos", test_fifos);
  g_test_add_func ("/limits/forward-memory", test_forward_memory);
  g_test_add_func ("/limits/json-leading-zero", test_json_leading_zero);
  g_test_add_func ("/limits/sae-claimed-width", test_sae_claimed_width);
  return g_test_run ();
}
