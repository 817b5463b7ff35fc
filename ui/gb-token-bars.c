/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-ui"

#include <adwaita.h>

#include "gb-colormap.h"
#include "gb-heatmap.h"
#include "gb-token-bars.h"

#define BAR_MIN 18.0
#define LABEL_ROOM 90.0

struct _GbTokenBars
{
  GtkWidget parent_instance;

  /* Owned */
  float *weights;
  GStrv  labels;
  guint  n;
  guint  query;
  char  *caption;
};

G_DEFINE_FINAL_TYPE (GbTokenBars, gb_token_bars, GTK_TYPE_WIDGET)

static void
draw (GbTokenBars *self,
      cairo_t     *cr,
      double       width,
      double       height)
{
  GbHeatmapColors colors;
  const double top = 36, bottom = height - LABEL_ROOM, left = 44;
  const double slot = MAX (BAR_MIN, (width - left - 12) / MAX (self->n, 1));
  float max = 0;

  gb_heatmap_colors (adw_style_manager_get_dark (adw_style_manager_get_default ()), &colors);
  cairo_set_source_rgb (cr, colors.fg[0], colors.fg[1], colors.fg[2]);
  g_autoptr (PangoLayout) cap = gb_heatmap_create_layout (cr, self->caption, 13, TRUE);
  cairo_move_to (cr, left, 8);
  pango_cairo_show_layout (cr, cap);
  for (guint j = 0; j < self->n; j++)
    max = MAX (max, self->weights[j]);
  /* Axis with 0 and the row's maximum. */
  cairo_set_line_width (cr, 1);
  cairo_move_to (cr, left - 0.5, top);
  cairo_line_to (cr, left - 0.5, bottom + 0.5);
  cairo_line_to (cr, left + slot * self->n, bottom + 0.5);
  cairo_stroke (cr);
  g_autofree char *max_text = g_strdup_printf ("%.3f", max);
  g_autoptr (PangoLayout) ml = gb_heatmap_create_layout (cr, max_text, 10, FALSE);
  cairo_move_to (cr, 4, top - 6);
  pango_cairo_show_layout (cr, ml);
  for (guint j = 0; j < self->n; j++)
    {
      const double x = left + j * slot, v = max > 0 ? self->weights[j] / max : 0;
      const guint8 *rgb = gb_viridis (v); /* scaled like the height: the row maximum is yellow */
      if (j <= self->query)
        {
          cairo_set_source_rgb (cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
          cairo_rectangle (cr, x + 2, bottom - v * (bottom - top), slot - 4, v * (bottom - top));
          cairo_fill (cr);
        }
      cairo_set_source_rgb (cr, colors.fg[0], colors.fg[1], colors.fg[2]);
      cairo_save (cr);
      cairo_translate (cr, x + slot / 2, bottom + 4);
      cairo_rotate (cr, G_PI / 2);
      g_autoptr (PangoLayout) l = gb_heatmap_create_layout (cr, self->labels[j], 11, j == self->query);
      pango_layout_set_width (l, (int) ((LABEL_ROOM - 8) * PANGO_SCALE));
      pango_layout_set_ellipsize (l, PANGO_ELLIPSIZE_END);
      int lw, lh;
      pango_layout_get_pixel_size (l, &lw, &lh);
      cairo_move_to (cr, 0, -lh / 2.0);
      if (j > self->query)
        cairo_set_source_rgba (cr, colors.fg[0], colors.fg[1], colors.fg[2], 0.4);
      pango_cairo_show_layout (cr, l);
      cairo_restore (cr);
    }
}

static void
gb_token_bars_snapshot (GtkWidget   *widget,
                        GtkSnapshot *snapshot)
{
  GbTokenBars *self = GB_TOKEN_BARS (widget);
  const int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);

  if (self->n == 0)
    return;
  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, w, h));
  draw (self, cr, w, h);
  cairo_destroy (cr);
}

static void
gb_token_bars_measure (GtkWidget      *widget,
                       GtkOrientation  orientation,
                       int             for_size,
                       int            *minimum,
                       int            *natural,
                       int            *minimum_baseline,
                       int            *natural_baseline)
{
  GbTokenBars *self = GB_TOKEN_BARS (widget);

  if (orientation == GTK_ORIENTATION_HORIZONTAL)
    *minimum = *natural = (int) (56 + self->n * BAR_MIN);
  else
    *minimum = *natural = 260;
}

static void
gb_token_bars_finalize (GObject *object)
{
  GbTokenBars *self = GB_TOKEN_BARS (object);

  g_free (self->weights);
  g_strfreev (self->labels);
  g_free (self->caption);
  G_OBJECT_CLASS (gb_token_bars_parent_class)->finalize (object);
}

static void
gb_token_bars_class_init (GbTokenBarsClass *klass)
{
  GTK_WIDGET_CLASS (klass)->snapshot = gb_token_bars_snapshot;
  GTK_WIDGET_CLASS (klass)->measure = gb_token_bars_measure;
  G_OBJECT_CLASS (klass)->finalize = gb_token_bars_finalize;
  gtk_widget_class_set_accessible_role (GTK_WIDGET_CLASS (klass), GTK_ACCESSIBLE_ROLE_IMG);
}

static void
gb_token_bars_init (GbTokenBars *self)
{
  self->labels = g_new0 (char *, 1);
  g_signal_connect_object (adw_style_manager_get_default (), "notify::dark", G_CALLBACK (gtk_widget_queue_draw), self,
                           G_CONNECT_SWAPPED);
}

void
gb_token_bars_set_row (GbTokenBars       *self,
                       guint              n,
                       const float       *weights,
                       const char *const *labels,
                       guint              query,
                       const char        *caption)
{
  g_return_if_fail (GB_IS_TOKEN_BARS (self));
  g_free (self->weights);
  g_strfreev (self->labels);
  g_free (self->caption);
  self->weights = g_memdup2 (weights, n * sizeof (float));
  self->labels = g_strdupv ((char **) labels);
  self->n = n;
  self->query = query;
  self->caption = g_strdup (caption);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL, caption, -1);
  gtk_widget_queue_resize (GTK_WIDGET (self));
}
