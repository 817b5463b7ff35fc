/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* Accessibility and right-to-left, in process under Xvfb: every control of
 * the window has an accessible name, the attention grid tells a screen
 * reader which cell the keyboard is on (tokens and weight) and moves with
 * the arrow keys, and a right-to-left locale mirrors the window but not the
 * matrix. */

#include <adwaita.h>
#include <glassbox-engine.h>

#include "gb-attention-grid.h"
#include "gb-explain-view.h"
#include "gb-features-view.h"
#include "gb-test-util.h"
#include "gb-window.h"

static gboolean
has_label_content (GtkWidget *widget)
{
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c != NULL; c = gtk_widget_get_next_sibling (c))
    {
      if (GTK_IS_LABEL (c) && *gtk_label_get_text (GTK_LABEL (c)) != '\0')
        return TRUE;
      if (has_label_content (c))
        return TRUE;
    }
  return FALSE;
}

/* Widgets a user operates. GTK's and libadwaita's own composite widgets
 * (a spin button's +/- buttons, the window controls, the view switcher) are
 * theirs to label and are not walked into. */
static guint n_controls;

static void
collect_unlabelled (GtkWidget *widget,
                    GPtrArray *missing)
{
  if (GTK_IS_BUTTON (widget) || GTK_IS_MENU_BUTTON (widget) || GTK_IS_SPIN_BUTTON (widget) ||
      GTK_IS_DROP_DOWN (widget) || GTK_IS_ENTRY (widget) || GTK_IS_SWITCH (widget) || GTK_IS_SCALE (widget) ||
      GTK_IS_CHECK_BUTTON (widget))
    {
      GtkAccessible *a = GTK_ACCESSIBLE (widget);
      n_controls++;
      gboolean named = gtk_test_accessible_has_property (a, GTK_ACCESSIBLE_PROPERTY_LABEL) ||
                       gtk_test_accessible_has_relation (a, GTK_ACCESSIBLE_RELATION_LABELLED_BY) ||
                       ((GTK_IS_BUTTON (widget) || GTK_IS_MENU_BUTTON (widget)) && has_label_content (widget));
      if (!named)
        {
          const char *icon = GTK_IS_BUTTON (widget) ? gtk_button_get_icon_name (GTK_BUTTON (widget)) : NULL;
          g_ptr_array_add (missing, g_strdup_printf ("%s (icon %s, tooltip “%s”)", G_OBJECT_TYPE_NAME (widget),
                                                     icon ? icon : "none", gtk_widget_get_tooltip_text (widget)));
        }
      if (GTK_IS_SPIN_BUTTON (widget) || GTK_IS_DROP_DOWN (widget) || GTK_IS_MENU_BUTTON (widget))
        return;
    }
  if (GTK_IS_WINDOW_CONTROLS (widget) || ADW_IS_VIEW_SWITCHER (widget) || ADW_IS_VIEW_SWITCHER_TITLE (widget))
    return;
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c != NULL; c = gtk_widget_get_next_sibling (c))
    collect_unlabelled (c, missing);
}

static void
test_controls_named (void)
{
  g_autoptr (AdwApplication) app = adw_application_new ("org.glassbox.A11yTest", G_APPLICATION_NON_UNIQUE);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  GbWindow *win = gb_window_new (app);
  g_autoptr (GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);

  collect_unlabelled (GTK_WIDGET (win), missing);
  for (guint i = 0; i < missing->len; i++)
    g_test_message ("no accessible name: %s", (const char *) missing->pdata[i]);
  g_test_message ("%u controls checked", n_controls);
  g_assert_cmpuint (n_controls, >=, 14);
  g_assert_cmpuint (missing->len, ==, 0);
  gtk_window_destroy (GTK_WINDOW (win));
}

static const float weights[9] = {
  1.00f, 0.00f, 0.00f,
  0.75f, 0.25f, 0.00f,
  0.50f, 0.25f, 0.25f,
};
static const char *const labels[] = { "The", "·bank", "·said", NULL };

