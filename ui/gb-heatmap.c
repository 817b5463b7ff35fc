/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-render"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

#include <glassbox-engine.h>

#include "gb-colormap.h"
#include "gb-heatmap.h"

#define LOG_FLOOR (-4.0)  /* log10 of the smallest weight the log scale shows */
#define PAD 16.0
#define TITLE_PX 15.0
#define SUBTITLE_PX 11.0
#define AXIS_PX 12.0
#define TICK_PX 10.0
#define LEGEND_BAR 14.0
#define HATCH_STEP 6.0
#define GB_RENDER_VERSION "0.1"

static const char *norm_names[] = { "linear", "log", "row-max" };

const char *
gb_norm_name (GbNorm norm)
{
  g_return_val_if_fail (norm <= GB_NORM_ROW_MAX, NULL);
  return norm_names[norm];
}

gboolean
gb_norm_from_name (const char *name,
                   GbNorm     *norm)
{
  for (guint i = 0; i < G_N_ELEMENTS (norm_names); i++)
    if (g_strcmp0 (name, norm_names[i]) == 0)
      {
        *norm = i;
        return TRUE;
      }
  return FALSE;
}

void
gb_heatmap_colors (gboolean         dark,
                   GbHeatmapColors *c)
{
  /* The background and text follow libadwaita's window colours; "not
   * applicable" is a neutral grey that viridis never produces. */
  static const GbHeatmapColors light = {
    { 1, 1, 1 }, { 0.12, 0.12, 0.12 }, { 0.86, 0.86, 0.86 }, { 0.70, 0.70, 0.70 }, { 0.55, 0.55, 0.55 },
  };
  static const GbHeatmapColors dark_colors = {
    { 0.141, 0.141, 0.141 }, { 0.95, 0.95, 0.95 }, { 0.26, 0.26, 0.26 }, { 0.36, 0.36, 0.36 }, { 0.5, 0.5, 0.5 },
  };
  *c = dark ? dark_colors : light;
}

static double
normalise (GbNorm norm,
           float  w,
           float  row_max)
{
  switch (norm)
    {
    case GB_NORM_LOG:
      return w <= 0 ? 0 : CLAMP ((log10 (w) - LOG_FLOOR) / -LOG_FLOOR, 0, 1);
    case GB_NORM_ROW_MAX:
      return row_max > 0 ? CLAMP (w / row_max, 0, 1) : 0;
    case GB_NORM_LINEAR:
    default:
      return CLAMP (w, 0, 1);
    }
}

static float
row_max (const GbHeatmap *h,
         guint            i)
{
  const float *row = h->weights + (gsize) i * h->n;
  const guint end = h->causal ? i + 1 : h->n;
  float m = 0;

  for (guint j = 0; j < end; j++)
    m = MAX (m, row[j]);
  return m;
}

double
gb_heatmap_value (const GbHeatmap *h,
                  guint            i,
                  guint            j)
{
  g_return_val_if_fail (i < h->n && j < h->n, NAN);
  if (h->causal && j > i)
    return NAN;
  return normalise (h->norm, h->weights[(gsize) i * h->n + j], h->norm == GB_NORM_ROW_MAX ? row_max (h, i) : 1);
}

cairo_surface_t *
gb_heatmap_cells_surface (const GbHeatmap *h)
{
  const guint n = MAX (h->n, 1);
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_RGB24, (int) n, (int) n);
  guint8 *data = cairo_image_surface_get_data (s);
  const int stride = cairo_image_surface_get_stride (s);
  GbHeatmapColors colors;
  guint32 na;

  gb_heatmap_colors (h->dark, &colors);
  na = (guint32) lround (colors.na[0] * 255) << 16 | (guint32) lround (colors.na[1] * 255) << 8 |
       (guint32) lround (colors.na[2] * 255);
  cairo_surface_flush (s);
  for (guint i = 0; i < h->n; i++)
    {
      guint32 *px = (guint32 *) (data + (gsize) i * stride);
      const float m = h->norm == GB_NORM_ROW_MAX ? row_max (h, i) : 1;
      for (guint j = 0; j < h->n; j++)
        {
          if (h->causal && j > i)
            {
              px[j] = na;
              continue;
            }
          const guint8 *rgb = gb_viridis (normalise (h->norm, h->weights[(gsize) i * h->n + j], m));
          px[j] = 0xff000000u | (guint32) rgb[0] << 16 | (guint32) rgb[1] << 8 | rgb[2];
        }
    }
  cairo_surface_mark_dirty (s);
  return s;
}

