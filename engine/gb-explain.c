/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gb-parallel.h"
#include "gb-error.h"
#include "gb-explain.h"
#include "gb-heads.h"
#include "gb-model-private.h"
#include "gb-net.h"

#define DEFAULT_IG_STEPS 64
#define DEFAULT_MAX_CANDIDATES 128

struct _GbExplainer
{
  /* Owned */
  GbModel     *model;
  GbAppSchema *schema;

  gboolean     classifier;
  gint32       pos_id, neg_id;   /* vocabulary ids, or class indices */
};

/* ---- Helpers ---- */

static gint32
single_token (GbTokenizer *tok,
              const char  *word,
              GError     **error)
{
  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, word, -1, FALSE, error);
  if (ids == NULL)
    return -1;
  if (ids->len != 1)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED,
                   "the label word “%s” is %u tokens in this model's vocabulary; it must be one", word, ids->len);
      return -1;
    }
  return g_array_index (ids, gint32, 0);
}

static int
find_class (const GbConfig *c,
            const char     *word)
{
  g_autofree char *w = g_strstrip (g_strdup (word));
  for (guint i = 0; i < c->n_labels; i++)
    if (c->labels && c->labels[i] && g_ascii_strcasecmp (c->labels[i], w) == 0)
      return (int) i;
  return -1;
}

static double
sigmoid (double x)
{
  return x >= 0 ? 1.0 / (1.0 + exp (-x)) : exp (x) / (1.0 + exp (x));
}

/* Softmax probability of entry @k of @row [n], in double. */
static double
softmax_at (const float *row,
            guint        n,
            guint        k)
{
  double m = -INFINITY, sum = 0;
  for (guint i = 0; i < n; i++)
    m = MAX (m, row[i]);
  for (guint i = 0; i < n; i++)
    sum += exp ((double) row[i] - m);
  return exp ((double) row[k] - m) / sum;
}

static void
decision_from_row (GbExplainer *self,
                   const float *row,
                   guint        n,
                   GbDecision  *out)
{
  out->log_odds = (double) row[self->pos_id] - (double) row[self->neg_id];
  out->p_positive = sigmoid (out->log_odds);
  out->p_pos_full = softmax_at (row, n, self->pos_id);
  out->p_neg_full = softmax_at (row, n, self->neg_id);
  out->positive = out->log_odds > 0;
}

static GArray *
tokenize (GbExplainer         *self,
          const GbApplication *app,
          GError             **error)
{
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  const GbConfig *c = gb_model_get_config (self->model);
  const char *where = app->id ? app->id : "the application";

  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, app->text, -1, FALSE, error);
  if (ids == NULL)
    return NULL;
  if (ids->len == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: the application is empty", where);
      return NULL;
    }
  if (ids->len > c->n_positions)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: %u tokens, more than the model's context of %u", where, ids->len,
                   c->n_positions);
      return NULL;
    }
  return g_steal_pointer (&ids);
}

/* One forward pass over @tokens; @trace_out (may be NULL) keeps the trace. */
static gboolean
decide_tokens (GbExplainer          *self,
               const gint32         *tokens,
               guint                 T,
               const GbRecord       *record,
               const GbIntervention *iv,
               guint                 n_iv,
               GbDecision           *out,
               GbTrace             **trace_out,
               GCancellable         *cancellable,
               GError              **error)
{
  const GbConfig *c = gb_model_get_config (self->model);
  GbRecord rec = { .logits = GB_LOGITS_LAST };
  if (record != NULL)
    rec = *record;

  g_autoptr (GbTrace) trace = gb_model_forward (self->model, tokens, T, &rec, iv, n_iv, cancellable, error);
  if (trace == NULL)
    return FALSE;
  const guint last = trace->n_logit_rows - 1;
  if (self->classifier)
    decision_from_row (self, trace->class_logits + (gsize) last * c->n_labels, c->n_labels, out);
  else
    decision_from_row (self, trace->logits + (gsize) last * c->n_vocab, c->n_vocab, out);
  if (trace_out != NULL)
    *trace_out = g_steal_pointer (&trace);
  return TRUE;
}

static gboolean
decide_app (GbExplainer          *self,
            const GbApplication  *app,
            const GbIntervention *iv,
            guint                 n_iv,
            GbDecision           *out,
            GCancellable         *cancellable,
            GError              **error)
{
  g_autoptr (GArray) ids = tokenize (self, app, error);
  return ids != NULL
         && decide_tokens (self, (gint32 *) ids->data, ids->len, NULL, iv, n_iv, out, NULL, cancellable, error);
}

/* Variants of one application share its first tokens: a KV cache keeps the
 * original's keys and values, and each variant runs only from where it
 * differs. @valid counts the cache rows that still hold the original's. */
typedef struct
{
  GbExplainer          *ex;
  const gint32         *base;
  guint                 T;
  GbKvCache            *cache;
  guint                 valid;
  const GbIntervention *iv;
  guint                 n_iv;
} Prefix;

static void
prefix_init (Prefix               *p,
             GbExplainer          *ex,
             const gint32         *base,
             guint                 T,
             const GbIntervention *iv,
             guint                 n_iv)
{
  *p = (Prefix) { ex, base, T, gb_kv_cache_new (gb_model_get_config (ex->model)->n_layer), 0, iv, n_iv };
}

