/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "gb-model.h"

G_BEGIN_DECLS

/* Sparse autoencoders over one hook point, in SAELens' layout and
 * conventions (cfg.json + sae_weights.safetensors):
 *
 *   x'   = x - b_dec            (when apply_b_dec_to_input)
 *   pre  = x' W_enc + b_enc     W_enc [d_in, d_sae], b_enc [d_sae]
 *   z    = ReLU (pre)           standard
 *        = ReLU (TopK_k (pre))  topk: the k largest kept, the rest 0
 *        = pre * (pre > threshold)  jumprelu
 *   x^   = z W_dec + b_dec      W_dec [d_sae, d_in], b_dec [d_in]
 *
 * Before encoding, the raw activation may be centred per token (x - mean(x),
 * as TransformerLens' centred residual stream that the public GPT-2 SAEs were
 * trained on) and/or normalised per dimension ((x - mu) / sigma, statistics
 * stored with the SAE); x^ is mapped back the same way, so "reconstruct"
 * always returns raw activations. */

typedef enum
{
  GB_SAE_STANDARD,
  GB_SAE_TOPK,
  GB_SAE_JUMPRELU,
} GbSaeKind;

typedef struct
{
  GbSaeKind kind;
  guint     d_in, d_sae;
  guint     k;                  /* topk */
  GbHook    hook;
  guint     layer;
  gboolean  apply_b_dec_to_input;
  gboolean  center;             /* per-token mean-centring of the input */
  float    *norm_mean;          /* [d_in] or NULL */
  float    *norm_std;           /* [d_in] or NULL */
  char     *model_name;         /* may be NULL */
  float    *W_enc;              /* [d_in, d_sae] */
  float    *W_dec;              /* [d_sae, d_in] */
  float    *b_enc;              /* [d_sae] */
  float    *b_dec;              /* [d_in] */
  float    *threshold;          /* [d_sae], jumprelu only */
  float    *log_sparsity;       /* [d_sae] log10 firing frequency, or NULL */
  char     *path;               /* folder it was loaded from / saved to, or NULL */
  char     *weights_sha256;     /* cache of gb_sae_weights_sha256(), or NULL */
  /* Training summary written into cfg.json (NaN when unknown). */
  double    explained_variance, mean_l0, dead_fraction, loss_increase, clean_loss;
  guint64   trained_tokens;
} GbSae;

const char *gb_sae_kind_name (GbSaeKind kind);   /* "standard", "topk", "jumprelu" */
/* SHA-256 (hex) of the sae_weights.safetensors in @sae's folder, read the
 * first time it is asked for and kept (the feature cache's key and the
 * report's provenance both need it; hashing a public SAE's 150 MB takes
 * about half a second). NULL with an error when there is no such file. */
const char *gb_sae_weights_sha256 (const GbSae *sae,
                                   GError     **error);
gboolean    gb_sae_kind_parse (const char *name,
                               GbSaeKind  *kind);

/* Zero-filled parameters of the given sizes. */
GbSae *gb_sae_new (GbSaeKind kind,
                   guint     d_in,
                   guint     d_sae,
                   guint     k);
void   gb_sae_free (GbSae *sae);
GbSae *gb_sae_copy (const GbSae *sae);
/* Decoder rows N(0,1) normalised to unit length, W_enc = W_dec^T, biases 0. */
void   gb_sae_init_random (GbSae  *sae,
                           guint64 seed);

/* Reads a SAELens folder: cfg.json (v6 with metadata.hook_name, or older with
 * top-level hook_name / hook_point + hook_layer; d_in, d_sae, architecture,
 * k, apply_b_dec_to_input, normalize_activations) and sae_weights.safetensors
 * (F32/F16/BF16; W_enc, W_dec, b_enc, b_dec and, for jumprelu, threshold);
 * sparsity.safetensors when present. Errors name the file and the problem. */
GbSae   *gb_sae_load (const char *dir,
                      GError    **error);
/* Writes a SAELens v6 folder atomically (each file to a temporary name, then
 * renamed), creating @dir when needed. */
gboolean gb_sae_save (GbSae      *sae,
                      const char *dir,
                      GError    **error);
