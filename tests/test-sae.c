/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <utime.h>

#include "gb-kernels.h"
#include "gb-test-util.h"

/* Sparse autoencoders: recovery of planted features, SAELens files (round
 * trip, older cfgs, hostile files), corpora, training on a model with
 * cancel and resume, the splice-in loss of a lossless SAE, feature analysis
 * and its cache. The arithmetic itself is checked against float64 numpy in
 * tests/reference/test_sae.py. */

static char *model_dir;

static GbSae *
random_sae (GbSaeKind kind,
            guint     d_in,
            guint     d_sae,
            guint     k,
            guint32   seed)
{
  GbSae *sae = gb_sae_new (kind, d_in, d_sae, k);
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  gb_sae_init_random (sae, seed);
  for (guint j = 0; j < d_sae; j++)
    sae->b_enc[j] = (float) (0.1 * (g_rand_double (rng) - 0.5));
  for (guint i = 0; i < d_in; i++)
    sae->b_dec[i] = (float) (0.1 * (g_rand_double (rng) - 0.5));
  if (kind == GB_SAE_JUMPRELU)
    for (guint j = 0; j < d_sae; j++)
      sae->threshold[j] = (float) (0.2 * g_rand_double (rng));
  sae->hook = GB_HOOK_RESID_POST;
  sae->layer = 1;
  return sae;
}

/* ---- Planted features ---- */

/* Tokens are sums of 3 of 48 known unit directions in 24 dimensions with
 * coefficients in [1, 3]: training must find most of them (cosine > 0.9
 * with some decoder row). */
static void
planted (GbSaeKind kind,
         guint     steps)
{
  const guint d = 24, n_true = 48, B = 256, ds = 96;
  g_autoptr (GRand) rng = g_rand_new_with_seed (3);
  g_autofree float *dirs = g_new (float, n_true * d), *x = g_new (float, B * d);

  for (guint j = 0; j < n_true; j++)
    {
      double s = 0;
      for (guint i = 0; i < d; i++)
        {
          dirs[j * d + i] = (float) (g_rand_double (rng) - 0.5);
          s += dirs[j * d + i] * dirs[j * d + i];
        }
      for (guint i = 0; i < d; i++)
        dirs[j * d + i] /= (float) sqrt (s);
    }
  GbSaeTrainOptions o;
  gb_sae_train_options_init (&o);
  o.kind = kind;
  o.k = 3;
  o.l1 = 1.0;
  o.lr = 3e-3;
  o.batch_size = B;
  o.dead_window = 20 * B;
  o.resample_every = 100;
  GbSae *sae = gb_sae_new (kind, d, ds, 3);
  gb_sae_init_random (sae, 2);
  g_autoptr (GbSaeTrainer) tr = gb_sae_trainer_new (sae, &o);
  GbSaeStepStats st = { 0 };
  for (guint s = 0; s < steps; s++)
    {
      memset (x, 0, B * d * sizeof (float));
      for (guint b = 0; b < B; b++)
        for (guint a = 0; a < 3; a++)
          {
            guint j = g_rand_int_range (rng, 0, n_true);
            float c = (float) (1 + 2 * g_rand_double (rng));
            for (guint i = 0; i < d; i++)
              x[b * d + i] += c * dirs[j * d + i];
          }
      gb_sae_trainer_step (tr, x, B, &st);
    }
  GbSae *out = gb_sae_trainer_get_sae (tr);
  guint found = 0;
  for (guint j = 0; j < n_true; j++)
    {
      double best = -1;
      for (guint r = 0; r < ds; r++)
        {
          double c = 0;
          for (guint i = 0; i < d; i++)
            c += (double) dirs[j * d + i] * out->W_dec[r * d + i];
          best = MAX (best, c);
        }
      found += best > 0.9;
    }
  g_test_message ("%s: %u of %u planted directions recovered (cos > 0.9); EV %.3f, L0 %.2f", gb_sae_kind_name (kind),
                  found, n_true, 1 - st.mse / st.var, st.l0);
  g_assert_cmpuint (found, >=, n_true * 8 / 10);
  g_assert_cmpfloat (1 - st.mse / st.var, >, 0.75);
}

static void
test_planted_topk (void)
{
  planted (GB_SAE_TOPK, 1500);
}

static void
test_planted_l1 (void)
{
  planted (GB_SAE_STANDARD, 1500);
}