static void
prefix_clear (Prefix *p)
{
  g_clear_pointer (&p->cache, gb_kv_cache_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Prefix, prefix_clear)

static gboolean
prefix_decide (Prefix       *p,
               const gint32 *tokens,
               guint         n,
               GbDecision   *out,
               GCancellable *cancellable,
               GError      **error)
{
  static const GbRecord nothing = { .logits = GB_LOGITS_NONE };
  static const GbRecord last = { .logits = GB_LOGITS_LAST };
  GbModel *m = p->ex->model;
  const GbConfig *c = gb_model_get_config (m);
  guint common = 0;

  while (common < n && common < p->T && tokens[common] == p->base[common])
    common++;
  common = MIN (common, n - 1);
  if (common > p->valid)
    {
      if (!gb_forward_core (m, p->cache, p->valid, p->base + p->valid, common - p->valid, &nothing, p->iv, p->n_iv, NULL,
                            NULL, cancellable, error))
        return FALSE;
      p->valid = common;
    }
  g_autoptr (GbTrace) trace = g_new0 (GbTrace, 1);
  trace->n_layer = c->n_layer;
  if (!gb_forward_core (m, p->cache, common, tokens + common, n - common, &last, p->iv, p->n_iv, trace, NULL,
                        cancellable, error))
    return FALSE;
  p->valid = MIN (p->valid, common);
  if (p->ex->classifier)
    decision_from_row (p->ex, trace->class_logits, c->n_labels, out);
  else
    decision_from_row (p->ex, trace->logits, c->n_vocab, out);
  return TRUE;
}

static gboolean
prefix_decide_app (Prefix              *p,
                   const GbApplication *app,
                   GbDecision          *out,
                   GCancellable        *cancellable,
                   GError             **error)
{
  g_autoptr (GArray) ids = tokenize (p->ex, app, error);
  return ids != NULL && prefix_decide (p, (gint32 *) ids->data, ids->len, out, cancellable, error);
}

/* ---- Explainer ---- */

GbExplainer *
gb_explainer_new (GbModel     *model,
                  GbAppSchema *schema,
                  GError     **error)
{
  g_return_val_if_fail (model != NULL && schema != NULL, NULL);

  const GbConfig *c = gb_model_get_config (model);
  g_autoptr (GbExplainer) self = g_new0 (GbExplainer, 1);
  self->model = gb_model_ref (model);
  self->schema = schema;
  self->classifier = c->n_labels > 0;
  if (self->classifier)
    {
      int p = find_class (c, schema->positive), n = find_class (c, schema->negative);
      if ((p < 0 || n < 0) && c->n_labels == 2)
        p = 1, n = 0;
      if (p < 0 || n < 0)
        {
          self->schema = NULL;
          g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED,
                       "%s: no classes named “%s” and “%s” among the model's %u labels", gb_model_get_path (model),
                       schema->positive, schema->negative, c->n_labels);
          return NULL;
        }
      self->pos_id = p, self->neg_id = n;
      return g_steal_pointer (&self);
    }
  GbTokenizer *tok = gb_model_get_tokenizer (model);
  self->pos_id = single_token (tok, schema->positive, error);
  self->neg_id = self->pos_id < 0 ? -1 : single_token (tok, schema->negative, error);
  if (self->pos_id < 0 || self->neg_id < 0 || self->pos_id == self->neg_id)
    {
      if (self->pos_id >= 0 && self->pos_id == self->neg_id)
        g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "the two label words are the same token");
      self->schema = NULL; /* the caller keeps it on failure */
      return NULL;
    }
  return g_steal_pointer (&self);
}

void
gb_explainer_free (GbExplainer *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->model, gb_model_unref);
  g_clear_pointer (&self->schema, gb_app_schema_free);
  g_free (self);
}

GbModel *
gb_explainer_get_model (GbExplainer *self)
{
  return self->model;
}

GbAppSchema *
gb_explainer_get_schema (GbExplainer *self)
{
  return self->schema;
}

gint32
gb_explainer_get_label_token (GbExplainer *self,
                              gboolean     positive)
{
  return positive ? self->pos_id : self->neg_id;
}

gboolean
gb_explainer_decide (GbExplainer          *self,
                     const GbApplication  *app,
                     const GbIntervention *interventions,
                     guint                 n_interventions,
                     GbDecision           *out,
                     GCancellable         *cancellable,
                     GError              **error)
{
  g_return_val_if_fail (self != NULL && app != NULL && out != NULL, FALSE);
  return decide_app (self, app, interventions, n_interventions, out, cancellable, error);
}

static int
compare_activations (gconstpointer a,
                     gconstpointer b)
{
  const GbFeatureActivation *x = a, *y = b;
  if (x->activation != y->activation)
    return x->activation > y->activation ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

GArray *
gb_explainer_sae_features (GbExplainer          *self,
                           const GbApplication  *app,
                           const GbSae          *sae,
                           const GbIntervention *interventions,
                           guint                 n_interventions,
                           gint                  position,
                           guint                 n_positions,
                           guint                 top_n,
                           float                *z_out,
                           GCancellable         *cancellable,
                           GError              **error)
{
  g_return_val_if_fail (self != NULL && app != NULL && sae != NULL, NULL);
  if (!gb_sae_check_model (sae, self->model, error))
    return NULL;
  g_autoptr (GArray) ids = tokenize (self, app, error);
  if (ids == NULL)
    return NULL;

  GbRecord rec = { .logits = GB_LOGITS_NONE };
  rec.hooks[sae->hook] = (guint64) 1 << sae->layer;
  g_autoptr (GbTrace) trace
    = gb_model_forward (self->model, (gint32 *) ids->data, ids->len, &rec, interventions, n_interventions, cancellable, error);
  if (trace == NULL)
    return NULL;
  const gint64 pos = position < 0 ? (gint64) ids->len + position : position;
  if (n_positions == 0 || pos < 0 || pos + n_positions > (gint64) ids->len)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "token positions %d to %d lie outside the application's %u tokens",
                   position, position + (gint) n_positions - 1, ids->len);
      return NULL;
    }
  const float *acts = gb_trace_get (trace, sae->hook, sae->layer);
  g_autofree float *x = g_memdup2 (acts + (gsize) pos * sae->d_in, (gsize) n_positions * sae->d_in * sizeof (float));
  g_autofree float *zs = g_new (float, (gsize) n_positions * sae->d_sae);
  g_autofree float *z = g_new (float, sae->d_sae);
  gb_sae_preprocess (sae, x, n_positions, NULL);
  gb_sae_encode (sae, zs, x, n_positions);
  memcpy (z, zs, sae->d_sae * sizeof (float));
  for (guint r = 1; r < n_positions; r++)
    for (guint j = 0; j < sae->d_sae; j++)
      z[j] = MAX (z[j], zs[(gsize) r * sae->d_sae + j]);
  if (z_out != NULL)
    memcpy (z_out, z, sae->d_sae * sizeof (float));

  GArray *top = g_array_new (FALSE, FALSE, sizeof (GbFeatureActivation));
  for (guint j = 0; j < sae->d_sae; j++)
    if (z[j] > 0)
      {
        GbFeatureActivation fa = { j, z[j] };
        g_array_append_val (top, fa);
      }
  g_array_sort (top, compare_activations);
  if (top->len > top_n)
    g_array_set_size (top, top_n);
  return top;
}

