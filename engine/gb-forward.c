/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "gb-error.h"
#include "gb-kernels.h"
#include "gb-gemm.h"
#include "gb-model-private.h"
#include "gb-parallel.h"

/* Scratch for one forward call over T positions. */
typedef struct
{
  float *x;      /* [T, D] the residual stream */
  float *h;      /* [T, D] layer-normed input */
  float *qkv;    /* [T, 3D] */
  float *z;      /* [T, D] heads' outputs side by side */
  float *a;      /* [T, D] attention or MLP output */
  float *f;      /* [T, F] MLP hidden */
  float *scores; /* [n_attn, T, N] attention probabilities, one head per thread */
  float *kt;     /* [n_attn, hd, N] a head's keys, transposed */
  guint  n_attn; /* heads computed at once (packed kernels), else 1 */
  float *pattern; /* [H, T, N] for GbRecord.pattern_sink, or NULL */
} Scratch;

static const char *const hook_names[GB_N_HOOKS] = {
  [GB_HOOK_RESID_PRE] = "hook_resid_pre",   [GB_HOOK_RESID_MID] = "hook_resid_mid",
  [GB_HOOK_RESID_POST] = "hook_resid_post", [GB_HOOK_ATTN_OUT] = "hook_attn_out",
  [GB_HOOK_MLP_POST] = "mlp.hook_post",     [GB_HOOK_MLP_OUT] = "hook_mlp_out",
  [GB_HOOK_PATTERN] = "attn.hook_pattern",
};

const char *
gb_hook_name (GbHook hook)
{
  g_return_val_if_fail (hook < GB_N_HOOKS, NULL);
  return hook_names[hook];
}

gboolean
gb_hook_parse (const char *name,
               GbHook     *hook,
               guint      *layer)
{
  guint64 l;
  char *end;

  if (name == NULL || !g_str_has_prefix (name, "blocks.") || !g_ascii_isdigit (name[7]))
    return FALSE;
  l = g_ascii_strtoull (name + 7, &end, 10);
  if (*end != '.' || l > G_MAXUINT)
    return FALSE;
  for (guint i = 0; i < GB_N_HOOKS; i++)
    if (g_str_equal (end + 1, hook_names[i]))
      {
        *hook = i;
        *layer = (guint) l;
        return TRUE;
      }
  return FALSE;
}

guint
gb_model_hook_width (GbModel *self,
                     GbHook   hook)
{
  if (hook == GB_HOOK_PATTERN)
    return 0;
  return hook == GB_HOOK_MLP_POST ? self->config->n_inner : self->config->n_embd;
}

void
gb_trace_free (GbTrace *trace)
{
  if (trace == NULL)
    return;
  for (guint h = 0; h < GB_N_HOOKS; h++)
    {
      if (trace->acts[h] == NULL)
        continue;
      for (guint l = 0; l < trace->n_layer; l++)
        g_free (trace->acts[h][l]);
      g_free (trace->acts[h]);
    }
  g_free (trace->tokens);
  g_free (trace->logits);
  g_free (trace->class_logits);
  g_free (trace);
}

const float *
gb_trace_get (const GbTrace *trace,
              GbHook         hook,
              guint          layer)
{
  g_return_val_if_fail (trace != NULL && hook < GB_N_HOOKS, NULL);
  if (trace->acts[hook] == NULL || layer >= trace->n_layer)
    return NULL;
  return trace->acts[hook][layer];
}

GbKvCache *
gb_kv_cache_new (guint n_layer)
{
  GbKvCache *cache = g_new0 (GbKvCache, 1);
  cache->n_layer = n_layer;
  cache->k = g_new0 (float *, n_layer);
  cache->v = g_new0 (float *, n_layer);
  return cache;
}

void
gb_kv_cache_free (GbKvCache *cache)
{
  if (cache == NULL)
    return;
  for (guint l = 0; l < cache->n_layer; l++)
    {
      g_free (cache->k[l]);
      g_free (cache->v[l]);
    }
  g_free (cache->k);
  g_free (cache->v);
  g_free (cache);
}

