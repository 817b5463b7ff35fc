/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-ui"

#include <adwaita.h>
#include <math.h>

#include "gb-heatmap.h"
#include "gb-separation-chart.h"

#define TOP 22.0
#define BOTTOM 34.0
#define LEFT 34.0
#define MAX_BLOCKS 64

struct _GbSeparationChart
{
  GtkWidget parent_instance;

  /* Owned */
  guint   n;
  double  accuracy[MAX_BLOCKS];
  double  effect[MAX_BLOCKS];
  guint64 selection;
};

G_DEFINE_FINAL_TYPE (GbSeparationChart, gb_separation_chart, GTK_TYPE_WIDGET)

enum
{
  SELECTION_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static double
slot_width (GbSeparationChart *self,
            double             width)
{
  return (width - LEFT - 6) / MAX (self->n, 1);
}

static void
draw_axis (cairo_t               *cr,
           const GbHeatmapColors *c,
           double                 width,
           double                 bottom)
{
  cairo_set_line_width (cr, 1);
  for (int k = 0; k <= 2; k++)
    {
      /* Gridlines at accuracy 0.5 (chance), 0.75 and 1. */
      const double y = TOP + (bottom - TOP) * (1 - k / 2.0);
      cairo_set_source_rgba (cr, c->fg[0], c->fg[1], c->fg[2], k == 0 ? 0.5 : 0.15);
      cairo_move_to (cr, LEFT, floor (y) + 0.5);
      cairo_line_to (cr, width - 6, floor (y) + 0.5);
      cairo_stroke (cr);
      g_autofree char *tick = g_strdup_printf ("%.2g", 0.5 + k / 4.0);
      g_autoptr (PangoLayout) l = gb_heatmap_create_layout (cr, tick, 10, FALSE);
      cairo_move_to (cr, 4, y - 7);
      pango_cairo_show_layout (cr, l);
    }
}

static void
draw (GbSeparationChart *self,
      cairo_t           *cr,
      double             width,
      double             height)
{
  GbHeatmapColors c;
  const gboolean dark = adw_style_manager_get_dark (adw_style_manager_get_default ());
  const double bottom = height - BOTTOM, slot = slot_width (self, width);
  /* The accent blue, and a grey for blocks not chosen. */
  const double accent[3] = { dark ? 0.47 : 0.21, dark ? 0.68 : 0.52, dark ? 0.97 : 0.89 };

  gb_heatmap_colors (dark, &c);
  cairo_set_source_rgb (cr, c.fg[0], c.fg[1], c.fg[2]);
  g_autoptr (PangoLayout) cap = gb_heatmap_create_layout (cr, "Held-out accuracy per block (label: effect size)", 11, FALSE);
  cairo_move_to (cr, LEFT, 2);
  pango_cairo_show_layout (cr, cap);
  draw_axis (cr, &c, width, bottom);
  for (guint l = 0; l < self->n; l++)
    {
      const gboolean on = (self->selection >> l) & 1;
      const double x = LEFT + l * slot, a = self->accuracy[l];
      if (isfinite (a))
        {
          const double v = CLAMP ((a - 0.5) / 0.5, 0, 1), h = MAX (v * (bottom - TOP), 2);
          if (on)
            cairo_set_source_rgb (cr, accent[0], accent[1], accent[2]);
          else
            cairo_set_source_rgba (cr, c.fg[0], c.fg[1], c.fg[2], 0.3);
          cairo_rectangle (cr, x + 3, bottom - h, slot - 6, h);
          cairo_fill (cr);
          g_autofree char *eff = isfinite (self->effect[l]) ? g_strdup_printf ("%.1f", self->effect[l]) : g_strdup ("");
          g_autoptr (PangoLayout) el = gb_heatmap_create_layout (cr, eff, 9, FALSE);
          int lw, lh;
          pango_layout_get_pixel_size (el, &lw, &lh);
          cairo_set_source_rgb (cr, c.fg[0], c.fg[1], c.fg[2]);
          cairo_move_to (cr, x + (slot - lw) / 2, MAX (TOP - 2, bottom - h - lh - 1));
          pango_cairo_show_layout (cr, el);
        }
      if (on)
        {
          cairo_set_source_rgb (cr, accent[0], accent[1], accent[2]);
          cairo_rectangle (cr, x + 1.5, TOP - 4.5, slot - 3, bottom - TOP + 6);
          cairo_set_line_width (cr, 1);
          cairo_stroke (cr);
        }
      g_autofree char *label = g_strdup_printf ("%u", l);
      g_autoptr (PangoLayout) bl = gb_heatmap_create_layout (cr, label, 11, on);
      int lw, lh;
      pango_layout_get_pixel_size (bl, &lw, &lh);
      cairo_set_source_rgb (cr, c.fg[0], c.fg[1], c.fg[2]);
      cairo_move_to (cr, x + (slot - lw) / 2, bottom + 4);
      pango_cairo_show_layout (cr, bl);
    }
  g_autoptr (PangoLayout) axis = gb_heatmap_create_layout (cr, "block", 10, FALSE);
  cairo_set_source_rgba (cr, c.fg[0], c.fg[1], c.fg[2], 0.7);
  cairo_move_to (cr, 4, bottom + 4);
  pango_cairo_show_layout (cr, axis);
}

static void
pressed_cb (GtkGestureClick   *gesture,
            int                n_press,
            double             x,
            double             y,
            GbSeparationChart *self)
{
  const double slot = slot_width (self, gtk_widget_get_width (GTK_WIDGET (self)));
  if (self->n == 0 || x < LEFT)
    return;
  guint l = (guint) ((x - LEFT) / slot);
  if (l >= self->n)
    return;
  self->selection ^= G_GUINT64_CONSTANT (1) << l;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[SELECTION_CHANGED], 0);
}

