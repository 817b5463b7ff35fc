/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-ui"

#include <glassbox-engine.h>
#include <glib/gi18n.h>
#include <math.h>

#include "gb-ui-util.h"
#include "gb-attention-grid.h"
#include "gb-attention-render.h"
#include "gb-build-config.h"
#include "gb-steering-view.h"
#include "gb-features-view.h"
#include "gb-explain-view.h"
#include "gb-token-bars.h"
#include "gb-window.h"

#define THUMB_PX 56
#define MAX_RECENT 8

typedef enum
{
  VIEW_HEAD,
  VIEW_MEAN,
  VIEW_ROLLOUT,
  VIEW_TOKEN,
} ViewKind;

/* Progress crosses from a worker to the main thread one way: the worker
 * writes under the lock and schedules at most one idle. */
typedef struct
{
  GMutex   lock;
  double   fraction;
  char    *message;
  guint    idle_id;
  GWeakRef window;
} Progress;

typedef struct
{
  GbModel      *model;
  GbHeadScores *scores;
} LoadResult;

typedef struct
{
  GbModel         *model;
  GArray          *tokens;
  gboolean         dark;
  Progress        *progress;
  /* Results */
  GbAttentionMaps *maps;
  GPtrArray       *thumbs;  /* GBytes, THUMB_PX² ARGB32 each, per (layer, head) */
} RunJob;

struct _GbWindow
{
  AdwApplicationWindow parent_instance;

  /* Template widgets */
  AdwToastOverlay      *toasts;
  AdwViewSwitcherTitle *switcher_title;
  GtkMenuButton        *model_button;
  GtkLabel             *model_name;
  GtkLabel             *model_info;
  GtkRevealer          *progress_revealer;
  GtkProgressBar       *progress;
  GtkLabel             *progress_label;
  GtkStack             *attention_stack;
  AdwStatusPage        *empty_page;
  GtkEntry             *text_entry;
  GtkGridView          *token_view;
  GtkScrolledWindow    *token_scroller;
  GtkStringList        *token_list;
  GtkLabel             *clip_label;
  GtkDropDown          *agg_dropdown;
  GtkDropDown          *norm_dropdown;
  GtkDropDown          *sort_dropdown;
  AdwActionRow         *layer_row;
  AdwActionRow         *head_row;
  GtkSpinButton        *layer_spin;
  GtkSpinButton        *head_spin;
  GtkLabel             *role_label;
  GtkFlowBox           *heads_box;
  GtkLabel             *figure_title;
  GtkStack             *figure_stack;
  GbAttentionGrid      *grid;
  GbTokenBars          *bars;
  AdwViewStack         *stack;
  GbSteeringView       *steering_view;
  GbFeaturesView       *features_view;
  GbExplainView        *explain_view;

  /* Borrowed */
  const GbAutomation *automation;
  GArray             *frame_times; /* gint64 µs, for --frame-stats */
  guint               chips_id;    /* idle adding token chips in chunks */
  gint64              run_done_at[2]; /* run_done_cb's start and end, µs, for --frame-stats */
  gboolean            frame_stats_printed;

  /* Owned */
  GSettings       *settings;  /* NULL when the schema is not installed */
  GbModel         *model;
  GbHeadScores    *scores;
  GbAttentionMaps *maps;
  GStrv            labels;
  GCancellable    *load_cancellable;
  GCancellable    *run_cancellable;
  Progress        *progress_state;
  GtkFileChooserNative *chooser;
  guint            token_query;  /* row shown by "from this token" */
  gboolean         updating;
};

G_DEFINE_FINAL_TYPE (GbWindow, gb_window, ADW_TYPE_APPLICATION_WINDOW)

static void run_text (GbWindow *self);
static void update_figure (GbWindow *self);

/* ---- Helpers ---- */

const char *
gb_window_default_model_dir (void)
{
  const char *env = g_getenv ("GLASSBOX_MODEL");
  return env != NULL && *env != '\0' ? env : gb_demo_model_dir ();
}

static void
toast (GbWindow   *self,
       const char *message)
{
  AdwToast *t = adw_toast_new (message);
  adw_toast_set_timeout (t, 6);
  adw_toast_overlay_add_toast (self->toasts, t);
}

static void
progress_free (Progress *p)
{
  g_mutex_clear (&p->lock);
  g_free (p->message);
  g_weak_ref_clear (&p->window);
}

static gboolean
progress_idle_cb (gpointer data)
{
  Progress *p = data;
  g_autoptr (GbWindow) self = g_weak_ref_get (&p->window);
  g_autofree char *message = NULL;
  double fraction;

  g_mutex_lock (&p->lock);
  fraction = p->fraction;
  message = g_strdup (p->message);
  p->idle_id = 0;
  g_mutex_unlock (&p->lock);
  if (self != NULL)
    {
      gtk_progress_bar_set_fraction (self->progress, fraction);
      gtk_label_set_text (self->progress_label, message ? message : "");
    }
  return G_SOURCE_REMOVE;
}

/* Runs on the worker. */
static void
progress_cb (double      fraction,
             const char *message,
             gpointer    data)
{
  Progress *p = data;

  g_mutex_lock (&p->lock);
  p->fraction = fraction;
  g_free (p->message);
  p->message = g_strdup (message);
  if (p->idle_id == 0)
    p->idle_id = g_idle_add_full (G_PRIORITY_DEFAULT, progress_idle_cb, g_atomic_rc_box_acquire (p),
                                  (GDestroyNotify) g_atomic_rc_box_release);
  g_mutex_unlock (&p->lock);
}

static void
show_busy (GbWindow   *self,
           const char *message)
{
  gtk_progress_bar_set_fraction (self->progress, 0);
  gtk_label_set_text (self->progress_label, message);
  gtk_revealer_set_reveal_child (self->progress_revealer, message != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_revealer), message != NULL);
}

static void fill_token_chips (GbWindow *self);

static void
load_result_free (LoadResult *r)
{
  g_clear_pointer (&r->model, gb_model_unref);
  g_clear_pointer (&r->scores, gb_head_scores_free);
  g_free (r);
}

static void
run_job_free (RunJob *job)
{
  g_clear_pointer (&job->model, gb_model_unref);
  g_clear_pointer (&job->tokens, g_array_unref);
  g_clear_pointer (&job->maps, gb_attention_maps_free);
  g_clear_pointer (&job->thumbs, g_ptr_array_unref);
  g_clear_pointer (&job->progress, g_atomic_rc_box_release);
  g_free (job);
}

static char *
format_params (guint64 n)
{
  if (n >= 1000000000)
    return g_strdup_printf ("%.1fB", n / 1e9);
  if (n >= 10000000)
    return g_strdup_printf ("%.0fM", n / 1e6);
  if (n >= 1000000)
    return g_strdup_printf ("%.1fM", n / 1e6); /* 3.5M, not 4M */
  if (n >= 1000)
    return g_strdup_printf ("%.0fK", n / 1e3);
  return g_strdup_printf ("%" G_GUINT64_FORMAT, n);
}

/* --frame-stats: the frame clock's tick times from the moment a text starts
 * running until the automation ends. A gap between two ticks is a frame the
 * main loop could not draw on time. */
static gboolean
frame_stats_tick_cb (GtkWidget     *widget,
                     GdkFrameClock *clock,
                     gpointer       data)
{
  GbWindow *self = GB_WINDOW (widget);

  if (self->frame_times != NULL)
    {
      gint64 t = g_get_monotonic_time ();
      g_array_append_val (self->frame_times, t);
    }
  return G_SOURCE_CONTINUE;
}