static gboolean
press (GtkWidget *widget,
       guint      keyval)
{
  g_autoptr (GListModel) controllers = gtk_widget_observe_controllers (widget);
  gboolean handled = FALSE;
  for (guint i = 0; i < g_list_model_get_n_items (controllers) && !handled; i++)
    {
      g_autoptr (GObject) c = g_list_model_get_item (controllers, i);
      if (GTK_IS_EVENT_CONTROLLER_KEY (c))
        g_signal_emit_by_name (c, "key-pressed", keyval, 0, (GdkModifierType) 0, &handled);
    }
  return handled;
}

static void
test_grid_accessible (void)
{
  GtkWidget *window = gtk_window_new ();
  GtkWidget *grid = gb_attention_grid_new ();
  GtkAccessible *a = GTK_ACCESSIBLE (grid);
  guint q, k;

  gtk_window_set_child (GTK_WINDOW (window), grid);
  gb_attention_grid_set_data (GB_ATTENTION_GRID (grid), 3, weights, labels, "Layer 0, head 1");
  gtk_test_accessible_assert_role (a, GTK_ACCESSIBLE_ROLE_IMG);
  gtk_test_accessible_assert_property (a, GTK_ACCESSIBLE_PROPERTY_LABEL, "Layer 0, head 1");
  g_assert_true (gtk_widget_get_focusable (grid));

  /* The arrow keys pin a crosshair, and its cell is announced. */
  g_assert_true (press (grid, GDK_KEY_Down));
  g_assert_true (gb_attention_grid_get_pinned (GB_ATTENTION_GRID (grid), &q, &k));
  g_assert_cmpuint (q, ==, 0);
  g_assert_true (press (grid, GDK_KEY_Down));
  g_assert_true (press (grid, GDK_KEY_Down));
  g_assert_true (press (grid, GDK_KEY_Right));
  g_assert_true (gb_attention_grid_get_pinned (GB_ATTENTION_GRID (grid), &q, &k));
  g_assert_cmpuint (q, ==, 2);
  g_assert_cmpuint (k, ==, 1);
  gtk_test_accessible_assert_property (a, GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                       "Pinned: query 2 “·said”, key 1 “·bank”, weight 0.2500");
  g_assert_true (press (grid, GDK_KEY_End));
  gtk_test_accessible_assert_property (a, GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                       "Pinned: query 2 “·said”, key 2 “·said”, weight 0.2500");
  g_assert_true (press (grid, GDK_KEY_Escape));
  g_assert_false (gb_attention_grid_get_pinned (GB_ATTENTION_GRID (grid), &q, &k));
  gtk_test_accessible_assert_property (a, GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                       "Arrow keys move a crosshair over the cells; Escape releases it.");
  /* Escape with nothing pinned is left to the window (it closes dialogs). */
  g_assert_false (press (grid, GDK_KEY_Escape));
  gtk_window_destroy (GTK_WINDOW (window));
}

/* Draws the grid in a window of the given direction; returns its pixels. */
static GBytes *
render_grid (GtkTextDirection dir,
             int             *stride)
{
  GtkWidget *window = gtk_window_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);
  GtkWidget *grid = gb_attention_grid_new ();

  gtk_widget_set_direction (window, dir);
  gtk_widget_set_direction (box, dir);
  gtk_widget_set_direction (grid, dir);
  gtk_widget_set_hexpand (grid, TRUE);
  gtk_widget_set_vexpand (grid, TRUE);
  gtk_box_append (GTK_BOX (box), grid);
  gtk_window_set_child (GTK_WINDOW (window), box);
  gtk_window_set_default_size (GTK_WINDOW (window), 320, 320);
  gb_attention_grid_set_data (GB_ATTENTION_GRID (grid), 3, weights, labels, "Layer 0, head 1");
  gtk_window_present (GTK_WINDOW (window));
  for (int i = 0; i < 200 && (!gtk_widget_get_mapped (grid) || gtk_widget_get_width (grid) < 100); i++)
    g_main_context_iteration (NULL, TRUE);
  for (int i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE);

  int w = gtk_widget_get_width (grid), h = gtk_widget_get_height (grid);
  g_assert_cmpint (w, >=, 100);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (grid);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, w, h);
  cairo_t *cr = cairo_create (surface);
  gsk_render_node_draw (node, cr);
  cairo_destroy (cr);
  cairo_surface_flush (surface);
  *stride = cairo_image_surface_get_stride (surface);
  GBytes *pixels = g_bytes_new (cairo_image_surface_get_data (surface), (gsize) *stride * h);
  cairo_surface_destroy (surface);
  gtk_window_destroy (GTK_WINDOW (window));
  return pixels;
}

