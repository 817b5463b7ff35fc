/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* "Explain a decision": schemas, applications (fields, text, JSON, CSV) and
 * their hostile variants, span bookkeeping, and on a tiny model with strong
 * weights the decision, occlusion, integrated gradients' completeness,
 * attention rows, counterfactuals, the audit, cancellation and the async
 * wrappers. The float64 numpy comparison is tests/reference/test_explain.py. */

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gb-test-util.h"

#define SCHEMA                                                                                              \
  "{\"name\": \"test\", \"template\": \"Form\\nName: {name}\\nScore: {score}\\nIncome: {income}\\n"         \
  "Zip: {zip}\\nDecision:\", \"labels\": {\"positive\": \"Y\", \"negative\": \"N\"},"                    \
  "\"fields\": [{\"name\": \"name\", \"max\": 20, \"values\": [\"Ann\", \"Bo\", \"Cy\", \"Dee\", \"Eve\", \"Flo\", \"Gus\", \"Hal\"]},"                                                         \
  "{\"name\": \"score\", \"type\": \"integer\", \"min\": 300, \"max\": 850, \"search_min\": 300,"         \
  "\"search_max\": 850, \"step\": 10, \"neutral\": \"600\"},"                                               \
  "{\"name\": \"income\", \"type\": \"money\", \"min\": 0, \"max\": 1000000},"                              \
  "{\"name\": \"zip\", \"type\": \"enum\", \"values\": [\"111\", \"222\", \"333\"]}]}"

#define GOOD "{\"id\": \"a1\", \"group\": \"g1\", \"decision\": \"Y\", \"fields\": {\"name\": \"Ann\", " \
             "\"score\": 640, \"income\": 52000, \"zip\": \"222\"}}"

static GbAppSchema *
schema_new (void)
{
  g_autoptr (GError) error = NULL;
  GbAppSchema *s = gb_app_schema_new_from_data (SCHEMA, -1, "schema.json", &error);
  g_assert_no_error (error);
  return s;
}

static char *
write_tmp (const char *name,
           const char *data,
           gssize      len)
{
  char *path = gb_test_tmp_path (name, NULL);
  g_assert_true (g_file_set_contents (path, data, len, NULL));
  return path;
}

/* ---- Applications ---- */

static void
test_render_fields (void)
{
  g_autoptr (GbAppSchema) s = schema_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GbApplication) app = gb_application_new_from_json (s, GOOD, -1, "good", &error);

  g_assert_no_error (error);
  g_assert_cmpstr (app->text, ==, "Form\nName: Ann\nScore: 640\nIncome: $52,000\nZip: 222\nDecision:");
  g_assert_cmpuint (app->fields->len, ==, 4);
  for (guint i = 0; i < app->fields->len; i++)
    {
      const GbAppField *f = g_ptr_array_index (app->fields, i);
      g_autofree char *span = g_strndup (app->text + f->start, f->end - f->start);
      g_assert_cmpstr (span, ==, f->value);
    }
  g_assert_cmpstr (app->id, ==, "a1");
  g_assert_cmpstr (app->true_label, ==, "positive");
  g_assert_cmpstr (gb_application_get_attr (app, "group"), ==, "g1");
  g_assert_cmpstr (gb_application_get_attr (app, "income"), ==, "52000");

  /* Edits keep every span on its value. */
  g_autoptr (GbApplication) v = gb_application_with_value (app, 1, "7000");
  g_assert_cmpstr (v->text, ==, "Form\nName: Ann\nScore: 7000\nIncome: $52,000\nZip: 222\nDecision:");
  g_autoptr (GbApplication) r = gb_application_without_field (app, 2);
  g_assert_cmpstr (r->text, ==, "Form\nName: Ann\nScore: 640\nZip: 222\nDecision:");
  for (guint k = 0; k < 2; k++)
    {
      GbApplication *a = k ? r : v;
      for (guint i = 0; i < a->fields->len; i++)
        {
          const GbAppField *f = g_ptr_array_index (a->fields, i);
          g_autofree char *span = g_strndup (a->text + f->start, f->end - f->start);
          g_assert_cmpstr (span, ==, f->value);
        }
    }
}