static gboolean
query_tooltip_cb (GtkWidget         *widget,
                  int                x,
                  int                y,
                  gboolean           keyboard,
                  GtkTooltip        *tooltip,
                  GbSeparationChart *self)
{
  const double slot = slot_width (self, gtk_widget_get_width (widget));
  if (self->n == 0 || x < LEFT)
    return FALSE;
  guint l = (guint) ((x - LEFT) / slot);
  if (l >= self->n)
    return FALSE;
  g_autofree char *text = isfinite (self->accuracy[l])
    ? g_strdup_printf ("Block %u (blocks.%u.hook_resid_post)\nHeld-out accuracy %.0f%%, effect size %.2f\nClick to %s",
                       l, l, 100 * self->accuracy[l], self->effect[l],
                       (self->selection >> l) & 1 ? "stop steering here" : "steer here")
    : g_strdup_printf ("Block %u: train to score it", l);
  gtk_tooltip_set_text (tooltip, text);
  return TRUE;
}

static void
gb_separation_chart_snapshot (GtkWidget   *widget,
                              GtkSnapshot *snapshot)
{
  const int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, w, h));
  draw (GB_SEPARATION_CHART (widget), cr, w, h);
  cairo_destroy (cr);
}

static void
gb_separation_chart_measure (GtkWidget      *widget,
                             GtkOrientation  orientation,
                             int             for_size,
                             int            *minimum,
                             int            *natural,
                             int            *minimum_baseline,
                             int            *natural_baseline)
{
  GbSeparationChart *self = GB_SEPARATION_CHART (widget);
  if (orientation == GTK_ORIENTATION_HORIZONTAL)
    {
      *minimum = (int) (LEFT + 12 + 14 * MAX (self->n, 1));
      *natural = (int) (LEFT + 12 + 40 * MAX (self->n, 6));
    }
  else
    *minimum = *natural = 130;
}

static void
gb_separation_chart_class_init (GbSeparationChartClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  widget_class->snapshot = gb_separation_chart_snapshot;
  widget_class->measure = gb_separation_chart_measure;
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
  gtk_widget_class_set_css_name (widget_class, "separationchart");
  signals[SELECTION_CHANGED] = g_signal_new ("selection-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                             NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
gb_separation_chart_init (GbSeparationChart *self)
{
  GtkGesture *click = gtk_gesture_click_new ();
  g_signal_connect (click, "pressed", G_CALLBACK (pressed_cb), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (click));
  gtk_widget_set_has_tooltip (GTK_WIDGET (self), TRUE);
  g_signal_connect (self, "query-tooltip", G_CALLBACK (query_tooltip_cb), self);
  g_signal_connect_object (adw_style_manager_get_default (), "notify::dark", G_CALLBACK (gtk_widget_queue_draw), self,
                           G_CONNECT_SWAPPED);
}

GtkWidget *
gb_separation_chart_new (void)
{
  return g_object_new (GB_TYPE_SEPARATION_CHART, NULL);
}

void
gb_separation_chart_set_scores (GbSeparationChart *self,
                                guint              n_blocks,
                                const double      *accuracy,
                                const double      *effect)
{
  g_return_if_fail (GB_IS_SEPARATION_CHART (self));
  self->n = MIN (n_blocks, MAX_BLOCKS);
  for (guint l = 0; l < self->n; l++)
    {
      self->accuracy[l] = accuracy ? accuracy[l] : NAN;
      self->effect[l] = effect ? effect[l] : NAN;
    }
  gtk_widget_queue_resize (GTK_WIDGET (self));
}

void
gb_separation_chart_set_selection (GbSeparationChart *self,
                                   guint64            mask)
{
  g_return_if_fail (GB_IS_SEPARATION_CHART (self));
  if (self->selection == mask)
    return;
  self->selection = mask;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[SELECTION_CHANGED], 0);
}

guint64
gb_separation_chart_get_selection (GbSeparationChart *self)
{
  return self->selection;
}
