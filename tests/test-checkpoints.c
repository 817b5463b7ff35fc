/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* Corrupt and hostile model folders: each must fail to load with a specific
 * error that names the file and the problem, and never crash (this suite also
 * runs under AddressSanitizer and UndefinedBehaviorSanitizer in CI). */

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gb-test-util.h"

typedef struct
{
  char       *dir;
  char       *weights;  /* model.safetensors */
  GByteArray *header;   /* JSON text */
  GByteArray *data;     /* the data section */
} Fixture;

static void
fixture_set_up (Fixture      *f,
                gconstpointer user_data)
{
  g_autofree char *contents = NULL;
  gsize len;
  guint64 hlen;

  f->dir = gb_test_tmpdir ();
  gb_test_write_model (f->dir, 2, 2, 8, 16, FALSE, 1);
  f->weights = g_build_filename (f->dir, "model.safetensors", NULL);
  g_assert_true (g_file_get_contents (f->weights, &contents, &len, NULL));
  memcpy (&hlen, contents, 8);
  f->header = g_byte_array_new ();
  g_byte_array_append (f->header, (guint8 *) contents + 8, (guint) hlen);
  f->data = g_byte_array_new ();
  g_byte_array_append (f->data, (guint8 *) contents + 8 + hlen, (guint) (len - 8 - hlen));
}

static void
fixture_tear_down (Fixture      *f,
                   gconstpointer user_data)
{
  g_byte_array_unref (f->header);
  g_byte_array_unref (f->data);
  g_free (f->weights);
  g_free (f->dir);
}

static void
write_weights (Fixture *f,
               guint64  header_len)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  guint64 le = GUINT64_TO_LE (header_len);
  g_byte_array_append (out, (guint8 *) &le, 8);
  g_byte_array_append (out, f->header->data, f->header->len);
  g_byte_array_append (out, f->data->data, f->data->len);
  g_assert_true (g_file_set_contents (f->weights, (char *) out->data, out->len, NULL));
}

/* Parses the header, lets @edit change it, writes it back with the data. */
static void
edit_header (Fixture *f,
             void (*edit) (JsonObject *root))
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, (char *) f->header->data, f->header->len, NULL));
  JsonNode *root = json_parser_get_root (parser);
  edit (json_node_get_object (root));
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  gsize len;
  g_autofree char *text = json_generator_to_data (gen, &len);
  g_byte_array_set_size (f->header, 0);
  g_byte_array_append (f->header, (guint8 *) text, (guint) len);
  write_weights (f, len);
}

static void
replace_header_text (Fixture    *f,
                     const char *text)
{
  g_byte_array_set_size (f->header, 0);
  g_byte_array_append (f->header, (const guint8 *) text, (guint) strlen (text));
  write_weights (f, strlen (text));
}

static JsonObject *
tensor (JsonObject *root,
        const char *name)
{
  return json_object_get_object_member (root, name);
}

static void
set_array (JsonObject *obj,
           const char *member,
           gint64      a,
           gint64      b,
           guint       n)
{
  JsonArray *arr = json_array_new ();
  json_array_add_int_element (arr, a);
  if (n > 1)
    json_array_add_int_element (arr, b);
  json_object_set_array_member (obj, member, arr);
}

static void
rewrite_config (Fixture    *f,
                const char *from,
                const char *to)
{
  g_autofree char *path = g_build_filename (f->dir, "config.json", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, from));
  g_autoptr (GString) s = g_string_new (text);
  g_string_replace (s, from, to, 1);
  g_assert_true (g_file_set_contents (path, s->str, s->len, NULL));
}

static void
write_file (Fixture    *f,
            const char *name,
            const char *contents)
{
  g_autofree char *path = g_build_filename (f->dir, name, NULL);
  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
}

/* The mutations. */
static void
m_truncated (Fixture *f)
{
  g_byte_array_set_size (f->data, f->data->len / 2);
  write_weights (f, f->header->len);
}

static void
m_tiny_file (Fixture *f)
{
  g_assert_true (g_file_set_contents (f->weights, "abc", 3, NULL));
}

static void
m_header_past_eof (Fixture *f)
{
  write_weights (f, f->header->len + f->data->len + 100);
}

static void
m_huge_header (Fixture *f)
{
  write_weights (f, G_GUINT64_CONSTANT (1) << 40);
}

