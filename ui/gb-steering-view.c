/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-ui"

#include <adwaita.h>
#include <math.h>
#include <string.h>

#include "gb-ui-util.h"
#include "gb-build-config.h"
#include "gb-separation-chart.h"
#include "gb-steering-view.h"

/* Degeneration warning: share of repeated 3-grams in the steered text. */
#define REPEAT_WARN 0.3
#define REPEAT_MIN_TOKENS 12
/* ... or when the steered residual stream's projection on the direction
 * lands this many training standard deviations from the training texts. */
#define PROJ_WARN_Z 6.0
/* A moved slider restarts the steered run once it has rested this long. */
#define RESTART_MS 180
#define MAX_SWEEP 12

typedef enum
{
  PANE_BASELINE,
  PANE_STEERED,
  N_PANES
} Pane;

/* Tokens cross from a generation worker to the main thread one way: the
 * worker appends under the lock and schedules at most one idle; the idle
 * takes what is pending. A stream the view no longer shows is ignored. */
typedef struct
{
  GMutex        lock;
  GString      *pending;
  GArray       *pending_ids;
  gboolean      done;
  GError       *error;
  guint         idle_id;
  GWeakRef      view;
  GCancellable *cancellable;
  Pane          pane;
  gint64        started_us;
  gint64        gen_us;      /* the worker's time in gb_generate */
  gint64        wait_us;     /* from the request to the worker's start */
  double        proj_z;      /* steered: gb_steer_layer_projection_z over the run, NaN if unknown */
} Stream;

typedef struct
{
  GbModel          *model;
  GArray           *prompt;
  GbGenerateParams  params;
  GbSteerVector    *vector; /* NULL: baseline */
  float             multiplier;
  Stream           *stream;
} GenJob;

/* A weak reference to the view that worker results can share. */
typedef struct
{
  GWeakRef ref;
} ViewHandle;

typedef struct
{
  GbModel          *model;
  GArray           *prompt;
  GbGenerateParams  params;
  GbSteerVector    *vector;
  double            multipliers[MAX_SWEEP];
  guint             n;
  ViewHandle       *view;
  guint             sweep_id;
} SweepJob;

typedef struct
{
  ViewHandle *view;
  guint    sweep_id, row;
  char    *text;
  double   repeat;
} SweepRow;

typedef struct
{
  GMutex   lock;
  double   fraction;
  char    *message;
  guint    idle_id;
  GWeakRef view;
} TrainProgress;

struct _GbSteeringView
{
  GtkWidget parent_instance;

  /* Template widgets */
  GtkDropDown       *set_dropdown;
  GtkButton         *import_button;
  GtkButton         *export_button;
  GtkLabel          *set_description;
  GtkListBox        *pair_list;
  GtkButton         *add_button;
  GtkLabel          *pair_count;
  GtkDropDown       *method_dropdown;
  GtkButton         *train_button;
  GtkButton         *cancel_train_button;
  GtkProgressBar    *train_progress;
  GbSeparationChart *chart;
  GtkLabel          *vector_info;
  GtkButton         *load_vector_button;
  GtkButton         *save_vector_button;
  GtkEntry          *prompt_entry;
  GtkButton         *generate_button;
  GtkButton         *stop_button;
  GtkScale          *multiplier_scale;
  GtkSpinButton     *tokens_spin;
  GtkCheckButton    *sample_check;
  GtkSpinButton     *seed_spin;
  GtkLabel          *apply_info;
  GtkLabel          *baseline_status;
  GtkTextView       *baseline_view;
  GtkLabel          *steered_title;
  GtkLabel          *degenerate_badge;
  GtkLabel          *steered_status;
  GtkTextView       *steered_view;
  GtkEntry          *sweep_entry;
  GtkButton         *sweep_button;
  GtkLabel          *sweep_status;
  GtkButton         *copy_markdown_button;
  GtkButton         *export_png_button;
  GtkGrid           *sweep_grid;

  /* Owned */
  GbModel       *model;
  GbPairSet     *pairs;
  GStrv          bundled;        /* paths of the bundled pair sets */
  GbSteerVector *vector;         /* every trained block */
  GCancellable  *train_cancellable;
  TrainProgress *train_state;
  Stream        *streams[N_PANES];
  GArray        *ids[N_PANES];   /* tokens shown so far */
  GCancellable  *sweep_cancellable;
  guint          sweep_id;
  GPtrArray     *sweep_texts;    /* char*, per row */
  double         sweep_mult[MAX_SWEEP];
  guint          sweep_n, sweep_done;
  guint          restart_id;
  guint          tick_id;
  gint64         last_frame_us;
  gint64         max_gap_us;
  GtkFileChooserNative *chooser;
  gboolean       updating;

  /* Demo (automation) */
  GbSteeringDemo demo;
  char          *demo_pairs, *demo_prompt, *demo_png;
  void         (*demo_done) (int, gpointer);
  gpointer       demo_data;
  guint          demo_stage;
  guint          steered_started;
  guint          alive_at_start;
  guint          demo_frames;
  gint64         ref_start_us, ref_last_us, ref_max_gap_us;
};

G_DEFINE_FINAL_TYPE (GbSteeringView, gb_steering_view, GTK_TYPE_WIDGET)

static gint n_steered_alive;

static void start_pane (GbSteeringView *self, Pane pane);
static void demo_step (GbSteeringView *self);

/* ---- Helpers ---- */

static void
toast (GbSteeringView *self,
       const char     *message)
{
  GtkWidget *overlay = gtk_widget_get_ancestor (GTK_WIDGET (self), ADW_TYPE_TOAST_OVERLAY);
  if (overlay != NULL)
    adw_toast_overlay_add_toast (ADW_TOAST_OVERLAY (overlay), adw_toast_new (message));
  else
    g_message ("%s", message);
}

static double
multiplier (GbSteeringView *self)
{
  return gtk_range_get_value (GTK_RANGE (self->multiplier_scale));
}

static GtkTextView *
pane_view (GbSteeringView *self,
           Pane            pane)
{
  return pane == PANE_BASELINE ? self->baseline_view : self->steered_view;
}

static GtkLabel *
pane_status (GbSteeringView *self,
             Pane            pane)
{
  return pane == PANE_BASELINE ? self->baseline_status : self->steered_status;
}

static gboolean
any_running (GbSteeringView *self)
{
  return self->streams[PANE_BASELINE] != NULL || self->streams[PANE_STEERED] != NULL;
}