void
gb_explain_options_init (GbExplainOptions *options)
{
  *options = (GbExplainOptions) {
    .occlusion = GB_OCCLUDE_REMOVE,
    .ig_steps = DEFAULT_IG_STEPS,
    .token_occlusion = TRUE,
    .gradients = TRUE,
    .counterfactual = TRUE,
    .max_candidates = DEFAULT_MAX_CANDIDATES,
  };
}

static void
counterfactual_free (gpointer data)
{
  GbCounterfactual *cf = data;
  g_free (cf->field);
  g_free (cf->from);
  g_free (cf->to);
  g_free (cf);
}

void
gb_explanation_free (GbExplanation *e)
{
  if (e == NULL)
    return;
  gb_application_free (e->app);
  g_free (e->class_probs);
  g_free (e->tokens);
  g_free (e->token_start);
  g_free (e->token_end);
  g_free (e->token_field);
  g_free (e->occlusion);
  g_free (e->occluded_log_odds);
  g_free (e->token_occlusion);
  g_free (e->grad_x_input);
  g_free (e->ig);
  g_free (e->field_grad_x_input);
  g_free (e->field_ig);
  g_free (e->gradient_note);
  g_free (e->attn_heads);
  g_free (e->attn_mean);
  g_free (e->attn_rollout);
  g_free (e->field_rollout);
  if (e->counterfactuals)
    g_ptr_array_unref (e->counterfactuals);
  g_free (e);
}

/* ---- Evidence ---- */

typedef struct
{
  GbProgressFunc func;
  gpointer       data;
  guint          done, total;
} Progress;

static void
step (Progress   *p,
      const char *message)
{
  p->done++;
  if (p->func != NULL)
    p->func (MIN (1.0, (double) p->done / MAX (1, p->total)), message, p->data);
}

/* Byte spans of the tokens, and the field each falls in. */
static void
map_tokens (GbExplainer   *self,
            GbExplanation *e)
{
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  gsize at = 0;

  e->token_start = g_new (gsize, e->n_tokens);
  e->token_end = g_new (gsize, e->n_tokens);
  e->token_field = g_new (int, e->n_tokens);
  for (guint t = 0; t < e->n_tokens; t++)
    {
      gsize n = 0;
      gb_tokenizer_token_bytes (tok, e->tokens[t], &n);
      e->token_start[t] = at;
      e->token_end[t] = at += n;
      e->token_field[t] = -1;
      for (guint f = 0; f < e->n_fields; f++)
        {
          const GbAppField *af = g_ptr_array_index (e->app->fields, f);
          if (af->end > af->start && e->token_start[t] < af->end && e->token_end[t] > af->start)
            {
              e->token_field[t] = (int) f;
              break;
            }
        }
    }
}

static double *
sum_per_field (const GbExplanation *e,
               const double        *per_token)
{
  double *out = g_new0 (double, e->n_fields);
  for (guint t = 0; t < e->n_tokens; t++)
    if (e->token_field[t] >= 0)
      out[e->token_field[t]] += per_token[t];
  return out;
}

static gboolean
occlude_fields (GbExplainer            *self,
                GbExplanation          *e,
                const GbExplainOptions *o,
                GCancellable           *cancellable,
                Progress               *progress,
                GError                **error)
{
  g_auto (Prefix) pre;
  prefix_init (&pre, self, e->tokens, e->n_tokens, o->interventions, o->n_interventions);
  e->occlusion_mode = o->occlusion;
  e->occlusion = g_new0 (double, e->n_fields);
  e->occluded_log_odds = g_new0 (double, e->n_fields);
  for (guint f = 0; f < e->n_fields; f++)
    {
      const GbAppField *af = g_ptr_array_index (e->app->fields, f);
      g_autoptr (GbApplication) changed = NULL;
      if (o->occlusion == GB_OCCLUDE_NEUTRAL && af->spec != NULL && af->spec->neutral != NULL)
        {
          g_autofree char *shown = gb_field_format (af->spec, af->spec->neutral);
          changed = gb_application_with_value (e->app, f, shown);
        }
      else
        changed = gb_application_without_field (e->app, f);
      GbDecision d;
      if (!prefix_decide_app (&pre, changed, &d, cancellable, error))
        return FALSE;
      e->occluded_log_odds[f] = d.log_odds;
      e->occlusion[f] = e->decision.log_odds - d.log_odds;
      step (progress, "Occlusion");
    }
  return TRUE;
}

static gboolean
occlude_tokens (GbExplainer            *self,
                GbExplanation          *e,
                const GbExplainOptions *o,
                GCancellable           *cancellable,
                Progress               *progress,
                GError                **error)
{
  const guint T = e->n_tokens;
  g_autofree gint32 *buf = g_new (gint32, T);

  g_auto (Prefix) pre;
  prefix_init (&pre, self, e->tokens, T, o->interventions, o->n_interventions);
  e->token_occlusion = g_new0 (double, T);
  for (guint t = 0; t + 1 < T; t++)
    {
      /* The decision position itself stays: removing it changes the question. */
      memcpy (buf, e->tokens, t * sizeof (gint32));
      memcpy (buf + t, e->tokens + t + 1, (T - t - 1) * sizeof (gint32));
      GbDecision d;
      if (!prefix_decide (&pre, buf, T - 1, &d, cancellable, error))
        return FALSE;
      e->token_occlusion[t] = e->decision.log_odds - d.log_odds;
      step (progress, "Occlusion per token");
    }
  return TRUE;
}

