/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* glassbox-cli explain through the real executable: the demo model on a
 * bundled rejected application (where the applicant lives, zip or
 * neighbourhood, among the top two occlusions and named by the
 * counterfactual), an audit of the bundled CSV, the PDF report (parsed
 * back with pdftotext, provenance hash, written atomically) and the error
 * contract on malformed input. */

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gb-test-util.h"

#define TINY_SCHEMA                                                                                   \
  "{\"template\": \"Form\\nName: {name}\\nScore: {score}\\nDecision:\", "                            \
  "\"labels\": {\"positive\": \"Y\", \"negative\": \"N\"}, \"fields\": [{\"name\": \"name\"}, "       \
  "{\"name\": \"score\", \"type\": \"integer\", \"min\": 300, \"max\": 850, \"search_min\": 300, "     \
  "\"search_max\": 850, \"step\": 50}]}"

static char *tiny_dir, *tiny_schema, *data_dir;

static JsonObject *
parse (JsonParser *parser,
       const char *json)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_data (parser, json, -1, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static char *
pdf_text (const char *pdf)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  const char *argv[] = { "pdftotext", "-layout", pdf, "-", NULL };
  int status;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return g_steal_pointer (&out);
}

static char *
sha256_file (const char *path)
{
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guchar *) data, len);
}

/* The planted proxy: where the applicant lives. The generator keeps zip
 * and neighbourhood together, so a model may read either (the bundled one
 * reads mostly the neighbourhood's name; MODEL.md). */
static gboolean
is_location (const char *field)
{
  return g_str_equal (field, "zip") || g_str_equal (field, "neighbourhood");
}

static gboolean
is_penalised (const char *value)
{
  const char *pen[] = { "40106", "40121", "40157", "40172", "Eastbrook", "Millbrook Flats", "Southgate", "Harbor End" };
  for (guint i = 0; i < G_N_ELEMENTS (pen); i++)
    if (g_str_equal (value, pen[i]))
      return TRUE;
  return FALSE;
}

/* The demo: rejected in a penalised zip although the credit score passes
 * the normal bar. */
