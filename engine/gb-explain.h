/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "gb-application.h"
#include "gb-model.h"
#include "gb-sae.h"

G_BEGIN_DECLS

/* "Explain a decision": the model's decision on an application, and the
 * evidence for it, each per token and summed per field.
 *
 * The decision of a causal LM is read from the next-token logits after the
 * prompt: log-odds = logit(positive word) - logit(negative word)
 * = log p(positive) / p(negative). A GPT2ForSequenceClassification model's
 * is read from its class logits at the last token (classes matched to the
 * label words by name, else 1 = positive, 0 = negative).
 *
 * Every call takes an optional list of interventions (steering vectors,
 * ablations), applied to every forward pass it makes. */

typedef struct _GbExplainer GbExplainer;

typedef struct
{
  double   log_odds;     /* log p(pos) / p(neg) */
  double   p_positive;   /* sigmoid(log_odds): the two-way probability */
  double   p_pos_full;   /* the label words' probabilities over the whole */
  double   p_neg_full;   /* vocabulary (or over the classes) */
  gboolean positive;     /* log_odds > 0 */
} GbDecision;

typedef enum
{
  GB_OCCLUDE_REMOVE,     /* the field's line (or its value) is deleted */
  GB_OCCLUDE_NEUTRAL,    /* the value becomes the schema's neutral value
                            (removed when it has none) */
} GbOcclusionMode;

typedef struct
{
  GbOcclusionMode       occlusion;
  guint                 ig_steps;        /* 0: 64 */
  gboolean              token_occlusion; /* also remove each token in turn */
  gboolean              gradients;       /* gradient x input and IG */
  gboolean              counterfactual;
  guint                 max_candidates;  /* per field; 0: 128 */
  const GbIntervention *interventions;
  guint                 n_interventions;
} GbExplainOptions;

void gb_explain_options_init (GbExplainOptions *options);

/* A single-field change and what it does. */
typedef struct
{
  char    *field;
  char    *from;
  char    *to;          /* the nearest value that flips the decision */
  double   log_odds;    /* with @to */
  double   distance;    /* |to - from| / (search range) for numbers; 1 per
                           category otherwise */
  guint    n_tried;
  guint    n_flipping;  /* of the tried values */
} GbCounterfactual;

typedef struct
{
  GbApplication *app;
  GbDecision     decision;
  gboolean       classifier;    /* read from a classification head */
  guint          n_classes;     /* its classes (config id2label order) */
  double        *class_probs;   /* [n_classes] softmax, or NULL */

  /* Tokens of the prompt and where each lies. */
  guint          n_tokens;
  gint32        *tokens;        /* [T] */
  gsize         *token_start;   /* [T] byte offsets into app->text */
  gsize         *token_end;
  int           *token_field;   /* [T] field index, -1 for none */
  guint          n_fields;      /* app->fields->len */

  /* Occlusion: log-odds(original) - log-odds(occluded). Positive = the
   * field pushed towards the positive label. */
  GbOcclusionMode occlusion_mode;
  double        *occlusion;          /* [F] */
  double        *occluded_log_odds;  /* [F] */
  double        *token_occlusion;    /* [T] or NULL (removing one token) */

  /* Gradients, on the token part of the input embeddings (the baseline
   * keeps the position embeddings): NULL when not computed, with the reason
   * in @gradient_note. */
  double        *grad_x_input;       /* [T] wte[t] . d(log-odds)/d(embed) */
  double        *ig;                 /* [T] integrated gradients */
  double        *field_grad_x_input; /* [F] */
  double        *field_ig;           /* [F] */
  guint          ig_steps;
  double         ig_sum;             /* sum of ig[] */
  double         baseline_log_odds;  /* F(baseline) */
  double         ig_completeness;    /* |ig_sum - (F(x) - F(x'))| / |F(x) - F(x')| */
  char          *gradient_note;

  /* Attention from the decision position (the last token): NULL for a
   * classification head that was not recorded. */
  guint          n_layer, n_head;
  float         *attn_heads;   /* [L, H, T] */
  float         *attn_mean;    /* [L, T] mean over heads */
  float         *attn_rollout; /* [T] */
  double        *field_rollout; /* [F] sum of rollout over the field's tokens */

  GPtrArray     *counterfactuals; /* GbCounterfactual*, nearest first */
} GbExplanation;

void gb_explanation_free (GbExplanation *explanation);

/* Label words must be single tokens of the model's vocabulary. */
GbExplainer   *gb_explainer_new (GbModel     *model,
                                 GbAppSchema *schema,
                                 GError     **error);
void           gb_explainer_free (GbExplainer *self);
GbModel       *gb_explainer_get_model (GbExplainer *self);
GbAppSchema   *gb_explainer_get_schema (GbExplainer *self);
gint32         gb_explainer_get_label_token (GbExplainer *self,
                                             gboolean     positive);