void
gb_kv_cache_reserve (GbKvCache *cache,
                     guint      n_positions,
                     guint      d)
{
  if (n_positions <= cache->capacity)
    return;
  for (guint l = 0; l < cache->n_layer; l++)
    {
      cache->k[l] = g_renew (float, cache->k[l], (gsize) n_positions * d);
      cache->v[l] = g_renew (float, cache->v[l], (gsize) n_positions * d);
    }
  cache->capacity = n_positions;
}

static gboolean
wants (guint64 mask,
       guint   layer)
{
  return layer >= 64 ? mask == GB_ALL_LAYERS : ((mask >> layer) & 1) != 0;
}

static void
record (GbTrace        *trace,
        const GbRecord *rec,
        GbHook          hook,
        guint           layer,
        const float    *act,
        gsize           n)
{
  if (trace == NULL || rec == NULL || !wants (rec->hooks[hook], layer))
    return;
  if (trace->acts[hook] == NULL)
    trace->acts[hook] = g_new0 (float *, trace->n_layer);
  trace->acts[hook][layer] = g_memdup2 (act, n * sizeof (float));
}

/* Applies the ADD and REPLACE interventions at (hook, layer) to act[T, width],
 * whose rows are absolute positions pos0 .. pos0 + T - 1. */
static void
intervene (const GbIntervention *iv,
           guint                 n_iv,
           GbHook                hook,
           guint                 layer,
           float                *act,
           guint                 width,
           guint                 pos0,
           guint                 T)
{
  for (guint i = 0; i < n_iv; i++)
    {
      const GbIntervention *v = &iv[i];
      if (v->hook != hook || v->layer != layer || v->kind == GB_INTERVENE_SCALE_HEAD)
        continue;
      guint first = MAX (v->start_pos, pos0);
      guint last = pos0 + T;
      if (v->kind == GB_INTERVENE_REPLACE)
        last = MIN (last, v->start_pos + v->n_positions);
      for (guint p = first; p < last; p++)
        {
          float *row = act + (gsize) (p - pos0) * width;
          if (v->kind == GB_INTERVENE_ADD)
            for (guint j = 0; j < width; j++)
              row[j] += v->multiplier * v->values[j];
          else
            memcpy (row, v->values + (gsize) (p - v->start_pos) * width, width * sizeof (float));
        }
    }
}

static void
hook_point (GbModel              *self,
            GbTrace              *trace,
            const GbRecord       *rec,
            const GbIntervention *iv,
            guint                 n_iv,
            GbHook                hook,
            guint                 layer,
            float                *act,
            guint                 pos0,
            guint                 T)
{
  guint width = gb_model_hook_width (self, hook);
  intervene (iv, n_iv, hook, layer, act, width, pos0, T);
  record (trace, rec, hook, layer, act, (gsize) T * width);
}

static float
head_scale (const GbIntervention *iv,
            guint                 n_iv,
            guint                 layer,
            guint                 head)
{
  float s = 1.f;
  for (guint i = 0; i < n_iv; i++)
    if (iv[i].kind == GB_INTERVENE_SCALE_HEAD && iv[i].layer == layer && iv[i].head == head)
      s *= iv[i].multiplier;
  return s;
}

/* Glassbox's own loops, split across the BLAS threads (gb-parallel.h):
 * while one thread runs them alone, the other cores only wait. */
typedef struct
{
  float *scores;
  guint  N, pos0;
} SoftmaxRows;

static void
softmax_rows (gsize    begin,
              gsize    end,
              gpointer data)
{
  const SoftmaxRows *r = data;
  for (gsize i = begin; i < end; i++)
    {
      float *row = r->scores + i * r->N;
      const guint n_visible = r->pos0 + (guint) i + 1;
      gb_softmax (row, n_visible);
      memset (row + n_visible, 0, (r->N - n_visible) * sizeof (float));
    }
}