static int
cmp_double (gconstpointer a,
            gconstpointer b)
{
  const double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static void
print_frame_stats (GbWindow *self)
{
  GArray *t = self->frame_times;
  if (t == NULL || t->len < 2)
    {
      printf ("frames 0\n");
      return;
    }
  g_autoptr (GArray) gaps = g_array_new (FALSE, FALSE, sizeof (double));
  for (guint i = 1; i < t->len; i++)
    {
      double g = (g_array_index (t, gint64, i) - g_array_index (t, gint64, i - 1)) / 1000.0;
      g_array_append_val (gaps, g);
    }
  g_array_sort (gaps, cmp_double);
  const double *g = (const double *) gaps->data;
  printf ("frames %u over %.0f ms: median gap %.1f ms, 95th percentile %.1f ms, max %.1f ms\n", t->len,
          (g_array_index (t, gint64, t->len - 1) - g_array_index (t, gint64, 0)) / 1000.0, g[gaps->len / 2],
          g[(gsize) (0.95 * (gaps->len - 1))], g[gaps->len - 1]);
  /* Where the long gaps fall: the result installed on the main thread
   * (run_done_cb), or elsewhere. */
  const gint64 t0 = g_array_index (t, gint64, 0);
  for (guint i = 1; i < t->len; i++)
    {
      const gint64 a = g_array_index (t, gint64, i - 1), b = g_array_index (t, gint64, i);
      if (b - a <= 50000)
        continue;
      printf ("  gap %.1f ms at +%.0f ms", (b - a) / 1000.0, (a - t0) / 1000.0);
      if (self->run_done_at[0] >= a && self->run_done_at[0] < b)
        printf (" (holds the result being installed: %.1f ms)", (self->run_done_at[1] - self->run_done_at[0]) / 1000.0);
      printf ("\n");
    }
  fflush (stdout);
}

static void
automation_done (GbWindow *self,
                 int       status)
{
  GApplication *app = G_APPLICATION (gtk_window_get_application (GTK_WINDOW (self)));

  if (self->automation && self->automation->frame_stats && !self->frame_stats_printed)
    print_frame_stats (self);

  g_object_set_data (G_OBJECT (app), "gb-exit-status", GINT_TO_POINTER (status));
  g_application_quit (app);
}

/* ---- Model menu ---- */

static void
rebuild_model_menu (GbWindow *self)
{
  g_autoptr (GMenu) menu = g_menu_new ();
  g_autoptr (GMenu) first = g_menu_new ();
  g_autoptr (GMenu) hub = g_menu_new ();
  g_autoptr (GMenu) recent = g_menu_new ();
  g_autofree char *cache = gb_hub_cache_dir ();
  g_autoptr (GPtrArray) found = gb_hub_scan (cache);
  g_autofree char *default_name = g_path_get_basename (gb_window_default_model_dir ());
  g_autofree char *default_label = g_strdup_printf (_("Default: %s"), default_name);

  g_menu_append (first, "_Open Model Folder…", "win.open");
  GMenuItem *item = g_menu_item_new (default_label, NULL);
  g_menu_item_set_action_and_target (item, "win.load-model", "s", gb_window_default_model_dir ());
  g_menu_append_item (first, item);
  g_object_unref (item);
  g_menu_append_section (menu, NULL, G_MENU_MODEL (first));
  for (guint i = 0; found && i < found->len; i++)
    {
      const GbHubModel *m = found->pdata[i];
      item = g_menu_item_new (m->repo_id, NULL);
      g_menu_item_set_action_and_target (item, "win.load-model", "s", m->path);
      g_menu_append_item (hub, item);
      g_object_unref (item);
    }
  if (found && found->len > 0)
    g_menu_append_section (menu, _("Hugging Face cache"), G_MENU_MODEL (hub));
  if (self->settings)
    {
      g_auto (GStrv) paths = g_settings_get_strv (self->settings, "recent-models");
      for (guint i = 0; paths[i]; i++)
        {
          item = g_menu_item_new (paths[i], NULL);
          g_menu_item_set_action_and_target (item, "win.load-model", "s", paths[i]);
          g_menu_append_item (recent, item);
          g_object_unref (item);
        }
      if (paths[0])
        g_menu_append_section (menu, _("Recent"), G_MENU_MODEL (recent));
    }
  gtk_menu_button_set_menu_model (self->model_button, G_MENU_MODEL (menu));
}

static void
remember_model (GbWindow   *self,
                const char *path)
{
  g_auto (GStrv) old = NULL;
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();

  if (self->settings == NULL)
    return;
  old = g_settings_get_strv (self->settings, "recent-models");
  g_strv_builder_add (b, path);
  for (guint i = 0, n = 1; old[i] && n < MAX_RECENT; i++)
    if (g_strcmp0 (old[i], path) != 0)
      {
        g_strv_builder_add (b, old[i]);
        n++;
      }
  g_auto (GStrv) now = g_strv_builder_end (b);
  g_settings_set_strv (self->settings, "recent-models", (const char *const *) now);
}

/* ---- Model loading (worker) ---- */

static void
load_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  gb_thread_make_background ();
  const char *dir = task_data;
  Progress *p = g_object_get_data (G_OBJECT (task), "progress");
  g_autoptr (GError) error = NULL;
  LoadResult *r = g_new0 (LoadResult, 1);

  r->model = gb_model_load (dir, cancellable, progress_cb, p, &error);
  if (r->model != NULL)
    {
      progress_cb (0.95, _("Scoring head roles"), p);
      r->scores = gb_head_scores_compute (r->model, 0, 0, cancellable, &error);
    }
  if (error != NULL)
    {
      load_result_free (r);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_pointer (task, r, (GDestroyNotify) load_result_free);
}

static void
update_header (GbWindow *self)
{
  if (self->model == NULL)
    {
      adw_view_switcher_title_set_title (self->switcher_title, "Glassbox");
      adw_view_switcher_title_set_subtitle (self->switcher_title, _("No model loaded"));
      gtk_label_set_text (self->model_name, _("No model"));
      gtk_label_set_text (self->model_info, _("Open a model folder"));
      return;
    }
  const GbConfig *c = gb_model_get_config (self->model);
  g_autofree char *params = format_params (gb_model_get_n_params (self->model));
  g_autofree char *subtitle = g_strdup_printf ("%u layers · %u heads · %s parameters", c->n_layer, c->n_head, params);
  adw_view_switcher_title_set_title (self->switcher_title, gb_model_get_name (self->model));
  adw_view_switcher_title_set_subtitle (self->switcher_title, subtitle);
  /* The switcher hides its title and subtitle when wide: the model button
   * always says what is loaded. */
  gtk_label_set_text (self->model_name, gb_model_get_name (self->model));
  gtk_label_set_text (self->model_info, subtitle);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->model_button), gb_model_get_path (self->model));
}

static void
load_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr (GbWindow) self = user_data;
  g_autoptr (GError) error = NULL;
  LoadResult *r = g_task_propagate_pointer (G_TASK (result), &error);
  const char *dir = g_task_get_task_data (G_TASK (result));

  show_busy (self, NULL);
  if (r == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      /* Keep the current model; say why the new one failed. */
      toast (self, error->message);
      if (self->automation)
        {
          g_printerr ("glassbox: %s\n", error->message);
          automation_done (self, 1);
        }
      if (self->model == NULL)
        {
          g_autofree char *desc = g_markup_printf_escaped (
            _("Glassbox could not open <b>%s</b>: %s\n\nOpen a GPT-2 model folder in Hugging Face layout "
              "(config.json, model.safetensors, vocab.json, merges.txt)."), dir, error->message);
          adw_status_page_set_description (self->empty_page, desc);
        }
      return;
    }
  g_clear_pointer (&self->model, gb_model_unref);
  g_clear_pointer (&self->scores, gb_head_scores_free);
  g_clear_pointer (&self->maps, gb_attention_maps_free);
  fill_token_chips (self); /* the old text's chips go with its maps */
  self->model = g_steal_pointer (&r->model);
  self->scores = g_steal_pointer (&r->scores);
  load_result_free (r);
  gb_steering_view_set_model (self->steering_view, self->model);
  gb_explain_view_set_model (self->explain_view, self->model);

  remember_model (self, gb_model_get_path (self->model));
  rebuild_model_menu (self);
  update_header (self);
  gb_features_view_set_model (self->features_view, self->model);
  gtk_stack_set_visible_child_name (self->attention_stack, "main");
  if (self->automation && self->automation->text)
    gtk_editable_set_text (GTK_EDITABLE (self->text_entry), self->automation->text);
  run_text (self);
}