/* Gradient x input and integrated gradients on the token embeddings, with
 * the position embeddings as the baseline: x = wte[tok] + wpe, x' = wpe.
 * IG_t = sum_d (x - x')_td * mean_k dF/dx_td (x' + a_k (x - x')), with the
 * midpoint rule a_k = (k + 1/2) / m; completeness says sum_t IG_t = F(x) - F(x'). */
static gboolean
gradients (GbExplainer            *self,
           GbExplanation          *e,
           const GbExplainOptions *o,
           GCancellable           *cancellable,
           Progress               *progress,
           GError                **error)
{
  GbModel *m = self->model;
  const guint T = e->n_tokens, D = gb_model_get_config (m)->n_embd;
  const guint steps = o->ig_steps ? o->ig_steps : DEFAULT_IG_STEPS;

  if (self->classifier || o->n_interventions > 0)
    {
      e->gradient_note = g_strdup (self->classifier ? "not computed: gradients through a classification head are not supported"
                                                    : "not computed: gradients with interventions are not supported yet");
      progress->done += steps + 2;
      return TRUE;
    }
  g_autoptr (GError) local = NULL;
  g_autoptr (GbNet) net = gb_net_new_from_model (m, FALSE, &local);
  if (net == NULL)
    {
      e->gradient_note = g_strdup_printf ("not computed: %s", local->message);
      progress->done += steps + 2;
      return TRUE;
    }
  g_autofree float *base = g_new (float, (gsize) T * D);
  g_autofree float *emb = g_new (float, (gsize) T * D);
  g_autofree float *grad = g_new (float, (gsize) T * D);
  g_autofree double *acc = g_new0 (double, (gsize) T * D);
  const float *wte = m->wte, *wpe = m->wpe;
  float fx, fbase;

  memcpy (base, wpe, (gsize) T * D * sizeof (float));
  if (!gb_net_grad_logit_diff (net, e->tokens, NULL, T, T - 1, self->pos_id, self->neg_id, grad, NULL, &fx, error))
    return FALSE;
  e->grad_x_input = g_new0 (double, T);
  for (guint t = 0; t < T; t++)
    for (guint d = 0; d < D; d++)
      e->grad_x_input[t] += (double) wte[(gsize) e->tokens[t] * D + d] * grad[(gsize) t * D + d];
  step (progress, "Gradient x input");
  if (!gb_net_grad_logit_diff (net, e->tokens, base, T, T - 1, self->pos_id, self->neg_id, grad, NULL, &fbase, error))
    return FALSE;
  step (progress, "Integrated gradients");

  for (guint k = 0; k < steps; k++)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      const float a = (float) ((k + 0.5) / steps);
      for (guint t = 0; t < T; t++)
        for (guint d = 0; d < D; d++)
          emb[(gsize) t * D + d] = base[(gsize) t * D + d] + a * wte[(gsize) e->tokens[t] * D + d];
      if (!gb_net_grad_logit_diff (net, e->tokens, emb, T, T - 1, self->pos_id, self->neg_id, grad, NULL, NULL, error))
        return FALSE;
      for (gsize i = 0; i < (gsize) T * D; i++)
        acc[i] += grad[i];
      step (progress, "Integrated gradients");
    }
  e->ig = g_new0 (double, T);
  e->ig_sum = 0;
  for (guint t = 0; t < T; t++)
    {
      for (guint d = 0; d < D; d++)
        e->ig[t] += (double) wte[(gsize) e->tokens[t] * D + d] * acc[(gsize) t * D + d] / steps;
      e->ig_sum += e->ig[t];
    }
  e->ig_steps = steps;
  e->baseline_log_odds = fbase;
  const double delta = (double) fx - fbase;
  e->ig_completeness = fabs (e->ig_sum - delta) / MAX (fabs (delta), 1e-12);
  e->field_grad_x_input = sum_per_field (e, e->grad_x_input);
  e->field_ig = sum_per_field (e, e->ig);
  return TRUE;
}

static void
attention (GbExplainer   *self,
           GbExplanation *e,
           GbTrace       *trace)
{
  const GbConfig *c = gb_model_get_config (self->model);
  const guint L = c->n_layer, H = c->n_head, T = e->n_tokens;
  g_autofree float *means = g_new (float, (gsize) L * T * T);
  g_autofree const float **layers = g_new (const float *, L);
  g_autofree float *roll = g_new (float, (gsize) T * T);

  e->n_layer = L, e->n_head = H;
  e->attn_heads = g_new (float, (gsize) L * H * T);
  e->attn_mean = g_new (float, (gsize) L * T);
  for (guint l = 0; l < L; l++)
    {
      const float *pat = gb_trace_get (trace, GB_HOOK_PATTERN, l);
      for (guint h = 0; h < H; h++)
        memcpy (e->attn_heads + ((gsize) l * H + h) * T, pat + ((gsize) h * T + (T - 1)) * T, T * sizeof (float));
      gb_attention_mean_heads (means + (gsize) l * T * T, pat, H, T);
      memcpy (e->attn_mean + (gsize) l * T, means + ((gsize) l * T + (T - 1)) * T, T * sizeof (float));
      layers[l] = means + (gsize) l * T * T;
    }
  gb_attention_rollout (roll, layers, L, T);
  e->attn_rollout = g_memdup2 (roll + (gsize) (T - 1) * T, T * sizeof (float));
  g_autofree double *r = g_new (double, T);
  for (guint t = 0; t < T; t++)
    r[t] = e->attn_rollout[t];
  e->field_rollout = sum_per_field (e, r);
}

static gboolean
parse_number (const char *shown,
              double     *out)
{
  GString *s = g_string_new (NULL);
  for (const char *p = shown; *p; p++)
    if (*p != ',' && *p != '$')
      g_string_append_c (s, *p);
  g_autofree char *c = g_string_free (s, FALSE);
  char *end = NULL;
  *out = g_ascii_strtod (c, &end);
  return *c && end && *end == '\0' && isfinite (*out);
}

