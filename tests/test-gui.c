/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* The glassbox window under Xvfb (meson runs this test inside xvfb-run):
 * it loads a tiny model, runs a text, shows a head, exports the heatmap and
 * saves a screenshot, unattended. */

#include <cairo.h>
#include <glib/gstdio.h>
#include <string.h>

#include "gb-test-util.h"

static char *model_dir;
#define TEXT "The bank said no."

typedef struct
{
  int   status;
  char *err;
} Run;

static void
run_clear (Run *r)
{
  g_free (r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Run, run_clear)

static void
spawn (Run                *r,
       const char *const  *extra_env,
       const char         *program,
       ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) env = g_get_environ ();
  g_autoptr (GError) error = NULL;
  va_list args;
  const char *arg;

  g_ptr_array_add (argv, (char *) program);
  va_start (args, program);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  /* No session bus here: GTK's warning about it is expected and is the
   * only warning allowed (checked below), so it must not be fatal. */
  env = g_environ_setenv (env, "G_DEBUG", "gc-friendly", TRUE);
  for (guint i = 0; extra_env && extra_env[i]; i += 2)
    env = g_environ_setenv (env, extra_env[i], extra_env[i + 1], TRUE);
  int status;
  g_spawn_sync (NULL, (char **) argv->pdata, env, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &r->err, &status, &error);
  g_assert_no_error (error);
  r->status = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static void
assert_clean_stderr (const char *err)
{
  g_auto (GStrv) lines = g_strsplit (err, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    if (strstr (lines[i], "CRITICAL") || (strstr (lines[i], "WARNING") && !strstr (lines[i], "session bus")))
      g_error ("unexpected message from glassbox: %s", lines[i]);
}

static double
mean_luma (cairo_surface_t *s)
{
  const int w = cairo_image_surface_get_width (s), h = cairo_image_surface_get_height (s);
  const int stride = cairo_image_surface_get_stride (s);
  const guint8 *d = cairo_image_surface_get_data (s);
  double sum = 0;

  for (int y = 0; y < h; y += 3)
    for (int x = 0; x < w; x += 3)
      {
        guint32 p = ((const guint32 *) (d + y * stride))[x];
        sum += (0.3 * ((p >> 16) & 0xff) + 0.59 * ((p >> 8) & 0xff) + 0.11 * (p & 0xff)) / 255;
      }
  return sum / (((h + 2) / 3) * ((w + 2) / 3));
}

static gboolean
has_pixel (cairo_surface_t *s,
           guint32          rgb)
{
  const int w = cairo_image_surface_get_width (s), h = cairo_image_surface_get_height (s);
  const int stride = cairo_image_surface_get_stride (s);
  const guint8 *d = cairo_image_surface_get_data (s);

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if ((((const guint32 *) (d + y * stride))[x] & 0xffffff) == rgb)
        return TRUE;
  return FALSE;
}

static cairo_surface_t *
screenshot (const char *const *env,
            const char        *name)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *shot = g_build_filename (dir, name, NULL);
  g_auto (Run) r = { 0 };

  spawn (&r, env, g_getenv ("GLASSBOX_GUI"), "--model", model_dir, "--text", TEXT, "--layer", "1", "--head", "2",
         "--pin-query", "3", "--pin-key", "1", "--screenshot", shot, NULL);
  g_test_message ("%s", r.err);
  g_assert_cmpint (r.status, ==, 0);
  assert_clean_stderr (r.err);
  cairo_surface_t *png = cairo_image_surface_create_from_png (shot);
  g_assert_cmpint (cairo_surface_status (png), ==, CAIRO_STATUS_SUCCESS);
  return png;
}

static void
test_screenshot (void)
{
  cairo_surface_t *png = screenshot (NULL, "light.png");

  g_assert_cmpint (cairo_image_surface_get_width (png), >=, 1000);
  g_assert_cmpint (cairo_image_surface_get_height (png), >=, 600);
  /* Row 0 attends only to itself: weight 1, viridis's last entry. */
  g_assert_true (has_pixel (png, 0xfde725));
  /* The pinned crosshair's cell outline. */
  g_assert_true (has_pixel (png, 0xff5433));
  g_assert_cmpfloat (mean_luma (png), >, 0.55);
  cairo_surface_destroy (png);
}

static void
test_dark (void)
{
  const char *env[] = { "ADW_DEBUG_COLOR_SCHEME", "prefer-dark", NULL };
  cairo_surface_t *png = screenshot (env, "dark.png");

  g_assert_true (has_pixel (png, 0xfde725));
  g_assert_cmpfloat (mean_luma (png), <, 0.35);
  cairo_surface_destroy (png);
}

static void
test_export_matches_cli (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *gui = g_build_filename (dir, "gui.png", NULL), *cli = g_build_filename (dir, "cli.png", NULL);
  g_autofree char *a = NULL, *b = NULL;
  gsize la, lb;
  g_auto (Run) r = { 0 };
  g_auto (Run) c = { 0 };

  spawn (&r, NULL, g_getenv ("GLASSBOX_GUI"), "--model", model_dir, "--text", TEXT, "--layer", "1", "--head", "2",
         "--export", gui, "--scale", "2", NULL);
  g_assert_cmpint (r.status, ==, 0);
  assert_clean_stderr (r.err);
  spawn (&c, NULL, g_getenv ("GLASSBOX_CLI"), "attention", "--model", model_dir, "--text", TEXT, "--layer", "1",
         "--head", "2", "--output", cli, "--scale", "2", NULL);
  g_assert_cmpint (c.status, ==, 0);
  g_assert_true (g_file_get_contents (gui, &a, &la, NULL));
  g_assert_true (g_file_get_contents (cli, &b, &lb, NULL));
  g_assert_cmpmem (a, la, b, lb);
}

/* "Open With Glassbox" on a weights file (what a file manager passes, like
 * "glassbox DIR/model.safetensors") opens the model folder that holds it:
 * the export is the CLI's for that folder, not the default model's. */
static void
test_open_weights_file (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *gui = g_build_filename (dir, "gui.npy", NULL), *cli = g_build_filename (dir, "cli.npy", NULL);
  g_autofree char *weights = g_build_filename (model_dir, "model.safetensors", NULL);
  g_autofree char *a = NULL, *b = NULL;
  gsize la, lb;
  g_auto (Run) r = { 0 };
  g_auto (Run) c = { 0 };

  spawn (&r, NULL, g_getenv ("GLASSBOX_GUI"), "--text", TEXT, "--layer", "1", "--head", "2", "--export", gui, weights,
         NULL);
  g_test_message ("%s", r.err);
  g_assert_cmpint (r.status, ==, 0);
  assert_clean_stderr (r.err);
  spawn (&c, NULL, g_getenv ("GLASSBOX_CLI"), "attention", "--model", model_dir, "--text", TEXT, "--layer", "1",
         "--head", "2", "--output", cli, NULL);
  g_assert_cmpint (c.status, ==, 0);
  g_assert_true (g_file_get_contents (gui, &a, &la, NULL));
  g_assert_true (g_file_get_contents (cli, &b, &lb, NULL));
  g_assert_cmpmem (a, la, b, lb);
}

static void
test_broken_model (void)
{
  g_autofree char *empty = gb_test_tmpdir ();
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *shot = g_build_filename (dir, "never.png", NULL);
  g_auto (Run) r = { 0 };

  spawn (&r, NULL, g_getenv ("GLASSBOX_GUI"), "--model", empty, "--screenshot", shot, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "glassbox: "));
  g_assert_nonnull (strstr (r.err, "config.json"));
  g_assert_false (g_file_test (shot, G_FILE_TEST_EXISTS));
}