void
gb_window_load_model (GbWindow   *self,
                      const char *dir)
{
  g_return_if_fail (GB_IS_WINDOW (self));
  g_autoptr (GTask) task = NULL;
  g_autofree char *name = g_path_get_basename (dir);
  g_autofree char *message = g_strdup_printf (_("Loading %s"), name);

  g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  self->load_cancellable = g_cancellable_new ();
  /* No source object: the worker may drop the task's last reference, and a
   * window must never be finalized off the main thread. The callback owns
   * this reference instead. */
  task = g_task_new (NULL, self->load_cancellable, load_done_cb, g_object_ref (self));
  g_task_set_source_tag (task, gb_window_load_model);
  g_task_set_task_data (task, g_strdup (dir), g_free);
  g_object_set_data_full (G_OBJECT (task), "progress", g_atomic_rc_box_acquire (self->progress_state),
                          (GDestroyNotify) g_atomic_rc_box_release);
  show_busy (self, message);
  g_task_run_in_thread (task, load_thread);
}

/* ---- Running a text (worker) ---- */

static GBytes *
render_thumb (const GbAttentionMaps *maps,
              guint                  l,
              guint                  h,
              gboolean               dark,
              float                 *buf)
{
  const guint T = maps->n_tokens;
  /* Thumbnails are scaled per row so that a head's pattern shows whatever
   * the size of its weights. */
  const GbHeatmap hm = { .n = T, .weights = buf, .causal = TRUE, .norm = GB_NORM_ROW_MAX, .dark = dark };
  cairo_surface_t *thumb = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, THUMB_PX, THUMB_PX);
  cairo_t *cr = cairo_create (thumb);

  gb_attention_maps_get_head (maps, l, h, buf);
  cairo_surface_t *cells = gb_heatmap_cells_surface (&hm);
  cairo_scale (cr, (double) THUMB_PX / T, (double) THUMB_PX / T);
  cairo_set_source_surface (cr, cells, 0, 0);
  cairo_pattern_set_filter (cairo_get_source (cr), T <= THUMB_PX ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
  cairo_paint (cr);
  cairo_destroy (cr);
  cairo_surface_destroy (cells);
  cairo_surface_flush (thumb);
  GBytes *bytes = g_bytes_new (cairo_image_surface_get_data (thumb),
                               (gsize) cairo_image_surface_get_stride (thumb) * THUMB_PX);
  cairo_surface_destroy (thumb);
  return bytes;
}

static void
run_thread (GTask        *task,
            gpointer      source,
            gpointer      task_data,
            GCancellable *cancellable)
{
  gb_thread_make_background ();
  RunJob *job = task_data;
  g_autoptr (GError) error = NULL;

  job->maps = gb_attention_maps_compute (job->model, (gint32 *) job->tokens->data, job->tokens->len, cancellable,
                                         progress_cb, job->progress, &error);
  if (job->maps == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  progress_cb (0.98, _("Drawing head thumbnails"), job->progress);
  const GbAttentionMaps *m = job->maps;
  g_autofree float *buf = g_new (float, (gsize) m->n_tokens * m->n_tokens);
  job->thumbs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (guint l = 0; l < m->n_layer; l++)
    for (guint h = 0; h < m->n_head; h++)
      g_ptr_array_add (job->thumbs, render_thumb (m, l, h, job->dark, buf));
  g_task_return_boolean (task, TRUE);
}

/* Token chips: a GtkGridView, so a 1024-token text makes widgets only for
 * the chips on screen (a box of 1024 labels took 50-150 ms to build and as
 * long again to lay out, on the main loop). */
static void
chip_setup_cb (GtkSignalListItemFactory *factory,
               GtkListItem              *item,
               gpointer                  data)
{
  GtkWidget *label = gtk_label_new (NULL);

  gtk_widget_add_css_class (label, "token-chip");
  gtk_list_item_set_child (item, label);
}

static void
chip_bind_cb (GtkSignalListItemFactory *factory,
              GtkListItem              *item,
              GbWindow                 *self)
{
  GtkWidget *label = gtk_list_item_get_child (item);
  const guint i = gtk_list_item_get_position (item);
  GtkStringObject *str = gtk_list_item_get_item (item);

  gtk_label_set_text (GTK_LABEL (label), gtk_string_object_get_string (str));
  if (i == self->token_query)
    gtk_widget_add_css_class (label, "selected-token");
  else
    gtk_widget_remove_css_class (label, "selected-token");
  if (self->maps == NULL || i >= self->maps->n_tokens)
    return;
  gsize n = 0;
  const guint8 *bytes = gb_tokenizer_token_bytes (gb_model_get_tokenizer (self->model), self->maps->tokens[i], &n);
  g_autoptr (GString) esc = g_string_new (NULL);
  for (gsize k = 0; k < n; k++)
    g_string_append_printf (esc, g_ascii_isprint (bytes[k]) && bytes[k] != '\\' ? "%c" : "\\x%02x", bytes[k]);
  g_autofree char *tip = g_strdup_printf (_("Position %u · id %d · bytes “%s”"), i, self->maps->tokens[i], esc->str);
  gtk_widget_set_tooltip_text (label, tip);
  /* The chip shows a space as "·"; a screen reader gets the token itself. */
  g_autofree char *text = bytes != NULL ? g_utf8_make_valid ((const char *) bytes, (gssize) n) : g_strdup ("");
  g_autofree char *a11y_name = g_strdup_printf (_("Token %u: “%s”"), i, text);
  gtk_accessible_update_property (GTK_ACCESSIBLE (label), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y_name,
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, tip, -1);
}

/* The chips go in a few at a time: GtkGridView makes a widget for every item
 * of its first 30 rows at once (733 chips for a 1024-token text: 85 ms on the
 * main thread, a visible stall); in chunks no frame waits long. */
#define CHIPS_PER_CHUNK 96

static gboolean
chips_chunk_cb (gpointer data)
{
  GbWindow *self = data;
  const guint have = g_list_model_get_n_items (G_LIST_MODEL (self->token_list));
  const guint n = self->maps ? self->maps->n_tokens : 0;
  const guint add = MIN (CHIPS_PER_CHUNK, n - MIN (have, n));

  if (add > 0)
    {
      g_autofree const char **chunk = g_new0 (const char *, add + 1);
      memcpy (chunk, self->labels + have, add * sizeof (char *));
      gtk_string_list_splice (self->token_list, have, 0, chunk);
    }
  if (have + add < n)
    return G_SOURCE_CONTINUE;
  self->chips_id = 0;
  return G_SOURCE_REMOVE;
}

static void
fill_token_chips (GbWindow *self)
{
  const guint n_old = g_list_model_get_n_items (G_LIST_MODEL (self->token_list));
  const guint n = self->maps ? self->maps->n_tokens : 0;

  g_clear_handle_id (&self->chips_id, g_source_remove);
  gtk_string_list_splice (self->token_list, 0, n_old, NULL);
  /* Tall enough for a few rows of a long text, no taller than a short one. */
  gtk_scrolled_window_set_min_content_height (self->token_scroller, n > 24 ? 150 : -1);
  if (chips_chunk_cb (self))
    self->chips_id = g_idle_add (chips_chunk_cb, self);
}

/* Re-binds the chips at @old and at token_query, so the selection mark
 * follows (not every chip: that rebinds hundreds). */
static void
refresh_token_chips (GbWindow *self,
                     guint     old)
{
  const guint n = g_list_model_get_n_items (G_LIST_MODEL (self->token_list));
  if (old < n)
    g_list_model_items_changed (G_LIST_MODEL (self->token_list), old, 1, 1);
  if (self->token_query < n && self->token_query != old)
    g_list_model_items_changed (G_LIST_MODEL (self->token_list), self->token_query, 1, 1);
}

static void
fill_thumbnails (GbWindow  *self,
                 GPtrArray *thumbs)
{
  GtkWidget *child;
  const GbAttentionMaps *m = self->maps;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->heads_box))) != NULL)
    gtk_flow_box_remove (self->heads_box, child);
  for (guint l = 0; l < m->n_layer; l++)
    for (guint h = 0; h < m->n_head; h++)
      {
        GBytes *bytes = thumbs->pdata[l * m->n_head + h];
        g_autoptr (GdkTexture) tex = gdk_memory_texture_new (THUMB_PX, THUMB_PX, GDK_MEMORY_DEFAULT, bytes, THUMB_PX * 4);
        GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 1);
        GtkWidget *overlay = gtk_overlay_new ();
        GtkWidget *pic = gtk_picture_new_for_paintable (GDK_PAINTABLE (tex));
        g_autofree char *name = g_strdup_printf ("L%u H%u", l, h);
        GtkWidget *label = gtk_label_new (name);
        GbHeadRole role = gb_head_scores_dominant (self->scores, l, h);
        g_autoptr (GString) tip = g_string_new (NULL);

        gtk_picture_set_can_shrink (GTK_PICTURE (pic), FALSE);
        gtk_overlay_set_child (GTK_OVERLAY (overlay), pic);
        if (role < GB_N_HEAD_ROLES)
          {
            GtkWidget *badge = gtk_label_new (gb_head_role_short (role));
            gtk_widget_add_css_class (badge, "role-badge");
            gtk_widget_set_halign (badge, GTK_ALIGN_END);
            gtk_widget_set_valign (badge, GTK_ALIGN_END);
            gtk_widget_set_margin_end (badge, 2);
            gtk_widget_set_margin_bottom (badge, 2);
            gtk_overlay_add_overlay (GTK_OVERLAY (overlay), badge);
          }
        gtk_widget_add_css_class (label, "head-name");
        gtk_box_append (GTK_BOX (box), overlay);
        gtk_box_append (GTK_BOX (box), label);
        gtk_widget_add_css_class (box, "head-thumb");
        g_string_append_printf (tip, _("Layer %u, head %u (rows scaled to their maximum)"), l, h);
        for (guint r = 0; r < GB_N_HEAD_ROLES; r++)
          g_string_append_printf (tip, "\n%s: %.2f", gb_head_role_name (r), gb_head_scores_get (self->scores, l, h, r));
        gtk_widget_set_tooltip_text (box, tip->str);
        gtk_flow_box_append (self->heads_box, box);
        GtkWidget *fchild = gtk_widget_get_parent (box);
        g_object_set_data (G_OBJECT (fchild), "layer", GUINT_TO_POINTER (l));
        g_object_set_data (G_OBJECT (fchild), "head", GUINT_TO_POINTER (h));
        /* Read out as "Layer 2, head 3: previous-token", the scores as its description. */
        g_autofree char *a11y_name = g_strdup_printf (_("Layer %u, head %u: %s"), l, h,
                                                      role < GB_N_HEAD_ROLES ? gb_head_role_name (role) : _("no clear role"));
        gtk_accessible_update_property (GTK_ACCESSIBLE (fchild), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y_name,
                                        GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, tip->str, -1);
      }
  gtk_flow_box_invalidate_sort (self->heads_box);
}

