/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* The heatmap renderer: a known weight draws the known viridis colour at the
 * known cell, the causal triangle is not drawn as zero, labels are drawn,
 * and the SVG and PDF files are well-formed. */

#include <cairo.h>
#include <math.h>
#include <string.h>

#include "gb-colormap.h"
#include "gb-heatmap.h"
#include "gb-test-util.h"

#define N 5

static float weights[N * N];
static const char *labels[N] = { "The", "·bank", "·said", "·no", "." };

static GbHeatmap
make_heatmap (GbNorm norm)
{
  /* Row i spreads its weight over keys 0..i; cell (3, 1) is exactly 0.5. */
  memset (weights, 0, sizeof weights);
  weights[0] = 1;
  weights[1 * N + 0] = 0.25f, weights[1 * N + 1] = 0.75f;
  weights[2 * N + 0] = 0.2f, weights[2 * N + 1] = 0.3f, weights[2 * N + 2] = 0.5f;
  weights[3 * N + 0] = 0.1f, weights[3 * N + 1] = 0.5f, weights[3 * N + 2] = 0.15f, weights[3 * N + 3] = 0.25f;
  for (guint j = 0; j < N; j++)
    weights[4 * N + j] = 0.2f;
  return (GbHeatmap) { .n = N, .weights = weights, .labels = labels, .title = "Test — layer 0, head 0",
                       .subtitle = "5 tokens", .causal = TRUE, .norm = norm };
}

static guint32
pixel_at (cairo_surface_t *s,
          double           x,
          double           y)
{
  const guint8 *data = cairo_image_surface_get_data (s);
  const int stride = cairo_image_surface_get_stride (s);
  return ((const guint32 *) (data + (int) y * stride))[(int) x] & 0xffffff;
}

static guint32
viridis_rgb (double t)
{
  const guint8 *c = gb_viridis (t);
  return (guint32) c[0] << 16 | (guint32) c[1] << 8 | c[2];
}

static void
assert_cell (cairo_surface_t       *png,
             const GbHeatmapLayout *l,
             double                 scale,
             guint                  i,
             guint                  j,
             guint32                want)
{
  const double x = (l->grid_x + (j + 0.5) * l->cell) * scale, y = (l->grid_y + (i + 0.5) * l->cell) * scale;
  g_assert_cmphex (pixel_at (png, x, y), ==, want);
}

static gboolean
band_has_ink (cairo_surface_t *png,
              double           x0,
              double           y0,
              double           x1,
              double           y1,
              guint32          bg)
{
  for (int y = (int) y0; y < (int) y1; y++)
    for (int x = (int) x0; x < (int) x1; x++)
      if (pixel_at (png, x, y) != bg)
        return TRUE;
  return FALSE;
}

static void
test_png_cells (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  const double scales[] = { 1, 2 };

  for (guint s = 0; s < G_N_ELEMENTS (scales); s++)
    {
      GbHeatmap h = make_heatmap (GB_NORM_LINEAR);
      GbHeatmapLayout l;
      g_autoptr (GError) error = NULL;
      g_autofree char *path = g_strdup_printf ("%s/cells-%g.png", dir, scales[s]);
      GbHeatmapColors colors;

      gb_heatmap_layout (&h, &l);
      g_assert_true (gb_heatmap_export (&h, path, scales[s], &error));
      g_assert_no_error (error);
      cairo_surface_t *png = cairo_image_surface_create_from_png (path);
      g_assert_cmpint (cairo_surface_status (png), ==, CAIRO_STATUS_SUCCESS);
      g_assert_cmpint (cairo_image_surface_get_width (png), ==, (int) (l.width * scales[s] + 0.999));

      /* Weight 0.5 is viridis entry 128 = #21918c; weight 1 is #fde725. */
      assert_cell (png, &l, scales[s], 3, 1, viridis_rgb (0.5));
      g_assert_cmphex (viridis_rgb (0.5), ==, 0x21918c);
      assert_cell (png, &l, scales[s], 0, 0, 0xfde725);
      assert_cell (png, &l, scales[s], 4, 4, viridis_rgb (0.2));
      /* Above the diagonal: not viridis's zero (#440154), but grey. */
      gb_heatmap_colors (FALSE, &colors);
      const double x = (l.grid_x + 3.5 * l.cell) * scales[s], y = (l.grid_y + 1.5 * l.cell) * scales[s];
      guint32 na = pixel_at (png, x, y);
      g_assert_cmphex (na, !=, viridis_rgb (0));
      g_assert_cmpuint (na >> 16, ==, na & 0xff); /* r == b: neutral grey */
      g_assert_cmpuint ((na >> 8) & 0xff, ==, na & 0xff);
      /* Labels: ink left of the grid (queries) and below it (keys). */
      const double sc = scales[s], grid = N * l.cell;
      g_assert_true (band_has_ink (png, (l.grid_x - l.label_extent) * sc, l.grid_y * sc, (l.grid_x - 2) * sc,
                                   (l.grid_y + grid) * sc, 0xffffff));
      g_assert_true (band_has_ink (png, l.grid_x * sc, (l.grid_y + grid + 3) * sc, (l.grid_x + grid) * sc,
                                   (l.grid_y + grid + l.label_extent) * sc, 0xffffff));
      /* The title band has ink; the right margin below the legend has none. */
      g_assert_true (band_has_ink (png, 16 * sc, 16 * sc, 200 * sc, 34 * sc, 0xffffff));
      cairo_surface_destroy (png);
    }
}