/* The Explain view on the bundled demo model and a bundled rejected
 * application, with an audit of the bundled CSV: the red "Rejected", the
 * strongest occlusion bar at full colour, then the audit table in view. */
static int
cli (char **out,
     ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  va_list args;
  const char *arg;
  int status;

  g_ptr_array_add (argv, (char *) g_getenv ("GLASSBOX_CLI"));
  va_start (args, out);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, out, NULL, &status, &error);
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128;
}

/* The zip-neutral vector at block 4 (glassbox-cli steer train), once. */
static const char *
zip_vector (void)
{
  static char *path;
  if (path == NULL)
    {
      g_autofree char *dir = gb_test_tmpdir ();
      g_autofree char *pairs = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "pairs", "zip-neutral-loans.json",
                                                 NULL);
      g_autofree char *out = NULL;
      path = g_build_filename (dir, "zip4.json", NULL);
      g_assert_cmpint (cli (&out, "steer", "train", "--pairs", pairs, "--layers", "4", "--output", path, NULL), ==, 0);
    }
  return path;
}

static char *
pdf_text (const char *pdf)
{
  g_autofree char *out = NULL;
  const char *argv[] = { "pdftotext", pdf, "-", NULL };
  int status;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                               &out, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return g_steal_pointer (&out);
}