static gboolean screenshot_cb (gpointer data);
static void open_feature_failed_cb (GbWindow *self, const char *message);

/* "Open" on a feature in the Explain view: the Features view, that SAE,
 * that feature. */
static void
open_feature_ready_cb (GbWindow *self)
{
  g_signal_handlers_disconnect_by_func (self->features_view, open_feature_ready_cb, self);
  g_signal_handlers_disconnect_by_func (self->features_view, open_feature_failed_cb, self);
  const int index = GPOINTER_TO_INT (g_object_steal_data (G_OBJECT (self), "gb-open-feature")) - 1;
  if (index >= 0)
    gb_features_view_select (self->features_view, index);
  /* Opening the SAE there builds its feature cache: the descriptions. */
  gb_explain_view_reload_sae_descriptions (self->explain_view);
  if (self->automation != NULL && g_strcmp0 (self->automation->view, "explain") == 0)
    {
      if (self->automation->screenshot)
        g_timeout_add (300, screenshot_cb, self);
      else
        automation_done (self, 0);
    }
}

static void
open_feature_failed_cb (GbWindow   *self,
                        const char *message)
{
  g_signal_handlers_disconnect_by_func (self->features_view, open_feature_ready_cb, self);
  g_signal_handlers_disconnect_by_func (self->features_view, open_feature_failed_cb, self);
  if (self->automation != NULL && g_strcmp0 (self->automation->view, "explain") == 0)
    {
      g_printerr ("glassbox: %s\n", message);
      automation_done (self, 1);
    }
}

static void
explain_open_steering_cb (GbWindow   *self,
                          const char *pairs)
{
  adw_view_stack_set_visible_child_name (self->stack, "steering");
  if (!gb_steering_view_select_pairs (self->steering_view, pairs))
    toast (self, "The bundled pair set is missing");
}

static void
explain_open_feature_cb (GbWindow   *self,
                         const char *sae_dir,
                         int         index)
{
  adw_view_stack_set_visible_child_name (self->stack, "features");
  g_object_set_data (G_OBJECT (self), "gb-open-feature", GINT_TO_POINTER (index + 1));
  g_signal_handlers_disconnect_by_func (self->features_view, open_feature_ready_cb, self);
  g_signal_handlers_disconnect_by_func (self->features_view, open_feature_failed_cb, self);
  g_signal_connect_swapped (self->features_view, "ready", G_CALLBACK (open_feature_ready_cb), self);
  g_signal_connect_swapped (self->features_view, "failed", G_CALLBACK (open_feature_failed_cb), self);
  gb_features_view_open (self->features_view, sae_dir, NULL);
}

static void
apply_automation (GbWindow *self);

static void
run_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr (GbWindow) self = user_data;
  g_autoptr (GError) error = NULL;
  RunJob *job = g_task_get_task_data (G_TASK (result));

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          show_busy (self, NULL);
          toast (self, error->message);
        }
      return;
    }
  show_busy (self, NULL);
  if (job->model != self->model)
    return;
  self->run_done_at[0] = g_get_monotonic_time ();
  g_clear_pointer (&self->maps, gb_attention_maps_free);
  g_strfreev (self->labels);
  self->maps = g_steal_pointer (&job->maps);
  self->labels = gb_token_labels (gb_model_get_tokenizer (self->model), self->maps->tokens, self->maps->n_tokens);
  self->token_query = self->maps->n_tokens - 1;

  self->updating = TRUE;
  gtk_spin_button_set_range (self->layer_spin, 0, self->maps->n_layer - 1);
  gtk_spin_button_set_range (self->head_spin, 0, self->maps->n_head - 1);
  self->updating = FALSE;
  fill_token_chips (self);
  fill_thumbnails (self, job->thumbs);
  update_figure (self);
  self->run_done_at[1] = g_get_monotonic_time ();
  if (self->automation)
    apply_automation (self);
}

static void
run_text (GbWindow *self)
{
  g_autoptr (GError) error = NULL;
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->text_entry));
  guint dropped = 0;

  if (self->model == NULL)
    return;
  if (self->automation && self->automation->frame_stats && self->frame_times == NULL)
    self->frame_times = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) ids = gb_attention_tokenize (self->model, text, &dropped, &error);
  if (ids == NULL)
    {
      toast (self, error->message);
      return;
    }
  if (ids->len == 0)
    {
      toast (self, _("Type a text first: there is nothing to run"));
      return;
    }
  if (self->settings)
    g_settings_set_string (self->settings, "last-text", text);
  if (dropped > 0)
    {
      g_autofree char *notice = g_strdup_printf (_("The text is %u tokens longer than the model's context of %u: "
                                                   "only the first %u are shown."), dropped, ids->len, ids->len);
      gtk_label_set_text (self->clip_label, notice);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->clip_label), dropped > 0);

  g_cancellable_cancel (self->run_cancellable);
  g_clear_object (&self->run_cancellable);
  self->run_cancellable = g_cancellable_new ();
  RunJob *job = g_new0 (RunJob, 1);
  job->model = gb_model_ref (self->model);
  job->tokens = g_steal_pointer (&ids);
  job->dark = adw_style_manager_get_dark (adw_style_manager_get_default ());
  job->progress = g_atomic_rc_box_acquire (self->progress_state);
  g_autoptr (GTask) task = g_task_new (NULL, self->run_cancellable, run_done_cb, g_object_ref (self)); /* see gb_window_load_model */
  g_task_set_source_tag (task, run_text);
  g_task_set_task_data (task, job, (GDestroyNotify) run_job_free);
  show_busy (self, _("Running the model"));
  g_task_run_in_thread (task, run_thread);
}

