/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-ui"

#include <adwaita.h>
#include <math.h>

#include <glib/gi18n.h>

#include "gb-attention-grid.h"

#define MAX_CELL 96.0
#define ACTUAL_CELL 16.0 /* one label line per token */
#define DRAG_THRESHOLD 4.0

struct _GbAttentionGrid
{
  GtkWidget parent_instance;

  /* Owned */
  float           *weights;
  GStrv            labels;
  cairo_surface_t *cells;       /* cache: one pixel per cell, dropped on data/norm/style change */
  GbHeatmap        heatmap;
  GbHeatmapView    view;
  gboolean         fit;         /* re-fit on resize until the user zooms */
  double           zoom_start;  /* cell size when a pinch began */
  double           drag_pan_x, drag_pan_y;
  gboolean         dragged;
  double           pointer_x, pointer_y;
  GbAttentionGridTooltipFunc tooltip_func;
  gpointer         tooltip_data;
};

G_DEFINE_FINAL_TYPE (GbAttentionGrid, gb_attention_grid, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_NORM,
  PROP_ZOOM,
  N_PROPS
};

enum
{
  PINNED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* ---- Helpers ---- */

static void
drop_cache (GbAttentionGrid *self)
{
  g_clear_pointer (&self->cells, cairo_surface_destroy);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
sync_view_size (GbAttentionGrid *self)
{
  self->view.width = gtk_widget_get_width (GTK_WIDGET (self));
  self->view.height = gtk_widget_get_height (GTK_WIDGET (self));
  gb_heatmap_view_viewport (&self->view);
}

static double
fit_cell (GbAttentionGrid *self)
{
  sync_view_size (self);
  return self->heatmap.n ? MAX (0.05, MIN (self->view.vw, self->view.vh) / self->heatmap.n) : 1;
}

static void
set_cell (GbAttentionGrid *self,
          double           cell)
{
  cell = CLAMP (cell, MIN (fit_cell (self), 1.0) * 0.5, MAX_CELL);
  if (cell == self->view.cell)
    return;
  self->view.cell = cell;
  gb_heatmap_view_clamp (&self->heatmap, &self->view);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
}

static void
update_accessible (GbAttentionGrid *self)
{
  g_autofree char *text = NULL;

  if (self->view.pin_i >= 0)
    text = g_strdup_printf (_("Pinned: query %d “%s”, key %d “%s”, weight %.4f"), self->view.pin_i,
                            self->labels[self->view.pin_i], self->view.pin_j, self->labels[self->view.pin_j],
                            self->weights[(gsize) self->view.pin_i * self->heatmap.n + self->view.pin_j]);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                  text ? text : _("Arrow keys move a crosshair over the cells; Escape releases it."), -1);
}

/* Scrolls so that cell (i, j) is visible. */
static void
reveal_cell (GbAttentionGrid *self,
             int              i,
             int              j)
{
  GbHeatmapView *v = &self->view;

  if (j * v->cell < v->pan_x)
    v->pan_x = j * v->cell;
  if ((j + 1) * v->cell > v->pan_x + v->vw)
    v->pan_x = (j + 1) * v->cell - v->vw;
  if (i * v->cell < v->pan_y)
    v->pan_y = i * v->cell;
  if ((i + 1) * v->cell > v->pan_y + v->vh)
    v->pan_y = (i + 1) * v->cell - v->vh;
  gb_heatmap_view_clamp (&self->heatmap, v);
}

/* ---- Callbacks ---- */

static gboolean
scroll_cb (GbAttentionGrid          *self,
           double                    dx,
           double                    dy,
           GtkEventControllerScroll *scroll)
{
  GdkModifierType mods = gtk_event_controller_get_current_event_state (GTK_EVENT_CONTROLLER (scroll));
  const gboolean discrete =
    gdk_device_get_source (gtk_event_controller_get_current_event_device (GTK_EVENT_CONTROLLER (scroll))) ==
    GDK_SOURCE_MOUSE;
  /* Scroll events carry no position: zoom towards the last pointer position. */
  const double x = self->pointer_x, y = self->pointer_y;

  if (mods & GDK_CONTROL_MASK)
    {
      gb_attention_grid_zoom_at (self, pow (1.1, -dy), x, y);
      return TRUE;
    }
  if (mods & GDK_SHIFT_MASK)
    dx = dy, dy = 0;
  self->view.pan_x += dx * (discrete ? 48 : 1);
  self->view.pan_y += dy * (discrete ? 48 : 1);
  gb_heatmap_view_clamp (&self->heatmap, &self->view);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  return TRUE;
}

static void
zoom_begin_cb (GbAttentionGrid *self,
               GdkEventSequence *sequence,
               GtkGestureZoom  *gesture)
{
  self->zoom_start = self->view.cell;
}

static void
zoom_changed_cb (GbAttentionGrid *self,
                 double           scale,
                 GtkGestureZoom  *gesture)
{
  double x, y;

  gtk_gesture_get_bounding_box_center (GTK_GESTURE (gesture), &x, &y);
  gb_attention_grid_zoom_at (self, self->zoom_start * scale / self->view.cell, x, y);
}

static void
drag_begin_cb (GbAttentionGrid *self,
               double           x,
               double           y,
               GtkGestureDrag  *drag)
{
  self->drag_pan_x = self->view.pan_x;
  self->drag_pan_y = self->view.pan_y;
  self->dragged = FALSE;
}

static void
drag_update_cb (GbAttentionGrid *self,
                double           dx,
                double           dy,
                GtkGestureDrag  *drag)
{
  if (!self->dragged && hypot (dx, dy) < DRAG_THRESHOLD)
    return;
  self->dragged = TRUE;
  self->view.pan_x = self->drag_pan_x - dx;
  self->view.pan_y = self->drag_pan_y - dy;
  gb_heatmap_view_clamp (&self->heatmap, &self->view);
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "grabbing");
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
drag_end_cb (GbAttentionGrid *self,
             double           dx,
             double           dy,
             GtkGestureDrag  *drag)
{
  double x, y;
  guint i, j;

  gtk_widget_set_cursor (GTK_WIDGET (self), NULL);
  if (self->dragged)
    return;
  /* A click: pin the crosshair, or release it when clicking the pinned cell. */
  gtk_gesture_drag_get_start_point (drag, &x, &y);
  gtk_widget_grab_focus (GTK_WIDGET (self));
  if (!gb_heatmap_view_hit (&self->heatmap, &self->view, x, y, &i, &j))
    return;
  if (self->view.pin_i == (int) i && self->view.pin_j == (int) j)
    gb_attention_grid_set_pinned (self, -1, -1);
  else
    gb_attention_grid_set_pinned (self, (int) i, (int) j);
}

static void
motion_cb (GbAttentionGrid          *self,
           double                    x,
           double                    y,
           GtkEventControllerMotion *motion)
{
  guint i, j;
  int hi = -1, hj = -1;

  self->pointer_x = x;
  self->pointer_y = y;

  if (gb_heatmap_view_hit (&self->heatmap, &self->view, x, y, &i, &j))
    hi = (int) i, hj = (int) j;
  if (hi == self->view.hover_i && hj == self->view.hover_j)
    return;
  self->view.hover_i = hi;
  self->view.hover_j = hj;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
leave_cb (GbAttentionGrid          *self,
          GtkEventControllerMotion *motion)
{
  self->view.hover_i = self->view.hover_j = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static gboolean
key_pressed_cb (GbAttentionGrid       *self,
                guint                  keyval,
                guint                  keycode,
                GdkModifierType        state,
                GtkEventControllerKey *key)
{
  int i = MAX (self->view.pin_i, 0), j = MAX (self->view.pin_j, 0);
  const int last = (int) self->heatmap.n - 1;

  if (self->heatmap.n == 0)
    return FALSE;
  switch (keyval)
    {
    case GDK_KEY_Escape:
      if (self->view.pin_i < 0)
        return FALSE;
      gb_attention_grid_set_pinned (self, -1, -1);
      return TRUE;
    case GDK_KEY_Left: j--; break;
    case GDK_KEY_Right: j++; break;
    case GDK_KEY_Up: i--; break;
    case GDK_KEY_Down: i++; break;
    case GDK_KEY_Home: j = 0; break;
    case GDK_KEY_End: j = i; break;
    default:
      return FALSE;
    }
  if (self->view.pin_i < 0)
    i = j = 0;
  gb_attention_grid_set_pinned (self, CLAMP (i, 0, last), CLAMP (j, 0, last));
  return TRUE;
}

static void
dark_changed_cb (GbAttentionGrid *self)
{
  self->heatmap.dark = adw_style_manager_get_dark (adw_style_manager_get_default ());
  drop_cache (self);
}

static void
zoom_action (GtkWidget  *widget,
             const char *action,
             GVariant   *param)
{
  GbAttentionGrid *self = GB_ATTENTION_GRID (widget);

  if (g_str_equal (action, "grid.zoom-in"))
    gb_attention_grid_zoom_at (self, 1.25, self->view.vx + self->view.vw / 2, self->view.vy + self->view.vh / 2);
  else if (g_str_equal (action, "grid.zoom-out"))
    gb_attention_grid_zoom_at (self, 0.8, self->view.vx + self->view.vw / 2, self->view.vy + self->view.vh / 2);
  else if (g_str_equal (action, "grid.fit"))
    gb_attention_grid_fit (self);
  else
    gb_attention_grid_actual_size (self);
}

/* ---- Overrides ---- */

static void
gb_attention_grid_measure (GtkWidget      *widget,
                           GtkOrientation  orientation,
                           int             for_size,
                           int            *minimum,
                           int            *natural,
                           int            *minimum_baseline,
                           int            *natural_baseline)
{
  *minimum = 200;
  *natural = 640;
}

static void
gb_attention_grid_size_allocate (GtkWidget *widget,
                                 int        width,
                                 int        height,
                                 int        baseline)
{
  GbAttentionGrid *self = GB_ATTENTION_GRID (widget);

  sync_view_size (self);
  if (self->fit)
    self->view.cell = fit_cell (self);
  gb_heatmap_view_clamp (&self->heatmap, &self->view);
}

static void
gb_attention_grid_snapshot (GtkWidget   *widget,
                            GtkSnapshot *snapshot)
{
  GbAttentionGrid *self = GB_ATTENTION_GRID (widget);
  const int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);

  if (self->heatmap.n == 0)
    return;
  if (self->cells == NULL)
    self->cells = gb_heatmap_cells_surface (&self->heatmap);
  sync_view_size (self);
  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, w, h));
  gb_heatmap_draw_view (cr, &self->heatmap, self->cells, &self->view);
  cairo_destroy (cr);
}

