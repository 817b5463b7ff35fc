/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "gb-error.h"
#include "gb-heads.h"

#define DEFAULT_SEQ_LEN 50

static const struct
{
  const char *name;
  const char *short_name;
  double      threshold;
} roles[GB_N_HEAD_ROLES] = {
  [GB_HEAD_ROLE_PREVIOUS] = { "previous-token", "prev", 0.4 },
  [GB_HEAD_ROLE_FIRST] = { "first-token", "bos", 0.6 },
  [GB_HEAD_ROLE_SELF] = { "self", "self", 0.4 },
  [GB_HEAD_ROLE_INDUCTION] = { "induction", "ind", 0.3 },
  [GB_HEAD_ROLE_DIFFUSE] = { "diffuse", "diff", 0.85 },
};

const char *
gb_head_role_name (GbHeadRole role)
{
  g_return_val_if_fail (role < GB_N_HEAD_ROLES, NULL);
  return roles[role].name;
}

const char *
gb_head_role_short (GbHeadRole role)
{
  g_return_val_if_fail (role < GB_N_HEAD_ROLES, NULL);
  return roles[role].short_name;
}

double
gb_head_role_threshold (GbHeadRole role)
{
  g_return_val_if_fail (role < GB_N_HEAD_ROLES, 1.0);
  return roles[role].threshold;
}

/* ---- Kernels on one [T, T] pattern ---- */

/* Mean over rows i in [1, T) of A[i, i + delta] (delta 0 or -1), or of
 * A[i, 0] when @first. */
static double
mean_offset (const float *A,
             guint        T,
             int          delta,
             gboolean     first)
{
  double sum = 0;

  if (T < 2)
    return 0;
  for (guint i = 1; i < T; i++)
    sum += A[(gsize) i * T + (first ? 0 : (guint) ((int) i + delta))];
  return sum / (T - 1);
}

double
gb_pattern_previous_score (const float *pattern,
                           guint        T)
{
  return mean_offset (pattern, T, -1, FALSE);
}

double
gb_pattern_first_score (const float *pattern,
                        guint        T)
{
  return mean_offset (pattern, T, 0, TRUE);
}

double
gb_pattern_self_score (const float *pattern,
                       guint        T)
{
  return mean_offset (pattern, T, 0, FALSE);
}

double
gb_pattern_diffuse_score (const float *pattern,
                          guint        T)
{
  double sum = 0;

  if (T < 2)
    return 0;
  for (guint i = 1; i < T; i++)
    {
      const float *row = pattern + (gsize) i * T;
      double h = 0;
      for (guint j = 0; j <= i; j++)
        if (row[j] > 0)
          h -= row[j] * log (row[j]);
      sum += h / log (i + 1.0);
    }
  return sum / (T - 1);
}

double
gb_pattern_induction_score (const float *pattern,
                            guint        T,
                            guint        offset,
                            guint        n)
{
  double sum = 0;

  g_return_val_if_fail (offset + 2 * n <= T, 0);
  if (n < 2)
    return 0;
  for (guint k = 0; k + 1 < n; k++)
    sum += pattern[(gsize) (offset + n + k) * T + offset + k + 1];
  return sum / (n - 1);
}

/* ---- Role scores of a model ---- */

static GArray *
probe_tokens (GbModel *model,
              guint    n,
              guint32  seed,
              guint   *offset)
{
  GbTokenizer *tok = gb_model_get_tokenizer (model);
  const gint32 eot = gb_tokenizer_get_eot (tok);
  /* The embedding may be padded past the tokenizer's vocabulary. */
  const guint V = MIN (gb_model_get_config (model)->n_vocab, gb_tokenizer_get_n_vocab (tok));
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  *offset = 0;
  if (eot != GB_TOKEN_NONE && (guint) eot < V)
    {
      g_array_append_val (ids, eot);
      *offset = 1;
    }
  for (guint k = 0; k < n; k++)
    {
      gint32 id;
      do
        id = g_rand_int_range (rand, 0, (gint32) V);
      while (id == eot);
      g_array_append_val (ids, id);
    }
  for (guint k = 0; k < n; k++)
    {
      /* Copied first: appending may move the array under a pointer into it. */
      gint32 id = g_array_index (ids, gint32, *offset + k);
      g_array_append_val (ids, id);
    }
  return ids;
}

static void
score_head (float       *out,
            const float *A,
            guint        T,
            guint        offset,
            guint        n)
{
  /* Rows of the first copy (and the prefix) only: the second copy's rows
   * would reward induction heads for looking at the "previous" token. */
  const guint T1 = offset + n;
  g_autofree float *sub = g_new (float, (gsize) T1 * T1);

  for (guint i = 0; i < T1; i++)
    memcpy (sub + (gsize) i * T1, A + (gsize) i * T, T1 * sizeof (float));
  out[GB_HEAD_ROLE_PREVIOUS] = gb_pattern_previous_score (sub, T1);
  out[GB_HEAD_ROLE_FIRST] = gb_pattern_first_score (sub, T1);
  out[GB_HEAD_ROLE_SELF] = gb_pattern_self_score (sub, T1);
  out[GB_HEAD_ROLE_DIFFUSE] = gb_pattern_diffuse_score (sub, T1);
  out[GB_HEAD_ROLE_INDUCTION] = gb_pattern_induction_score (A, T, offset, n);
}

