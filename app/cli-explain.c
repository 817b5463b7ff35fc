/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gb-explain-report.h>
#include <json-glib/json-glib.h>

#include "gb-build-config.h"
#include "gb-cli.h"

/* glassbox-cli explain: why the model decided what it decided about one
 * application (decision, occlusion, gradients, attention, counterfactual),
 * and an audit of many, as text, JSON or a PDF report. */

typedef struct
{
  char    *model_dir, *schema, *application, *text, *output, *audit, *group, *occlusion, *steer, *steer_pairs, *sae;
  gboolean json, no_token_occlusion;
  int      ig_steps, steer_layer, steer_from, sae_top;
  char    *sae_field;
  double   multiplier;
} Options;

static void
options_clear (Options *o)
{
  g_free (o->model_dir);
  g_free (o->schema);
  g_free (o->application);
  g_free (o->text);
  g_free (o->output);
  g_free (o->audit);
  g_free (o->group);
  g_free (o->occlusion);
  g_free (o->steer);
  g_free (o->steer_pairs);
  g_free (o->sae);
  g_free (o->sae_field);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Options, options_clear)

static const char *
label_of (GbAppSchema *schema,
          gboolean     positive,
          char       **owned)
{
  *owned = g_strstrip (g_strdup (positive ? schema->positive : schema->negative));
  return *owned;
}

static void
print_bar (double v,
           double max_abs)
{
  int n = max_abs > 0 ? (int) (fabs (v) / max_abs * 20 + 0.5) : 0;
  printf ("  %s", v < 0 ? "-" : "+");
  for (int i = 0; i < n; i++)
    printf ("█");
}

static void
print_explanation (GbExplainer         *ex,
                   const GbExplanation *e,
                   const char          *source,
                   GbOcclusionMode      mode)
{
  GbAppSchema *schema = gb_explainer_get_schema (ex);
  g_autofree char *pos = NULL, *neg = NULL, *dec = NULL;
  label_of (schema, TRUE, &pos);
  label_of (schema, FALSE, &neg);
  label_of (schema, e->decision.positive, &dec);

  printf ("Application: %s%s%s%s\n", source, e->app->id ? " (id " : "", e->app->id ? e->app->id : "", e->app->id ? ")" : "");
  printf ("Decision: %s   p(%s) = %.3f   log-odds %s/%s = %+.3f   [p(\"%s\") = %.3g, p(\"%s\") = %.3g over the %s]\n",
          dec, pos, e->decision.p_positive, pos, neg, e->decision.log_odds, pos, e->decision.p_pos_full, neg,
          e->decision.p_neg_full, e->classifier ? "classes" : "vocabulary");

  double max_abs = 0;
  for (guint f = 0; f < e->n_fields; f++)
    max_abs = MAX (max_abs, fabs (e->occlusion[f]));
  printf ("\nEvidence per field (log-odds %s/%s; positive pushes towards %s)\n", pos, neg, pos);
  printf ("  %-16s %-22s %10s %10s %10s %10s\n", "field", "value", "occlusion", "IG", "grad x in", "rollout");
  for (guint f = 0; f < e->n_fields; f++)
    {
      const GbAppField *af = g_ptr_array_index (e->app->fields, f);
      printf ("  %-16.16s %-22.22s %+10.3f", af->name, af->value, e->occlusion[f]);
      if (e->field_ig)
        printf (" %+10.3f %+10.3f", e->field_ig[f], e->field_grad_x_input[f]);
      else
        printf (" %10s %10s", "-", "-");
      printf (" %10.3f", e->field_rollout ? e->field_rollout[f] : 0.0);
      print_bar (e->occlusion[f], max_abs);
      printf ("\n");
    }
  printf ("  occlusion: %s; IG: integrated gradients; rollout: attention (not an explanation, Jain & Wallace 2019)\n",
          mode == GB_OCCLUDE_NEUTRAL ? "the value replaced by the schema's neutral value (line removed when it has none)"
                                     : "the field's line removed");
  if (e->ig)
    printf ("\nIntegrated gradients: %u steps, baseline = position embeddings only; sum %.4f vs F(x) - F(baseline) = %.4f - %.4f "
            "(completeness error %.2f%%)\n",
            e->ig_steps, e->ig_sum, e->decision.log_odds, e->baseline_log_odds, 100 * e->ig_completeness);
  else if (e->gradient_note)
    printf ("\nGradients: %s\n", e->gradient_note);
  g_autofree char *sentence = gb_explanation_counterfactual_sentence (e, ex);
  printf ("\nCounterfactual: %s\n", sentence ? sentence : "no single-field change among the values tried flips the decision.");
}