static cairo_surface_t *
explain_screenshot (const char *const *env,
                    const char        *model,
                    const char        *name,
                    gboolean           audit,
                    const char        *report)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *shot = g_build_filename (dir, name, NULL);
  g_autofree char *app = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "applications",
                                           "sample-proxy-1.json", NULL);
  g_autofree char *csv = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "applications",
                                           "audit-loans.csv", NULL);
  g_auto (Run) r = { 0 };

  if (audit)
    spawn (&r, env, g_getenv ("GLASSBOX_GUI"), "--model", model, "--view", "explain", "--application", app, "--audit",
           csv, "--steer-vector", zip_vector (), "--steer-multiplier", "1", "--report", report, "--screenshot", shot, NULL);
  else
    spawn (&r, env, g_getenv ("GLASSBOX_GUI"), "--model", model, "--view", "explain", "--application", app,
           "--screenshot", shot, NULL);
  g_test_message ("%s", r.err);
  g_assert_cmpint (r.status, ==, 0);
  assert_clean_stderr (r.err);
  cairo_surface_t *png = cairo_image_surface_create_from_png (shot);
  g_assert_cmpint (cairo_surface_status (png), ==, CAIRO_STATUS_SUCCESS);
  if (g_getenv ("GLASSBOX_KEEP_SCREENSHOTS"))
    {
      g_autofree char *keep = g_build_filename (g_getenv ("GLASSBOX_KEEP_SCREENSHOTS"), name, NULL);
      cairo_surface_write_to_png (png, keep);
    }
  return png;
}

static void
test_explain_view (void)
{
  g_autofree char *demo = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "models", "loan-officer", NULL);
  cairo_surface_t *png = explain_screenshot (NULL, demo, "explain.png", FALSE, NULL);

  g_assert_cmpint (cairo_image_surface_get_width (png), >=, 1000);
  /* "Rejected" in libadwaita's light error colour, and the largest
   * occlusion bar (towards rejection) at the full diverging colour. */
  g_assert_true (has_pixel (png, 0xc01c28));
  g_assert_true (has_pixel (png, 0xde541e));
  g_assert_cmpfloat (mean_luma (png), >, 0.55);
  cairo_surface_destroy (png);
}

static void
test_explain_view_dark_audit (void)
{
  const char *env[] = { "ADW_DEBUG_COLOR_SCHEME", "prefer-dark", NULL };
  g_autofree char *demo = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "models", "loan-officer", NULL);
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *report = g_build_filename (dir, "report.pdf", NULL);
  cairo_surface_t *png = explain_screenshot (env, demo, "explain-dark-audit.png", TRUE, report);

  g_assert_cmpfloat (mean_luma (png), <, 0.35);
  /* The audit's rate bars: the diverging blue at 0.8 over the dark
   * background, (0.16, 0.392, 0.714) as cairo stores it. */
  g_assert_true (has_pixel (png, 0x2864b6));
  cairo_surface_destroy (png);

  /* Export Report's file, unattended: the report the CLI writes, with the
   * audit again under the vector (named with its hash) and the bundled
   * SAE's features at the decision position. */
  g_autofree char *out = pdf_text (report);
  g_assert_nonnull (strstr (out, "Rejected"));
  g_assert_nonnull (strstr (out, "Audit: 40 records grouped by zip_group"));
  g_assert_nonnull (strstr (out, "Decision with the steering vector"));
  g_assert_nonnull (strstr (out, "Audit with the steering vector: 40 records"));
  g_assert_nonnull (strstr (out, "zip4.json (SHA-256"));
  g_assert_nonnull (strstr (out, "SAE features at the decision position"));
  g_assert_nonnull (strstr (out, "Provenance"));
}

