/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* From an engine trace to a figure: the one path the window and the command
 * line both take, so the same settings give the same bytes. */

#include <glassbox-engine.h>

#include "gb-heatmap.h"

G_BEGIN_DECLS

typedef enum
{
  GB_AGG_HEAD,       /* one head */
  GB_AGG_LAYER_MEAN, /* mean over one layer's heads */
  GB_AGG_ROLLOUT,    /* attention rollout across all layers */
} GbAggregation;

typedef struct
{
  GbAggregation aggregation;
  guint         layer;
  guint         head;
  GbNorm        norm;
} GbAttentionSelection;

/* Tokenizes @text as both front ends do and clips it to the model's context;
 * *@n_dropped (may be NULL) says how many tokens were cut. */
GArray *gb_attention_tokenize (GbModel    *model,
                               const char *text,
                               guint      *n_dropped,
                               GError    **error);

/* A token as a tick label: its bytes as UTF-8 (U+FFFD for broken bytes),
 * spaces as "·", line breaks as "↵", other controls as control pictures. */
char  *gb_token_label (GbTokenizer *tokenizer,
                       gint32       id);
char **gb_token_labels (GbTokenizer  *tokenizer,
                        const gint32 *ids,
                        guint         n);

/* The selected weights, [T, T], owned. */
float *gb_attention_selection_weights (const GbAttentionMaps      *maps,
                                       const GbAttentionSelection *selection);
char  *gb_attention_selection_title (const char                 *model_name,
                                     const GbAttentionMaps      *maps,
                                     const GbAttentionSelection *selection);
char  *gb_attention_selection_subtitle (const GbAttentionMaps      *maps,
                                        const GbAttentionSelection *selection);

/* Writes the selection to @path: .png (at @scale), .svg and .pdf figures,
 * or the raw weights as .npy (float32 [T, T]) or .json. */
gboolean gb_attention_export (GbModel                    *model,
                              const GbAttentionMaps      *maps,
                              const GbAttentionSelection *selection,
                              const char                 *path,
                              double                      scale,
                              GError                    **error);

/* Every head as a thumbnail in one layer x head grid image, with role
 * badges when @scores is not NULL. */
gboolean gb_attention_export_all_heads (GbModel               *model,
                                        const GbAttentionMaps *maps,
                                        const GbHeadScores    *scores,
                                        GbNorm                 norm,
                                        const char            *path,
                                        double                 scale,
                                        GError               **error);

G_END_DECLS
