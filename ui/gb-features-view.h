/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>
#include <glassbox-engine.h>

G_BEGIN_DECLS

#define GB_TYPE_FEATURES_VIEW (gb_features_view_get_type ())
G_DECLARE_FINAL_TYPE (GbFeaturesView, gb_features_view, GB, FEATURES_VIEW, GtkWidget)

/* The Features view: opens or trains a sparse autoencoder over one hook of
 * the current model (on a worker thread, with progress and cancel), then
 * shows a gallery of feature cards (label, frequency, maximum activation,
 * the top snippets with each token shaded by its activation), searchable and
 * sortable, and one feature's page (activation density and histogram,
 * promoted and suppressed tokens, top and lower-band snippets, "try it").
 *
 * Emits "ready" when an SAE's features are shown and "failed" (with the
 * message) when opening or training one failed. */

GtkWidget  *gb_features_view_new (void);
/* The model the SAEs read (borrowed reference kept); NULL closes the SAE. */
void        gb_features_view_set_model (GbFeaturesView *self,
                                        GbModel        *model);
/* Opens an SAE folder and analyses @corpus (NULL: the bundled sample), from
 * the folder's cache when it matches. */
void        gb_features_view_open (GbFeaturesView *self,
                                   const char     *sae_dir,
                                   const char     *corpus);
/* Trains an SAE on @corpus into @output_dir (on a worker, with progress),
 * then opens it; the held-out metrics come from the corpus past the budget. */
void        gb_features_view_train (GbFeaturesView        *self,
                                    const GbSaeRunOptions *options,
                                    const char            *corpus,
                                    const char            *output_dir);
/* Opens the Train dialog (layer, hook, kind, width, k or L1, corpus,
 * budget, output); returns it (owned by GTK). */
GtkWindow  *gb_features_view_show_train_dialog (GbFeaturesView *self);
/* Shows feature @index's page (-1: none). */
void        gb_features_view_select (GbFeaturesView *self,
                                     int             index);
/* Filters the gallery as the search entry does. */
void        gb_features_view_search (GbFeaturesView *self,
                                     const char     *text);
/* Exports the gallery as shown (filtered, sorted) to .html or .json, or
 * the current feature page to .png. */
gboolean    gb_features_view_export (GbFeaturesView *self,
                                     const char     *path,
                                     GError        **error);
/* "Features on this text": each token of @text with its strongest features. */
void        gb_features_view_show_text (GbFeaturesView *self,
                                        const char     *text);
/* Cancels the running job, if any. */
void        gb_features_view_cancel (GbFeaturesView *self);
/* While an SAE trains: stops training, keeping the checkpoint, whose
 * features are then analysed and shown; FALSE when nothing is training. */
gboolean    gb_features_view_stop_training (GbFeaturesView *self);

/* The bundled sample corpus, and the bundled SAE for @model (NULL if none). */
const char *gb_features_view_default_corpus (void);
char       *gb_features_view_bundled_sae (GbModel *model);

G_END_DECLS