static void
m_bad_json (Fixture *f)
{
  replace_header_text (f, "{\"wte.weight\": {\"dtype\": \"F32\", \"shape\": [257, 8], \"data_offsets\": [0, 8224]");
}

static void
m_not_object (Fixture *f)
{
  replace_header_text (f, "[1, 2, 3]");
}

static void
e_unknown_dtype (JsonObject *root)
{
  json_object_set_string_member (tensor (root, "wte.weight"), "dtype", "F7");
}

static void
m_unknown_dtype (Fixture *f)
{
  edit_header (f, e_unknown_dtype);
}

static void
e_shape_span (JsonObject *root)
{
  set_array (tensor (root, "ln_f.bias"), "shape", 9, 0, 1);
}

static void
m_shape_span (Fixture *f)
{
  edit_header (f, e_shape_span);
}

static void
e_overlap (JsonObject *root)
{
  /* ln_f.bias claims the bytes of ln_f.weight. */
  JsonArray *w = json_object_get_array_member (tensor (root, "ln_f.weight"), "data_offsets");
  gint64 a = json_array_get_int_element (w, 0), b = json_array_get_int_element (w, 1);
  set_array (tensor (root, "ln_f.bias"), "data_offsets", a, b, 2);
}

static void
m_overlap (Fixture *f)
{
  edit_header (f, e_overlap);
}

static void
e_missing (JsonObject *root)
{
  json_object_remove_member (root, "h.1.mlp.c_fc.bias");
}

static void
m_missing_tensor (Fixture *f)
{
  edit_header (f, e_missing);
}

static void
e_wrong_shape (JsonObject *root)
{
  /* Same byte count, transposed shape: only the config check can catch it. */
  set_array (tensor (root, "h.0.attn.c_attn.weight"), "shape", 24, 8, 2);
}

static void
m_wrong_shape (Fixture *f)
{
  edit_header (f, e_wrong_shape);
}

static void
m_nan (Fixture *f)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, (char *) f->header->data, f->header->len, NULL));
  JsonObject *t = tensor (json_node_get_object (json_parser_get_root (parser)), "h.1.ln_2.weight");
  gint64 begin = json_array_get_int_element (json_object_get_array_member (t, "data_offsets"), 0);
  float nan = NAN;
  memcpy (f->data->data + begin + 12, &nan, 4);
  write_weights (f, f->header->len);
}

static void
e_int_dtype (JsonObject *root)
{
  /* I32 has the same size as F32, so the span stays consistent. */
  json_object_set_string_member (tensor (root, "wpe.weight"), "dtype", "I32");
}

static void
m_int_dtype (Fixture *f)
{
  edit_header (f, e_int_dtype);
}

static void
e_bad_offsets (JsonObject *root)
{
  set_array (tensor (root, "ln_f.bias"), "data_offsets", 40, 8, 2);
}

static void
m_bad_offsets (Fixture *f)
{
  edit_header (f, e_bad_offsets);
}

static void
m_duplicate (Fixture *f)
{
  g_autofree char *text = g_strndup ((char *) f->header->data, f->header->len);
  g_autoptr (GString) s = g_string_new (text);
  /* Give the first tensor's entry a twin with the same name. */
  const char *entry = "\"ln_f.bias\":";
  char *at = strstr (s->str, entry);
  g_assert_nonnull (at);
  char *end = strchr (at, '}');
  g_autofree char *twin = g_strndup (at, end - at + 1);
  g_string_insert (s, 1, ",");
  g_string_insert (s, 1, twin);
  replace_header_text (f, s->str);
}

static void
m_config_heads (Fixture *f)
{
  rewrite_config (f, "\"n_head\": 2", "\"n_head\": 3");
}

static void
m_config_layers (Fixture *f)
{
  rewrite_config (f, "\"n_layer\": 2", "\"n_layer\": 1000000");
}

static void
m_config_json (Fixture *f)
{
  write_file (f, "config.json", "{\"model_type\": \"gpt2\", ");
}

static void
m_config_type (Fixture *f)
{
  rewrite_config (f, "\"model_type\": \"gpt2\"", "\"model_type\": \"llama\"");
}

static void
m_no_config (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->dir, "config.json", NULL);
  g_unlink (path);
}

static void
m_empty_vocab (Fixture *f)
{
  write_file (f, "vocab.json", "{}");
}

