/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* Steering: pair sets (and their bad inputs), training against a float64
 * recomputation from the engine's own traces, the held-out scores, applying
 * (multiplier 0 = baseline; cached = full recompute, token by token), our
 * JSON and the llama.cpp control-vector GGUF (layout byte by byte, round
 * trip, every truncation refused). The float64 numpy oracle is
 * tests/reference/test_steer.py. */

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gb-test-util.h"

static GbModel *model;

#define N_LAYER 3
#define N_EMBD 16

static const char *const texts[][2] = {
  { "I love this sunny day", "I hate this rainy day" },
  { "What a lovely meal", "What an awful meal" },
  { "The staff were kind", "The staff were rude" },
  { "Great movie, loved it", "Bad movie, hated it" },
  { "Such a happy ending", "Such a sad ending" },
  { "This is wonderful", "This is terrible" },
  { "A pleasant surprise", "A nasty surprise" },
  { "We had fun", "We had pain" },
  { "Bright and cheerful", "Dark and gloomy" },
  { "Best trip ever", "Worst trip ever" },
};

static GbPairSet *
small_set (void)
{
  GbPairSet *set = gb_pair_set_new ("test", "small test set");
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    gb_pair_set_add (set, texts[i][0], texts[i][1]);
  return set;
}

static char *
write_text (const char *name,
            const char *data,
            gssize      len)
{
  char *path = gb_test_tmp_path (name, NULL);
  g_autoptr (GError) error = NULL;
  g_file_set_contents (path, data, len, &error);
  g_assert_no_error (error);
  return path;
}

/* ---- Pair sets ---- */