/* "3", "2, 4", "1-3" */
static char *
format_blocks (guint64 mask)
{
  g_autoptr (GString) s = g_string_new (NULL);
  for (guint l = 0; l < 64; l++)
    if ((mask >> l) & 1)
      g_string_append_printf (s, "%s%u", s->len ? ", " : "", l);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static guint64
vector_mask (const GbSteerVector *vec)
{
  guint64 m = 0;
  for (guint i = 0; vec && i < vec->n_layers; i++)
    m |= G_GUINT64_CONSTANT (1) << vec->layers[i].layer;
  return m;
}

/* The trained blocks the chart has selected, as a vector of their own. */
static GbSteerVector *
chosen_vector (GbSteeringView *self)
{
  if (self->vector == NULL)
    return NULL;
  return gb_steer_vector_subset (self->vector, gb_separation_chart_get_selection (self->chart));
}

/* ---- Frame gaps while streaming ---- */

static gboolean
frame_tick_cb (GtkWidget     *widget,
               GdkFrameClock *clock,
               gpointer       data)
{
  GbSteeringView *self = GB_STEERING_VIEW (widget);
  /* Wall time, not the frame clock's smoothed frame time. */
  gint64 now = g_get_monotonic_time ();

  if (self->last_frame_us > 0)
    self->max_gap_us = MAX (self->max_gap_us, now - self->last_frame_us);
  self->last_frame_us = now;
  if (!any_running (self))
    {
      self->tick_id = 0;
      self->last_frame_us = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
watch_frames (GbSteeringView *self)
{
  if (self->tick_id == 0)
    {
      /* Frame times are on the monotonic clock: the wait for the first frame counts too. */
      self->last_frame_us = g_get_monotonic_time ();
      self->tick_id = gtk_widget_add_tick_callback (GTK_WIDGET (self), frame_tick_cb, NULL, NULL);
    }
}

/* ---- Labels ---- */

static void
update_apply_info (GbSteeringView *self)
{
  const guint64 sel = gb_separation_chart_get_selection (self->chart);
  g_autofree char *blocks = format_blocks (sel);
  g_autofree char *title = g_strdup_printf ("Steered (×%.1f)", multiplier (self));

  gtk_label_set_text (self->steered_title, title);
  if (self->vector == NULL)
    gtk_label_set_text (self->apply_info, "Train a direction (left) to steer; until then only the baseline runs.");
  else if (sel == 0)
    gtk_label_set_text (self->apply_info, "Click a block in the chart to steer there.");
  else
    {
      g_autofree char *text = g_strdup_printf (
        "Adds %.1f × the vector to the output of block%s %s (blocks.L.hook_resid_post) at every position, prompt and "
        "continuation. Same prompt, decoding and seed in both panes: only the vector differs.",
        multiplier (self), (sel & (sel - 1)) ? "s" : "", blocks);
      gtk_label_set_text (self->apply_info, text);
    }
}

static void
update_vector_info (GbSteeringView *self)
{
  const GbSteerVector *v = self->vector;
  gtk_widget_set_sensitive (GTK_WIDGET (self->save_vector_button), v != NULL);
  if (v == NULL)
    {
      gtk_label_set_text (self->vector_info, "No vector yet.");
      return;
    }
  g_autofree char *hash = self->pairs ? gb_pair_set_hash (self->pairs) : NULL;
  const gboolean stale = v->pairs_hash && hash && !g_str_equal (hash, v->pairs_hash);
  g_autofree char *read = v->read_pos == -1 ? g_strdup ("the last token") : g_strdup_printf ("token %d", v->read_pos);
  g_autofree char *text = g_strdup_printf (
    "Read at each block's output (blocks.L.hook_resid_post), at %s of every text; %s over %u pairs, %u held out to "
    "score the blocks.%s",
    read, v->method_known ? (v->method == GB_STEER_PCA ? "first principal component of the differences" : "mean difference")
                          : "imported vector",
    v->n_train, v->n_heldout, stale ? " The pairs have changed since: train again to use them." : "");
  gtk_label_set_text (self->vector_info, text);
}

/* ---- Pair editor ---- */

static void
update_pair_count (GbSteeringView *self)
{
  g_autofree char *text = g_strdup_printf ("%u pairs", self->pairs ? gb_pair_set_get_n_pairs (self->pairs) : 0);
  gtk_label_set_text (self->pair_count, text);
  update_vector_info (self);
}

static void
pair_changed_cb (GtkEditable    *entry,
                 GbSteeringView *self)
{
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (entry), "pair-index"));
  gboolean positive = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (entry), "positive"));
  if (self->updating || index >= gb_pair_set_get_n_pairs (self->pairs))
    return;
  GbPair *p = &g_array_index (self->pairs->pairs, GbPair, index);
  char **slot = positive ? &p->positive : &p->negative;
  g_free (*slot);
  *slot = g_strdup (gtk_editable_get_text (entry));
  update_vector_info (self);
}

static void rebuild_pairs (GbSteeringView *self);

static void
remove_pair_cb (GtkButton      *button,
                GbSteeringView *self)
{
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "pair-index"));
  if (index < gb_pair_set_get_n_pairs (self->pairs))
    gb_pair_set_remove (self->pairs, index);
  rebuild_pairs (self);
}

static GtkWidget *
pair_entry (GbSteeringView *self,
            const char     *text,
            guint           index,
            gboolean        positive)
{
  GtkWidget *entry = gtk_entry_new ();
  gtk_editable_set_text (GTK_EDITABLE (entry), text);
  gtk_widget_set_hexpand (entry, TRUE);
  gtk_editable_set_width_chars (GTK_EDITABLE (entry), 8);
  gtk_widget_set_tooltip_text (entry, text);
  g_object_set_data (G_OBJECT (entry), "pair-index", GUINT_TO_POINTER (index));
  g_object_set_data (G_OBJECT (entry), "positive", GINT_TO_POINTER (positive));
  g_signal_connect (entry, "changed", G_CALLBACK (pair_changed_cb), self);
  g_autofree char *name = g_strdup_printf (positive ? "Pair %u, positive text" : "Pair %u, negative text", index + 1);
  set_a11y_label (entry, name);
  return entry;
}

static GtkWidget *
pair_row (GbSteeringView *self,
          const GbPair   *p,
          guint           index)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  g_autofree char *num = g_strdup_printf ("%u", index + 1);
  GtkWidget *label = gtk_label_new (num);
  gtk_label_set_width_chars (GTK_LABEL (label), 3);
  gtk_label_set_xalign (GTK_LABEL (label), 1);
  gtk_widget_add_css_class (label, "dim-label");
  gtk_widget_add_css_class (label, "caption");
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), pair_entry (self, p->positive, index, TRUE));
  gtk_box_append (GTK_BOX (box), pair_entry (self, p->negative, index, FALSE));
  GtkWidget *remove = gtk_button_new_from_icon_name ("list-remove-symbolic");
  gtk_widget_add_css_class (remove, "flat");
  gtk_widget_set_tooltip_text (remove, "Remove this pair");
  g_object_set_data (G_OBJECT (remove), "pair-index", GUINT_TO_POINTER (index));
  g_signal_connect (remove, "clicked", G_CALLBACK (remove_pair_cb), self);
  gtk_box_append (GTK_BOX (box), remove);
  gtk_widget_set_margin_top (box, 2);
  gtk_widget_set_margin_bottom (box, 2);
  gtk_widget_set_margin_end (box, 4);
  return box;
}

static void
rebuild_pairs (GbSteeringView *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->pair_list))) != NULL)
    gtk_list_box_remove (self->pair_list, child);
  for (guint i = 0; self->pairs && i < gb_pair_set_get_n_pairs (self->pairs); i++)
    gtk_list_box_append (self->pair_list, pair_row (self, gb_pair_set_get (self->pairs, i), i));
  gtk_label_set_text (self->set_description, self->pairs && *self->pairs->description ? self->pairs->description : "");
  update_pair_count (self);
}

static void
set_pairs (GbSteeringView *self,
           GbPairSet      *pairs)
{
  g_clear_pointer (&self->pairs, gb_pair_set_free);
  self->pairs = pairs;
  rebuild_pairs (self);
}

static void
add_pair_cb (GbSteeringView *self)
{
  if (self->pairs == NULL)
    self->pairs = gb_pair_set_new ("custom", NULL);
  gb_pair_set_add (self->pairs, "", "");
  rebuild_pairs (self);
  GtkListBoxRow *row = gtk_list_box_get_row_at_index (self->pair_list, (int) gb_pair_set_get_n_pairs (self->pairs) - 1);
  if (row != NULL)
    gtk_widget_grab_focus (gtk_widget_get_next_sibling (gtk_widget_get_first_child (gtk_list_box_row_get_child (row))));
}

static gboolean
load_pairs_file (GbSteeringView *self,
                 const char     *path)
{
  g_autoptr (GError) error = NULL;
  GbPairSet *set = gb_pair_set_load (path, &error);
  if (set == NULL)
    {
      toast (self, error->message);
      return FALSE;
    }
  set_pairs (self, set);
  return TRUE;
}

static void
set_chosen_cb (GbSteeringView *self)
{
  guint i = gtk_drop_down_get_selected (self->set_dropdown);
  if (!self->updating && self->bundled && i < g_strv_length (self->bundled))
    load_pairs_file (self, self->bundled[i]);
}

static void
find_bundled (GbSteeringView *self)
{
  g_autofree char *dir = g_build_filename (gb_data_dir (), "pairs", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GStrvBuilder) paths = g_strv_builder_new ();
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".json"))
      g_ptr_array_add (found, g_strdup (name));
  g_ptr_array_sort (found, gb_compare_string_ptrs);
  for (guint i = 0; i < found->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, found->pdata[i], NULL);
      g_autofree char *label = g_strndup (found->pdata[i], strlen (found->pdata[i]) - 5);
      g_strv_builder_add (paths, path);
      g_strv_builder_add (names, label);
    }
  self->bundled = g_strv_builder_end (paths);
  g_auto (GStrv) labels = g_strv_builder_end (names);
  self->updating = TRUE;
  gtk_drop_down_set_model (self->set_dropdown, G_LIST_MODEL (gtk_string_list_new ((const char *const *) labels)));
  self->updating = FALSE;
}