static void
test_demo_proxy (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *app = g_build_filename (data_dir, "applications", "sample-proxy-1.json", NULL);
  g_autofree char *pdf = gb_test_tmp_path ("proxy.pdf", NULL);

  g_assert_cmpint (gb_test_cli (&out, &err, "explain", "--application", app, "--json", "--output", pdf, "--ig-steps", "64",
                        "--no-token-occlusion", NULL), ==, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root = parse (parser, out);
  JsonObject *dec = json_object_get_object_member (root, "decision");
  g_assert_cmpstr (json_object_get_string_member (dec, "label"), ==, "rejected");
  g_assert_cmpfloat (json_object_get_double_member (dec, "p_positive"), <, 0.5);

  /* Rank fields by |occlusion|: where the applicant lives is among the top
   * two. */
  JsonArray *fields = json_object_get_array_member (root, "fields");
  double loc = 0;
  const char *loc_name = NULL;
  guint above = 0;
  for (guint i = 0; i < json_array_get_length (fields); i++)
    {
      JsonObject *f = json_array_get_object_element (fields, i);
      const char *name = json_object_get_string_member (f, "name");
      double o = fabs (json_object_get_double_member (f, "occlusion"));
      if (is_location (name) && o > loc)
        loc = o, loc_name = name;
    }
  g_assert_nonnull (loc_name);
  for (guint i = 0; i < json_array_get_length (fields); i++)
    above += fabs (json_object_get_double_member (json_array_get_object_element (fields, i), "occlusion")) > loc;
  g_test_message ("%s occlusion %.3f, %u fields above it", loc_name, loc, above);
  g_assert_cmpuint (above, <=, 1);

  /* A counterfactual moves the applicant, to a neutral place, and flips it. */
  JsonArray *cfs = json_object_get_array_member (root, "counterfactuals");
  const char *moved = NULL;
  for (guint i = 0; i < json_array_get_length (cfs); i++)
    {
      JsonObject *cf = json_array_get_object_element (cfs, i);
      const char *field = json_object_get_string_member (cf, "field");
      if (is_location (field))
        {
          moved = field;
          g_assert_cmpfloat (json_object_get_double_member (cf, "log_odds"), >, 0);
          g_assert_false (is_penalised (json_object_get_string_member (cf, "to")));
          g_assert_true (is_penalised (json_object_get_string_member (cf, "from")));
        }
    }
  g_assert_nonnull (moved);
  g_autofree char *if_moved = g_strdup_printf ("if %s were", moved);
  g_assert_nonnull (strstr (json_object_get_string_member (root, "counterfactual_sentence"), if_moved));
  JsonObject *ig = json_object_get_object_member (root, "integrated_gradients");
  g_assert_cmpfloat (json_object_get_double_member (ig, "completeness_error"), <, 0.01);

  /* The report says it too, with the weights' hash. */
  g_autofree char *text = pdf_text (pdf);
  g_autofree char *weights = g_build_filename (data_dir, "models", "loan-officer", "model.safetensors", NULL);
  g_autofree char *sha = sha256_file (weights);
  const char *want[] = { "Rejected", "Field attributions: occlusion", "Counterfactual", if_moved,
                         "Attention is not explanation", "Provenance", sha, "Glassbox " };
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    {
      g_test_message ("report contains “%s”", want[i]);
      g_assert_nonnull (strstr (text, want[i]));
    }
}

static void
test_demo_audit (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *csv = g_build_filename (data_dir, "applications", "audit-loans.csv", NULL);
  g_autofree char *pdf = gb_test_tmp_path ("audit.pdf", NULL);

  g_assert_cmpint (gb_test_cli (&out, &err, "explain", "--audit", csv, "--group", "zip_group", "--json", "--output", pdf, NULL), ==, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root = parse (parser, out);
  JsonArray *groups = json_object_get_array_member (root, "groups");
  g_assert_cmpuint (json_array_get_length (groups), ==, 2);
  JsonObject *neutral = json_array_get_object_element (groups, 0), *pen = json_array_get_object_element (groups, 1);
  g_assert_cmpstr (json_object_get_string_member (neutral, "group"), ==, "neutral");
  g_assert_cmpstr (json_object_get_string_member (pen, "group"), ==, "penalised");
  const double rn = json_object_get_double_member (neutral, "rate"), rp = json_object_get_double_member (pen, "rate");
  g_test_message ("approval: neutral %.3f, penalised %.3f", rn, rp);
  g_assert_cmpfloat (rp, <, rn);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (root, "gap"), rn - rp, 1e-12);
  JsonObject *total = json_object_get_object_member (root, "total");
  g_assert_cmpint (json_object_get_int_member (total, "n"), ==, 40);
  g_assert_cmpint (json_object_get_int_member (total, "tp") + json_object_get_int_member (total, "fp")
                     + json_object_get_int_member (total, "fn") + json_object_get_int_member (total, "tn"),
                   ==, 40);
  g_autofree char *text = pdf_text (pdf);
  g_assert_nonnull (strstr (text, "Audit: 40 records grouped by zip_group"));
  g_assert_nonnull (strstr (text, "penalised"));
  g_assert_nonnull (strstr (text, "percentage points"));
}

static double
member_gap (JsonObject *o)
{
  return json_object_get_double_member (o, "gap");
}

/* The zip-neutral steering vector (mean difference of the bundled pairs at
 * block 4, from glassbox-cli steer train, as our JSON and as a llama.cpp
 * GGUF) narrows the approval gap of the same audit; --steer-pairs trains the
 * same vector through gb_steer_train. The provenance names the file and its
 * SHA-256. */
static void
test_demo_audit_steered (void)
{
  g_autofree char *csv = g_build_filename (data_dir, "applications", "audit-loans.csv", NULL);
  g_autofree char *pairs = g_build_filename (data_dir, "pairs", "zip-neutral-loans.json", NULL);
  g_autofree char *vec = gb_test_tmp_path ("zip4.json", NULL);
  g_autofree char *gguf = gb_test_tmp_path ("zip4.gguf", NULL);
  g_autofree char *o0 = NULL, *e0 = NULL, *o1 = NULL, *e1 = NULL;
  g_assert_cmpint (gb_test_cli (&o0, &e0, "steer", "train", "--pairs", pairs, "--layers", "4", "--output", vec, NULL), ==, 0);
  g_assert_cmpint (gb_test_cli (&o1, &e1, "steer", "export", "--vector", vec, "--output", gguf, NULL), ==, 0);

  double gaps[3][2];
  const char *files[3] = { vec, gguf, pairs };
  for (guint k = 0; k < 3; k++)
    {
      g_autofree char *out = NULL, *err = NULL;
      g_assert_cmpint (gb_test_cli (&out, &err, "explain", "--audit", csv, k < 2 ? "--steer" : "--steer-pairs", files[k], "--steer-layer",
                            "4", "--json", NULL),
                       ==, 0);
      g_autoptr (JsonParser) parser = json_parser_new ();
      JsonObject *root = parse (parser, out);
      JsonObject *st = json_object_get_object_member (root, "steering");
      gaps[k][0] = member_gap (root);
      gaps[k][1] = member_gap (json_object_get_object_member (root, "audit_steered"));
      g_test_message ("%s: gap %.3f -> %.3f", files[k], gaps[k][0], gaps[k][1]);
      g_assert_cmpfloat (gaps[k][1], <, gaps[k][0]);
      g_assert_cmpstr (json_object_get_string_member (st, "source"), ==, files[k]);
      g_autofree char *data = NULL;
      gsize len = 0;
      g_assert_true (g_file_get_contents (files[k], &data, &len, NULL));
      g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
      g_assert_cmpstr (json_object_get_string_member (st, "sha256"), ==, sha);
      g_assert_nonnull (strstr (json_object_get_string_member (st, "description"), sha));
      JsonArray *blocks = json_object_get_array_member (st, "blocks");
      g_assert_cmpuint (json_array_get_length (blocks), ==, 1);
      g_assert_cmpint (json_array_get_int_element (blocks, 0), ==, 4);
    }
  /* One vector, three ways to give it: the same steered audit. */
  g_assert_cmpfloat_with_epsilon (gaps[0][1], gaps[1][1], 1e-9);
  g_assert_cmpfloat_with_epsilon (gaps[0][1], gaps[2][1], 1e-9);

  /* A multiplier of 0 leaves every decision as it was. */
  g_autofree char *out0 = NULL, *err0 = NULL;
  g_assert_cmpint (gb_test_cli (&out0, &err0, "explain", "--audit", csv, "--steer", vec, "--multiplier", "0", "--json", NULL), ==, 0);
  g_autoptr (JsonParser) p0 = json_parser_new ();
  JsonObject *r0 = parse (p0, out0);
  g_assert_cmpfloat (member_gap (r0), ==, member_gap (json_object_get_object_member (r0, "audit_steered")));

  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (gb_test_cli (&out2, &err2, "explain", "--audit", csv, "--steer-pairs", pairs, "--steer-layer", "9", NULL), ==, 2);
  g_autofree char *out4 = NULL, *err4 = NULL;
  g_assert_cmpint (gb_test_cli (&out4, &err4, "explain", "--audit", csv, "--steer", vec, "--steer-pairs", pairs, NULL), ==, 2);
  g_autofree char *out5 = NULL, *err5 = NULL;
  g_assert_cmpint (gb_test_cli (&out5, &err5, "explain", "--audit", csv, "--steer", vec, "--steer-layer", "2", NULL), ==, 1);
  g_assert_nonnull (strstr (err5, "no block 2"));
  g_autofree char *bad = gb_test_tmp_path ("pairs.json", NULL);
  g_assert_true (g_file_set_contents (bad, "{\"pairs\": [{\"positive\": \"a\"}]}", -1, NULL));
  g_autofree char *out3 = NULL, *err3 = NULL;
  g_assert_cmpint (gb_test_cli (&out3, &err3, "explain", "--audit", csv, "--steer-pairs", bad, NULL), ==, 1);
  g_assert_nonnull (strstr (err3, bad));
}

/* Steering a single application: the steered decision on the bundled proxy
 * sample, in the text, the JSON and the PDF report. */
static void
test_demo_decision_steered (void)
{
  g_autofree char *app = g_build_filename (data_dir, "applications", "sample-proxy-1.json", NULL);
  g_autofree char *pairs = g_build_filename (data_dir, "pairs", "zip-neutral-loans.json", NULL);
  g_autofree char *vec = gb_test_tmp_path ("zip4-single.json", NULL);
  g_autofree char *pdf = gb_test_tmp_path ("steered.pdf", NULL);
  g_autofree char *o0 = NULL, *e0 = NULL;
  g_assert_cmpint (gb_test_cli (&o0, &e0, "steer", "train", "--pairs", pairs, "--layers", "4", "--output", vec, NULL), ==, 0);

  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (gb_test_cli (&out, &err, "explain", "-a", app, "--steer", vec, "--multiplier", "1", "--no-token-occlusion", "--ig-steps",
                        "4", "--json", NULL),
                   ==, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root = parse (parser, out);
  const double before = json_object_get_double_member (json_object_get_object_member (root, "decision"), "log_odds");
  JsonObject *st = json_object_get_object_member (root, "decision_steered");
  const double after = json_object_get_double_member (st, "log_odds");
  g_test_message ("proxy-1 log-odds %.3f -> %.3f", before, after);
  g_assert_cmpfloat (before, <, 0);
  g_assert_cmpfloat (after, >, before + 1);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (st, "p_positive"), 1 / (1 + exp (-after)), 1e-9);

  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (gb_test_cli (&out2, &err2, "explain", "-a", app, "--steer", vec, "--no-token-occlusion", "--ig-steps", "4", "-o", pdf,
                        NULL),
                   ==, 0);
  g_assert_nonnull (strstr (out2, "With the steering vector:"));
  g_autofree char *text = pdf_text (pdf);
  g_assert_nonnull (strstr (text, "Decision with the steering vector"));
  g_assert_nonnull (strstr (text, "zip4-single.json"));
}

/* A vector for a model of another width, and an SAE whose hook does not
 * fit, are refused with one line naming the file. */
static void
test_mismatch_errors (void)
{
  g_autofree char *pairs = g_build_filename (data_dir, "pairs", "zip-neutral-loans.json", NULL);
  g_autofree char *sae = g_build_filename (data_dir, "saes", "loan-officer-L3-topk32", NULL);
  g_autofree char *app = g_build_filename (data_dir, "applications", "sample-proxy-1.json", NULL);
  g_autofree char *tiny_vec = gb_test_tmp_path ("tiny-vec.json", NULL);
  g_autofree char *tiny_pairs = gb_test_tmp_path ("tiny-pairs.json", NULL);
  g_assert_true (g_file_set_contents (tiny_pairs, "{\"pairs\": [{\"positive\": \"zip ok\", \"negative\": \"zip bad\"}, "
                                                  "{\"positive\": \"fine\", \"negative\": \"poor\"}]}", -1, NULL));
  g_autofree char *o0 = NULL, *e0 = NULL;
  g_assert_cmpint (gb_test_cli (&o0, &e0, "steer", "train", "--model", tiny_dir, "--pairs", tiny_pairs, "--layers", "1", "--output",
                        tiny_vec, NULL),
                   ==, 0);

  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (gb_test_cli (&out, &err, "explain", "-a", app, "--steer", tiny_vec, NULL), ==, 1);
  g_test_message ("%s", err);
  g_assert_true (g_str_has_prefix (err, "glassbox-cli: error: "));
  g_assert_nonnull (strstr (err, tiny_vec));
  g_assert_cmpuint (strchr (err, '\n') - err + 1, ==, strlen (err));

  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (gb_test_cli (&out2, &err2, "explain", "--model", tiny_dir, "--schema", tiny_schema, "--text",
                        "Form\nName: Ann\nScore: 700\nDecision:", "--sae", sae, NULL),
                   ==, 1);
  g_test_message ("%s", err2);
  g_assert_nonnull (strstr (err2, sae));
  g_assert_nonnull (strstr (err2, "blocks.3.hook_resid_post"));
  g_assert_cmpuint (strchr (err2, '\n') - err2 + 1, ==, strlen (err2));

  g_autofree char *out3 = NULL, *err3 = NULL;
  g_assert_cmpint (gb_test_cli (&out3, &err3, "explain", "-a", app, "--sae", sae, "--sae-field", "nope", "--no-token-occlusion",
                        "--ig-steps", "2", NULL),
                   ==, 1);
  g_assert_nonnull (strstr (err3, "no such field"));
  g_autofree char *out4 = NULL, *err4 = NULL;
  g_autofree char *missing = gb_test_tmp_path ("no-such-sae", NULL);
  g_assert_cmpint (gb_test_cli (&out4, &err4, "explain", "-a", app, "--sae", missing, NULL), ==, 1);
  g_assert_nonnull (strstr (err4, "no-such-sae"));
}

/* The bundled SAE at the decision position of a penalised-zip sample (the
 * third, from Eastbrook: there #459 is the strongest over the field):
 * features sorted by activation, all positive, at the last token; over the
 * neighbourhood's tokens the proxy, feature #459 (it fires on every
 * penalised neighbourhood; data/saes/README.md), is among the top three,
 * with its description from the feature cache shipped beside the SAE. */
static void
test_demo_sae (void)
{
  g_autofree char *app = g_build_filename (data_dir, "applications", "sample-proxy-3.json", NULL);
  g_autofree char *sae = g_build_filename (data_dir, "saes", "loan-officer-L3-topk32", NULL);
  g_autofree char *pdf = gb_test_tmp_path ("sae.pdf", NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (gb_test_cli (&out, &err, "explain", "-a", app, "--sae", sae, "--sae-field", "neighbourhood", "--sae-top", "8",
                        "--no-token-occlusion", "--ig-steps", "4", "--json", "-o", pdf, NULL),
                   ==, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root = parse (parser, out);
  JsonObject *so = json_object_get_object_member (root, "sae");
  g_assert_cmpstr (json_object_get_string_member (so, "hook"), ==, "blocks.3.hook_resid_post");
  g_assert_cmpint (json_object_get_int_member (so, "position"), ==,
                   json_array_get_length (json_object_get_array_member (root, "tokens")) - 1);
  g_assert_cmpstr (json_object_get_string_member (so, "field"), ==, "neighbourhood");
  JsonArray *feats = json_object_get_array_member (so, "features");
  g_assert_cmpuint (json_array_get_length (feats), ==, 8);
  double prev = INFINITY;
  for (guint i = 0; i < 8; i++)
    {
      JsonObject *f = json_array_get_object_element (feats, i);
      double a = json_object_get_double_member (f, "activation");
      g_assert_cmpfloat (a, >, 0);
      g_assert_cmpfloat (a, <=, prev);
      prev = a;
    }
  JsonArray *zf = json_object_get_array_member (so, "field_features");
  gboolean found = FALSE;
  for (guint i = 0; i < 3; i++)
    {
      JsonObject *f = json_array_get_object_element (zf, i);
      if (json_object_get_int_member (f, "index") != 459)
        continue;
      found = TRUE;
      /* Described from the feature cache shipped with the bundled SAE. */
      const char *label = json_object_get_string_member (f, "label");
      g_test_message ("#459: %s", label);
      g_assert_true (label != NULL && *label != '\0');
    }
  g_assert_true (found);
  g_autofree char *text = pdf_text (pdf);
  g_assert_nonnull (strstr (text, "SAE features at the decision position"));
  g_assert_nonnull (strstr (text, "#459"));
  g_assert_nonnull (strstr (text, "sae_weights.safetensors SHA-256"));
}

/* The report replaces an existing file in one rename and leaves nothing
 * else in its folder. */
static void
test_report_atomic (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *pdf = g_build_filename (dir, "report.pdf", NULL);

  g_assert_true (g_file_set_contents (pdf, "old", -1, NULL));
  g_assert_cmpint (gb_test_cli (&out, &err, "explain", "--model", tiny_dir, "--schema", tiny_schema, "--text",
                        "Form\nName: Ann\nScore: 640\n", "--output", pdf, "--ig-steps", "4", NULL), ==, 0);
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (pdf, &data, &len, NULL));
  g_assert_true (g_str_has_prefix (data, "%PDF-1."));
  g_assert_nonnull (memmem (data + len - MIN (len, 32), MIN (len, 32), "%%EOF", 5));
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (g_dir_read_name (d))
    n++;
  g_assert_cmpuint (n, ==, 1);
  g_autofree char *text = pdf_text (pdf);
  g_assert_true (strstr (text, "Decision") != NULL && (strstr (text, "Y\n") || strstr (text, "N\n")));
  g_assert_nonnull (strstr (out, "Decision: "));

  /* Into a folder that does not exist: an error, nothing written. */
  g_autofree char *bad = g_build_filename (dir, "missing", "r.pdf", NULL);
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (gb_test_cli (&out2, &err2, "explain", "--model", tiny_dir, "--schema", tiny_schema, "--text",
                        "Name: Ann\n", "--output", bad, "--ig-steps", "2", NULL), ==, 1);
  g_assert_true (g_str_has_prefix (err2, "glassbox-cli: error: "));
  g_assert_false (g_file_test (bad, G_FILE_TEST_EXISTS));
}

typedef struct
{
  const char *name;
  const char *file;     /* written to a temp file and given as --application, or NULL */
  const char *args[6];
  int         code;
  const char *want;     /* in the one error line */
} ErrorCase;

static void
test_errors (void)
{
  const ErrorCase cases[] = {
    { "no application", NULL, { NULL }, 2, "--application FILE" },
    { "both sources", NULL, { "--application", "x.json", "--text", "t" }, 2, "not both" },
    { "bad --occlusion", NULL, { "--text", "t", "--occlusion", "zero" }, 2, "--occlusion zero" },
    { "report not a PDF", NULL, { "--text", "t", "--output", "r.png" }, 2, "is a PDF" },
    { "bad --ig-steps", NULL, { "--text", "t", "--ig-steps", "0" }, 2, "--ig-steps" },
    { "missing file", NULL, { "--application", "/nonexistent/app.json" }, 1, "/nonexistent/app.json" },
    { "missing field", "{\"fields\": {\"name\": \"Ann\"}}", { NULL }, 1, "field “score” is missing" },
    { "wrong type", "{\"name\": \"Ann\", \"score\": true}", { NULL }, 1, "field “score” must be an integer" },
    { "huge value", "{\"name\": \"Ann\", \"score\": 1e300}", { NULL }, 1, "outside 300..850" },
    { "empty file", "", { NULL }, 1, "empty" },
    { "truncated JSON", "{\"name\": \"An", { NULL }, 1, "not valid JSON" },
    { "over-long text", NULL, { "--text", "" }, 1, "context of" },
    { "bad schema", NULL, { "--text", "t", "--schema", "/nonexistent/schema.json" }, 1, "schema.json" },
  };
  g_autofree char *long_text = g_strnfill (400, 'x');

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const ErrorCase *c = &cases[i];
      g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
      g_autofree char *path = NULL;
      g_ptr_array_add (argv, g_strdup (g_getenv ("GLASSBOX_CLI")));
      g_ptr_array_add (argv, g_strdup ("explain"));
      g_ptr_array_add (argv, g_strdup ("--model"));
      g_ptr_array_add (argv, g_strdup (tiny_dir));
      gboolean has_schema = FALSE;
      for (guint k = 0; c->args[k]; k++)
        has_schema |= g_str_equal (c->args[k], "--schema");
      if (!has_schema)
        {
          g_ptr_array_add (argv, g_strdup ("--schema"));
          g_ptr_array_add (argv, g_strdup (tiny_schema));
        }
      if (c->file)
        {
          path = gb_test_tmp_path ("app.json", NULL);
          g_assert_true (g_file_set_contents (path, c->file, -1, NULL));
          g_ptr_array_add (argv, g_strdup ("--application"));
          g_ptr_array_add (argv, g_strdup (path));
        }
      for (guint k = 0; c->args[k]; k++)
        g_ptr_array_add (argv, g_strdup (g_str_equal (c->name, "over-long text") && k == 1 ? long_text : c->args[k]));
      g_ptr_array_add (argv, NULL);
      g_autofree char *out = NULL, *err = NULL;
      int status;
      g_autoptr (GError) error = NULL;
      g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
      g_assert_no_error (error);
      g_test_message ("%s: exit %d: %s", c->name, WEXITSTATUS (status), err);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, c->code);
      g_assert_true (g_str_has_prefix (err, "glassbox-cli: error: "));
      g_assert_nonnull (strstr (err, c->want));
      g_assert_cmpuint (strchr (err, '\n') - err + 1, ==, strlen (err)); /* one line */
      if (path && c->code == 1)
        g_assert_nonnull (strstr (err, path));
    }
}