static gboolean
gb_attention_grid_query_tooltip (GtkWidget  *widget,
                                 int         x,
                                 int         y,
                                 gboolean    keyboard,
                                 GtkTooltip *tooltip)
{
  GbAttentionGrid *self = GB_ATTENTION_GRID (widget);
  guint i, j;

  if (keyboard && self->view.pin_i >= 0)
    i = (guint) self->view.pin_i, j = (guint) self->view.pin_j;
  else if (!gb_heatmap_view_hit (&self->heatmap, &self->view, x, y, &i, &j))
    return FALSE;
  if (self->heatmap.causal && j > i)
    {
      g_autofree char *text = g_markup_printf_escaped (_("Query %u “%s” cannot attend to the later key %u “%s”"), i,
                                                       self->labels[i], j, self->labels[j]);
      gtk_tooltip_set_markup (tooltip, text);
      return TRUE;
    }
  g_autofree char *extra = self->tooltip_func ? self->tooltip_func (i, j, self->tooltip_data) : NULL;
  g_autofree char *text = g_markup_printf_escaped (
    _("<b>Query</b> %u “%s”  →  <b>key</b> %u “%s”\n<b>Weight</b> %.4f  (colour value %.3f, %s)%s%s"), i,
    self->labels[i], j, self->labels[j], self->weights[(gsize) i * self->heatmap.n + j],
    gb_heatmap_value (&self->heatmap, i, j), gb_norm_name (self->heatmap.norm), extra ? "\n" : "", extra ? extra : "");
  gtk_tooltip_set_markup (tooltip, text);
  return TRUE;
}