static gboolean
select_bundled (GbSteeringView *self,
                const char     *name)
{
  for (guint i = 0; self->bundled && self->bundled[i]; i++)
    {
      g_autofree char *base = g_path_get_basename (self->bundled[i]);
      if (g_str_has_prefix (base, name) && strlen (base) == strlen (name) + 5)
        {
          self->updating = TRUE;
          gtk_drop_down_set_selected (self->set_dropdown, i);
          self->updating = FALSE;
          return load_pairs_file (self, self->bundled[i]);
        }
    }
  return FALSE;
}

/* ---- Training (worker) ---- */

static gboolean
train_progress_idle (gpointer data)
{
  TrainProgress *p = data;
  g_autoptr (GbSteeringView) self = g_weak_ref_get (&p->view);
  g_mutex_lock (&p->lock);
  p->idle_id = 0;
  double fraction = p->fraction;
  g_autofree char *message = g_strdup (p->message);
  g_mutex_unlock (&p->lock);
  if (self != NULL)
    {
      gtk_progress_bar_set_fraction (self->train_progress, fraction);
      gtk_progress_bar_set_text (self->train_progress, message);
    }
  return G_SOURCE_REMOVE;
}

static void
train_progress_cb (double      fraction,
                   const char *message,
                   gpointer    data)
{
  TrainProgress *p = data;
  g_mutex_lock (&p->lock);
  p->fraction = fraction;
  g_free (p->message);
  p->message = g_strdup (message);
  if (p->idle_id == 0)
    p->idle_id = g_idle_add_full (G_PRIORITY_DEFAULT, train_progress_idle, g_atomic_rc_box_acquire (p),
                                  g_atomic_rc_box_release);
  g_mutex_unlock (&p->lock);
}

static void
train_progress_clear (gpointer data)
{
  TrainProgress *p = data;
  g_mutex_clear (&p->lock);
  g_free (p->message);
  g_weak_ref_clear (&p->view);
}

/* The block with the largest held-out effect size. */
static guint64
best_block (const GbSteerVector *vec)
{
  guint best = vec->layers[0].layer;
  double score = -INFINITY;
  for (guint i = 0; i < vec->n_layers; i++)
    {
      double s = isfinite (vec->layers[i].effect) ? vec->layers[i].effect : vec->layers[i].gap;
      if (s > score)
        score = s, best = vec->layers[i].layer;
    }
  return G_GUINT64_CONSTANT (1) << best;
}

static void
show_vector (GbSteeringView *self,
             GbSteerVector  *vec,
             guint64         selection)
{
  const guint n = self->model ? gb_model_get_config (self->model)->n_layer : 0;
  g_autofree double *acc = g_new (double, MAX (n, 1));
  g_autofree double *eff = g_new (double, MAX (n, 1));

  g_clear_pointer (&self->vector, gb_steer_vector_free);
  self->vector = vec;
  for (guint l = 0; l < n; l++)
    {
      const GbSteerLayer *sl = vec ? gb_steer_vector_get_layer (vec, l) : NULL;
      acc[l] = sl ? sl->accuracy : NAN;
      eff[l] = sl ? sl->effect : NAN;
    }
  gb_separation_chart_set_scores (self->chart, n, acc, eff);
  self->updating = TRUE;
  gb_separation_chart_set_selection (self->chart, selection & vector_mask (vec));
  self->updating = FALSE;
  update_vector_info (self);
  update_apply_info (self);
}

static void
train_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  g_autoptr (GbSteeringView) self = data;
  g_autoptr (GError) error = NULL;
  GbSteerVector *vec = gb_steer_train_finish (result, &error);

  gtk_widget_set_visible (GTK_WIDGET (self->train_progress), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->cancel_train_button), FALSE);
  gtk_widget_set_sensitive (GTK_WIDGET (self->train_button), self->model != NULL);
  if (vec == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        toast (self, error->message);
      if (self->demo_done)
        {
          g_printerr ("steering: training failed: %s\n", error->message);
          self->demo_done (1, self->demo_data);
          self->demo_done = NULL;
        }
      return;
    }
  guint64 sel = gb_separation_chart_get_selection (self->chart);
  if (self->demo_done && self->demo.blocks)
    sel = self->demo.blocks;
  show_vector (self, vec, (sel & vector_mask (vec)) ? sel : best_block (vec));
  if (self->demo_done)
    demo_step (self);
}

static void
train_cb (GbSteeringView *self)
{
  GbSteerParams params;

  if (self->model == NULL || self->pairs == NULL)
    return;
  gb_steer_params_init (&params);
  params.method = gtk_drop_down_get_selected (self->method_dropdown) == 1 ? GB_STEER_PCA : GB_STEER_MEAN;
  g_cancellable_cancel (self->train_cancellable);
  g_clear_object (&self->train_cancellable);
  self->train_cancellable = g_cancellable_new ();
  gtk_progress_bar_set_fraction (self->train_progress, 0);
  gtk_progress_bar_set_text (self->train_progress, "Reading activations");
  gtk_widget_set_visible (GTK_WIDGET (self->train_progress), TRUE);
  gtk_widget_set_visible (GTK_WIDGET (self->cancel_train_button), TRUE);
  gtk_widget_set_sensitive (GTK_WIDGET (self->train_button), FALSE);
  gb_steer_train_async (self->model, self->pairs, &params, self->train_cancellable, train_progress_cb,
                        self->train_state, train_done_cb, g_object_ref (self));
}

static void
cancel_train_cb (GbSteeringView *self)
{
  g_cancellable_cancel (self->train_cancellable);
}

/* ---- Generation (workers) ---- */

static void
stream_free (Stream *s)
{
  g_mutex_clear (&s->lock);
  g_string_free (s->pending, TRUE);
  g_array_unref (s->pending_ids);
  g_clear_error (&s->error);
  g_weak_ref_clear (&s->view);
  g_clear_object (&s->cancellable);
}

static void
stream_unref (Stream *s)
{
  g_atomic_rc_box_release_full (s, (GDestroyNotify) stream_free);
}

/* The honesty badge: the steered text repeats itself, or (@proj_z, known
 * once the run is done) the steered stream left the training texts' range. */
static void
show_degeneration (GbSteeringView *self,
                   double          proj_z)
{
  GArray *ids = self->ids[PANE_STEERED];
  double rate = gb_repetition_rate ((const gint32 *) ids->data, ids->len);
  gboolean repeats = ids->len >= REPEAT_MIN_TOKENS && rate > REPEAT_WARN;
  gboolean off = isfinite (proj_z) && proj_z > PROJ_WARN_Z;
  if (repeats || off)
    {
      g_autofree char *text = repeats ? g_strdup_printf ("⚠ Repetitive (%.0f%%)", 100 * rate)
                                      : g_strdup_printf ("⚠ Off the map (%.0fσ)", proj_z);
      gtk_label_set_text (self->degenerate_badge, text);
      g_autofree char *why = repeats ? g_strdup_printf ("The steered text repeats itself: %.0f%% of its 3-grams are "
                                                        "repeats. ", 100 * rate)
                                     : g_strdup ("");
      g_autofree char *tip = g_strdup_printf (
        "%s%sBeyond about ±2, steering often breaks the model's fluency: try a smaller multiplier or another block.", why,
        off ? "The steered residual stream projects far outside the range of the training texts (in their standard "
              "deviations along the direction). " : "");
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->degenerate_badge), tip);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->degenerate_badge), repeats || off);
}