/* Candidate values for one field, nearest first, as displayed text. */
static GPtrArray *
candidates (const GbAppField *af,
            guint             max,
            double          **distance)
{
  const GbFieldSpec *s = af->spec;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) dist = g_array_new (FALSE, FALSE, sizeof (double));
  double cur;

  if (s == NULL)
    return NULL;
  if ((s->type == GB_FIELD_INTEGER || s->type == GB_FIELD_NUMBER) && s->step > 0 && parse_number (af->value, &cur))
    {
      const double range = MAX (s->search_max - s->search_min, s->step);
      const double n = floor ((s->search_max - s->search_min) / s->step);
      /* Grid points by distance: k steps below and above the nearest. */
      for (guint r = 0; out->len < max && r <= n + 1; r++)
        for (int sign = 1; sign >= -1; sign -= 2)
          {
            double k = floor ((cur - s->search_min) / s->step) + (sign > 0 ? r + 1 : -(double) r);
            double v = s->search_min + k * s->step;
            if (k < 0 || k > n || v == cur || v < s->min || v > s->max || out->len >= max)
              continue;
            char buf[G_ASCII_DTOSTR_BUF_SIZE];
            g_autofree char *canon = s->type == GB_FIELD_INTEGER ? g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) v)
                                                                  : g_strdup (g_ascii_dtostr (buf, sizeof buf, v));
            g_ptr_array_add (out, gb_field_format (s, canon));
            double dv = fabs (v - cur) / range;
            g_array_append_val (dist, dv);
          }
    }
  else if (s->values != NULL)
    for (guint i = 0; s->values[i] && out->len < max; i++)
      if (!g_str_equal (s->values[i], af->value))
        {
          double one = 1.0;
          g_ptr_array_add (out, g_strdup (s->values[i]));
          g_array_append_val (dist, one);
        }
  if (out->len == 0)
    return NULL;
  *distance = (double *) g_array_free (g_steal_pointer (&dist), FALSE);
  return g_steal_pointer (&out);
}

static int
compare_counterfactuals (gconstpointer a,
                         gconstpointer b)
{
  const GbCounterfactual *x = *(GbCounterfactual **) a, *y = *(GbCounterfactual **) b;
  return (x->distance > y->distance) - (x->distance < y->distance);
}

static gboolean
counterfactuals (GbExplainer            *self,
                 GbExplanation          *e,
                 const GbExplainOptions *o,
                 GCancellable           *cancellable,
                 Progress               *progress,
                 GError                **error)
{
  const guint max = o->max_candidates ? o->max_candidates : DEFAULT_MAX_CANDIDATES;

  g_auto (Prefix) pre;
  prefix_init (&pre, self, e->tokens, e->n_tokens, o->interventions, o->n_interventions);
  e->counterfactuals = g_ptr_array_new_with_free_func (counterfactual_free);
  for (guint f = 0; f < e->n_fields; f++)
    {
      const GbAppField *af = g_ptr_array_index (e->app->fields, f);
      g_autofree double *dist = NULL;
      g_autoptr (GPtrArray) cand = candidates (af, max, &dist);
      if (cand == NULL)
        continue;
      const gboolean numeric = af->spec->type == GB_FIELD_INTEGER || af->spec->type == GB_FIELD_NUMBER;
      GbCounterfactual *best = NULL;
      guint tried = 0, flipping = 0;
      for (guint i = 0; i < cand->len && !(numeric && best); i++)
        {
          g_autoptr (GbApplication) changed = gb_application_with_value (e->app, f, g_ptr_array_index (cand, i));
          GbDecision d;
          if (!prefix_decide_app (&pre, changed, &d, cancellable, error))
            {
              if (best)
                counterfactual_free (best);
              return FALSE;
            }
          tried++;
          if (d.positive != e->decision.positive)
            {
              flipping++;
              if (best == NULL)
                {
                  best = g_new0 (GbCounterfactual, 1);
                  best->field = g_strdup (af->name);
                  best->from = g_strdup (af->value);
                  best->to = g_strdup (g_ptr_array_index (cand, i));
                  best->log_odds = d.log_odds;
                  best->distance = dist[i];
                }
            }
        }
      step (progress, "Counterfactuals");
      if (best != NULL)
        {
          best->n_tried = tried, best->n_flipping = flipping;
          g_ptr_array_add (e->counterfactuals, best);
        }
    }
  g_ptr_array_sort (e->counterfactuals, compare_counterfactuals);
  return TRUE;
}

GbExplanation *
gb_explainer_explain (GbExplainer            *self,
                      const GbApplication    *app,
                      const GbExplainOptions *options,
                      GCancellable           *cancellable,
                      GbProgressFunc          progress,
                      gpointer                progress_data,
                      GError                **error)
{
  g_return_val_if_fail (self != NULL && app != NULL, NULL);

  GbExplainOptions defaults;
  gb_explain_options_init (&defaults);
  const GbExplainOptions *o = options ? options : &defaults;
  g_autoptr (GArray) ids = tokenize (self, app, error);
  if (ids == NULL)
    return NULL;

  g_autoptr (GbExplanation) e = g_new0 (GbExplanation, 1);
  e->app = gb_application_copy (app);
  e->classifier = self->classifier;
  e->n_tokens = ids->len;
  e->tokens = g_memdup2 (ids->data, ids->len * sizeof (gint32));
  e->n_fields = app->fields->len;
  map_tokens (self, e);

  Progress p = { progress, progress_data, 0, 1 + e->n_fields };
  if (o->token_occlusion)
    p.total += e->n_tokens - 1;
  if (o->gradients)
    p.total += (o->ig_steps ? o->ig_steps : DEFAULT_IG_STEPS) + 2;
  if (o->counterfactual)
    p.total += e->n_fields;

  GbRecord rec = { .logits = GB_LOGITS_LAST };
  rec.hooks[GB_HOOK_PATTERN] = GB_ALL_LAYERS;
  g_autoptr (GbTrace) trace = NULL;
  if (!decide_tokens (self, e->tokens, e->n_tokens, &rec, o->interventions, o->n_interventions, &e->decision, &trace,
                      cancellable, error))
    return NULL;
  if (self->classifier)
    {
      const GbConfig *c = gb_model_get_config (self->model);
      e->n_classes = c->n_labels;
      e->class_probs = g_new (double, c->n_labels);
      for (guint k = 0; k < c->n_labels; k++)
        e->class_probs[k] = softmax_at (trace->class_logits + (gsize) (trace->n_logit_rows - 1) * c->n_labels, c->n_labels, k);
    }
  attention (self, e, trace);
  step (&p, "Decision");
  if (!occlude_fields (self, e, o, cancellable, &p, error))
    return NULL;
  if (o->token_occlusion && !occlude_tokens (self, e, o, cancellable, &p, error))
    return NULL;
  if (o->gradients && !gradients (self, e, o, cancellable, &p, error))
    return NULL;
  if (o->counterfactual && !counterfactuals (self, e, o, cancellable, &p, error))
    return NULL;
  return g_steal_pointer (&e);
}