static void
set_rgb (cairo_t      *cr,
         const double *rgb)
{
  cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
}

static void
upper_triangle_path (cairo_t *cr,
                     guint    n,
                     double   x,
                     double   y,
                     double   cell,
                     guint    first,
                     guint    last)
{
  /* Row i's not-applicable cells run from x + (i + 1) cell to the right
   * edge: a staircase down the diagonal, built for rows first..last only so
   * that a zoomed view does not trace a thousand steps it cannot see. */
  cairo_move_to (cr, x + (first + 1) * cell, y + first * cell);
  cairo_line_to (cr, x + n * cell, y + first * cell);
  cairo_line_to (cr, x + n * cell, y + (last + 1) * cell);
  for (guint k = last + 1; k > first; k--)
    {
      cairo_line_to (cr, x + k * cell, y + k * cell);
      cairo_line_to (cr, x + k * cell, y + (k - 1) * cell);
    }
  cairo_close_path (cr);
}

void
gb_heatmap_draw_na (cairo_t               *cr,
                    const GbHeatmapColors *colors,
                    guint                  n,
                    double                 x,
                    double                 y,
                    double                 cell)
{
  double x1, y1, x2, y2;

  if (n < 2)
    return;
  cairo_save (cr);
  cairo_clip_extents (cr, &x1, &y1, &x2, &y2);
  const double first = floor ((y1 - y) / cell), last = floor ((y2 - y) / cell);
  if (last < 0 || first > n - 2)
    {
      cairo_restore (cr);
      return;
    }
  upper_triangle_path (cr, n, x, y, cell, (guint) MAX (first, 0), (guint) MIN (last, n - 2));
  set_rgb (cr, colors->na);
  cairo_fill_preserve (cr);
  cairo_clip (cr);
  cairo_clip_extents (cr, &x1, &y1, &x2, &y2);
  /* Diagonal hatching at a fixed spacing in user units, anchored to the grid
   * so it does not crawl while panning. */
  set_rgb (cr, colors->hatch);
  cairo_set_line_width (cr, 1.0);
  double start = x1 - (y2 - y1);
  start = x + floor ((start - x) / HATCH_STEP) * HATCH_STEP;
  for (double s = start; s < x2; s += HATCH_STEP)
    {
      cairo_move_to (cr, s, y2);
      cairo_line_to (cr, s + (y2 - y1), y1);
    }
  cairo_stroke (cr);
  cairo_restore (cr);
}

/* ---- Text ---- */

static PangoFontMap *
font_map (void)
{
  static gsize map;

  if (g_once_init_enter (&map))
    {
      PangoFontMap *m = pango_cairo_font_map_new ();
      pango_cairo_font_map_set_resolution (PANGO_CAIRO_FONT_MAP (m), 72.0);
      g_once_init_leave (&map, (gsize) m);
    }
  return (PangoFontMap *) map;
}

PangoLayout *
gb_heatmap_create_layout (cairo_t    *cr,
                          const char *text,
                          double      size_px,
                          gboolean    bold)
{
  PangoContext *ctx = pango_font_map_create_context (font_map ());
  cairo_font_options_t *opts = cairo_font_options_create ();
  PangoFontDescription *desc = pango_font_description_from_string ("Sans");
  PangoLayout *layout;

  /* Unhinted outlines and metrics: text lays out the same at every scale and
   * on every surface, so a PNG at 2x is the 1x figure, only sharper. */
  cairo_font_options_set_antialias (opts, CAIRO_ANTIALIAS_GRAY);
  cairo_font_options_set_hint_style (opts, CAIRO_HINT_STYLE_NONE);
  cairo_font_options_set_hint_metrics (opts, CAIRO_HINT_METRICS_OFF);
  pango_cairo_context_set_font_options (ctx, opts);
  cairo_font_options_destroy (opts);
  pango_context_set_round_glyph_positions (ctx, FALSE);
  pango_cairo_update_context (cr, ctx);
  layout = pango_layout_new (ctx);
  g_object_unref (ctx);
  pango_font_description_set_absolute_size (desc, size_px * PANGO_SCALE);
  if (bold)
    pango_font_description_set_weight (desc, PANGO_WEIGHT_BOLD);
  pango_layout_set_font_description (layout, desc);
  pango_font_description_free (desc);
  pango_layout_set_text (layout, text ? text : "", -1);
  return layout;
}