static void
gb_attention_grid_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  GbAttentionGrid *self = GB_ATTENTION_GRID (object);

  switch (prop_id)
    {
    case PROP_NORM:
      g_value_set_int (value, self->heatmap.norm);
      break;
    case PROP_ZOOM:
      g_value_set_double (value, self->view.cell);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gb_attention_grid_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  GbAttentionGrid *self = GB_ATTENTION_GRID (object);

  switch (prop_id)
    {
    case PROP_NORM:
      gb_attention_grid_set_norm (self, g_value_get_int (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gb_attention_grid_dispose (GObject *object)
{
  GbAttentionGrid *self = GB_ATTENTION_GRID (object);

  g_signal_handlers_disconnect_by_data (adw_style_manager_get_default (), self);
  G_OBJECT_CLASS (gb_attention_grid_parent_class)->dispose (object);
}

static void
gb_attention_grid_finalize (GObject *object)
{
  GbAttentionGrid *self = GB_ATTENTION_GRID (object);

  g_clear_pointer (&self->cells, cairo_surface_destroy);
  g_free (self->weights);
  g_strfreev (self->labels);
  G_OBJECT_CLASS (gb_attention_grid_parent_class)->finalize (object);
}

static void
gb_attention_grid_class_init (GbAttentionGridClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->get_property = gb_attention_grid_get_property;
  object_class->set_property = gb_attention_grid_set_property;
  object_class->dispose = gb_attention_grid_dispose;
  object_class->finalize = gb_attention_grid_finalize;
  widget_class->measure = gb_attention_grid_measure;
  widget_class->size_allocate = gb_attention_grid_size_allocate;
  widget_class->snapshot = gb_attention_grid_snapshot;
  widget_class->query_tooltip = gb_attention_grid_query_tooltip;

  properties[PROP_NORM] = g_param_spec_int ("norm", NULL, NULL, GB_NORM_LINEAR, GB_NORM_ROW_MAX, GB_NORM_LINEAR,
                                            G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_ZOOM] = g_param_spec_double ("zoom", NULL, NULL, 0, MAX_CELL, 1,
                                               G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* (query, key), both -1 when released. */
  signals[PINNED] = g_signal_new ("pinned", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                  G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_INT);

  gtk_widget_class_install_action (widget_class, "grid.zoom-in", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "grid.zoom-out", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "grid.fit", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "grid.actual-size", NULL, zoom_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_plus, 0, "grid.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_equal, 0, "grid.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_minus, 0, "grid.zoom-out", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_0, 0, "grid.fit", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_1, 0, "grid.actual-size", NULL);

  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
  gtk_widget_class_set_css_name (widget_class, "attentiongrid");
}

static void
gb_attention_grid_init (GbAttentionGrid *self)
{
  GtkWidget *widget = GTK_WIDGET (self);
  GtkEventController *scroll = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);
  GtkGesture *zoom = gtk_gesture_zoom_new ();
  GtkGesture *drag = gtk_gesture_drag_new ();
  GtkEventController *motion = gtk_event_controller_motion_new ();
  GtkEventController *key = gtk_event_controller_key_new ();

  self->view.hover_i = self->view.hover_j = self->view.pin_i = self->view.pin_j = -1;
  self->view.cell = 1;
  self->fit = TRUE;
  self->labels = g_new0 (char *, 1);
  self->heatmap.causal = TRUE;
  self->heatmap.dark = adw_style_manager_get_dark (adw_style_manager_get_default ());
  g_signal_connect_object (adw_style_manager_get_default (), "notify::dark", G_CALLBACK (dark_changed_cb), self,
                           G_CONNECT_SWAPPED);

  g_signal_connect_swapped (scroll, "scroll", G_CALLBACK (scroll_cb), self);
  g_signal_connect_swapped (zoom, "begin", G_CALLBACK (zoom_begin_cb), self);
  g_signal_connect_swapped (zoom, "scale-changed", G_CALLBACK (zoom_changed_cb), self);
  g_signal_connect_swapped (drag, "drag-begin", G_CALLBACK (drag_begin_cb), self);
  g_signal_connect_swapped (drag, "drag-update", G_CALLBACK (drag_update_cb), self);
  g_signal_connect_swapped (drag, "drag-end", G_CALLBACK (drag_end_cb), self);
  g_signal_connect_swapped (motion, "motion", G_CALLBACK (motion_cb), self);
  g_signal_connect_swapped (motion, "leave", G_CALLBACK (leave_cb), self);
  g_signal_connect_swapped (key, "key-pressed", G_CALLBACK (key_pressed_cb), self);
  gtk_widget_add_controller (widget, scroll);
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (zoom));
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (drag));
  gtk_widget_add_controller (widget, motion);
  gtk_widget_add_controller (widget, key);

  gtk_widget_set_focusable (widget, TRUE);
  gtk_widget_set_has_tooltip (widget, TRUE);
  gtk_widget_set_overflow (widget, GTK_OVERFLOW_HIDDEN);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Attention heatmap"), -1);
  update_accessible (self);
}

/* ---- Public API ---- */

GtkWidget *
gb_attention_grid_new (void)
{
  return g_object_new (GB_TYPE_ATTENTION_GRID, NULL);
}

void
gb_attention_grid_set_data (GbAttentionGrid   *self,
                            guint              n,
                            const float       *weights,
                            const char *const *labels,
                            const char        *description)
{
  g_return_if_fail (GB_IS_ATTENTION_GRID (self));
  const gboolean same_size = n == self->heatmap.n;

  g_free (self->weights);
  g_strfreev (self->labels);
  self->weights = g_memdup2 (weights, (gsize) n * n * sizeof (float));
  self->labels = g_strdupv ((char **) labels);
  self->heatmap.n = n;
  self->heatmap.weights = self->weights;
  self->heatmap.labels = (const char *const *) self->labels;
  self->view.label_extent = gb_heatmap_label_extent (&self->heatmap, GB_VIEW_LABEL_PX);
  /* Switching heads keeps zoom, pan and the pinned cell; a new text fits. */
  if (!same_size)
    {
      self->view.pin_i = self->view.pin_j = -1;
      self->view.hover_i = self->view.hover_j = -1;
      self->fit = TRUE;
      self->view.cell = fit_cell (self);
      self->view.pan_x = self->view.pan_y = 0;
    }
  gb_heatmap_view_clamp (&self->heatmap, &self->view);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  description ? description : _("Attention heatmap"), -1);
  update_accessible (self);
  drop_cache (self);
}

void
gb_attention_grid_clear (GbAttentionGrid *self)
{
  g_return_if_fail (GB_IS_ATTENTION_GRID (self));
  gb_attention_grid_set_data (self, 0, NULL, (const char *const *) (char *[]) { NULL }, NULL);
}

GbNorm
gb_attention_grid_get_norm (GbAttentionGrid *self)
{
  g_return_val_if_fail (GB_IS_ATTENTION_GRID (self), GB_NORM_LINEAR);
  return self->heatmap.norm;
}

void
gb_attention_grid_set_norm (GbAttentionGrid *self,
                            GbNorm           norm)
{
  g_return_if_fail (GB_IS_ATTENTION_GRID (self));
  if (self->heatmap.norm == norm)
    return;
  self->heatmap.norm = norm;
  drop_cache (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NORM]);
}