/* A matrix is not text: in a right-to-left locale the window mirrors, but
 * query rows still run down and keys across, the causal triangle still at
 * the bottom left. The grid draws the same pixels either way. */
static void
test_grid_rtl (void)
{
  int stride_ltr, stride_rtl;
  g_autoptr (GBytes) ltr = render_grid (GTK_TEXT_DIR_LTR, &stride_ltr);
  g_autoptr (GBytes) rtl = render_grid (GTK_TEXT_DIR_RTL, &stride_rtl);

  g_assert_cmpint (stride_ltr, ==, stride_rtl);
  g_assert_true (g_bytes_equal (ltr, rtl));
  /* And it drew something: not a blank widget. */
  gsize n;
  const guint8 *p = g_bytes_get_data (ltr, &n);
  guint opaque = 0;
  for (gsize i = 3; i < n; i += 4)
    opaque += p[i] == 255;
  g_assert_cmpuint (opaque, >, n / 4 / 4);
}

static gboolean
timeout_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
spin (guint ms)
{
  gboolean done = FALSE;
  g_timeout_add (ms, timeout_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* Closing the window while the model loads (and its heads are scored and
 * drawn) cancels the job: no crash, and the window is freed once the worker
 * lets go of it. Closed at several moments of the job. */
static void
test_close_while_loading (void)
{
  g_autoptr (AdwApplication) app = adw_application_new ("org.glassbox.CloseTest", G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, NULL));
  const guint moments_ms[] = { 0, 30, 120, 400 };

  for (guint i = 0; i < G_N_ELEMENTS (moments_ms); i++)
    {
      GbWindow *win = gb_window_new (app);
      gpointer alive = win;
      g_object_add_weak_pointer (G_OBJECT (win), &alive);
      gtk_window_present (GTK_WINDOW (win));
      gb_window_load_model (win, gb_demo_model_dir ());
      if (moments_ms[i] > 0)
        spin (moments_ms[i]);
      gtk_window_destroy (GTK_WINDOW (win));
      for (guint waited = 0; alive != NULL && waited < 30000; waited += 10)
        spin (10);
      g_test_message ("closed after %u ms: window %s", moments_ms[i], alive ? "still alive" : "freed");
      g_assert_null (alive);
    }
}

/* The first widget under @w (itself included, depth first) that @match
 * accepts. */
typedef gboolean (*WidgetMatch) (GtkWidget    *w,
                                 gconstpointer data);

static GtkWidget *
find_widget (GtkWidget    *w,
             WidgetMatch   match,
             gconstpointer data)
{
  if (match (w, data))
    return w;
  for (GtkWidget *c = gtk_widget_get_first_child (w); c != NULL; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = find_widget (c, match, data);
      if (found)
        return found;
    }
  return NULL;
}

static gboolean
is_type (GtkWidget    *w,
         gconstpointer type)
{
  return G_TYPE_CHECK_INSTANCE_TYPE (w, GPOINTER_TO_SIZE (type));
}

static GtkWidget *
find_type (GtkWidget *w,
           GType      type)
{
  return find_widget (w, is_type, GSIZE_TO_POINTER (type));
}

/* The Explain view's "Edit the Pairs in the Steering View" shows the
 * Steering view with the zip-neutral pairs. */
static void
test_explain_links_steering (void)
{
  g_autoptr (AdwApplication) app = adw_application_new ("org.glassbox.A11yTest3", G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, NULL));
  GbWindow *win = gb_window_new (app);
  GtkWidget *explain = find_type (GTK_WIDGET (win), GB_TYPE_EXPLAIN_VIEW);
  AdwViewStack *stack = ADW_VIEW_STACK (find_type (GTK_WIDGET (win), ADW_TYPE_VIEW_STACK));

  g_assert_nonnull (explain);
  g_assert_nonnull (stack);
  g_assert_cmpstr (adw_view_stack_get_visible_child_name (stack), !=, "steering");
  g_signal_emit_by_name (explain, "open-steering", "zip-neutral-loans");
  g_assert_cmpstr (adw_view_stack_get_visible_child_name (stack), ==, "steering");
  GtkWidget *steering = adw_view_stack_get_visible_child (stack);
  GtkDropDown *sets = GTK_DROP_DOWN (find_type (steering, GTK_TYPE_DROP_DOWN));
  GObject *item = gtk_drop_down_get_selected_item (sets);
  g_assert_nonnull (item);
  g_assert_cmpstr (gtk_string_object_get_string (GTK_STRING_OBJECT (item)), ==, "zip-neutral-loans");
  /* The bundled sets are listed by name (g_ptr_array_sort once compared
   * the element pointers' bytes instead). */
  GListModel *names = gtk_drop_down_get_model (sets);
  for (guint i = 1; i < g_list_model_get_n_items (names); i++)
    {
      g_autoptr (GtkStringObject) x = g_list_model_get_item (names, i - 1), y = g_list_model_get_item (names, i);
      g_assert_cmpint (g_strcmp0 (gtk_string_object_get_string (x), gtk_string_object_get_string (y)), <, 0);
    }
  gtk_window_destroy (GTK_WINDOW (win));
}