static void
layout_size (PangoLayout *layout,
             double      *w,
             double      *h)
{
  PangoRectangle logical;

  pango_layout_get_extents (layout, NULL, &logical);
  if (w)
    *w = (double) logical.width / PANGO_SCALE;
  if (h)
    *h = (double) logical.height / PANGO_SCALE;
}

static double
text_width (cairo_t    *cr,
            const char *text,
            double      px,
            gboolean    bold)
{
  g_autoptr (PangoLayout) layout = gb_heatmap_create_layout (cr, text, px, bold);
  double w;

  layout_size (layout, &w, NULL);
  return w;
}

/* Draws @text with its top-left at (x, y) or, with @align_right, its
 * top-right; vertically centred on y when @center_y. */
static void
show_text (cairo_t     *cr,
           PangoLayout *layout,
           double       x,
           double       y,
           double       max_width,
           gboolean     align_right,
           gboolean     center_y);

static void
draw_text (cairo_t    *cr,
           const char *text,
           double      px,
           gboolean    bold,
           double      x,
           double      y,
           double      max_width,
           gboolean    align_right,
           gboolean    center_y)
{
  g_autoptr (PangoLayout) layout = gb_heatmap_create_layout (cr, text, px, bold);

  show_text (cr, layout, x, y, max_width, align_right, center_y);
}

/* Shows @layout (whose text is set) at (x, y); see draw_text(). */
static void
show_text (cairo_t     *cr,
           PangoLayout *layout,
           double       x,
           double       y,
           double       max_width,
           gboolean     align_right,
           gboolean     center_y)
{
  double w, h;

  if (max_width > 0)
    {
      pango_layout_set_width (layout, (int) (max_width * PANGO_SCALE));
      pango_layout_set_ellipsize (layout, PANGO_ELLIPSIZE_END);
    }
  layout_size (layout, &w, &h);
  cairo_move_to (cr, align_right ? x - w : x, center_y ? y - h / 2 : y);
  pango_cairo_show_layout (cr, layout);
}

guint
gb_heatmap_label_step (double cell,
                       double font_px)
{
  const double need = font_px * 1.25;

  if (cell <= 0)
    return G_MAXUINT;
  return MAX (1, (guint) ceil (need / cell));
}

void
gb_heatmap_draw_key_labels (cairo_t               *cr,
                            const GbHeatmap       *h,
                            const GbHeatmapColors *colors,
                            double                 origin,
                            double                 edge,
                            double                 cell,
                            guint                  first,
                            guint                  last,
                            guint                  step,
                            double                 font_px,
                            double                 max_extent)
{
  set_rgb (cr, colors->fg);
  cairo_save (cr);
  cairo_translate (cr, origin, edge + 4);
  /* Reads bottom-to-top, ending next to the grid. One layout serves every
   * label: creating one per label was most of a frame. */
  cairo_rotate (cr, -G_PI / 2);
  g_autoptr (PangoLayout) layout = gb_heatmap_create_layout (cr, "", font_px, FALSE);
  for (guint j = first - first % step; j <= last && j < h->n; j += step)
    {
      if (j < first)
        continue;
      pango_layout_set_text (layout, h->labels[j], -1);
      show_text (cr, layout, 0, (j + 0.5) * cell, max_extent, TRUE, TRUE);
    }
  cairo_restore (cr);
}

