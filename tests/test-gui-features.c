/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* The Features view under Xvfb (meson runs this test inside xvfb-run): a
 * small SAE trained here on a tiny model, opened in the gallery with one
 * feature's page, screenshots in light and dark; a broken SAE fails
 * cleanly. */

#include <cairo.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "gb-test-util.h"

static char *model_dir, *corpus, *sae_dir;

static int
spawn (const char *const *extra_env,
       char             **err,
       ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) env = g_get_environ ();
  g_autoptr (GError) error = NULL;
  va_list args;
  const char *arg;
  int status;

  g_ptr_array_add (argv, (char *) g_getenv ("GLASSBOX_GUI"));
  va_start (args, err);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  /* No session bus under xvfb-run: GTK's warning about it is expected. */
  env = g_environ_setenv (env, "G_DEBUG", "gc-friendly", TRUE);
  for (guint i = 0; extra_env && extra_env[i]; i += 2)
    env = g_environ_setenv (env, extra_env[i], extra_env[i + 1], TRUE);
  g_spawn_sync (NULL, (char **) argv->pdata, env, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, err, &status, &error);
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static void
assert_clean_stderr (const char *err)
{
  g_auto (GStrv) lines = g_strsplit (err, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (strstr (lines[i], "CRITICAL") || (strstr (lines[i], "WARNING") && !strstr (lines[i], "session bus")
                                          && !strstr (lines[i], "dconf")))
      g_error ("unexpected message from glassbox: %s", lines[i]);
}

/* Pixels of the activation shading: orange (r > g > b, r - b large). */
static guint
orange_pixels (cairo_surface_t *s)
{
  const int w = cairo_image_surface_get_width (s), h = cairo_image_surface_get_height (s);
  const int stride = cairo_image_surface_get_stride (s);
  const guint8 *d = cairo_image_surface_get_data (s);
  guint n = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        guint32 p = ((const guint32 *) (d + y * stride))[x];
        int r = (p >> 16) & 0xff, g = (p >> 8) & 0xff, b = p & 0xff;
        n += r > g + 20 && g > b + 20 && r - b > 90;
      }
  return n;
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

static cairo_surface_t *
shoot (const char *const *env,
       const char        *name)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *shot = g_build_filename (dir, name, NULL);
  g_autofree char *err = NULL;
  int status = spawn (env, &err, "--model", model_dir, "--view", "features", "--sae", sae_dir, "--sae-corpus", corpus,
                      "--feature", "1", "--screenshot", shot, NULL);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
  assert_clean_stderr (err);
  cairo_surface_t *png = cairo_image_surface_create_from_png (shot);
  g_assert_cmpint (cairo_surface_status (png), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint (cairo_image_surface_get_width (png), >=, 1000);
  return png;
}

static void
test_gallery_light (void)
{
  cairo_surface_t *png = shoot (NULL, "features-light.png");
  guint n = orange_pixels (png);
  g_test_message ("orange pixels: %u, mean luma %.2f", n, mean_luma (png));
  g_assert_cmpuint (n, >, 500);
  g_assert_cmpfloat (mean_luma (png), >, 0.55);
  cairo_surface_destroy (png);
  /* The analysis is cached in the SAE folder: reopening is instant. */
  g_autofree char *cache = g_build_filename (sae_dir, "features.json", NULL);
  g_assert_true (g_file_test (cache, G_FILE_TEST_EXISTS));
}

static void
test_gallery_dark (void)
{
  const char *env[] = { "ADW_DEBUG_COLOR_SCHEME", "prefer-dark", NULL };
  cairo_surface_t *png = shoot (env, "features-dark.png");
  guint n = orange_pixels (png);
  g_test_message ("orange pixels: %u, mean luma %.2f", n, mean_luma (png));
  g_assert_cmpuint (n, >, 500);
  g_assert_cmpfloat (mean_luma (png), <, 0.35);
  cairo_surface_destroy (png);
}

static void
test_export (void)
{
  const char *names[] = { "gallery.html", "gallery.json", "feature.png" };
  g_autofree char *dir = gb_test_tmpdir ();
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (dir, names[i], NULL);
      g_autofree char *err = NULL, *data = NULL;
      gsize len;
      int status = spawn (NULL, &err, "--model", model_dir, "--view", "features", "--sae", sae_dir, "--sae-corpus", corpus,
                          "--feature", "1", "--export-features", path, NULL);
      g_test_message ("%s: %s", names[i], err);
      g_assert_cmpint (status, ==, 0);
      assert_clean_stderr (err);
      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      if (i == 0)
        {
          g_assert_true (g_str_has_prefix (data, "<!DOCTYPE html>"));
          g_assert_nonnull (strstr (data, "rgba(255,159,28,"));
          g_assert_nonnull (strstr (data, "</html>"));
        }
      else if (i == 1)
        {
          g_autoptr (JsonParser) parser = json_parser_new ();
          g_autoptr (GError) error = NULL;
          g_assert_true (json_parser_load_from_data (parser, data, (gssize) len, &error));
          JsonObject *root = json_node_get_object (json_parser_get_root (parser));
          g_assert_cmpuint (json_array_get_length (json_object_get_array_member (root, "features")), >, 0);
        }
      else
        {
          cairo_surface_t *png = cairo_image_surface_create_from_png (path);
          g_assert_cmpint (cairo_surface_status (png), ==, CAIRO_STATUS_SUCCESS);
          g_assert_cmpint (cairo_image_surface_get_width (png), >, 200);
          g_assert_cmpuint (orange_pixels (png), >, 100);
          cairo_surface_destroy (png);
        }
    }
}