/* One forward pass: the decision on @app. */
gboolean       gb_explainer_decide (GbExplainer          *self,
                                    const GbApplication  *app,
                                    const GbIntervention *interventions,
                                    guint                 n_interventions,
                                    GbDecision           *out,
                                    GCancellable         *cancellable,
                                    GError              **error);

/* The decision and every piece of evidence @options asks for. */
GbExplanation *gb_explainer_explain (GbExplainer            *self,
                                     const GbApplication    *app,
                                     const GbExplainOptions *options,
                                     GCancellable           *cancellable,
                                     GbProgressFunc          progress,
                                     gpointer                progress_data,
                                     GError                **error);

/* @progress runs on the worker thread. @app is copied; @options (and its
 * interventions) must stay alive until the callback. */
void           gb_explainer_explain_async (GbExplainer            *self,
                                           const GbApplication    *app,
                                           const GbExplainOptions *options,
                                           GCancellable           *cancellable,
                                           GbProgressFunc          progress,
                                           gpointer                progress_data,
                                           GAsyncReadyCallback     callback,
                                           gpointer                user_data);
GbExplanation *gb_explainer_explain_finish (GbExplainer  *self,
                                            GAsyncResult *result,
                                            GError      **error);

/* ---- SAE features at the decision position ---- */

typedef struct
{
  guint index;       /* the SAE latent */
  float activation;
} GbFeatureActivation;

/* The SAE's latents at token @position of the prompt (>= 0 absolute, < 0
 * from the end: -1 is the decision position, the last token, where the
 * decision is read), with @interventions applied to the forward pass:
 * the activation at the SAE's hook, preprocessed (centring, normalisation)
 * and encoded; with @n_positions > 1, each latent's largest value over
 * tokens @position .. @position + @n_positions - 1 (a field's tokens). @z (may be NULL) receives all d_sae latents; the result holds
 * the @top_n largest positive ones (GbFeatureActivation), strongest first,
 * ties by index. Fails, naming the SAE, when its hook does not fit the
 * model. */
GArray        *gb_explainer_sae_features (GbExplainer          *self,
                                          const GbApplication  *app,
                                          const GbSae          *sae,
                                          const GbIntervention *interventions,
                                          guint                 n_interventions,
                                          gint                  position,
                                          guint                 n_positions,
                                          guint                 top_n,
                                          float                *z,
                                          GCancellable         *cancellable,
                                          GError              **error);

/* ---- Audit ---- */

typedef struct
{
  char  *group;
  guint  n;
  guint  n_positive;   /* decided positive */
  guint  n_labeled;    /* records with a true label */
  guint  tp, fp, fn, tn;
  double rate;         /* n_positive / n */
} GbAuditGroup;

typedef struct
{
  char         *group_key;
  guint         n;
  GPtrArray    *groups;   /* GbAuditGroup*, sorted by name */
  GbAuditGroup  total;
  double        gap;      /* highest rate - lowest rate */
  double       *log_odds; /* [n] per record, in order */
} GbAudit;

void     gb_audit_free (GbAudit *audit);

/* The decision on every record, grouped by @group_key (a record attribute
 * or field; records without it fall in the group "(none)"). */
GbAudit *gb_explainer_audit (GbExplainer          *self,
                             GPtrArray            *apps,
                             const char           *group_key,
                             const GbIntervention *interventions,
                             guint                 n_interventions,
                             GCancellable         *cancellable,
                             GbProgressFunc        progress,
                             gpointer              progress_data,
                             GError              **error);
/* @apps is referenced; @interventions must outlive the call. */
void     gb_explainer_audit_async (GbExplainer          *self,
                                   GPtrArray            *apps,
                                   const char           *group_key,
                                   const GbIntervention *interventions,
                                   guint                 n_interventions,
                                   GCancellable         *cancellable,
                                   GbProgressFunc        progress,
                                   gpointer              progress_data,
                                   GAsyncReadyCallback   callback,
                                   gpointer              user_data);
GbAudit *gb_explainer_audit_finish (GbExplainer  *self,
                                    GAsyncResult *result,
                                    GError      **error);

/* The explanation (and @audit, may be NULL) as JSON, for --json and
 * notebooks. */
char    *gb_explanation_to_json (const GbExplanation *explanation,
                                 GbExplainer         *explainer,
                                 const GbAudit       *audit);
char    *gb_audit_to_json (const GbAudit *audit);

/* A sentence for people: "Approved if zip were 40112 (or credit_score were
 * 700)." NULL when no single-field change flips it. */
char    *gb_explanation_counterfactual_sentence (const GbExplanation *explanation,
                                                 GbExplainer         *explainer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbExplainer, gb_explainer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbExplanation, gb_explanation_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbAudit, gb_audit_free)

G_END_DECLS