/* ---- The figure ---- */

static GbAttentionSelection
current_selection (GbWindow *self)
{
  const ViewKind kind = gtk_drop_down_get_selected (self->agg_dropdown);
  GbAttentionSelection sel = {
    .aggregation = kind == VIEW_MEAN ? GB_AGG_LAYER_MEAN : kind == VIEW_ROLLOUT ? GB_AGG_ROLLOUT : GB_AGG_HEAD,
    .layer = (guint) gtk_spin_button_get_value_as_int (self->layer_spin),
    .head = (guint) gtk_spin_button_get_value_as_int (self->head_spin),
    .norm = gtk_drop_down_get_selected (self->norm_dropdown),
  };
  return sel;
}

static void
update_role_label (GbWindow                   *self,
                   const GbAttentionSelection *sel)
{
  g_autoptr (GString) s = g_string_new (NULL);
  GbHeadRole role = gb_head_scores_dominant (self->scores, sel->layer, sel->head);

  g_string_append_printf (s, "<b>Layer %u head %u</b>: %s\n", sel->layer, sel->head,
                          role < GB_N_HEAD_ROLES ? gb_head_role_name (role) : "no clear role");
  for (guint r = 0; r < GB_N_HEAD_ROLES; r++)
    g_string_append_printf (s, "%s%s %.2f", r ? " · " : "", gb_head_role_name (r),
                            gb_head_scores_get (self->scores, sel->layer, sel->head, r));
  gtk_label_set_markup (self->role_label, s->str);
}

static void
highlight_current_head (GbWindow                   *self,
                        const GbAttentionSelection *sel)
{
  for (GtkWidget *c = gtk_widget_get_first_child (GTK_WIDGET (self->heads_box)); c; c = gtk_widget_get_next_sibling (c))
    {
      const gboolean current = sel->aggregation == GB_AGG_HEAD &&
                               GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (c), "layer")) == sel->layer &&
                               GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (c), "head")) == sel->head;
      GtkWidget *box = gtk_flow_box_child_get_child (GTK_FLOW_BOX_CHILD (c));
      if (current)
        gtk_widget_add_css_class (box, "current");
      else
        gtk_widget_remove_css_class (box, "current");
    }
}

static void
update_figure (GbWindow *self)
{
  if (self->maps == NULL || self->updating)
    return;
  const ViewKind kind = gtk_drop_down_get_selected (self->agg_dropdown);
  const GbAttentionSelection sel = current_selection (self);
  g_autofree float *w = gb_attention_selection_weights (self->maps, &sel);
  g_autofree char *title = gb_attention_selection_title (gb_model_get_name (self->model), self->maps, &sel);
  const guint T = self->maps->n_tokens;

  gtk_widget_set_sensitive (GTK_WIDGET (self->layer_row), kind != VIEW_ROLLOUT);
  gtk_widget_set_sensitive (GTK_WIDGET (self->head_row), kind == VIEW_HEAD || kind == VIEW_TOKEN);
  update_role_label (self, &sel);
  highlight_current_head (self, &sel);
  if (sel.aggregation == GB_AGG_HEAD)
    {
      GbHeadRole role = gb_head_scores_dominant (self->scores, sel.layer, sel.head);
      g_autofree char *with_role = role < GB_N_HEAD_ROLES
        ? g_strdup_printf ("%s · %s head (%.2f)", title, gb_head_role_name (role),
                           gb_head_scores_get (self->scores, sel.layer, sel.head, role))
        : g_strdup (title);
      gtk_label_set_text (self->figure_title, with_role);
    }
  else
    gtk_label_set_text (self->figure_title, title);
  gb_attention_grid_set_norm (self->grid, sel.norm);
  if (kind == VIEW_TOKEN)
    {
      const guint q = MIN (self->token_query, T - 1);
      g_autofree char *caption = g_strdup_printf (_("From “%s” (position %u): where layer %u head %u looks"),
                                                  self->labels[q], q, sel.layer, sel.head);
      gb_token_bars_set_row (self->bars, T, w + (gsize) q * T, (const char *const *) self->labels, q, caption);
      gtk_stack_set_visible_child_name (self->figure_stack, "bars");
      return;
    }
  gb_attention_grid_set_data (self->grid, T, w, (const char *const *) self->labels, title);
  gtk_stack_set_visible_child_name (self->figure_stack, "grid");
}

static char *
grid_tooltip_cb (guint    query,
                 guint    key,
                 gpointer user_data)
{
  GbWindow *self = user_data;
  const GbAttentionMaps *m = self->maps;
  const GbAttentionSelection sel = current_selection (self);
  const gsize T = m->n_tokens;

  if (sel.aggregation == GB_AGG_ROLLOUT)
    return g_strdup_printf (_("Layer %u mean: %.4f"), m->n_layer - 1, m->layer_means[(m->n_layer - 1) * T * T + query * T + key]);
  return g_strdup_printf (_("Layer %u mean: %.4f · rollout: %.4f"), sel.layer,
                          m->layer_means[sel.layer * T * T + query * T + key], m->rollout[query * T + key]);
}

/* ---- Export ---- */

static gboolean
export_current (GbWindow   *self,
                const char *path,
                double      scale,
                GError    **error)
{
  const GbAttentionSelection sel = current_selection (self);

  if (self->maps == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, _("Run a text first: there is nothing to export"));
      return FALSE;
    }
  return gb_attention_export (self->model, self->maps, &sel, path, scale, error);
}

static void
export_response_cb (GbWindow             *self,
                    int                   response,
                    GtkFileChooserNative *chooser)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GFile) file = NULL;
  const gboolean all = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (chooser), "all"));

  if (response == GTK_RESPONSE_ACCEPT && (file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser))) != NULL)
    {
      g_autofree char *path = g_file_get_path (file);
      const char *choice = gtk_file_chooser_get_choice (GTK_FILE_CHOOSER (chooser), "scale");
      const double scale = choice ? g_ascii_strtod (choice, NULL) : 1;
      const GbAttentionSelection sel = current_selection (self);
      gboolean ok = all ? gb_attention_export_all_heads (self->model, self->maps, self->scores, sel.norm, path, scale, &error)
                        : export_current (self, path, scale, &error);
      if (ok)
        {
          g_autofree char *base = g_path_get_basename (path);
          g_autofree char *msg = g_strdup_printf (_("Saved %s"), base);
          toast (self, msg);
        }
      else
        toast (self, error->message);
    }
  g_clear_object (&self->chooser);
}

static void
add_filter (GtkFileChooser *chooser,
            const char     *name,
            const char     *pattern)
{
  g_autoptr (GtkFileFilter) f = gtk_file_filter_new ();
  gtk_file_filter_set_name (f, name);
  gtk_file_filter_add_pattern (f, pattern);
  gtk_file_chooser_add_filter (chooser, f);
}

