/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "gb-net.h"

G_BEGIN_DECLS

/* Language-model training of a GbNet: AdamW with decoupled weight decay,
 * linear warm-up then cosine decay, clipping by global norm, batches drawn
 * deterministically from the seed and the step number (so a resumed run
 * sees exactly the batches an uninterrupted one would), periodic atomic
 * checkpoints in Hugging Face layout. */

typedef struct
{
  guint    batch_size;       /* sequences per step */
  guint    seq_len;          /* tokens per sequence (<= context) */
  guint64  max_steps;
  double   lr;               /* peak learning rate */
  double   min_lr;           /* reached at max_steps */
  guint    warmup_steps;
  double   weight_decay;     /* on weight matrices only */
  gboolean decay_embeddings; /* also on wte/wpe */
  double   beta1, beta2, adam_eps;
  double   grad_clip;        /* global norm; 0 = off */
  guint64  seed;
  guint    checkpoint_every; /* steps; 0 = only at the end */
  guint    eval_every;       /* steps; 0 = never */
  guint    eval_batches;
  guint    n_threads;        /* workers, each on part of the batch; 0 = one per core */
} GbTrainOptions;

/* Sensible defaults (nanoGPT-like, for small models). */
void gb_train_options_init (GbTrainOptions *options);

/* A token stream: documents concatenated (separated by <|endoftext|>), and
 * for each position the weight of predicting that token (NULL = 1). */
typedef struct
{
  const gint32 *tokens;
  const float  *weights;
  gsize         n;
} GbTokenStream;

typedef struct
{
  guint64 step;       /* steps done */
  guint64 max_steps;
  double  loss;       /* weighted training loss of the last step */
  double  lr;
  double  grad_norm;  /* before clipping */
  double  tokens_per_s;
  double  eta_s;
  double  eval_loss;  /* the latest held-out loss; NaN until evaluated */
  gboolean evaluated; /* eval_loss was measured at this step */
  gboolean checkpointed;
} GbTrainProgress;

typedef void (*GbTrainProgressFunc) (const GbTrainProgress *progress,
                                     gpointer               user_data);

typedef struct _GbTrainer GbTrainer;

/* Takes ownership of @net (which must own its parameters). */
GbTrainer *gb_trainer_new (GbNet                *net,
                           const GbTrainOptions *options,
                           GError              **error);
void       gb_trainer_free (GbTrainer *self);
GbNet     *gb_trainer_get_net (GbTrainer *self);
guint64    gb_trainer_get_step (GbTrainer *self);
/* The schedule's length (the cosine decay ends there). */
void       gb_trainer_set_max_steps (GbTrainer *self,
                                     guint64    max_steps);

/* Loads parameters, optimizer moments and step from a checkpoint folder
 * written by this trainer (shapes must match). */
gboolean gb_trainer_resume (GbTrainer  *self,
                            const char *checkpoint_dir,
                            GError    **error);

/* Writes the model (F32, loadable by gb_model_load and transformers once
 * @vocab_dir's vocab.json and merges.txt are copied in), optimizer state
 * and step into @dir, replacing any previous checkpoint atomically. */
gboolean gb_trainer_save_checkpoint (GbTrainer  *self,
                                     const char *dir,
                                     const char *vocab_dir,
                                     GError    **error);

/* Mean weighted loss over @n_batches fixed batches of @stream. */
double gb_trainer_evaluate (GbTrainer           *self,
                            const GbTokenStream *stream,
                            guint                n_batches,
                            GError             **error);

/* Trains until max_steps or cancellation (then saves a checkpoint and
 * returns FALSE with G_IO_ERROR_CANCELLED). Checkpoints go to
 * @checkpoint_dir (may be NULL). */
gboolean gb_trainer_run (GbTrainer           *self,
                         const GbTokenStream *train,
                         const GbTokenStream *heldout,
                         const char          *checkpoint_dir,
                         const char          *vocab_dir,
                         GCancellable        *cancellable,
                         GbTrainProgressFunc  progress,
                         gpointer             progress_data,
                         GError             **error);

/* Copies vocab.json and merges.txt from @src_dir to @dst_dir. */
gboolean gb_copy_vocab_files (const char *src_dir,
                              const char *dst_dir,
                              GError    **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbTrainer, gb_trainer_free)

G_END_DECLS
