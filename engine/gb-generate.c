/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <math.h>
#include <string.h>

#include "gb-error.h"
#include "gb-generate.h"
#include "gb-model-private.h"

struct _GbSession
{
  GbModel   *model;   /* owned ref */
  GbKvCache *cache;
  guint      n_past;
  float     *logits;  /* [V] */
};

GbSession *
gb_session_new (GbModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);

  GbSession *self = g_new0 (GbSession, 1);
  self->model = gb_model_ref (model);
  self->cache = gb_kv_cache_new (model->config->n_layer);
  self->logits = g_new0 (float, model->config->n_vocab);
  return self;
}

void
gb_session_free (GbSession *self)
{
  if (self == NULL)
    return;
  gb_kv_cache_free (self->cache);
  gb_model_unref (self->model);
  g_free (self->logits);
  g_free (self);
}

guint
gb_session_get_n_past (GbSession *self)
{
  return self->n_past;
}

void
gb_session_reset (GbSession *self)
{
  self->n_past = 0;
}

const float *
gb_session_feed (GbSession            *self,
                 const gint32         *tokens,
                 guint                 n_tokens,
                 const GbIntervention *interventions,
                 guint                 n_interventions,
                 GCancellable         *cancellable,
                 GError              **error)
{
  static const GbRecord nothing = { .logits = GB_LOGITS_NONE };

  g_return_val_if_fail (self != NULL, NULL);

  if (!gb_forward_core (self->model, self->cache, self->n_past, tokens, n_tokens, &nothing, interventions,
                        n_interventions, NULL, self->logits, cancellable, error))
    return NULL;
  self->n_past += n_tokens;
  return self->logits;
}

void
gb_generate_params_init (GbGenerateParams *params)
{
  *params = (GbGenerateParams) {
    .max_new_tokens = 32,
    .temperature = 0.f,
    .top_k = 0,
    .top_p = 1.f,
    .seed = 0,
    .stop_at_eot = TRUE,
    .truncate_left = FALSE,
  };
}

static gint32
argmax (const float *x,
        guint        n)
{
  guint best = 0;
  for (guint i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return (gint32) best;
}

typedef struct
{
  gint32 id;
  double p;
} Candidate;

static int
by_probability_desc (gconstpointer a,
                     gconstpointer b)
{
  const Candidate *x = a, *y = b;
  if (x->p != y->p)
    return x->p < y->p ? 1 : -1;
  return x->id - y->id;
}

/* Temperature, then top-k, then top-p (nucleus), then one draw. Tokens
 * below 1e-30 of the most likely one cannot change the draw, so they are
 * left out of the sort. */
static gint32
sample (const float            *logits,
        guint                   n,
        const GbGenerateParams *params,
        GRand                  *rng)
{
  if (params->temperature <= 0.f)
    return argmax (logits, n);

  const double inv_t = 1.0 / params->temperature;
  const float max = logits[argmax (logits, n)];
  g_autofree Candidate *cand = g_new (Candidate, n);
  guint m = 0;
  for (guint i = 0; i < n; i++)
    {
      double p = exp ((logits[i] - max) * inv_t);
      if (p > 1e-30)
        cand[m++] = (Candidate) { (gint32) i, p };
    }
  qsort (cand, m, sizeof *cand, by_probability_desc);
  if (params->top_k > 0 && params->top_k < m)
    m = params->top_k;

  double total = 0;
  for (guint i = 0; i < m; i++)
    total += cand[i].p;
  if (params->top_p < 1.f)
    {
      double cum = 0;
      for (guint i = 0; i < m; i++)
        {
          cum += cand[i].p / total;
          if (cum >= params->top_p)
            {
              m = i + 1;
              break;
            }
        }
      total = 0;
      for (guint i = 0; i < m; i++)
        total += cand[i].p;
    }

  double r = g_rand_double (rng) * total;
  for (guint i = 0; i < m; i++)
    {
      r -= cand[i].p;
      if (r < 0)
        return cand[i].id;
    }
  return cand[m - 1].id;
}

static gboolean
check_params (const GbGenerateParams *params,
              GError                **error)
{
  if (!(params->temperature >= 0.f) || !isfinite (params->temperature))
    return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "temperature must be a finite number >= 0"), FALSE;
  if (!(params->top_p > 0.f && params->top_p <= 1.f))
    return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "top-p must be in (0, 1]"), FALSE;
  return TRUE;
}

/* Fits the prompt into the context: it must leave room for one new token. */
static gboolean
fit_prompt (const GbConfig         *c,
            guint                  *n_prompt,
            const GbGenerateParams *params,
            guint                  *n_truncated,
            GError                **error)
{
  guint room = c->n_positions - 1;
  if (n_truncated)
    *n_truncated = 0;
  if (*n_prompt == 0)
    return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "the prompt is empty"), FALSE;
  if (*n_prompt <= room)
    return TRUE;
  if (!params->truncate_left)
    return g_set_error (error, GB_ERROR, GB_ERROR_LIMIT,
                        "the prompt is %u tokens, longer than the model's context of %u", *n_prompt,
                        c->n_positions),
           FALSE;
  /* Keep the end of the prompt, leaving room for the new tokens (up to half the context). */
  guint keep = c->n_positions - MIN (MAX (params->max_new_tokens, 1u), c->n_positions / 2);
  if (n_truncated)
    *n_truncated = *n_prompt - keep;
  *n_prompt = keep;
  return TRUE;
}

GArray *
gb_generate (GbModel                *model,
             const gint32           *prompt_tokens,
             guint                   n_prompt,
             const GbGenerateParams *params,
             const GbIntervention   *interventions,
             guint                   n_interventions,
             GbTokenFunc             on_token,
             gpointer                user_data,
             guint                  *n_truncated,
             GCancellable           *cancellable,
             GError                **error)
{
  const GbConfig *c;
  guint n = n_prompt, skipped = 0;

  g_return_val_if_fail (model != NULL && params != NULL, NULL);
  c = model->config;
  if (!check_params (params, error) || !fit_prompt (c, &n, params, &skipped, error))
    return NULL;
  if (n_truncated)
    *n_truncated = skipped;

  g_autoptr (GbSession) session = gb_session_new (model);
  g_autoptr (GbDecodeStream) stream = gb_decode_stream_new (model->tokenizer);
  g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GRand) rng = g_rand_new_with_seed_array ((const guint32[]) { (guint32) params->seed,
                                                                          (guint32) (params->seed >> 32) }, 2);
  const gint32 eot = gb_tokenizer_get_eot (model->tokenizer);

  const float *logits = gb_session_feed (session, prompt_tokens + skipped, n, interventions, n_interventions,
                                         cancellable, error);
  while (logits != NULL && out->len < params->max_new_tokens)
    {
      gint32 next = sample (logits, c->n_vocab, params, rng);
      if (params->stop_at_eot && next == eot)
        break;
      g_array_append_val (out, next);
      g_autofree char *piece = gb_decode_stream_push (stream, next);
      if (on_token != NULL && !on_token (next, piece, user_data))
        break;
      if (out->len == params->max_new_tokens || gb_session_get_n_past (session) >= c->n_positions)
        break;
      logits = gb_session_feed (session, &next, 1, interventions, n_interventions, cancellable, error);
    }
  if (logits == NULL)
    return NULL;

  g_autofree char *rest = gb_decode_stream_finish (stream);
  if (on_token != NULL && rest != NULL && *rest != '\0')
    on_token (GB_TOKEN_NONE, rest, user_data);
  return g_steal_pointer (&out);
}