void
gb_heatmap_draw_query_labels (cairo_t               *cr,
                              const GbHeatmap       *h,
                              const GbHeatmapColors *colors,
                              double                 origin,
                              double                 edge,
                              double                 cell,
                              guint                  first,
                              guint                  last,
                              guint                  step,
                              double                 font_px,
                              double                 max_extent)
{
  set_rgb (cr, colors->fg);
  g_autoptr (PangoLayout) layout = gb_heatmap_create_layout (cr, "", font_px, FALSE);
  for (guint i = first - first % step; i <= last && i < h->n; i += step)
    {
      if (i < first)
        continue;
      pango_layout_set_text (layout, h->labels[i], -1);
      show_text (cr, layout, edge - 4, origin + (i + 0.5) * cell, max_extent, TRUE, TRUE);
    }
}

/* ---- Legend ---- */

double
gb_heatmap_draw_legend (cairo_t               *cr,
                        const GbHeatmapColors *colors,
                        GbNorm                 norm,
                        double                 x,
                        double                 y,
                        double                 height)
{
  static const char *linear_ticks[] = { "0", "0.25", "0.5", "0.75", "1" };
  static const char *log_ticks[] = { "10⁻⁴", "10⁻³", "0.01", "0.1", "1" };
  static const char *row_ticks[] = { "0", "0.25", "0.5", "0.75", "row max" };
  const char **ticks = norm == GB_NORM_LOG ? log_ticks : norm == GB_NORM_ROW_MAX ? row_ticks : linear_ticks;
  cairo_pattern_t *grad = cairo_pattern_create_linear (0, y + height, 0, y);
  double widest = 0;

  for (guint i = 0; i < 256; i++)
    cairo_pattern_add_color_stop_rgb (grad, i / 255.0, gb_viridis_table[i][0] / 255.0,
                                      gb_viridis_table[i][1] / 255.0, gb_viridis_table[i][2] / 255.0);
  cairo_rectangle (cr, x, y, LEGEND_BAR, height);
  cairo_set_source (cr, grad);
  cairo_fill (cr);
  cairo_pattern_destroy (grad);

  set_rgb (cr, colors->fg);
  cairo_set_line_width (cr, 1);
  for (guint k = 0; k < 5; k++)
    {
      double ty = round (y + height - k * height / 4) + (k == 4 ? 0.5 : -0.5);
      cairo_move_to (cr, x + LEGEND_BAR, ty);
      cairo_line_to (cr, x + LEGEND_BAR + 4, ty);
      cairo_stroke (cr);
      draw_text (cr, ticks[k], TICK_PX, FALSE, x + LEGEND_BAR + 6, ty, 0, FALSE, TRUE);
      widest = MAX (widest, text_width (cr, ticks[k], TICK_PX, FALSE));
    }
  return LEGEND_BAR + 6 + widest;
}

/* ---- The whole figure ---- */

void
gb_heatmap_layout (const GbHeatmap *h,
                   GbHeatmapLayout *l)
{
  cairo_surface_t *scratch = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create (scratch);
  const guint n = MAX (h->n, 1);
  double widest = 0;

  memset (l, 0, sizeof *l);
  l->cell = CLAMP (floor (720.0 / n), 1, 32);
  l->label_px = TICK_PX + 1;
  for (guint i = 0; i < h->n; i += gb_heatmap_label_step (l->cell, l->label_px))
    widest = MAX (widest, text_width (cr, h->labels[i], l->label_px, FALSE));
  l->label_extent = ceil (MIN (widest, 120.0)) + 6;

  const double grid = n * l->cell;
  const double title_h = TITLE_PX * 1.4 + (h->subtitle ? SUBTITLE_PX * 1.4 : 0) + 10;
  l->grid_x = PAD + AXIS_PX * 1.4 + 4 + l->label_extent;
  l->grid_y = PAD + title_h;
  l->legend_x = l->grid_x + grid + 20;
  const double legend_w = LEGEND_BAR + 6 + text_width (cr, "row max", TICK_PX, FALSE);
  const double legend_h = CLAMP (grid, 120, 280);
  l->width = ceil (MAX (l->legend_x + legend_w + PAD,
                        2 * PAD + MAX (text_width (cr, h->title, TITLE_PX, TRUE),
                                       h->subtitle ? text_width (cr, h->subtitle, SUBTITLE_PX, FALSE) : 0)));
  l->height = ceil (MAX (l->grid_y + grid + 4 + l->label_extent + 4 + AXIS_PX * 1.4 + PAD,
                         l->grid_y + legend_h + PAD));
  cairo_destroy (cr);
  cairo_surface_destroy (scratch);
}

