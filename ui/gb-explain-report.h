/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* The figures of "Explain a decision" (cairo and pango only, so the view, the
 * command line and the tests draw the same pictures) and the PDF report. */

#include <cairo.h>
#include <glassbox-engine.h>

G_BEGIN_DECLS

typedef enum
{
  GB_EVIDENCE_OCCLUSION,
  GB_EVIDENCE_IG,
  GB_EVIDENCE_GRAD_X_INPUT,
  GB_EVIDENCE_ROLLOUT,
  GB_N_EVIDENCE
} GbEvidence;

const char   *gb_evidence_name (GbEvidence evidence);
/* Per field [F] or per token [T]; NULL when the explanation lacks it. The
 * token values of occlusion remove one token at a time. */
const double *gb_evidence_fields (const GbExplanation *e,
                                  GbEvidence           evidence);
double       *gb_evidence_tokens (const GbExplanation *e,
                                  GbEvidence           evidence);

/* A diverging colour for @v in [-1, 1]: orange-red (towards the negative
 * label) through the background to blue (towards the positive). */
void gb_explain_diverging (double  v,
                           gboolean dark,
                           double  rgb[3]);

/* Each returns the height it drew at (@x, @y) within @width. */
double gb_explain_draw_field_bars (cairo_t             *cr,
                                   const GbExplanation *e,
                                   GbEvidence           evidence,
                                   double               x,
                                   double               y,
                                   double               width,
                                   gboolean             dark);
double gb_explain_draw_tokens (cairo_t             *cr,
                               GbExplainer         *explainer,
                               const GbExplanation *e,
                               GbEvidence           evidence,
                               double               x,
                               double               y,
                               double               width,
                               gboolean             dark);
/* Attention from the decision position over the tokens: one row per layer
 * (mean over its heads) or, with @heads, one row per head, then the
 * rollout; each row scaled to its maximum. */
double gb_explain_draw_attention (cairo_t             *cr,
                                  GbExplainer         *explainer,
                                  const GbExplanation *e,
                                  gboolean             heads,
                                  double               x,
                                  double               y,
                                  double               width,
                                  gboolean             dark);
double gb_explain_draw_audit (cairo_t       *cr,
                              GbExplainer   *explainer,
                              const GbAudit *audit,
                              double         x,
                              double         y,
                              double         width,
                              gboolean       dark);

typedef struct
{
  const char *model_dir;
  const char *schema_path;
  const char *application;  /* may be NULL */
  const char *audit;        /* may be NULL */
  const char *version;
  const char *interventions; /* a description, or NULL for none */
  const GbAudit *audit_steered; /* the audit again with the interventions, or NULL */
  const GbDecision *decision_steered; /* the decision with them, or NULL */
  const char *sae;           /* the SAE's description, or NULL */
  const GArray *sae_features; /* GbFeatureActivation at the decision position, or NULL */
  const GbSaeAnalysis *sae_analysis; /* feature descriptions, or NULL */
  const char *sae_field;     /* a field whose tokens were encoded too, or NULL */
  const GArray *sae_field_features; /* their largest activations, or NULL */
  const char *weights_sha256; /* gb_model_weights_sha256() of model_dir, or NULL: hashed here */
} GbReportProvenance;

/* "FILE (SHA-256 hex): blocks 3, 4, multiplier M, from position P" for a
 * steering vector read from @path (its file's hash). */
char    *gb_explain_steer_description (const char          *path,
                                       const GbSteerVector *vec,
                                       double               multiplier,
                                       guint                start_pos,
                                       GError             **error);
/* "DIR (hook, kind, widths; sae_weights.safetensors SHA-256 hex)". */
char    *gb_explain_sae_description (const GbSae *sae,
                                     GError     **error);
/* The feature cache made from @sae's weights: features.json in its folder,
 * else the user's cache (where the Features view writes for a read-only
 * SAE); NULL when there is none. */
GbSaeAnalysis *gb_explain_sae_descriptions (const GbSae *sae);
/* Feature @index's short description (its most common top tokens), or NULL. */
const char *gb_explain_feature_label (const GbSaeAnalysis *analysis,
                                      guint                index);
/* The SAE's user-cache file for a folder (see gb_explain_sae_descriptions). */
char    *gb_sae_user_cache_path (const char *sae_dir);

/* SHA-256 of every *.safetensors file in @dir, as "name  hex" lines. */
char    *gb_model_weights_sha256 (const char   *dir,
                                  GCancellable *cancellable,
                                  GError      **error);

/* Writes the PDF report (A4) atomically. @e or @audit may be NULL, not
 * both. */
gboolean gb_explain_report_write (const char               *path,
                                  GbExplainer              *explainer,
                                  const GbExplanation      *e,
                                  const GbAudit            *audit,
                                  const GbReportProvenance *provenance,
                                  GError                  **error);

G_END_DECLS