static void
test_train_through_ui (void)
{
  g_autofree char *out = gb_test_tmp_path ("ui-sae", NULL);
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *shot = g_build_filename (dir, "trained.png", NULL);
  g_autofree char *err = NULL;
  int status = spawn (NULL, &err, "--model", model_dir, "--view", "features", "--train-sae", out, "--train-tokens", "2048",
                      "--sae-corpus", corpus, "--screenshot", shot, NULL);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
  assert_clean_stderr (err);
  const char *files[] = { "cfg.json", "sae_weights.safetensors", "trainer_state.safetensors", "features.json" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *p = g_build_filename (out, files[i], NULL);
      g_assert_true (g_file_test (p, G_FILE_TEST_EXISTS));
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GbSae) sae = gb_sae_load (out, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (sae->d_sae, ==, 8 * 12);
  g_assert_cmpuint (sae->layer, ==, 1);
  g_assert_cmpuint (sae->trained_tokens, >=, 2048);
  cairo_surface_t *png = cairo_image_surface_create_from_png (shot);
  g_assert_cmpint (cairo_surface_status (png), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpuint (orange_pixels (png), >, 500);
  cairo_surface_destroy (png);
}

static void
test_broken_sae (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *cfg = g_build_filename (dir, "cfg.json", NULL);
  g_autofree char *shot = g_build_filename (dir, "never.png", NULL);
  g_autofree char *err = NULL;
  g_file_set_contents (cfg, "{\"d_in\": 12, \"d_sae\": 24, \"hook_name\": \"blocks.0.hook_resid_post\"}", -1, NULL);
  int status = spawn (NULL, &err, "--model", model_dir, "--view", "features", "--sae", dir, "--screenshot", shot, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "glassbox: "));
  g_assert_nonnull (strstr (err, "sae_weights.safetensors"));
  g_assert_false (g_file_test (shot, G_FILE_TEST_EXISTS));
}

int
main (int    argc,
      char **argv)
{
  g_autoptr (GError) error = NULL;

  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (g_getenv ("DISPLAY"));
  model_dir = gb_test_tmpdir ();
  gb_test_write_model (model_dir, 2, 3, 12, 64, FALSE, 5);
  corpus = gb_test_tmp_path ("corpus.txt", NULL);
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < 50; i++)
    g_string_append_printf (s, "Applicant %u lives in zip %u; the bank said %s.\n", i, 40100 + i % 6, i % 3 ? "yes" : "no");
  g_file_set_contents (corpus, s->str, -1, NULL);
  g_string_free (s, TRUE);

  sae_dir = gb_test_tmp_path ("sae", NULL);
  g_autoptr (GbModel) model = gb_model_load (model_dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  GbSaeRunOptions o;
  gb_sae_run_options_init (&o);
  o.layer = 1;
  o.train.d_sae = 48;
  o.train.k = 4;
  o.train.batch_size = 64;
  o.n_tokens = 64 * 40;
  o.buffer_tokens = 1024;
  o.heldout_tokens = 300;
  o.corpus_path = corpus;
  o.output_dir = sae_dir;
  g_autoptr (GbSae) sae = gb_sae_train_on_model (model, &o, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/ui/features/gallery-light", test_gallery_light);
  g_test_add_func ("/ui/features/gallery-dark", test_gallery_dark);
  g_test_add_func ("/ui/features/export", test_export);
  g_test_add_func ("/ui/features/train", test_train_through_ui);
  g_test_add_func ("/ui/features/broken-sae", test_broken_sae);
  return g_test_run ();
}