static void
test_parse_text (void)
{
  g_autoptr (GbAppSchema) s = schema_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GbApplication) app = gb_application_new_from_text (
    s, "Form\nName: Bo\nScore: 700\nnot a field line\nDecision: Y\nmore", &error);

  g_assert_no_error (error);
  g_assert_cmpstr (app->text, ==, "Form\nName: Bo\nScore: 700\nnot a field line\nDecision:");
  g_assert_cmpint (gb_application_find_field (app, "score"), ==, 1);
  g_autoptr (GbApplication) b = gb_application_new_from_text (s, "Name: Cy\n", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (b->text, ==, "Name: Cy\nDecision:");

  /* A letter: listed values found in it, then its sentences. "1222" is not
   * the zip 222 (word boundary). */
  g_autoptr (GbApplication) c = gb_application_new_from_text (
    s, "Ref 1222. I live in zip 222 and earn a lot. My name is Eve.\nThanks", &error);
  g_assert_no_error (error);
  const char *want[][2] = { { "name", "Eve" }, { "zip", "222" }, { "sentence 1", "Ref 1222." },
                            { "sentence 2", "I live in zip 222 and earn a lot." }, { "sentence 3", "My name is Eve." } };
  g_assert_cmpuint (c->fields->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    {
      const GbAppField *f = g_ptr_array_index (c->fields, i);
      g_autofree char *span = g_strndup (c->text + f->start, f->end - f->start);
      g_assert_cmpstr (f->name, ==, want[i][0]);
      g_assert_cmpstr (span, ==, want[i][1]);
    }
  g_autoptr (GbApplication) c2 = gb_application_with_value (c, 1, "333");
  g_assert_cmpstr (c2->text, ==, "Ref 1222. I live in zip 333 and earn a lot. My name is Eve.\nThanks\nDecision:");
}

typedef struct
{
  const char *name;
  const char *json;
  const char *want; /* in the message */
} BadCase;

static void
test_hostile_json (void)
{
  const BadCase cases[] = {
    { "missing field", "{\"fields\": {\"name\": \"A\", \"score\": 640, \"income\": 1}}", "“zip” is missing" },
    { "array value", "{\"fields\": {\"name\": \"A\", \"score\": [1], \"income\": 1, \"zip\": \"111\"}}", "must be a number or text, got an array" },
    { "object value", "{\"name\": \"A\", \"score\": {}, \"income\": 1, \"zip\": \"111\"}", "got an object" },
    { "word for a number", "{\"name\": \"A\", \"score\": \"high\", \"income\": 1, \"zip\": \"111\"}", "must be an integer" },
    { "huge value", "{\"name\": \"A\", \"score\": 1e308, \"income\": 1, \"zip\": \"111\"}", "outside 300..850" },
    { "NaN text", "{\"name\": \"A\", \"score\": \"NaN\", \"income\": 1, \"zip\": \"111\"}", "must be an integer" },
    { "fraction for an integer", "{\"name\": \"A\", \"score\": 640.5, \"income\": 1, \"zip\": \"111\"}", "must be an integer" },
    { "negative money", "{\"name\": \"A\", \"score\": 640, \"income\": -5, \"zip\": \"111\"}", "outside 0..1e+06" },
    { "unknown enum", "{\"name\": \"A\", \"score\": 640, \"income\": 1, \"zip\": \"999\"}", "not one of its 3 values" },
    { "long string", "{\"name\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", \"score\": 640, \"income\": 1, \"zip\": \"111\"}", "1 to 20 characters" },
    { "newline in a string", "{\"name\": \"A\\nScore: 900\", \"score\": 640, \"income\": 1, \"zip\": \"111\"}", "one line" },
    { "empty string", "{\"name\": \"\", \"score\": 640, \"income\": 1, \"zip\": \"111\"}", "1 to 20 characters" },
    { "null", "{\"name\": null, \"score\": 640, \"income\": 1, \"zip\": \"111\"}", "got null" },
    { "fields not an object", "{\"fields\": 3}", "“fields” must be an object" },
    { "no fields, no text", "{\"other\": 1}", "needs “fields”" },
    { "not an object", "[1, 2]", "a JSON object" },
    { "truncated", "{\"name\": \"A\", \"sco", "not valid JSON" },
    { "empty text", "{\"text\": \"   \"}", "empty" },
  };
  g_autoptr (GbAppSchema) s = schema_new ();

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GbApplication) app = gb_application_new_from_json (s, cases[i].json, -1, "case.json", &error);
      g_test_message ("%s: %s", cases[i].name, error ? error->message : "(no error)");
      g_assert_null (app);
      g_assert_error (error, GB_ERROR, error->code);
      g_assert_true (g_str_has_prefix (error->message, "case.json"));
      g_assert_nonnull (strstr (error->message, cases[i].want));
    }
}