static void
test_resample (void)
{
  /* Half the latents can never fire (b_enc -100): tracked as dead, then
   * resampled towards badly reconstructed inputs, after which they fire. */
  const guint d = 8, ds = 16, B = 64;
  GbSaeTrainOptions o;
  gb_sae_train_options_init (&o);
  o.kind = GB_SAE_STANDARD;
  o.l1 = 0.01;
  o.lr = 1e-3;
  o.dead_window = 2 * B;
  o.resample_every = 5;
  GbSae *sae = gb_sae_new (GB_SAE_STANDARD, d, ds, 0);
  gb_sae_init_random (sae, 4);
  for (guint j = 0; j < ds / 2; j++)
    sae->b_enc[j] = -100;
  g_autoptr (GbSaeTrainer) tr = gb_sae_trainer_new (sae, &o);
  g_autoptr (GRand) rng = g_rand_new_with_seed (9);
  g_autofree float *x = g_new (float, B * d);
  GbSaeStepStats st;
  for (guint s = 0; s < 4; s++)
    {
      for (guint i = 0; i < B * d; i++)
        x[i] = (float) (g_rand_double (rng) * 2 - 1);
      gb_sae_trainer_step (tr, x, B, &st);
    }
  g_assert_cmpfloat (gb_sae_trainer_dead_fraction (tr), ==, 0.5);
  g_assert_cmpuint (gb_sae_trainer_get_n_resampled (tr), ==, 0);
  for (guint s = 0; s < 6; s++)
    {
      for (guint i = 0; i < B * d; i++)
        x[i] = (float) (g_rand_double (rng) * 2 - 1);
      gb_sae_trainer_step (tr, x, B, &st);
    }
  g_assert_cmpuint (gb_sae_trainer_get_n_resampled (tr), ==, ds / 2);
  g_assert_cmpfloat (gb_sae_trainer_dead_fraction (tr), <, 0.5);
  GbSae *out = gb_sae_trainer_get_sae (tr);
  for (guint j = 0; j < ds; j++)
    {
      double n = 0;
      for (guint i = 0; i < d; i++)
        n += out->W_dec[j * d + i] * out->W_dec[j * d + i];
      g_assert_cmpfloat_with_epsilon (n, 1.0, 1e-5);
    }
  for (guint j = 0; j < ds / 2; j++)
    g_assert_cmpfloat (out->b_enc[j], >, -1);  /* reset with the direction */
}

/* ---- Files ---- */

static void
assert_same_encoding (const GbSae *a,
                      const GbSae *b)
{
  const guint n = 7;
  g_autofree float *x = g_new (float, n * a->d_in), *xa = NULL, *xb = NULL;
  g_autofree float *za = g_new (float, n * a->d_sae), *zb = g_new (float, n * b->d_sae);
  for (guint i = 0; i < n * a->d_in; i++)
    x[i] = (float) sin (i * 0.7) * 2;
  xa = g_memdup2 (x, n * a->d_in * sizeof (float));
  xb = g_memdup2 (x, n * a->d_in * sizeof (float));
  gb_sae_preprocess (a, xa, n, NULL);
  gb_sae_preprocess (b, xb, n, NULL);
  gb_sae_encode (a, za, xa, n);
  gb_sae_encode (b, zb, xb, n);
  g_assert_cmpmem (za, n * a->d_sae * sizeof (float), zb, n * b->d_sae * sizeof (float));
}

static void
test_round_trip (void)
{
  const GbSaeKind kinds[] = { GB_SAE_STANDARD, GB_SAE_TOPK, GB_SAE_JUMPRELU };
  for (guint c = 0; c < G_N_ELEMENTS (kinds); c++)
    {
      g_autofree char *dir = gb_test_tmp_path ("sae", NULL);
      g_autoptr (GbSae) sae = random_sae (kinds[c], 12, 40, 5, 10 + c);
      g_autoptr (GError) error = NULL;
      sae->hook = c == 0 ? GB_HOOK_RESID_PRE : GB_HOOK_MLP_OUT;
      sae->center = c == 1;
      sae->apply_b_dec_to_input = c != 2;
      if (c == 1)
        {
          sae->norm_mean = g_new (float, 12);
          sae->norm_std = g_new (float, 12);
          for (guint i = 0; i < 12; i++)
            sae->norm_mean[i] = 0.1f * i, sae->norm_std[i] = 1 + 0.05f * i;
        }
      sae->explained_variance = 0.75;
      g_assert_true (gb_sae_save (sae, dir, &error));
      g_assert_no_error (error);
      g_autoptr (GbSae) back = gb_sae_load (dir, &error);
      g_assert_no_error (error);
      g_assert_cmpint (back->kind, ==, kinds[c]);
      g_assert_cmpuint (back->k, ==, kinds[c] == GB_SAE_TOPK ? 5 : 0);
      g_assert_cmpint (back->hook, ==, sae->hook);
      g_assert_cmpuint (back->layer, ==, 1);
      g_assert_cmpint (back->center, ==, sae->center);
      g_assert_cmpint (back->apply_b_dec_to_input, ==, sae->apply_b_dec_to_input);
      g_assert_cmpint (back->norm_mean != NULL, ==, c == 1);
      g_assert_cmpfloat (back->explained_variance, ==, 0.75);
      g_assert_cmpmem (back->W_enc, 12 * 40 * 4, sae->W_enc, 12 * 40 * 4);
      g_assert_cmpmem (back->W_dec, 12 * 40 * 4, sae->W_dec, 12 * 40 * 4);
      assert_same_encoding (sae, back);
      /* No temporary files left behind. */
      g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
      const char *name;
      while ((name = g_dir_read_name (d)) != NULL)
        g_assert_false (g_str_has_prefix (name, ".") || g_str_has_suffix (name, ".tmp"));
    }
}

static void
test_encode_kinds (void)
{
  /* One token, 4 latents, identity-like encoder: pre = x + b_enc. */
  const float x[4] = { 0.5f, -1.0f, 2.0f, 0.1f };
  const GbSaeKind kinds[] = { GB_SAE_STANDARD, GB_SAE_TOPK, GB_SAE_JUMPRELU };
  const float want[3][4] = { { 0.5f, 0, 2.0f, 0.1f }, { 0.5f, 0, 2.0f, 0 }, { 0.5f, 0, 2.0f, 0 } };
  for (guint c = 0; c < 3; c++)
    {
      g_autoptr (GbSae) sae = gb_sae_new (kinds[c], 4, 4, 2);
      sae->apply_b_dec_to_input = FALSE;
      for (guint i = 0; i < 4; i++)
        sae->W_enc[i * 4 + i] = 1;
      if (sae->threshold)
        for (guint j = 0; j < 4; j++)
          sae->threshold[j] = 0.3f;
      float z[4];
      gb_sae_encode (sae, z, x, 1);
      g_assert_cmpmem (z, sizeof z, want[c], sizeof z);
    }
}