typedef struct
{
  float   *x;
  gboolean erf;
} GeluRange;

static void
gelu_range (gsize    begin,
            gsize    end,
            gpointer data)
{
  const GeluRange *g = data;
  if (g->erf)
    gb_gelu_erf (g->x + begin, end - begin);
  else
    gb_gelu_new (g->x + begin, end - begin);
}

typedef struct
{
  float       *out;
  const float *in, *w, *b;
  guint        D;
  float        eps;
} LayerNormRows;

static void
layernorm_rows (gsize    begin,
                gsize    end,
                gpointer data)
{
  const LayerNormRows *l = data;
  gb_layernorm (l->out + begin * l->D, l->in + begin * l->D, l->w, l->b, (guint) (end - begin), l->D, l->eps);
}

static void
layernorm (float       *out,
           const float *in,
           const float *w,
           const float *b,
           guint        T,
           guint        D,
           float        eps)
{
  LayerNormRows l = { out, in, w, b, D, eps };
  gb_parallel_range (T, 32, layernorm_rows, &l);
}

#define ATTN_TILE 128

/* How many heads a prefill computes at once: one per thread, with the
 * packed kernels (gb_gemm_strided runs on the calling thread, so the heads
 * are what is split); OpenBLAS threads each product itself. */
static guint
attention_parts (const GbConfig *c)
{
  if (!gb_packed_supported ())
    return 1;
  return (guint) CLAMP (gb_blas_get_threads (), 1, (int) c->n_head);
}

typedef struct
{
  const GbConfig *c;
  Scratch        *s;
  const float    *k, *v;
  guint           pos0, T;
  float          *pattern;
  const float    *head_scales; /* [H] */
} HeadsJob;

/* A run of heads on one thread: keys transposed, q k^T for the keys each
 * block of 8 queries sees, the softmax, then p v over those keys (one query:
 * the scores are dot products with the cached keys as they lie). */
static void
heads_part (guint    part,
            gpointer data)
{
  const HeadsJob *j = data;
  const guint D = j->c->n_embd, H = j->c->n_head, hd = D / H;
  const guint T = j->T, pos0 = j->pos0, N = pos0 + T;
  const float scale = 1.f / sqrtf ((float) hd);
  const guint h0 = H * part / j->s->n_attn, h1 = H * (part + 1) / j->s->n_attn;
  float *kt = j->s->kt + (gsize) part * hd * N;

  for (guint h = h0; h < h1; h++)
    {
      float *scores = j->pattern != NULL ? j->pattern + (gsize) h * T * N : j->s->scores + (gsize) part * T * N;
      if (T == 1)
        {
          /* A decode step: one query, a dot product per key. */
          gb_row_dots_strided (scores, j->k + h * hd, D, j->s->qkv + h * hd, N, hd, scale);
          gb_softmax (scores, N);
          gb_gemm_strided (j->s->z + h * hd, D, scores, N, j->v + h * hd, D, 1, N, hd, j->head_scales[h], GB_CAUSAL_NONE, 0);
          continue;
        }
      for (guint n = 0; n < N; n++)
        for (guint d = 0; d < hd; d++)
          kt[(gsize) d * N + n] = j->k[(gsize) n * D + h * hd + d];
      gb_gemm_strided (scores, N, j->s->qkv + h * hd, 3 * D, kt, N, T, hd, N, scale, GB_CAUSAL_COLUMNS, pos0);
      SoftmaxRows rows = { scores, N, pos0 };
      softmax_rows (0, T, &rows);
      gb_gemm_strided (j->s->z + h * hd, D, scores, N, j->v + h * hd, D, T, N, hd, j->head_scales[h], GB_CAUSAL_DEPTH,
                       pos0);
    }
}

/* Causal self-attention of T new queries over N = pos0 + T keys.
 *   qkv    [T, 3D]  queries at columns [0, D)
 *   k, v   [N, D]   the cache, including the T new rows
 *   z      [T, D]   out: each head's softmax(q k^T / sqrt(hd)) v
 *   pattern[H, T, N] out when non-NULL */
