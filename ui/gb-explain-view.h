/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>
#include <glassbox-engine.h>

G_BEGIN_DECLS

#define GB_TYPE_EXPLAIN_VIEW (gb_explain_view_get_type ())
G_DECLARE_FINAL_TYPE (GbExplainView, gb_explain_view, GB, EXPLAIN_VIEW, AdwBin)

/* "Explain a decision": pick a bundled application, open one, or enter one
 * as a form or as text; see the decision, the evidence per field and token,
 * attention (with its caveat), the counterfactual, an audit over many
 * records, and export it all as a PDF report. Long work runs on worker
 * threads with progress and cancel. */
GtkWidget *gb_explain_view_new (void);
/* The view explains with @model from now on (NULL: none). */
void       gb_explain_view_set_model (GbExplainView *self,
                                      GbModel       *model);
/* Unattended (tests, screenshots): opens @application, explains it, runs
 * the audit over @audit when not NULL, writes the report to @report when
 * not NULL (as Export Report does), then calls @done with 0 or 1. */
void       gb_explain_view_automate (GbExplainView *self,
                                     const char    *application,
                                     const char    *audit,
                                     const char    *report,
                                     void         (*done) (gpointer data, int status),
                                     gpointer       data);

/* Unattended: steer with the vector in @vector or, when NULL and @pairs is
 * not, one trained from @pairs on a worker before explaining (NULL, NULL:
 * no steering); at @block (-1: keep) and @multiplier; list the features of
 * the SAE in @sae_dir (NULL: the bundled one for the model, if any), and
 * over the tokens of @sae_field (NULL: the largest occlusion). Call
 * before gb_explain_view_automate. */
void       gb_explain_view_automate_steering (GbExplainView *self,
                                              const char    *vector,
                                              const char    *pairs,
                                              int            block,
                                              double         multiplier,
                                              const char    *sae_dir,
                                              const char    *sae_field);

/* Reads the SAE's feature cache again (the Features view may have built it). */
void       gb_explain_view_reload_sae_descriptions (GbExplainView *self);

/* The SAE folder whose features are listed, or NULL. */
const char *gb_explain_view_get_sae_dir (GbExplainView *self);

/* Signal "open-feature" (const char *sae_dir, int index): the user asked to
 * see an SAE feature in the Features view. */

G_END_DECLS