/* A steering vector and an SAE with a feature cache (a copy of the bundled
 * one, analysed by glassbox-cli sae features): the steered decision beside
 * the decision, and the SAE features at the decision token and over the
 * neighbourhood's tokens, with descriptions, in view; the proxy #459 among them
 * (read back from the report the view exports). */
static void
test_explain_view_steer_sae (void)
{
  g_autofree char *demo = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "models", "loan-officer", NULL);
  g_autofree char *bundled = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "saes", "loan-officer-L3-topk32", NULL);
  g_autofree char *corpus = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "corpus", "loans-sample.txt", NULL);
  g_autofree char *app = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "data", "applications", "sample-proxy-1.json",
                                           NULL);
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *sae = g_build_filename (dir, "sae", NULL);
  g_autofree char *shot = g_build_filename (dir, "explain-steer-sae.png", NULL);
  g_autofree char *report = g_build_filename (dir, "report.pdf", NULL);
  g_assert_cmpint (g_mkdir (sae, 0755), ==, 0);
  const char *files[] = { "cfg.json", "sae_weights.safetensors", "sparsity.safetensors", "glassbox_norm.safetensors" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *from = g_build_filename (bundled, files[i], NULL), *to = g_build_filename (sae, files[i], NULL);
      g_autofree char *data = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (from, &data, &len, NULL));
      g_assert_true (g_file_set_contents (to, data, len, NULL));
    }
  g_autofree char *out = NULL;
  g_assert_cmpint (cli (&out, "sae", "features", "--model", demo, "--sae", sae, "--corpus", corpus, "--tokens", "4000",
                        "--top", "1", NULL),
                   ==, 0);

  g_auto (Run) r = { 0 };
  spawn (&r, NULL, g_getenv ("GLASSBOX_GUI"), "--model", demo, "--view", "explain", "--application", app, "--steer-vector",
         zip_vector (), "--steer-multiplier", "1", "--sae", sae, "--sae-field", "neighbourhood", "--report", report,
         "--screenshot", shot, NULL);
  g_test_message ("%s", r.err);
  g_assert_cmpint (r.status, ==, 0);
  assert_clean_stderr (r.err);
  cairo_surface_t *png = cairo_image_surface_create_from_png (shot);
  g_assert_cmpint (cairo_surface_status (png), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpfloat (mean_luma (png), >, 0.55);
  if (g_getenv ("GLASSBOX_KEEP_SCREENSHOTS"))
    {
      g_autofree char *keep = g_build_filename (g_getenv ("GLASSBOX_KEEP_SCREENSHOTS"), "explain-steer-sae.png", NULL);
      cairo_surface_write_to_png (png, keep);
    }
  cairo_surface_destroy (png);

  g_autofree char *text = pdf_text (report);
  g_assert_nonnull (strstr (text, "Decision with the steering vector"));
  g_assert_nonnull (strstr (text, "SAE features at the decision position"));
  g_assert_nonnull (strstr (text, "SAE features over the tokens of “neighbourhood”"));
  g_assert_nonnull (strstr (text, "#459"));
  /* Descriptions from the cache: no "no feature cache" placeholder. */
  g_assert_null (strstr (text, "no feature cache"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (g_getenv ("DISPLAY"));
  model_dir = gb_test_tmpdir ();
  gb_test_write_model (model_dir, 2, 3, 12, 64, FALSE, 5);
  g_test_add_func ("/ui/gui/screenshot", test_screenshot);
  g_test_add_func ("/ui/gui/dark", test_dark);
  g_test_add_func ("/ui/gui/open-weights-file", test_open_weights_file);
  g_test_add_func ("/ui/gui/export-matches-cli", test_export_matches_cli);
  g_test_add_func ("/ui/gui/broken-model", test_broken_model);
  g_test_add_func ("/ui/gui/explain", test_explain_view);
  g_test_add_func ("/ui/gui/explain-dark-audit", test_explain_view_dark_audit);
  g_test_add_func ("/ui/gui/explain-steer-sae", test_explain_view_steer_sae);
  return g_test_run ();
}