static void
draw_cells_vector (cairo_t         *cr,
                   const GbHeatmap *h,
                   double           x,
                   double           y,
                   double           cell)
{
  for (guint i = 0; i < h->n; i++)
    for (guint j = 0; j < (h->causal ? i + 1 : h->n); j++)
      {
        const guint8 *rgb = gb_viridis (gb_heatmap_value (h, i, j));
        cairo_set_source_rgb (cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
        cairo_rectangle (cr, x + j * cell, y + i * cell, cell, cell);
        cairo_fill (cr);
      }
}

void
gb_heatmap_draw_cells (cairo_t         *cr,
                       const GbHeatmap *h,
                       double           x,
                       double           y,
                       double           cell)
{
  const gboolean vector = cairo_surface_get_type (cairo_get_target (cr)) != CAIRO_SURFACE_TYPE_IMAGE;

  /* Vector files get one rectangle per cell (crisp in any viewer) while that
   * stays a reasonable size; images get the cell bitmap, nearest-filtered. */
  if (vector && h->n <= 200)
    {
      draw_cells_vector (cr, h, x, y, cell);
      return;
    }
  cairo_surface_t *cells = gb_heatmap_cells_surface (h);
  cairo_save (cr);
  cairo_translate (cr, x, y);
  cairo_scale (cr, cell, cell);
  cairo_set_source_surface (cr, cells, 0, 0);
  cairo_pattern_set_filter (cairo_get_source (cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle (cr, 0, 0, h->n, h->n);
  cairo_fill (cr);
  cairo_restore (cr);
  cairo_surface_destroy (cells);
}

void
gb_heatmap_draw (cairo_t               *cr,
                 const GbHeatmap       *h,
                 const GbHeatmapLayout *l)
{
  GbHeatmapColors colors;
  const double grid = h->n * l->cell;
  const guint step = gb_heatmap_label_step (l->cell, l->label_px);

  gb_heatmap_colors (h->dark, &colors);
  set_rgb (cr, colors.bg);
  cairo_paint (cr);

  set_rgb (cr, colors.fg);
  draw_text (cr, h->title, TITLE_PX, TRUE, PAD, PAD, 0, FALSE, FALSE);
  if (h->subtitle)
    draw_text (cr, h->subtitle, SUBTITLE_PX, FALSE, PAD, PAD + TITLE_PX * 1.4, 0, FALSE, FALSE);

  gb_heatmap_draw_cells (cr, h, l->grid_x, l->grid_y, l->cell);
  if (h->causal)
    gb_heatmap_draw_na (cr, &colors, h->n, l->grid_x, l->grid_y, l->cell);
  set_rgb (cr, colors.grid);
  cairo_set_line_width (cr, 1);
  cairo_rectangle (cr, l->grid_x - 0.5, l->grid_y - 0.5, grid + 1, grid + 1);
  cairo_stroke (cr);

  if (h->n > 0)
    {
      gb_heatmap_draw_key_labels (cr, h, &colors, l->grid_x, l->grid_y + grid, l->cell, 0, h->n - 1, step,
                                  l->label_px, l->label_extent - 6);
      gb_heatmap_draw_query_labels (cr, h, &colors, l->grid_y, l->grid_x, l->cell, 0, h->n - 1, step,
                                    l->label_px, l->label_extent - 6);
    }

  /* Axis titles. */
  set_rgb (cr, colors.fg);
  g_autoptr (PangoLayout) key_title = gb_heatmap_create_layout (cr, "Key (attended-to token) →", AXIS_PX, FALSE);
  double kw, kh;
  layout_size (key_title, &kw, &kh);
  cairo_move_to (cr, l->grid_x + grid / 2 - kw / 2, l->grid_y + grid + 4 + l->label_extent + 4);
  pango_cairo_show_layout (cr, key_title);
  g_autoptr (PangoLayout) query_title = gb_heatmap_create_layout (cr, "← Query (attending token)", AXIS_PX, FALSE);
  double qw, qh;
  layout_size (query_title, &qw, &qh);
  cairo_save (cr);
  cairo_translate (cr, PAD, l->grid_y + grid / 2 + qw / 2);
  cairo_rotate (cr, -G_PI / 2);
  cairo_move_to (cr, 0, 0);
  pango_cairo_show_layout (cr, query_title);
  cairo_restore (cr);

  gb_heatmap_draw_legend (cr, &colors, h->norm, l->legend_x, l->grid_y, CLAMP (grid, 120, 280));
}

/* ---- Export ---- */

static cairo_status_t
append_bytes (void                *closure,
              const unsigned char *data,
              unsigned int         length)
{
  g_byte_array_append (closure, data, length);
  return CAIRO_STATUS_SUCCESS;
}

gboolean
gb_figure_export (const char       *path,
                  double            width,
                  double            height,
                  double            scale,
                  GbFigureDrawFunc  draw,
                  gpointer          user_data,
                  GError          **error)
{
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  g_autofree char *lower = g_ascii_strdown (path, -1);
  cairo_surface_t *surface;
  cairo_status_t status;

  g_return_val_if_fail (path != NULL && draw != NULL, FALSE);
  if (!(scale >= 0.25 && scale <= 16))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: the scale must lie between 0.25 and 16", path);
      return FALSE;
    }
  if (g_str_has_suffix (lower, ".png"))
    surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24, (int) ceil (width * scale), (int) ceil (height * scale));
  else if (g_str_has_suffix (lower, ".svg"))
    surface = cairo_svg_surface_create_for_stream (append_bytes, bytes, width, height);
  else if (g_str_has_suffix (lower, ".pdf"))
    {
      surface = cairo_pdf_surface_create_for_stream (append_bytes, bytes, width, height);
      cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_CREATOR, "Glassbox " GB_RENDER_VERSION);
    }
  else
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: unknown image type (use .png, .svg or .pdf)", path);
      return FALSE;
    }

  cairo_t *cr = cairo_create (surface);
  if (cairo_surface_get_type (surface) == CAIRO_SURFACE_TYPE_IMAGE)
    cairo_scale (cr, scale, scale);
  draw (cr, user_data);
  status = cairo_status (cr);
  cairo_destroy (cr);
  if (status == CAIRO_STATUS_SUCCESS && cairo_surface_get_type (surface) == CAIRO_SURFACE_TYPE_IMAGE)
    status = cairo_surface_write_to_png_stream (surface, append_bytes, bytes);
  cairo_surface_finish (surface);
  if (status == CAIRO_STATUS_SUCCESS)
    status = cairo_surface_status (surface);
  cairo_surface_destroy (surface);
  if (status != CAIRO_STATUS_SUCCESS)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: drawing failed: %s", path, cairo_status_to_string (status));
      return FALSE;
    }
  return gb_file_write_atomic (path, bytes->data, bytes->len, TRUE, error);
}