static void
print_audit (GbExplainer   *ex,
             const GbAudit *a)
{
  GbAppSchema *schema = gb_explainer_get_schema (ex);
  g_autofree char *pos = NULL;
  label_of (schema, TRUE, &pos);
  printf ("\nAudit: %u records by %s\n", a->n, a->group_key);
  printf ("  %-20s %6s %10s %8s %8s %6s %6s %6s %6s\n", "group", "n", pos, "rate", "labeled", "TP", "FP", "FN", "TN");
  for (guint i = 0; i <= a->groups->len; i++)
    {
      const GbAuditGroup *g = i < a->groups->len ? g_ptr_array_index (a->groups, i) : &a->total;
      printf ("  %-20.20s %6u %10u %7.1f%% %8u %6u %6u %6u %6u\n", g->group, g->n, g->n_positive, 100 * g->rate, g->n_labeled,
              g->tp, g->fp, g->fn, g->tn);
    }
  printf ("  gap between the highest and lowest %s rate: %.1f percentage points\n", pos, 100 * a->gap);
}

/* The steering vector: a file (our JSON or a llama.cpp control-vector GGUF)
 * or, with --steer-pairs, trained here by gb_steer_train with steer train's
 * defaults (mean difference at the last token, every fifth pair held out),
 * on one block. */
static GbSteerVector *
load_vector (GbModel       *model,
             const Options *o,
             char         **source,
             GError       **error)
{
  const guint n_layer = gb_model_get_config (model)->n_layer;
  g_autoptr (GbSteerVector) vec = NULL;
  if (o->steer != NULL)
    {
      vec = gb_steer_vector_load (o->steer, error);
      if (vec == NULL)
        return NULL;
      if (o->steer_layer >= 0)
        {
          GbSteerVector *sub = gb_steer_vector_subset (vec, (guint64) 1 << o->steer_layer);
          if (sub == NULL)
            {
              g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: the vector has no block %d", o->steer, o->steer_layer);
              return NULL;
            }
          gb_steer_vector_free (vec);
          vec = sub;
        }
      *source = g_strdup (o->steer);
    }
  else
    {
      g_autoptr (GbPairSet) pairs = gb_pair_set_load (o->steer_pairs, error);
      if (pairs == NULL)
        return NULL;
      GbSteerParams params;
      gb_steer_params_init (&params); /* as glassbox-cli steer train: the same vector */
      params.layers = (guint64) 1 << (o->steer_layer >= 0 ? (guint) o->steer_layer : n_layer / 2);
      vec = gb_steer_train (model, pairs, &params, NULL, NULL, NULL, error);
      if (vec == NULL)
        return NULL;
      *source = g_strdup (o->steer_pairs);
    }
  if (!gb_steer_vector_check (vec, model, error))
    {
      g_prefix_error (error, "%s: ", *source);
      return NULL;
    }
  return g_steal_pointer (&vec);
}

static void
print_sae (const char          *desc,
           GArray              *top,
           GArray              *steered,
           const GbSaeAnalysis *analysis,
           const char          *field,
           GArray              *field_top)
{
  printf ("\nSAE features at the decision position: %s\n", desc);
  printf ("  %-8s %10s %10s  %s\n", "feature", "activation", steered ? "steered" : "", analysis ? "top tokens" : "");
  for (guint i = 0; i < top->len; i++)
    {
      const GbFeatureActivation *fa = &g_array_index (top, GbFeatureActivation, i);
      printf ("  #%-7u %10.3f", fa->index, fa->activation);
      if (steered)
        {
          int found = -1;
          for (guint k = 0; k < steered->len; k++)
            if (g_array_index (steered, GbFeatureActivation, k).index == fa->index)
              found = (int) k;
          if (found >= 0)
            printf (" %10.3f", g_array_index (steered, GbFeatureActivation, found).activation);
          else
            printf (" %10s", "(not top)");
        }
      else
        printf (" %10s", "");
      const char *label = gb_explain_feature_label (analysis, fa->index);
      printf ("  %s\n", label ? label : "");
    }
  if (top->len == 0)
    printf ("  (none active)\n");
  if (field_top != NULL)
    {
      printf ("  over the tokens of the field “%s” (largest activation on any of them):\n", field);
      for (guint i = 0; i < field_top->len; i++)
        {
          const GbFeatureActivation *fa = &g_array_index (field_top, GbFeatureActivation, i);
          const char *label = gb_explain_feature_label (analysis, fa->index);
          printf ("  #%-7u %10.3f %10s  %s\n", fa->index, fa->activation, "", label ? label : "");
        }
    }
  if (analysis == NULL)
    printf ("  (no feature cache for these weights: glassbox-cli sae features --sae DIR --corpus FILE writes one)\n");
}