static gboolean
is_label_with_prefix (GtkWidget    *w,
                      gconstpointer prefix)
{
  return GTK_IS_LABEL (w) && g_str_has_prefix (gtk_label_get_text (GTK_LABEL (w)), prefix);
}

static void
flag_cb (GbFeaturesView *view,
         gboolean       *flag)
{
  *flag = TRUE;
}

static void
failed_cb (GbFeaturesView *view,
           const char     *message,
           gboolean       *flag)
{
  g_test_message ("failed: %s", message);
  *flag = TRUE;
}

/* A Features view in a window, training an SAE on a tiny model for far
 * longer than the test waits; returns once training has reported a step.
 * The SAE is written to *@out. */
static GbFeaturesView *
start_sae_training (GtkWindow **win_out,
                    char      **out,
                    gboolean   *ready,
                    gboolean   *failed)
{
  g_autofree char *model_dir = gb_test_tmpdir ();
  g_autofree char *corpus = gb_test_tmp_path ("jobs-corpus.txt", NULL);
  g_autoptr (GError) error = NULL;

  gb_test_write_model (model_dir, 2, 3, 12, 64, FALSE, 5);
  GString *text = g_string_new (NULL);
  for (guint i = 0; i < 200; i++)
    g_string_append_printf (text, "Applicant %u lives in zip %u; the bank said %s.\n", i, 40100 + i % 6,
                            i % 3 ? "yes" : "no");
  g_assert_true (g_file_set_contents (corpus, text->str, -1, NULL));
  g_string_free (text, TRUE);
  g_autoptr (GbModel) model = gb_model_load (model_dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  GtkWindow *win = GTK_WINDOW (gtk_window_new ());
  GbFeaturesView *view = GB_FEATURES_VIEW (gb_features_view_new ());
  gtk_window_set_child (win, GTK_WIDGET (view));
  gtk_window_present (win);
  gb_features_view_set_model (view, model);
  g_signal_connect (view, "ready", G_CALLBACK (flag_cb), ready);
  g_signal_connect (view, "failed", G_CALLBACK (failed_cb), failed);
  GbSaeRunOptions o;
  gb_sae_run_options_init (&o);
  o.layer = 1;
  o.train.d_sae = 48;
  o.train.k = 4;
  o.train.batch_size = 64;
  o.n_tokens = 64 * 1000000;  /* hours: only a stop ends it */
  o.buffer_tokens = 1024;
  o.heldout_tokens = 300;
  *out = gb_test_tmp_path ("jobs-sae", NULL);
  gb_features_view_train (view, &o, corpus, *out);
  for (guint waited = 0; find_widget (GTK_WIDGET (view), is_label_with_prefix, "Training: step") == NULL; waited += 10)
    {
      g_assert_cmpuint (waited, <, 60000);
      g_assert_false (*failed);
      spin (10);
    }
  *win_out = win;
  return view;
}

/* Stop during SAE training keeps the checkpoint, and its features are then
 * analysed and shown. */
static void
test_sae_stop_browses_checkpoint (void)
{
  GtkWindow *win;
  g_autofree char *out = NULL;
  gboolean ready = FALSE, failed = FALSE;
  GbFeaturesView *view = start_sae_training (&win, &out, &ready, &failed);

  g_assert_true (gb_features_view_stop_training (view));
  for (guint waited = 0; !ready && !failed; waited += 10)
    {
      g_assert_cmpuint (waited, <, 60000);
      spin (10);
    }
  g_assert_false (failed);
  g_assert_false (gb_features_view_stop_training (view));
  g_autofree char *features = g_build_filename (out, "features.json", NULL);
  g_assert_true (g_file_test (features, G_FILE_TEST_EXISTS));
  g_autoptr (GError) error = NULL;
  g_autoptr (GbSae) sae = gb_sae_load (out, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (sae->trained_tokens, >, 0);
  g_assert_cmpuint (sae->trained_tokens, <, 64 * 1000000);
  gtk_window_destroy (win);
}

/* Closing the window just after Stop ends the job there: the analysis of
 * the checkpoint that Stop starts is cancelled too (it ran to the end,
 * uncancellable, before), and the view is freed once the worker lets go. */
static void
test_sae_close_after_stop (void)
{
  GtkWindow *win;
  g_autofree char *out = NULL;
  gboolean ready = FALSE, failed = FALSE;
  GbFeaturesView *view = start_sae_training (&win, &out, &ready, &failed);
  gpointer alive = view;

  g_object_add_weak_pointer (G_OBJECT (view), &alive);
  g_assert_true (gb_features_view_stop_training (view));
  gtk_window_destroy (win);
  for (guint waited = 0; alive != NULL; waited += 10)
    {
      g_assert_cmpuint (waited, <, 60000);
      spin (10);
    }
  g_assert_false (ready);
  g_assert_false (failed);
  g_autofree char *cfg = g_build_filename (out, "cfg.json", NULL);
  g_autofree char *features = g_build_filename (out, "features.json", NULL);
  g_assert_true (g_file_test (cfg, G_FILE_TEST_EXISTS));       /* the checkpoint was saved */
  g_assert_false (g_file_test (features, G_FILE_TEST_EXISTS)); /* but not analysed */
}

int
main (int    argc,
      char **argv)
{
  gtk_test_init (&argc, &argv, NULL);
  adw_init ();
  g_test_add_func ("/ui/a11y/controls-named", test_controls_named);
  g_test_add_func ("/ui/a11y/grid", test_grid_accessible);
  g_test_add_func ("/ui/a11y/grid-rtl", test_grid_rtl);
  g_test_add_func ("/ui/window/close-while-loading", test_close_while_loading);
  g_test_add_func ("/ui/window/explain-links-steering", test_explain_links_steering);
  g_test_add_func ("/ui/features/stop-browses-checkpoint", test_sae_stop_browses_checkpoint);
  g_test_add_func ("/ui/features/close-after-stop", test_sae_close_after_stop);
  return g_test_run ();
}