/* Checks that @sae reads a hook @model has, with the right width. */
gboolean gb_sae_check_model (const GbSae *sae,
                             GbModel     *model,
                             GError     **error);

/* Raw activations x [n, d_in] to the SAE's input space, in place (centring,
 * normalisation); @token_means [n] receives the removed means (may be NULL). */
void gb_sae_preprocess (const GbSae *sae,
                        float       *x,
                        guint        n,
                        float       *token_means);
/* z [n, d_sae] = encode (x [n, d_in]); x in the SAE's input space. */
void gb_sae_encode (const GbSae *sae,
                    float       *z,
                    const float *x,
                    guint        n);
/* x^ [n, d_in] = decode (z); in the SAE's input space. */
void gb_sae_decode (const GbSae *sae,
                    float       *xhat,
                    const float *z,
                    guint        n);
/* Back to raw activations, in place (inverse of gb_sae_preprocess). */
void gb_sae_postprocess (const GbSae *sae,
                         float       *x,
                         guint        n,
                         const float *token_means);

/* ---- Training on activation batches ---- */

typedef struct
{
  GbSaeKind kind;
  guint     d_sae;
  guint     k;              /* topk */
  double    l1;             /* standard: coefficient of the L1 term */
  double    lr;
  double    beta1, beta2, adam_eps;
  guint     batch_size;
  guint64   seed;
  guint64   dead_window;    /* a latent is dead after this many tokens without firing */
  guint     resample_every; /* steps between dead-latent resamplings; 0 = never */
  /* Sparse kernels (the active pairs latent by latent: an axpy into x^, a
   * fused axpy and dot, an axpy per pair) instead of dense BLAS products
   * when the fraction of active latents is below this (default 0.12, the
   * measured crossover on a 2-core AVX-512 machine); 0 = never, 1 = always.
   * Same results up to rounding. */
  double    sparse_below;
} GbSaeTrainOptions;

void gb_sae_train_options_init (GbSaeTrainOptions *options);

/* Loss, per batch of B tokens (x in the SAE's input space):
 *   mse  = 1/B sum_b ||x^_b - x_b||^2
 *   l1   = 1/B sum_b sum_j |z_bj|         (z >= 0)
 *   loss = mse + l1_coef * l1             (topk: l1_coef = 0)
 * Adam on all parameters, then every decoder row renormalised to unit
 * length. */
typedef struct
{
  double loss, mse, l1, l0;   /* l0: mean active latents per token */
  double var;                 /* 1/B sum_b ||x_b - mean_batch(x)||^2 */
} GbSaeStepStats;

typedef struct _GbSaeTrainer GbSaeTrainer;

/* Takes ownership of @sae, which holds the initial parameters. */
GbSaeTrainer *gb_sae_trainer_new (GbSae                   *sae,
                                  const GbSaeTrainOptions *options);
void          gb_sae_trainer_free (GbSaeTrainer *self);
/* The trained SAE, current after the last step (borrowed). */
GbSae        *gb_sae_trainer_get_sae (GbSaeTrainer *self);
guint64       gb_sae_trainer_get_step (GbSaeTrainer *self);
/* Forward and backward only: loss, stats and gradients (for tests).
 * Gradients are laid out like the SAE: W_enc [d_in, d_sae], W_dec, b_enc, b_dec. */
void          gb_sae_trainer_gradients (GbSaeTrainer   *self,
                                        const float    *x,
                                        guint           B,
                                        GbSaeStepStats *stats,
                                        float          *g_W_enc,
                                        float          *g_W_dec,
                                        float          *g_b_enc,
                                        float          *g_b_dec);
/* One Adam step on x [B, d_in] (the SAE's input space). */
void          gb_sae_trainer_step (GbSaeTrainer   *self,
                                   const float    *x,
                                   guint           B,
                                   GbSaeStepStats *stats);
/* Fraction of latents dead by the dead window. */
double        gb_sae_trainer_dead_fraction (GbSaeTrainer *self);
/* Latents resampled so far. */
guint64       gb_sae_trainer_get_n_resampled (GbSaeTrainer *self);
/* Writes the SAE plus trainer_state.safetensors (Adam moments, step, counters)
 * into @dir; gb_sae_trainer_resume reads them back. */