static void
attention (GbModel              *self,
           Scratch              *s,
           const float          *k,
           const float          *v,
           guint                 layer,
           guint                 pos0,
           guint                 T,
           float                *pattern,
           const GbIntervention *iv,
           guint                 n_iv)
{
  const guint D = self->config->n_embd, H = self->config->n_head, hd = D / H;
  const guint N = pos0 + T;
  const float scale = 1.f / sqrtf ((float) hd);

  if (gb_packed_supported ())
    {
      g_autofree float *head_scales = g_new (float, H);
      for (guint h = 0; h < H; h++)
        head_scales[h] = head_scale (iv, n_iv, layer, h);
      HeadsJob job = { self->config, s, k, v, pos0, T, pattern, head_scales };
      gb_parallel_for (s->n_attn, heads_part, &job);
      return;
    }
  for (guint h = 0; h < H; h++)
    {
      /* One query (a decode step) is a matrix-vector product; OpenBLAS's
       * one-row sgemm is several times slower than its sgemv. */
      if (T == 1)
        cblas_sgemv (CblasRowMajor, CblasNoTrans, N, hd, scale, k + h * hd, D, s->qkv + h * hd, 1, 0.f,
                     s->scores, 1);
      else
        /* Causal: a tile of queries needs the keys up to its last row only,
         * which halves the products at T = N (the softmax zeroes the rest). */
        for (guint i0 = 0; i0 < T; i0 += ATTN_TILE)
          {
            const guint m = MIN (ATTN_TILE, T - i0), n_keys = pos0 + i0 + m;
            cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, n_keys, hd, scale,
                         s->qkv + (gsize) i0 * 3 * D + h * hd, 3 * D, k + h * hd, D, 0.f, s->scores + (gsize) i0 * N, N);
          }
      SoftmaxRows rows = { s->scores, N, pos0 };
      gb_parallel_range (T, 32, softmax_rows, &rows);
      if (pattern != NULL)
        memcpy (pattern + (gsize) h * T * N, s->scores, (gsize) T * N * sizeof (float));
      float sc = head_scale (iv, n_iv, layer, h);
      if (T == 1)
        cblas_sgemv (CblasRowMajor, CblasTrans, N, hd, sc, v + h * hd, D, s->scores, 1, 0.f, s->z + h * hd, 1);
      else
        for (guint i0 = 0; i0 < T; i0 += ATTN_TILE)
          {
            const guint m = MIN (ATTN_TILE, T - i0), n_keys = pos0 + i0 + m;
            cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, n_keys, sc, s->scores + (gsize) i0 * N, N,
                         v + h * hd, D, 0.f, s->z + (gsize) i0 * D + h * hd, D);
          }
    }
}

/* out[T, N] = in[T, K] @ w + bias, with the packed copy where there is one. */
static void
project (float                *out,
         const float          *in,
         const GbPackedMatrix *packed,
         const float          *w,
         const float          *bias,
         guint                 T,
         guint                 K,
         guint                 N)
{
  if (packed != NULL)
    gb_packed_matmul (out, in, packed, bias, T, GB_EPILOGUE_NONE);
  else
    gb_matmul (out, in, w, bias, T, K, N);
}

static void
add_rows (float       *x,
          const float *a,
          gsize        n)
{
  for (gsize i = 0; i < n; i++)
    x[i] += a[i];
}

