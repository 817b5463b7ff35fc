/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "gb-model.h"

G_BEGIN_DECLS

/* ---- Contrastive pair sets ---- */

typedef struct
{
  char *positive;
  char *negative;
} GbPair;

/* A named list of (positive, negative) texts. Files are JSON
 * {"name", "description", "pairs": [{"positive", "negative"}, ...]} or JSONL
 * (one {"positive", "negative"} object a line). */
typedef struct
{
  char   *name;
  char   *description;
  GArray *pairs; /* GbPair, strings owned */
} GbPairSet;

/* Longest text a pair may hold, in bytes. */
#define GB_PAIR_MAX_BYTES (64 * 1024)

GbPairSet *gb_pair_set_new (const char *name,
                            const char *description);
GbPairSet *gb_pair_set_copy (const GbPairSet *self);
void       gb_pair_set_free (GbPairSet *self);
void       gb_pair_set_add (GbPairSet  *self,
                            const char *positive,
                            const char *negative);
void       gb_pair_set_remove (GbPairSet *self,
                               guint      index);
guint      gb_pair_set_get_n_pairs (const GbPairSet *self);
const GbPair *gb_pair_set_get (const GbPairSet *self,
                               guint            index);
/* Checks every pair: non-empty, valid UTF-8, under GB_PAIR_MAX_BYTES, and at
 * least one pair. @origin (a file name) starts the error message. */
gboolean   gb_pair_set_validate (const GbPairSet *self,
                                 const char      *origin,
                                 GError         **error);
/* Parses JSON or JSONL; @origin names the source in errors. */
GbPairSet *gb_pair_set_parse (const char *data,
                              gssize      len,
                              const char *origin,
                              GError    **error);
GbPairSet *gb_pair_set_load (const char *path,
                             GError    **error);
/* Pretty JSON (the first format above). */
char      *gb_pair_set_to_json (const GbPairSet *self,
                                gsize           *len);
gboolean   gb_pair_set_save (const GbPairSet *self,
                             const char      *path,
                             GError         **error);
/* "sha256:<hex>" over, for each pair in order, positive, NUL, negative, NUL
 * (UTF-8). Name and description do not count. */
char      *gb_pair_set_hash (const GbPairSet *self);

/* ---- Steering vectors ---- */

typedef enum
{
  GB_STEER_MEAN, /* mean over pairs of (positive - negative) */
  GB_STEER_PCA,  /* first principal component of the centred differences, as repeng's pca_diff */
} GbSteerMethod;

const char *gb_steer_method_name (GbSteerMethod method);          /* "mean", "pca" */
gboolean    gb_steer_method_parse (const char    *name,
                                   GbSteerMethod *method);

typedef struct
{
  GbSteerMethod method;
  guint64       layers;        /* bit L = block L (its output, blocks.L.hook_resid_post); 0 = all */
  gint          read_pos;      /* token read: >= 0 absolute index, < 0 from the end (-1 = last) */
  guint         holdout_every; /* pairs k-1, 2k-1, ... are held out to score separation; 0 = none */
} GbSteerParams;

void gb_steer_params_init (GbSteerParams *params);

/* One block's direction and how well it separates the held-out pairs. */
typedef struct
{
  guint  layer;
  float *vector;     /* [n_embd] */
  /* On held-out pairs, projecting on the unit direction u: the share of
   * texts on the right side of the training midpoint, the mean of
   * (positive - negative) . u, and that gap over the pooled within-side
   * standard deviation. NaN when nothing was held out. */
  double accuracy;
  double gap;
  double effect;
  /* Mean and standard deviation of the training texts' projections on u
   * (both sides pooled): the scale for gb_steer_layer_projection_z. NaN
   * when unknown (GGUF imports). */
  double proj_mean;
  double proj_sd;
} GbSteerLayer;