static void
write_text (const char *dir,
            const char *name,
            const char *text,
            gssize      len)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_file_set_contents (path, text, len, &error);
  g_assert_no_error (error);
}

static void
test_older_cfg (void)
{
  /* SAELens before v6, as gpt2-small-res-jb ships it. */
  g_autofree char *dir = gb_test_tmp_path ("jb", NULL);
  g_autoptr (GbSae) sae = random_sae (GB_SAE_STANDARD, 8, 16, 0, 4);
  g_autoptr (GError) error = NULL;
  g_assert_true (gb_sae_save (sae, dir, &error));
  write_text (dir, "cfg.json",
              "{\"d_in\": 8, \"d_sae\": 16, \"hook_point\": \"blocks.2.hook_resid_pre\", \"hook_layer\": 2,"
              " \"model_name\": \"gpt2-small\", \"apply_b_dec_to_input\": true, \"normalize_activations\": false,"
              " \"activation_fn_str\": \"relu\", \"dtype\": \"torch.float32\"}", -1);
  g_autoptr (GbSae) a = gb_sae_load (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (a->kind, ==, GB_SAE_STANDARD);
  /* jbloom/GPT2-Small-SAEs-Reformatted: hook_point_layer, width as expansion_factor. */
  write_text (dir, "cfg.json",
              "{\"model_name\": \"gpt2-small\", \"hook_point\": \"blocks.2.hook_resid_pre\", \"hook_point_layer\": 2,"
              " \"hook_point_head_index\": null, \"d_in\": 8, \"expansion_factor\": 2, \"dtype\": \"torch.float32\","
              " \"l1_coefficient\": 8e-05, \"device\": \"mps\"}", -1);
  g_autoptr (GbSae) jb = gb_sae_load (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (jb->d_sae, ==, 16);
  g_assert_cmpuint (jb->layer, ==, 2);
  write_text (dir, "cfg.json",
              "{\"hook_point\": \"blocks.2.hook_resid_pre\", \"hook_point_layer\": 5, \"d_in\": 8, \"d_sae\": 16}", -1);
  g_assert_null (gb_sae_load (dir, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_FORMAT);
  g_clear_error (&error);
  g_assert_cmpint (a->hook, ==, GB_HOOK_RESID_PRE);
  g_assert_cmpuint (a->layer, ==, 2);
  g_assert_cmpstr (a->model_name, ==, "gpt2-small");
  write_text (dir, "cfg.json",
              "{\"d_in\": 8, \"d_sae\": 16, \"hook_name\": \"blocks.0.hook_mlp_out\", \"activation_fn_str\": \"topk\","
              " \"activation_fn_kwargs\": {\"k\": 4}, \"normalize_activations\": \"none\"}", -1);
  g_autoptr (GbSae) b = gb_sae_load (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (b->kind, ==, GB_SAE_TOPK);
  g_assert_cmpuint (b->k, ==, 4);
  g_assert_cmpint (b->hook, ==, GB_HOOK_MLP_OUT);
  g_assert_true (b->apply_b_dec_to_input);
}

typedef struct
{
  const char *name;
  const char *cfg;      /* NULL: keep the valid one */
  const char *weights;  /* "missing", "truncated", "nan", "shape", "no-b_dec", "i32", "no-cfg" or NULL */
  GbErrorCode code;
  const char *needle;   /* in the message */
} Hostile;

static const Hostile hostile[] = {
  { "cfg.json missing", NULL, "no-cfg", GB_ERROR_MISSING, "cfg.json" },
  { "cfg.json not JSON", "{\"d_in\": 8,", NULL, GB_ERROR_FORMAT, "not valid JSON" },
  { "cfg.json an array", "[1, 2]", NULL, GB_ERROR_FORMAT, "expected a JSON object" },
  { "d_in missing", "{\"d_sae\": 16, \"hook_name\": \"blocks.1.hook_resid_post\"}", NULL, GB_ERROR_MISSING, "“d_in”" },
  { "d_in negative", "{\"d_in\": -8, \"d_sae\": 16, \"hook_name\": \"blocks.1.hook_resid_post\"}", NULL, GB_ERROR_FORMAT, "“d_in”" },
  { "d_sae a string", "{\"d_in\": 8, \"d_sae\": \"16\", \"hook_name\": \"blocks.1.hook_resid_post\"}", NULL, GB_ERROR_FORMAT, "“d_sae”" },
  { "d_sae huge", "{\"d_in\": 8, \"d_sae\": 2000000000, \"hook_name\": \"blocks.1.hook_resid_post\"}", NULL, GB_ERROR_LIMIT, "limit" },
  { "gated architecture", "{\"d_in\": 8, \"d_sae\": 16, \"architecture\": \"gated\", \"hook_name\": \"blocks.1.hook_resid_post\"}", NULL, GB_ERROR_UNSUPPORTED, "gated" },
  { "topk without k", "{\"d_in\": 8, \"d_sae\": 16, \"architecture\": \"topk\", \"hook_name\": \"blocks.1.hook_resid_post\"}", NULL, GB_ERROR_MISSING, "k" },
  { "k over d_sae", "{\"d_in\": 8, \"d_sae\": 16, \"architecture\": \"topk\", \"k\": 17, \"hook_name\": \"blocks.1.hook_resid_post\"}", NULL, GB_ERROR_FORMAT, "k 17" },
  { "no hook", "{\"d_in\": 8, \"d_sae\": 16}", NULL, GB_ERROR_MISSING, "hook" },
  { "unknown hook", "{\"d_in\": 8, \"d_sae\": 16, \"hook_name\": \"blocks.1.attn.hook_q\"}", NULL, GB_ERROR_UNSUPPORTED, "blocks.1.attn.hook_q" },
  { "hook_layer disagrees", "{\"d_in\": 8, \"d_sae\": 16, \"hook_point\": \"blocks.1.hook_resid_post\", \"hook_layer\": 3}", NULL, GB_ERROR_FORMAT, "hook_layer" },
  { "layer_norm normalisation", "{\"d_in\": 8, \"d_sae\": 16, \"normalize_activations\": \"layer_norm\", \"hook_name\": \"blocks.1.hook_resid_post\"}", NULL, GB_ERROR_UNSUPPORTED, "layer_norm" },
  { "weights missing", NULL, "missing", GB_ERROR_MISSING, "sae_weights.safetensors" },
  { "weights truncated", NULL, "truncated", GB_ERROR_FORMAT, "sae_weights.safetensors" },
  { "W_enc of another shape", NULL, "shape", GB_ERROR_SHAPE, "“W_enc” has shape [8, 12], expected [8, 16]" },
  { "b_dec missing", NULL, "no-b_dec", GB_ERROR_MISSING, "“b_dec” is missing" },
  { "NaN in W_dec", NULL, "nan", GB_ERROR_INVALID_DATA, "“W_dec” holds a NaN" },
  { "integer weights", NULL, "i32", GB_ERROR_UNSUPPORTED, "dtype" },
  { "jumprelu without threshold", "{\"d_in\": 8, \"d_sae\": 16, \"architecture\": \"jumprelu\", \"metadata\": {\"hook_name\": \"blocks.1.hook_resid_post\"}}", NULL, GB_ERROR_MISSING, "“threshold”" },
};

static void
test_hostile (void)
{
  for (guint c = 0; c < G_N_ELEMENTS (hostile); c++)
    {
      const Hostile *h = &hostile[c];
      g_autofree char *dir = gb_test_tmp_path ("bad", NULL);
      g_autoptr (GbSae) sae = random_sae (GB_SAE_STANDARD, 8, 16, 0, 1);
      g_autoptr (GError) error = NULL;
      g_assert_true (gb_sae_save (sae, dir, &error));
      g_autofree char *w = g_build_filename (dir, "sae_weights.safetensors", NULL);
      g_autofree char *cfg = g_build_filename (dir, "cfg.json", NULL);
      if (h->cfg)
        write_text (dir, "cfg.json", h->cfg, -1);
      if (g_strcmp0 (h->weights, "no-cfg") == 0)
        g_remove (cfg);
      else if (g_strcmp0 (h->weights, "missing") == 0)
        g_remove (w);
      else if (g_strcmp0 (h->weights, "truncated") == 0)
        {
          g_autofree char *data = NULL;
          gsize len;
          g_file_get_contents (w, &data, &len, NULL);
          write_text (dir, "sae_weights.safetensors", data, (gssize) len / 2);
        }
      else if (h->weights != NULL)
        {
          g_autofree float *we = g_new0 (float, 8 * 16), *wd = g_new0 (float, 16 * 8), *be = g_new0 (float, 16),
                           *bd = g_new0 (float, 8);
          GbTensorOut t[4] = {
            { "W_enc", 2, { 8, g_str_equal (h->weights, "shape") ? 12 : 16 }, we },
            { "W_dec", 2, { 16, 8 }, wd }, { "b_enc", 1, { 16 }, be }, { "b_dec", 1, { 8 }, bd },
          };
          if (g_str_equal (h->weights, "nan"))
            wd[37] = NAN;
          g_assert_true (gb_safetensors_write (w, t, g_str_equal (h->weights, "no-b_dec") ? 3 : 4, GB_DTYPE_F32, NULL, &error));
          if (g_str_equal (h->weights, "i32"))
            {
              /* Rewrite the header's dtypes: same sizes, integer type. */
              g_autofree char *data = NULL;
              gsize len;
              g_file_get_contents (w, &data, &len, NULL);
              for (char *p = data; (p = memmem (p, len - (gsize) (p - data), "\"F32\"", 5)) != NULL; p++)
                memcpy (p, "\"I32\"", 5);
              write_text (dir, "sae_weights.safetensors", data, (gssize) len);
            }
        }
      g_autoptr (GbSae) got = gb_sae_load (dir, &error);
      g_test_message ("%s: %s", h->name, error ? error->message : "(loaded)");
      g_assert_null (got);
      g_assert_error (error, GB_ERROR, (gint) h->code);
      g_assert_nonnull (strstr (error->message, h->needle));
      g_assert_nonnull (strstr (error->message, dir));
    }
  g_autoptr (GError) error = NULL;
  g_assert_null (gb_sae_load ("/nonexistent/sae", &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_MISSING);
}

/* ---- Corpora ---- */

static GPtrArray *
read_docs (const char *path,
           GError    **error)
{
  g_autoptr (GbCorpus) c = gb_corpus_open (path, error);
  if (c == NULL)
    return NULL;
  GPtrArray *docs = g_ptr_array_new_with_free_func (g_free);
  char *d;
  while ((d = gb_corpus_next (c, error)) != NULL)
    g_ptr_array_add (docs, d);
  if (error && *error)
    g_clear_pointer (&docs, g_ptr_array_unref);
  return docs;
}

static void
test_corpus (void)
{
  g_autofree char *dir = gb_test_tmp_path ("corpus", NULL);
  g_autoptr (GError) error = NULL;
  g_mkdir_with_parents (dir, 0755);
  write_text (dir, "sep.txt", "<|endoftext|>\nfirst line\nsecond line\n<|endoftext|>\n\n<|endoftext|>\nthird\n", -1);
  write_text (dir, "lines.txt", "one\n\ntwo\r\nthree", -1);
  write_text (dir, "docs.jsonl", "{\"text\": \"alpha\", \"id\": 1}\n\n{\"text\": \"beta\\nline\"}\n", -1);
  write_text (dir, "bad.jsonl", "{\"text\": \"alpha\"}\n{\"title\": \"no text\"}\n", -1);
  write_text (dir, "broken.jsonl", "{\"text\": \"alpha\"}\n{\"text\": \n", -1);
  write_text (dir, "utf8.txt", "fine\nbad \xff byte\n", -1);
  write_text (dir, "empty.txt", "", 0);

  struct { const char *file; const char *joined; } ok[] = {
    { "sep.txt", "first line\nsecond line|third" },
    { "lines.txt", "one|two|three" },
    { "docs.jsonl", "alpha|beta\nline" },
    { "empty.txt", "" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      g_autofree char *path = g_build_filename (dir, ok[i].file, NULL);
      g_autoptr (GPtrArray) docs = read_docs (path, &error);
      g_assert_no_error (error);
      g_ptr_array_add (docs, NULL);
      g_autofree char *joined = g_strjoinv ("|", (char **) docs->pdata);
      g_assert_cmpstr (joined, ==, ok[i].joined);
    }
  struct { const char *file; GbErrorCode code; const char *needle; } bad[] = {
    { "bad.jsonl", GB_ERROR_FORMAT, "line 2: expected an object with a “text” string" },
    { "broken.jsonl", GB_ERROR_FORMAT, "line 2: not valid JSON" },
    { "utf8.txt", GB_ERROR_INVALID_DATA, "line 2: invalid UTF-8 at byte 4" },
    { "missing.txt", GB_ERROR_MISSING, "missing.txt" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *path = g_build_filename (dir, bad[i].file, NULL);
      g_autoptr (GPtrArray) docs = read_docs (path, &error);
      g_assert_null (docs);
      g_assert_error (error, GB_ERROR, (gint) bad[i].code);
      g_assert_nonnull (strstr (error->message, bad[i].needle));
      g_assert_nonnull (strstr (error->message, bad[i].file));
      g_clear_error (&error);
    }
}

/* ---- On a model ---- */

static char *
write_corpus (void)
{
  g_autofree char *dir = gb_test_tmp_path ("text", NULL);
  GString *s = g_string_new (NULL);
  g_mkdir_with_parents (dir, 0755);
  for (guint i = 0; i < 60; i++)
    g_string_append_printf (s, "Applicant %u lives in zip %u and asks for $%u,000. Decision: %s\n", i, 40100 + i % 7,
                            3 + i % 11, i % 3 ? "approved" : "rejected");
  char *path = g_build_filename (dir, "corpus.txt", NULL);
  g_file_set_contents (path, s->str, -1, NULL);
  g_string_free (s, TRUE);
  return path;
}

typedef struct
{
  GCancellable *cancel;
  guint64       cancel_at;
  guint         n_reports;
  double        last_l0;
} ProgressLog;

static void
progress_cb (const GbSaeProgress *p,
             gpointer             data)
{
  ProgressLog *log = data;
  log->n_reports++;
  if (g_str_equal (p->phase, "training"))
    {
      g_assert_cmpfloat (p->loss, >=, 0);
      g_assert_true (isfinite (p->loss));
      g_assert_cmpfloat (p->dead_fraction, >=, 0);
      g_assert_cmpfloat (p->dead_fraction, <=, 1);
      log->last_l0 = p->l0;
      if (log->cancel && p->step >= log->cancel_at)
        g_cancellable_cancel (log->cancel);
    }
}

static void
test_train_on_model (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (model_dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *corpus = write_corpus ();
  g_autofree char *out = gb_test_tmp_path ("trained", NULL);
  GbSaeRunOptions o;
  gb_sae_run_options_init (&o);
  o.layer = 1;
  o.hook = GB_HOOK_RESID_PRE;
  o.train.d_sae = 64;
  o.train.k = 4;
  o.train.batch_size = 64;
  o.n_tokens = 64 * 30;
  o.buffer_tokens = 512;
  o.heldout_tokens = 300;
  o.corpus_path = corpus;
  o.output_dir = out;

  /* Cancelled after 10 steps: a resumable checkpoint is left. */
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  ProgressLog log = { cancel, 10, 0, 0 };
  g_autoptr (GbSae) none = gb_sae_train_on_model (model, &o, progress_cb, &log, cancel, &error);
  g_assert_null (none);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_autofree char *state = g_build_filename (out, "trainer_state.safetensors", NULL);
  g_assert_true (g_file_test (state, G_FILE_TEST_EXISTS));
  g_autoptr (GbSae) partial = gb_sae_load (out, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (partial->trained_tokens, ==, 64 * 10);

  /* Resumed to the end. */
  o.resume = TRUE;
  ProgressLog log2 = { NULL, 0, 0, 0 };
  g_autoptr (GbSae) sae = gb_sae_train_on_model (model, &o, progress_cb, &log2, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (sae);
  g_assert_cmpuint (sae->trained_tokens, ==, 64 * 30);
  g_assert_cmpfloat (log2.last_l0, <=, 4);
  g_assert_true (isfinite (sae->explained_variance));
  g_assert_true (isfinite (sae->loss_increase));
  g_assert_cmpfloat (sae->mean_l0, <=, 4);
  g_assert_nonnull (sae->norm_mean);
  g_autoptr (GbSae) back = gb_sae_load (out, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (back->explained_variance, ==, sae->explained_variance);
  g_assert_cmpuint (back->trained_tokens, ==, 64 * 30);

  /* The metrics agree with gb_sae_evaluate's. */
  GbSaeMetrics m;
  g_assert_true (gb_sae_evaluate (model, back, corpus, 300, &m, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (isfinite (m.explained_variance) && m.mean_l0 <= 4 && m.dead_fraction >= 0);

  /* Bad arguments and corpora. */
  o.resume = FALSE;
  o.train.k = 65;
  g_assert_null (gb_sae_train_on_model (model, &o, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);
  o.train.k = 4;
  g_autofree char *empty = gb_test_tmp_path ("empty.txt", NULL);
  g_file_set_contents (empty, "\n\n", -1, NULL);
  o.corpus_path = empty;
  g_assert_null (gb_sae_train_on_model (model, &o, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "empty.txt"));
}

static void
test_lossless_splice (void)
{
  /* z = [ReLU(x), ReLU(-x)], x^ = z [I; -I] = x: splicing changes nothing. */
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (model_dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  const guint d = gb_model_get_config (model)->n_embd;
  g_autoptr (GbSae) sae = gb_sae_new (GB_SAE_STANDARD, d, 2 * d, 0);
  sae->apply_b_dec_to_input = FALSE;
  sae->hook = GB_HOOK_RESID_MID;
  sae->layer = 1;
  for (guint i = 0; i < d; i++)
    {
      sae->W_enc[i * 2 * d + i] = 1;
      sae->W_enc[i * 2 * d + d + i] = -1;
      sae->W_dec[i * d + i] = 1;
      sae->W_dec[(d + i) * d + i] = -1;
    }
  const gint32 tokens[] = { 256, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100 };
  double clean, spliced;
  g_assert_true (gb_sae_splice_loss (model, sae, tokens, G_N_ELEMENTS (tokens), &clean, &spliced, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (clean, spliced, 1e-6);
  /* A zero decoder destroys the stream: the loss must change. */
  memset (sae->W_dec, 0, (gsize) 2 * d * d * sizeof (float));
  g_assert_true (gb_sae_splice_loss (model, sae, tokens, G_N_ELEMENTS (tokens), &clean, &spliced, &error));
  g_assert_cmpfloat (fabs (spliced - clean), >, 1e-3);
  /* Mismatched width. */
  g_autoptr (GbSae) wrong = gb_sae_new (GB_SAE_STANDARD, d + 1, 4, 0);
  g_assert_false (gb_sae_splice_loss (model, wrong, tokens, G_N_ELEMENTS (tokens), &clean, &spliced, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_SHAPE);
}

static void
test_analysis (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (model_dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *corpus = write_corpus ();
  const guint d = gb_model_get_config (model)->n_embd;
  g_autoptr (GbSae) sae = random_sae (GB_SAE_TOPK, d, 48, 6, 7);
  g_autoptr (GbSaeAnalysis) a = gb_sae_analyze (model, sae, corpus, 1000, 5, 4, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (a->n_tokens, ==, 1000);
  guint64 total = 0;
  for (guint j = 0; j < a->n_features; j++)
    {
      const GbSaeFeature *f = &a->features[j];
      guint64 h = 0;
      for (guint b = 0; b < GB_SAE_HIST_BINS; b++)
        h += f->hist[b];
      g_assert_cmpuint (h, ==, f->n_fired);
      total += f->n_fired;
      g_assert_cmpuint (f->top->len, <=, 5);
      for (guint i = 0; i < f->top->len; i++)
        {
          const GbSaeContext *c = f->top->pdata[i];
          g_assert_cmpfloat (c->acts[c->peak], ==, c->value);
          g_assert_cmpfloat (c->value, <=, f->max_act);
          g_assert_cmpuint (c->n, <=, 9);
          if (i == 0)
            g_assert_cmpfloat (c->value, ==, f->max_act);
          else
            g_assert_cmpfloat (c->value, <=, ((GbSaeContext *) f->top->pdata[i - 1])->value);
        }
      if (f->n_fired > 0)
        {
          g_assert_cmpint (f->promoted[0], >=, 0);
          g_assert_cmpfloat (f->promoted_logit[0], >=, f->promoted_logit[9]);
          g_assert_cmpfloat (f->suppressed_logit[0], <=, f->suppressed_logit[9]);
          g_assert_cmpfloat (f->promoted_logit[9], >=, f->suppressed_logit[9]);
        }
    }
  g_assert_cmpuint (total, <=, 1000 * 6);
  g_assert_cmpuint (total, >, 0);

  /* Logit effects against a naive product with the (tied) unembedding. */
  g_autofree char *weights = g_build_filename (model_dir, "model.safetensors", NULL);
  g_autoptr (GbSafetensors) st = gb_safetensors_open (weights, &error);
  g_assert_no_error (error);
  const GbTensorView *wte = gb_safetensors_lookup (st, "transformer.wte.weight");
  if (wte == NULL)
    wte = gb_safetensors_lookup (st, "wte.weight");
  g_assert_nonnull (wte);
  g_assert_cmpint (wte->dtype, ==, GB_DTYPE_F32);
  const guint V = (guint) wte->shape[0];
  for (guint j = 0; j < a->n_features; j += 7)
    {
      double best = -G_MAXDOUBLE, worst = G_MAXDOUBLE;
      gint32 best_id = -1, worst_id = -1;
      for (guint v = 0; v < V; v++)
        {
          double dot = 0;
          for (guint i = 0; i < d; i++)
            {
              float w;
              memcpy (&w, wte->data + ((gsize) v * d + i) * 4, 4);
              dot += (double) w * sae->W_dec[j * d + i];
            }
          if (dot > best)
            best = dot, best_id = (gint32) v;
          if (dot < worst)
            worst = dot, worst_id = (gint32) v;
        }
      const GbSaeFeature *f = &a->features[j];
      g_assert_cmpint (f->promoted[0], ==, best_id);
      g_assert_cmpint (f->suppressed[0], ==, worst_id);
      g_assert_cmpfloat_with_epsilon (f->promoted_logit[0], best, 1e-4 * (1 + fabs (best)));
      g_assert_cmpfloat_with_epsilon (f->suppressed_logit[0], worst, 1e-4 * (1 + fabs (worst)));
      gint32 p[10], q[10];
      float pl[10], ql[10];
      gb_sae_logit_effects (model, sae, j, p, pl, q, ql);
      g_assert_cmpmem (p, sizeof p, f->promoted, sizeof p);
      g_assert_cmpmem (q, sizeof q, f->suppressed, sizeof q);
    }

  g_autofree char *cache = gb_test_tmp_path ("features.json", NULL);
  g_assert_true (gb_sae_analysis_save (a, cache, "key-1", &error));
  g_assert_no_error (error);
  g_autoptr (GbSaeAnalysis) b = gb_sae_analysis_load (cache, "key-1", &error);
  g_assert_no_error (error);
  g_assert_nonnull (b);
  g_assert_cmpuint (b->n_features, ==, a->n_features);
  for (guint j = 0; j < a->n_features; j++)
    {
      g_assert_cmpuint (b->features[j].n_fired, ==, a->features[j].n_fired);
      g_assert_cmpuint (b->features[j].top->len, ==, a->features[j].top->len);
      g_assert_cmpstr (b->features[j].label, ==, a->features[j].label);
    }
  /* Another key (other weights or corpus): no cache, no error. */
  g_autoptr (GbSaeAnalysis) c = gb_sae_analysis_load (cache, "key-2", &error);
  g_assert_no_error (error);
  g_assert_null (c);
  g_file_set_contents (cache, "{\"key\": \"key-1\", \"features\": 3}", -1, NULL);
  g_assert_null (gb_sae_analysis_load (cache, "key-1", &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_FORMAT);
  g_clear_error (&error);
  /* Features out of order, or an index past the array (views index the
   * features by latent), and counts past any integer: refused or clamped,
   * never read out of bounds or converted with undefined behaviour. */
  const char *bad_caches[] = {
    "{\"key\": \"key-1\", \"metrics\": {}, \"features\": [{\"index\": 5000}]}",
    "{\"key\": \"key-1\", \"metrics\": {}, \"features\": [{\"index\": 1}, {\"index\": 0}]}",
    "{\"key\": \"key-1\", \"metrics\": {}, \"features\": [{\"index\": 1e51}]}",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad_caches); i++)
    {
      g_file_set_contents (cache, bad_caches[i], -1, NULL);
      g_assert_null (gb_sae_analysis_load (cache, "key-1", &error));
      g_assert_error (error, GB_ERROR, GB_ERROR_FORMAT);
      g_clear_error (&error);
    }
  g_file_set_contents (cache,
                       "{\"key\": \"key-1\", \"n_tokens\": 1e51, \"context_radius\": -3, \"metrics\": {},"
                       " \"features\": [{\"index\": 0, \"n_fired\": 1e300}]}", -1, NULL);
  g_autoptr (GbSaeAnalysis) clamped = gb_sae_analysis_load (cache, "key-1", &error);
  g_assert_no_error (error);
  g_assert_nonnull (clamped);
  g_assert_cmpuint (clamped->n_tokens, ==, G_MAXUINT64);
  g_assert_cmpuint (clamped->context_radius, ==, 0);
  g_assert_cmpuint (clamped->features[0].n_fired, ==, G_MAXUINT64);
}

/* The feature cache's key follows the contents of the weights and the
 * corpus, not their modification times: a cache shipped beside the bundled
 * SAE stays valid after a clone, and goes stale when the weights change. */
static void
test_analysis_key (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *corpus = g_build_filename (dir, "corpus.txt", NULL);
  g_autofree char *sae_dir = g_build_filename (dir, "sae", NULL);
  g_autofree char *weights = g_build_filename (sae_dir, "sae_weights.safetensors", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GbSae) sae = gb_sae_new (GB_SAE_TOPK, 4, 8, 2);

  g_assert_true (g_file_set_contents (corpus, "some text\n", -1, NULL));
  g_assert_true (gb_sae_save (sae, sae_dir, &error));
  g_autoptr (GbSae) loaded = gb_sae_load (sae_dir, &error);
  g_assert_no_error (error);
  g_autofree char *key = gb_sae_analysis_key (loaded, corpus, 1000);
  g_assert_true (g_str_has_prefix (key, "v3 w:"));

  /* Touched (as a clone does): the same key. */
  g_assert_cmpint (g_utime (weights, &(struct utimbuf) { 1, 1 }), ==, 0);
  g_assert_cmpint (g_utime (corpus, &(struct utimbuf) { 1, 1 }), ==, 0);
  g_autofree char *touched = gb_sae_analysis_key (loaded, corpus, 1000);
  g_assert_cmpstr (touched, ==, key);

  /* Other weights, another corpus, another budget: other keys. */
  g_autofree char *budget = gb_sae_analysis_key (loaded, corpus, 2000);
  g_assert_cmpstr (budget, !=, key);
  g_assert_true (g_file_set_contents (corpus, "other text\n", -1, NULL));
  g_autofree char *other_corpus = gb_sae_analysis_key (loaded, corpus, 1000);
  g_assert_cmpstr (other_corpus, !=, key);
  sae->b_dec[0] = 1;
  g_assert_true (gb_sae_save (sae, sae_dir, &error));
  /* The loaded SAE keeps the weights it read, and their hash; loading the
   * new ones gives a new key. */
  g_autofree char *kept = gb_sae_analysis_key (loaded, corpus, 1000);
  g_assert_cmpstr (kept, ==, other_corpus);
  g_autoptr (GbSae) reloaded = gb_sae_load (sae_dir, &error);
  g_assert_no_error (error);
  g_autofree char *other_weights = gb_sae_analysis_key (reloaded, corpus, 1000);
  g_assert_cmpstr (other_weights, !=, other_corpus);
}

/* The sparse kernels against the dense products at a size where the worker
 * pool splits them (rows of x^, ranges of latents), on two threads, for the
 * L1 and TopK kinds, with b_dec applied to the input. */
static void
test_sparse_matches_dense (void)
{
  const guint di = 96, ds = 384, B = 256;
  const int threads = gb_blas_get_threads ();
  g_autoptr (GRand) rng = g_rand_new_with_seed (21);
  g_autofree float *x = g_new (float, B * di);
  for (guint i = 0; i < B * di; i++)
    x[i] = (float) g_rand_double_range (rng, -1, 1);

  gb_blas_set_threads (2);
  for (guint kind = 0; kind < 2; kind++)
    {
      float *g[2][4];
      GbSaeStepStats st[2];
      for (guint sparse = 0; sparse < 2; sparse++)
        {
          GbSae *sae = random_sae (kind ? GB_SAE_TOPK : GB_SAE_STANDARD, di, ds, 12, 5);
          sae->apply_b_dec_to_input = TRUE;
          GbSaeTrainOptions o;
          gb_sae_train_options_init (&o);
          o.l1 = 0.3;
          o.sparse_below = sparse ? 1.0 : 0.0;
          g_autoptr (GbSaeTrainer) tr = gb_sae_trainer_new (sae, &o);
          g[sparse][0] = g_new (float, di * ds);
          g[sparse][1] = g_new (float, ds * di);
          g[sparse][2] = g_new (float, ds);
          g[sparse][3] = g_new (float, di);
          gb_sae_trainer_gradients (tr, x, B, &st[sparse], g[sparse][0], g[sparse][1], g[sparse][2], g[sparse][3]);
        }
      g_assert_cmpfloat (fabs (st[0].loss - st[1].loss), <, 1e-5 * (1 + fabs (st[0].loss)));
      g_assert_cmpfloat (st[0].l0, ==, st[1].l0);
      g_assert_cmpfloat (st[0].l0, >, 0);
      const gsize sizes[4] = { di * ds, ds * di, ds, di };
      for (guint t = 0; t < 4; t++)
        {
          double num = 0, den = 0;
          for (gsize i = 0; i < sizes[t]; i++)
            {
              num = MAX (num, fabs ((double) g[0][t][i] - g[1][t][i]));
              den = MAX (den, fabs ((double) g[0][t][i]));
            }
          if (num > 1e-5 * den)
            g_error ("kind %u gradient %u: sparse and dense differ by %g (largest %g)", kind, t, num, den);
          g_free (g[0][t]);
          g_free (g[1][t]);
        }
    }
  gb_blas_set_threads (threads);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  model_dir = gb_test_tmp_path ("model", NULL);
  gb_test_write_model (model_dir, 2, 2, 16, 32, FALSE, 5);
  g_test_add_func ("/engine/sae/encode-kinds", test_encode_kinds);
  g_test_add_func ("/engine/sae/planted/topk", test_planted_topk);
  g_test_add_func ("/engine/sae/planted/l1", test_planted_l1);
  g_test_add_func ("/engine/sae/resample", test_resample);
  g_test_add_func ("/engine/sae/sparse-matches-dense", test_sparse_matches_dense);
  g_test_add_func ("/engine/sae/files/round-trip", test_round_trip);
  g_test_add_func ("/engine/sae/files/older-cfg", test_older_cfg);
  g_test_add_func ("/engine/sae/files/hostile", test_hostile);
  g_test_add_func ("/engine/sae/corpus", test_corpus);
  g_test_add_func ("/engine/sae/train-on-model", test_train_on_model);
  g_test_add_func ("/engine/sae/splice/lossless", test_lossless_splice);
  g_test_add_func ("/engine/sae/analysis", test_analysis);
  g_test_add_func ("/engine/sae/analysis-key", test_analysis_key);
  int status = g_test_run ();
  g_free (model_dir);
  return status;
}