static void
block_forward (GbModel              *self,
               Scratch              *s,
               GbKvCache            *cache,
               guint                 l,
               guint                 pos0,
               guint                 T,
               const GbRecord       *rec,
               const GbIntervention *iv,
               guint                 n_iv,
               GbTrace              *trace)
{
  const GbConfig *c = self->config;
  const GbBlockWeights *w = &self->blocks[l];
  const guint D = c->n_embd, F = c->n_inner;
  const float eps = (float) c->layer_norm_epsilon;
  const gsize TD = (gsize) T * D;

  hook_point (self, trace, rec, iv, n_iv, GB_HOOK_RESID_PRE, l, s->x, pos0, T);

  layernorm (s->h, s->x, w->ln1_w, w->ln1_b, T, D, eps);
  project (s->qkv, s->h, w->qkv_p, w->qkv_w, w->qkv_b, T, D, 3 * D);
  for (guint t = 0; t < T; t++)
    {
      const float *row = s->qkv + (gsize) t * 3 * D;
      memcpy (cache->k[l] + (gsize) (pos0 + t) * D, row + D, D * sizeof (float));
      memcpy (cache->v[l] + (gsize) (pos0 + t) * D, row + 2 * D, D * sizeof (float));
    }
  float *pattern = NULL;
  const gboolean want_pattern = rec != NULL && wants (rec->hooks[GB_HOOK_PATTERN], l);
  if (want_pattern && rec->pattern_sink != NULL)
    pattern = s->pattern;
  else if (want_pattern && trace != NULL)
    {
      if (trace->acts[GB_HOOK_PATTERN] == NULL)
        trace->acts[GB_HOOK_PATTERN] = g_new0 (float *, trace->n_layer);
      pattern = trace->acts[GB_HOOK_PATTERN][l] = g_new (float, (gsize) c->n_head * T * (pos0 + T));
    }
  attention (self, s, cache->k[l], cache->v[l], l, pos0, T, pattern, iv, n_iv);
  if (want_pattern && rec->pattern_sink != NULL)
    rec->pattern_sink (l, pattern, rec->pattern_sink_data);
  project (s->a, s->z, w->proj_p, w->proj_w, w->proj_b, T, D, D);
  hook_point (self, trace, rec, iv, n_iv, GB_HOOK_ATTN_OUT, l, s->a, pos0, T);
  add_rows (s->x, s->a, TD);
  hook_point (self, trace, rec, iv, n_iv, GB_HOOK_RESID_MID, l, s->x, pos0, T);

  layernorm (s->h, s->x, w->ln2_w, w->ln2_b, T, D, eps);
  if (w->fc_p != NULL && self->activation == GB_ACT_GELU_NEW)
    gb_packed_matmul (s->f, s->h, w->fc_p, w->fc_b, T, GB_EPILOGUE_GELU_NEW);
  else
    {
      project (s->f, s->h, w->fc_p, w->fc_w, w->fc_b, T, D, F);
      GeluRange gelu = { s->f, self->activation == GB_ACT_GELU };
      gb_parallel_range ((gsize) T * F, 65536, gelu_range, &gelu);
    }
  hook_point (self, trace, rec, iv, n_iv, GB_HOOK_MLP_POST, l, s->f, pos0, T);
  project (s->a, s->f, w->out_p, w->out_w, w->out_b, T, F, D);
  hook_point (self, trace, rec, iv, n_iv, GB_HOOK_MLP_OUT, l, s->a, pos0, T);
  add_rows (s->x, s->a, TD);
  hook_point (self, trace, rec, iv, n_iv, GB_HOOK_RESID_POST, l, s->x, pos0, T);
}