static void
progress_cb (double      fraction,
             const char *message,
             gpointer    data)
{
  if (*(gboolean *) data)
    g_printerr ("\r%-28s %3.0f%%", message, 100 * fraction);
}

int
gb_cli_explain (int    argc,
                char **argv)
{
  g_auto (Options) o = { .ig_steps = 64, .steer_layer = -1, .multiplier = 1, .sae_top = 10 };
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &o.model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "schema", 0, 0, G_OPTION_ARG_FILENAME, &o.schema, "Application schema (default: the demo's loan-schema.json)", "FILE" },
    { "application", 'a', 0, G_OPTION_ARG_FILENAME, &o.application, "Application: .json record, .csv (first row), .jsonl (first line) or text", "FILE" },
    { "text", 't', 0, G_OPTION_ARG_STRING, &o.text, "Application as text instead of a file", "TEXT" },
    { "audit", 0, 0, G_OPTION_ARG_FILENAME, &o.audit, "Decide every record of a .jsonl or .csv and compare groups", "FILE" },
    { "group", 'g', 0, G_OPTION_ARG_STRING, &o.group, "Record attribute or field to group the audit by (default zip_group)", "KEY" },
    { "occlusion", 0, 0, G_OPTION_ARG_STRING, &o.occlusion, "remove (default: delete the field's line) or neutral (the schema's neutral value)", "MODE" },
    { "ig-steps", 0, 0, G_OPTION_ARG_INT, &o.ig_steps, "Integrated-gradients steps (default 64)", "N" },
    { "no-token-occlusion", 0, 0, G_OPTION_ARG_NONE, &o.no_token_occlusion, "Skip removing each token in turn", NULL },
    { "steer", 0, 0, G_OPTION_ARG_FILENAME, &o.steer, "Also decide (and audit) with this steering vector (glassbox-cli steer train, or a llama.cpp control-vector GGUF)", "VEC" },
    { "multiplier", 0, 0, G_OPTION_ARG_DOUBLE, &o.multiplier, "Steering multiplier (default 1)", "M" },
    { "steer-from", 0, 0, G_OPTION_ARG_INT, &o.steer_from, "Steer from this absolute token position on (default 0: every position)", "POS" },
    { "steer-pairs", 0, 0, G_OPTION_ARG_FILENAME, &o.steer_pairs, "Instead of --steer: train the vector from these contrastive pairs (mean difference at the last token)", "PAIRS.json" },
    { "steer-layer", 0, 0, G_OPTION_ARG_INT, &o.steer_layer, "Only this block of the vector (--steer-pairs: the block trained; default the middle one)", "L" },
    { "sae", 0, 0, G_OPTION_ARG_FILENAME, &o.sae, "List this SAE's most active features at the decision position", "DIR" },
    { "sae-field", 0, 0, G_OPTION_ARG_STRING, &o.sae_field, "Also the SAE features over this field's tokens (default: the field with the largest occlusion)", "NAME" },
    { "sae-top", 0, 0, G_OPTION_ARG_INT, &o.sae_top, "How many SAE features (default 10)", "N" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &o.output, "Write a PDF report there", "REPORT.pdf" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &o.json, "Print JSON instead of text", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- explain the model's decision on an application, or audit many");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (argc > 1)
    return gb_cli_usage ("unexpected argument “%s”", argv[1]);
  if (o.application != NULL && o.text != NULL)
    return gb_cli_usage ("give --application FILE or --text TEXT, not both");
  if (o.application == NULL && o.text == NULL && o.audit == NULL)
    return gb_cli_usage ("--application FILE (or --text TEXT, or --audit FILE) is required");
  if (o.ig_steps < 1 || o.ig_steps > 4096)
    return gb_cli_usage ("--ig-steps must lie between 1 and 4096");
  GbExplainOptions opts;
  gb_explain_options_init (&opts);
  opts.ig_steps = o.ig_steps;
  opts.token_occlusion = !o.no_token_occlusion;
  if (o.occlusion != NULL && g_str_equal (o.occlusion, "neutral"))
    opts.occlusion = GB_OCCLUDE_NEUTRAL;
  else if (o.occlusion != NULL && !g_str_equal (o.occlusion, "remove"))
    return gb_cli_usage ("--occlusion %s: use remove or neutral", o.occlusion);
  if (o.steer != NULL && o.steer_pairs != NULL)
    return gb_cli_usage ("give --steer VEC or --steer-pairs PAIRS, not both");
  if (o.steer_from < 0)
    return gb_cli_usage ("--steer-from must not be negative");
  if (!isfinite (o.multiplier))
    return gb_cli_usage ("--multiplier must be a finite number");
  if (o.sae_top < 1 || o.sae_top > 1000)
    return gb_cli_usage ("--sae-top must lie between 1 and 1000");
  if (o.sae != NULL && o.application == NULL && o.text == NULL)
    return gb_cli_usage ("--sae needs an application (--application or --text)");
  if (o.output != NULL && !g_str_has_suffix (o.output, ".pdf"))
    return gb_cli_usage ("--output %s: the report is a PDF (.pdf)", o.output);

  g_autofree char *schema_path = o.schema ? g_strdup (o.schema) : g_build_filename (GB_DATA_DIR, "applications", "loan-schema.json", NULL);
  g_autoptr (GbAppSchema) schema = gb_app_schema_load (schema_path, &error);
  if (schema == NULL)
    return gb_cli_fail (error);
  const char *model_dir = o.model_dir ? o.model_dir : gb_cli_default_model_dir ();
  g_autoptr (GbModel) model = gb_model_load (model_dir, NULL, NULL, NULL, &error);
  if (model == NULL)
    return gb_cli_fail (error);

  g_autoptr (GbApplication) app = NULL;
  if (o.application)
    app = gb_application_load (schema, o.application, &error);
  else if (o.text)
    app = gb_application_new_from_text (schema, o.text, &error);
  if ((o.application || o.text) && app == NULL)
    return gb_cli_fail (error);
  g_autoptr (GPtrArray) records = o.audit ? gb_application_load_all (schema, o.audit, 0, &error) : NULL;
  if (o.audit && records == NULL)
    return gb_cli_fail (error);

  GbAppSchema *schema_ref = schema;
  g_autoptr (GbExplainer) ex = gb_explainer_new (model, g_steal_pointer (&schema), &error);
  if (ex == NULL)
    {
      gb_app_schema_free (schema_ref);
      return gb_cli_fail (error);
    }

  /* Steering: the decision and a second audit are made with the vector. */
  const guint n_layer = gb_model_get_config (model)->n_layer;
  if (o.steer_layer >= (int) n_layer)
    return gb_cli_usage ("--steer-layer %d: the model has blocks 0 to %u", o.steer_layer, n_layer - 1);
  g_autoptr (GbSteerVector) vec = NULL;
  g_autofree char *steer_desc = NULL, *steer_source = NULL;
  g_autofree GbIntervention *iv = NULL;
  guint n_iv = 0;
  if (o.steer != NULL || o.steer_pairs != NULL)
    {
      vec = load_vector (model, &o, &steer_source, &error);
      if (vec == NULL)
        return gb_cli_fail (error);
      iv = g_new0 (GbIntervention, vec->n_layers);
      n_iv = gb_steer_vector_interventions (vec, (float) o.multiplier, (guint) o.steer_from, iv);
      steer_desc = gb_explain_steer_description (steer_source, vec, o.multiplier, (guint) o.steer_from, &error);
      if (steer_desc == NULL)
        return gb_cli_fail (error);
    }

  /* SAE features at the decision position (with and without the vector). */
  g_autoptr (GbSae) sae = NULL;
  g_autoptr (GArray) sae_top = NULL, sae_top_steered = NULL;
  g_autoptr (GbSaeAnalysis) sae_analysis = NULL;
  g_autofree char *sae_desc = NULL;
  if (o.sae != NULL)
    {
      sae = gb_sae_load (o.sae, &error);
      if (sae == NULL || !gb_sae_check_model (sae, model, &error))
        return gb_cli_fail (error);
      sae_desc = gb_explain_sae_description (sae, &error);
      if (sae_desc == NULL)
        return gb_cli_fail (error);
      sae_analysis = gb_explain_sae_descriptions (sae);
      sae_top = gb_explainer_sae_features (ex, app, sae, NULL, 0, -1, 1, (guint) o.sae_top, NULL, NULL, &error);
      if (sae_top == NULL)
        return gb_cli_fail (error);
      if (vec != NULL)
        {
          sae_top_steered = gb_explainer_sae_features (ex, app, sae, iv, n_iv, -1, 1, (guint) o.sae_top, NULL, NULL, &error);
          if (sae_top_steered == NULL)
            return gb_cli_fail (error);
        }
    }

  gboolean tty = isatty (fileno (stderr)) && !o.json;
  g_autoptr (GbExplanation) e = NULL;
  GbDecision steered_decision = { 0 };
  if (app != NULL)
    {
      e = gb_explainer_explain (ex, app, &opts, NULL, progress_cb, &tty, &error);
      if (tty)
        g_printerr ("\r%40s\r", "");
      if (e == NULL)
        return gb_cli_fail (error);
      if (vec != NULL && !gb_explainer_decide (ex, app, iv, n_iv, &steered_decision, NULL, &error))
        return gb_cli_fail (error);
    }
  /* SAE features over the tokens of one field (the most influential one by
   * occlusion, or --sae-field): where a proxy such as the zip code fires. */
  g_autoptr (GArray) sae_field_top = NULL;
  const char *sae_field = NULL;
  if (sae != NULL && e != NULL && e->n_fields > 0)
    {
      int f = -1;
      for (guint i = 0; i < e->n_fields; i++)
        {
          const GbAppField *af = g_ptr_array_index (e->app->fields, i);
          if (o.sae_field ? g_str_equal (af->name, o.sae_field) : (f < 0 || fabs (e->occlusion[i]) > fabs (e->occlusion[f])))
            f = (int) i;
        }
      if (f < 0)
        {
          g_set_error (&error, GB_ERROR, GB_ERROR_INVALID_DATA, "--sae-field %s: the application has no such field", o.sae_field);
          return gb_cli_fail (error);
        }
      int first = -1, last = -1;
      for (guint t = 0; t < e->n_tokens; t++)
        if (e->token_field[t] == f)
          {
            if (first < 0)
              first = (int) t;
            last = (int) t;
          }
      sae_field = ((const GbAppField *) g_ptr_array_index (e->app->fields, f))->name;
      if (first >= 0)
        {
          sae_field_top = gb_explainer_sae_features (ex, app, sae, NULL, 0, first, (guint) (last - first + 1), (guint) o.sae_top,
                                                     NULL, NULL, &error);
          if (sae_field_top == NULL)
            return gb_cli_fail (error);
        }
    }

  g_autoptr (GbAudit) audit = NULL, steered = NULL;
  if (records != NULL)
    {
      audit = gb_explainer_audit (ex, records, o.group ? o.group : "zip_group", NULL, 0, NULL, progress_cb, &tty, &error);
      if (tty)
        g_printerr ("\r%40s\r", "");
      if (audit == NULL)
        return gb_cli_fail (error);
      if (vec != NULL)
        {
          steered = gb_explainer_audit (ex, records, audit->group_key, iv, n_iv, NULL, progress_cb, &tty, &error);
          if (tty)
            g_printerr ("\r%40s\r", "");
          if (steered == NULL)
            return gb_cli_fail (error);
        }
    }

  if (o.json)
    {
      g_autofree char *json = e ? gb_explanation_to_json (e, ex, audit) : gb_audit_to_json (audit);
      g_autoptr (JsonParser) parser = json_parser_new ();
      if (!json_parser_load_from_data (parser, json, -1, &error))
        return gb_cli_fail (error);
      JsonObject *root = json_node_get_object (json_parser_get_root (parser));
      if (vec != NULL)
        {
          JsonObject *st = json_object_new ();
          json_object_set_string_member (st, "description", steer_desc);
          json_object_set_string_member (st, "source", steer_source);
          g_autofree char *sha = gb_file_sha256 (steer_source, NULL);
          if (sha != NULL)
            json_object_set_string_member (st, "sha256", sha);
          JsonArray *blocks = json_array_new ();
          for (guint i = 0; i < vec->n_layers; i++)
            json_array_add_int_element (blocks, vec->layers[i].layer);
          json_object_set_array_member (st, "blocks", blocks);
          json_object_set_double_member (st, "multiplier", o.multiplier);
          json_object_set_int_member (st, "steer_from", o.steer_from);
          json_object_set_object_member (root, "steering", st);
        }
      if (vec != NULL && e != NULL)
        {
          JsonObject *d = json_object_new ();
          json_object_set_double_member (d, "log_odds", steered_decision.log_odds);
          json_object_set_double_member (d, "p_positive", steered_decision.p_positive);
          json_object_set_boolean_member (d, "positive", steered_decision.positive);
          json_object_set_object_member (root, "decision_steered", d);
        }
      if (steered != NULL)
        {
          g_autofree char *st = gb_audit_to_json (steered);
          g_autoptr (JsonParser) p2 = json_parser_new ();
          if (!json_parser_load_from_data (p2, st, -1, &error))
            return gb_cli_fail (error);
          json_object_set_member (root, "audit_steered", json_node_copy (json_parser_get_root (p2)));
        }
      if (sae != NULL)
        {
          JsonObject *so = json_object_new ();
          json_object_set_string_member (so, "description", sae_desc);
          json_object_set_string_member (so, "path", o.sae);
          g_autofree char *hook = g_strdup_printf ("blocks.%u.%s", sae->layer, gb_hook_name (sae->hook));
          json_object_set_string_member (so, "hook", hook);
          json_object_set_int_member (so, "position", e ? (gint64) e->n_tokens - 1 : -1);
          if (sae_field != NULL)
            json_object_set_string_member (so, "field", sae_field);
          for (guint k = 0; k < 3; k++)
            {
              GArray *list = k == 0 ? sae_top : k == 1 ? sae_top_steered : sae_field_top;
              if (list == NULL)
                continue;
              JsonArray *arr = json_array_new ();
              for (guint i = 0; i < list->len; i++)
                {
                  const GbFeatureActivation *fa = &g_array_index (list, GbFeatureActivation, i);
                  JsonObject *f = json_object_new ();
                  json_object_set_int_member (f, "index", fa->index);
                  json_object_set_double_member (f, "activation", fa->activation);
                  const char *label = gb_explain_feature_label (sae_analysis, fa->index);
                  if (label != NULL)
                    json_object_set_string_member (f, "label", label);
                  else
                    json_object_set_null_member (f, "label");
                  json_array_add_object_element (arr, f);
                }
              json_object_set_array_member (so, k == 0 ? "features" : k == 1 ? "features_steered" : "field_features", arr);
            }
          json_object_set_object_member (root, "sae", so);
        }
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      json_generator_set_pretty (gen, TRUE);
      json_generator_set_root (gen, json_parser_get_root (parser));
      g_autofree char *out = json_generator_to_data (gen, NULL);
      printf ("%s\n", out);
    }
  else
    {
      if (steer_desc)
        printf ("Steering: %s\n\n", steer_desc);
      if (e)
        print_explanation (ex, e, o.application ? o.application : "text", opts.occlusion);
      if (e && vec)
        {
          g_autofree char *pos = NULL, *dec = NULL;
          label_of (gb_explainer_get_schema (ex), TRUE, &pos);
          label_of (gb_explainer_get_schema (ex), steered_decision.positive, &dec);
          printf ("\nWith the steering vector: %s   p(%s) = %.3f   log-odds %+.3f\n", dec, pos, steered_decision.p_positive,
                  steered_decision.log_odds);
        }
      if (sae_top)
        print_sae (sae_desc, sae_top, sae_top_steered, sae_analysis, sae_field, sae_field_top);
      if (audit)
        print_audit (ex, audit);
      if (steered)
        {
          printf ("\nWith the steering vector:");
          print_audit (ex, steered);
          printf ("  the gap moves from %.1f to %.1f percentage points\n", 100 * audit->gap, 100 * steered->gap);
        }
    }
  if (o.output != NULL)
    {
      GbReportProvenance prov = { .model_dir = gb_model_get_path (model), .schema_path = schema_path,
                                  .application = o.application, .audit = o.audit, .version = GB_VERSION,
                                  .interventions = steer_desc, .audit_steered = steered,
                                  .decision_steered = vec && e ? &steered_decision : NULL,
                                  .sae = sae_desc, .sae_features = sae_top, .sae_analysis = sae_analysis,
                                  .sae_field = sae_field, .sae_field_features = sae_field_top };
      if (!gb_explain_report_write (o.output, ex, e, audit, &prov, &error))
        return gb_cli_fail (error);
      if (!o.json)
        printf ("\nReport: %s\n", o.output);
    }
  fflush (stdout);
  return GB_CLI_OK;
}
