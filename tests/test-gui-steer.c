/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* The Steering view under Xvfb, unattended on the bundled demo model: train
 * on the bundled sentiment pairs, stream a baseline and a steered
 * continuation side by side, move the slider ten times quickly (exactly one
 * new steered run must follow), run the sweep (Markdown and PNG), and save
 * a screenshot, light and dark. */

#include <cairo.h>
#include <string.h>

#include "gb-build-config.h"
#include "gb-test-util.h"

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
run_gui (Run        *r,
         const char *scheme,
         const char *shot,
         const char *sweep)
{
  const char *argv[] = { g_getenv ("GLASSBOX_GUI"), "--model", GB_DATA_DIR "/models/loan-officer", "--text", "The bank",
                         "--view", "steering", "--steer-pairs", "sentiment", "--steer-layers", "1",
                         "--steer-multiplier", "2", "--steer-prompt", "The hotel room was", "--steer-tokens", "20",
                         "--steer-wiggle", "--steer-sweep-png", sweep, "--screenshot", shot, NULL };
  g_auto (GStrv) env = g_get_environ ();
  g_autoptr (GError) error = NULL;
  int status;

  /* No session bus here: GTK's warning about it is expected. */
  env = g_environ_setenv (env, "G_DEBUG", "gc-friendly", TRUE);
  env = g_environ_setenv (env, "ADW_DEBUG_COLOR_SCHEME", scheme, TRUE);
  g_spawn_sync (NULL, (char **) argv, env, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &r->err, &status, &error);
  g_assert_no_error (error);
  r->status = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* The value after @key on its "steering:" line. */
static char *
line_after (const char *err,
            const char *key)
{
  const char *p = strstr (err, key);
  g_assert_nonnull (p);
  p += strlen (key);
  const char *nl = strstr (p, "\nsteering:");
  return g_strndup (p, nl ? (gsize) (nl - p) : strlen (p));
}

static double
mean_luma (cairo_surface_t *s)
{
  const int w = cairo_image_surface_get_width (s), h = cairo_image_surface_get_height (s);
  const int stride = cairo_image_surface_get_stride (s);
  const guint8 *d = cairo_image_surface_get_data (s);
  double sum = 0;
  guint n = 0;

  for (int y = 0; y < h; y += 3)
    for (int x = 0; x < w; x += 3, n++)
      {
        guint32 p = ((const guint32 *) (d + y * stride))[x];
        sum += (0.3 * ((p >> 16) & 0xff) + 0.59 * ((p >> 8) & 0xff) + 0.11 * (p & 0xff)) / 255;
      }
  return sum / n;
}

static void
check (const char *scheme,
       gboolean    dark)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *shot = g_build_filename (dir, "steering.png", NULL);
  g_autofree char *sweep = g_build_filename (dir, "sweep.png", NULL);
  g_auto (Run) r = { 0 };

  run_gui (&r, scheme, shot, sweep);
  g_test_message ("%s", r.err);
  g_assert_cmpint (r.status, ==, 0);
  g_auto (GStrv) lines = g_strsplit (r.err, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (strstr (lines[i], "CRITICAL") || (strstr (lines[i], "WARNING") && !strstr (lines[i], "session bus")))
      g_error ("unexpected message from glassbox: %s", lines[i]);

  g_assert_nonnull (strstr (r.err, "steering: trained on sentiment, steering block(s) 1\n"));
  /* Both panes streamed text, and the vector changed the continuation. */
  g_autofree char *base = line_after (r.err, "steering: baseline: ");
  g_autofree char *steered = line_after (r.err, "steering: steered (x2.0): ");
  g_assert_cmpuint (strlen (g_strstrip (base)), >, 0);
  g_assert_cmpuint (strlen (g_strstrip (steered)), >, 0);
  g_assert_cmpstr (base, !=, steered);
  /* Ten quick slider moves start exactly one steered run, alone. */
  g_assert_nonnull (strstr (r.err, "steered runs started after the slider moves: 1; steered runs alive when it started: 1\n"));

  /* The sweep: a Markdown row per multiplier, and its PNG. */
  const char *rows[] = { "| -2.0 |", "| -1.0 |", "| +0.0 |", "| +1.0 |", "| +2.0 |" };
  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    g_assert_nonnull (strstr (r.err, rows[i]));
  cairo_surface_t *sp = cairo_image_surface_create_from_png (sweep);
  g_assert_cmpint (cairo_surface_status (sp), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint (cairo_image_surface_get_height (sp), >=, 60);
  cairo_surface_destroy (sp);

  cairo_surface_t *png = cairo_image_surface_create_from_png (shot);
  g_assert_cmpint (cairo_surface_status (png), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint (cairo_image_surface_get_width (png), >=, 1000);
  double luma = mean_luma (png);
  g_test_message ("%s: mean luma %.2f", scheme, luma);
  if (dark)
    g_assert_cmpfloat (luma, <, 0.35);
  else
    g_assert_cmpfloat (luma, >, 0.55);
  cairo_surface_destroy (png);
}

static void
test_light (void)
{
  check ("prefer-light", FALSE);
}

static void
test_dark (void)
{
  check ("prefer-dark", TRUE);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (g_getenv ("DISPLAY"));
  g_test_add_func ("/ui/steering/light", test_light);
  g_test_add_func ("/ui/steering/dark", test_dark);
  return g_test_run ();
}