gboolean      gb_sae_trainer_save (GbSaeTrainer *self,
                                   const char   *dir,
                                   GError      **error);
GbSaeTrainer *gb_sae_trainer_resume (const char              *dir,
                                     const GbSaeTrainOptions *options,
                                     GError                 **error);

/* ---- Corpora and activations ---- */

/* Documents of a corpus file, streamed: JSONL (each line an object with a
 * "text" string; chosen when the file name ends in .jsonl or the first
 * non-blank byte is '{'), text with documents separated by lines holding
 * only <|endoftext|>, or else one document per line. */
typedef struct _GbCorpus GbCorpus;

GbCorpus *gb_corpus_open (const char *path,
                          GError    **error);
void      gb_corpus_free (GbCorpus *self);
/* The next document (owned), NULL at the end or on error (check @error). */
char     *gb_corpus_next (GbCorpus *self,
                          GError  **error);
/* Back to the first document. */
gboolean  gb_corpus_rewind (GbCorpus *self,
                            GError  **error);

/* Tokens of a corpus in windows of the model's context: each document is
 * tokenised after an <|endoftext|> and the documents are packed back to back
 * (as the model saw them in training), then cut into windows. */
typedef struct _GbTokenWindows GbTokenWindows;

GbTokenWindows *gb_token_windows_new (GbModel    *model,
                                      const char *corpus_path,
                                      guint       max_window,
                                      GError    **error);
void            gb_token_windows_free (GbTokenWindows *self);
/* The next window into @tokens (at most max_window ids); 0 at the end of
 * the corpus (then wraps around when @wrap), or on error. */
guint           gb_token_windows_next (GbTokenWindows *self,
                                       gint32         *tokens,
                                       gboolean        wrap,
                                       GError        **error);

/* ---- Training on a model's activations ---- */

typedef struct
{
  GbSaeTrainOptions train;
  GbHook            hook;
  guint             layer;
  guint64           n_tokens;        /* training budget */
  guint             buffer_tokens;   /* activations held and shuffled at once */
  guint64           heldout_tokens;  /* for the final metrics (from @heldout_path or the corpus' end) */
  gboolean          normalize;       /* per-dimension normalisation */
  gboolean          center;          /* per-token mean-centring */
  const char       *corpus_path;
  const char       *heldout_path;    /* may be NULL: the training corpus, after the budget */
  const char       *output_dir;      /* checkpoints (on cancel too) and the final SAE */
  guint             checkpoint_every; /* steps; 0 = only at the end */
  gboolean          resume;          /* continue from output_dir's checkpoint */
} GbSaeRunOptions;

void gb_sae_run_options_init (GbSaeRunOptions *options);

typedef struct
{
  guint64 tokens, n_tokens;
  guint64 step;
  double  loss, mse, l0, dead_fraction;
  double  explained_variance;  /* of the last step's batch */
  double  tokens_per_s, eta_s;
  const char *phase;           /* "collecting", "training", "evaluating" */
} GbSaeProgress;

typedef void (*GbSaeProgressFunc) (const GbSaeProgress *progress,
                                   gpointer             user_data);

/* Collects activations at (hook, layer) over the corpus (streamed in buffers
 * of buffer_tokens, shuffled), trains, evaluates on held-out tokens and
 * writes the SAE into output_dir. On cancel, the last state is saved as a
 * resumable checkpoint in output_dir and a G_IO_ERROR_CANCELLED is returned. */
GbSae *gb_sae_train_on_model (GbModel               *model,
                              const GbSaeRunOptions *options,
                              GbSaeProgressFunc      progress,
                              gpointer               progress_data,
                              GCancellable          *cancellable,
                              GError               **error);

/* ---- Quality metrics ---- */

typedef struct
{
  guint64 n_tokens;
  double  explained_variance;  /* 1 - sum||x - x^||^2 / sum||x - mean(x)||^2, raw space */
  double  mean_l0;
  double  dead_fraction;       /* latents that never fired on these tokens */
  double  clean_loss;          /* next-token loss of the model */
  double  spliced_loss;        /* with x^ in place of x at the hook */
  double  loss_increase;       /* spliced - clean */
} GbSaeMetrics;