static void
export_dialog (GbWindow *self,
               gboolean  all)
{
  static const char *ids[] = { "1", "2", "4", NULL };
  static const char *names[] = { "1×", "2×", "4×", NULL };

  if (self->maps == NULL)
    {
      toast (self, _("Run a text first: there is nothing to export"));
      return;
    }
  self->chooser = gtk_file_chooser_native_new (all ? _("Export All Heads") : _("Export Heatmap"), GTK_WINDOW (self),
                                               GTK_FILE_CHOOSER_ACTION_SAVE, _("_Export"), _("_Cancel"));
  GtkFileChooser *fc = GTK_FILE_CHOOSER (self->chooser);
  gtk_file_chooser_set_current_name (fc, all ? "attention-all-heads.png" : "attention.png");
  add_filter (fc, _("PNG image"), "*.png");
  add_filter (fc, _("SVG vector image"), "*.svg");
  add_filter (fc, _("PDF document"), "*.pdf");
  if (!all)
    {
      add_filter (fc, _("NumPy array (raw weights)"), "*.npy");
      add_filter (fc, _("JSON (raw weights)"), "*.json");
    }
  gtk_file_chooser_add_choice (fc, "scale", _("PNG scale"), ids, names);
  gtk_file_chooser_set_choice (fc, "scale", "2");
  g_object_set_data (G_OBJECT (self->chooser), "all", GINT_TO_POINTER (all));
  g_signal_connect_swapped (self->chooser, "response", G_CALLBACK (export_response_cb), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

/* ---- Screenshots (tests and README) ---- */

static gboolean
save_screenshot (GtkWidget  *widget,
                 const char *path,
                 GError    **error)
{
  const int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  const int scale = gtk_widget_get_scale_factor (widget);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();

  gtk_snapshot_scale (snapshot, scale, scale);
  gdk_paintable_snapshot (paintable, snapshot, w, h);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  if (node == NULL)
    return FALSE;
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  g_autoptr (GdkTexture) texture = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w * scale, h * scale));
  return gb_texture_save_png (texture, path, error);
}

/* Saves the screenshot once the window is mapped, has its size and has
 * drawn a few frames since the last change (a fixed delay is not enough on a
 * cold start, when fontconfig builds its cache). */
static gboolean
screenshot_tick_cb (GtkWidget     *widget,
                    GdkFrameClock *clock,
                    gpointer       data)
{
  GbWindow *self = data;
  guint frames = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (widget), "gb-shot-frames")) + 1;

  if (!gtk_widget_get_mapped (widget) || gtk_widget_get_width (widget) <= 0)
    return G_SOURCE_CONTINUE;
  g_object_set_data (G_OBJECT (widget), "gb-shot-frames", GUINT_TO_POINTER (frames));
  if (frames < 6)
    {
      gtk_widget_queue_draw (widget);
      return G_SOURCE_CONTINUE;
    }
  if (self->automation->frame_stats)
    {
      /* The frames up to here; saving the screenshot is not the app's work. */
      print_frame_stats (self);
      self->frame_stats_printed = TRUE;
    }
  g_autoptr (GError) error = NULL;
  const gboolean ok = save_screenshot (widget, self->automation->screenshot, &error);

  /* A frame that was not rendered yet gives no node (and no error): try the
   * next ones. A file that cannot be written is final. */
  if (!ok && error == NULL && frames < 6 + 60)
    {
      gtk_widget_queue_draw (widget);
      return G_SOURCE_CONTINUE;
    }
  if (widget != GTK_WIDGET (self))
    gtk_window_destroy (GTK_WINDOW (widget));  /* a dialog shot on its own */
  if (!ok)
    g_printerr ("glassbox: could not save the screenshot to %s%s%s\n", self->automation->screenshot,
                error ? ": " : "", error ? error->message : "");
  automation_done (self, ok ? 0 : 1);
  return G_SOURCE_REMOVE;
}

static gboolean
screenshot_cb (gpointer data)
{
  GbWindow *self = data;

  gtk_widget_add_tick_callback (GTK_WIDGET (self), screenshot_tick_cb, self, NULL);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  return G_SOURCE_REMOVE;
}

static gboolean
features_export_cb (gpointer data)
{
  GbWindow *self = data;
  g_autoptr (GError) error = NULL;

  static guint tries;

  if (!gb_features_view_export (self->features_view, self->automation->export_features, &error)
      && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING) && ++tries < 100)
    return G_SOURCE_CONTINUE;
  if (error != NULL)
    {
      g_printerr ("glassbox: %s\n", error->message);
      automation_done (self, 1);
    }
  else if (self->automation->screenshot)
    g_timeout_add (100, screenshot_cb, self);
  else
    automation_done (self, 0);
  return G_SOURCE_REMOVE;
}

static gboolean
dialog_screenshot_cb (gpointer data)
{
  GbWindow *self = data;
  GtkWindow *dialog = gb_features_view_show_train_dialog (self->features_view);

  gtk_widget_add_tick_callback (GTK_WIDGET (dialog), screenshot_tick_cb, self, NULL);
  return G_SOURCE_REMOVE;
}

static void
features_ready_cb (GbWindow *self)
{
  const GbAutomation *a = self->automation;

  g_signal_handlers_disconnect_by_data (self->features_view, self);
  if (a->search)
    gb_features_view_search (self->features_view, a->search);
  if (a->feature >= 0)
    gb_features_view_select (self->features_view, a->feature);
  if (a->features_text)
    gb_features_view_show_text (self->features_view, a->features_text);
  if (a->export_features)
    /* The feature page needs a frame to be laid out before it is drawn. */
    g_timeout_add (300, features_export_cb, self);
  else if (a->screenshot)
    g_timeout_add (300, screenshot_cb, self);
  else
    automation_done (self, 0);
}

static void
features_failed_cb (GbWindow   *self,
                    const char *message)
{
  g_signal_handlers_disconnect_by_data (self->features_view, self);
  g_printerr ("glassbox: %s\n", message);
  automation_done (self, 1);
}

static void
steering_demo_done (int      status,
                    gpointer data)
{
  GbWindow *self = data;
  if (status != 0 || self->automation->screenshot == NULL)
    automation_done (self, status);
  else
    g_timeout_add (300, screenshot_cb, self);
}

static gboolean
run_steering_demo (GbWindow *self)
{
  const GbAutomation *a = self->automation;
  GbSteeringDemo demo = {
    .pairs = a->steer_pairs, .multiplier = a->steer_multiplier, .prompt = a->steer_prompt,
    .n_tokens = a->steer_tokens > 0 ? (guint) a->steer_tokens : 30, .wiggle = a->steer_wiggle,
    .sweep_png = a->steer_sweep_png,
  };
  g_auto (GStrv) parts = g_strsplit (a->steer_layers ? a->steer_layers : "", ",", -1);

  for (guint i = 0; parts[i]; i++)
    {
      guint64 l;
      if (g_ascii_string_to_unsigned (g_strstrip (parts[i]), 10, 0, 63, &l, NULL))
        demo.blocks |= G_GUINT64_CONSTANT (1) << l;
    }
  adw_view_stack_set_visible_child_name (self->stack, "steering");
  gb_steering_view_run_demo (self->steering_view, &demo, steering_demo_done, self);
  return TRUE;
}

static void explain_open_feature_cb (GbWindow *self, const char *sae_dir, int index);

static void
explain_automation_done (gpointer data,
                         int      status)
{
  GbWindow *self = data;

  /* --feature N: then "Open" on that feature, as a click would. */
  const char *sae_dir = gb_explain_view_get_sae_dir (self->explain_view);
  if (status == 0 && self->automation->feature >= 0 && sae_dir != NULL)
    {
      g_autofree char *dir = g_strdup (sae_dir);
      explain_open_feature_cb (self, dir, self->automation->feature);
      return;
    }

  if (status == 0 && self->automation->screenshot)
    g_timeout_add (300, screenshot_cb, self);
  else
    automation_done (self, status);
}