typedef struct
{
  const GbHeatmap *heatmap;
  GbHeatmapLayout  layout;
} HeatmapFigure;

static void
draw_heatmap_figure (cairo_t *cr,
                     gpointer user_data)
{
  HeatmapFigure *f = user_data;
  gb_heatmap_draw (cr, f->heatmap, &f->layout);
}

gboolean
gb_heatmap_export (const GbHeatmap *heatmap,
                   const char      *path,
                   double           scale,
                   GError         **error)
{
  HeatmapFigure f = { heatmap };

  gb_heatmap_layout (heatmap, &f.layout);
  return gb_figure_export (path, f.layout.width, f.layout.height, scale, draw_heatmap_figure, &f, error);
}

/* ---- The interactive view ---- */

double
gb_heatmap_label_extent (const GbHeatmap *h,
                         double           font_px)
{
  cairo_surface_t *scratch = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create (scratch);
  double widest = 0;

  for (guint i = 0; i < h->n; i++)
    widest = MAX (widest, text_width (cr, h->labels[i], font_px, FALSE));
  cairo_destroy (cr);
  cairo_surface_destroy (scratch);
  return ceil (MIN (widest, 120.0)) + 8;
}

void
gb_heatmap_view_viewport (GbHeatmapView *v)
{
  v->vx = 4 + v->label_extent;
  v->vy = 4;
  v->vw = MAX (1, v->width - v->vx - GB_VIEW_LEGEND_W);
  v->vh = MAX (1, v->height - v->vy - v->label_extent - 4);
}