typedef struct
{
  char          *model_name;
  char          *model_type;   /* config.json's model_type: the GGUF model_hint */
  guint          n_embd;
  GbSteerMethod  method;
  gboolean       method_known; /* FALSE for a GGUF import */
  gint           read_pos;
  char          *pairs_name;
  char          *pairs_hash;
  guint          n_train, n_heldout, holdout_every;
  guint          n_layers;
  GbSteerLayer  *layers;       /* ascending by layer */
} GbSteerVector;

void           gb_steer_vector_free (GbSteerVector *self);
GbSteerVector *gb_steer_vector_copy (const GbSteerVector *self);
/* The layer entry for block @layer, or NULL. */
const GbSteerLayer *gb_steer_vector_get_layer (const GbSteerVector *self,
                                               guint                layer);

/* Reads the residual stream after each chosen block at the read position for
 * both texts of every pair and computes one direction per block. Progress
 * goes from 0 to 1 over the pairs; cancellation is checked between texts. */
GbSteerVector *gb_steer_train (GbModel             *model,
                               const GbPairSet     *pairs,
                               const GbSteerParams *params,
                               GCancellable        *cancellable,
                               GbProgressFunc       progress,
                               gpointer             progress_data,
                               GError             **error);

/* The same on a worker thread (GTask); @progress runs on the worker. */
void           gb_steer_train_async (GbModel             *model,
                                     const GbPairSet     *pairs,
                                     const GbSteerParams *params,
                                     GCancellable        *cancellable,
                                     GbProgressFunc       progress,
                                     gpointer             progress_data,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data);
GbSteerVector *gb_steer_train_finish (GAsyncResult *result,
                                      GError      **error);

/* A copy holding only the blocks in @mask (bit L = block L); NULL when none. */
GbSteerVector *gb_steer_vector_subset (const GbSteerVector *self,
                                       guint64              mask);

/* Checks that @self fits @model (width, block indices). */
gboolean gb_steer_vector_check (const GbSteerVector *self,
                                GbModel             *model,
                                GError             **error);

/* Fills @out[n_layers] with add-vector interventions at each block's output,
 * multiplier @multiplier, from absolute position @start_pos on (0 = every
 * position, prompt included). The vectors stay owned by @self. Returns n_layers. */
guint gb_steer_vector_interventions (const GbSteerVector *self,
                                     float                multiplier,
                                     guint                start_pos,
                                     GbIntervention      *out);

/* Our JSON format (written atomically). */
gboolean       gb_steer_vector_save (const GbSteerVector *self,
                                     const char          *path,
                                     GError             **error);
/* Loads our JSON or, when the file starts with "GGUF", a control vector. */
GbSteerVector *gb_steer_vector_load (const char *path,
                                     GError    **error);

/* llama.cpp's control-vector GGUF, as repeng writes it:
 * general.architecture = "controlvector", controlvector.model_hint,
 * controlvector.layer_count, one F32 tensor direction.N [n_embd] per block N.
 * llama.cpp refuses direction.0: exporting a block-0 vector still writes it
 * and sets *warning (may be NULL) to say so. */
gboolean       gb_steer_vector_export_gguf (const GbSteerVector *self,
                                            const char          *path,
                                            char               **warning,
                                            GError             **error);
GbSteerVector *gb_steer_vector_import_gguf (const char *path,
                                            GError    **error);

/* The largest |(h . u - proj_mean) / proj_sd| over the rows of @acts
 * [n_rows, n_embd] (a block's output), u the layer's unit direction: how far
 * a steered run pushes the residual stream past what the training texts
 * showed. NaN when the layer has no projection scale. */
double gb_steer_layer_projection_z (const GbSteerLayer *layer,
                                    guint               n_embd,
                                    const float        *acts,
                                    guint               n_rows);

/* Share of the 3-grams of @tokens that repeat an earlier one (0 for fewer
 * than 4 tokens): the degeneration warning's measure. */
double gb_repetition_rate (const gint32 *tokens,
                           guint         n_tokens);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbPairSet, gb_pair_set_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbSteerVector, gb_steer_vector_free)

G_END_DECLS