static void
pane_finished (GbSteeringView *self,
               Pane            pane,
               Stream         *s)
{
  g_autofree char *status = NULL;
  double secs = (g_get_monotonic_time () - s->started_us) / 1e6;

  if (s->error && !g_error_matches (s->error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    status = g_strdup_printf ("Error: %s", s->error->message);
  else if (s->error)
    status = g_strdup_printf ("Stopped · %u tokens", self->ids[pane]->len);
  else
    status = g_strdup_printf ("%u tokens · %.0f tok/s", self->ids[pane]->len,
                              self->ids[pane]->len / MAX (s->gen_us / 1e6, 1e-3));
  if (pane == PANE_STEERED && isfinite (s->proj_z))
    {
      g_autofree char *more = g_strdup_printf ("%s · %.1fσ", status, s->proj_z);
      g_free (status);
      status = g_steal_pointer (&more);
    }
  if (self->demo_done)
    {
      g_autofree char *z = pane == PANE_STEERED ? g_strdup_printf (", projection %.1f sd", s->proj_z) : g_strdup ("");
      g_printerr ("steering: %s pane: %u tokens, worker started after %.0f ms, %.0f ms in the engine, %.0f ms until "
                  "shown%s\n",
                  pane == PANE_BASELINE ? "baseline" : "steered", self->ids[pane]->len, s->wait_us / 1e3,
                  s->gen_us / 1e3, secs * 1e3, z);
    }
  gtk_label_set_text (pane_status (self, pane), status);
  gtk_widget_set_tooltip_text (GTK_WIDGET (pane_status (self, pane)), status);
  stream_unref (g_steal_pointer (&self->streams[pane]));
  gtk_widget_set_sensitive (GTK_WIDGET (self->stop_button), any_running (self));
  if (self->demo_done && !any_running (self))
    demo_step (self);
}

static gboolean
stream_idle (gpointer data)
{
  Stream *s = data;
  g_autoptr (GbSteeringView) self = g_weak_ref_get (&s->view);

  g_mutex_lock (&s->lock);
  s->idle_id = 0;
  g_autofree char *text = g_string_free (g_steal_pointer (&s->pending), FALSE);
  s->pending = g_string_new (NULL);
  g_autoptr (GArray) ids = g_steal_pointer (&s->pending_ids);
  s->pending_ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gboolean done = s->done;
  g_mutex_unlock (&s->lock);

  if (self == NULL || self->streams[s->pane] != s)
    return G_SOURCE_REMOVE; /* stale: a newer run replaced it */
  if (*text != '\0')
    {
      GtkTextBuffer *buf = gtk_text_view_get_buffer (pane_view (self, s->pane));
      GtkTextIter end;
      gtk_text_buffer_get_end_iter (buf, &end);
      gtk_text_buffer_insert (buf, &end, text, -1);
    }
  g_array_append_vals (self->ids[s->pane], ids->data, ids->len);
  if (s->pane == PANE_STEERED)
    show_degeneration (self, done ? s->proj_z : NAN);
  if (done)
    pane_finished (self, s->pane, s);
  else
    {
      g_autofree char *status = g_strdup_printf ("%u tokens…", self->ids[s->pane]->len);
      gtk_label_set_text (pane_status (self, s->pane), status);
    }
  return G_SOURCE_REMOVE;
}

/* Worker side: queue, and schedule one idle if none is pending. */
static void
stream_push (Stream     *s,
             gint32      token,
             const char *piece,
             gboolean    done,
             GError     *error)
{
  g_mutex_lock (&s->lock);
  if (piece != NULL)
    g_string_append (s->pending, piece);
  if (token != GB_TOKEN_NONE && piece != NULL)
    g_array_append_val (s->pending_ids, token);
  if (done)
    {
      s->done = TRUE;
      s->error = error;
    }
  if (s->idle_id == 0)
    s->idle_id = g_idle_add_full (G_PRIORITY_DEFAULT, stream_idle, g_atomic_rc_box_acquire (s),
                                  (GDestroyNotify) stream_unref);
  g_mutex_unlock (&s->lock);
}

static gboolean
on_token_cb (gint32      token,
             const char *piece,
             gpointer    data)
{
  GenJob *job = data;
  stream_push (job->stream, token, piece, FALSE, NULL);
  return !g_cancellable_is_cancelled (job->stream->cancellable);
}

static void
gen_job_free (GenJob *job)
{
  gb_model_unref (job->model);
  g_array_unref (job->prompt);
  gb_steer_vector_free (job->vector);
  stream_unref (job->stream);
  g_free (job);
}

/* Reruns prompt + continuation with the steering and measures how far the
 * steered blocks' outputs project past the training texts (one forward). */
static double
run_projection_z (GenJob       *job,
                  GArray       *out,
                  GCancellable *cancellable)
{
  const GbConfig *c = gb_model_get_config (job->model);
  g_autoptr (GArray) seq = g_array_copy (job->prompt);
  g_autofree GbIntervention *iv = g_new (GbIntervention, job->vector->n_layers);
  GbRecord rec = { .logits = GB_LOGITS_NONE };
  double worst = NAN;

  g_array_append_vals (seq, out->data, out->len);
  if (seq->len > c->n_positions)
    g_array_remove_range (seq, 0, seq->len - c->n_positions);
  guint n_iv = gb_steer_vector_interventions (job->vector, job->multiplier, 0, iv);
  for (guint i = 0; i < n_iv; i++)
    rec.hooks[GB_HOOK_RESID_POST] |= G_GUINT64_CONSTANT (1) << job->vector->layers[i].layer;
  g_autoptr (GbTrace) trace = gb_model_forward (job->model, (const gint32 *) seq->data, seq->len, &rec, iv, n_iv,
                                                cancellable, NULL);
  for (guint i = 0; trace != NULL && i < n_iv; i++)
    {
      const GbSteerLayer *l = &job->vector->layers[i];
      double z = gb_steer_layer_projection_z (l, c->n_embd, gb_trace_get (trace, GB_HOOK_RESID_POST, l->layer), seq->len);
      if (isfinite (z) && !(z <= worst))
        worst = z;
    }
  return worst;
}

static void
gen_thread (GTask        *task,
            gpointer      source,
            gpointer      task_data,
            GCancellable *cancellable)
{
  gb_thread_make_background ();
  GenJob *job = task_data;
  GError *error = NULL;
  g_autofree GbIntervention *iv = NULL;
  guint n_iv = 0;

  if (job->vector != NULL)
    {
      iv = g_new (GbIntervention, job->vector->n_layers);
      n_iv = gb_steer_vector_interventions (job->vector, job->multiplier, 0, iv);
    }
  gint64 t0 = g_get_monotonic_time ();
  job->stream->wait_us = t0 - job->stream->started_us;
  g_autoptr (GArray) out = gb_generate (job->model, (const gint32 *) job->prompt->data, job->prompt->len, &job->params,
                                        iv, n_iv, on_token_cb, job, NULL, cancellable, &error);
  job->stream->gen_us = g_get_monotonic_time () - t0;
  job->stream->proj_z = NAN;
  if (out != NULL && job->vector != NULL && !g_cancellable_is_cancelled (cancellable))
    job->stream->proj_z = run_projection_z (job, out, cancellable);
  if (out != NULL && g_cancellable_is_cancelled (cancellable))
    g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Stopped");
  stream_push (job->stream, GB_TOKEN_NONE, NULL, TRUE, error);
  if (job->vector != NULL)
    g_atomic_int_dec_and_test (&n_steered_alive);
  g_task_return_boolean (task, TRUE);
}

static void
read_params (GbSteeringView   *self,
             GbGenerateParams *params)
{
  gb_generate_params_init (params);
  params->max_new_tokens = (guint) gtk_spin_button_get_value_as_int (self->tokens_spin);
  params->truncate_left = TRUE;
  params->seed = (guint64) gtk_spin_button_get_value_as_int (self->seed_spin);
  if (gtk_check_button_get_active (self->sample_check))
    {
      params->temperature = 0.8f;
      params->top_k = 40;
    }
}

static GArray *
encode_prompt (GbSteeringView *self)
{
  g_autoptr (GError) error = NULL;
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->prompt_entry));
  GArray *ids = gb_tokenizer_encode (gb_model_get_tokenizer (self->model), text, -1, FALSE, &error);
  if (ids == NULL)
    toast (self, error->message);
  else if (ids->len == 0)
    {
      toast (self, "Type a prompt to continue.");
      g_clear_pointer (&ids, g_array_unref);
    }
  return ids;
}

static void
stop_pane (GbSteeringView *self,
           Pane            pane)
{
  Stream *s = g_steal_pointer (&self->streams[pane]);
  if (s == NULL)
    return;
  g_cancellable_cancel (s->cancellable);
  gtk_label_set_text (pane_status (self, pane), "Stopped");
  stream_unref (s);
}

static void
clear_pane (GbSteeringView *self,
            Pane            pane,
            const char     *placeholder)
{
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (pane_view (self, pane)), placeholder ? placeholder : "", -1);
  g_array_set_size (self->ids[pane], 0);
  if (pane == PANE_STEERED)
    gtk_widget_set_visible (GTK_WIDGET (self->degenerate_badge), FALSE);
}

/* Starts one pane's generation; a steered pane without a vector or blocks
 * shows why instead. */