/* ---- Async ---- */

/* The explainer is not a GObject, so it travels in the task data; the
 * caller keeps it alive until the callback. */
typedef struct
{
  GbExplainer          *explainer;
  GbApplication        *app;
  GbExplainOptions      options;
  GPtrArray            *apps;
  char                 *group_key;
  const GbIntervention *interventions;
  guint                 n_interventions;
  GbProgressFunc        progress;
  gpointer              progress_data;
} TaskData;

static void
task_data_free (gpointer data)
{
  TaskData *td = data;
  g_clear_pointer (&td->app, gb_application_free);
  g_clear_pointer (&td->apps, g_ptr_array_unref);
  g_free (td->group_key);
  g_free (td);
}

static void
explain_thread (GTask        *task,
                gpointer      source,
                gpointer      data,
                GCancellable *cancellable)
{
  gb_thread_make_background ();
  TaskData *td = data;
  GError *error = NULL;
  GbExplanation *e = gb_explainer_explain (td->explainer, td->app, &td->options, cancellable, td->progress,
                                           td->progress_data, &error);
  if (e == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, e, (GDestroyNotify) gb_explanation_free);
}

void
gb_explainer_explain_async (GbExplainer            *self,
                            const GbApplication    *app,
                            const GbExplainOptions *options,
                            GCancellable           *cancellable,
                            GbProgressFunc          progress,
                            gpointer                progress_data,
                            GAsyncReadyCallback     callback,
                            gpointer                user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  TaskData *td = g_new0 (TaskData, 1);

  td->explainer = self;
  td->app = gb_application_copy (app);
  if (options)
    td->options = *options;
  else
    gb_explain_options_init (&td->options);
  td->progress = progress, td->progress_data = progress_data;
  g_task_set_source_tag (task, gb_explainer_explain_async);
  g_task_set_task_data (task, td, task_data_free);
  g_task_run_in_thread (task, explain_thread);
}

