/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "gb-gemm.h"
#include "gb-model.h"
#include "gb-safetensors.h"

G_BEGIN_DECLS

typedef enum
{
  GB_ACT_GELU_NEW,  /* tanh approximation ("gelu_new", "gelu_pytorch_tanh") */
  GB_ACT_GELU,      /* exact erf form ("gelu") */
} GbActivation;

/* One transformer block's weights, all float32, HF Conv1D layout [in, out].
 * Where the CPU allows, the four matrices are also packed at load (the *_p
 * fields), which the forward pass uses; GbNet uses the unpacked ones. */
typedef struct
{
  const float *ln1_w, *ln1_b;   /* [D] */
  const float *qkv_w, *qkv_b;   /* [D, 3D], [3D] */
  const float *proj_w, *proj_b; /* [D, D], [D] */
  const float *ln2_w, *ln2_b;   /* [D] */
  const float *fc_w, *fc_b;     /* [D, F], [F] */
  const float *out_w, *out_b;   /* [F, D], [D] */
  GbPackedMatrix *qkv_p, *proj_p, *fc_p, *out_p;
} GbBlockWeights;

struct _GbModel
{
  gatomicrefcount ref_count;

  /* Owned */
  char         *path;
  char         *name;
  GbConfig     *config;
  GbTokenizer  *tokenizer;
  GPtrArray    *files;   /* GbSafetensors*, keep the mappings alive */
  GPtrArray    *buffers; /* float*, weights converted at load */
  GbBlockWeights *blocks;

  /* Borrowed from files or buffers */
  const float  *wte;      /* [V, D] */
  const float  *wpe;      /* [P, D] */
  const float  *lnf_w, *lnf_b;
  const float  *lm_head;  /* [V, D]; == wte when tied */
  const float  *score;    /* [n_labels, D] or NULL */

  GbActivation  activation;
  guint64       n_params;
};

/* Keys and values of past positions, per layer [capacity, D] (heads side by
 * side, as c_attn lays them out). */
typedef struct
{
  guint   capacity;
  guint   n_layer;
  float **k;
  float **v;
} GbKvCache;

GbKvCache *gb_kv_cache_new (guint n_layer);
void       gb_kv_cache_free (GbKvCache *cache);
/* Grows the cache to hold @n_positions rows of width @d. */
void       gb_kv_cache_reserve (GbKvCache *cache,
                                guint      n_positions,
                                guint      d);

/* The one forward path: runs @T tokens at absolute positions pos0.., reading
 * and extending @cache (which holds positions 0..pos0). Records into @trace
 * (may be NULL) what @record asks for; writes the last position's logits to
 * @last_logits ([V]) when non-NULL. */
/* Bytes of memory the engine may use for one job: physical memory, or
 * $GLASSBOX_MEMORY_LIMIT_MB. Loads and forward passes that would need more
 * are refused with GB_ERROR_LIMIT instead of aborting in an allocation. */
guint64  gb_memory_budget (void);

gboolean gb_forward_core (GbModel              *self,
                          GbKvCache            *cache,
                          guint                 pos0,
                          const gint32         *tokens,
                          guint                 T,
                          const GbRecord       *record,
                          const GbIntervention *interventions,
                          guint                 n_interventions,
                          GbTrace              *trace,
                          float                *last_logits,
                          GCancellable         *cancellable,
                          GError              **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbKvCache, gb_kv_cache_free)

G_END_DECLS