static void
start_pane (GbSteeringView *self,
            Pane            pane)
{
  stop_pane (self, pane);
  if (self->model == NULL)
    return;
  g_autoptr (GbSteerVector) vec = pane == PANE_STEERED ? chosen_vector (self) : NULL;
  if (pane == PANE_STEERED && vec == NULL)
    {
      clear_pane (self, pane, self->vector ? "Choose a block in the chart to steer." : "Train a direction first.");
      gtk_label_set_text (self->steered_status, "");
      return;
    }
  g_autoptr (GArray) prompt = encode_prompt (self);
  if (prompt == NULL)
    return;
  clear_pane (self, pane, NULL);

  Stream *s = g_atomic_rc_box_new0 (Stream);
  g_mutex_init (&s->lock);
  s->pending = g_string_new (NULL);
  s->pending_ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_weak_ref_init (&s->view, self);
  s->cancellable = g_cancellable_new ();
  s->pane = pane;
  s->started_us = g_get_monotonic_time ();
  s->proj_z = NAN;
  self->streams[pane] = s;

  GenJob *job = g_new0 (GenJob, 1);
  job->model = gb_model_ref (self->model);
  job->prompt = g_steal_pointer (&prompt);
  read_params (self, &job->params);
  job->vector = g_steal_pointer (&vec);
  job->multiplier = (float) multiplier (self);
  job->stream = g_atomic_rc_box_acquire (s);
  if (job->vector != NULL)
    {
      g_atomic_int_inc (&n_steered_alive);
      self->steered_started++;
      self->alive_at_start = (guint) g_atomic_int_get (&n_steered_alive);
    }

  g_autoptr (GTask) task = g_task_new (NULL, s->cancellable, NULL, NULL);
  g_task_set_source_tag (task, start_pane);
  g_task_set_task_data (task, job, (GDestroyNotify) gen_job_free);
  gtk_label_set_text (pane_status (self, pane), "Starting…");
  gtk_widget_set_sensitive (GTK_WIDGET (self->stop_button), TRUE);
  watch_frames (self);
  g_task_run_in_thread (task, gen_thread);
}

static void
generate_cb (GbSteeringView *self)
{
  g_clear_handle_id (&self->restart_id, g_source_remove);
  start_pane (self, PANE_BASELINE);
  start_pane (self, PANE_STEERED);
}

static void
stop_cb (GbSteeringView *self)
{
  g_clear_handle_id (&self->restart_id, g_source_remove);
  stop_pane (self, PANE_BASELINE);
  stop_pane (self, PANE_STEERED);
  gtk_widget_set_sensitive (GTK_WIDGET (self->stop_button), FALSE);
}

static gboolean
restart_steered_cb (gpointer data)
{
  GbSteeringView *self = data;
  self->restart_id = 0;
  start_pane (self, PANE_STEERED);
  return G_SOURCE_REMOVE;
}

/* A change to the multiplier or the blocks: the steered text on screen is
 * stale, so its run stops now; a new one starts once the slider rests. */
static void
steering_changed (GbSteeringView *self)
{
  update_apply_info (self);
  if (self->model == NULL || gtk_text_buffer_get_char_count (gtk_text_view_get_buffer (self->baseline_view)) == 0)
    return;
  stop_pane (self, PANE_STEERED);
  clear_pane (self, PANE_STEERED, NULL);
  gtk_label_set_text (self->steered_status, "Waiting for the slider…");
  g_clear_handle_id (&self->restart_id, g_source_remove);
  self->restart_id = g_timeout_add (RESTART_MS, restart_steered_cb, self);
}

static void
multiplier_changed_cb (GtkRange       *range,
                       GbSteeringView *self)
{
  /* Snap to 0.5. */
  const double v = gtk_range_get_value (range), snapped = round (v * 2) / 2;
  if (v != snapped)
    {
      gtk_range_set_value (range, snapped);
      return;
    }
  steering_changed (self);
}

static void
selection_changed_cb (GbSteeringView *self)
{
  if (!self->updating)
    steering_changed (self);
}

/* ---- Sweep ---- */

static void
view_handle_clear (gpointer data)
{
  g_weak_ref_clear (&((ViewHandle *) data)->ref);
}

static void
view_handle_unref (ViewHandle *h)
{
  g_atomic_rc_box_release_full (h, view_handle_clear);
}

static void
sweep_job_free (SweepJob *job)
{
  gb_model_unref (job->model);
  g_array_unref (job->prompt);
  gb_steer_vector_free (job->vector);
  view_handle_unref (job->view);
  g_free (job);
}

static char *
one_line (const char *text)
{
  g_autoptr (GString) s = g_string_new (text);
  g_string_replace (s, "\n", " ⏎ ", 0);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gboolean
sweep_row_idle (gpointer data)
{
  SweepRow *r = data;
  g_autoptr (GbSteeringView) self = g_weak_ref_get (&r->view->ref);

  if (self != NULL && self->sweep_id == r->sweep_id && r->row < self->sweep_n)
    {
      g_autofree char *shown = one_line (r->text);
      GtkWidget *label = gtk_grid_get_child_at (self->sweep_grid, 1, (int) r->row + 1);
      gtk_label_set_text (GTK_LABEL (label), shown);
      if (r->repeat > REPEAT_WARN)
        gtk_widget_add_css_class (label, "degenerate-text");
      g_free (self->sweep_texts->pdata[r->row]);
      self->sweep_texts->pdata[r->row] = g_strdup (r->text);
      self->sweep_done++;
      g_autofree char *status = g_strdup_printf ("%u of %u rows", self->sweep_done, self->sweep_n);
      gtk_label_set_text (self->sweep_status, status);
      gtk_widget_set_sensitive (GTK_WIDGET (self->copy_markdown_button), self->sweep_done == self->sweep_n);
      gtk_widget_set_sensitive (GTK_WIDGET (self->export_png_button), self->sweep_done == self->sweep_n);
      if (self->sweep_done == self->sweep_n && self->demo_done && self->demo_stage == 200)
        demo_step (self);
    }
  view_handle_unref (r->view);
  g_free (r->text);
  g_free (r);
  return G_SOURCE_REMOVE;
}

static void
sweep_thread (GTask        *task,
              gpointer      source,
              gpointer      task_data,
              GCancellable *cancellable)
{
  gb_thread_make_background ();
  SweepJob *job = task_data;
  g_autofree GbIntervention *iv = g_new (GbIntervention, job->vector->n_layers);
  GbTokenizer *tok = gb_model_get_tokenizer (job->model);

  for (guint r = 0; r < job->n && !g_cancellable_is_cancelled (cancellable); r++)
    {
      g_autoptr (GError) error = NULL;
      guint n_iv = gb_steer_vector_interventions (job->vector, (float) job->multipliers[r], 0, iv);
      g_autoptr (GArray) out = gb_generate (job->model, (const gint32 *) job->prompt->data, job->prompt->len,
                                            &job->params, iv, n_iv, NULL, NULL, NULL, cancellable, &error);
      SweepRow *row = g_new0 (SweepRow, 1);
      row->view = g_atomic_rc_box_acquire (job->view);
      row->sweep_id = job->sweep_id;
      row->row = r;
      row->text = out ? gb_tokenizer_decode (tok, (const gint32 *) out->data, out->len, NULL)
                      : g_strdup_printf ("(%s)", error->message);
      row->repeat = out ? gb_repetition_rate ((const gint32 *) out->data, out->len) : 0;
      g_idle_add (sweep_row_idle, row);
    }
  g_task_return_boolean (task, TRUE);
}

static gboolean
parse_multipliers (const char *text,
                   double     *out,
                   guint      *n)
{
  g_auto (GStrv) parts = g_regex_split_simple ("[\\s,;]+", text, 0, 0);
  *n = 0;
  for (guint i = 0; parts[i]; i++)
    {
      if (*parts[i] == '\0')
        continue;
      char *end;
      double v = g_ascii_strtod (parts[i], &end);
      if (*end != '\0' || !isfinite (v) || fabs (v) > 100 || *n == MAX_SWEEP)
        return FALSE;
      out[(*n)++] = v;
    }
  return *n > 0;
}

static void
sweep_cb (GbSteeringView *self)
{
  double mult[MAX_SWEEP];
  guint n;
  GtkWidget *child;

  g_autoptr (GbSteerVector) vec = chosen_vector (self);
  if (self->model == NULL || vec == NULL)
    {
      toast (self, "Train a direction and choose a block first.");
      return;
    }
  if (!parse_multipliers (gtk_editable_get_text (GTK_EDITABLE (self->sweep_entry)), mult, &n))
    {
      toast (self, "Sweep: give 1 to 12 multipliers between -100 and 100, e.g. “-2 -1 0 1 2”.");
      return;
    }
  g_autoptr (GArray) prompt = encode_prompt (self);
  if (prompt == NULL)
    return;

  g_cancellable_cancel (self->sweep_cancellable);
  g_clear_object (&self->sweep_cancellable);
  self->sweep_cancellable = g_cancellable_new ();
  self->sweep_id++;
  self->sweep_n = n;
  self->sweep_done = 0;
  memcpy (self->sweep_mult, mult, n * sizeof (double));
  g_ptr_array_set_size (self->sweep_texts, 0);
  g_ptr_array_set_size (self->sweep_texts, n);
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->sweep_grid))) != NULL)
    gtk_grid_remove (self->sweep_grid, child);
  g_autofree char *blocks = format_blocks (vector_mask (vec));
  g_autofree char *head = g_strdup_printf ("“%s” · blocks %s", gtk_editable_get_text (GTK_EDITABLE (self->prompt_entry)), blocks);
  GtkWidget *h0 = gtk_label_new ("×");
  GtkWidget *h1 = gtk_label_new (head);
  gtk_label_set_xalign (GTK_LABEL (h1), 0);
  gtk_widget_add_css_class (h0, "caption-heading");
  gtk_widget_add_css_class (h1, "caption-heading");
  gtk_grid_attach (self->sweep_grid, h0, 0, 0, 1, 1);
  gtk_grid_attach (self->sweep_grid, h1, 1, 0, 1, 1);
  for (guint r = 0; r < n; r++)
    {
      g_autofree char *m = g_strdup_printf ("%+.1f", mult[r]);
      GtkWidget *ml = gtk_label_new (m), *tl = gtk_label_new ("…");
      gtk_label_set_xalign (GTK_LABEL (ml), 1);
      gtk_label_set_xalign (GTK_LABEL (tl), 0);
      gtk_label_set_wrap (GTK_LABEL (tl), TRUE);
      gtk_label_set_wrap_mode (GTK_LABEL (tl), PANGO_WRAP_WORD_CHAR);
      gtk_label_set_selectable (GTK_LABEL (tl), TRUE);
      gtk_widget_set_hexpand (tl, TRUE);
      gtk_widget_add_css_class (ml, "numeric");
      gtk_grid_attach (self->sweep_grid, ml, 0, (int) r + 1, 1, 1);
      gtk_grid_attach (self->sweep_grid, tl, 1, (int) r + 1, 1, 1);
    }
  gtk_widget_set_sensitive (GTK_WIDGET (self->copy_markdown_button), FALSE);
  gtk_widget_set_sensitive (GTK_WIDGET (self->export_png_button), FALSE);
  gtk_label_set_text (self->sweep_status, "Running…");

  SweepJob *job = g_new0 (SweepJob, 1);
  job->model = gb_model_ref (self->model);
  job->prompt = g_steal_pointer (&prompt);
  read_params (self, &job->params);
  job->vector = g_steal_pointer (&vec);
  memcpy (job->multipliers, mult, sizeof mult);
  job->n = n;
  job->sweep_id = self->sweep_id;
  job->view = g_atomic_rc_box_new0 (ViewHandle);
  g_weak_ref_init (&job->view->ref, self);
  g_autoptr (GTask) task = g_task_new (NULL, self->sweep_cancellable, NULL, NULL);
  g_task_set_source_tag (task, sweep_cb);
  g_task_set_task_data (task, job, (GDestroyNotify) sweep_job_free);
  g_task_run_in_thread (task, sweep_thread);
}