GbExplanation *
gb_explainer_explain_finish (GbExplainer  *self,
                             GAsyncResult *result,
                             GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gb_explainer_explain_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- Audit ---- */

static void
audit_group_free (gpointer data)
{
  GbAuditGroup *g = data;
  g_free (g->group);
  g_free (g);
}

void
gb_audit_free (GbAudit *audit)
{
  if (audit == NULL)
    return;
  g_free (audit->group_key);
  g_clear_pointer (&audit->groups, g_ptr_array_unref);
  g_free (audit->total.group);
  g_free (audit->log_odds);
  g_free (audit);
}

static void
tally (GbAuditGroup        *g,
       const GbApplication *app,
       gboolean             positive)
{
  g->n++;
  g->n_positive += positive;
  if (app->true_label != NULL)
    {
      const gboolean truth = g_str_equal (app->true_label, "positive");
      g->n_labeled++;
      g->tp += truth && positive;
      g->fp += !truth && positive;
      g->fn += truth && !positive;
      g->tn += !truth && !positive;
    }
  g->rate = (double) g->n_positive / g->n;
}

static int
compare_groups (gconstpointer a,
                gconstpointer b)
{
  return g_strcmp0 ((*(GbAuditGroup **) a)->group, (*(GbAuditGroup **) b)->group);
}

GbAudit *
gb_explainer_audit (GbExplainer          *self,
                    GPtrArray            *apps,
                    const char           *group_key,
                    const GbIntervention *interventions,
                    guint                 n_interventions,
                    GCancellable         *cancellable,
                    GbProgressFunc        progress,
                    gpointer              progress_data,
                    GError              **error)
{
  g_return_val_if_fail (self != NULL && apps != NULL, NULL);

  g_autoptr (GbAudit) audit = g_new0 (GbAudit, 1);
  g_autoptr (GHashTable) groups = g_hash_table_new (g_str_hash, g_str_equal);
  audit->group_key = g_strdup (group_key);
  audit->n = apps->len;
  audit->groups = g_ptr_array_new_with_free_func (audit_group_free);
  audit->total.group = g_strdup ("all");
  audit->log_odds = g_new0 (double, MAX (1, apps->len));

  for (guint i = 0; i < apps->len; i++)
    {
      const GbApplication *app = g_ptr_array_index (apps, i);
      GbDecision d;
      g_autoptr (GError) local = NULL;
      if (!decide_app (self, app, interventions, n_interventions, &d, cancellable, &local))
        {
          if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_propagate_error (error, g_steal_pointer (&local));
          else if (app->id != NULL)
            g_set_error (error, GB_ERROR, local->code, "record %u (id %s): %s", i + 1, app->id, local->message);
          else
            g_set_error (error, GB_ERROR, local->code, "record %u: %s", i + 1, local->message);
          return NULL;
        }
      audit->log_odds[i] = d.log_odds;
      const char *key = group_key ? gb_application_get_attr (app, group_key) : NULL;
      key = key ? key : "(none)";
      GbAuditGroup *g = g_hash_table_lookup (groups, key);
      if (g == NULL)
        {
          g = g_new0 (GbAuditGroup, 1);
          g->group = g_strdup (key);
          g_ptr_array_add (audit->groups, g);
          g_hash_table_insert (groups, g->group, g);
        }
      tally (g, app, d.positive);
      tally (&audit->total, app, d.positive);
      if (progress != NULL && (i % 8 == 7 || i + 1 == apps->len))
        progress ((double) (i + 1) / apps->len, "Deciding", progress_data);
    }
  g_ptr_array_sort (audit->groups, compare_groups);
  double lo = 1, hi = 0;
  for (guint i = 0; i < audit->groups->len; i++)
    {
      const GbAuditGroup *g = g_ptr_array_index (audit->groups, i);
      lo = MIN (lo, g->rate), hi = MAX (hi, g->rate);
    }
  audit->gap = audit->groups->len > 0 ? hi - lo : 0;
  return g_steal_pointer (&audit);
}

static void
audit_thread (GTask        *task,
              gpointer      source,
              gpointer      data,
              GCancellable *cancellable)
{
  gb_thread_make_background ();
  TaskData *td = data;
  GError *error = NULL;
  GbAudit *a = gb_explainer_audit (td->explainer, td->apps, td->group_key, td->interventions, td->n_interventions,
                                   cancellable, td->progress, td->progress_data, &error);
  if (a == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, a, (GDestroyNotify) gb_audit_free);
}

void
gb_explainer_audit_async (GbExplainer          *self,
                          GPtrArray            *apps,
                          const char           *group_key,
                          const GbIntervention *interventions,
                          guint                 n_interventions,
                          GCancellable         *cancellable,
                          GbProgressFunc        progress,
                          gpointer              progress_data,
                          GAsyncReadyCallback   callback,
                          gpointer              user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  TaskData *td = g_new0 (TaskData, 1);

  td->explainer = self;
  td->apps = g_ptr_array_ref (apps);
  td->group_key = g_strdup (group_key);
  td->interventions = interventions, td->n_interventions = n_interventions;
  td->progress = progress, td->progress_data = progress_data;
  g_task_set_source_tag (task, gb_explainer_audit_async);
  g_task_set_task_data (task, td, task_data_free);
  g_task_run_in_thread (task, audit_thread);
}

GbAudit *
gb_explainer_audit_finish (GbExplainer  *self,
                           GAsyncResult *result,
                           GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gb_explainer_audit_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- JSON and sentences ---- */

static void
add_doubles (JsonBuilder  *b,
             const char   *name,
             const double *v,
             guint         n)
{
  json_builder_set_member_name (b, name);
  if (v == NULL)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++)
    json_builder_add_double_value (b, v[i]);
  json_builder_end_array (b);
}

static void
add_floats (JsonBuilder *b,
            const char  *name,
            const float *v,
            guint        n)
{
  g_autofree double *d = v ? g_new (double, n) : NULL;
  for (guint i = 0; v && i < n; i++)
    d[i] = v[i];
  add_doubles (b, name, d, n);
}

static void
add_group (JsonBuilder        *b,
           const GbAuditGroup *g)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "group");
  json_builder_add_string_value (b, g->group);
  json_builder_set_member_name (b, "n");
  json_builder_add_int_value (b, g->n);
  json_builder_set_member_name (b, "n_positive");
  json_builder_add_int_value (b, g->n_positive);
  json_builder_set_member_name (b, "rate");
  json_builder_add_double_value (b, g->rate);
  json_builder_set_member_name (b, "n_labeled");
  json_builder_add_int_value (b, g->n_labeled);
  const char *names[] = { "tp", "fp", "fn", "tn" };
  const guint vals[] = { g->tp, g->fp, g->fn, g->tn };
  for (guint i = 0; i < 4; i++)
    {
      json_builder_set_member_name (b, names[i]);
      json_builder_add_int_value (b, vals[i]);
    }
  json_builder_end_object (b);
}

static void
add_audit (JsonBuilder   *b,
           const GbAudit *a)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "group_key");
  json_builder_add_string_value (b, a->group_key);
  json_builder_set_member_name (b, "n");
  json_builder_add_int_value (b, a->n);
  json_builder_set_member_name (b, "gap");
  json_builder_add_double_value (b, a->gap);
  json_builder_set_member_name (b, "total");
  add_group (b, &a->total);
  json_builder_set_member_name (b, "groups");
  json_builder_begin_array (b);
  for (guint i = 0; i < a->groups->len; i++)
    add_group (b, g_ptr_array_index (a->groups, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static char *
builder_to_string (JsonBuilder *b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 1);
  char *s = json_generator_to_data (gen, NULL);
  char *out = g_strconcat (s, "\n", NULL);
  g_free (s);
  return out;
}

char *
gb_audit_to_json (const GbAudit *audit)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  add_audit (b, audit);
  return builder_to_string (b);
}