static void
test_hostile_files (void)
{
  g_autoptr (GbAppSchema) s = schema_new ();
  const struct
  {
    const char *file, *data;
    gssize      len;
    const char *want;
    gboolean    all;
  } cases[] = {
    { "empty.json", "", 0, "empty", FALSE },
    { "blank.txt", " \n\n", -1, "empty", FALSE },
    { "only-suffix.txt", "Decision:", -1, "empty", FALSE },
    { "bad-utf8.txt", "Name: \xff\xfe\nDecision:", -1, "invalid UTF-8 at byte 6", FALSE },
    { "nul.json", "{\"a\": 1}\0xx", 11, "invalid UTF-8", FALSE },
    { "quote.csv", "name,score,income,zip\n\"Ann,640,1,111\n", -1, "quote.csv:2: a quoted cell is never closed", TRUE },
    { "ragged.csv", "name,score,income,zip\nAnn,640,1\n", -1, "row 2 has 3 cells, the header 4", TRUE },
    { "header-only.csv", "name,score,income,zip\n", -1, "a header row and at least one record", TRUE },
    { "after-quote.csv", "name,score,income,zip\n\"Ann\"x,640,1,111\n", -1, "text after a closing quote", TRUE },
    { "bad-row.csv", "name,score,income,zip\nAnn,640,1,111\nBo,abc,1,111\n", -1, "bad-row.csv row 3: field “score” must be an integer", TRUE },
    { "bad-line.jsonl", GOOD "\n\n{\"name\": 1\n", -1, "bad-line.jsonl:3: not valid JSON", TRUE },
    { "none.jsonl", "\n \n", -1, "no records", TRUE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = write_tmp (cases[i].file, cases[i].data, cases[i].len);
      g_autoptr (GError) error = NULL;
      gpointer got = cases[i].all ? (gpointer) gb_application_load_all (s, path, 0, &error)
                                  : (gpointer) gb_application_load (s, path, &error);
      g_test_message ("%s: %s", cases[i].file, error ? error->message : "(no error)");
      g_assert_null (got);
      g_assert_nonnull (error);
      g_assert_nonnull (strstr (error->message, cases[i].file));
      g_assert_nonnull (strstr (error->message, cases[i].want));
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = gb_test_tmp_path ("nope.json", NULL);
  g_assert_null (gb_application_load (s, missing, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_MISSING);

  /* Quoted cells with commas, quotes and line breaks; CRLF. */
  g_autofree char *path = write_tmp ("ok.csv", "id,name,score,income,zip,decision\r\n7,\"Smith, \"\"Al\"\"\",640,\"52,000\",111,N\r\n", -1);
  g_clear_error (&error);
  g_autoptr (GPtrArray) apps = gb_application_load_all (s, path, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (apps->len, ==, 1);
  GbApplication *a = g_ptr_array_index (apps, 0);
  g_assert_cmpstr (((GbAppField *) g_ptr_array_index (a->fields, 0))->value, ==, "Smith, \"Al\"");
  g_assert_cmpstr (a->true_label, ==, "negative");
  g_assert_cmpstr (a->id, ==, "7");

  /* Too many records. */
  g_autofree char *many = write_tmp ("many.jsonl", GOOD "\n" GOOD "\n" GOOD "\n", -1);
  g_clear_error (&error);
  g_assert_null (gb_application_load_all (s, many, 2, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
}

static void
test_hostile_schema (void)
{
  const char *cases[] = {
    "",
    "[]",
    "{\"template\": \"x Decision:\", \"labels\": {\"positive\": \"Y\", \"negative\": \"Y\"}, \"fields\": []}",
    "{\"template\": \"{nope} Decision:\", \"labels\": {\"positive\": \"Y\", \"negative\": \"N\"}, \"fields\": []}",
    "{\"template\": \"{a\", \"labels\": {\"positive\": \"Y\", \"negative\": \"N\"}, \"fields\": [{\"name\": \"a\"}]}",
    "{\"template\": \"x Decision:\", \"labels\": {\"positive\": \"Y\", \"negative\": \"N\"}, \"fields\": [{\"name\": \"a\", \"type\": \"enum\"}]}",
    "{\"template\": \"x Decision:\", \"labels\": {\"positive\": \"Y\", \"negative\": \"N\"}, \"fields\": [{\"name\": \"a\", \"min\": 5, \"max\": 1, \"type\": \"integer\"}]}",
    "{\"template\": \"x\", \"labels\": {\"positive\": \"Y\", \"negative\": \"N\"}, \"fields\": []}",
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GbAppSchema) s = gb_app_schema_new_from_data (cases[i], -1, "s.json", &error);
      g_test_message ("schema %u: %s", i, error ? error->message : "(no error)");
      g_assert_null (s);
      g_assert_error (error, GB_ERROR, GB_ERROR_FORMAT);
      g_assert_true (g_str_has_prefix (error->message, "s.json"));
    }
}

/* ---- On a tiny model ---- */

/* A 2-layer model whose weights are scaled up so its decisions are far from
 * linear in the embeddings (IG's completeness is then a real test). */
static char *
strong_model (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = gb_test_tmp_path ("model", NULL);
  GbModelShape shape = { 2, 2, 16, 128, 257 };
  g_autoptr (GbNet) net = gb_net_new_random (&shape, 11);
  guint n_info;
  const GbParamInfo *info = gb_net_get_param_info (net, &n_info);
  float *p = gb_net_get_params (net);

  for (guint i = 0; i < n_info; i++)
    if (info[i].decay || info[i].embedding)
      for (gsize k = 0; k < info[i].n; k++)
        p[info[i].offset + k] *= info[i].embedding ? 40.f : 6.f;
  g_mkdir_with_parents (dir, 0755);
  gb_test_write_vocab (dir, FALSE);
  g_assert_true (gb_net_save (net, dir, GB_DTYPE_F32, &error));
  g_assert_no_error (error);
  return dir;
}

typedef struct
{
  GbModel       *model;
  GbExplainer   *ex;
  GbApplication *app;
} Fixture;

static void
fixture_setup (Fixture      *fx,
               gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = strong_model ();
  fx->model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  GbAppSchema *s = schema_new ();
  fx->ex = gb_explainer_new (fx->model, s, &error);
  g_assert_no_error (error);
  fx->app = gb_application_new_from_json (s, GOOD, -1, "good", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture      *fx,
                  gconstpointer data)
{
  gb_application_free (fx->app);
  gb_explainer_free (fx->ex);
  gb_model_unref (fx->model);
}

static GbExplanation *
explain (Fixture *fx,
         guint    steps)
{
  g_autoptr (GError) error = NULL;
  GbExplainOptions o;
  gb_explain_options_init (&o);
  o.ig_steps = steps;
  GbExplanation *e = gb_explainer_explain (fx->ex, fx->app, &o, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return e;
}

static double
direct_log_odds (Fixture    *fx,
                 const char *text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (fx->model), text, -1, FALSE, &error);
  g_autoptr (GbTrace) tr = gb_model_forward (fx->model, (gint32 *) ids->data, ids->len, NULL, NULL, 0, NULL, &error);
  g_assert_no_error (error);
  return (double) tr->logits[gb_explainer_get_label_token (fx->ex, TRUE)]
         - tr->logits[gb_explainer_get_label_token (fx->ex, FALSE)];
}

static void
test_decision_and_occlusion (Fixture      *fx,
                             gconstpointer data)
{
  g_autoptr (GbExplanation) e = explain (fx, 8);
  const double want = direct_log_odds (fx, fx->app->text);

  g_assert_cmpfloat_with_epsilon (e->decision.log_odds, want, 1e-6);
  g_assert_cmpfloat_with_epsilon (e->decision.p_positive, 1 / (1 + exp (-want)), 1e-9);
  g_assert_true (e->decision.positive == (want > 0));
  g_assert_cmpfloat (fabs (want), >, 1e-3); /* the model is not flat */
  /* Occlusion = the decision on the text with the field's line removed. */
  const char *removed[] = {
    "Form\nScore: 640\nIncome: $52,000\nZip: 222\nDecision:",
    "Form\nName: Ann\nIncome: $52,000\nZip: 222\nDecision:",
    "Form\nName: Ann\nScore: 640\nZip: 222\nDecision:",
    "Form\nName: Ann\nScore: 640\nIncome: $52,000\nDecision:",
  };
  for (guint f = 0; f < 4; f++)
    g_assert_cmpfloat_with_epsilon (e->occlusion[f], want - direct_log_odds (fx, removed[f]), 1e-5);
  /* Every field's tokens are mapped to it. */
  guint seen[4] = { 0 };
  for (guint t = 0; t < e->n_tokens; t++)
    if (e->token_field[t] >= 0)
      seen[e->token_field[t]]++;
  for (guint f = 0; f < 4; f++)
    g_assert_cmpuint (seen[f], >=, 1);
  /* Token occlusion of the first token = the decision without it. */
  g_assert_cmpfloat_with_epsilon (e->token_occlusion[0], want - direct_log_odds (fx, fx->app->text + 1), 1e-5);
}

static void
test_neutral_occlusion (Fixture      *fx,
                        gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  GbExplainOptions o;
  gb_explain_options_init (&o);
  o.occlusion = GB_OCCLUDE_NEUTRAL;
  o.gradients = o.token_occlusion = o.counterfactual = FALSE;
  g_autoptr (GbExplanation) e = gb_explainer_explain (fx->ex, fx->app, &o, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  const double want = direct_log_odds (fx, fx->app->text);
  g_assert_cmpfloat_with_epsilon (e->occlusion[1],
                                  want - direct_log_odds (fx, "Form\nName: Ann\nScore: 600\nIncome: $52,000\nZip: 222\nDecision:"),
                                  1e-5);
  g_assert_null (e->ig);
}

static void
test_ig_completeness (Fixture      *fx,
                      gconstpointer data)
{
  g_autoptr (GbExplanation) e = explain (fx, 64);
  double sum = 0;

  g_assert_nonnull (e->ig);
  for (guint t = 0; t < e->n_tokens; t++)
    sum += e->ig[t];
  g_assert_cmpfloat_with_epsilon (sum, e->ig_sum, 1e-9);
  const double delta = e->decision.log_odds - e->baseline_log_odds;
  g_test_message ("F(x) %.6f, F(baseline) %.6f, sum IG %.6f, completeness error %.4f%%", e->decision.log_odds,
                  e->baseline_log_odds, sum, 100 * e->ig_completeness);
  g_assert_cmpfloat (fabs (delta), >, 0.05);
  g_assert_cmpfloat (e->ig_completeness, <=, 0.01);
  g_assert_cmpfloat (fabs (sum - delta), <=, 0.01 * fabs (delta) + 1e-4);
  /* Few steps are measurably worse on this non-linear model. */
  g_autoptr (GbExplanation) e1 = explain (fx, 1);
  g_test_message ("1 step: completeness error %.4f%%", 100 * e1->ig_completeness);
  g_assert_cmpfloat (e1->ig_completeness, >, e->ig_completeness);
  /* Per field = the sum of its tokens. */
  for (guint f = 0; f < e->n_fields; f++)
    {
      double s = 0;
      for (guint t = 0; t < e->n_tokens; t++)
        s += e->token_field[t] == (int) f ? e->ig[t] : 0;
      g_assert_cmpfloat_with_epsilon (e->field_ig[f], s, 1e-9);
    }
}

static void
test_attention_rows (Fixture      *fx,
                     gconstpointer data)
{
  g_autoptr (GbExplanation) e = explain (fx, 2);
  const guint T = e->n_tokens;

  for (guint l = 0; l < e->n_layer; l++)
    {
      double mean = 0;
      for (guint h = 0; h < e->n_head; h++)
        {
          double s = 0;
          for (guint t = 0; t < T; t++)
            s += e->attn_heads[((gsize) l * e->n_head + h) * T + t];
          g_assert_cmpfloat_with_epsilon (s, 1.0, 1e-5);
        }
      for (guint t = 0; t < T; t++)
        mean += e->attn_mean[(gsize) l * T + t];
      g_assert_cmpfloat_with_epsilon (mean, 1.0, 1e-5);
    }
  double r = 0;
  for (guint t = 0; t < T; t++)
    r += e->attn_rollout[t];
  g_assert_cmpfloat_with_epsilon (r, 1.0, 1e-4);
}

/* The engine's counterfactuals against a brute-force search over the same
 * candidates, on several applications (so that some do flip). */
static void
test_counterfactual (Fixture      *fx,
                     gconstpointer data)
{
  const char *zips[] = { "111", "222", "333" };
  guint found = 0;
  g_autoptr (GError) err = NULL;

  /* Label words whose logits nearly tie on the first application, so that
   * single-field changes can flip the decision of this random model. */
  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (fx->model), fx->app->text, -1, FALSE, &err);
  g_autoptr (GbTrace) tr = gb_model_forward (fx->model, (gint32 *) ids->data, ids->len, NULL, NULL, 0, NULL, &err);
  GbTokenizer *tok = gb_model_get_tokenizer (fx->model);
  double best = INFINITY;
  char la = 'a', lb = 'b';
  for (char a = 'a'; a <= 'z'; a++)
    for (char b = a + 1; b <= 'z'; b++)
      {
        char sa[2] = { a, 0 }, sb[2] = { b, 0 };
        g_autoptr (GArray) ia = gb_tokenizer_encode (tok, sa, -1, FALSE, NULL);
        g_autoptr (GArray) ib = gb_tokenizer_encode (tok, sb, -1, FALSE, NULL);
        double d = fabs (tr->logits[g_array_index (ia, gint32, 0)] - tr->logits[g_array_index (ib, gint32, 0)]);
        if (d < best)
          best = d, la = a, lb = b;
      }
  g_autofree char *schema_json = g_strdup (SCHEMA);
  char *lab = strstr (schema_json, "\"positive\": \"Y\"");
  lab[13] = la;
  lab = strstr (schema_json, "\"negative\": \"N\"");
  lab[13] = lb;
  GbAppSchema *s = gb_app_schema_new_from_data (schema_json, -1, "s", &err);
  g_assert_no_error (err);
  g_autoptr (GbExplainer) ex = gb_explainer_new (fx->model, s, &err);
  g_assert_no_error (err);

  for (guint r = 0; r < 6; r++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *json = g_strdup_printf ("{\"name\": \"Ann\", \"score\": %u, \"income\": %u, \"zip\": \"%s\"}",
                                               400 + 70 * r, 1000 * r, zips[r % 3]);
      g_autoptr (GbApplication) app = gb_application_new_from_json (s, json, -1, "r", &error);
      g_assert_no_error (error);
      GbExplainOptions o;
      gb_explain_options_init (&o);
      o.gradients = o.token_occlusion = FALSE;
      g_autoptr (GbExplanation) e = gb_explainer_explain (ex, app, &o, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      /* Brute force: name over its values (in order), score over the grid by distance, zip over its values. */
      for (guint f = 0; f < 4; f++)
        {
          const GbAppField *af = g_ptr_array_index (app->fields, f);
          g_autofree char *want = NULL;
          guint n_flip = 0;
          if (f == 2)
            continue; /* income has no search grid */
          g_autoptr (GPtrArray) cand = g_ptr_array_new_with_free_func (g_free);
          if (f == 1)
            {
              int cur = atoi (af->value);
              for (int k = 1; k <= 64; k++)
                for (int sign = 1; sign >= -1; sign -= 2)
                  {
                    int v = cur + sign * 10 * (sign > 0 ? k : k - 1);
                    if (v != cur && v >= 300 && v <= 850 && cand->len < 64)
                      g_ptr_array_add (cand, g_strdup_printf ("%d", v));
                  }
            }
          else
            for (guint i = 0; af->spec->values[i]; i++)
              if (!g_str_equal (af->spec->values[i], af->value))
                g_ptr_array_add (cand, g_strdup (af->spec->values[i]));
          for (guint i = 0; i < cand->len; i++)
            {
              g_autoptr (GbApplication) c = gb_application_with_value (app, f, g_ptr_array_index (cand, i));
              GbDecision d;
              g_assert_true (gb_explainer_decide (ex, c, NULL, 0, &d, NULL, &error));
              if (d.positive != e->decision.positive)
                {
                  n_flip++;
                  if (want == NULL)
                    want = g_strdup (g_ptr_array_index (cand, i));
                  if (f == 1)
                    break; /* numbers stop at the nearest */
                }
            }
          const GbCounterfactual *got = NULL;
          for (guint i = 0; i < e->counterfactuals->len; i++)
            if (g_str_equal (((GbCounterfactual *) g_ptr_array_index (e->counterfactuals, i))->field, af->name))
              got = g_ptr_array_index (e->counterfactuals, i);
          g_assert_true ((got == NULL) == (want == NULL));
          if (got != NULL)
            {
              g_assert_cmpstr (got->to, ==, want);
              g_assert_cmpuint (got->n_flipping, ==, n_flip);
              found++;
            }
        }
      for (guint i = 1; i < e->counterfactuals->len; i++)
        g_assert_cmpfloat (((GbCounterfactual *) g_ptr_array_index (e->counterfactuals, i))->distance, >=,
                           ((GbCounterfactual *) g_ptr_array_index (e->counterfactuals, i - 1))->distance);
    }
  g_test_message ("%u counterfactuals found", found);
  g_assert_cmpuint (found, >=, 1);
}

static void
test_audit (Fixture      *fx,
            gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) apps = g_ptr_array_new_with_free_func ((GDestroyNotify) gb_application_free);
  GbAppSchema *s = gb_explainer_get_schema (fx->ex);
  const char *recs[] = {
    "{\"g\": \"a\", \"decision\": \"Y\", \"name\": \"A\", \"score\": 640, \"income\": 1, \"zip\": \"111\"}",
    "{\"g\": \"a\", \"decision\": \"N\", \"name\": \"B\", \"score\": 700, \"income\": 2, \"zip\": \"222\"}",
    "{\"g\": \"b\", \"name\": \"C\", \"score\": 800, \"income\": 3, \"zip\": \"333\"}",
    "{\"decision\": \"N\", \"name\": \"D\", \"score\": 300, \"income\": 4, \"zip\": \"111\"}",
  };
  GbDecision d[G_N_ELEMENTS (recs)];
  for (guint i = 0; i < G_N_ELEMENTS (recs); i++)
    {
      g_ptr_array_add (apps, gb_application_new_from_json (s, recs[i], -1, "r", &error));
      g_assert_no_error (error);
      g_assert_true (gb_explainer_decide (fx->ex, g_ptr_array_index (apps, i), NULL, 0, &d[i], NULL, &error));
    }
  g_autoptr (GbAudit) a = gb_explainer_audit (fx->ex, apps, "g", NULL, 0, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (a->groups->len, ==, 3);
  const GbAuditGroup *none = g_ptr_array_index (a->groups, 0), *ga = g_ptr_array_index (a->groups, 1);
  g_assert_cmpstr (none->group, ==, "(none)");
  g_assert_cmpstr (ga->group, ==, "a");
  g_assert_cmpuint (ga->n, ==, 2);
  g_assert_cmpuint (ga->n_positive, ==, d[0].positive + d[1].positive);
  g_assert_cmpuint (ga->n_labeled, ==, 2);
  g_assert_cmpuint (ga->tp, ==, d[0].positive);
  g_assert_cmpuint (ga->fn, ==, !d[0].positive);
  g_assert_cmpuint (ga->fp, ==, d[1].positive);
  g_assert_cmpuint (ga->tn, ==, !d[1].positive);
  g_assert_cmpuint (a->total.n, ==, 4);
  g_assert_cmpuint (a->total.n_labeled, ==, 3);
  double lo = 1, hi = 0;
  for (guint i = 0; i < 3; i++)
    {
      const GbAuditGroup *g = g_ptr_array_index (a->groups, i);
      lo = MIN (lo, g->rate), hi = MAX (hi, g->rate);
    }
  g_assert_cmpfloat (a->gap, ==, hi - lo);
  for (guint i = 0; i < 4; i++)
    g_assert_cmpfloat (a->log_odds[i], ==, d[i].log_odds);
}

static void
test_interventions (Fixture      *fx,
                    gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const guint D = gb_model_get_config (fx->model)->n_embd;
  g_autofree float *vec = g_new0 (float, D);
  for (guint i = 0; i < D; i++)
    vec[i] = (i % 3) - 1.f;
  GbIntervention iv = { .kind = GB_INTERVENE_ADD, .hook = GB_HOOK_RESID_POST, .layer = 0, .multiplier = 8.f, .values = vec };
  GbDecision plain, steered;
  g_assert_true (gb_explainer_decide (fx->ex, fx->app, NULL, 0, &plain, NULL, &error));
  g_assert_true (gb_explainer_decide (fx->ex, fx->app, &iv, 1, &steered, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (fabs (plain.log_odds - steered.log_odds), >, 1e-4);
  GbExplainOptions o;
  gb_explain_options_init (&o);
  o.interventions = &iv, o.n_interventions = 1, o.token_occlusion = o.counterfactual = FALSE;
  g_autoptr (GbExplanation) e = gb_explainer_explain (fx->ex, fx->app, &o, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (e->decision.log_odds, ==, steered.log_odds);
  g_assert_null (e->ig);
  g_assert_nonnull (e->gradient_note);
}

/* SAE features at the decision position: the encoder applied to the
 * hook's row at the last token, sorted, cut at top_n; a span's maximum is
 * the maximum of its tokens' own; bad hooks and positions are errors. (The
 * numpy check of the values is tests/reference/test_sae.py.) */
static void
test_sae_features (Fixture      *fx,
                   gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const guint D = gb_model_get_config (fx->model)->n_embd, M = 24;
  g_autoptr (GbSae) sae = gb_sae_new (GB_SAE_STANDARD, D, M, 0);
  gb_sae_init_random (sae, 7);
  for (guint j = 0; j < M; j++)
    sae->b_enc[j] = 0.05f * ((int) (j % 5) - 1);
  sae->hook = GB_HOOK_RESID_POST;
  sae->layer = 1;

  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (fx->model), fx->app->text, -1, FALSE, &error);
  g_assert_no_error (error);
  const guint T = ids->len;
  GbRecord rec = { .logits = GB_LOGITS_NONE };
  rec.hooks[GB_HOOK_RESID_POST] = 1u << 1;
  g_autoptr (GbTrace) tr = gb_model_forward (fx->model, (gint32 *) ids->data, T, &rec, NULL, 0, NULL, &error);
  g_assert_no_error (error);
  g_autofree float *x = g_memdup2 (gb_trace_get (tr, GB_HOOK_RESID_POST, 1), (gsize) T * D * sizeof (float));
  g_autofree float *zs = g_new (float, (gsize) T * M);
  gb_sae_preprocess (sae, x, T, NULL);
  gb_sae_encode (sae, zs, x, T);

  g_autofree float *z = g_new (float, M);
  g_autoptr (GArray) all = gb_explainer_sae_features (fx->ex, fx->app, sae, NULL, 0, -1, 1, M, z, NULL, &error);
  g_assert_no_error (error);
  guint n_pos = 0;
  for (guint j = 0; j < M; j++)
    {
      g_assert_cmpfloat (z[j], ==, zs[(gsize) (T - 1) * M + j]);
      n_pos += z[j] > 0;
    }
  g_assert_cmpuint (n_pos, >, 3);
  g_assert_cmpuint (all->len, ==, n_pos);
  for (guint i = 0; i < all->len; i++)
    {
      const GbFeatureActivation *fa = &g_array_index (all, GbFeatureActivation, i);
      g_assert_cmpfloat (fa->activation, ==, z[fa->index]);
      if (i > 0)
        g_assert_cmpfloat (fa->activation, <=, g_array_index (all, GbFeatureActivation, i - 1).activation);
    }
  g_autoptr (GArray) top3 = gb_explainer_sae_features (fx->ex, fx->app, sae, NULL, 0, -1, 1, 3, NULL, NULL, &error);
  g_assert_cmpuint (top3->len, ==, 3);
  g_assert_cmpuint (g_array_index (top3, GbFeatureActivation, 2).index, ==, g_array_index (all, GbFeatureActivation, 2).index);

  /* Tokens 1..3: each latent's maximum over them. */
  g_autofree float *zspan = g_new (float, M);
  g_autoptr (GArray) span = gb_explainer_sae_features (fx->ex, fx->app, sae, NULL, 0, 1, 3, M, zspan, NULL, &error);
  g_assert_no_error (error);
  for (guint j = 0; j < M; j++)
    g_assert_cmpfloat (zspan[j], ==, MAX (zs[1 * M + j], MAX (zs[2 * M + j], zs[3 * M + j])));

  /* A vector added at block 0 changes what block 1 reads. */
  g_autofree float *vec = g_new0 (float, D);
  for (guint i = 0; i < D; i++)
    vec[i] = (i % 3) - 1.f;
  GbIntervention iv = { .kind = GB_INTERVENE_ADD, .hook = GB_HOOK_RESID_POST, .layer = 0, .multiplier = 8.f, .values = vec };
  g_autofree float *zst = g_new (float, M);
  g_autoptr (GArray) st = gb_explainer_sae_features (fx->ex, fx->app, sae, &iv, 1, -1, 1, M, zst, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (memcmp (z, zst, M * sizeof (float)), !=, 0);

  /* Out of range positions, a hook past the model's blocks, another width. */
  g_assert_null (gb_explainer_sae_features (fx->ex, fx->app, sae, NULL, 0, (gint) T, 1, M, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (gb_explainer_sae_features (fx->ex, fx->app, sae, NULL, 0, -1, 2, M, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (gb_explainer_sae_features (fx->ex, fx->app, sae, NULL, 0, 0, 0, M, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
  g_clear_error (&error);
  sae->layer = 9;
  g_assert_null (gb_explainer_sae_features (fx->ex, fx->app, sae, NULL, 0, -1, 1, M, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_SHAPE);
  g_clear_error (&error);
  g_autoptr (GbSae) narrow = gb_sae_new (GB_SAE_STANDARD, D - 1, M, 0);
  g_assert_null (gb_explainer_sae_features (fx->ex, fx->app, narrow, NULL, 0, -1, 1, M, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_SHAPE);
}

static void
test_limits (Fixture      *fx,
             gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  GbAppSchema *s = gb_explainer_get_schema (fx->ex);
  g_autofree char *big = g_strnfill (300, 'x');
  g_autoptr (GbApplication) app = gb_application_new_from_text (s, big, &error);
  g_assert_no_error (error);
  GbDecision d;
  g_assert_false (gb_explainer_decide (fx->ex, app, NULL, 0, &d, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
  g_assert_nonnull (strstr (error->message, "context of 128"));

  /* Label words that are not one token. */
  g_clear_error (&error);
  g_autoptr (GbAppSchema) two = gb_app_schema_new_from_data (
    "{\"template\": \"Decision:\", \"labels\": {\"positive\": \" yes\", \"negative\": \" no\"}, \"fields\": []}", -1, "s", &error);
  g_assert_no_error (error);
  g_assert_null (gb_explainer_new (fx->model, two, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "“ yes” is 4 tokens"));
}

static void
progress_cancel_cb (double      fraction,
                    const char *message,
                    gpointer    data)
{
  g_cancellable_cancel (data);
}

static void
test_cancel (Fixture      *fx,
             gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) c = g_cancellable_new ();
  g_autoptr (GbExplanation) e = gb_explainer_explain (fx->ex, fx->app, NULL, c, progress_cancel_cb, c, &error);
  g_assert_null (e);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_autoptr (GPtrArray) apps = g_ptr_array_new ();
  for (guint i = 0; i < 20; i++)
    g_ptr_array_add (apps, fx->app);
  g_autoptr (GCancellable) c2 = g_cancellable_new ();
  g_autoptr (GbAudit) a = gb_explainer_audit (fx->ex, apps, "g", NULL, 0, c2, progress_cancel_cb, c2, &error);
  g_assert_null (a);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
done_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  *(GAsyncResult **) data = g_object_ref (result);
}

static void
test_async (Fixture      *fx,
            gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  GAsyncResult *res = NULL;
  GbExplainOptions o;
  gb_explain_options_init (&o);
  o.ig_steps = 4;
  gb_explainer_explain_async (fx->ex, fx->app, &o, NULL, NULL, NULL, done_cb, &res);
  while (res == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_autoptr (GbExplanation) e = gb_explainer_explain_finish (fx->ex, res, &error);
  g_clear_object (&res);
  g_assert_no_error (error);
  g_autoptr (GbExplanation) sync = gb_explainer_explain (fx->ex, fx->app, &o, NULL, NULL, NULL, &error);
  g_assert_cmpfloat (e->decision.log_odds, ==, sync->decision.log_odds);
  for (guint f = 0; f < e->n_fields; f++)
    g_assert_cmpfloat (e->occlusion[f], ==, sync->occlusion[f]);
  g_assert_cmpfloat (e->ig_sum, ==, sync->ig_sum);

  g_autoptr (GPtrArray) apps = g_ptr_array_new ();
  g_ptr_array_add (apps, fx->app);
  gb_explainer_audit_async (fx->ex, apps, "group", NULL, 0, NULL, NULL, NULL, done_cb, &res);
  while (res == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_autoptr (GbAudit) a = gb_explainer_audit_finish (fx->ex, res, &error);
  g_clear_object (&res);
  g_assert_no_error (error);
  g_assert_cmpuint (a->n, ==, 1);
  g_assert_cmpstr (((GbAuditGroup *) g_ptr_array_index (a->groups, 0))->group, ==, "g1");

  /* JSON parses. */
  g_autofree char *json = gb_explanation_to_json (e, fx->ex, a);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, json, -1, &error));
  g_assert_no_error (error);
}

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/explain/render-fields", test_render_fields);
  g_test_add_func ("/engine/explain/parse-text", test_parse_text);
  g_test_add_func ("/engine/explain/hostile-json", test_hostile_json);
  g_test_add_func ("/engine/explain/hostile-files", test_hostile_files);
  g_test_add_func ("/engine/explain/hostile-schema", test_hostile_schema);
  ADD ("/engine/explain/decision-occlusion", test_decision_and_occlusion);
  ADD ("/engine/explain/neutral-occlusion", test_neutral_occlusion);
  ADD ("/engine/explain/ig-completeness", test_ig_completeness);
  ADD ("/engine/explain/attention", test_attention_rows);
  ADD ("/engine/explain/counterfactual", test_counterfactual);
  ADD ("/engine/explain/audit", test_audit);
  ADD ("/engine/explain/interventions", test_interventions);
  ADD ("/engine/explain/sae-features", test_sae_features);
  ADD ("/engine/explain/limits", test_limits);
  ADD ("/engine/explain/cancel", test_cancel);
  ADD ("/engine/explain/async", test_async);
  return g_test_run ();
}