static char *
sweep_markdown (GbSteeringView *self)
{
  g_autoptr (GString) md = g_string_new (NULL);
  g_autofree char *blocks = self->vector ? format_blocks (gb_separation_chart_get_selection (self->chart)) : g_strdup ("");
  g_string_append_printf (md, "Prompt: “%s” (blocks %s)\n\n| multiplier | continuation |\n|---:|---|\n",
                          gtk_editable_get_text (GTK_EDITABLE (self->prompt_entry)), blocks);
  for (guint r = 0; r < self->sweep_n; r++)
    {
      g_autoptr (GString) cell = g_string_new (self->sweep_texts->pdata[r] ? self->sweep_texts->pdata[r] : "");
      g_string_replace (cell, "|", "\\|", 0);
      g_string_replace (cell, "\n", "<br>", 0);
      g_string_append_printf (md, "| %+.1f | %s |\n", self->sweep_mult[r], cell->str);
    }
  return g_string_free (g_steal_pointer (&md), FALSE);
}

static void
copy_markdown_cb (GbSteeringView *self)
{
  g_autofree char *md = sweep_markdown (self);
  gdk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (self)), md);
  toast (self, "Sweep copied as a Markdown table");
}

static gboolean
save_widget_png (GtkWidget  *widget,
                 const char *path)
{
  const int pad = 12, w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  const gboolean dark = adw_style_manager_get_dark (adw_style_manager_get_default ());
  const float bg = dark ? 0.14f : 1.f;
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();

  /* An opaque page in the current style, with a margin. */
  gtk_snapshot_append_color (snapshot, &(GdkRGBA) { bg, bg, bg, 1 }, &GRAPHENE_RECT_INIT (0, 0, w + 2 * pad, h + 2 * pad));
  gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (pad, pad));
  gdk_paintable_snapshot (paintable, snapshot, w, h);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  if (node == NULL || w <= 0 || h <= 0)
    return FALSE;
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  g_autoptr (GdkTexture) texture = gsk_renderer_render_texture (renderer, node,
                                                                &GRAPHENE_RECT_INIT (0, 0, w + 2 * pad, h + 2 * pad));
  g_autoptr (GBytes) png = gdk_texture_save_to_png_bytes (texture);
  return gb_file_write_atomic (path, g_bytes_get_data (png, NULL), g_bytes_get_size (png), TRUE, NULL);
}

/* ---- Files ---- */

typedef enum
{
  FILE_IMPORT_PAIRS,
  FILE_EXPORT_PAIRS,
  FILE_OPEN_VECTOR,
  FILE_SAVE_VECTOR,
  FILE_EXPORT_PNG,
} FileAction;

static void
save_vector (GbSteeringView *self,
             const char     *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *warning = NULL;
  g_autoptr (GbSteerVector) vec = chosen_vector (self);
  if (vec == NULL)
    {
      toast (self, "Choose at least one block in the chart to save.");
      return;
    }
  gboolean ok = g_str_has_suffix (path, ".gguf") ? gb_steer_vector_export_gguf (vec, path, &warning, &error)
                                                 : gb_steer_vector_save (vec, path, &error);
  if (!ok)
    {
      toast (self, error->message);
      return;
    }
  toast (self, warning ? warning : "Vector saved");
}

static void
open_vector (GbSteeringView *self,
             const char     *path)
{
  g_autoptr (GError) error = NULL;
  GbSteerVector *vec = gb_steer_vector_load (path, &error);
  if (vec == NULL || (self->model && !gb_steer_vector_check (vec, self->model, &error)))
    {
      gb_steer_vector_free (vec);
      {
      toast (self, error->message);
      return;
    }
    }
  show_vector (self, vec, vector_mask (vec));
  steering_changed (self);
}

static void
chooser_response_cb (GtkNativeDialog *dialog,
                     int              response,
                     GbSteeringView  *self)
{
  FileAction action = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (dialog), "action"));
  g_autoptr (GFile) file = response == GTK_RESPONSE_ACCEPT ? gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog)) : NULL;
  g_autofree char *path = file ? g_file_get_path (file) : NULL;
  g_autoptr (GError) error = NULL;

  if (path != NULL)
    switch (action)
      {
      case FILE_IMPORT_PAIRS:
        load_pairs_file (self, path);
        break;
      case FILE_EXPORT_PAIRS:
        if (!gb_pair_set_save (self->pairs, path, &error))
          toast (self, error->message);
        break;
      case FILE_OPEN_VECTOR:
        open_vector (self, path);
        break;
      case FILE_SAVE_VECTOR:
        save_vector (self, path);
        break;
      case FILE_EXPORT_PNG:
        if (!save_widget_png (GTK_WIDGET (self->sweep_grid), path))
          toast (self, "Could not write the PNG");
        break;
      }
  g_clear_object (&self->chooser);
}