static void
test_norms (void)
{
  GbHeatmap h = make_heatmap (GB_NORM_ROW_MAX);

  /* Row 3's maximum is 0.5: cell (3, 1) becomes 1, (3, 3) 0.5. */
  g_assert_cmpfloat_with_epsilon (gb_heatmap_value (&h, 3, 1), 1.0, 1e-6);
  g_assert_cmpfloat_with_epsilon (gb_heatmap_value (&h, 3, 3), 0.5, 1e-6);
  g_assert_true (isnan (gb_heatmap_value (&h, 1, 3)));
  h.norm = GB_NORM_LOG;
  /* log10(0.1) = -1 on [-4, 0]: 0.75. */
  g_assert_cmpfloat_with_epsilon (gb_heatmap_value (&h, 3, 0), 0.75, 1e-6);
  g_assert_cmpfloat_with_epsilon (gb_heatmap_value (&h, 0, 0), 1.0, 1e-6);
  h.norm = GB_NORM_LINEAR;
  g_assert_cmpfloat_with_epsilon (gb_heatmap_value (&h, 3, 1), 0.5, 1e-6);

  GbNorm n;
  g_assert_true (gb_norm_from_name ("row-max", &n));
  g_assert_cmpint (n, ==, GB_NORM_ROW_MAX);
  g_assert_false (gb_norm_from_name ("cubic", &n));
}

static void
test_label_thinning (void)
{
  /* Labels every token at 16 px cells, every other at 8, every 14th at 1. */
  g_assert_cmpuint (gb_heatmap_label_step (16, 11), ==, 1);
  g_assert_cmpuint (gb_heatmap_label_step (8, 11), ==, 2);
  g_assert_cmpuint (gb_heatmap_label_step (1, 11), ==, 14);
}

static void
start_element (GMarkupParseContext *ctx,
               const char          *name,
               const char         **attr_names,
               const char         **attr_values,
               gpointer             user_data,
               GError             **error)
{
  GHashTable *counts = user_data;
  g_hash_table_insert (counts, g_strdup (name), GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (counts, name)) + 1));
  if (g_str_equal (name, "svg"))
    for (guint i = 0; attr_names[i]; i++)
      if (g_str_equal (attr_names[i], "width"))
        g_hash_table_insert (counts, g_strdup ("@width"), GUINT_TO_POINTER ((guint) g_ascii_strtod (attr_values[i], NULL)));
}

static void
test_svg (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "h.svg", NULL);
  GbHeatmap h = make_heatmap (GB_NORM_LINEAR);
  GbHeatmapLayout l;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  gsize len;
  const GMarkupParser parser = { .start_element = start_element };
  g_autoptr (GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  gb_heatmap_layout (&h, &l);
  g_assert_true (gb_heatmap_export (&h, path, 1, &error));
  g_assert_true (g_file_get_contents (path, &text, &len, &error));
  g_assert_true (g_str_has_prefix (text, "<?xml"));
  g_autoptr (GMarkupParseContext) ctx = g_markup_parse_context_new (&parser, 0, counts, NULL);
  g_assert_true (g_markup_parse_context_parse (ctx, text, (gssize) len, &error));
  g_assert_true (g_markup_parse_context_end_parse (ctx, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (counts, "svg")), ==, 1);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (counts, "@width")), ==, (guint) l.width);
  /* Vector cells: at least one path per lower-triangle cell, plus glyphs. */
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (counts, "path")), >=, N * (N + 1) / 2);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (counts, "use")), >, 10);
  /* The 0.5 cell's colour is in the file. */
  g_assert_nonnull (strstr (text, "rgb(12.941176%,56.862745%,54.901961%)"));
}

static void
test_pdf (void)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "h.pdf", NULL);
  GbHeatmap h = make_heatmap (GB_NORM_LOG);
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (gb_heatmap_export (&h, path, 1, &error));
  g_assert_true (g_file_get_contents (path, &data, &len, &error));
  g_assert_true (g_str_has_prefix (data, "%PDF-1."));
  /* Compressed streams hold NUL bytes: search by length, not as strings. */
  g_assert_true (len > 6 && memcmp (data + len - 6, "%%EOF\n", 6) == 0);
  /* startxref names the byte offset of the cross-reference table. */
  const char *sx = NULL;
  for (const char *p = data; (p = memmem (p, len - (gsize) (p - data), "startxref", 9)) != NULL; p++)
    sx = p;
  g_assert_nonnull (sx);
  guint64 off = g_ascii_strtoull (sx + strlen ("startxref"), NULL, 10);
  g_assert_cmpuint (off, <, len);
  g_assert_true (strncmp (data + off, "xref", 4) == 0);
  /* One page, with a font embedded for the labels. */
  guint pages = 0;
  for (const char *p = data; (p = memmem (p, len - (gsize) (p - data), "/Type /Page", 11)) != NULL; p++)
    if (p[11] != 's')
      pages++;
  g_assert_cmpuint (pages, ==, 1);
  g_assert_nonnull (memmem (data, len, "/FontFile", 9));
}

static void
test_bad_extension (void)
{
  GbHeatmap h = make_heatmap (GB_NORM_LINEAR);
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = gb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "h.bmp", NULL);

  g_assert_false (gb_heatmap_export (&h, path, 1, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ui/render/png-cells", test_png_cells);
  g_test_add_func ("/ui/render/norms", test_norms);
  g_test_add_func ("/ui/render/label-thinning", test_label_thinning);
  g_test_add_func ("/ui/render/svg", test_svg);
  g_test_add_func ("/ui/render/pdf", test_pdf);
  g_test_add_func ("/ui/render/bad-extension", test_bad_extension);
  return g_test_run ();
}