/* Metrics on up to @max_tokens tokens of @corpus_path. */
gboolean gb_sae_evaluate (GbModel      *model,
                          const GbSae  *sae,
                          const char   *corpus_path,
                          guint64       max_tokens,
                          GbSaeMetrics *metrics,
                          GCancellable *cancellable,
                          GError      **error);
/* The next-token loss on one window with and without the splice. */
gboolean gb_sae_splice_loss (GbModel      *model,
                             const GbSae  *sae,
                             const gint32 *tokens,
                             guint         n_tokens,
                             double       *clean_loss,
                             double       *spliced_loss,
                             GError      **error);

/* ---- Feature analysis ---- */

#define GB_SAE_HIST_BINS 24

typedef struct
{
  gint32 *tokens;      /* [n] context window */
  float  *acts;        /* [n] this feature's activation per token */
  guint   n;
  guint   peak;        /* index of the token the context is centred on */
  float   value;       /* activation at peak */
} GbSaeContext;

typedef struct
{
  guint     index;
  guint64   n_fired;
  double    frequency;         /* n_fired / n_tokens */
  float     max_act;
  double    mean_act;          /* over firing tokens */
  guint64   hist[GB_SAE_HIST_BINS]; /* non-zero activations, bins of max_act / BINS */
  GPtrArray *top;              /* GbSaeContext*, strongest first */
  GPtrArray *bands;            /* GbSaeContext*, sampled from lower quantile bands */
  gint32    promoted[10], suppressed[10];
  float     promoted_logit[10], suppressed_logit[10];
  char     *label;             /* most common top tokens */
} GbSaeFeature;

typedef struct
{
  guint64       n_tokens;
  guint         n_features;
  GbSaeFeature *features;      /* [n_features] */
  guint         context_radius;
  char         *corpus;        /* display name */
  GbSaeMetrics  metrics;       /* NaN fields when not computed */
} GbSaeAnalysis;

void gb_sae_analysis_free (GbSaeAnalysis *analysis);

/* Runs the model on up to @max_tokens tokens of @corpus_path, encodes with
 * @sae and gathers each feature's statistics and its @top_k strongest
 * contexts (@radius tokens either side), plus logit effects through the
 * unembedding. */
GbSaeAnalysis *gb_sae_analyze (GbModel       *model,
                               const GbSae   *sae,
                               const char    *corpus_path,
                               guint64        max_tokens,
                               guint          top_k,
                               guint          radius,
                               GbProgressFunc progress,
                               gpointer       progress_data,
                               GCancellable  *cancellable,
                               GError       **error);
/* Logit effects of feature @j: W_dec[j] @ W_U^T, top 10 each way. */
void gb_sae_logit_effects (GbModel     *model,
                           const GbSae *sae,
                           guint        j,
                           gint32      *promoted,
                           float       *promoted_logit,
                           gint32      *suppressed,
                           float       *suppressed_logit);
/* The cache: features.json in the SAE folder (atomic write); load returns
 * NULL without error when there is none or it was made from another corpus
 * or other weights. */
gboolean       gb_sae_analysis_save (const GbSaeAnalysis *analysis,
                                     const char          *path,
                                     const char          *key,
                                     GError             **error);
GbSaeAnalysis *gb_sae_analysis_load (const char *path,
                                     const char *key,
                                     GError    **error);
/* The cache at @path when it was made from @sae's weights (stored with its
 * folder), whatever the corpus; NULL without error when there is none. */
GbSaeAnalysis *gb_sae_analysis_load_for_weights (const char  *path,
                                                 const GbSae *sae,
                                                 GError     **error);
/* A key that changes when the SAE weights or the corpus change (their
 * SHA-256: reads both files). */
char          *gb_sae_analysis_key (const GbSae *sae,
                                    const char  *corpus_path,
                                    guint64      max_tokens);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbSae, gb_sae_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbSaeTrainer, gb_sae_trainer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbCorpus, gb_corpus_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbTokenWindows, gb_token_windows_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbSaeAnalysis, gb_sae_analysis_free)

G_END_DECLS