static void
choose_file (GbSteeringView *self,
             FileAction      action,
             const char     *title,
             const char     *name)
{
  const gboolean save = action == FILE_EXPORT_PAIRS || action == FILE_SAVE_VECTOR || action == FILE_EXPORT_PNG;
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));

  g_clear_object (&self->chooser);
  self->chooser = gtk_file_chooser_native_new (title, GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                               save ? GTK_FILE_CHOOSER_ACTION_SAVE : GTK_FILE_CHOOSER_ACTION_OPEN,
                                               save ? "_Save" : "_Open", "_Cancel");
  if (name != NULL)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (self->chooser), name);
  g_object_set_data (G_OBJECT (self->chooser), "action", GINT_TO_POINTER (action));
  g_signal_connect (self->chooser, "response", G_CALLBACK (chooser_response_cb), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static void
import_cb (GbSteeringView *self)
{
  choose_file (self, FILE_IMPORT_PAIRS, "Import Pairs", NULL);
}

static void
export_cb (GbSteeringView *self)
{
  g_autofree char *name = g_strdup_printf ("%s.json", self->pairs && *self->pairs->name ? self->pairs->name : "pairs");
  if (self->pairs != NULL)
    choose_file (self, FILE_EXPORT_PAIRS, "Export Pairs", name);
}

static void
load_vector_cb (GbSteeringView *self)
{
  choose_file (self, FILE_OPEN_VECTOR, "Open Steering Vector", NULL);
}

static void
save_vector_cb (GbSteeringView *self)
{
  g_autofree char *name = g_strdup_printf ("%s-vector.json", self->vector && self->vector->pairs_name ? self->vector->pairs_name : "steering");
  choose_file (self, FILE_SAVE_VECTOR, "Save Steering Vector (.json, or .gguf for llama.cpp)", name);
}

static void
export_png_cb (GbSteeringView *self)
{
  choose_file (self, FILE_EXPORT_PNG, "Export Sweep as PNG", "sweep.png");
}

/* ---- Demo (automation) ---- */

static char *
pane_text (GbSteeringView *self,
           Pane            pane)
{
  GtkTextBuffer *buf = gtk_text_view_get_buffer (pane_view (self, pane));
  GtkTextIter a, b;
  gtk_text_buffer_get_bounds (buf, &a, &b);
  return gtk_text_buffer_get_text (buf, &a, &b, FALSE);
}

static gboolean
wiggle_cb (gpointer data)
{
  GbSteeringView *self = data;
  static const double steps[] = { 1.5, 2, 2.5, 3, 2.5, 2, 1.5, -1, -2, 2.5 };
  guint i = self->demo_stage - 3;

  if (i == 0)
    {
      self->steered_started = 0;
      self->max_gap_us = 0;
    }
  gtk_range_set_value (GTK_RANGE (self->multiplier_scale), steps[i]);
  self->demo_stage++;
  if (i + 1 < G_N_ELEMENTS (steps))
    return G_SOURCE_CONTINUE;
  g_printerr ("steering: slider moved %u times; steered runs alive right after: %u\n", (guint) G_N_ELEMENTS (steps),
              gb_steering_view_get_n_steered_alive ());
  self->demo_stage = 100;
  return G_SOURCE_REMOVE;
}

static void
demo_finish (GbSteeringView *self,
             int             status)
{
  void (*done) (int, gpointer) = self->demo_done;
  self->demo_done = NULL;
  if (done)
    done (status, self->demo_data);
}

static gboolean
demo_export_tick_cb (GtkWidget     *widget,
                     GdkFrameClock *clock,
                     gpointer       data)
{
  GbSteeringView *self = data;
  if (++self->demo_frames < 4)
    {
      gtk_widget_queue_draw (widget);
      return G_SOURCE_CONTINUE;
    }
  gboolean ok = save_widget_png (widget, self->demo_png);
  if (!ok)
    g_printerr ("steering: could not export the sweep to %s\n", self->demo_png);
  demo_finish (self, ok ? 0 : 1);
  return G_SOURCE_REMOVE;
}

/* The reference for the frame gaps: the same panes redrawn every frame for
 * a second with nothing generating, so what the renderer alone costs on
 * this machine shows beside the figure measured while streaming. */
static gboolean
reference_tick_cb (GtkWidget     *widget,
                   GdkFrameClock *clock,
                   gpointer       data)
{
  GbSteeringView *self = GB_STEERING_VIEW (widget);
  gint64 now = g_get_monotonic_time ();

  self->ref_max_gap_us = MAX (self->ref_max_gap_us, now - self->ref_last_us);
  self->ref_last_us = now;
  if (now - self->ref_start_us < G_USEC_PER_SEC)
    {
      gtk_widget_queue_draw (GTK_WIDGET (self->baseline_view));
      gtk_widget_queue_draw (GTK_WIDGET (self->steered_view));
      return G_SOURCE_CONTINUE;
    }
  g_printerr ("steering: longest frame gap redrawing both panes for 1 s, nothing generating: %.0f ms\n",
              self->ref_max_gap_us / 1000.0);
  self->demo_stage = 200;
  sweep_cb (self);
  return G_SOURCE_REMOVE;
}

/* Stages: 0 train; 1 trained -> generate; 2 both done -> wiggle or sweep;
 * 3..12 wiggling; 100 waiting for the steered run after the wiggle; 200
 * waiting for the sweep. */
static void
demo_step (GbSteeringView *self)
{
  if (self->demo_stage == 0)
    {
      self->demo_stage = 1;
      if (!select_bundled (self, self->demo_pairs) && !load_pairs_file (self, self->demo_pairs))
        return demo_finish (self, 1);
      train_cb (self);
    }
  else if (self->demo_stage == 1)
    {
      self->demo_stage = 2;
      g_autofree char *blocks = format_blocks (gb_separation_chart_get_selection (self->chart));
      g_printerr ("steering: trained on %s, steering block(s) %s\n", self->pairs->name, blocks);
      gtk_range_set_value (GTK_RANGE (self->multiplier_scale), self->demo.multiplier);
      if (self->demo_prompt)
        gtk_editable_set_text (GTK_EDITABLE (self->prompt_entry), self->demo_prompt);
      gtk_spin_button_set_value (self->tokens_spin, self->demo.n_tokens);
      self->max_gap_us = 0;
      generate_cb (self);
    }
  else if (self->demo_stage == 2 || self->demo_stage == 100)
    {
      g_autofree char *base = pane_text (self, PANE_BASELINE), *steered = pane_text (self, PANE_STEERED);
      g_printerr ("steering: baseline: %s\nsteering: steered (x%.1f): %s\n", base, multiplier (self), steered);
      g_printerr ("steering: longest frame gap while streaming: %.0f ms\n", self->max_gap_us / 1000.0);
      if (self->demo_stage == 100)
        g_printerr ("steering: steered runs started after the slider moves: %u; steered runs alive when it started: %u\n",
                    self->steered_started, self->alive_at_start);
      if (self->demo.wiggle && self->demo_stage == 2)
        {
          self->demo_stage = 3;
          g_timeout_add (15, wiggle_cb, self);
          return;
        }
      self->demo_stage = 150;
      self->ref_start_us = self->ref_last_us = g_get_monotonic_time ();
      self->ref_max_gap_us = 0;
      gtk_widget_add_tick_callback (GTK_WIDGET (self), reference_tick_cb, NULL, NULL);
    }
  else if (self->demo_stage == 200)
    {
      g_autofree char *md = sweep_markdown (self);
      g_autoptr (GString) lines = g_string_new (md);
      g_string_replace (lines, "\n", "\nsteering: sweep: ", 0);
      g_printerr ("steering: sweep: %s\n", lines->str);
      if (self->demo_png)
        {
          /* The last row was just set: export once the grid has drawn it. */
          self->demo_frames = 0;
          gtk_widget_add_tick_callback (GTK_WIDGET (self->sweep_grid), demo_export_tick_cb, self, NULL);
          return;
        }
      demo_finish (self, 0);
    }
}

/* ---- Overrides ---- */

static void
gb_steering_view_dispose (GObject *object)
{
  GbSteeringView *self = GB_STEERING_VIEW (object);

  g_cancellable_cancel (self->train_cancellable);
  g_cancellable_cancel (self->sweep_cancellable);
  for (guint p = 0; p < N_PANES; p++)
    stop_pane (self, p);
  g_clear_handle_id (&self->restart_id, g_source_remove);
  g_clear_object (&self->train_cancellable);
  g_clear_object (&self->sweep_cancellable);
  gb_drop_chooser (&self->chooser, self);
  gtk_widget_dispose_template (GTK_WIDGET (self), GB_TYPE_STEERING_VIEW);
  /* The template's top-level child is not a bound child: unparent it too. */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_widget_unparent (child);
  G_OBJECT_CLASS (gb_steering_view_parent_class)->dispose (object);
}

static void
gb_steering_view_finalize (GObject *object)
{
  GbSteeringView *self = GB_STEERING_VIEW (object);

  g_clear_pointer (&self->model, gb_model_unref);
  g_clear_pointer (&self->pairs, gb_pair_set_free);
  g_clear_pointer (&self->vector, gb_steer_vector_free);
  g_strfreev (self->bundled);
  for (guint p = 0; p < N_PANES; p++)
    g_array_unref (self->ids[p]);
  g_ptr_array_unref (self->sweep_texts);
  g_atomic_rc_box_release_full (self->train_state, train_progress_clear);
  g_free (self->demo_pairs);
  g_free (self->demo_prompt);
  g_free (self->demo_png);
  G_OBJECT_CLASS (gb_steering_view_parent_class)->finalize (object);
}

/* Jobs hold the view, so dispose waits for them: stop them when the view
 * leaves its window (the window closed) instead. */
static void
gb_steering_view_unroot (GtkWidget *widget)
{
  GbSteeringView *self = GB_STEERING_VIEW (widget);

  g_cancellable_cancel (self->train_cancellable);
  g_cancellable_cancel (self->sweep_cancellable);
  for (guint p = 0; p < N_PANES; p++)
    stop_pane (self, p);
  g_clear_handle_id (&self->restart_id, g_source_remove);
  GTK_WIDGET_CLASS (gb_steering_view_parent_class)->unroot (widget);
}

static void
gb_steering_view_class_init (GbSteeringViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = gb_steering_view_dispose;
  GTK_WIDGET_CLASS (klass)->unroot = gb_steering_view_unroot;
  object_class->finalize = gb_steering_view_finalize;
  g_type_ensure (GB_TYPE_SEPARATION_CHART);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_template_from_resource (widget_class, "/org/glassbox/Glassbox/gb-steering-view.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, GbSteeringView, name)
  BIND (set_dropdown);
  BIND (import_button);
  BIND (export_button);
  BIND (set_description);
  BIND (pair_list);
  BIND (add_button);
  BIND (pair_count);
  BIND (method_dropdown);
  BIND (train_button);
  BIND (cancel_train_button);
  BIND (train_progress);
  BIND (chart);
  BIND (vector_info);
  BIND (load_vector_button);
  BIND (save_vector_button);
  BIND (prompt_entry);
  BIND (generate_button);
  BIND (stop_button);
  BIND (multiplier_scale);
  BIND (tokens_spin);
  BIND (sample_check);
  BIND (seed_spin);
  BIND (apply_info);
  BIND (baseline_status);
  BIND (baseline_view);
  BIND (steered_title);
  BIND (degenerate_badge);
  BIND (steered_status);
  BIND (steered_view);
  BIND (sweep_entry);
  BIND (sweep_button);
  BIND (sweep_status);
  BIND (copy_markdown_button);
  BIND (export_png_button);
  BIND (sweep_grid);
#undef BIND
}

static void
gb_steering_view_init (GbSteeringView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  set_a11y_label (self->set_dropdown, "Pair set");
  set_a11y_label (self->method_dropdown, "Direction method");
  set_a11y_label (self->prompt_entry, "Prompt");
  set_a11y_label (self->multiplier_scale, "Steering multiplier");
  set_a11y_label (self->tokens_spin, "Tokens to generate");
  set_a11y_label (self->seed_spin, "Sampling seed");
  set_a11y_label (self->sweep_entry, "Multipliers to sweep");
  for (guint p = 0; p < N_PANES; p++)
    self->ids[p] = g_array_new (FALSE, FALSE, sizeof (gint32));
  self->sweep_texts = g_ptr_array_new_with_free_func (g_free);
  self->train_state = g_atomic_rc_box_new0 (TrainProgress);
  g_mutex_init (&self->train_state->lock);
  g_weak_ref_init (&self->train_state->view, self);

  for (int m = -3; m <= 3; m++)
    gtk_scale_add_mark (self->multiplier_scale, m, GTK_POS_BOTTOM, m == 0 ? "0" : NULL);
  g_signal_connect_swapped (self->set_dropdown, "notify::selected", G_CALLBACK (set_chosen_cb), self);
  g_signal_connect_swapped (self->import_button, "clicked", G_CALLBACK (import_cb), self);
  g_signal_connect_swapped (self->export_button, "clicked", G_CALLBACK (export_cb), self);
  g_signal_connect_swapped (self->add_button, "clicked", G_CALLBACK (add_pair_cb), self);
  g_signal_connect_swapped (self->train_button, "clicked", G_CALLBACK (train_cb), self);
  g_signal_connect_swapped (self->cancel_train_button, "clicked", G_CALLBACK (cancel_train_cb), self);
  g_signal_connect_swapped (self->load_vector_button, "clicked", G_CALLBACK (load_vector_cb), self);
  g_signal_connect_swapped (self->save_vector_button, "clicked", G_CALLBACK (save_vector_cb), self);
  g_signal_connect_swapped (self->generate_button, "clicked", G_CALLBACK (generate_cb), self);
  g_signal_connect_swapped (self->prompt_entry, "activate", G_CALLBACK (generate_cb), self);
  g_signal_connect_swapped (self->stop_button, "clicked", G_CALLBACK (stop_cb), self);
  g_signal_connect (self->multiplier_scale, "value-changed", G_CALLBACK (multiplier_changed_cb), self);
  g_signal_connect_swapped (self->chart, "selection-changed", G_CALLBACK (selection_changed_cb), self);
  g_signal_connect_swapped (self->sweep_button, "clicked", G_CALLBACK (sweep_cb), self);
  g_signal_connect_swapped (self->copy_markdown_button, "clicked", G_CALLBACK (copy_markdown_cb), self);
  g_signal_connect_swapped (self->export_png_button, "clicked", G_CALLBACK (export_png_cb), self);

  find_bundled (self);
  if (!select_bundled (self, "sentiment") && self->bundled && self->bundled[0])
    load_pairs_file (self, self->bundled[0]);
  clear_pane (self, PANE_BASELINE, NULL);
  clear_pane (self, PANE_STEERED, "Train a direction first.");
  gtk_widget_set_sensitive (GTK_WIDGET (self->train_button), FALSE);
  update_vector_info (self);
  update_apply_info (self);
}

/* ---- Public API ---- */

GtkWidget *
gb_steering_view_new (void)
{
  return g_object_new (GB_TYPE_STEERING_VIEW, NULL);
}

void
gb_steering_view_set_model (GbSteeringView *self,
                            GbModel        *model)
{
  g_return_if_fail (GB_IS_STEERING_VIEW (self));

  stop_cb (self);
  g_cancellable_cancel (self->train_cancellable);
  g_clear_pointer (&self->model, gb_model_unref);
  self->model = model ? gb_model_ref (model) : NULL;
  gtk_widget_set_sensitive (GTK_WIDGET (self->train_button), model != NULL);
  /* A vector for another width cannot steer this model. */
  if (self->vector && model && !gb_steer_vector_check (self->vector, model, NULL))
    show_vector (self, NULL, 0);
  else
    show_vector (self, self->vector ? gb_steer_vector_copy (self->vector) : NULL, gb_separation_chart_get_selection (self->chart));
}

gboolean
gb_steering_view_select_pairs (GbSteeringView *self,
                               const char     *name)
{
  g_return_val_if_fail (GB_IS_STEERING_VIEW (self), FALSE);
  return select_bundled (self, name);
}

void
gb_steering_view_run_demo (GbSteeringView       *self,
                           const GbSteeringDemo *demo,
                           void (*done) (int status, gpointer data),
                           gpointer              data)
{
  g_return_if_fail (GB_IS_STEERING_VIEW (self) && demo != NULL);

  self->demo = *demo;
  g_free (self->demo_pairs);
  g_free (self->demo_prompt);
  self->demo_pairs = g_strdup (demo->pairs ? demo->pairs : "sentiment");
  self->demo_prompt = g_strdup (demo->prompt);
  g_free (self->demo_png);
  self->demo_png = g_strdup (demo->sweep_png);
  self->demo.n_tokens = demo->n_tokens ? demo->n_tokens : 30;
  self->demo_done = done;
  self->demo_data = data;
  self->demo_stage = 0;
  demo_step (self);
}

guint
gb_steering_view_get_n_steered_alive (void)
{
  return (guint) g_atomic_int_get (&n_steered_alive);
}