static void
apply_automation (GbWindow *self)
{
  const GbAutomation *a = self->automation;
  g_autoptr (GError) error = NULL;
  static const char *kinds[] = { "head", "mean", "rollout", "token" };

  if (g_strcmp0 (a->view, "steering") == 0 && run_steering_demo (self))
    return;
  if (a->view != NULL && g_str_equal (a->view, "explain"))
    {
      GtkWidget *stack = gtk_widget_get_ancestor (GTK_WIDGET (self->explain_view), ADW_TYPE_VIEW_STACK);
      adw_view_stack_set_visible_child_name (ADW_VIEW_STACK (stack), "explain");
      if (a->steer_vector || a->steer_pairs || a->sae || a->sae_field)
        {
          g_autofree char *pairs = NULL;
          if (a->steer_pairs && !g_file_test (a->steer_pairs, G_FILE_TEST_EXISTS))
            pairs = g_strdup_printf ("%s/pairs/%s.json", gb_data_dir (), a->steer_pairs);
          else
            pairs = g_strdup (a->steer_pairs);
          int block = a->steer_layers && *a->steer_layers ? atoi (a->steer_layers) : -1;
          gb_explain_view_automate_steering (self->explain_view, a->steer_vector, pairs, block, a->steer_multiplier, a->sae,
                                             a->sae_field);
        }
      gb_explain_view_automate (self->explain_view, a->application, a->audit, a->report, explain_automation_done, self);
      return;
    }

  self->updating = TRUE;
  if (a->layer >= 0)
    gtk_spin_button_set_value (self->layer_spin, a->layer);
  if (a->head >= 0)
    gtk_spin_button_set_value (self->head_spin, a->head);
  for (guint k = 0; a->aggregation && k < G_N_ELEMENTS (kinds); k++)
    if (g_str_equal (a->aggregation, kinds[k]))
      gtk_drop_down_set_selected (self->agg_dropdown, k);
  self->updating = FALSE;
  update_figure (self);
  if (a->pin_query >= 0)
    gb_attention_grid_set_pinned (self->grid, a->pin_query, a->pin_key);
  if (a->export_path && !export_current (self, a->export_path, a->export_scale, &error))
    {
      g_printerr ("glassbox: %s\n", error->message);
      automation_done (self, 1);
      return;
    }
  if (g_strcmp0 (a->view, "features") == 0)
    {
      adw_view_stack_set_visible_child_name (self->stack, "features");
      if (a->train_dialog && a->screenshot)
        {
          g_timeout_add (300, dialog_screenshot_cb, self);
          return;
        }
      if (a->train_sae)
        {
          /* The Train dialog's defaults: the middle layer's resid_post, TopK k = 32, 8x. */
          const GbConfig *c = gb_model_get_config (self->model);
          GbSaeRunOptions o;
          gb_sae_run_options_init (&o);
          o.layer = c->n_layer / 2;
          o.train.d_sae = 8 * c->n_embd;
          o.n_tokens = a->train_tokens ? g_ascii_strtoull (a->train_tokens, NULL, 10) : 500000;
          g_signal_connect_swapped (self->features_view, "ready", G_CALLBACK (features_ready_cb), self);
          g_signal_connect_swapped (self->features_view, "failed", G_CALLBACK (features_failed_cb), self);
          gb_features_view_train (self->features_view, &o, a->sae_corpus ? a->sae_corpus : gb_features_view_default_corpus (),
                                  a->train_sae);
          return;
        }
      if (a->sae)
        {
          g_signal_connect_swapped (self->features_view, "ready", G_CALLBACK (features_ready_cb), self);
          g_signal_connect_swapped (self->features_view, "failed", G_CALLBACK (features_failed_cb), self);
          gb_features_view_open (self->features_view, a->sae, a->sae_corpus);
          return;
        }
    }
  if (a->screenshot)
    /* Give GTK a few frames to lay out and draw what just changed. */
    g_timeout_add (300, screenshot_cb, self);
  else
    automation_done (self, 0);
}

/* ---- Callbacks ---- */

static void
text_activate_cb (GbWindow *self)
{
  run_text (self);
}

static void
token_activated_cb (GbWindow    *self,
                    guint        position,
                    GtkGridView *view)
{
  const guint old = self->token_query;
  self->token_query = position;
  refresh_token_chips (self, old);
  if (gtk_drop_down_get_selected (self->agg_dropdown) == VIEW_TOKEN)
    update_figure (self);
  else
    gb_attention_grid_set_pinned (self->grid, (int) self->token_query, (int) self->token_query);
}

static void
head_activated_cb (GbWindow        *self,
                   GtkFlowBoxChild *child)
{
  self->updating = TRUE;
  gtk_spin_button_set_value (self->layer_spin, GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (child), "layer")));
  gtk_spin_button_set_value (self->head_spin, GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (child), "head")));
  if (gtk_drop_down_get_selected (self->agg_dropdown) != VIEW_TOKEN)
    gtk_drop_down_set_selected (self->agg_dropdown, VIEW_HEAD);
  self->updating = FALSE;
  update_figure (self);
}

static void
grid_pinned_cb (GbWindow        *self,
                int              query,
                int              key,
                GbAttentionGrid *grid)
{
  if (query >= 0 && (guint) query != self->token_query)
    {
      const guint old = self->token_query;
      self->token_query = (guint) query;
      refresh_token_chips (self, old);
    }
}

static int
sort_heads_cb (GtkFlowBoxChild *a,
               GtkFlowBoxChild *b,
               gpointer         user_data)
{
  GbWindow *self = user_data;
  const guint by = gtk_drop_down_get_selected (self->sort_dropdown);
  const guint la = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (a), "layer"));
  const guint ha = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (a), "head"));
  const guint lb = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (b), "layer"));
  const guint hb = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (b), "head"));

  if (by > 0 && self->scores)
    {
      const float sa = gb_head_scores_get (self->scores, la, ha, by - 1);
      const float sb = gb_head_scores_get (self->scores, lb, hb, by - 1);
      if (sa != sb)
        return sa > sb ? -1 : 1;
    }
  return (int) (la * 1000 + ha) - (int) (lb * 1000 + hb);
}

static void
sort_changed_cb (GbWindow *self)
{
  gtk_flow_box_invalidate_sort (self->heads_box);
}

static void
norm_changed_cb (GbWindow *self)
{
  if (self->settings)
    g_settings_set_string (self->settings, "norm", gb_norm_name (gtk_drop_down_get_selected (self->norm_dropdown)));
  update_figure (self);
}

static void
open_response_cb (GbWindow             *self,
                  int                   response,
                  GtkFileChooserNative *chooser)
{
  g_autoptr (GFile) file = NULL;

  if (response == GTK_RESPONSE_ACCEPT && (file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser))) != NULL)
    {
      g_autofree char *path = g_file_get_path (file);
      gb_window_load_model (self, path);
    }
  g_clear_object (&self->chooser);
}

/* ---- Actions ---- */