int
main (int    argc,
      char **argv)
{
  g_autoptr (GError) error = NULL;

  g_test_init (&argc, &argv, NULL);
  tiny_dir = gb_test_tmp_path ("tiny", NULL);
  gb_test_write_model (tiny_dir, 2, 2, 16, 128, FALSE, 3);
  tiny_schema = gb_test_tmp_path ("schema.json", NULL);
  g_assert_true (g_file_set_contents (tiny_schema, TINY_SCHEMA, -1, &error));
  data_dir = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", NULL);
  g_test_add_func ("/cli/explain/demo-proxy", test_demo_proxy);
  g_test_add_func ("/cli/explain/demo-audit", test_demo_audit);
  g_test_add_func ("/cli/explain/demo-audit-steered", test_demo_audit_steered);
  g_test_add_func ("/cli/explain/demo-decision-steered", test_demo_decision_steered);
  g_test_add_func ("/cli/explain/demo-sae", test_demo_sae);
  g_test_add_func ("/cli/explain/mismatch-errors", test_mismatch_errors);
  g_test_add_func ("/cli/explain/report-atomic", test_report_atomic);
  g_test_add_func ("/cli/explain/errors", test_errors);
  int status = g_test_run ();
  g_free (tiny_dir);
  g_free (tiny_schema);
  g_free (data_dir);
  return status;
}