static gboolean
check_interventions (GbModel              *self,
                     const GbIntervention *iv,
                     guint                 n_iv,
                     GError              **error)
{
  for (guint i = 0; i < n_iv; i++)
    {
      const GbIntervention *v = &iv[i];
      const char *problem = NULL;
      if (v->layer >= self->config->n_layer)
        problem = "layer out of range";
      else if (v->kind == GB_INTERVENE_SCALE_HEAD && v->head >= self->config->n_head)
        problem = "head out of range";
      else if (v->kind != GB_INTERVENE_SCALE_HEAD && (v->hook >= GB_HOOK_PATTERN || v->values == NULL))
        problem = "needs an activation hook and values";
      else if (!isfinite (v->multiplier) && v->kind != GB_INTERVENE_REPLACE)
        problem = "multiplier is not finite";
      if (problem != NULL)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "intervention %u: %s", i, problem);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
check_tokens (GbModel      *self,
              const gint32 *tokens,
              guint         T,
              guint         pos0,
              GError      **error)
{
  const GbConfig *c = self->config;

  if (T == 0)
    return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "no tokens to run"), FALSE;
  if ((guint64) pos0 + T > c->n_positions)
    return g_set_error (error, GB_ERROR, GB_ERROR_LIMIT,
                        "%u tokens do not fit the model's context of %u positions", pos0 + T, c->n_positions),
           FALSE;
  for (guint t = 0; t < T; t++)
    if (tokens[t] < 0 || (guint) tokens[t] >= c->n_vocab)
      return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "token %d at position %u is outside the vocabulary (0 to %u)",
                          tokens[t], pos0 + t, c->n_vocab - 1),
             FALSE;
  return TRUE;
}

/* What a pass of @T tokens after @pos0 allocates, in floats: the KV cache,
 * the scratch block, and what @rec keeps. A config can ask for a context of
 * a million positions; a pass over that many tokens is refused here rather
 * than aborting in g_new(). */
static gboolean
check_memory (GbModel        *self,
              guint           T,
              guint           pos0,
              guint           n_attn,
              const GbRecord *rec,
              GError        **error)
{
  const GbConfig *c = self->config;
  const double N = (double) pos0 + T, L = c->n_layer, D = c->n_embd;
  const double A = n_attn;
  double floats = 2 * L * N * D + 7.0 * T * D + (double) T * c->n_inner + A * ((double) T * N + N * (D / c->n_head));

  for (guint l = 0; rec != NULL && l < c->n_layer; l++)
    for (guint h = 0; h < GB_N_HOOKS; h++)
      if (wants (rec->hooks[h], l) && !(h == GB_HOOK_PATTERN && rec->pattern_sink != NULL))
        floats += h == GB_HOOK_PATTERN ? (double) c->n_head * T * N
                                       : (double) T * (h == GB_HOOK_MLP_POST ? c->n_inner : c->n_embd);
  if (rec != NULL && rec->pattern_sink != NULL && rec->hooks[GB_HOOK_PATTERN] != 0)
    floats += (double) c->n_head * T * N; /* one layer's, reused */
  if (rec != NULL && rec->logits != GB_LOGITS_NONE)
    floats += (rec->logits == GB_LOGITS_ALL ? (double) T : 1.0) * c->n_vocab;
  const double bytes = floats * sizeof (float);
  const guint64 budget = gb_memory_budget ();
  if (bytes > (double) budget)
    {
      g_autofree char *need = g_format_size ((guint64) MIN (bytes, (double) G_MAXUINT64));
      g_autofree char *have = g_format_size (budget);
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "running %u tokens through %s needs %s of memory, more than the %s available",
                   T, self->name, need, have);
      return FALSE;
    }
  return TRUE;
}

static void
embed (GbModel      *self,
       float        *x,
       const gint32 *tokens,
       guint         T,
       guint         pos0)
{
  const guint D = self->config->n_embd;
  for (guint t = 0; t < T; t++)
    {
      const float *te = self->wte + (gsize) tokens[t] * D;
      const float *pe = self->wpe + (gsize) (pos0 + t) * D;
      float *row = x + (gsize) t * D;
      for (guint i = 0; i < D; i++)
        row[i] = te[i] + pe[i];
    }
}

/* Final LayerNorm, unembedding and classification head for the rows the
 * caller asked for. */
