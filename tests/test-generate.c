/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

#include <math.h>
#include <string.h>

#include "gb-kernels.h"
#include "gb-test-util.h"

static GbModel *model;

static double
max_rel_error (const float *a,
               const float *b,
               gsize        n)
{
  double num = 0, den = 0;
  for (gsize i = 0; i < n; i++)
    {
      num = MAX (num, fabs ((double) a[i] - b[i]));
      den = MAX (den, fabs ((double) b[i]));
    }
  return num / den;
}

static const gint32 prompt[] = { 84, 104, 101, 32, 99, 97, 116, 32 };
#define N_PROMPT G_N_ELEMENTS (prompt)

static void
test_kv_cache_matches_full (gconstpointer data)
{
  /* Greedy decoding with the cache, one token at a time, must give the
   * tokens and logits of recomputing the whole sequence, also with a
   * steering vector applied from an absolute position inside the generated
   * part (the cached steps are one token long). */
  gboolean steer = GPOINTER_TO_INT (data);
  const GbConfig *c = gb_model_get_config (model);
  const guint n_new = 24;
  g_autofree float *v = g_new (float, c->n_embd);
  for (guint i = 0; i < c->n_embd; i++)
    v[i] = sinf (i);
  GbIntervention add = { .kind = GB_INTERVENE_ADD, .hook = GB_HOOK_RESID_POST, .layer = 1,
                         .multiplier = 4.f, .start_pos = N_PROMPT + 5, .values = v };
  guint n_iv = steer ? 1 : 0;
  g_autoptr (GError) error = NULL;
  g_autoptr (GbSession) session = gb_session_new (model);
  g_autoptr (GArray) seq = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autofree float *step_logits = g_new (float, (gsize) n_new * c->n_vocab);

  g_array_append_vals (seq, prompt, N_PROMPT);
  const float *logits = gb_session_feed (session, prompt, N_PROMPT, &add, n_iv, NULL, &error);
  for (guint i = 0; i < n_new; i++)
    {
      g_assert_no_error (error);
      memcpy (step_logits + (gsize) i * c->n_vocab, logits, c->n_vocab * sizeof (float));
      gint32 next = 0;
      for (guint k = 1; k < c->n_vocab; k++)
        if (logits[k] > logits[next])
          next = k;
      g_array_append_val (seq, next);
      logits = gb_session_feed (session, &next, 1, &add, n_iv, NULL, &error);
    }
  g_assert_cmpuint (gb_session_get_n_past (session), ==, N_PROMPT + n_new);

  GbRecord rec = { .logits = GB_LOGITS_ALL };
  g_autoptr (GbTrace) full = gb_model_forward (model, (gint32 *) seq->data, seq->len, &rec, &add, n_iv, NULL, &error);
  g_assert_no_error (error);
  double worst = 0;
  for (guint i = 0; i < n_new; i++)
    worst = MAX (worst, max_rel_error (step_logits + (gsize) i * c->n_vocab,
                                       full->logits + (gsize) (N_PROMPT - 1 + i) * c->n_vocab, c->n_vocab));
  g_test_message ("cached vs full logits: max relative error %.3g", worst);
  g_assert_cmpfloat (worst, <=, 1e-4);

  /* gb_generate gives the same tokens. */
  GbGenerateParams params;
  gb_generate_params_init (&params);
  params.max_new_tokens = n_new;
  params.stop_at_eot = FALSE;
  g_autoptr (GArray) out = gb_generate (model, prompt, N_PROMPT, &params, &add, n_iv, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (out->data, out->len * sizeof (gint32), (gint32 *) seq->data + N_PROMPT, n_new * sizeof (gint32));
}

static GArray *
generate (float    temperature,
          guint    top_k,
          float    top_p,
          guint64  seed)
{
  GbGenerateParams params;
  g_autoptr (GError) error = NULL;
  gb_generate_params_init (&params);
  params.max_new_tokens = 20;
  params.temperature = temperature;
  params.top_k = top_k;
  params.top_p = top_p;
  params.seed = seed;
  params.stop_at_eot = FALSE;
  GArray *out = gb_generate (model, prompt, N_PROMPT, &params, NULL, 0, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 20);
  return out;
}

static gboolean
same (GArray *a,
      GArray *b)
{
  return a->len == b->len && memcmp (a->data, b->data, a->len * sizeof (gint32)) == 0;
}

static void
test_sampling (void)
{
  g_autoptr (GArray) greedy = generate (0, 0, 1, 0);
  g_autoptr (GArray) a = generate (1.5f, 0, 1, 7);
  g_autoptr (GArray) b = generate (1.5f, 0, 1, 7);
  g_autoptr (GArray) other = generate (1.5f, 0, 1, 8);
  g_autoptr (GArray) top1 = generate (1.5f, 1, 1, 9);
  g_autoptr (GArray) nucleus = generate (1.5f, 0, 1e-6f, 10);

  g_assert_true (same (a, b));         /* a seed reproduces */
  g_assert_false (same (a, other));    /* another seed differs */
  g_assert_false (same (a, greedy));
  g_assert_true (same (top1, greedy)); /* top-k 1 is greedy */
  g_assert_true (same (nucleus, greedy));
}

typedef struct
{
  GString *text;
  guint    calls;
} Collect;

static gboolean
collect_cb (gint32      token,
            const char *piece,
            gpointer    user_data)
{
  Collect *c = user_data;
  g_assert_true (g_utf8_validate (piece, -1, NULL));
  g_string_append (c->text, piece);
  c->calls++;
  return c->calls < 10;
}

static void
test_streaming_and_stop (void)
{
  GbGenerateParams params;
  g_autoptr (GError) error = NULL;
  Collect c = { g_string_new (NULL), 0 };
  gb_generate_params_init (&params);
  params.max_new_tokens = 50;
  params.temperature = 1.f;
  params.seed = 3;
  params.stop_at_eot = FALSE;

  g_autoptr (GArray) out = gb_generate (model, prompt, N_PROMPT, &params, NULL, 0, collect_cb, &c, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 10); /* the callback stopped it */
  g_autofree char *decoded = gb_tokenizer_decode (gb_model_get_tokenizer (model), (gint32 *) out->data, out->len, &error);
  g_assert_cmpstr (c.text->str, ==, decoded);
  g_string_free (c.text, TRUE);
}

static void
test_context_limits (void)
{
  const GbConfig *cfg = gb_model_get_config (model);
  g_autofree gint32 *long_prompt = g_new0 (gint32, cfg->n_positions + 10);
  GbGenerateParams params;
  g_autoptr (GError) error = NULL;
  guint truncated = 0;
  gb_generate_params_init (&params);
  params.max_new_tokens = 8;
  params.stop_at_eot = FALSE;

  g_assert_null (gb_generate (model, long_prompt, cfg->n_positions + 10, &params, NULL, 0, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
  g_clear_error (&error);

  params.truncate_left = TRUE;
  g_autoptr (GArray) out = gb_generate (model, long_prompt, cfg->n_positions + 10, &params, NULL, 0, NULL, NULL,
                                        &truncated, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (truncated, ==, 18);
  g_assert_cmpuint (out->len, ==, 8);

  /* A budget past the context stops at the context's end. */
  params.max_new_tokens = 1000;
  params.truncate_left = FALSE;
  g_autoptr (GArray) all = gb_generate (model, prompt, N_PROMPT, &params, NULL, 0, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->len, ==, cfg->n_positions - N_PROMPT + 1);

  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_cancellable_cancel (cancel);
  g_assert_null (gb_generate (model, prompt, N_PROMPT, &params, NULL, 0, NULL, NULL, NULL, cancel, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  params.temperature = NAN;
  g_assert_null (gb_generate (model, prompt, N_PROMPT, &params, NULL, 0, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
}

static gpointer
generate_thread (gpointer data)
{
  return generate (1.f, 0, 0.9f, GPOINTER_TO_UINT (data));
}

static void
test_threads_share_model (void)
{
  /* Sessions on several threads share the read-only weights. */
  GThread *threads[4];
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("gen", generate_thread, GUINT_TO_POINTER (100 + i % 2));
  g_autoptr (GArray) ref0 = generate (1.f, 0, 0.9f, 100);
  g_autoptr (GArray) ref1 = generate (1.f, 0, 0.9f, 101);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_autoptr (GArray) out = g_thread_join (threads[i]);
      g_assert_true (same (out, i % 2 ? ref1 : ref0));
    }
}

/* Feeding a sequence in chunks of several tokens (prefills at pos0 > 0, the
 * causal limits then start mid-cache, across blocks of 8 queries) gives the
 * logits of one pass, on one thread and on two. */
static void
test_chunked_prefill (void)
{
  const GbConfig *c = gb_model_get_config (model);
  const guint n = 40, chunks[] = { 11, 17, 12 };
  g_autofree gint32 *tokens = g_new (gint32, n);
  for (guint i = 0; i < n; i++)
    tokens[i] = (gint32) ((i * 37 + 5) % c->n_vocab);
  const int threads = gb_blas_get_threads ();

  for (int t = 1; t <= 2; t++)
    {
      gb_blas_set_threads (t);
      g_autoptr (GError) error = NULL;
      g_autoptr (GbSession) whole = gb_session_new (model);
      const float *ref = gb_session_feed (whole, tokens, n, NULL, 0, NULL, &error);
      g_assert_no_error (error);
      g_autoptr (GbSession) parts = gb_session_new (model);
      const float *got = NULL;
      guint at = 0;
      for (guint k = 0; k < G_N_ELEMENTS (chunks); k++)
        {
          got = gb_session_feed (parts, tokens + at, chunks[k], NULL, 0, NULL, &error);
          g_assert_no_error (error);
          at += chunks[k];
        }
      g_assert_cmpuint (at, ==, n);
      g_assert_cmpfloat (max_rel_error (got, ref, c->n_vocab), <, 1e-5);
    }
  gb_blas_set_threads (threads);
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *dir = NULL;
  g_autoptr (GError) error = NULL;

  g_test_init (&argc, &argv, NULL);
  dir = gb_test_tmpdir ();
  gb_test_write_model (dir, 2, 4, 32, 48, FALSE, 11);
  model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_test_add_data_func ("/engine/generate/kv-cache-matches-full", GINT_TO_POINTER (FALSE), test_kv_cache_matches_full);
  g_test_add_data_func ("/engine/generate/kv-cache-matches-full-steered", GINT_TO_POINTER (TRUE), test_kv_cache_matches_full);
  g_test_add_func ("/engine/generate/chunked-prefill", test_chunked_prefill);
  g_test_add_func ("/engine/generate/sampling", test_sampling);
  g_test_add_func ("/engine/generate/streaming-and-stop", test_streaming_and_stop);
  g_test_add_func ("/engine/generate/context-limits", test_context_limits);
  g_test_add_func ("/engine/generate/threads-share-model", test_threads_share_model);
  int status = g_test_run ();
  g_clear_pointer (&model, gb_model_unref);
  return status;
}