static void
open_action (GtkWidget  *widget,
             const char *name,
             GVariant   *param)
{
  GbWindow *self = GB_WINDOW (widget);

  self->chooser = gtk_file_chooser_native_new (_("Open Model Folder"), GTK_WINDOW (self),
                                               GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Open"), _("_Cancel"));
  g_signal_connect_swapped (self->chooser, "response", G_CALLBACK (open_response_cb), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static void
load_model_action (GtkWidget  *widget,
                   const char *name,
                   GVariant   *param)
{
  gb_window_load_model (GB_WINDOW (widget), g_variant_get_string (param, NULL));
}

static void
export_action (GtkWidget  *widget,
               const char *name,
               GVariant   *param)
{
  export_dialog (GB_WINDOW (widget), g_str_equal (name, "win.export-all"));
}

/* The Attention view's text, token by token, with each token's strongest
 * SAE features (the Features view's SAE). */
static void
features_on_text_action (GtkWidget  *widget,
                         const char *name,
                         GVariant   *param)
{
  GbWindow *self = GB_WINDOW (widget);

  adw_view_stack_set_visible_child_name (self->stack, "features");
  gb_features_view_show_text (self->features_view, gtk_editable_get_text (GTK_EDITABLE (self->text_entry)));
}

static void
run_action (GtkWidget  *widget,
            const char *name,
            GVariant   *param)
{
  run_text (GB_WINDOW (widget));
}

static void
cancel_action (GtkWidget  *widget,
               const char *name,
               GVariant   *param)
{
  GbWindow *self = GB_WINDOW (widget);

  g_cancellable_cancel (self->load_cancellable);
  g_cancellable_cancel (self->run_cancellable);
  show_busy (self, NULL);
}

static void
zoom_action (GtkWidget  *widget,
             const char *name,
             GVariant   *param)
{
  GbWindow *self = GB_WINDOW (widget);
  const char *target = g_str_equal (name, "win.zoom-in") ? "grid.zoom-in"
                       : g_str_equal (name, "win.zoom-out") ? "grid.zoom-out"
                       : g_str_equal (name, "win.zoom-fit") ? "grid.fit"
                                                            : "grid.actual-size";
  gtk_widget_activate_action (GTK_WIDGET (self->grid), target, NULL);
}

/* ---- Overrides ---- */

/* gtk_window_destroy() unrealizes the window but does not dispose it while
 * a job still holds it: stop the jobs here, so closing a window mid-load
 * does not finish the load. */
static void
gb_window_unrealize (GtkWidget *widget)
{
  GbWindow *self = GB_WINDOW (widget);

  g_cancellable_cancel (self->load_cancellable);
  g_cancellable_cancel (self->run_cancellable);
  GTK_WIDGET_CLASS (gb_window_parent_class)->unrealize (widget);
}

static void
gb_window_dispose (GObject *object)
{
  GbWindow *self = GB_WINDOW (object);

  g_cancellable_cancel (self->load_cancellable);
  g_cancellable_cancel (self->run_cancellable);
  g_clear_handle_id (&self->chips_id, g_source_remove);
  g_clear_object (&self->load_cancellable);
  g_clear_object (&self->run_cancellable);
  g_clear_object (&self->settings);
  gb_drop_chooser (&self->chooser, self);
  gtk_widget_dispose_template (GTK_WIDGET (self), GB_TYPE_WINDOW);
  G_OBJECT_CLASS (gb_window_parent_class)->dispose (object);
}

static void
gb_window_finalize (GObject *object)
{
  GbWindow *self = GB_WINDOW (object);

  g_clear_pointer (&self->model, gb_model_unref);
  g_clear_pointer (&self->scores, gb_head_scores_free);
  g_clear_pointer (&self->maps, gb_attention_maps_free);
  g_strfreev (self->labels);
  g_clear_pointer (&self->frame_times, g_array_unref);
  g_clear_object (&self->token_list);
  g_atomic_rc_box_release_full (self->progress_state, (GDestroyNotify) progress_free);
  G_OBJECT_CLASS (gb_window_parent_class)->finalize (object);
}

static void
gb_window_class_init (GbWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = gb_window_dispose;
  GTK_WIDGET_CLASS (klass)->unrealize = gb_window_unrealize;
  object_class->finalize = gb_window_finalize;

  g_type_ensure (GB_TYPE_ATTENTION_GRID);
  g_type_ensure (GB_TYPE_TOKEN_BARS);
  g_type_ensure (GB_TYPE_STEERING_VIEW);
  g_type_ensure (GB_TYPE_FEATURES_VIEW);
  g_type_ensure (GB_TYPE_EXPLAIN_VIEW);
  gtk_widget_class_set_template_from_resource (widget_class, "/org/glassbox/Glassbox/gb-window.ui");
  gtk_widget_class_bind_template_child (widget_class, GbWindow, toasts);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, switcher_title);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, model_button);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, model_name);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, model_info);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, progress_revealer);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, progress);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, progress_label);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, attention_stack);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, empty_page);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, text_entry);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, token_view);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, token_scroller);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, clip_label);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, agg_dropdown);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, norm_dropdown);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, sort_dropdown);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, layer_row);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, head_row);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, layer_spin);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, head_spin);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, role_label);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, heads_box);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, figure_title);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, figure_stack);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, explain_view);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, grid);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, bars);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, stack);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, steering_view);
  gtk_widget_class_bind_template_child (widget_class, GbWindow, features_view);
  gtk_widget_class_bind_template_callback (widget_class, text_activate_cb);
  gtk_widget_class_bind_template_callback (widget_class, token_activated_cb);
  gtk_widget_class_bind_template_callback (widget_class, head_activated_cb);
  gtk_widget_class_bind_template_callback (widget_class, grid_pinned_cb);

  gtk_widget_class_install_action (widget_class, "win.open", NULL, open_action);
  gtk_widget_class_install_action (widget_class, "win.load-model", "s", load_model_action);
  gtk_widget_class_install_action (widget_class, "win.export", NULL, export_action);
  gtk_widget_class_install_action (widget_class, "win.export-all", NULL, export_action);
  gtk_widget_class_install_action (widget_class, "win.run", NULL, run_action);
  gtk_widget_class_install_action (widget_class, "win.features-on-text", NULL, features_on_text_action);
  gtk_widget_class_install_action (widget_class, "win.cancel", NULL, cancel_action);
  gtk_widget_class_install_action (widget_class, "win.zoom-in", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "win.zoom-out", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "win.zoom-fit", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "win.zoom-actual", NULL, zoom_action);
}

static void
gb_window_init (GbWindow *self)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr (GSettingsSchema) schema = source ? g_settings_schema_source_lookup (source, "org.glassbox.Glassbox", TRUE) : NULL;

  gtk_widget_init_template (GTK_WIDGET (self));
  g_signal_connect_swapped (self->explain_view, "open-feature", G_CALLBACK (explain_open_feature_cb), self);
  g_signal_connect_swapped (self->explain_view, "open-steering", G_CALLBACK (explain_open_steering_cb), self);
  {
    GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
    self->token_list = gtk_string_list_new (NULL);
    g_signal_connect (factory, "setup", G_CALLBACK (chip_setup_cb), NULL);
    g_signal_connect (factory, "bind", G_CALLBACK (chip_bind_cb), self);
    gtk_grid_view_set_factory (self->token_view, factory);
    g_object_unref (factory);
    gtk_grid_view_set_model (self->token_view,
                             GTK_SELECTION_MODEL (gtk_no_selection_new (G_LIST_MODEL (g_object_ref (self->token_list)))));
  }
  self->progress_state = g_atomic_rc_box_new0 (Progress);
  g_mutex_init (&self->progress_state->lock);
  g_weak_ref_init (&self->progress_state->window, self);

  /* Without the schema (an uninstalled run without GSETTINGS_SCHEMA_DIR)
   * the app works, it only forgets recent models. */
  if (schema != NULL)
    self->settings = g_settings_new_full (schema, NULL, NULL);
  if (self->settings)
    {
      g_autofree char *text = g_settings_get_string (self->settings, "last-text");
      g_autofree char *norm_name = g_settings_get_string (self->settings, "norm");
      GbNorm norm = GB_NORM_LINEAR;
      gtk_editable_set_text (GTK_EDITABLE (self->text_entry), text);
      if (gb_norm_from_name (norm_name, &norm))
        gtk_drop_down_set_selected (self->norm_dropdown, norm);
    }
  else
    gtk_editable_set_text (GTK_EDITABLE (self->text_entry), "The bank rejected the loan application because the applicant");

  g_autofree char *desc = g_markup_printf_escaped (
    _("Glassbox opens the demo model from <b>%s</b>, and it is not there yet. "
      "Open a GPT-2 model folder in Hugging Face layout (config.json, model.safetensors, vocab.json, merges.txt)."),
    gb_window_default_model_dir ());
  adw_status_page_set_description (self->empty_page, desc);

  gtk_flow_box_set_sort_func (self->heads_box, sort_heads_cb, self, NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_revealer), FALSE);
  g_signal_connect_swapped (self->sort_dropdown, "notify::selected", G_CALLBACK (sort_changed_cb), self);
  g_signal_connect_swapped (self->norm_dropdown, "notify::selected", G_CALLBACK (norm_changed_cb), self);
  g_signal_connect_swapped (self->agg_dropdown, "notify::selected", G_CALLBACK (update_figure), self);
  g_signal_connect_swapped (self->layer_spin, "value-changed", G_CALLBACK (update_figure), self);
  g_signal_connect_swapped (self->head_spin, "value-changed", G_CALLBACK (update_figure), self);
  gb_attention_grid_set_tooltip_func (self->grid, grid_tooltip_cb, self);
  rebuild_model_menu (self);
  update_header (self);
}

/* ---- Public API ---- */

GbWindow *
gb_window_new (AdwApplication *app)
{
  return g_object_new (GB_TYPE_WINDOW, "application", app, NULL);
}

void
gb_window_automate (GbWindow           *self,
                    const GbAutomation *automation)
{
  g_return_if_fail (GB_IS_WINDOW (self));
  self->automation = automation;
  if (automation->frame_stats)
    gtk_widget_add_tick_callback (GTK_WIDGET (self), frame_stats_tick_cb, NULL, NULL);
}