static void
m_bad_merges (Fixture *f)
{
  write_file (f, "merges.txt", "#version: 0.2\nonly-one-part\n");
}

static void
m_no_weights (Fixture *f)
{
  g_unlink (f->weights);
}

static void
m_shard_escape (Fixture *f)
{
  g_unlink (f->weights);
  write_file (f, "model.safetensors.index.json", "{\"weight_map\": {\"wte.weight\": \"../../etc/passwd\"}}");
}

static void
m_vocab_too_big (Fixture *f)
{
  rewrite_config (f, "\"vocab_size\": 257", "\"vocab_size\": 100");
}

static void
m_sparse_10gb (Fixture *f)
{
  /* A 10 GB sparse file whose header claims 10 GB of header: refused before
   * anything is read or allocated. */
  FILE *fp = fopen (f->weights, "wb");
  guint64 hlen = G_GUINT64_CONSTANT (10) << 30;
  fwrite (&hlen, 8, 1, fp);
  g_assert_cmpint (fseeko (fp, (off_t) hlen, SEEK_SET), ==, 0);
  fputc ('}', fp);
  fclose (fp);
}

typedef struct
{
  const char *name;
  void (*mutate) (Fixture *f);
  GbErrorCode code;
  const char *file;     /* the file the message must name */
  const char *message;  /* and a phrase it must contain */
} Case;

static const Case cases[] = {
  { "truncated", m_truncated, GB_ERROR_FORMAT, "model.safetensors", "truncated" },
  { "tiny-file", m_tiny_file, GB_ERROR_FORMAT, "model.safetensors", "too short" },
  { "header-past-eof", m_header_past_eof, GB_ERROR_FORMAT, "model.safetensors", "runs past the end" },
  { "huge-header", m_huge_header, GB_ERROR_LIMIT, "model.safetensors", "limit" },
  { "sparse-10gb", m_sparse_10gb, GB_ERROR_LIMIT, "model.safetensors", "limit" },
  { "bad-json", m_bad_json, GB_ERROR_FORMAT, "model.safetensors", "not valid JSON" },
  { "header-not-object", m_not_object, GB_ERROR_FORMAT, "model.safetensors", "not a JSON object" },
  { "unknown-dtype", m_unknown_dtype, GB_ERROR_UNSUPPORTED, "model.safetensors", "unknown dtype “F7”" },
  { "shape-span-mismatch", m_shape_span, GB_ERROR_SHAPE, "model.safetensors", "“ln_f.bias”: shape and dtype give 36 bytes" },
  { "overlapping-spans", m_overlap, GB_ERROR_FORMAT, "model.safetensors", "overlaps" },
  { "offsets-reversed", m_bad_offsets, GB_ERROR_FORMAT, "model.safetensors", "end before they begin" },
  { "duplicate-name", m_duplicate, GB_ERROR_FORMAT, "model.safetensors", "“ln_f.bias”: name appears twice" },
  { "missing-tensor", m_missing_tensor, GB_ERROR_MISSING, "", "“h.1.mlp.c_fc.bias” is missing" },
  { "wrong-shape", m_wrong_shape, GB_ERROR_SHAPE, "model.safetensors", "has shape [24, 8], expected [8, 24]" },
  { "nan-weights", m_nan, GB_ERROR_INVALID_DATA, "model.safetensors", "“h.1.ln_2.weight” contains NaN" },
  { "integer-weights", m_int_dtype, GB_ERROR_UNSUPPORTED, "model.safetensors", "dtype I32 is not supported" },
  { "config-heads", m_config_heads, GB_ERROR_FORMAT, "config.json", "not a multiple of n_head" },
  { "config-million-layers", m_config_layers, GB_ERROR_LIMIT, "config.json", "“n_layer” = 1000000 is out of range" },
  { "config-bad-json", m_config_json, GB_ERROR_FORMAT, "config.json", "not valid JSON" },
  { "config-not-gpt2", m_config_type, GB_ERROR_UNSUPPORTED, "config.json", "“llama” is not supported" },
  { "config-missing", m_no_config, GB_ERROR_MISSING, "config.json", "no such file" },
  { "vocab-empty", m_empty_vocab, GB_ERROR_FORMAT, "vocab.json", "" },
  { "merges-malformed", m_bad_merges, GB_ERROR_FORMAT, "merges.txt", "line 2" },
  { "vocab-larger-than-model", m_vocab_too_big, GB_ERROR_SHAPE, "vocab.json", "257 tokens but the model only 100" },
  { "no-weights", m_no_weights, GB_ERROR_MISSING, "", "no model.safetensors" },
  { "shard-path-escape", m_shard_escape, GB_ERROR_FORMAT, "model.safetensors.index.json", "invalid file name" },
};

