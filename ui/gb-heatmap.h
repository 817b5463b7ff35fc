/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* The attention heatmap, drawn with cairo and pango only (no GTK), so the
 * window, the command line and the tests share one renderer. */

#include <cairo.h>
#include <pango/pango.h>

G_BEGIN_DECLS

typedef enum
{
  GB_NORM_LINEAR,  /* weight on [0, 1] */
  GB_NORM_LOG,     /* log10 weight on [-4, 0] */
  GB_NORM_ROW_MAX, /* weight / max of its row */
} GbNorm;

const char *gb_norm_name (GbNorm norm);            /* "linear", "log", "row-max" */
gboolean    gb_norm_from_name (const char *name, GbNorm *norm);

typedef struct
{
  guint               n;        /* tokens: the grid is n x n */
  const float        *weights;  /* [n, n], rows = query, borrowed */
  const char *const  *labels;   /* [n] token strings for display, borrowed */
  const char         *title;    /* borrowed */
  const char         *subtitle; /* borrowed, may be NULL */
  gboolean            causal;   /* cells with key > query are "not applicable" */
  GbNorm              norm;
  gboolean            dark;     /* colours for a dark background */
} GbHeatmap;

/* Colours of the figure around the cells. */
typedef struct
{
  double bg[3], fg[3], na[3], hatch[3], grid[3];
} GbHeatmapColors;

void   gb_heatmap_colors (gboolean         dark,
                          GbHeatmapColors *colors);

/* Normalised value of cell (@i, @j) in [0, 1]; NaN when not applicable. */
double gb_heatmap_value (const GbHeatmap *heatmap,
                         guint            i,
                         guint            j);

/* One pixel per cell (ARGB32, n x n): viridis, and the "not applicable"
 * colour above the diagonal of a causal map. */
cairo_surface_t *gb_heatmap_cells_surface (const GbHeatmap *heatmap);

/* Draws the cells with cell (0, 0) at (@x, @y): the nearest-filtered cell
 * bitmap on image surfaces, one rectangle per cell on vector ones (up to
 * 200 tokens). */
void gb_heatmap_draw_cells (cairo_t         *cr,
                            const GbHeatmap *heatmap,
                            double           x,
                            double           y,
                            double           cell);

/* Hatches the upper triangle (key > query) of an n-token grid whose cell
 * (0, 0) starts at (@x, @y) with @cell-sized cells, within the clip. */
void gb_heatmap_draw_na (cairo_t               *cr,
                         const GbHeatmapColors *colors,
                         guint                  n,
                         double                 x,
                         double                 y,
                         double                 cell);

/* A pango layout for figure text, on a private font map with fixed
 * resolution and font options, so output does not depend on the caller's
 * toolkit settings. @size_px is the font size in user units. */
PangoLayout *gb_heatmap_create_layout (cairo_t    *cr,
                                       const char *text,
                                       double      size_px,
                                       gboolean    bold);

/* Draws the vertical colour legend with its ticks in the box (@x, @y,
 * @height); returns the width it used. */
double gb_heatmap_draw_legend (cairo_t               *cr,
                               const GbHeatmapColors *colors,
                               GbNorm                 norm,
                               double                 x,
                               double                 y,
                               double                 height);

/* Every how many tokens a label fits for cells of @cell units and labels of
 * @font_px (1 = every token). */
guint gb_heatmap_label_step (double cell,
                             double font_px);

/* Key labels (rotated, below the grid) or query labels (right-aligned, left
 * of the grid). Only tokens in [@first, @last] and every @step-th are drawn;
 * @origin is the grid's left (keys) or top (queries) edge, @edge the
 * grid's bottom (keys) or left (queries) edge. @max_extent ellipsizes long
 * labels. */
void gb_heatmap_draw_key_labels (cairo_t               *cr,
                                 const GbHeatmap       *heatmap,
                                 const GbHeatmapColors *colors,
                                 double                 origin,
                                 double                 edge,
                                 double                 cell,
                                 guint                  first,
                                 guint                  last,
                                 guint                  step,
                                 double                 font_px,
                                 double                 max_extent);
void gb_heatmap_draw_query_labels (cairo_t               *cr,
                                   const GbHeatmap       *heatmap,
                                   const GbHeatmapColors *colors,
                                   double                 origin,
                                   double                 edge,
                                   double                 cell,
                                   guint                  first,
                                   guint                  last,
                                   guint                  step,
                                   double                 font_px,
                                   double                 max_extent);

/* Where the figure puts things, in user units (1 = one pixel at scale 1). */
typedef struct
{
  double width, height;
  double cell;
  double grid_x, grid_y;  /* top-left of cell (0, 0) */
  double label_px;
  double label_extent;    /* room for tick labels */
  double legend_x;
} GbHeatmapLayout;

void gb_heatmap_layout (const GbHeatmap *heatmap,
                        GbHeatmapLayout *layout);
/* Draws the whole figure: title, axis titles, tick labels, cells, hatched
 * upper triangle, legend. */
void gb_heatmap_draw (cairo_t               *cr,
                      const GbHeatmap       *heatmap,
                      const GbHeatmapLayout *layout);

/* Writes any figure to @path; the format follows the extension (.png, .svg,
 * .pdf). PNG is drawn at @scale device pixels per unit (1, 2, 4...). The
 * file is written atomically. */
typedef void (*GbFigureDrawFunc) (cairo_t *cr, gpointer user_data);
gboolean gb_figure_export (const char        *path,
                           double             width,
                           double             height,
                           double             scale,
                           GbFigureDrawFunc   draw,
                           gpointer           user_data,
                           GError           **error);

gboolean gb_heatmap_export (const GbHeatmap *heatmap,
                            const char      *path,
                            double           scale,
                            GError         **error);

G_END_DECLS

G_BEGIN_DECLS

/* An interactive view of the heatmap (the window's grid): zoomed and panned
 * cells, labels at screen resolution for the visible tokens, the legend and
 * the hover/pinned crosshair. Pure cairo, so the benchmark can time it. */
typedef struct
{
  double width, height;  /* the widget */
  double label_extent;   /* room for tick labels (gb_heatmap_label_extent) */
  double cell;           /* pixels per token */
  double pan_x, pan_y;   /* grid pixels at the viewport's top-left */
  int    hover_i, hover_j; /* -1: none */
  int    pin_i, pin_j;     /* -1: none */
  /* Filled by gb_heatmap_view_viewport(). */
  double vx, vy, vw, vh;
} GbHeatmapView;

#define GB_VIEW_LABEL_PX 11.0
#define GB_VIEW_LEGEND_W 76.0

/* The widest tick label (capped at 120) plus spacing. */
double   gb_heatmap_label_extent (const GbHeatmap *heatmap,
                                  double           font_px);
void     gb_heatmap_view_viewport (GbHeatmapView *view);
/* Keeps the grid on screen: no panning past its edges. */
void     gb_heatmap_view_clamp (const GbHeatmap *heatmap,
                                GbHeatmapView   *view);
/* The cell under widget point (@x, @y), if any. */
gboolean gb_heatmap_view_hit (const GbHeatmap     *heatmap,
                              const GbHeatmapView *view,
                              double               x,
                              double               y,
                              guint               *i,
                              guint               *j);
/* @cells comes from gb_heatmap_cells_surface() and is cached by the caller. */
void     gb_heatmap_draw_view (cairo_t             *cr,
                               const GbHeatmap     *heatmap,
                               cairo_surface_t     *cells,
                               const GbHeatmapView *view);

G_END_DECLS
