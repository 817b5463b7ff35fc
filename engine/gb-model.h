/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "gb-tokenizer.h"

G_BEGIN_DECLS

/* GPT-2 hyper-parameters, as config.json names them. */
typedef struct
{
  char   *model_type;   /* "gpt2" */
  guint   n_layer;
  guint   n_head;
  guint   n_embd;
  guint   n_positions;  /* context window */
  guint   n_vocab;
  guint   n_inner;      /* 4 * n_embd unless config says otherwise */
  double  layer_norm_epsilon;
  char   *activation;   /* "gelu_new" (tanh form) or "gelu" (erf form) */
  gboolean tie_word_embeddings; /* lm_head = wte (default TRUE, as in transformers) */
  /* GPT2ForSequenceClassification: n_labels > 0 and labels[i] = id2label[i]. */
  guint   n_labels;
  char  **labels;
  gint32  pad_token_id; /* -1 when unset */
} GbConfig;

/* Reads and validates config.json (sizes positive and under caps,
 * n_embd % n_head == 0, activation gelu_new). */
GbConfig *gb_config_load (const char *path,
                          GError    **error);
void      gb_config_free (GbConfig *config);

/* A loaded model: config, tokenizer and float32 weights (memory-mapped when
 * the file is F32 and aligned, converted once at load otherwise). Weights are
 * read-only after load, so one model may serve several threads. */
typedef struct _GbModel GbModel;

typedef void (*GbProgressFunc) (double      fraction,
                                const char *message,
                                gpointer    user_data);

/* @dir is a Hugging Face GPT-2 folder. */
GbModel        *gb_model_load (const char     *dir,
                               GCancellable   *cancellable,
                               GbProgressFunc  progress,
                               gpointer        progress_data,
                               GError        **error);
GbModel        *gb_model_ref (GbModel *self);
void            gb_model_unref (GbModel *self);
const GbConfig *gb_model_get_config (GbModel *self);
GbTokenizer    *gb_model_get_tokenizer (GbModel *self);
const char     *gb_model_get_path (GbModel *self);
/* A display name: the folder's name, or the Hub id for cache snapshots. */
const char     *gb_model_get_name (GbModel *self);
guint64         gb_model_get_n_params (GbModel *self);

/* Refuses, before it is encoded, a prompt of @n_bytes that could never fit
 * the context window: one longer than n_positions tokens of the longest
 * token (and at least 1 MiB), GB_ERROR_LIMIT. A 100 MB paste is refused at
 * once instead of being tokenised for a minute and cut. */
gboolean        gb_model_check_prompt_size (GbModel *self,
                                            gsize    n_bytes,
                                            GError **error);

/* Hook points, named as TransformerLens names them. */
typedef enum
{
  GB_HOOK_RESID_PRE,   /* blocks.L.hook_resid_pre  [T, D] */
  GB_HOOK_RESID_MID,   /* blocks.L.hook_resid_mid  [T, D] */
  GB_HOOK_RESID_POST,  /* blocks.L.hook_resid_post [T, D] */
  GB_HOOK_ATTN_OUT,    /* blocks.L.hook_attn_out   [T, D] */
  GB_HOOK_MLP_POST,    /* blocks.L.mlp.hook_post   [T, n_inner] */
  GB_HOOK_MLP_OUT,     /* blocks.L.hook_mlp_out    [T, D] */
  GB_HOOK_PATTERN,     /* blocks.L.attn.hook_pattern [H, T, T] (record only) */
  GB_N_HOOKS
} GbHook;

const char *gb_hook_name (GbHook hook);
/* Parses "blocks.3.hook_resid_post" into hook and layer. */
gboolean    gb_hook_parse (const char *name,
                           GbHook     *hook,
                           guint      *layer);

/* What a forward pass records. Nothing asked for, nothing kept. */
typedef struct
{
  /* Per hook, a bitmask of layers to record (bit L = block L); use
   * GB_ALL_LAYERS for all. */
  guint64  hooks[GB_N_HOOKS];
  /* Logits: none, last position only, or every position. */
  enum { GB_LOGITS_NONE, GB_LOGITS_LAST, GB_LOGITS_ALL } logits;
  /* Optional: attention patterns handed over one layer at a time instead
   * of kept. Called on the forward's thread right after block L's attention
   * for each layer hooks[GB_HOOK_PATTERN] asks for, with its [H, T, N]
   * pattern, valid during the call only; the trace then holds no patterns,
   * and the pass needs memory for one layer's, not all. */
  void   (*pattern_sink) (guint        layer,
                          const float *pattern,
                          gpointer     data);
  gpointer pattern_sink_data;
} GbRecord;

#define GB_ALL_LAYERS G_MAXUINT64

/* What a forward pass changes. Positions are absolute in the sequence. */
typedef enum
{
  GB_INTERVENE_ADD,        /* act[p] += multiplier * vector, p >= start_pos */
  GB_INTERVENE_REPLACE,    /* act[p] = values[p - start_pos], start_pos <= p < start_pos + n_positions */
  GB_INTERVENE_SCALE_HEAD, /* head's output (before c_proj) *= multiplier (0 = ablate) */
} GbInterveneKind;

typedef struct
{
  GbInterveneKind kind;
  GbHook          hook;        /* ADD/REPLACE: a [T, width] hook, not PATTERN */
  guint           layer;
  guint           head;        /* SCALE_HEAD */
  float           multiplier;  /* ADD, SCALE_HEAD */
  guint           start_pos;
  guint           n_positions; /* REPLACE */
  const float    *values;      /* ADD: [width]; REPLACE: [n_positions, width]; borrowed */
} GbIntervention;

/* The result of one forward pass. Arrays are row-major float32. */
typedef struct
{
  guint   n_tokens;
  gint32 *tokens;
  /* [T or 1, n_vocab], or NULL */
  float  *logits;
  guint   n_logit_rows;
  /* Classification head [T or 1, n_labels], or NULL */
  float  *class_logits;
  /* acts[hook][layer]: [T, width] or, for PATTERN, [H, T, T]; NULL where not recorded */
  float **acts[GB_N_HOOKS];
  guint   n_layer;
} GbTrace;

void          gb_trace_free (GbTrace *trace);
/* Borrowed; NULL when not recorded. */
const float  *gb_trace_get (const GbTrace *trace,
                            GbHook         hook,
                            guint          layer);

/* Runs the model on @tokens and records what @record asks for. @record NULL
 * means last-position logits only. */
GbTrace *gb_model_forward (GbModel              *self,
                           const gint32         *tokens,
                           guint                 n_tokens,
                           const GbRecord       *record,
                           const GbIntervention *interventions,
                           guint                 n_interventions,
                           GCancellable         *cancellable,
                           GError              **error);

/* Width of a hook's activation row (D or n_inner); 0 for PATTERN. */
guint gb_model_hook_width (GbModel *self,
                           GbHook   hook);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbConfig, gb_config_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbModel, gb_model_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbTrace, gb_trace_free)

G_END_DECLS