double
gb_attention_grid_get_zoom (GbAttentionGrid *self)
{
  g_return_val_if_fail (GB_IS_ATTENTION_GRID (self), 1);
  return self->view.cell;
}

void
gb_attention_grid_zoom_at (GbAttentionGrid *self,
                           double           factor,
                           double           x,
                           double           y)
{
  g_return_if_fail (GB_IS_ATTENTION_GRID (self));
  GbHeatmapView *v = &self->view;
  /* The grid point under (x, y) stays under it. */
  const double gx = (x - v->vx + v->pan_x) / v->cell, gy = (y - v->vy + v->pan_y) / v->cell;

  self->fit = FALSE;
  set_cell (self, v->cell * factor);
  v->pan_x = gx * v->cell - (x - v->vx);
  v->pan_y = gy * v->cell - (y - v->vy);
  gb_heatmap_view_clamp (&self->heatmap, v);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
gb_attention_grid_fit (GbAttentionGrid *self)
{
  g_return_if_fail (GB_IS_ATTENTION_GRID (self));
  self->fit = TRUE;
  self->view.pan_x = self->view.pan_y = 0;
  set_cell (self, fit_cell (self));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
gb_attention_grid_actual_size (GbAttentionGrid *self)
{
  g_return_if_fail (GB_IS_ATTENTION_GRID (self));
  const double cx = self->view.vx + self->view.vw / 2, cy = self->view.vy + self->view.vh / 2;

  gb_attention_grid_zoom_at (self, ACTUAL_CELL / self->view.cell, cx, cy);
}

gboolean
gb_attention_grid_get_pinned (GbAttentionGrid *self,
                              guint           *query,
                              guint           *key)
{
  g_return_val_if_fail (GB_IS_ATTENTION_GRID (self), FALSE);
  if (self->view.pin_i < 0)
    return FALSE;
  *query = (guint) self->view.pin_i;
  *key = (guint) self->view.pin_j;
  return TRUE;
}

void
gb_attention_grid_set_pinned (GbAttentionGrid *self,
                              int              query,
                              int              key)
{
  g_return_if_fail (GB_IS_ATTENTION_GRID (self));
  if (query >= (int) self->heatmap.n || key >= (int) self->heatmap.n || query < 0 || key < 0)
    query = key = -1;
  if (query == self->view.pin_i && key == self->view.pin_j)
    return;
  self->view.pin_i = query;
  self->view.pin_j = key;
  if (query >= 0)
    reveal_cell (self, query, key);
  update_accessible (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[PINNED], 0, query, key);
}

void
gb_attention_grid_set_tooltip_func (GbAttentionGrid           *self,
                                    GbAttentionGridTooltipFunc func,
                                    gpointer                   user_data)
{
  g_return_if_fail (GB_IS_ATTENTION_GRID (self));
  self->tooltip_func = func;
  self->tooltip_data = user_data;
}