void
gb_heatmap_view_clamp (const GbHeatmap *h,
                       GbHeatmapView   *v)
{
  const double gw = h->n * v->cell;

  gb_heatmap_view_viewport (v);
  v->pan_x = gw <= v->vw ? 0 : CLAMP (v->pan_x, 0, gw - v->vw);
  v->pan_y = gw <= v->vh ? 0 : CLAMP (v->pan_y, 0, gw - v->vh);
}

gboolean
gb_heatmap_view_hit (const GbHeatmap     *h,
                     const GbHeatmapView *v,
                     double               x,
                     double               y,
                     guint               *i,
                     guint               *j)
{
  const double gx = x - v->vx + v->pan_x, gy = y - v->vy + v->pan_y;

  if (h->n == 0 || x < v->vx || y < v->vy || x >= v->vx + v->vw || y >= v->vy + v->vh || gx < 0 || gy < 0)
    return FALSE;
  if (gx >= h->n * v->cell || gy >= h->n * v->cell)
    return FALSE;
  *i = MIN (h->n - 1, (guint) (gy / v->cell));
  *j = MIN (h->n - 1, (guint) (gx / v->cell));
  return TRUE;
}

static void
draw_crosshair (cairo_t             *cr,
                const GbHeatmap     *h,
                const GbHeatmapView *v,
                double               x0,
                double               y0,
                int                  i,
                int                  j,
                gboolean             pinned)
{
  const double c = v->cell, g = h->n * c;

  if (i < 0 || j < 0)
    return;
  /* Row and column bands, then the cell, in a colour that reads on both
   * ends of viridis. */
  cairo_set_line_width (cr, pinned ? 2 : 1);
  if (pinned)
    {
      cairo_set_source_rgba (cr, 1, 1, 1, 0.85);
      cairo_rectangle (cr, x0, y0 + i * c, g, c);
      cairo_rectangle (cr, x0 + j * c, y0, c, g);
      cairo_stroke (cr);
    }
  cairo_set_source_rgb (cr, 1, 0.33, 0.2);
  cairo_rectangle (cr, x0 + j * c, y0 + i * c, c, c);
  cairo_stroke (cr);
}

/* The hatching of gb_heatmap_draw_na() for the interactive view, where it
 * was 80% of a frame (a staircase clip mask, then hundreds of antialiased
 * strokes through it): one fill of the staircase with a repeating tile made
 * at the device's resolution. The flat not-applicable colour is already in
 * the cell bitmap. Exports keep the vector version. */
static void
draw_na_hatch (cairo_t               *cr,
               const GbHeatmapColors *colors,
               guint                  n,
               double                 x,
               double                 y,
               double                 cell)
{
  double x1, y1, x2, y2, dx = 1, dy = 0;

  if (n < 2)
    return;
  cairo_clip_extents (cr, &x1, &y1, &x2, &y2);
  const double first = floor ((y1 - y) / cell), last = floor ((y2 - y) / cell);
  if (last < 0 || first > n - 2)
    return;
  cairo_user_to_device_distance (cr, &dx, &dy);
  const int px = MAX (2, (int) lround (HATCH_STEP * hypot (dx, dy)));
  cairo_surface_t *tile = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, px, px);
  cairo_t *t = cairo_create (tile);
  cairo_scale (t, px / HATCH_STEP, px / HATCH_STEP);
  set_rgb (t, colors->hatch);
  cairo_set_line_width (t, 1.0);
  for (int k = -1; k <= 1; k++)
    {
      cairo_move_to (t, k * HATCH_STEP, HATCH_STEP);
      cairo_line_to (t, (k + 1) * HATCH_STEP, 0);
    }
  cairo_stroke (t);
  cairo_destroy (t);
  cairo_pattern_t *hatch = cairo_pattern_create_for_surface (tile);
  cairo_surface_destroy (tile);
  cairo_pattern_set_extend (hatch, CAIRO_EXTEND_REPEAT);
  /* Anchored to the grid's corner, so it does not crawl while panning, at a
   * whole device pixel: a fractional pan would blur a filtered tile. */
  double ax = x, ay = y;
  cairo_user_to_device (cr, &ax, &ay);
  ax = round (ax), ay = round (ay);
  cairo_device_to_user (cr, &ax, &ay);
  cairo_pattern_set_filter (hatch, CAIRO_FILTER_NEAREST);
  cairo_matrix_t m;
  cairo_matrix_init_scale (&m, px / HATCH_STEP, px / HATCH_STEP);
  cairo_matrix_translate (&m, -ax, -ay);
  cairo_pattern_set_matrix (hatch, &m);

  cairo_save (cr);
  upper_triangle_path (cr, n, x, y, cell, (guint) MAX (first, 0), (guint) MIN (last, n - 2));
  cairo_set_source (cr, hatch);
  cairo_set_antialias (cr, CAIRO_ANTIALIAS_NONE);
  cairo_fill (cr);
  cairo_restore (cr);
  cairo_pattern_destroy (hatch);
}