static void
head_forward (GbModel        *self,
              Scratch        *s,
              guint           T,
              const GbRecord *rec,
              GbTrace        *trace,
              float          *last_logits)
{
  const GbConfig *c = self->config;
  const guint D = c->n_embd;
  gboolean all = rec != NULL && rec->logits == GB_LOGITS_ALL;
  guint first = all ? 0 : T - 1, rows = T - first;
  float *h = s->h + (gsize) first * D;

  layernorm (h, s->x + (gsize) first * D, self->lnf_w, self->lnf_b, rows, D,
                (float) c->layer_norm_epsilon);
  if (trace != NULL && (rec == NULL || rec->logits != GB_LOGITS_NONE))
    {
      trace->n_logit_rows = rows;
      trace->logits = g_new (float, (gsize) rows * c->n_vocab);
      gb_matmul_bt (trace->logits, h, self->lm_head, rows, D, c->n_vocab);
      if (self->score != NULL)
        {
          trace->class_logits = g_new (float, (gsize) rows * c->n_labels);
          gb_matmul_bt (trace->class_logits, h, self->score, rows, D, c->n_labels);
        }
    }
  if (last_logits != NULL)
    gb_matmul_bt (last_logits, s->h + (gsize) (T - 1) * D, self->lm_head, 1, D, c->n_vocab);
}

gboolean
gb_forward_core (GbModel              *self,
                 GbKvCache            *cache,
                 guint                 pos0,
                 const gint32         *tokens,
                 guint                 T,
                 const GbRecord       *rec,
                 const GbIntervention *iv,
                 guint                 n_iv,
                 GbTrace              *trace,
                 float                *last_logits,
                 GCancellable         *cancellable,
                 GError              **error)
{
  const GbConfig *c = self->config;
  const guint D = c->n_embd;

  const guint n_attn = attention_parts (c);
  if (!check_tokens (self, tokens, T, pos0, error) || !check_interventions (self, iv, n_iv, error) ||
      !check_memory (self, T, pos0, n_attn, rec, error))
    return FALSE;
  gb_kv_cache_reserve (cache, pos0 + T, D);

  /* One allocation for all scratch arrays. */
  const gsize TD = (gsize) T * D, TF = (gsize) T * c->n_inner, TN = (gsize) T * (pos0 + T);
  const gsize KT = (gsize) (D / c->n_head) * (pos0 + T);
  g_autofree float *block = g_new (float, 7 * TD + TF + n_attn * (TN + KT));
  Scratch s = { .x = block, .n_attn = n_attn };
  s.h = s.x + TD;
  s.qkv = s.h + TD;
  s.z = s.qkv + 3 * TD;
  s.a = s.z + TD;
  s.f = s.a + TD;
  s.scores = s.f + TF;
  s.kt = s.scores + n_attn * TN;
  g_autofree float *sink_pattern = NULL;
  if (rec != NULL && rec->pattern_sink != NULL && rec->hooks[GB_HOOK_PATTERN] != 0)
    s.pattern = sink_pattern = g_new (float, (gsize) c->n_head * TN);

  embed (self, s.x, tokens, T, pos0);
  for (guint l = 0; l < c->n_layer; l++)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      block_forward (self, &s, cache, l, pos0, T, rec, iv, n_iv, trace);
    }
  head_forward (self, &s, T, rec, trace, last_logits);
  return TRUE;
}

GbTrace *
gb_model_forward (GbModel              *self,
                  const gint32         *tokens,
                  guint                 n_tokens,
                  const GbRecord       *record,
                  const GbIntervention *interventions,
                  guint                 n_interventions,
                  GCancellable         *cancellable,
                  GError              **error)
{
  static const GbRecord last_only = { .logits = GB_LOGITS_LAST };

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (tokens != NULL || n_tokens == 0, NULL);

  g_autoptr (GbTrace) trace = g_new0 (GbTrace, 1);
  g_autoptr (GbKvCache) cache = gb_kv_cache_new (self->config->n_layer);
  trace->n_layer = self->config->n_layer;
  trace->n_tokens = n_tokens;
  trace->tokens = g_memdup2 (tokens, (gsize) n_tokens * sizeof (gint32));

  if (!gb_forward_core (self, cache, 0, tokens, n_tokens, record ? record : &last_only, interventions,
                        n_interventions, trace, NULL, cancellable, error))
    return NULL;
  return g_steal_pointer (&trace);
}