static void
add_string (JsonBuilder *b,
            const char  *name,
            const char  *value)
{
  json_builder_set_member_name (b, name);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_double (JsonBuilder *b,
            const char  *name,
            double       value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_double_value (b, value);
}

char *
gb_explanation_to_json (const GbExplanation *e,
                        GbExplainer         *explainer,
                        const GbAudit       *audit)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  GbAppSchema *schema = explainer->schema;
  GbTokenizer *tok = gb_model_get_tokenizer (explainer->model);
  const guint T = e->n_tokens, F = e->n_fields;

  json_builder_begin_object (b);
  add_string (b, "model", gb_model_get_path (explainer->model));
  add_string (b, "id", e->app->id);
  add_string (b, "text", e->app->text);
  json_builder_set_member_name (b, "decision");
  json_builder_begin_object (b);
  g_autofree char *label = g_strstrip (g_strdup (e->decision.positive ? schema->positive : schema->negative));
  add_string (b, "label", label);
  add_double (b, "log_odds", e->decision.log_odds);
  add_double (b, "p_positive", e->decision.p_positive);
  add_double (b, "p_positive_word", e->decision.p_pos_full);
  add_double (b, "p_negative_word", e->decision.p_neg_full);
  add_string (b, "source", e->classifier ? "classification head" : "next-token logits");
  json_builder_set_member_name (b, "positive_id");
  json_builder_add_int_value (b, explainer->pos_id);
  json_builder_set_member_name (b, "negative_id");
  json_builder_add_int_value (b, explainer->neg_id);
  if (e->class_probs != NULL)
    {
      const GbConfig *c = gb_model_get_config (explainer->model);
      json_builder_set_member_name (b, "classes");
      json_builder_begin_array (b);
      for (guint k = 0; k < e->n_classes; k++)
        {
          json_builder_begin_object (b);
          add_string (b, "label", c->labels && c->labels[k] ? c->labels[k] : "");
          add_double (b, "p", e->class_probs[k]);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
    }
  json_builder_end_object (b);

  json_builder_set_member_name (b, "fields");
  json_builder_begin_array (b);
  for (guint f = 0; f < F; f++)
    {
      const GbAppField *af = g_ptr_array_index (e->app->fields, f);
      json_builder_begin_object (b);
      add_string (b, "name", af->name);
      add_string (b, "value", af->value);
      json_builder_set_member_name (b, "span");
      json_builder_begin_array (b);
      json_builder_add_int_value (b, af->start);
      json_builder_add_int_value (b, af->end);
      json_builder_end_array (b);
      add_double (b, "occlusion", e->occlusion[f]);
      add_double (b, "occluded_log_odds", e->occluded_log_odds[f]);
      if (e->field_ig)
        {
          add_double (b, "grad_x_input", e->field_grad_x_input[f]);
          add_double (b, "integrated_gradients", e->field_ig[f]);
        }
      if (e->field_rollout)
        add_double (b, "attention_rollout", e->field_rollout[f]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "tokens");
  json_builder_begin_array (b);
  for (guint t = 0; t < T; t++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "id");
      json_builder_add_int_value (b, e->tokens[t]);
      add_string (b, "text", gb_tokenizer_token_string (tok, e->tokens[t]));
      json_builder_set_member_name (b, "field");
      json_builder_add_int_value (b, e->token_field[t]);
      if (e->token_occlusion)
        add_double (b, "occlusion", e->token_occlusion[t]);
      if (e->ig)
        {
          add_double (b, "grad_x_input", e->grad_x_input[t]);
          add_double (b, "integrated_gradients", e->ig[t]);
        }
      if (e->attn_rollout)
        add_double (b, "attention_rollout", e->attn_rollout[t]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "integrated_gradients");
  json_builder_begin_object (b);
  add_string (b, "note", e->gradient_note);
  if (e->ig)
    {
      json_builder_set_member_name (b, "steps");
      json_builder_add_int_value (b, e->ig_steps);
      add_string (b, "baseline", "position embeddings only (token embeddings zeroed)");
      add_double (b, "baseline_log_odds", e->baseline_log_odds);
      add_double (b, "sum", e->ig_sum);
      add_double (b, "completeness_error", e->ig_completeness);
    }
  json_builder_end_object (b);

  json_builder_set_member_name (b, "attention");
  json_builder_begin_object (b);
  add_string (b, "caveat", "Attention weights are not explanations (Jain & Wallace 2019): they show where the decision "
                           "position reads from, not what caused the decision.");
  json_builder_set_member_name (b, "n_layer");
  json_builder_add_int_value (b, e->n_layer);
  json_builder_set_member_name (b, "n_head");
  json_builder_add_int_value (b, e->n_head);
  add_floats (b, "heads", e->attn_heads, e->n_layer * e->n_head * T);
  add_floats (b, "layer_mean", e->attn_mean, e->n_layer * T);
  add_floats (b, "rollout", e->attn_rollout, T);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "counterfactuals");
  json_builder_begin_array (b);
  for (guint i = 0; e->counterfactuals && i < e->counterfactuals->len; i++)
    {
      const GbCounterfactual *cf = g_ptr_array_index (e->counterfactuals, i);
      json_builder_begin_object (b);
      add_string (b, "field", cf->field);
      add_string (b, "from", cf->from);
      add_string (b, "to", cf->to);
      add_double (b, "log_odds", cf->log_odds);
      add_double (b, "distance", cf->distance);
      json_builder_set_member_name (b, "n_tried");
      json_builder_add_int_value (b, cf->n_tried);
      json_builder_set_member_name (b, "n_flipping");
      json_builder_add_int_value (b, cf->n_flipping);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  g_autofree char *sentence = gb_explanation_counterfactual_sentence (e, explainer);
  add_string (b, "counterfactual_sentence", sentence);
  add_string (b, "occlusion_mode", e->occlusion_mode == GB_OCCLUDE_NEUTRAL ? "neutral" : "remove");
  if (audit != NULL)
    {
      json_builder_set_member_name (b, "audit");
      add_audit (b, audit);
    }
  json_builder_end_object (b);
  return builder_to_string (b);
}

char *
gb_explanation_counterfactual_sentence (const GbExplanation *e,
                                        GbExplainer         *explainer)
{
  if (e->counterfactuals == NULL || e->counterfactuals->len == 0)
    return NULL;
  const char *word = e->decision.positive ? explainer->schema->negative : explainer->schema->positive;
  g_autofree char *w = g_strstrip (g_strdup (word));
  GString *s = g_string_new (NULL);
  if (*w)
    {
      g_autofree char *rest = g_utf8_substring (w, 1, g_utf8_strlen (w, -1));
      g_autofree char *first = g_utf8_strup (w, g_utf8_next_char (w) - w);
      g_string_append_printf (s, "%s%s", first, rest);
    }
  for (guint i = 0; i < e->counterfactuals->len; i++)
    {
      const GbCounterfactual *cf = g_ptr_array_index (e->counterfactuals, i);
      g_string_append_printf (s, "%s if %s were %s instead of %s", i == 0 ? "" : i == 1 ? " (or" : ", or", cf->field,
                              cf->to, cf->from);
      if (cf->n_tried > 1 && cf->n_flipping > 1)
        g_string_append_printf (s, " [%u of %u other values flip it]", cf->n_flipping, cf->n_tried);
    }
  if (e->counterfactuals->len > 1)
    g_string_append_c (s, ')');
  g_string_append_c (s, '.');
  return g_string_free (s, FALSE);
}