void
gb_heatmap_draw_view (cairo_t             *cr,
                      const GbHeatmap     *h,
                      cairo_surface_t     *cells,
                      const GbHeatmapView *v)
{
  GbHeatmapColors colors;
  const double c = v->cell, x0 = v->vx - v->pan_x, y0 = v->vy - v->pan_y;
  const double gw = h->n * c;

  gb_heatmap_colors (h->dark, &colors);
  if (h->n == 0)
    return;

  /* Cells: the cached one-pixel-per-token bitmap, scaled with nearest. */
  cairo_save (cr);
  cairo_rectangle (cr, v->vx, v->vy, MIN (v->vw, gw), MIN (v->vh, gw));
  cairo_clip (cr);
  cairo_save (cr);
  cairo_translate (cr, x0, y0);
  cairo_scale (cr, c, c);
  cairo_set_source_surface (cr, cells, 0, 0);
  cairo_pattern_set_filter (cairo_get_source (cr), CAIRO_FILTER_NEAREST);
  cairo_paint (cr);
  cairo_restore (cr);
  if (h->causal && c >= 3)
    draw_na_hatch (cr, &colors, h->n, x0, y0, c);
  draw_crosshair (cr, h, v, x0, y0, v->hover_i, v->hover_j, FALSE);
  draw_crosshair (cr, h, v, x0, y0, v->pin_i, v->pin_j, TRUE);
  cairo_restore (cr);

  /* Labels of the visible tokens, thinned to what fits. */
  const guint step = gb_heatmap_label_step (c, GB_VIEW_LABEL_PX);
  if (step < h->n || h->n == 1)
    {
      const guint first_j = (guint) MAX (0, floor (v->pan_x / c)), last_j = (guint) MIN (h->n - 1, (v->pan_x + v->vw) / c);
      const guint first_i = (guint) MAX (0, floor (v->pan_y / c)), last_i = (guint) MIN (h->n - 1, (v->pan_y + v->vh) / c);
      cairo_save (cr);
      cairo_rectangle (cr, v->vx, v->vy + MIN (v->vh, gw), MIN (v->vw, gw), v->label_extent + 4);
      cairo_clip (cr);
      gb_heatmap_draw_key_labels (cr, h, &colors, x0, v->vy + MIN (v->vh, gw), c, first_j, last_j, step,
                                  GB_VIEW_LABEL_PX, v->label_extent - 8);
      cairo_restore (cr);
      cairo_save (cr);
      cairo_rectangle (cr, 0, v->vy, v->vx, MIN (v->vh, gw));
      cairo_clip (cr);
      gb_heatmap_draw_query_labels (cr, h, &colors, y0, v->vx, c, first_i, last_i, step, GB_VIEW_LABEL_PX,
                                    v->label_extent - 8);
      cairo_restore (cr);
    }

  gb_heatmap_draw_legend (cr, &colors, h->norm, v->vx + MIN (v->vw, gw) + 14, v->vy,
                          CLAMP (MIN (v->vh, gw), 80, 240));
}