static void
test_valid (Fixture      *f,
            gconstpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (f->dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (gb_model_get_config (model)->n_layer, ==, 2);
}

static void
test_case (Fixture      *f,
           gconstpointer user_data)
{
  const Case *c = user_data;
  g_autoptr (GError) error = NULL;

  c->mutate (f);
  g_autoptr (GbModel) model = gb_model_load (f->dir, NULL, NULL, NULL, &error);
  g_assert_null (model);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", c->name, error->message);
  g_assert_true (error->domain == GB_ERROR);
  g_assert_cmpint (error->code, ==, c->code);
  g_assert_nonnull (strstr (error->message, f->dir));
  g_assert_nonnull (strstr (error->message, c->file));
  g_assert_nonnull (strstr (error->message, c->message));
}

static void
make_snapshot (const char *cache,
               const char *repo,
               const char *hash,
               gboolean    gpt2)
{
  g_autofree char *dir = g_build_filename (cache, repo, "snapshots", hash, NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  gb_test_write_model (dir, 1, 2, 8, 16, FALSE, 3);
  if (!gpt2)
    {
      g_autofree char *config = g_build_filename (dir, "config.json", NULL);
      g_assert_true (g_file_set_contents (config, "{\"model_type\": \"llama\"}", -1, NULL));
    }
}

static void
test_hub_scan (void)
{
  g_autofree char *cache = gb_test_tmpdir ();
  make_snapshot (cache, "models--openai-community--gpt2", "aaa", TRUE);
  make_snapshot (cache, "models--openai-community--gpt2", "bbb", TRUE);
  make_snapshot (cache, "models--distilgpt2", "ccc", TRUE);
  make_snapshot (cache, "models--meta--llama", "ddd", FALSE);
  g_autofree char *refs = g_build_filename (cache, "models--openai-community--gpt2", "refs", NULL);
  g_autofree char *main_ref = g_build_filename (refs, "main", NULL);
  g_mkdir_with_parents (refs, 0755);
  g_assert_true (g_file_set_contents (main_ref, "bbb\n", -1, NULL));

  g_autoptr (GPtrArray) found = gb_hub_scan (cache);
  g_assert_cmpuint (found->len, ==, 2);
  GbHubModel *a = found->pdata[0], *b = found->pdata[1];
  g_assert_cmpstr (a->repo_id, ==, "distilgpt2");
  g_assert_cmpstr (b->repo_id, ==, "openai-community/gpt2");
  g_assert_true (g_str_has_suffix (b->path, "snapshots/bbb"));

  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (b->path, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gb_model_get_name (model), ==, "openai-community/gpt2");

  /* HF_HUB_CACHE, then HF_HOME/hub, then ~/.cache/huggingface/hub. */
  g_setenv ("HF_HUB_CACHE", cache, TRUE);
  g_autofree char *d1 = gb_hub_cache_dir ();
  g_assert_cmpstr (d1, ==, cache);
  g_unsetenv ("HF_HUB_CACHE");
  g_setenv ("HF_HOME", "/x/hf", TRUE);
  g_autofree char *d2 = gb_hub_cache_dir ();
  g_assert_cmpstr (d2, ==, "/x/hf/hub");
  g_unsetenv ("HF_HOME");
  g_autofree char *d3 = gb_hub_cache_dir ();
  g_assert_true (g_str_has_suffix (d3, ".cache/huggingface/hub"));

  g_autoptr (GPtrArray) nothing = gb_hub_scan ("/nonexistent/cache");
  g_assert_cmpuint (nothing->len, ==, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/hub/scan", test_hub_scan);
  g_test_add ("/engine/checkpoints/valid", Fixture, NULL, fixture_set_up, test_valid, fixture_tear_down);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/engine/checkpoints/%s", cases[i].name);
      g_test_add (path, Fixture, &cases[i], fixture_set_up, test_case, fixture_tear_down);
    }
  return g_test_run ();
}
