/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-bench"

/* Run by hand:
 *   bench-grid                 one frame of a 1024 x 1024 grid, zoomed and panned
 *   bench-grid MODEL_DIR       plus the memory and time of every head of MODEL_DIR
 *                              (GPT-2 small) for 1024 tokens
 * Frames are drawn by the same function the window's grid uses
 * (gb_heatmap_draw_view) into an image surface of the window's size. */

#include <gb-attention-render.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define T 1024

static int
compare_double (const void *a,
                const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static gsize
status_kb (const char *field)
{
  g_autofree char *text = NULL;
  g_file_get_contents ("/proc/self/status", &text, NULL, NULL);
  const char *p = text ? strstr (text, field) : NULL;
  return p ? (gsize) g_ascii_strtoull (p + strlen (field), NULL, 10) : 0;
}

static void
bench_frames (int scale)
{
  g_autofree float *w = g_new0 (float, (gsize) T * T);
  char **labels = g_new0 (char *, T + 1);
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);
  const int W = 1100, H = 760;

  for (guint i = 0; i < T; i++)
    {
      double sum = 0;
      for (guint j = 0; j <= i; j++)
        sum += w[(gsize) i * T + j] = (float) exp (4 * g_rand_double (rand));
      for (guint j = 0; j <= i; j++)
        w[(gsize) i * T + j] /= (float) sum;
      labels[i] = g_strdup_printf ("·tok%u", i);
    }
  GbHeatmap h = { .n = T, .weights = w, .labels = (const char *const *) labels, .causal = TRUE };
  gint64 t0 = g_get_monotonic_time ();
  cairo_surface_t *cells = gb_heatmap_cells_surface (&h);
  gint64 t1 = g_get_monotonic_time ();
  GbHeatmapView v = { .width = W, .height = H, .hover_i = -1, .hover_j = -1, .pin_i = 500, .pin_j = 300 };
  v.label_extent = gb_heatmap_label_extent (&h, GB_VIEW_LABEL_PX);
  gint64 t2 = g_get_monotonic_time ();
  printf ("main-thread work when a 1024-token view arrives: cell bitmap %.1f ms, label widths %.1f ms\n",
          (t1 - t0) / 1e3, (t2 - t1) / 1e3);

  cairo_surface_t *target = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, W * scale, H * scale);
  const double zooms[] = { 0.7, 3, 12, 40 };
  for (guint z = 0; z < G_N_ELEMENTS (zooms); z++)
    {
      double ms[60];
      v.cell = zooms[z];
      for (guint f = 0; f < G_N_ELEMENTS (ms); f++)
        {
          v.pan_x = f * 37.0;
          v.pan_y = f * 53.0;
          gb_heatmap_view_clamp (&h, &v);
          v.hover_i = (int) (f * 7) % T, v.hover_j = (int) (f * 3) % T;
          cairo_t *cr = cairo_create (target);
          cairo_scale (cr, scale, scale);
          gint64 s = g_get_monotonic_time ();
          cairo_set_source_rgb (cr, 1, 1, 1);
          cairo_paint (cr);
          gb_heatmap_draw_view (cr, &h, cells, &v);
          cairo_surface_flush (target);
          ms[f] = (g_get_monotonic_time () - s) / 1e3;
          cairo_destroy (cr);
        }
      qsort (ms, G_N_ELEMENTS (ms), sizeof (double), compare_double);
      printf ("frame %dx%d @%dx, cell %5.1f px: median %.2f ms, p95 %.2f ms, max %.2f ms (goal < 8 ms)\n", W, H,
              scale, zooms[z], ms[30], ms[56], ms[59]);
    }
  cairo_surface_destroy (target);
  cairo_surface_destroy (cells);
  g_strfreev (labels);
}

static void
bench_memory (const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  if (model == NULL)
    g_error ("%s", error->message);
  const GbConfig *c = gb_model_get_config (model);
  g_autofree gint32 *tokens = g_new (gint32, T);
  g_autoptr (GRand) rand = g_rand_new_with_seed (2);
  for (guint i = 0; i < T; i++)
    tokens[i] = g_rand_int_range (rand, 0, (gint32) MIN (c->n_vocab, 50000));

  /* Warm the weights so their pages do not count as growth. */
  g_autoptr (GbTrace) warm = gb_model_forward (model, tokens, 8, NULL, NULL, 0, NULL, &error);
  const gsize rss0 = status_kb ("VmRSS:");
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (GbAttentionMaps) maps = gb_attention_maps_compute (model, tokens, T, NULL, NULL, NULL, &error);
  if (maps == NULL)
    g_error ("%s", error->message);
  const double secs = (g_get_monotonic_time () - t0) / 1e6;
  const gsize rss1 = status_kb ("VmRSS:"), hwm = status_kb ("VmHWM:");
  printf ("all heads of %s (%u x %u) for %u tokens: %.1f s\n", gb_model_get_name (model), c->n_layer, c->n_head, T, secs);
  printf ("  kept: %.0f MB (uint16 lower triangles + float layer means + rollout); raw float patterns would be %.0f MB\n",
          gb_attention_maps_get_size (maps) / 1e6, (double) c->n_layer * c->n_head * T * T * 4 / 1e6);
  printf ("  RSS %+.0f MB after, peak %.0f MB over the baseline of %.0f MB (goal: adds < 400 MB)\n",
          ((double) rss1 - rss0) / 1024, ((double) hwm - rss0) / 1024, rss0 / 1024.0);
}

int
main (int    argc,
      char **argv)
{
  bench_frames (1);
  bench_frames (2);
  if (argc > 1)
    bench_memory (argv[1]);
  return 0;
}