GbHeadScores *
gb_head_scores_compute (GbModel      *model,
                        guint         seq_len,
                        guint32       seed,
                        GCancellable *cancellable,
                        GError      **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  const GbConfig *c = gb_model_get_config (model);
  guint n = seq_len ? seq_len : MIN (DEFAULT_SEQ_LEN, (c->n_positions - 1) / 2);
  guint offset;

  if (n < 2 || 2 * n + 1 > c->n_positions)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT,
                   "head roles: a probe of 2 × %u tokens does not fit the context of %u", n, c->n_positions);
      return NULL;
    }
  g_autoptr (GArray) ids = probe_tokens (model, n, seed ? seed : 1, &offset);
  GbRecord rec = { .logits = GB_LOGITS_NONE };
  rec.hooks[GB_HOOK_PATTERN] = GB_ALL_LAYERS;
  g_autoptr (GbTrace) trace = gb_model_forward (model, (gint32 *) ids->data, ids->len, &rec, NULL, 0, cancellable, error);
  if (trace == NULL)
    return NULL;

  GbHeadScores *s = g_new0 (GbHeadScores, 1);
  const guint T = ids->len;
  s->n_layer = c->n_layer;
  s->n_head = c->n_head;
  s->n_tokens = T;
  s->seq_len = n;
  s->scores = g_new (float, (gsize) c->n_layer * c->n_head * GB_N_HEAD_ROLES);
  for (guint l = 0; l < c->n_layer; l++)
    for (guint h = 0; h < c->n_head; h++)
      score_head (s->scores + ((gsize) l * c->n_head + h) * GB_N_HEAD_ROLES,
                  gb_trace_get (trace, GB_HOOK_PATTERN, l) + (gsize) h * T * T, T, offset, n);
  return s;
}

void
gb_head_scores_free (GbHeadScores *scores)
{
  if (scores == NULL)
    return;
  g_free (scores->scores);
  g_free (scores);
}

float
gb_head_scores_get (const GbHeadScores *scores,
                    guint               layer,
                    guint               head,
                    GbHeadRole          role)
{
  g_return_val_if_fail (scores != NULL && layer < scores->n_layer && head < scores->n_head, 0);
  g_return_val_if_fail (role < GB_N_HEAD_ROLES, 0);
  return scores->scores[((gsize) layer * scores->n_head + head) * GB_N_HEAD_ROLES + role];
}

GbHeadRole
gb_head_scores_dominant (const GbHeadScores *scores,
                         guint               layer,
                         guint               head)
{
  GbHeadRole best = GB_N_HEAD_ROLES;
  double best_ratio = 1.0;

  for (guint r = 0; r < GB_N_HEAD_ROLES; r++)
    {
      double ratio = gb_head_scores_get (scores, layer, head, r) / roles[r].threshold;
      if (ratio >= best_ratio)
        {
          best_ratio = ratio;
          best = r;
        }
    }
  return best;
}

/* ---- Aggregations ---- */

void
gb_attention_mean_heads (float       *out,
                         const float *pattern,
                         guint        H,
                         guint        T)
{
  const gsize TT = (gsize) T * T;

  memset (out, 0, TT * sizeof (float));
  for (guint h = 0; h < H; h++)
    for (gsize i = 0; i < TT; i++)
      out[i] += pattern[h * TT + i];
  for (gsize i = 0; i < TT; i++)
    out[i] /= (float) H;
}

/* out [T, T] = rownorm (0.5 A + 0.5 I). */
static void
residual_identity (float       *out,
                   const float *A,
                   guint        T)
{
  for (guint i = 0; i < T; i++)
    {
      float *row = out + (gsize) i * T;
      double sum = 0;
      for (guint j = 0; j < T; j++)
        {
          row[j] = 0.5f * A[(gsize) i * T + j] + (i == j ? 0.5f : 0.f);
          sum += row[j];
        }
      for (guint j = 0; j < T; j++)
        row[j] = (float) (row[j] / sum);
    }
}

void
gb_attention_rollout (float              *out,
                      const float *const *layer_means,
                      guint               L,
                      guint               T)
{
  const gsize TT = (gsize) T * T;
  g_autofree float *a = g_new (float, TT), *tmp = g_new (float, TT);

  memset (out, 0, TT * sizeof (float));
  for (guint i = 0; i < T; i++)
    out[(gsize) i * T + i] = 1.f;
  for (guint l = 0; l < L; l++)
    {
      residual_identity (a, layer_means[l], T);
      /* tmp [T, T] = a [T, T] · out [T, T] */
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) T, (int) T, (int) T, 1.f, a, (int) T, out,
                   (int) T, 0.f, tmp, (int) T);
      memcpy (out, tmp, TT * sizeof (float));
    }
}

/* ---- Compact maps of every head ---- */

static inline gsize
tri_size (guint T)
{
  return (gsize) T * (T + 1) / 2;
}

