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
  char    *model_dir, *schema, *application, *text, *output, *audit, *group, *occlusion, *steer_pairs;
  gboolean json, no_token_occlusion;
  int      ig_steps, steer_layer;
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
  g_free (o->steer_pairs);
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

/* A steering vector for the audit "with and without": the mean over the
 * pairs of resid_post[layer] at the last token, positive minus negative
 * (the steering-vectors library's method). A stop-gap until glassbox-cli
 * steer writes vector files this command can read. */
static float *
steer_vector (GbModel    *model,
              const char *path,
              guint       layer,
              char      **description,
              GError    **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  const guint D = gb_model_get_config (model)->n_embd;
  g_autofree double *acc = g_new0 (double, D);
  guint n = 0;

  if (!json_parser_load_from_file (parser, path, error))
    return NULL;
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *obj = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonArray *pairs = obj && json_object_has_member (obj, "pairs") ? json_object_get_array_member (obj, "pairs") : NULL;
  for (guint i = 0; pairs && i < json_array_get_length (pairs); i++)
    {
      JsonObject *pr = json_array_get_object_element (pairs, i);
      const char *texts[2] = { pr ? json_object_get_string_member_with_default (pr, "positive", NULL) : NULL,
                               pr ? json_object_get_string_member_with_default (pr, "negative", NULL) : NULL };
      if (texts[0] == NULL || texts[1] == NULL)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: pair %u needs “positive” and “negative” texts", path, i + 1);
          return NULL;
        }
      for (guint k = 0; k < 2; k++)
        {
          g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), texts[k], -1, FALSE, error);
          if (ids == NULL || ids->len == 0)
            return NULL;
          GbRecord rec = { .logits = GB_LOGITS_NONE };
          rec.hooks[GB_HOOK_RESID_POST] = (guint64) 1 << layer;
          g_autoptr (GbTrace) tr = gb_model_forward (model, (gint32 *) ids->data, ids->len, &rec, NULL, 0, NULL, error);
          if (tr == NULL)
            return NULL;
          const float *row = gb_trace_get (tr, GB_HOOK_RESID_POST, layer) + (gsize) (ids->len - 1) * D;
          for (guint d = 0; d < D; d++)
            acc[d] += k == 0 ? row[d] : -row[d];
        }
      n++;
    }
  if (n == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: no “pairs”", path);
      return NULL;
    }
  float *vec = g_new (float, D);
  for (guint d = 0; d < D; d++)
    vec[d] = (float) (acc[d] / n);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *data = NULL;
  gsize len = 0;
  g_file_get_contents (path, &data, &len, NULL);
  g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) (data ? data : ""), len);
  *description = g_strdup_printf ("mean difference of %u pairs from %s (SHA-256 %s), added to the output of block %u", n,
                                  base, sha, layer);
  return vec;
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
  g_auto (Options) o = { .ig_steps = 64, .steer_layer = -1, .multiplier = 1 };
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
    { "steer-pairs", 0, 0, G_OPTION_ARG_FILENAME, &o.steer_pairs, "Also decide with a steering vector: the mean difference of these contrastive pairs", "PAIRS.json" },
    { "steer-layer", 0, 0, G_OPTION_ARG_INT, &o.steer_layer, "Block whose output is steered (default: the middle one)", "L" },
    { "multiplier", 0, 0, G_OPTION_ARG_DOUBLE, &o.multiplier, "Steering multiplier (default 1)", "M" },
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

  /* Steering: the explanation and a second audit are made with the vector. */
  const guint n_layer = gb_model_get_config (model)->n_layer;
  g_autofree float *vec = NULL;
  g_autofree char *steer_desc = NULL;
  GbIntervention iv = { .kind = GB_INTERVENE_ADD, .hook = GB_HOOK_RESID_POST };
  if (o.steer_pairs != NULL)
    {
      if (o.steer_layer >= (int) n_layer)
        return gb_cli_usage ("--steer-layer %d: the model has blocks 0 to %u", o.steer_layer, n_layer - 1);
      iv.layer = o.steer_layer >= 0 ? (guint) o.steer_layer : n_layer / 2;
      iv.multiplier = (float) o.multiplier;
      vec = steer_vector (model, o.steer_pairs, iv.layer, &steer_desc, &error);
      if (vec == NULL)
        return gb_cli_fail (error);
      iv.values = vec;
      g_autofree char *with_m = g_strdup_printf ("%s, x %g", steer_desc, o.multiplier);
      g_free (steer_desc);
      steer_desc = g_steal_pointer (&with_m);
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
      if (vec != NULL && !gb_explainer_decide (ex, app, &iv, 1, &steered_decision, NULL, &error))
        return gb_cli_fail (error);
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
          steered = gb_explainer_audit (ex, records, audit->group_key, &iv, 1, NULL, progress_cb, &tty, &error);
          if (tty)
            g_printerr ("\r%40s\r", "");
          if (steered == NULL)
            return gb_cli_fail (error);
        }
    }

  if (o.json)
    {
      g_autofree char *json = e ? gb_explanation_to_json (e, ex, audit) : gb_audit_to_json (audit);
      if (steered != NULL)
        {
          /* {"...": ..., "audit_steered": {...}, "steering": "..."} */
          g_autofree char *st = gb_audit_to_json (steered);
          g_autofree char *desc = g_strescape (steer_desc, NULL);
          g_strchomp (json);
          json[strlen (json) - 1] = '\0';
          printf ("%s, \"audit_steered\": %s, \"steering\": \"%s\"}\n", g_strchomp (json), g_strchomp (st), desc);
        }
      else if (vec != NULL && e != NULL)
        {
          g_autofree char *desc = g_strescape (steer_desc, NULL);
          char buf[G_ASCII_DTOSTR_BUF_SIZE];
          g_strchomp (json);
          json[strlen (json) - 1] = '\0';
          printf ("%s, \"decision_steered\": {\"log_odds\": %s, \"positive\": %s}, \"steering\": \"%s\"}\n",
                  g_strchomp (json), g_ascii_dtostr (buf, sizeof buf, steered_decision.log_odds),
                  steered_decision.positive ? "true" : "false", desc);
        }
      else
        fputs (json, stdout);
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
                                  .decision_steered = vec && e ? &steered_decision : NULL };
      if (!gb_explain_report_write (o.output, ex, e, audit, &prov, &error))
        return gb_cli_fail (error);
      if (!o.json)
        printf ("\nReport: %s\n", o.output);
    }
  fflush (stdout);
  return GB_CLI_OK;
}
