/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "gb-model.h"

G_BEGIN_DECLS

/* Head roles. Every score lies in [0, 1]; higher means "more of that role". */
typedef enum
{
  GB_HEAD_ROLE_PREVIOUS,  /* mean A[i, i-1] over rows i >= 1 */
  GB_HEAD_ROLE_FIRST,     /* mean A[i, 0] over rows i >= 1 (BOS / attention sink) */
  GB_HEAD_ROLE_SELF,      /* mean A[i, i] over rows i >= 1 */
  GB_HEAD_ROLE_INDUCTION, /* mean weight from the second copy of a repeated random
                             sequence to the token after the first occurrence */
  GB_HEAD_ROLE_DIFFUSE,   /* mean over rows i >= 1 of entropy(A[i, 0..i]) / ln(i + 1) */
  GB_N_HEAD_ROLES
} GbHeadRole;

/* "previous-token", "first-token", "self", "induction", "diffuse". */
const char *gb_head_role_name (GbHeadRole role);
/* A short label for badges: "prev", "bos", "self", "ind", "diff". */
const char *gb_head_role_short (GbHeadRole role);
/* The score above which a head is said to have the role. */
double      gb_head_role_threshold (GbHeadRole role);

/* Kernels on one causal pattern [T, T], row-major, rows = query, columns =
 * key; cells above the diagonal are ignored. They return 0 when the pattern
 * has no row the score is defined on. */
double gb_pattern_previous_score (const float *pattern, guint T);
double gb_pattern_first_score (const float *pattern, guint T);
double gb_pattern_self_score (const float *pattern, guint T);
double gb_pattern_diffuse_score (const float *pattern, guint T);
/* @pattern covers @offset prefix tokens then two copies of an @n-token
 * sequence (T = offset + 2n). Mean over k in [0, n-2] of
 * A[offset + n + k, offset + k + 1]. */
double gb_pattern_induction_score (const float *pattern,
                                   guint        T,
                                   guint        offset,
                                   guint        n);

/* Role scores of every head of a model. */
typedef struct
{
  guint   n_layer;
  guint   n_head;
  guint   n_tokens;       /* length of the probe sequence */
  guint   seq_len;        /* n: length of one copy of the random sequence */
  float  *scores;         /* [n_layer, n_head, GB_N_HEAD_ROLES] */
} GbHeadScores;

/* Runs the model once on <|endoftext|> (when the vocabulary has it) followed
 * by two copies of @seq_len random tokens drawn with @seed (0 picks 2 * 50
 * tokens, or fewer when the context is short). Previous, first, self and
 * diffuse are scored on the rows of the first copy, induction on the rows of
 * the second. Deterministic for a given model and seed. */
GbHeadScores *gb_head_scores_compute (GbModel       *model,
                                      guint          seq_len,
                                      guint32        seed,
                                      GCancellable  *cancellable,
                                      GError       **error);
void          gb_head_scores_free (GbHeadScores *scores);
float         gb_head_scores_get (const GbHeadScores *scores,
                                  guint               layer,
                                  guint               head,
                                  GbHeadRole          role);
/* The role whose score exceeds its threshold by the largest ratio, or
 * GB_N_HEAD_ROLES when none does. */
GbHeadRole    gb_head_scores_dominant (const GbHeadScores *scores,
                                       guint               layer,
                                       guint               head);

/* Aggregations. out [T, T]; pattern [H, T, T]. */
void gb_attention_mean_heads (float       *out,
                              const float *pattern,
                              guint        H,
                              guint        T);
/* Attention rollout (Abnar & Zuidema 2020): per layer Â = rownorm(0.5 A +
 * 0.5 I) with A the mean over heads; out = Â_{L-1} ... Â_1 Â_0. @layer_means
 * holds L arrays [T, T]. */
void gb_attention_rollout (float              *out,
                           const float *const *layer_means,
                           guint               L,
                           guint               T);

/* The attention of every head for one text, stored compactly: each head's
 * lower triangle quantised to uint16 (weight * 65535, rounded; error under
 * 8e-6), plus each layer's float mean over heads and the rollout. For GPT-2
 * small at 1024 tokens that is 151 MB + 50 MB + 4 MB, against 604 MB for the
 * raw float patterns. */
typedef struct
{
  guint    n_layer;
  guint    n_head;
  guint    n_tokens;
  gint32  *tokens;      /* [T] */
  guint16 *heads;       /* [L, H, T (T + 1) / 2] */
  float   *layer_means; /* [L, T, T] */
  float   *rollout;     /* [T, T] */
} GbAttentionMaps;

/* Runs the model on @tokens once, storing each layer's attention compactly
 * as soon as it is computed, so a long text never holds more than one
 * layer's float patterns. Progress reports per layer. */
GbAttentionMaps *gb_attention_maps_compute (GbModel        *model,
                                            const gint32   *tokens,
                                            guint           n_tokens,
                                            GCancellable   *cancellable,
                                            GbProgressFunc  progress,
                                            gpointer        progress_data,
                                            GError        **error);
void             gb_attention_maps_free (GbAttentionMaps *maps);
gsize            gb_attention_maps_get_size (const GbAttentionMaps *maps);
/* Writes head (@layer, @head) as float [T, T] into @out (zeros above the
 * diagonal). */
void             gb_attention_maps_get_head (const GbAttentionMaps *maps,
                                             guint                  layer,
                                             guint                  head,
                                             float                 *out);
/* Weight of one cell, 0 above the diagonal. */
float            gb_attention_maps_head_at (const GbAttentionMaps *maps,
                                            guint                  layer,
                                            guint                  head,
                                            guint                  query,
                                            guint                  key);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbHeadScores, gb_head_scores_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbAttentionMaps, gb_attention_maps_free)

G_END_DECLS