static void
quantise_head (guint16     *out,
               const float *A,
               guint        T)
{
  for (guint i = 0; i < T; i++)
    for (guint j = 0; j <= i; j++)
      *out++ = (guint16) lrintf (CLAMP (A[(gsize) i * T + j], 0.f, 1.f) * 65535.f);
}

static void
store_layer (GbAttentionMaps *m,
             guint            l,
             const float     *pattern)
{
  const guint T = m->n_tokens, H = m->n_head;

  for (guint h = 0; h < H; h++)
    quantise_head (m->heads + ((gsize) l * H + h) * tri_size (T), pattern + (gsize) h * T * T, T);
  gb_attention_mean_heads (m->layer_means + (gsize) l * T * T, pattern, H, T);
}

typedef struct
{
  GbAttentionMaps *maps;
  GbProgressFunc   progress;
  gpointer         progress_data;
} Sink;

static void
sink_layer (guint        layer,
            const float *pattern,
            gpointer     data)
{
  Sink *s = data;

  store_layer (s->maps, layer, pattern);
  if (s->progress)
    s->progress ((layer + 1.0) / (s->maps->n_layer + 1), "Running the model", s->progress_data);
}

GbAttentionMaps *
gb_attention_maps_compute (GbModel        *model,
                           const gint32   *tokens,
                           guint           n_tokens,
                           GCancellable   *cancellable,
                           GbProgressFunc  progress,
                           gpointer        progress_data,
                           GError        **error)
{
  g_return_val_if_fail (model != NULL && tokens != NULL, NULL);
  const GbConfig *c = gb_model_get_config (model);
  const guint L = c->n_layer, H = c->n_head, T = n_tokens;

  if (T == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "attention: the text has no tokens");
      return NULL;
    }
  g_autoptr (GbAttentionMaps) m = g_new0 (GbAttentionMaps, 1);
  m->n_layer = L;
  m->n_head = H;
  m->n_tokens = T;
  m->tokens = g_memdup2 (tokens, T * sizeof (gint32));
  m->heads = g_new (guint16, (gsize) L * H * tri_size (T));
  m->layer_means = g_new (float, (gsize) L * T * T);
  m->rollout = g_new (float, (gsize) T * T);

  /* One pass: each layer's float pattern is stored compactly as soon as it
   * is computed (it used to take one pass per group of layers that fitted a
   * budget, each from the first layer: 6 passes, 42 layers' work instead of
   * 12, for 1,024 tokens of GPT-2 small). */
  Sink sink = { m, progress, progress_data };
  GbRecord rec = { .logits = GB_LOGITS_NONE, .pattern_sink = sink_layer, .pattern_sink_data = &sink };
  rec.hooks[GB_HOOK_PATTERN] = GB_ALL_LAYERS;
  if (progress)
    progress (0, "Running the model", progress_data);
  g_autoptr (GbTrace) trace = gb_model_forward (model, tokens, T, &rec, NULL, 0, cancellable, error);
  if (trace == NULL)
    return NULL;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  if (progress)
    progress ((double) L / (L + 1), "Rolling attention out across layers", progress_data);
  g_autofree const float **means = g_new (const float *, L);
  for (guint l = 0; l < L; l++)
    means[l] = m->layer_means + (gsize) l * T * T;
  gb_attention_rollout (m->rollout, means, L, T);
  if (progress)
    progress (1.0, "Done", progress_data);
  return g_steal_pointer (&m);
}

void
gb_attention_maps_free (GbAttentionMaps *maps)
{
  if (maps == NULL)
    return;
  g_free (maps->tokens);
  g_free (maps->heads);
  g_free (maps->layer_means);
  g_free (maps->rollout);
  g_free (maps);
}

gsize
gb_attention_maps_get_size (const GbAttentionMaps *m)
{
  const gsize T = m->n_tokens;
  return sizeof *m + T * sizeof (gint32) + (gsize) m->n_layer * m->n_head * tri_size (m->n_tokens) * sizeof (guint16) +
         ((gsize) m->n_layer + 1) * T * T * sizeof (float);
}

void
gb_attention_maps_get_head (const GbAttentionMaps *m,
                            guint                  layer,
                            guint                  head,
                            float                 *out)
{
  g_return_if_fail (m != NULL && layer < m->n_layer && head < m->n_head);
  const guint T = m->n_tokens;
  const guint16 *q = m->heads + ((gsize) layer * m->n_head + head) * tri_size (T);

  for (guint i = 0; i < T; i++)
    for (guint j = 0; j < T; j++)
      out[(gsize) i * T + j] = j <= i ? *q++ / 65535.f : 0.f;
}

float
gb_attention_maps_head_at (const GbAttentionMaps *m,
                           guint                  layer,
                           guint                  head,
                           guint                  query,
                           guint                  key)
{
  g_return_val_if_fail (m != NULL && layer < m->n_layer && head < m->n_head, 0);
  g_return_val_if_fail (query < m->n_tokens && key < m->n_tokens, 0);
  if (key > query)
    return 0;
  return m->heads[((gsize) layer * m->n_head + head) * tri_size (m->n_tokens) + tri_size (query) + key] / 65535.f;
}