static void
test_pairs_parse (void)
{
  g_autoptr (GError) error = NULL;
  const char *json = "{\"name\": \"demo\", \"description\": \"d\", \"pairs\": ["
                     "{\"positive\": \"good\", \"negative\": \"bad\"},"
                     "{\"positive\": \"caf\\u00e9 ok\", \"negative\": \"no\"}]}";
  const char *jsonl = "{\"positive\": \"good\", \"negative\": \"bad\"}\n\n"
                      "{\"negative\": \"no\", \"positive\": \"café ok\"}\n";

  g_autoptr (GbPairSet) a = gb_pair_set_parse (json, -1, "a.json", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (a->name, ==, "demo");
  g_assert_cmpuint (gb_pair_set_get_n_pairs (a), ==, 2);
  g_assert_cmpstr (gb_pair_set_get (a, 1)->positive, ==, "café ok");

  g_autoptr (GbPairSet) b = gb_pair_set_parse (jsonl, -1, "/x/my-pairs.jsonl", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (b->name, ==, "my-pairs");
  g_assert_cmpuint (gb_pair_set_get_n_pairs (b), ==, 2);
  g_assert_cmpstr (gb_pair_set_get (b, 1)->negative, ==, "no");

  /* Same pairs, same hash; name and description do not count. */
  g_autofree char *ha = gb_pair_set_hash (a), *hb = gb_pair_set_hash (b);
  g_assert_cmpstr (ha, ==, hb);
  g_assert_true (g_str_has_prefix (ha, "sha256:") && strlen (ha) == 7 + 64);
  gb_pair_set_remove (b, 1);
  g_autofree char *hb2 = gb_pair_set_hash (b);
  g_assert_cmpstr (ha, !=, hb2);

  /* Save, load back. */
  g_autofree char *path = gb_test_tmp_path ("saved.json", NULL);
  g_assert_true (gb_pair_set_save (a, path, &error));
  g_autoptr (GbPairSet) c = gb_pair_set_load (path, &error);
  g_assert_no_error (error);
  g_autofree char *hc = gb_pair_set_hash (c);
  g_assert_cmpstr (ha, ==, hc);
  g_assert_cmpstr (c->description, ==, "d");
}

static void
test_pairs_bad (void)
{
  static const struct
  {
    const char *data;
    int         len;
    GbErrorCode code;
    const char *says;
  } cases[] = {
    { "", -1, GB_ERROR_FORMAT, "empty" },
    { "hello there", -1, GB_ERROR_FORMAT, "not JSON" },
    { "{\"pairs\": [", -1, GB_ERROR_FORMAT, "not JSON" },
    { "{\"name\": \"x\"}", -1, GB_ERROR_FORMAT, "no \"pairs\"" },
    { "{\"pairs\": 3}", -1, GB_ERROR_FORMAT, "not an array" },
    { "{\"pairs\": []}", -1, GB_ERROR_INVALID_DATA, "no pairs" },
    { "[]", -1, GB_ERROR_INVALID_DATA, "no pairs" },
    { "{\"pairs\": [{\"positive\": \"a\"}]}", -1, GB_ERROR_FORMAT, "pair 1 has no \"negative\"" },
    { "{\"pairs\": [{\"positive\": \"a\", \"negative\": 4}]}", -1, GB_ERROR_FORMAT, "\"negative\" is not a string" },
    { "{\"pairs\": [{\"positive\": \"a\", \"negative\": \"b\"}, 7]}", -1, GB_ERROR_FORMAT, "pair 2 is not an object" },
    { "{\"pairs\": [{\"positive\": \"\", \"negative\": \"b\"}]}", -1, GB_ERROR_INVALID_DATA, "pair 1: the positive text is empty" },
    { "{\"pairs\": [{\"positive\": \"a\", \"negative\": \"  \\n\"}]}", -1, GB_ERROR_INVALID_DATA, "negative text is empty" },
    { "{\"positive\": \"a\", \"negative\": \"b\"}\n{\"positive\": \"c\"}\n", -1, GB_ERROR_FORMAT, "line 2 has no \"negative\"" },
    { "{\"positive\": \"a\", \"negative\": \"b\"}\nnot json\n", -1, GB_ERROR_FORMAT, "line 2 is not JSON" },
    { "{\"pairs\": [{\"positive\": \"a\xff\", \"negative\": \"b\"}]}", -1, GB_ERROR_INVALID_DATA, "not valid UTF-8 (byte 26)" },
    { "{\"pairs\": [{\"positive\": \"a\", \"negative\": \"b\"}]}\0x", 48, GB_ERROR_FORMAT, "NUL" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *path = write_text ("bad.json", cases[i].data, cases[i].len);
      g_autoptr (GbPairSet) set = gb_pair_set_load (path, &error);
      g_test_message ("case %u: %s", i, error ? error->message : "(no error)");
      g_assert_null (set);
      g_assert_error (error, GB_ERROR, (int) cases[i].code);
      g_assert_true (g_str_has_prefix (error->message, path));
      g_assert_nonnull (strstr (error->message, cases[i].says));
    }

  /* Over-long text. */
  g_autoptr (GbPairSet) big = gb_pair_set_new ("big", NULL);
  g_autofree char *huge = g_strnfill (GB_PAIR_MAX_BYTES + 1, 'a');
  gb_pair_set_add (big, "fine", huge);
  g_autoptr (GError) error = NULL;
  g_assert_false (gb_pair_set_validate (big, "big.json", &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
  g_assert_nonnull (strstr (error->message, "pair 1: the negative text"));

  /* A missing file names it. */
  g_clear_error (&error);
  g_assert_null (gb_pair_set_load ("/nonexistent/pairs.json", &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "/nonexistent/pairs.json"));
}

static void
test_bundled_sets (void)
{
  const char *names[] = { "sentiment.json", "formality.json", "zip-neutral-loans.json" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", "pairs", names[i], NULL);
      g_autoptr (GbPairSet) set = gb_pair_set_load (path, &error);
      g_assert_no_error (error);
      g_test_message ("%s: %u pairs", names[i], gb_pair_set_get_n_pairs (set));
      g_assert_cmpuint (gb_pair_set_get_n_pairs (set), >=, 50);
      g_assert_cmpstr (set->description, !=, "");
    }
}

/* ---- Training ---- */

/* Last-token (or @read_pos) block outputs of @text, from the engine's trace. */
static void
acts_of (const char *text,
         guint       layer,
         gint        read_pos,
         double     *out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), text, -1, FALSE, &error);
  g_assert_no_error (error);
  GbRecord rec = { .logits = GB_LOGITS_NONE };
  rec.hooks[GB_HOOK_RESID_POST] = GB_ALL_LAYERS;
  g_autoptr (GbTrace) t = gb_model_forward (model, (gint32 *) ids->data, ids->len, &rec, NULL, 0, NULL, &error);
  g_assert_no_error (error);
  guint pos = read_pos >= 0 ? (guint) read_pos : ids->len + read_pos;
  const float *row = gb_trace_get (t, GB_HOOK_RESID_POST, layer) + (gsize) pos * N_EMBD;
  for (guint j = 0; j < N_EMBD; j++)
    out[j] = row[j];
}

static double
rel_diff (const float  *a,
          const double *b,
          guint         n)
{
  double num = 0, den = 0;
  for (guint j = 0; j < n; j++)
    {
      num = MAX (num, fabs (a[j] - b[j]));
      den = MAX (den, fabs (b[j]));
    }
  return num / den;
}

static void
test_train_mean (void)
{
  g_autoptr (GbPairSet) set = small_set ();
  g_autoptr (GError) error = NULL;
  GbSteerParams params;

  for (gint read_pos = -1; read_pos >= -2; read_pos--)
    {
      gb_steer_params_init (&params);
      params.layers = 0x5; /* blocks 0 and 2 */
      params.read_pos = read_pos;
      params.holdout_every = 5; /* pairs 5 and 10 held out */
      g_autoptr (GbSteerVector) vec = gb_steer_train (model, set, &params, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (vec->n_layers, ==, 2);
      g_assert_cmpuint (vec->layers[0].layer, ==, 0);
      g_assert_cmpuint (vec->layers[1].layer, ==, 2);
      g_assert_cmpuint (vec->n_train, ==, 8);
      g_assert_cmpuint (vec->n_heldout, ==, 2);
      g_assert_cmpint (vec->read_pos, ==, read_pos);

      for (guint k = 0; k < 2; k++)
        {
          guint layer = vec->layers[k].layer;
          double mean[N_EMBD] = { 0 }, p[N_EMBD], n[N_EMBD];
          for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
            {
              if ((i + 1) % 5 == 0)
                continue;
              acts_of (texts[i][0], layer, read_pos, p);
              acts_of (texts[i][1], layer, read_pos, n);
              for (guint j = 0; j < N_EMBD; j++)
                mean[j] += (p[j] - n[j]) / 8;
            }
          double e = rel_diff (vec->layers[k].vector, mean, N_EMBD);
          g_test_message ("block %u read %d: mean difference vs recomputation %.3g", layer, read_pos, e);
          g_assert_cmpfloat (e, <=, 1e-6);
          g_assert_true (vec->layers[k].accuracy >= 0 && vec->layers[k].accuracy <= 1);
          g_assert_true (isfinite (vec->layers[k].gap));
        }
    }
}

static void
test_train_pca (void)
{
  g_autoptr (GbPairSet) set = small_set ();
  g_autoptr (GError) error = NULL;
  GbSteerParams params;

  gb_steer_params_init (&params);
  params.method = GB_STEER_PCA;
  params.layers = 0x2;
  params.holdout_every = 0;
  g_autoptr (GbSteerVector) vec = gb_steer_train (model, set, &params, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (isnan (vec->layers[0].accuracy)); /* nothing held out */

  /* The direction is an eigenvector of the centred differences' scatter
   * matrix with the largest eigenvalue: check S u = lambda u and that lambda
   * beats random directions; sign: most pairs project positive. */
  const guint m = G_N_ELEMENTS (texts);
  double d[G_N_ELEMENTS (texts)][N_EMBD], mu[N_EMBD] = { 0 }, u[N_EMBD], norm = 0;
  for (guint i = 0; i < m; i++)
    {
      double p[N_EMBD], n[N_EMBD];
      acts_of (texts[i][0], 1, -1, p);
      acts_of (texts[i][1], 1, -1, n);
      for (guint j = 0; j < N_EMBD; j++)
        {
          d[i][j] = p[j] - n[j];
          mu[j] += d[i][j] / m;
        }
    }
  for (guint j = 0; j < N_EMBD; j++)
    norm += (double) vec->layers[0].vector[j] * vec->layers[0].vector[j];
  norm = sqrt (norm);
  for (guint j = 0; j < N_EMBD; j++)
    u[j] = vec->layers[0].vector[j] / norm;
  double su[N_EMBD] = { 0 }, lambda = 0, along = 0;
  guint positive = 0;
  for (guint i = 0; i < m; i++)
    {
      double c = 0, proj = 0;
      for (guint j = 0; j < N_EMBD; j++)
        {
          c += (d[i][j] - mu[j]) * u[j];
          proj += d[i][j] * u[j];
        }
      for (guint j = 0; j < N_EMBD; j++)
        su[j] += c * (d[i][j] - mu[j]);
      positive += proj > 0;
      along += proj / m;
    }
  for (guint j = 0; j < N_EMBD; j++)
    lambda += su[j] * u[j];
  double resid = 0, su_norm = 0;
  for (guint j = 0; j < N_EMBD; j++)
    {
      resid = MAX (resid, fabs (su[j] - lambda * u[j]));
      su_norm = MAX (su_norm, fabs (su[j]));
    }
  g_test_message ("PCA: |S u - lambda u| / |S u| = %.3g, %u of %u pairs positive", resid / su_norm, positive, m);
  g_assert_cmpfloat (resid / su_norm, <=, 1e-5);
  g_assert_cmpuint (positive, >=, m - positive);
  /* Scaled to the mean projection. */
  g_assert_cmpfloat (fabs (norm - fabs (along)), <=, 1e-5 * norm);
  g_autoptr (GRand) rng = g_rand_new_with_seed (7);
  for (guint trial = 0; trial < 20; trial++)
    {
      double r[N_EMBD], rn = 0, var = 0;
      for (guint j = 0; j < N_EMBD; j++)
        {
          r[j] = g_rand_double_range (rng, -1, 1);
          rn += r[j] * r[j];
        }
      for (guint i = 0; i < m; i++)
        {
          double c = 0;
          for (guint j = 0; j < N_EMBD; j++)
            c += (d[i][j] - mu[j]) * r[j] / sqrt (rn);
          var += c * c;
        }
      g_assert_cmpfloat (var, <=, lambda * (1 + 1e-9));
    }
}

static void
test_train_errors (void)
{
  g_autoptr (GError) error = NULL;
  GbSteerParams params;
  gb_steer_params_init (&params);

  /* Identical texts: no direction. */
  g_autoptr (GbPairSet) same = gb_pair_set_new ("same", NULL);
  gb_pair_set_add (same, "abc", "abc");
  gb_pair_set_add (same, "def", "def");
  params.holdout_every = 0;
  g_assert_null (gb_steer_train (model, same, &params, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "same activations"));
  g_clear_error (&error);

  /* Read position outside a text. */
  g_autoptr (GbPairSet) set = small_set ();
  params.read_pos = 40;
  g_assert_null (gb_steer_train (model, set, &params, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "pair 1 (positive): read position 40"));
  g_clear_error (&error);
  params.read_pos = -1;

  /* A block the model lacks. */
  params.layers = 1u << N_LAYER;
  g_assert_null (gb_steer_train (model, set, &params, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);
  params.layers = 0;

  /* Longer than the context (64 tokens of the byte vocabulary). */
  g_autoptr (GbPairSet) longer = small_set ();
  g_autofree char *text = g_strnfill (80, 'x');
  gb_pair_set_add (longer, "short", text);
  g_assert_null (gb_steer_train (model, longer, &params, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
  g_assert_nonnull (strstr (error->message, "pair 11 (negative)"));
  g_clear_error (&error);

  /* Everything held out. */
  g_autoptr (GbPairSet) one = gb_pair_set_new ("one", NULL);
  gb_pair_set_add (one, "a", "b");
  params.holdout_every = 1;
  g_assert_null (gb_steer_train (model, one, &params, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);

  /* PCA on one pair. */
  params.holdout_every = 0;
  params.method = GB_STEER_PCA;
  g_assert_null (gb_steer_train (model, one, &params, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);

  /* An empty set. */
  g_autoptr (GbPairSet) none = gb_pair_set_new ("none", NULL);
  g_assert_null (gb_steer_train (model, none, &params, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
}

typedef struct
{
  GMainLoop     *loop;
  GbSteerVector *vec;
  GError        *error;
  guint          n_progress;
  double         last_fraction;
} AsyncState;

static void
count_progress (double      fraction,
                const char *message,
                gpointer    data)
{
  AsyncState *s = data;
  g_atomic_int_inc (&s->n_progress);
  s->last_fraction = fraction;
}

static void
train_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  AsyncState *s = data;
  s->vec = gb_steer_train_finish (result, &s->error);
  g_main_loop_quit (s->loop);
}

static void
test_train_async (void)
{
  g_autoptr (GbPairSet) set = small_set ();
  g_autoptr (GError) error = NULL;
  GbSteerParams params;
  gb_steer_params_init (&params);

  g_autoptr (GbSteerVector) sync = gb_steer_train (model, set, &params, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  AsyncState s = { g_main_loop_new (NULL, FALSE) };
  gb_steer_train_async (model, set, &params, NULL, count_progress, &s, train_done_cb, &s);
  g_main_loop_run (s.loop);
  g_assert_no_error (s.error);
  g_assert_cmpuint (s.n_progress, ==, G_N_ELEMENTS (texts));
  g_assert_cmpfloat (s.last_fraction, ==, 1.0);
  g_assert_cmpuint (s.vec->n_layers, ==, N_LAYER);
  for (guint k = 0; k < N_LAYER; k++)
    g_assert_cmpmem (s.vec->layers[k].vector, N_EMBD * 4, sync->layers[k].vector, N_EMBD * 4);
  g_clear_pointer (&s.vec, gb_steer_vector_free);

  /* Cancelled. */
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_cancellable_cancel (cancel);
  gb_steer_train_async (model, set, &params, cancel, NULL, NULL, train_done_cb, &s);
  g_main_loop_run (s.loop);
  g_assert_null (s.vec);
  g_assert_error (s.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&s.error);
  g_main_loop_unref (s.loop);
}

/* ---- Applying ---- */

static GbSteerVector *
train_small (guint64 layers)
{
  g_autoptr (GbPairSet) set = small_set ();
  g_autoptr (GError) error = NULL;
  GbSteerParams params;
  gb_steer_params_init (&params);
  params.layers = layers;
  GbSteerVector *vec = gb_steer_train (model, set, &params, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return vec;
}

static GArray *
generate (const char     *prompt,
          GbIntervention *iv,
          guint           n_iv,
          guint           n_new)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), prompt, -1, FALSE, &error);
  GbGenerateParams gp;
  gb_generate_params_init (&gp);
  gp.max_new_tokens = n_new;
  gp.stop_at_eot = FALSE;
  GArray *out = gb_generate (model, (gint32 *) ids->data, ids->len, &gp, iv, n_iv, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return out;
}

static void
test_apply_zero_is_baseline (void)
{
  g_autoptr (GbSteerVector) vec = train_small (0);
  GbIntervention iv[N_LAYER];
  guint n = gb_steer_vector_interventions (vec, 0.f, 0, iv);
  g_assert_cmpuint (n, ==, N_LAYER);
  g_autoptr (GArray) base = generate ("The day was", NULL, 0, 24);
  g_autoptr (GArray) zero = generate ("The day was", iv, n, 24);
  g_assert_cmpmem (base->data, base->len * 4, zero->data, zero->len * 4);

  /* A large multiplier changes the continuation (the test can fail). */
  gb_steer_vector_interventions (vec, 40.f, 0, iv);
  g_autoptr (GArray) steered = generate ("The day was", iv, n, 24);
  g_assert_false (base->len == steered->len && memcmp (base->data, steered->data, base->len * 4) == 0);
}

/* Greedy decoding with the KV cache (steps of one token) against a full
 * recomputation of the whole sequence with the same steering, at every
 * step: steered from position 0, and from an absolute position inside the
 * continuation. The Python tools' bug (positions restarting at each cached
 * token) would steer the wrong positions and fail this. */
static void
test_apply_cached_equals_full (void)
{
  g_autoptr (GbSteerVector) vec = train_small (0x6);
  g_autoptr (GError) error = NULL;
  const guint starts[] = { 0, 14 };

  for (guint s = 0; s < G_N_ELEMENTS (starts); s++)
    {
      GbIntervention iv[N_LAYER];
      guint n_iv = gb_steer_vector_interventions (vec, 6.f, starts[s], iv);
      g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), "The day was", -1, FALSE, &error);
      g_autoptr (GArray) out = generate ("The day was", iv, n_iv, 16);
      g_autoptr (GArray) seq = g_array_copy (ids);
      for (guint i = 0; i < out->len; i++)
        {
          /* Recompute everything up to here; its argmax must be token i. */
          GbRecord rec = { .logits = GB_LOGITS_LAST };
          g_autoptr (GbTrace) full = gb_model_forward (model, (gint32 *) seq->data, seq->len, &rec, iv, n_iv, NULL,
                                                       &error);
          g_assert_no_error (error);
          const guint V = gb_model_get_config (model)->n_vocab;
          gint32 best = 0;
          for (guint k = 1; k < V; k++)
            if (full->logits[k] > full->logits[best])
              best = (gint32) k;
          g_assert_cmpint (best, ==, g_array_index (out, gint32, i));
          g_array_append_val (seq, best);
        }
      g_assert_cmpuint (out->len, ==, 16);

      /* Steering from 14 differs from steering from 0 (positions matter). */
      if (s == 1)
        {
          GbIntervention all[N_LAYER];
          gb_steer_vector_interventions (vec, 6.f, 0, all);
          g_autoptr (GArray) from0 = generate ("The day was", all, n_iv, 16);
          g_autoptr (GArray) base = generate ("The day was", NULL, 0, 16);
          g_assert_false (memcmp (from0->data, out->data, 16 * 4) == 0);
          /* Tokens predicted from positions before 14 are the baseline's. */
          g_assert_cmpmem (base->data, (14 - ids->len + 1) * 4, out->data, (14 - ids->len + 1) * 4);
        }
    }
}

static void
test_subset (void)
{
  g_autoptr (GbSteerVector) vec = train_small (0);
  g_autoptr (GbSteerVector) sub = gb_steer_vector_subset (vec, 0x5);
  g_assert_cmpuint (sub->n_layers, ==, 2);
  g_assert_cmpuint (sub->layers[1].layer, ==, 2);
  g_assert_cmpmem (sub->layers[1].vector, N_EMBD * 4, vec->layers[2].vector, N_EMBD * 4);
  g_assert_null (gb_steer_vector_subset (vec, 1u << 7));
}

/* The projection scale: training texts sit within a few standard
 * deviations, a run steered hard lands far outside. */
static void
test_projection_z (void)
{
  g_autoptr (GbSteerVector) vec = train_small (0x2);
  g_autoptr (GError) error = NULL;
  const GbSteerLayer *l = &vec->layers[0];
  double p[N_EMBD], n[N_EMBD], norm = 0, sum = 0, sq = 0;

  for (guint j = 0; j < N_EMBD; j++)
    norm += (double) l->vector[j] * l->vector[j];
  norm = sqrt (norm);
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      if ((i + 1) % 5 == 0)
        continue;
      acts_of (texts[i][0], 1, -1, p);
      acts_of (texts[i][1], 1, -1, n);
      double a = 0, b = 0;
      for (guint j = 0; j < N_EMBD; j++)
        a += p[j] * l->vector[j] / norm, b += n[j] * l->vector[j] / norm;
      sum += a + b;
      sq += a * a + b * b;
    }
  double mean = sum / 16, sd = sqrt (sq / 16 - mean * mean);
  g_assert_cmpfloat (fabs (l->proj_mean - mean), <=, 1e-6 * (fabs (mean) + sd));
  g_assert_cmpfloat (fabs (l->proj_sd - sd), <=, 1e-6 * sd);

  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), texts[0][0], -1, FALSE, &error);
  GbRecord rec = { .logits = GB_LOGITS_NONE };
  rec.hooks[GB_HOOK_RESID_POST] = 0x2;
  g_autoptr (GbTrace) plain = gb_model_forward (model, (gint32 *) ids->data, ids->len, &rec, NULL, 0, NULL, &error);
  g_assert_no_error (error);
  const float *row = gb_trace_get (plain, GB_HOOK_RESID_POST, 1) + (gsize) (ids->len - 1) * N_EMBD;
  double z_plain = gb_steer_layer_projection_z (l, N_EMBD, row, 1);
  GbIntervention iv[1];
  gb_steer_vector_interventions (vec, 50.f, 0, iv);
  g_autoptr (GbTrace) hard = gb_model_forward (model, (gint32 *) ids->data, ids->len, &rec, iv, 1, NULL, &error);
  g_assert_no_error (error);
  double z_hard = gb_steer_layer_projection_z (l, N_EMBD, gb_trace_get (hard, GB_HOOK_RESID_POST, 1), ids->len);
  g_test_message ("z of a training text %.2f, steered x50 %.2f", z_plain, z_hard);
  g_assert_cmpfloat (z_plain, <, 4);
  g_assert_cmpfloat (z_hard, >, 20);

  GbSteerLayer unknown = *l;
  unknown.proj_sd = NAN;
  g_assert_true (isnan (gb_steer_layer_projection_z (&unknown, N_EMBD, row, 1)));
}

static void
test_check_model (void)
{
  g_autoptr (GbSteerVector) vec = train_small (0x1);
  g_autoptr (GError) error = NULL;
  g_assert_true (gb_steer_vector_check (vec, model, &error));
  vec->layers[0].layer = N_LAYER;
  g_assert_false (gb_steer_vector_check (vec, model, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_SHAPE);
  g_clear_error (&error);
  vec->layers[0].layer = 0;
  vec->n_embd = 8;
  g_assert_false (gb_steer_vector_check (vec, model, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_SHAPE);
  vec->n_embd = N_EMBD;
}

/* ---- Files ---- */

static void
assert_same_vectors (const GbSteerVector *a,
                     const GbSteerVector *b)
{
  g_assert_cmpuint (a->n_embd, ==, b->n_embd);
  g_assert_cmpuint (a->n_layers, ==, b->n_layers);
  for (guint k = 0; k < a->n_layers; k++)
    {
      g_assert_cmpuint (a->layers[k].layer, ==, b->layers[k].layer);
      g_assert_cmpmem (a->layers[k].vector, a->n_embd * 4, b->layers[k].vector, b->n_embd * 4);
    }
}

static gboolean
dir_has_temporaries (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    if (name[0] == '.')
      return TRUE;
  return FALSE;
}

static void
test_json_round_trip (void)
{
  g_autoptr (GbSteerVector) vec = train_small (0x5);
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "vec.json", NULL);

  vec->layers[0].vector[0] = 0.5f; /* a known first number for the edits below */
  g_assert_true (gb_steer_vector_save (vec, path, &error));
  g_assert_false (dir_has_temporaries (dir));
  g_autoptr (GbSteerVector) back = gb_steer_vector_load (path, &error);
  g_assert_no_error (error);
  assert_same_vectors (vec, back);
  g_assert_cmpstr (back->model_type, ==, "gpt2");
  g_assert_cmpstr (back->pairs_hash, ==, vec->pairs_hash);
  g_assert_cmpstr (back->pairs_name, ==, "test");
  g_assert_true (back->method_known && back->method == GB_STEER_MEAN);
  g_assert_cmpint (back->read_pos, ==, -1);
  g_assert_cmpuint (back->n_train, ==, 8);
  g_assert_cmpuint (back->n_heldout, ==, 2);
  for (guint k = 0; k < vec->n_layers; k++)
    {
      g_assert_cmpfloat (fabs (back->layers[k].accuracy - vec->layers[k].accuracy), <=, 1e-12);
      g_assert_cmpfloat (fabs (back->layers[k].gap - vec->layers[k].gap), <=, 1e-12);
      g_assert_cmpfloat (fabs (back->layers[k].proj_mean - vec->layers[k].proj_mean), <=, 1e-12);
      g_assert_cmpfloat (fabs (back->layers[k].proj_sd - vec->layers[k].proj_sd), <=, 1e-12);
    }

  /* Bad files: each names the file and the problem. */
  g_autofree char *good = NULL;
  g_file_get_contents (path, &good, NULL, NULL);
  static const struct
  {
    const char *from, *to, *says;
  } edits[] = {
    { "\"format\":\"glassbox-steering-vector\"", "\"format\":\"other\"", "not a steering vector" },
    { "\"n_embd\":16", "\"n_embd\":17", "the vector has 16 numbers, n_embd is 17" },
    { "\"n_embd\":16", "\"n_embd\":-1", "\"n_embd\" is -1" },
    { "\"method\":\"mean\"", "\"method\":\"magic\"", "unknown method" },
    { "\"layer\":2", "\"layer\":0", "block 0 appears twice" },
    { "\"layer\":2", "\"layer\":99", "\"layer\" is 99" },
    { "\"vector\":[0.5,", "\"vector\":[\"x\",", "vector[0] is not a finite float32" },
    { "\"vector\":[0.5,", "\"vector\":[1e999,", "vector[0] is not a finite float32" },
    { "\"layers\":[", "\"layerz\":[", "\"layers\" is missing" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (edits); i++)
    {
      g_assert_nonnull (strstr (good, edits[i].from));
      g_autoptr (GString) s = g_string_new (good);
      g_string_replace (s, edits[i].from, edits[i].to, 1);
      g_autofree char *bad = write_text ("bad-vec.json", s->str, (gssize) s->len);
      g_clear_error (&error);
      g_autoptr (GbSteerVector) v = gb_steer_vector_load (bad, &error);
      g_test_message ("edit %u: %s", i, error ? error->message : "(no error)");
      g_assert_null (v);
      g_assert_error (error, GB_ERROR, GB_ERROR_FORMAT);
      g_assert_true (g_str_has_prefix (error->message, bad));
      g_assert_nonnull (strstr (error->message, edits[i].says));
    }
  /* Truncated JSON, empty, binary. */
  const gsize cuts[] = { 0, 1, 10, strlen (good) / 2, strlen (good) - 3 };
  for (guint i = 0; i < G_N_ELEMENTS (cuts); i++)
    {
      g_autofree char *bad = write_text ("cut.json", good, (gssize) cuts[i]);
      g_clear_error (&error);
      g_assert_null (gb_steer_vector_load (bad, &error));
      g_assert_error (error, GB_ERROR, GB_ERROR_FORMAT);
      g_assert_true (g_str_has_prefix (error->message, bad));
    }
  g_autofree char *bin = write_text ("bin.json", "\x89PNG\r\n\x1a\n\0\0", 10);
  g_clear_error (&error);
  g_assert_null (gb_steer_vector_load (bin, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_FORMAT);
}

static guint8 *
find (guint8     *hay,
      gsize       len,
      const char *needle)
{
  gsize n = strlen (needle);
  for (gsize i = 0; i + n <= len; i++)
    if (memcmp (hay + i, needle, n) == 0)
      return hay + i;
  return NULL;
}

static guint64
rd64 (const guint8 *p)
{
  guint64 x;
  memcpy (&x, p, 8);
  return GUINT64_FROM_LE (x);
}

static guint32
rd32 (const guint8 *p)
{
  guint32 x;
  memcpy (&x, p, 4);
  return GUINT32_FROM_LE (x);
}

/* Checks a GGUF string at *pos and moves past it. */
static void
expect_str (const guint8 *b,
            gsize        *pos,
            const char   *s)
{
  g_assert_cmpuint (rd64 (b + *pos), ==, strlen (s));
  g_assert_cmpmem (b + *pos + 8, strlen (s), s, strlen (s));
  *pos += 8 + strlen (s);
}

static void
test_gguf_layout (void)
{
  g_autoptr (GbSteerVector) vec = train_small (0x6); /* blocks 1 and 2 */
  g_autoptr (GError) error = NULL;
  g_autofree char *path = gb_test_tmp_path ("vec.gguf", NULL);
  g_autofree char *warning = NULL;
  g_autofree guint8 *b = NULL;
  gsize len, pos = 0;

  g_assert_true (gb_steer_vector_export_gguf (vec, path, &warning, &error));
  g_assert_no_error (error);
  g_assert_null (warning);
  g_assert_true (g_file_get_contents (path, (char **) &b, &len, NULL));

  /* Header: magic, version 3, 2 tensors, 3 keys. */
  g_assert_cmpmem (b, 4, "GGUF", 4);
  g_assert_cmpuint (rd32 (b + 4), ==, 3);
  g_assert_cmpuint (rd64 (b + 8), ==, 2);
  g_assert_cmpuint (rd64 (b + 16), ==, 3);
  pos = 24;
  expect_str (b, &pos, "general.architecture");
  g_assert_cmpuint (rd32 (b + pos), ==, 8); /* string */
  pos += 4;
  expect_str (b, &pos, "controlvector");
  expect_str (b, &pos, "controlvector.model_hint");
  g_assert_cmpuint (rd32 (b + pos), ==, 8);
  pos += 4;
  expect_str (b, &pos, "gpt2");
  expect_str (b, &pos, "controlvector.layer_count");
  g_assert_cmpuint (rd32 (b + pos), ==, 4); /* uint32 */
  g_assert_cmpuint (rd32 (b + pos + 4), ==, 2);
  pos += 8;
  /* Tensor infos: name, n_dims 1, [n_embd], F32 (0), offset. */
  const char *names[] = { "direction.1", "direction.2" };
  for (guint i = 0; i < 2; i++)
    {
      expect_str (b, &pos, names[i]);
      g_assert_cmpuint (rd32 (b + pos), ==, 1);
      g_assert_cmpuint (rd64 (b + pos + 4), ==, N_EMBD);
      g_assert_cmpuint (rd32 (b + pos + 12), ==, 0);
      g_assert_cmpuint (rd64 (b + pos + 16), ==, i * 64); /* 16 floats = 64 bytes, already 32-aligned */
      pos += 24;
    }
  /* Data from the next multiple of 32, zero padding before it. */
  gsize data = (pos + 31) / 32 * 32;
  for (gsize p = pos; p < data; p++)
    g_assert_cmpuint (b[p], ==, 0);
  g_assert_cmpuint (len, ==, data + 2 * 64);
  for (guint i = 0; i < 2; i++)
    for (guint j = 0; j < N_EMBD; j++)
      {
        union { guint32 u; float f; } x = { .u = rd32 (b + data + i * 64 + j * 4) };
        g_assert_cmpfloat (x.f, ==, vec->layers[i].vector[j]);
      }

  /* Round trip. */
  g_autoptr (GbSteerVector) back = gb_steer_vector_import_gguf (path, &error);
  g_assert_no_error (error);
  assert_same_vectors (vec, back);
  g_assert_cmpstr (back->model_type, ==, "gpt2");
  g_assert_false (back->method_known);
  g_autoptr (GbSteerVector) loaded = gb_steer_vector_load (path, &error); /* by magic */
  g_assert_no_error (error);
  assert_same_vectors (vec, loaded);

  /* Every truncation is an error naming the file, never a crash. */
  for (gsize cut = 0; cut < len; cut++)
    {
      g_autofree char *bad = write_text ("cut.gguf", (const char *) b, (gssize) cut);
      g_autoptr (GError) e = NULL;
      g_autoptr (GbSteerVector) v = gb_steer_vector_import_gguf (bad, &e);
      g_assert_null (v);
      g_assert_error (e, GB_ERROR, GB_ERROR_FORMAT);
      g_assert_true (g_str_has_prefix (e->message, bad));
    }

  /* Wrong architecture, tensor type, layer count; a NaN value. */
  static const struct
  {
    const char *from, *to, *says;
    gsize       at;
  } edits[] = {
    { "controlvector", "controlvectoX", "general.architecture is \"controlvectoX\"", 0 },
    { "direction.1", "direction.x", "not direction.N", 0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (edits); i++)
    {
      g_autofree guint8 *copy = g_memdup2 (b, len);
      guint8 *hit = find (copy, len, edits[i].from);
      g_assert_nonnull (hit);
      memcpy (hit, edits[i].to, strlen (edits[i].to));
      g_autofree char *bad = write_text ("edit.gguf", (const char *) copy, (gssize) len);
      g_autoptr (GError) e = NULL;
      g_assert_null (gb_steer_vector_import_gguf (bad, &e));
      g_test_message ("%s", e->message);
      g_assert_nonnull (strstr (e->message, edits[i].says));
    }
  {
    g_autofree guint8 *copy = g_memdup2 (b, len);
    guint8 *hit = find (copy, len, "direction.2");
    copy[hit - copy + 11 + 4 + 8] = 1; /* F16 */
    g_autofree char *bad = write_text ("f16.gguf", (const char *) copy, (gssize) len);
    g_autoptr (GError) e = NULL;
    g_assert_null (gb_steer_vector_import_gguf (bad, &e));
    g_assert_nonnull (strstr (e->message, "direction.2 must be a 1-D float32 tensor"));
  }
  {
    g_autofree guint8 *copy = g_memdup2 (b, len);
    guint8 *hit = find (copy, len, "layer_count");
    hit[11 + 4] = 5;
    g_autofree char *bad = write_text ("count.gguf", (const char *) copy, (gssize) len);
    g_autoptr (GError) e = NULL;
    g_assert_null (gb_steer_vector_import_gguf (bad, &e));
    g_assert_nonnull (strstr (e->message, "layer_count is 5 but the file holds 2"));
  }
  {
    g_autofree guint8 *copy = g_memdup2 (b, len);
    const guint32 nan_bits = GUINT32_TO_LE (0x7fc00000);
    memcpy (copy + data + 8, &nan_bits, 4);
    g_autofree char *bad = write_text ("nan.gguf", (const char *) copy, (gssize) len);
    g_autoptr (GError) e = NULL;
    g_assert_null (gb_steer_vector_import_gguf (bad, &e));
    g_assert_nonnull (strstr (e->message, "direction.1: value 2 is not finite"));
  }
  {
    g_autoptr (GError) e = NULL;
    g_autofree char *bad = write_text ("json.gguf", "{}", 2);
    g_assert_null (gb_steer_vector_import_gguf (bad, &e));
    g_assert_nonnull (strstr (e->message, "not a GGUF file"));
  }
}

static void
test_gguf_block0_warns (void)
{
  g_autoptr (GbSteerVector) vec = train_small (0x3);
  g_autoptr (GError) error = NULL;
  g_autofree char *path = gb_test_tmp_path ("b0.gguf", NULL);
  g_autofree char *warning = NULL;

  g_assert_true (gb_steer_vector_export_gguf (vec, path, &warning, &error));
  g_assert_nonnull (warning);
  g_assert_nonnull (strstr (warning, "llama.cpp refuses"));
  g_autoptr (GbSteerVector) back = gb_steer_vector_import_gguf (path, &error);
  g_assert_no_error (error);
  assert_same_vectors (vec, back);
}

static void
test_repetition_rate (void)
{
  const gint32 varied[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  const gint32 loop[] = { 1, 2, 1, 2, 1, 2, 1, 2, 1, 2 };
  const gint32 same[] = { 9, 9, 9, 9, 9, 9 };
  g_assert_cmpfloat (gb_repetition_rate (varied, 8), ==, 0);
  g_assert_cmpfloat (gb_repetition_rate (loop, 10), ==, 6.0 / 8);
  g_assert_cmpfloat (gb_repetition_rate (same, 6), ==, 3.0 / 4);
  g_assert_cmpfloat (gb_repetition_rate (same, 3), ==, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_autofree char *dir = gb_test_tmpdir ();
  gb_test_write_model (dir, N_LAYER, 2, N_EMBD, 64, FALSE, 11);
  g_autoptr (GError) error = NULL;
  model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/engine/steer/pairs-parse", test_pairs_parse);
  g_test_add_func ("/engine/steer/pairs-bad", test_pairs_bad);
  g_test_add_func ("/engine/steer/bundled-sets", test_bundled_sets);
  g_test_add_func ("/engine/steer/train-mean", test_train_mean);
  g_test_add_func ("/engine/steer/train-pca", test_train_pca);
  g_test_add_func ("/engine/steer/train-errors", test_train_errors);
  g_test_add_func ("/engine/steer/train-async", test_train_async);
  g_test_add_func ("/engine/steer/apply-zero-is-baseline", test_apply_zero_is_baseline);
  g_test_add_func ("/engine/steer/apply-cached-equals-full", test_apply_cached_equals_full);
  g_test_add_func ("/engine/steer/check-model", test_check_model);
  g_test_add_func ("/engine/steer/subset", test_subset);
  g_test_add_func ("/engine/steer/projection-z", test_projection_z);
  g_test_add_func ("/engine/steer/json-round-trip", test_json_round_trip);
  g_test_add_func ("/engine/steer/gguf-layout", test_gguf_layout);
  g_test_add_func ("/engine/steer/gguf-block0-warns", test_gguf_block0_warns);
  g_test_add_func ("/engine/steer/repetition-rate", test_repetition_rate);
  int status = g_test_run ();
  gb_model_unref (model);
  return status;
}
