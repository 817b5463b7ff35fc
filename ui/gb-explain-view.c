/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-ui"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gb-json.h"
#include "gb-ui-util.h"
#include "gb-build-config.h"
#include "gb-explain-report.h"
#include "gb-explain-view.h"
#include "gb-features-view.h"

#define SAE_TOP 8
#define SAE_FIELD_TOP 5

#define SIDEBAR_W 340
/* Figures are drawn in report units (points); on screen they are larger. */
#define FIGURE_SCALE 1.25

/* Progress crosses from a worker to the main thread one way: the worker
 * writes under the lock and schedules at most one idle, which updates the
 * bar. Reference-counted: a worker may outlive the view's interest. */
typedef struct
{
  GMutex          lock;
  double          fraction;
  char           *message;
  guint           idle_id;
  GWeakRef        bar;
  GWeakRef        label;
} Progress;

struct _GbExplainView
{
  AdwBin parent_instance;

  /* Widgets (owned by the widget tree) */
  GtkDropDown    *samples;
  GtkStack       *mode_stack;
  AdwPreferencesGroup *form;
  GPtrArray      *entries;        /* AdwEntryRow*, one per schema field */
  GtkTextView    *text_view;
  GtkButton      *explain_button;
  GtkButton      *cancel_button;
  GtkProgressBar *progress;
  GtkLabel       *progress_label;
  GtkStack       *result_stack;
  AdwStatusPage  *empty_page;
  GtkLabel       *decision_label;
  GtkLabel       *prob_label;
  GtkLabel       *cf_label;
  GtkLabel       *ig_label;
  GtkDropDown    *method;
  GtkDropDown    *attention_kind;
  GtkDrawingArea *bars_area;
  GtkDrawingArea *tokens_area;
  GtkDrawingArea *attention_area;
  GtkButton      *export_button;
  GtkEntry       *audit_group;
  GtkLabel       *audit_file_label;
  GtkButton      *audit_button;
  GtkButton      *audit_cancel;
  GtkProgressBar *audit_progress;
  GtkLabel       *audit_progress_label;
  GtkDrawingArea *audit_area;
  GtkScrolledWindow *results_scroll;
  /* Steering and SAE (sidebar) */
  GtkLabel       *vec_label;
  GtkScrolledWindow *sidebar_scroll;
  GtkWidget      *steer_heading;
  GtkButton      *vec_train;
  GtkButton      *vec_clear;
  GtkButton      *train_cancel;
  GtkSpinButton  *steer_block;
  GtkSpinButton  *steer_mult;
  GtkProgressBar *train_progress;
  GtkLabel       *train_label;
  GtkLabel       *sae_label;
  /* Steering and SAE (results) */
  GtkWidget      *steer_box;
  GtkLabel       *steer_decision_label;
  GtkLabel       *steer_prob_label;
  GtkWidget      *sae_heading;
  GtkLabel       *sae_note;
  GtkListBox     *sae_list;
  GtkListBox     *sae_field_list;
  GtkWidget      *sae_field_row;
  GtkDropDown    *sae_field_dd;
  GtkStringList  *sae_field_names;
  gboolean        sae_field_chosen; /* the user picked the field */
  GtkDrawingArea *audit_steered_area;
  GtkLabel       *audit_gap_label;

  /* Owned */
  GbModel        *model;
  GbExplainer    *explainer;
  GPtrArray      *retired;        /* explainers a cancelled job may still use */
  guint           n_jobs;         /* jobs running (Job structs alive) */
  char           *weights_sha;    /* the model's weights, hashed on a worker at load */
  GCancellable   *hash_cancellable;
  GbExplanation  *explanation;
  GbAudit        *audit;
  char           *schema_path;
  char           *app_path;
  char           *audit_path;
  GPtrArray      *sample_paths;
  GCancellable   *explain_cancellable;
  GCancellable   *audit_cancellable;
  Progress       *explain_progress;
  Progress       *audit_progress_state;
  GtkFileChooserNative *chooser;
  char           *error_text;

  /* Automation */
  void          (*done) (gpointer data, int status);
  gpointer        done_data;
  gboolean        audit_pending;
  char           *report_path;

  GbSteerVector  *vector;        /* the loaded or trained vector, or NULL */
  char           *vector_path;   /* its file (or the pairs it was trained from) */
  gboolean        vector_trained;
  GCancellable   *train_cancellable;
  Progress       *train_state;
  gboolean        explain_after_train;
  GbSae          *sae;
  char           *sae_dir;
  GbSaeAnalysis  *sae_analysis;  /* feature descriptions, or NULL */
  GCancellable   *diag_cancellable;
  gboolean        have_steered;
  GbDecision      steered;
  GArray         *sae_top;       /* GbFeatureActivation at the decision */
  GArray         *sae_field_top; /* over the most influential field's tokens */
  char           *sae_field;
  GbAudit        *audit_steered;
  char           *steer_desc;    /* provenance of the steered results shown */
  char           *sae_desc;
  char           *pending_pairs; /* automation: train from these first */
  gboolean        show_sae;      /* automation: end with the SAE features in view */
};

G_DEFINE_FINAL_TYPE (GbExplainView, gb_explain_view, ADW_TYPE_BIN)


static void run_explain (GbExplainView *self);

/* What a worker's callback needs: the view (held until the job ends, so the
 * explainers it keeps outlive the job) and the explainer the job used. */
typedef struct
{
  GbSteerVector  *vec;   /* the blocks applied, owned */
  GbIntervention *iv;    /* pointing into @vec */
  guint           n_iv;
} Steering;

static void
steering_free (Steering *st)
{
  if (st == NULL)
    return;
  gb_steer_vector_free (st->vec);
  g_free (st->iv);
  g_free (st);
}

typedef struct
{
  GbExplainView *view;
  GbExplainer   *explainer;
  Steering      *steering;  /* interventions the job uses, or NULL */
} Job;

static Job *
job_new (GbExplainView *view)
{
  Job *job = g_new0 (Job, 1);
  job->view = g_object_ref (view);
  job->explainer = view->explainer;
  view->n_jobs++;
  return job;
}

static void
job_free (Job *job)
{
  /* The last job out lets go of the explainers (and models) that the
   * cancelled jobs were still reading. */
  if (--job->view->n_jobs == 0)
    g_ptr_array_set_size (job->view->retired, 0);
  g_object_unref (job->view);
  steering_free (job->steering);
  g_free (job);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Job, job_free)

/* ---- Progress ---- */

static void
progress_clear (Progress *p)
{
  g_clear_handle_id (&p->idle_id, g_source_remove);
  g_free (p->message);
  g_weak_ref_clear (&p->bar);
  g_weak_ref_clear (&p->label);
  g_mutex_clear (&p->lock);
}

static Progress *
progress_new (GtkProgressBar *bar,
              GtkLabel       *label)
{
  Progress *p = g_atomic_rc_box_new0 (Progress);
  g_mutex_init (&p->lock);
  g_weak_ref_init (&p->bar, bar);
  g_weak_ref_init (&p->label, label);
  return p;
}

static void
progress_release (gpointer p)
{
  g_atomic_rc_box_release_full (p, (GDestroyNotify) progress_clear);
}

static gboolean
progress_idle_cb (gpointer data)
{
  Progress *p = data;
  g_autoptr (GtkProgressBar) bar = g_weak_ref_get (&p->bar);
  g_autoptr (GtkLabel) label = g_weak_ref_get (&p->label);
  g_autofree char *message = NULL;
  double fraction;

  g_mutex_lock (&p->lock);
  fraction = p->fraction;
  message = g_strdup (p->message);
  p->idle_id = 0;
  g_mutex_unlock (&p->lock);
  if (bar)
    gtk_progress_bar_set_fraction (bar, fraction);
  if (label && message)
    gtk_label_set_text (label, message);
  return G_SOURCE_REMOVE;
}

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
    p->idle_id = g_idle_add_full (G_PRIORITY_DEFAULT, progress_idle_cb, g_atomic_rc_box_acquire (p), progress_release);
  g_mutex_unlock (&p->lock);
}

/* ---- Helpers ---- */

static gboolean
is_dark (void)
{
  return adw_style_manager_get_dark (adw_style_manager_get_default ());
}

static void
toast (GbExplainView *self,
       const char    *message)
{
  GtkWidget *overlay = gtk_widget_get_ancestor (GTK_WIDGET (self), ADW_TYPE_TOAST_OVERLAY);
  if (overlay)
    {
      AdwToast *t = adw_toast_new (message);
      adw_toast_set_timeout (t, 6);
      adw_toast_overlay_add_toast (ADW_TOAST_OVERLAY (overlay), t);
    }
  else
    g_message ("%s", message);
}

static gboolean export_report (GbExplainView *self, const char *path, GError **error);

static void
finish_automation (GbExplainView *self,
                   int            status)
{
  g_autoptr (GError) error = NULL;

  if (self->done == NULL)
    return;
  if (status == 0 && self->report_path != NULL && !export_report (self, self->report_path, &error))
    {
      g_printerr ("glassbox: %s\n", error->message);
      status = 1;
    }
  void (*done) (gpointer, int) = self->done;
  self->done = NULL;
  done (self->done_data, status);
}

static char *
label_word (GbExplainView *self,
            gboolean       positive)
{
  GbAppSchema *s = gb_explainer_get_schema (self->explainer);
  return g_strstrip (g_strdup (positive ? s->positive : s->negative));
}

static GbEvidence
current_method (GbExplainView *self)
{
  return (GbEvidence) MIN (gtk_drop_down_get_selected (self->method), GB_N_EVIDENCE - 1);
}

static gboolean
attention_heads (GbExplainView *self)
{
  return gtk_drop_down_get_selected (self->attention_kind) == 1;
}

/* Height a figure needs at @width, measured on a recording surface. */
static double
measure (GbExplainView *self,
         int            which,
         double         width)
{
  cairo_surface_t *rec = cairo_recording_surface_create (CAIRO_CONTENT_COLOR_ALPHA, NULL);
  cairo_t *cr = cairo_create (rec);
  double h = 0;
  const GbExplanation *e = self->explanation;

  if (which == 0 && e)
    h = gb_explain_draw_field_bars (cr, e, current_method (self), 0, 0, width, FALSE);
  else if (which == 1 && e)
    h = gb_explain_draw_tokens (cr, self->explainer, e, current_method (self), 0, 0, width, FALSE);
  else if (which == 2 && e)
    h = gb_explain_draw_attention (cr, self->explainer, e, attention_heads (self), 0, 0, width, FALSE);
  else if (which == 3 && self->audit)
    h = gb_explain_draw_audit (cr, self->explainer, self->audit, 0, 0, width, FALSE);
  else if (which == 4 && self->audit_steered)
    h = gb_explain_draw_audit (cr, self->explainer, self->audit_steered, 0, 0, width, FALSE);
  cairo_destroy (cr);
  cairo_surface_destroy (rec);
  return h * FIGURE_SCALE;
}

static gboolean
set_height_idle_cb (gpointer data)
{
  GtkDrawingArea *area = data;
  gtk_drawing_area_set_content_height (area, GPOINTER_TO_INT (g_object_get_data (G_OBJECT (area), "gb-height")));
  return G_SOURCE_REMOVE;
}

static void
draw_cb (GtkDrawingArea *area,
         cairo_t        *cr,
         int             width,
         int             height,
         gpointer        data)
{
  GbExplainView *self = data;
  const int which = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (area), "which"));
  const gboolean dark = is_dark ();
  const GbExplanation *e = self->explanation;
  double h = 0;

  cairo_scale (cr, FIGURE_SCALE, FIGURE_SCALE);
  width = (int) (width / FIGURE_SCALE);
  if (which == 0 && e)
    h = gb_explain_draw_field_bars (cr, e, current_method (self), 0, 0, width, dark);
  else if (which == 1 && e)
    h = gb_explain_draw_tokens (cr, self->explainer, e, current_method (self), 0, 0, width, dark);
  else if (which == 2 && e)
    h = gb_explain_draw_attention (cr, self->explainer, e, attention_heads (self), 0, 0, width, dark);
  else if (which == 3 && self->audit)
    h = gb_explain_draw_audit (cr, self->explainer, self->audit, 0, 0, width, dark);
  else if (which == 4 && self->audit_steered)
    h = gb_explain_draw_audit (cr, self->explainer, self->audit_steered, 0, 0, width, dark);
  /* A figure whose height changed (its data did) is resized after this
   * frame, never during it. */
  const int want = (int) (h * FIGURE_SCALE) + 4;
  if (want != gtk_drawing_area_get_content_height (area))
    {
      g_object_set_data (G_OBJECT (area), "gb-height", GINT_TO_POINTER (want));
      g_idle_add_full (G_PRIORITY_DEFAULT, set_height_idle_cb, g_object_ref (area), g_object_unref);
    }
}

static void
area_resize_cb (GtkDrawingArea *area,
                int             width,
                int             height,
                gpointer        data)
{
  GbExplainView *self = data;
  const int which = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (area), "which"));
  const int h = (int) measure (self, which, width / FIGURE_SCALE) + 4;
  if (h != gtk_drawing_area_get_content_height (area))
    gtk_drawing_area_set_content_height (area, h);
}

static void
redraw (GbExplainView *self)
{
  GtkDrawingArea *areas[] = { self->bars_area, self->tokens_area, self->attention_area, self->audit_area,
                              self->audit_steered_area };
  for (guint i = 0; i < G_N_ELEMENTS (areas); i++)
    {
      int w = gtk_widget_get_width (GTK_WIDGET (areas[i]));
      /* Not laid out yet (the page was hidden): estimate, the draw corrects it. */
      if (w <= 0)
        w = MAX (400, gtk_widget_get_width (GTK_WIDGET (self)) - SIDEBAR_W - 60);
      area_resize_cb (areas[i], w, 0, self);
      gtk_widget_queue_draw (GTK_WIDGET (areas[i]));
    }
}

/* ---- The application's form ---- */

static void sae_field_changed_cb (GbExplainView *self);

static void
rebuild_form (GbExplainView *self)
{
  for (guint i = 0; i < self->entries->len; i++)
    adw_preferences_group_remove (self->form, g_ptr_array_index (self->entries, i));
  g_ptr_array_set_size (self->entries, 0);
  g_signal_handlers_block_by_func (self->sae_field_dd, sae_field_changed_cb, self);
  gtk_string_list_splice (self->sae_field_names, 0, g_list_model_get_n_items (G_LIST_MODEL (self->sae_field_names)), NULL);
  self->sae_field_chosen = FALSE;
  if (self->explainer != NULL)
    {
      GbAppSchema *sc = gb_explainer_get_schema (self->explainer);
      for (guint i = 0; i < sc->fields->len; i++)
        gtk_string_list_append (self->sae_field_names, ((const GbFieldSpec *) g_ptr_array_index (sc->fields, i))->name);
    }
  g_signal_handlers_unblock_by_func (self->sae_field_dd, sae_field_changed_cb, self);
  if (self->explainer == NULL)
    return;
  GbAppSchema *s = gb_explainer_get_schema (self->explainer);
  for (guint i = 0; i < s->fields->len; i++)
    {
      const GbFieldSpec *spec = g_ptr_array_index (s->fields, i);
      GtkWidget *row = adw_entry_row_new ();
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), spec->label ? spec->label : spec->name);
      g_object_set_data_full (G_OBJECT (row), "field", g_strdup (spec->name), g_free);
      adw_preferences_group_add (self->form, row);
      g_ptr_array_add (self->entries, row);
    }
}

static void
fill_form (GbExplainView       *self,
           const GbApplication *app)
{
  for (guint i = 0; i < self->entries->len; i++)
    {
      GtkWidget *row = g_ptr_array_index (self->entries, i);
      int f = gb_application_find_field (app, g_object_get_data (G_OBJECT (row), "field"));
      const char *v = f >= 0 ? ((GbAppField *) g_ptr_array_index (app->fields, f))->value : "";
      gtk_editable_set_text (GTK_EDITABLE (row), v);
    }
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (self->text_view), app->text, -1);
  gtk_stack_set_visible_child_name (self->mode_stack, app->from_fields ? "form" : "text");
}

static GbApplication *
application_from_input (GbExplainView *self,
                        GError       **error)
{
  GbAppSchema *s = gb_explainer_get_schema (self->explainer);

  if (g_str_equal (gtk_stack_get_visible_child_name (self->mode_stack), "text"))
    {
      GtkTextBuffer *buf = gtk_text_view_get_buffer (self->text_view);
      GtkTextIter a, b;
      gtk_text_buffer_get_bounds (buf, &a, &b);
      g_autofree char *text = gtk_text_buffer_get_text (buf, &a, &b, FALSE);
      return gb_application_new_from_text (s, text, error);
    }
  g_autoptr (GHashTable) fields = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  for (guint i = 0; i < self->entries->len; i++)
    {
      GtkWidget *row = g_ptr_array_index (self->entries, i);
      const char *v = gtk_editable_get_text (GTK_EDITABLE (row));
      if (*v)
        g_hash_table_insert (fields, g_object_get_data (G_OBJECT (row), "field"), g_strdup (v));
    }
  return gb_application_new_from_fields (s, fields, error);
}

static gboolean
open_application (GbExplainView *self,
                  const char    *path,
                  GError       **error)
{
  if (self->explainer == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "no model is loaded");
      return FALSE;
    }
  g_autoptr (GbApplication) app = gb_application_load (gb_explainer_get_schema (self->explainer), path, error);
  if (app == NULL)
    return FALSE;
  g_free (self->app_path);
  self->app_path = g_strdup (path);
  fill_form (self, app);
  return TRUE;
}

/* ---- Explaining ---- */

static void
show_explanation (GbExplainView *self)
{
  const GbExplanation *e = self->explanation;
  g_autofree char *word = label_word (self, e->decision.positive);
  g_autofree char *pos = label_word (self, TRUE), *neg = label_word (self, FALSE);
  word[0] = g_ascii_toupper (word[0]);

  gtk_label_set_text (self->decision_label, word);
  gtk_widget_remove_css_class (GTK_WIDGET (self->decision_label), "success");
  gtk_widget_remove_css_class (GTK_WIDGET (self->decision_label), "error");
  gtk_widget_add_css_class (GTK_WIDGET (self->decision_label), e->decision.positive ? "success" : "error");
  g_autofree char *probs = g_strdup_printf ("p(%s) = %.3f · log-odds %s/%s = %+.2f", pos, e->decision.p_positive, pos,
                                            neg, e->decision.log_odds);
  gtk_label_set_text (self->prob_label, probs);
  g_autofree char *cf = gb_explanation_counterfactual_sentence (e, self->explainer);
  gtk_label_set_text (self->cf_label, cf ? cf : "No single-field change among the values tried flips the decision.");
  g_autofree char *ig = e->ig ? g_strdup_printf ("Integrated gradients: %u steps, completeness error %.2f%% "
                                                 "(attributions sum to %.3f, F(input) − F(baseline) = %.3f).",
                                                 e->ig_steps, 100 * e->ig_completeness, e->ig_sum,
                                                 e->decision.log_odds - e->baseline_log_odds)
                              : g_strdup (e->gradient_note ? e->gradient_note : "");
  gtk_label_set_text (self->ig_label, ig);
  gtk_stack_set_visible_child_name (self->result_stack, "result");
  gtk_widget_set_sensitive (GTK_WIDGET (self->export_button), TRUE);
  redraw (self);
}

static void
set_busy (GbExplainView *self,
          gboolean       busy)
{
  gtk_widget_set_visible (GTK_WIDGET (self->cancel_button), busy);
  gtk_widget_set_visible (GTK_WIDGET (self->progress), busy);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_label), busy);
  gtk_widget_set_sensitive (GTK_WIDGET (self->explain_button), !busy && self->explainer != NULL);
  if (busy)
    gtk_progress_bar_set_fraction (self->progress, 0);
}

static void run_audit (GbExplainView *self);
static void run_audit_with (GbExplainView *self, Steering *st);
static void run_diagnose (GbExplainView *self, gboolean chain);
static void after_explain (GbExplainView *self);
static gboolean scroll_to_end_cb (GtkWidget *widget, GdkFrameClock *clock, gpointer data);

static void
explain_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  g_autoptr (Job) job = data;
  GbExplainView *self = job->view;
  GbExplainer *ex = job->explainer;
  g_autoptr (GError) error = NULL;
  g_autoptr (GbExplanation) e = gb_explainer_explain_finish (ex, result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      if (ex == self->explainer)
        set_busy (self, FALSE);
      return;
    }
  if (ex != self->explainer)
    return; /* the model changed meanwhile */
  set_busy (self, FALSE);
  if (e == NULL)
    {
      toast (self, error->message);
      finish_automation (self, 1);
      return;
    }
  g_clear_pointer (&self->explanation, gb_explanation_free);
  self->explanation = g_steal_pointer (&e);
  show_explanation (self);
  run_diagnose (self, TRUE);
}

/* After the explanation and its diagnosis: the audit asked for, or done. */
static void
after_explain (GbExplainView *self)
{
  if (self->audit_pending)
    {
      self->audit_pending = FALSE;
      run_audit (self);
    }
  else if (self->done != NULL && self->sae_top != NULL && self->show_sae)
    {
      /* Unattended with an SAE: the features in view for the screenshot. */
      g_object_set_data (G_OBJECT (self->results_scroll), "gb-target", self->sae_heading);
      /* And the sidebar's steering and SAE settings. */
      graphene_point_t at;
      if (gtk_widget_compute_point (self->steer_heading, gtk_widget_get_parent (self->steer_heading),
                                    &GRAPHENE_POINT_INIT (0, 0), &at))
        gtk_adjustment_set_value (gtk_scrolled_window_get_vadjustment (self->sidebar_scroll), at.y - 8);
      g_object_set_data (G_OBJECT (self->results_scroll), "gb-settled", NULL);
      gtk_widget_add_tick_callback (GTK_WIDGET (self->results_scroll), scroll_to_end_cb, self, NULL);
    }
  else
    finish_automation (self, 0);
}

static void
run_explain (GbExplainView *self)
{
  g_autoptr (GError) error = NULL;

  if (self->explainer == NULL)
    return;
  g_autoptr (GbApplication) app = application_from_input (self, &error);
  if (app == NULL)
    {
      toast (self, error->message);
      finish_automation (self, 1);
      return;
    }
  g_cancellable_cancel (self->explain_cancellable);
  g_clear_object (&self->explain_cancellable);
  self->explain_cancellable = g_cancellable_new ();
  set_busy (self, TRUE);
  gtk_label_set_text (self->progress_label, "Explaining");
  /* The task holds the view (and so the explainer) until it finishes. */
  GbExplainOptions o;
  gb_explain_options_init (&o);
  gb_explainer_explain_async (self->explainer, app, &o, self->explain_cancellable, progress_cb, self->explain_progress,
                              explain_done_cb, job_new (self));
}

/* ---- Steering and SAE features ("diagnose and intervene") ---- */

/* The vector's block chosen in the sidebar, at the chosen multiplier. */
static void sae_field_changed_cb (GbExplainView *self);

static void drop_steered_audit (GbExplainView *self);

static Steering *
current_steering (GbExplainView *self,
                  GError       **error)
{
  if (self->vector == NULL)
    return NULL;
  const guint block = (guint) gtk_spin_button_get_value_as_int (self->steer_block);
  GbSteerVector *sub = gb_steer_vector_subset (self->vector, (guint64) 1 << block);
  if (sub == NULL)
    {
      GString *have = g_string_new (NULL);
      for (guint i = 0; i < self->vector->n_layers; i++)
        g_string_append_printf (have, "%s%u", i ? ", " : "", self->vector->layers[i].layer);
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "the steering vector has no block %u (it has %s)", block, have->str);
      g_string_free (have, TRUE);
      return NULL;
    }
  Steering *st = g_new0 (Steering, 1);
  st->vec = sub;
  st->iv = g_new0 (GbIntervention, sub->n_layers);
  st->n_iv = gb_steer_vector_interventions (sub, (float) gtk_spin_button_get_value (self->steer_mult), 0, st->iv);
  return st;
}

static char *
steering_description (GbExplainView  *self,
                      const Steering *st,
                      GError        **error)
{
  g_autofree char *d = gb_explain_steer_description (self->vector_path, st->vec, gtk_spin_button_get_value (self->steer_mult),
                                                     0, error);
  if (d == NULL)
    return NULL;
  if (self->vector_trained)
    return g_strdup_printf ("trained in Glassbox (mean difference, last token) from the pairs in %s", d);
  return g_steal_pointer (&d);
}

typedef struct
{
  GbExplainer   *ex;
  GbApplication *app;
  Steering      *st;       /* borrowed from the job */
  GbSae         *sae;      /* a copy */
  int            first;    /* the field's tokens, n = 0 for none */
  guint          n;
  gboolean       have_steered;
  GbDecision     steered;
  GArray        *top, *field_top;
} DiagData;

static void
diag_data_free (gpointer data)
{
  DiagData *d = data;
  gb_application_free (d->app);
  g_clear_pointer (&d->sae, gb_sae_free);
  g_clear_pointer (&d->top, g_array_unref);
  g_clear_pointer (&d->field_top, g_array_unref);
  g_free (d);
}

static void
diag_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  gb_thread_make_background ();
  DiagData *d = task_data;
  GError *error = NULL;

  if (d->st != NULL && !gb_explainer_decide (d->ex, d->app, d->st->iv, d->st->n_iv, &d->steered, cancellable, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  d->have_steered = d->st != NULL;
  if (d->sae != NULL)
    {
      d->top = gb_explainer_sae_features (d->ex, d->app, d->sae, NULL, 0, -1, 1, SAE_TOP, NULL, cancellable, &error);
      if (d->top != NULL && d->n > 0)
        d->field_top = gb_explainer_sae_features (d->ex, d->app, d->sae, NULL, 0, d->first, d->n, SAE_FIELD_TOP, NULL, cancellable,
                                                  &error);
      if (error != NULL)
        {
          g_task_return_error (task, error);
          return;
        }
    }
  g_task_return_boolean (task, TRUE);
}

static void
feature_open_clicked_cb (GtkButton     *button,
                         GbExplainView *self)
{
  if (self->sae_dir == NULL)
    return;
  g_signal_emit_by_name (self, "open-feature", self->sae_dir,
                         GPOINTER_TO_INT (g_object_get_data (G_OBJECT (button), "feature")));
}

static void
add_feature_rows (GbExplainView *self,
                  GtkListBox    *box,
                  const GArray  *list)
{
  for (guint i = 0; i < list->len; i++)
    {
      const GbFeatureActivation *fa = &g_array_index (list, GbFeatureActivation, i);
      GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
      gtk_widget_set_margin_start (row, 8);
      gtk_widget_set_margin_end (row, 4);
      gtk_widget_set_margin_top (row, 2);
      gtk_widget_set_margin_bottom (row, 2);
      g_autofree char *idx = g_strdup_printf ("#%u", fa->index);
      g_autofree char *act = g_strdup_printf ("%.3f", fa->activation);
      GtkWidget *l1 = gtk_label_new (idx), *l2 = gtk_label_new (act);
      gtk_widget_add_css_class (l1, "monospace");
      gtk_widget_add_css_class (l2, "numeric");
      gtk_label_set_width_chars (GTK_LABEL (l1), 6);
      gtk_label_set_xalign (GTK_LABEL (l1), 0);
      gtk_label_set_width_chars (GTK_LABEL (l2), 7);
      gtk_label_set_xalign (GTK_LABEL (l2), 1);
      const char *label = gb_explain_feature_label (self->sae_analysis, fa->index);
      GtkWidget *l3 = gtk_label_new (label && *label ? label : "no description yet (open it in the Features view)");
      if (!(label && *label))
        gtk_widget_add_css_class (l3, "dim-label");
      gtk_label_set_xalign (GTK_LABEL (l3), 0);
      gtk_label_set_ellipsize (GTK_LABEL (l3), PANGO_ELLIPSIZE_END);
      gtk_widget_set_hexpand (l3, TRUE);
      GtkWidget *open = gtk_button_new_with_label ("Open");
      gtk_widget_add_css_class (open, "flat");
      g_autofree char *tip = g_strdup_printf ("Show feature #%u in the Features view", fa->index);
      gtk_widget_set_tooltip_text (open, tip);
      g_object_set_data (G_OBJECT (open), "feature", GINT_TO_POINTER (fa->index));
      g_signal_connect (open, "clicked", G_CALLBACK (feature_open_clicked_cb), self);
      gtk_box_append (GTK_BOX (row), l1);
      gtk_box_append (GTK_BOX (row), l2);
      gtk_box_append (GTK_BOX (row), l3);
      gtk_box_append (GTK_BOX (row), open);
      gtk_list_box_append (box, row);
    }
}

static void
show_diagnosis (GbExplainView *self)
{
  const GbExplanation *e = self->explanation;
  gtk_widget_set_visible (self->steer_box, self->have_steered && e != NULL);
  if (self->have_steered && e != NULL)
    {
      g_autofree char *word = label_word (self, self->steered.positive);
      g_autofree char *pos = label_word (self, TRUE);
      word[0] = g_ascii_toupper (word[0]);
      g_autofree char *t = g_strdup_printf ("Steered: %s", word);
      gtk_label_set_text (self->steer_decision_label, t);
      gtk_widget_remove_css_class (GTK_WIDGET (self->steer_decision_label), "success");
      gtk_widget_remove_css_class (GTK_WIDGET (self->steer_decision_label), "error");
      gtk_widget_add_css_class (GTK_WIDGET (self->steer_decision_label), self->steered.positive ? "success" : "error");
      g_autofree char *probs = g_strdup_printf ("p(%s) = %.3f · log-odds %+.2f (%+.2f) · block %d × %g", pos,
                                                self->steered.p_positive, self->steered.log_odds,
                                                self->steered.log_odds - e->decision.log_odds,
                                                gtk_spin_button_get_value_as_int (self->steer_block),
                                                gtk_spin_button_get_value (self->steer_mult));
      gtk_label_set_text (self->steer_prob_label, probs);
    }

  GtkWidget *child;
  GtkListBox *lists[2] = { self->sae_list, self->sae_field_list };
  for (guint k = 0; k < 2; k++)
    while ((child = gtk_widget_get_first_child (GTK_WIDGET (lists[k]))) != NULL)
      gtk_list_box_remove (lists[k], child);
  const gboolean show = self->sae != NULL && self->sae_top != NULL;
  gtk_widget_set_visible (self->sae_heading, show);
  gtk_widget_set_visible (GTK_WIDGET (self->sae_note), show);
  gtk_widget_set_visible (GTK_WIDGET (self->sae_list), show);
  gtk_widget_set_visible (self->sae_field_row, show && self->sae_field_top != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->sae_field_list), show && self->sae_field_top != NULL);
  if (!show)
    return;
  g_autofree char *hook = g_strdup_printf ("blocks.%u.%s", self->sae->layer, gb_hook_name (self->sae->hook));
  g_autofree char *base = g_path_get_basename (self->sae_dir);
  g_autofree char *note_text = g_strdup_printf ("%s at %s: the %u strongest features at the decision token (the last), "
                                                "then over one field's tokens. Descriptions: %s.",
                                                base, hook, SAE_TOP,
                                                self->sae_analysis ? "the SAE's feature cache (most common top tokens)"
                                                                   : "none yet: opening a feature in the Features view "
                                                                     "builds the cache");
  gtk_label_set_text (self->sae_note, note_text);
  if (self->sae_top->len == 0)
    {
      GtkWidget *l = gtk_label_new ("No feature is active at the decision token.");
      gtk_widget_add_css_class (l, "dim-label");
      gtk_list_box_append (self->sae_list, l);
    }
  add_feature_rows (self, self->sae_list, self->sae_top);
  if (self->sae_field_top != NULL)
    add_feature_rows (self, self->sae_field_list, self->sae_field_top);
}

static void
diag_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  g_autoptr (Job) job = data;
  GbExplainView *self = job->view;
  g_autoptr (GError) error = NULL;
  const gboolean chain = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (result), "gb-chain"));
  DiagData *d = g_task_get_task_data (G_TASK (result));

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || job->explainer != self->explainer)
        return;
      toast (self, error->message);
      if (chain)
        finish_automation (self, 1);
      return;
    }
  if (job->explainer != self->explainer)
    return;
  self->have_steered = d->have_steered;
  self->steered = d->steered;
  g_clear_pointer (&self->sae_top, g_array_unref);
  g_clear_pointer (&self->sae_field_top, g_array_unref);
  self->sae_top = g_steal_pointer (&d->top);
  self->sae_field_top = g_steal_pointer (&d->field_top);
  g_free (self->steer_desc);
  self->steer_desc = job->steering ? steering_description (self, job->steering, NULL) : NULL;
  show_diagnosis (self);
  if (chain)
    after_explain (self);
}

/* The decision with the steering vector and the SAE's features, for the
 * explanation shown (one forward pass each, on a worker). @chain: then go
 * on with the automation's audit. */
static void
run_diagnose (GbExplainView *self,
              gboolean       chain)
{
  g_autoptr (GError) error = NULL;
  const GbExplanation *e = self->explanation;

  g_cancellable_cancel (self->diag_cancellable);
  g_clear_object (&self->diag_cancellable);
  self->have_steered = FALSE;
  g_clear_pointer (&self->sae_top, g_array_unref);
  g_clear_pointer (&self->sae_field_top, g_array_unref);
  Steering *st = current_steering (self, &error);
  if (error != NULL)
    gtk_label_set_text (self->train_label, error->message);
  if (e == NULL || self->explainer == NULL || (st == NULL && self->sae == NULL))
    {
      steering_free (st);
      show_diagnosis (self);
      if (chain)
        after_explain (self);
      return;
    }
  DiagData *d = g_new0 (DiagData, 1);
  d->ex = self->explainer;
  d->app = gb_application_copy (e->app);
  d->st = st;
  d->sae = self->sae ? gb_sae_copy (self->sae) : NULL;
  /* The field chosen, else the one with the largest occlusion. */
  int f = -1;
  guint sel = gtk_drop_down_get_selected (self->sae_field_dd);
  if (self->sae_field_chosen && sel < g_list_model_get_n_items (G_LIST_MODEL (self->sae_field_names)))
    f = gb_application_find_field (e->app, gtk_string_list_get_string (self->sae_field_names, sel));
  if (f < 0)
    for (guint i = 0; i < e->n_fields; i++)
      if (f < 0 || fabs (e->occlusion[i]) > fabs (e->occlusion[f]))
        f = (int) i;
  if (f >= 0)
    {
      const char *name = ((GbAppField *) g_ptr_array_index (e->app->fields, f))->name;
      for (guint i = 0; i < g_list_model_get_n_items (G_LIST_MODEL (self->sae_field_names)); i++)
        if (g_str_equal (gtk_string_list_get_string (self->sae_field_names, i), name))
          {
            g_signal_handlers_block_by_func (self->sae_field_dd, sae_field_changed_cb, self);
            gtk_drop_down_set_selected (self->sae_field_dd, i);
            g_signal_handlers_unblock_by_func (self->sae_field_dd, sae_field_changed_cb, self);
          }
    }
  d->first = -1;
  for (guint t = 0; f >= 0 && t < e->n_tokens; t++)
    if (e->token_field[t] == f)
      {
        if (d->first < 0)
          d->first = (int) t;
        d->n = t - (guint) d->first + 1;
      }
  g_free (self->sae_field);
  self->sae_field = f >= 0 ? g_strdup (((GbAppField *) g_ptr_array_index (e->app->fields, f))->name) : NULL;
  self->diag_cancellable = g_cancellable_new ();
  Job *job = job_new (self);
  job->steering = st;
  GTask *task = g_task_new (NULL, self->diag_cancellable, diag_done_cb, job);
  g_object_set_data (G_OBJECT (task), "gb-chain", GINT_TO_POINTER (chain));
  g_task_set_task_data (task, d, diag_data_free);
  g_task_run_in_thread (task, diag_thread);
  g_object_unref (task);
}

static void
set_vector (GbExplainView *self,
            GbSteerVector *vec,
            const char    *path,
            gboolean       trained)
{
  g_clear_pointer (&self->vector, gb_steer_vector_free);
  g_free (self->vector_path);
  self->vector = vec;
  self->vector_path = g_strdup (path);
  self->vector_trained = trained;
  gtk_widget_set_sensitive (GTK_WIDGET (self->vec_clear), vec != NULL);
  if (vec == NULL)
    {
      gtk_label_set_text (self->vec_label, "No vector");
      gtk_label_set_text (self->train_label, "");
      return;
    }
  g_autofree char *base = g_path_get_basename (path);
  GString *blocks = g_string_new (NULL);
  for (guint i = 0; i < vec->n_layers; i++)
    g_string_append_printf (blocks, "%s%u", i ? ", " : "", vec->layers[i].layer);
  g_autofree char *t = g_strdup_printf ("%s%s (block%s %s)", base, trained ? ", trained" : "", vec->n_layers > 1 ? "s" : "",
                                        blocks->str);
  g_string_free (blocks, TRUE);
  gtk_label_set_text (self->vec_label, t);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->vec_label), path);
  /* Apply the vector's own block when it has only one, or the chosen one is missing. */
  if (gb_steer_vector_get_layer (vec, (guint) gtk_spin_button_get_value_as_int (self->steer_block)) == NULL)
    gtk_spin_button_set_value (self->steer_block, vec->layers[0].layer);
  const GbSteerLayer *l = gb_steer_vector_get_layer (vec, (guint) gtk_spin_button_get_value_as_int (self->steer_block));
  g_autofree char *msg = l && !isnan (l->accuracy)
                           ? g_strdup_printf ("Held-out pairs on the right side: %.0f%%.", 100 * l->accuracy)
                           : g_strdup ("");
  gtk_label_set_text (self->train_label, msg);
}

static gboolean
load_vector (GbExplainView *self,
             const char    *path,
             GError       **error)
{
  if (self->model == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "no model is loaded");
      return FALSE;
    }
  g_autoptr (GbSteerVector) vec = gb_steer_vector_load (path, error);
  if (vec == NULL)
    return FALSE;
  if (!gb_steer_vector_check (vec, self->model, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  set_vector (self, g_steal_pointer (&vec), path, FALSE);
  return TRUE;
}

static void
set_train_busy (GbExplainView *self,
                gboolean       busy)
{
  gtk_widget_set_visible (GTK_WIDGET (self->train_cancel), busy);
  gtk_widget_set_visible (GTK_WIDGET (self->train_progress), busy);
  gtk_widget_set_sensitive (GTK_WIDGET (self->vec_train), !busy && self->model != NULL);
}

static void
train_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  g_autoptr (Job) job = data;
  GbExplainView *self = job->view;
  g_autoptr (GError) error = NULL;
  GbSteerVector *vec = gb_steer_train_finish (result, &error);
  const char *pairs = g_object_get_data (G_OBJECT (self), "gb-training-pairs");

  if (job->explainer != self->explainer)
    {
      g_clear_pointer (&vec, gb_steer_vector_free);
      return;
    }
  set_train_busy (self, FALSE);
  if (vec == NULL)
    {
      gtk_label_set_text (self->train_label, g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                                               ? "Training cancelled."
                                               : error->message);
      if (self->explain_after_train)
        {
          self->explain_after_train = FALSE;
          finish_automation (self, 1);
        }
      return;
    }
  set_vector (self, vec, pairs, TRUE);
  drop_steered_audit (self);
  if (self->explain_after_train)
    {
      self->explain_after_train = FALSE;
      run_explain (self);
    }
  else if (self->explanation != NULL)
    run_diagnose (self, FALSE);
}

/* Trains a vector from @pairs_path at the chosen block on a worker. */
static void
start_training (GbExplainView *self,
                const char    *pairs_path)
{
  g_autoptr (GError) error = NULL;

  if (self->model == NULL)
    return;
  g_autoptr (GbPairSet) pairs = gb_pair_set_load (pairs_path, &error);
  if (pairs == NULL)
    {
      toast (self, error->message);
      if (self->explain_after_train)
        {
          self->explain_after_train = FALSE;
          finish_automation (self, 1);
        }
      return;
    }
  GbSteerParams params;
  gb_steer_params_init (&params);
  params.layers = (guint64) 1 << gtk_spin_button_get_value_as_int (self->steer_block);
  g_cancellable_cancel (self->train_cancellable);
  g_clear_object (&self->train_cancellable);
  self->train_cancellable = g_cancellable_new ();
  set_train_busy (self, TRUE);
  gtk_progress_bar_set_fraction (self->train_progress, 0);
  gtk_label_set_text (self->train_label, "Training…");
  Job *job = job_new (self);
  g_object_set_data_full (G_OBJECT (self), "gb-training-pairs", g_strdup (pairs_path), g_free);
  gb_steer_train_async (self->model, pairs, &params, self->train_cancellable, progress_cb, self->train_state, train_done_cb,
                        job);
}

static void
open_steering_clicked_cb (GbExplainView *self)
{
  g_signal_emit_by_name (self, "open-steering", "zip-neutral-loans");
}

static void
train_clicked_cb (GbExplainView *self)
{
  g_autofree char *pairs = g_build_filename (gb_data_dir (), "pairs", "zip-neutral-loans.json", NULL);
  start_training (self, pairs);
}

static void
vector_clear_clicked_cb (GbExplainView *self)
{
  set_vector (self, NULL, NULL, FALSE);
  g_clear_pointer (&self->audit_steered, gb_audit_free);
  gtk_label_set_text (self->audit_gap_label, "");
  run_diagnose (self, FALSE);
  redraw (self);
}

/* The steered audit shown no longer matches the vector or its settings. */
static void
drop_steered_audit (GbExplainView *self)
{
  if (self->audit_steered == NULL)
    return;
  g_clear_pointer (&self->audit_steered, gb_audit_free);
  gtk_label_set_text (self->audit_gap_label, "Steering changed: run the audit again to compare.");
  redraw (self);
}

static void
steer_value_changed_cb (GbExplainView *self)
{
  drop_steered_audit (self);
  if (self->explanation != NULL && self->vector != NULL)
    run_diagnose (self, FALSE);
}

static void train_cancel_clicked_cb (GbExplainView *self) { g_cancellable_cancel (self->train_cancellable); }

static void
sae_field_changed_cb (GbExplainView *self)
{
  self->sae_field_chosen = TRUE;
  if (self->explanation != NULL && self->sae != NULL)
    run_diagnose (self, FALSE);
}

static gboolean
load_sae (GbExplainView *self,
          const char    *dir,
          GError       **error)
{
  g_autoptr (GbSae) sae = gb_sae_load (dir, error);
  if (sae == NULL || !gb_sae_check_model (sae, self->model, error))
    return FALSE;
  g_clear_pointer (&self->sae, gb_sae_free);
  g_clear_pointer (&self->sae_analysis, gb_sae_analysis_free);
  g_free (self->sae_dir);
  self->sae_dir = g_strdup (dir);
  self->sae = g_steal_pointer (&sae);
  self->sae_analysis = gb_explain_sae_descriptions (self->sae);
  g_free (self->sae_desc);
  self->sae_desc = gb_explain_sae_description (self->sae, NULL);
  g_autofree char *base = g_path_get_basename (dir);
  g_autofree char *t = g_strdup_printf ("%s (blocks.%u.%s, %u features)", base, self->sae->layer,
                                        gb_hook_name (self->sae->hook), self->sae->d_sae);
  gtk_label_set_text (self->sae_label, t);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->sae_label), dir);
  return TRUE;
}

/* ---- Audit ---- */

static void
set_audit_busy (GbExplainView *self,
                gboolean       busy)
{
  gtk_widget_set_visible (GTK_WIDGET (self->audit_cancel), busy);
  gtk_widget_set_visible (GTK_WIDGET (self->audit_progress), busy);
  gtk_widget_set_sensitive (GTK_WIDGET (self->audit_button), !busy && self->explainer != NULL);
}

/* Unattended audits end with the audit in view (for the screenshot): the
 * scroll range settles over a few frames of layout. */
static gboolean
scroll_to_end_cb (GtkWidget     *widget,
                  GdkFrameClock *clock,
                  gpointer       data)
{
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment (GTK_SCROLLED_WINDOW (widget));
  GbExplainView *self = data;
  double end = gtk_adjustment_get_upper (adj) - gtk_adjustment_get_page_size (adj);
  GtkWidget *target = g_object_get_data (G_OBJECT (widget), "gb-target");
  graphene_point_t at;
  /* Relative to the content box (the viewport's own origin moves with the scroll). */
  if (target != NULL && gtk_widget_compute_point (target, gtk_widget_get_parent (target), &GRAPHENE_POINT_INIT (0, 0), &at))
    end = MIN (end, MAX (0, at.y - 8));
  int settled = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (widget), "gb-settled"));

  if (gtk_adjustment_get_value (adj) != end || end <= 0)
    {
      gtk_adjustment_set_value (adj, end);
      settled = 0;
    }
  g_object_set_data (G_OBJECT (widget), "gb-settled", GINT_TO_POINTER (++settled));
  if (settled < 5)
    return G_SOURCE_CONTINUE;
  finish_automation (self, 0);
  return G_SOURCE_REMOVE;
}

static void
audit_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  g_autoptr (Job) job = data;
  GbExplainView *self = job->view;
  GbExplainer *ex = job->explainer;
  g_autoptr (GError) error = NULL;
  g_autoptr (GbAudit) audit = gb_explainer_audit_finish (ex, result, &error);

  if (ex == self->explainer)
    set_audit_busy (self, FALSE);
  if (ex != self->explainer || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      gtk_label_set_text (self->audit_progress_label, "Audit cancelled.");
      return;
    }
  if (audit == NULL)
    {
      toast (self, error->message);
      gtk_label_set_text (self->audit_progress_label, error->message);
      finish_automation (self, 1);
      return;
    }
  if (job->steering != NULL)
    {
      /* The second pass, with the vector. */
      g_clear_pointer (&self->audit_steered, gb_audit_free);
      self->audit_steered = g_steal_pointer (&audit);
      g_autofree char *pos = label_word (self, TRUE);
      g_autofree char *desc = steering_description (self, job->steering, NULL);
      g_autofree char *msg = g_strdup_printf ("With the steering vector (block %u × %g): the %s rate gap moves from %.1f to "
                                              "%.1f percentage points.",
                                              job->steering->vec->layers[0].layer, job->steering->iv[0].multiplier, pos,
                                              self->audit ? 100 * self->audit->gap : NAN, 100 * self->audit_steered->gap);
      gtk_label_set_text (self->audit_gap_label, msg);
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->audit_gap_label), desc);
      g_free (self->steer_desc);
      self->steer_desc = g_steal_pointer (&desc);
      gtk_label_set_text (self->audit_progress_label, msg);
      redraw (self);
      if (self->done != NULL)
        {
          g_object_set_data (G_OBJECT (self->results_scroll), "gb-target", NULL);
          gtk_widget_add_tick_callback (GTK_WIDGET (self->results_scroll), scroll_to_end_cb, self, NULL);
        }
      return;
    }
  g_clear_pointer (&self->audit, gb_audit_free);
  g_clear_pointer (&self->audit_steered, gb_audit_free);
  gtk_label_set_text (self->audit_gap_label, "");
  self->audit = g_steal_pointer (&audit);
  g_autofree char *pos = label_word (self, TRUE);
  g_autofree char *msg = g_strdup_printf ("%u records: %s rate gap %.1f percentage points between groups of “%s”.",
                                          self->audit->n, pos, 100 * self->audit->gap, self->audit->group_key);
  gtk_label_set_text (self->audit_progress_label, msg);
  gtk_widget_set_sensitive (GTK_WIDGET (self->export_button), TRUE);
  gtk_stack_set_visible_child_name (self->result_stack, "result");
  redraw (self);
  g_autoptr (GError) st_error = NULL;
  Steering *st = current_steering (self, &st_error);
  if (st != NULL)
    {
      run_audit_with (self, st);
      return;
    }
  if (st_error != NULL)
    gtk_label_set_text (self->audit_gap_label, st_error->message);
  if (self->done != NULL)
    gtk_widget_add_tick_callback (GTK_WIDGET (self->results_scroll), scroll_to_end_cb, self, NULL);
}

/* The audit without interventions (@st NULL) or, owning @st, with them. */
static void
run_audit_with (GbExplainView *self,
                Steering      *st)
{
  g_autoptr (GError) error = NULL;

  if (self->explainer == NULL || self->audit_path == NULL)
    {
      steering_free (st);
      return;
    }
  /* Reading a few thousand records is quick; deciding them is the work. */
  g_autoptr (GPtrArray) records = gb_application_load_all (gb_explainer_get_schema (self->explainer), self->audit_path, 0,
                                                           &error);
  if (records == NULL)
    {
      steering_free (st);
      toast (self, error->message);
      finish_automation (self, 1);
      return;
    }
  const char *group = gtk_editable_get_text (GTK_EDITABLE (self->audit_group));
  g_cancellable_cancel (self->audit_cancellable);
  g_clear_object (&self->audit_cancellable);
  self->audit_cancellable = g_cancellable_new ();
  set_audit_busy (self, TRUE);
  gtk_progress_bar_set_fraction (self->audit_progress, 0);
  gtk_label_set_text (self->audit_progress_label, st ? "Auditing with the steering vector" : "Auditing");
  Job *job = job_new (self);
  job->steering = st;
  gb_explainer_audit_async (self->explainer, records, *group ? group : "zip_group", st ? st->iv : NULL, st ? st->n_iv : 0,
                            self->audit_cancellable, progress_cb, self->audit_progress_state, audit_done_cb, job);
}

static void
run_audit (GbExplainView *self)
{
  run_audit_with (self, NULL);
}

/* ---- Callbacks ---- */

static void
sample_selected_cb (GbExplainView *self)
{
  g_autoptr (GError) error = NULL;
  guint i = gtk_drop_down_get_selected (self->samples);

  if (self->sample_paths == NULL || i >= self->sample_paths->len || self->explainer == NULL)
    return;
  if (!open_application (self, g_ptr_array_index (self->sample_paths, i), &error))
    {
      toast (self, error->message);
      return;
    }
  run_explain (self);
}

/* The same report as glassbox-cli explain --output. */
static gboolean
export_report (GbExplainView *self,
               const char    *path,
               GError       **error)
{
  GbReportProvenance prov = { gb_model_get_path (self->model), self->schema_path, self->app_path,
                              self->audit ? self->audit_path : NULL, GB_VERSION, NULL, NULL, NULL };
  if (self->have_steered || self->audit_steered)
    {
      prov.interventions = self->steer_desc;
      prov.decision_steered = self->have_steered ? &self->steered : NULL;
      prov.audit_steered = self->audit ? self->audit_steered : NULL;
    }
  if (self->sae_top != NULL)
    {
      prov.sae = self->sae_desc;
      prov.sae_features = self->sae_top;
      prov.sae_analysis = self->sae_analysis;
      prov.sae_field = self->sae_field;
      prov.sae_field_features = self->sae_field_top;
    }

  /* Hashed when the model loaded (a GPT-2's 500 MB take seconds); here only
   * when Export came first. */
  prov.weights_sha256 = self->weights_sha;
  if (self->explanation == NULL && self->audit == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: nothing to report yet", path);
      return FALSE;
    }
  return gb_explain_report_write (path, self->explainer, self->explanation, self->audit, &prov, error);
}

static void
open_response_cb (GbExplainView *self,
                  int            response)
{
  g_autoptr (GError) error = NULL;
  GtkFileChooser *fc = GTK_FILE_CHOOSER (self->chooser);
  g_autoptr (GFile) file = response == GTK_RESPONSE_ACCEPT ? gtk_file_chooser_get_file (fc) : NULL;
  const char *purpose = g_object_get_data (G_OBJECT (self->chooser), "purpose");
  g_autofree char *path = file ? g_file_get_path (file) : NULL;

  if (path != NULL && g_str_equal (purpose, "open"))
    {
      if (open_application (self, path, &error))
        run_explain (self);
      else
        toast (self, error->message);
    }
  else if (path != NULL && g_str_equal (purpose, "audit"))
    {
      g_free (self->audit_path);
      self->audit_path = g_strdup (path);
      g_autofree char *base = g_path_get_basename (path);
      gtk_label_set_text (self->audit_file_label, base);
    }
  else if (path != NULL && g_str_equal (purpose, "vector"))
    {
      if (load_vector (self, path, &error))
        {
          drop_steered_audit (self);
          run_diagnose (self, FALSE);
        }
      else
        toast (self, error->message);
    }
  else if (path != NULL && g_str_equal (purpose, "sae"))
    {
      if (load_sae (self, path, &error))
        run_diagnose (self, FALSE);
      else
        toast (self, error->message);
    }
  else if (path != NULL && g_str_equal (purpose, "export"))
    {
      if (export_report (self, path, &error))
        {
          g_autofree char *msg = g_strdup_printf ("Report saved to %s", path);
          toast (self, msg);
        }
      else
        toast (self, error->message);
    }
  g_clear_object (&self->chooser);
}

static void
choose_file (GbExplainView *self,
             const char    *purpose)
{
  const gboolean save = g_str_equal (purpose, "export");
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));

  const gboolean folder = g_str_equal (purpose, "sae");
  const char *title = save ? "Export Report" : folder ? "Open SAE Folder" : g_str_equal (purpose, "vector") ? "Open Steering Vector"
                                                                                                            : "Open Application";
  g_clear_object (&self->chooser);
  self->chooser = gtk_file_chooser_native_new (title, GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                               save     ? GTK_FILE_CHOOSER_ACTION_SAVE
                                               : folder ? GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER
                                                        : GTK_FILE_CHOOSER_ACTION_OPEN,
                                               save ? "_Export" : "_Open", "_Cancel");
  g_autoptr (GtkFileFilter) filter = gtk_file_filter_new ();
  if (folder)
    gtk_file_filter_add_mime_type (filter, "inode/directory");
  else if (g_str_equal (purpose, "vector"))
    {
      gtk_file_filter_set_name (filter, "Steering vectors (JSON, llama.cpp GGUF)");
      gtk_file_filter_add_pattern (filter, "*.json");
      gtk_file_filter_add_pattern (filter, "*.gguf");
    }
  else if (save)
    {
      gtk_file_filter_set_name (filter, "PDF document");
      gtk_file_filter_add_pattern (filter, "*.pdf");
      gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (self->chooser), "decision-report.pdf");
    }
  else
    {
      gtk_file_filter_set_name (filter, "Applications (JSON, JSONL, CSV, text)");
      for (const char *const *p = (const char *const[]) { "*.json", "*.jsonl", "*.csv", "*.txt", NULL }; *p; p++)
        gtk_file_filter_add_pattern (filter, *p);
    }
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (self->chooser), filter);
  g_object_set_data_full (G_OBJECT (self->chooser), "purpose", g_strdup (purpose), g_free);
  g_signal_connect_swapped (self->chooser, "response", G_CALLBACK (open_response_cb), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static void open_clicked_cb (GbExplainView *self) { choose_file (self, "open"); }
static void audit_file_clicked_cb (GbExplainView *self) { choose_file (self, "audit"); }
static void export_clicked_cb (GbExplainView *self) { choose_file (self, "export"); }
static void vector_open_clicked_cb (GbExplainView *self) { choose_file (self, "vector"); }
static void sae_open_clicked_cb (GbExplainView *self) { choose_file (self, "sae"); }
static void cancel_clicked_cb (GbExplainView *self) { g_cancellable_cancel (self->explain_cancellable); }
static void audit_cancel_clicked_cb (GbExplainView *self) { g_cancellable_cancel (self->audit_cancellable); }

static void
method_changed_cb (GbExplainView *self)
{
  redraw (self);
}

static void
dark_changed_cb (GbExplainView *self)
{
  if (self->explanation != NULL || self->audit != NULL)
    redraw (self);
}

/* ---- Construction ---- */

/* Sample titles are long: ellipsize them so the sidebar keeps its width. */
static void
sample_setup_cb (GtkSignalListItemFactory *factory,
                 GtkListItem              *item,
                 gpointer                  data)
{
  GtkWidget *label = gtk_label_new (NULL);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 30);
  gtk_list_item_set_child (item, label);
}

static void
sample_bind_cb (GtkSignalListItemFactory *factory,
                GtkListItem              *item,
                gpointer                  data)
{
  GtkStringObject *s = gtk_list_item_get_item (item);
  GtkWidget *label = gtk_list_item_get_child (item);
  gtk_label_set_text (GTK_LABEL (label), gtk_string_object_get_string (s));
  gtk_widget_set_tooltip_text (label, gtk_string_object_get_string (s));
}

static GtkWidget *
heading (const char *text)
{
  GtkWidget *l = gtk_label_new (text);
  gtk_widget_add_css_class (l, "heading");
  gtk_label_set_xalign (GTK_LABEL (l), 0);
  gtk_widget_set_margin_top (l, 12);
  return l;
}

static GtkWidget *
note (const char *text)
{
  GtkWidget *l = gtk_label_new (text);
  gtk_widget_add_css_class (l, "dim-label");
  gtk_widget_add_css_class (l, "caption");
  gtk_label_set_xalign (GTK_LABEL (l), 0);
  gtk_label_set_wrap (GTK_LABEL (l), TRUE);
  return l;
}

static GtkDrawingArea *
figure (GbExplainView *self,
        int            which)
{
  GtkWidget *area = gtk_drawing_area_new ();
  g_object_set_data (G_OBJECT (area), "which", GINT_TO_POINTER (which));
  gtk_drawing_area_set_draw_func (GTK_DRAWING_AREA (area), draw_cb, self, NULL);
  g_signal_connect (area, "resize", G_CALLBACK (area_resize_cb), self);
  gtk_widget_set_hexpand (area, TRUE);
  gtk_drawing_area_set_content_height (GTK_DRAWING_AREA (area), 4);
  return GTK_DRAWING_AREA (area);
}

static GtkWidget *
build_sidebar (GbExplainView *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 12);
  gtk_widget_set_margin_top (box, 12);
  gtk_widget_set_margin_bottom (box, 12);

  gtk_box_append (GTK_BOX (box), heading ("Application"));
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->samples = GTK_DROP_DOWN (gtk_drop_down_new_from_strings ((const char *[]) { "(no samples)", NULL }));
  set_a11y_label (self->samples, "Sample application");
  gtk_widget_set_hexpand (GTK_WIDGET (self->samples), TRUE);
  g_autoptr (GtkListItemFactory) factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (sample_setup_cb), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (sample_bind_cb), NULL);
  gtk_drop_down_set_factory (self->samples, factory);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->samples), "Bundled sample applications");
  g_signal_connect_swapped (self->samples, "notify::selected", G_CALLBACK (sample_selected_cb), self);
  GtkWidget *open = gtk_button_new_from_icon_name ("document-open-symbolic");
  gtk_widget_set_tooltip_text (open, "Open an application (JSON, JSONL, CSV or text)");
  g_signal_connect_swapped (open, "clicked", G_CALLBACK (open_clicked_cb), self);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->samples));
  gtk_box_append (GTK_BOX (row), open);
  gtk_box_append (GTK_BOX (box), row);

  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->explain_button = GTK_BUTTON (gtk_button_new_with_mnemonic ("_Explain"));
  gtk_widget_add_css_class (GTK_WIDGET (self->explain_button), "suggested-action");
  gtk_widget_set_hexpand (GTK_WIDGET (self->explain_button), TRUE);
  g_signal_connect_swapped (self->explain_button, "clicked", G_CALLBACK (run_explain), self);
  self->cancel_button = GTK_BUTTON (gtk_button_new_with_label ("Cancel"));
  g_signal_connect_swapped (self->cancel_button, "clicked", G_CALLBACK (cancel_clicked_cb), self);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->explain_button));
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->cancel_button));
  gtk_box_append (GTK_BOX (box), row);
  self->progress = GTK_PROGRESS_BAR (gtk_progress_bar_new ());
  self->progress_label = GTK_LABEL (note (""));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->progress));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->progress_label));

  self->mode_stack = GTK_STACK (gtk_stack_new ());
  GtkWidget *switcher = gtk_stack_switcher_new ();
  gtk_stack_switcher_set_stack (GTK_STACK_SWITCHER (switcher), self->mode_stack);
  self->form = ADW_PREFERENCES_GROUP (adw_preferences_group_new ());
  gtk_stack_add_titled (self->mode_stack, GTK_WIDGET (self->form), "form", "Fields");
  self->text_view = GTK_TEXT_VIEW (gtk_text_view_new ());
  gtk_text_view_set_wrap_mode (self->text_view, GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_monospace (self->text_view, TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->text_view), "card");
  gtk_widget_set_size_request (GTK_WIDGET (self->text_view), -1, 260);
  gtk_text_view_set_left_margin (self->text_view, 8);
  gtk_text_view_set_top_margin (self->text_view, 8);
  gtk_stack_add_titled (self->mode_stack, GTK_WIDGET (self->text_view), "text", "Text");
  gtk_box_append (GTK_BOX (box), switcher);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->mode_stack));

  self->steer_heading = heading ("Steering");
  gtk_box_append (GTK_BOX (box), self->steer_heading);
  gtk_box_append (GTK_BOX (box), note ("Decide again with a steering vector added to one block's output at every "
                                       "position; the audit then runs with and without it."));
  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->vec_label = GTK_LABEL (gtk_label_new ("No vector"));
  gtk_label_set_ellipsize (self->vec_label, PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_set_hexpand (GTK_WIDGET (self->vec_label), TRUE);
  gtk_label_set_xalign (self->vec_label, 0);
  GtkWidget *vopen = gtk_button_new_from_icon_name ("document-open-symbolic");
  gtk_widget_set_tooltip_text (vopen, "Open a steering vector (glassbox-cli steer train JSON, or a llama.cpp GGUF)");
  g_signal_connect_swapped (vopen, "clicked", G_CALLBACK (vector_open_clicked_cb), self);
  set_a11y_label (vopen, "Open a steering vector");
  self->vec_clear = GTK_BUTTON (gtk_button_new_from_icon_name ("edit-clear-symbolic"));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->vec_clear), "Stop steering");
  gtk_widget_set_sensitive (GTK_WIDGET (self->vec_clear), FALSE);
  set_a11y_label (self->vec_clear, "Stop steering");
  g_signal_connect_swapped (self->vec_clear, "clicked", G_CALLBACK (vector_clear_clicked_cb), self);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->vec_label));
  gtk_box_append (GTK_BOX (row), vopen);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->vec_clear));
  gtk_box_append (GTK_BOX (box), row);
  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->vec_train = GTK_BUTTON (gtk_button_new_with_mnemonic ("_Train from the Zip-Neutral Pairs"));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->vec_train), "Mean difference of the bundled zip-neutral pairs at the "
                                                             "chosen block, on a worker thread");
  gtk_widget_set_hexpand (GTK_WIDGET (self->vec_train), TRUE);
  g_signal_connect_swapped (self->vec_train, "clicked", G_CALLBACK (train_clicked_cb), self);
  self->train_cancel = GTK_BUTTON (gtk_button_new_with_label ("Cancel"));
  g_signal_connect_swapped (self->train_cancel, "clicked", G_CALLBACK (train_cancel_clicked_cb), self);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->vec_train));
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->train_cancel));
  gtk_box_append (GTK_BOX (box), row);
  GtkWidget *to_steering = gtk_button_new_with_mnemonic ("Edit the Pairs in the _Steering View");
  gtk_widget_set_tooltip_text (to_steering, "Open the zip-neutral pairs in the Steering view: edit them, choose blocks "
                                            "by their separation, compare steered continuations");
  gtk_widget_add_css_class (to_steering, "flat");
  g_signal_connect_swapped (to_steering, "clicked", G_CALLBACK (open_steering_clicked_cb), self);
  gtk_box_append (GTK_BOX (box), to_steering);
  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *bl = gtk_label_new ("Block");
  self->steer_block = GTK_SPIN_BUTTON (gtk_spin_button_new_with_range (0, 63, 1));
  gtk_spin_button_set_value (self->steer_block, 4);
  GtkWidget *ml = gtk_label_new ("Multiplier");
  self->steer_mult = GTK_SPIN_BUTTON (gtk_spin_button_new_with_range (-20, 20, 0.5));
  gtk_spin_button_set_digits (self->steer_mult, 1);
  gtk_spin_button_set_value (self->steer_mult, 1);
  set_a11y_label (self->steer_block, "Steered block");
  set_a11y_label (self->steer_mult, "Steering multiplier");
  g_signal_connect_swapped (self->steer_block, "value-changed", G_CALLBACK (steer_value_changed_cb), self);
  g_signal_connect_swapped (self->steer_mult, "value-changed", G_CALLBACK (steer_value_changed_cb), self);
  gtk_box_append (GTK_BOX (row), bl);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->steer_block));
  gtk_box_append (GTK_BOX (row), ml);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->steer_mult));
  gtk_box_append (GTK_BOX (box), row);
  self->train_progress = GTK_PROGRESS_BAR (gtk_progress_bar_new ());
  self->train_label = GTK_LABEL (note (""));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->train_progress));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->train_label));

  gtk_box_append (GTK_BOX (box), heading ("SAE Features"));
  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->sae_label = GTK_LABEL (gtk_label_new ("No SAE for this model"));
  gtk_label_set_ellipsize (self->sae_label, PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_set_hexpand (GTK_WIDGET (self->sae_label), TRUE);
  gtk_label_set_xalign (self->sae_label, 0);
  GtkWidget *sopen = gtk_button_new_with_mnemonic ("Open _SAE…");
  gtk_widget_set_tooltip_text (sopen, "Open a sparse autoencoder folder (SAELens layout) for this model");
  g_signal_connect_swapped (sopen, "clicked", G_CALLBACK (sae_open_clicked_cb), self);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->sae_label));
  gtk_box_append (GTK_BOX (row), sopen);
  gtk_box_append (GTK_BOX (box), row);

  gtk_box_append (GTK_BOX (box), heading ("Audit"));
  gtk_box_append (GTK_BOX (box), note ("Decide every record of a JSONL or CSV file and compare approval rates between "
                                       "groups, with a confusion table against the records' own labels."));
  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->audit_file_label = GTK_LABEL (gtk_label_new ("audit-loans.jsonl"));
  gtk_label_set_ellipsize (self->audit_file_label, PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_set_hexpand (GTK_WIDGET (self->audit_file_label), TRUE);
  gtk_label_set_xalign (self->audit_file_label, 0);
  GtkWidget *pick = gtk_button_new_from_icon_name ("document-open-symbolic");
  gtk_widget_set_tooltip_text (pick, "Choose the records to audit");
  g_signal_connect_swapped (pick, "clicked", G_CALLBACK (audit_file_clicked_cb), self);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->audit_file_label));
  gtk_box_append (GTK_BOX (row), pick);
  gtk_box_append (GTK_BOX (box), row);
  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *gl = gtk_label_new ("Group by");
  self->audit_group = GTK_ENTRY (gtk_entry_new ());
  set_a11y_label (self->audit_group, "Group the audit by this field");
  gtk_editable_set_text (GTK_EDITABLE (self->audit_group), "zip_group");
  gtk_widget_set_hexpand (GTK_WIDGET (self->audit_group), TRUE);
  gtk_box_append (GTK_BOX (row), gl);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->audit_group));
  gtk_box_append (GTK_BOX (box), row);
  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->audit_button = GTK_BUTTON (gtk_button_new_with_mnemonic ("Run _Audit"));
  gtk_widget_set_hexpand (GTK_WIDGET (self->audit_button), TRUE);
  g_signal_connect_swapped (self->audit_button, "clicked", G_CALLBACK (run_audit), self);
  self->audit_cancel = GTK_BUTTON (gtk_button_new_with_label ("Cancel"));
  g_signal_connect_swapped (self->audit_cancel, "clicked", G_CALLBACK (audit_cancel_clicked_cb), self);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->audit_button));
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->audit_cancel));
  gtk_box_append (GTK_BOX (box), row);
  self->audit_progress = GTK_PROGRESS_BAR (gtk_progress_bar_new ());
  self->audit_progress_label = GTK_LABEL (note (""));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->audit_progress));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->audit_progress_label));

  GtkWidget *scroll = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroll), box);
  self->sidebar_scroll = GTK_SCROLLED_WINDOW (scroll);
  gtk_widget_set_size_request (scroll, SIDEBAR_W, -1);
  gtk_widget_set_hexpand (scroll, FALSE);
  return scroll;
}

static GtkWidget *
build_results (GbExplainView *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_margin_start (box, 18);
  gtk_widget_set_margin_end (box, 18);
  gtk_widget_set_margin_top (box, 12);
  gtk_widget_set_margin_bottom (box, 18);

  GtkWidget *top = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  GtkWidget *dec = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_hexpand (dec, TRUE);
  self->decision_label = GTK_LABEL (gtk_label_new (""));
  gtk_widget_add_css_class (GTK_WIDGET (self->decision_label), "title-1");
  gtk_label_set_xalign (self->decision_label, 0);
  self->prob_label = GTK_LABEL (gtk_label_new (""));
  gtk_label_set_xalign (self->prob_label, 0);
  gtk_label_set_selectable (self->prob_label, TRUE);
  gtk_box_append (GTK_BOX (dec), GTK_WIDGET (self->decision_label));
  gtk_box_append (GTK_BOX (dec), GTK_WIDGET (self->prob_label));
  self->export_button = GTK_BUTTON (gtk_button_new_with_mnemonic ("E_xport Report…"));
  gtk_widget_set_valign (GTK_WIDGET (self->export_button), GTK_ALIGN_START);
  gtk_widget_set_sensitive (GTK_WIDGET (self->export_button), FALSE);
  g_signal_connect_swapped (self->export_button, "clicked", G_CALLBACK (export_clicked_cb), self);
  self->steer_box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_hexpand (self->steer_box, TRUE);
  self->steer_decision_label = GTK_LABEL (gtk_label_new (""));
  gtk_widget_add_css_class (GTK_WIDGET (self->steer_decision_label), "title-2");
  gtk_label_set_xalign (self->steer_decision_label, 0);
  self->steer_prob_label = GTK_LABEL (gtk_label_new (""));
  gtk_label_set_xalign (self->steer_prob_label, 0);
  gtk_label_set_selectable (self->steer_prob_label, TRUE);
  gtk_box_append (GTK_BOX (self->steer_box), GTK_WIDGET (self->steer_decision_label));
  gtk_box_append (GTK_BOX (self->steer_box), GTK_WIDGET (self->steer_prob_label));
  gtk_widget_set_visible (self->steer_box, FALSE);
  gtk_box_append (GTK_BOX (top), dec);
  gtk_box_append (GTK_BOX (top), self->steer_box);
  gtk_box_append (GTK_BOX (top), GTK_WIDGET (self->export_button));
  gtk_box_append (GTK_BOX (box), top);

  gtk_box_append (GTK_BOX (box), heading ("Counterfactual"));
  self->cf_label = GTK_LABEL (gtk_label_new (""));
  gtk_label_set_wrap (self->cf_label, TRUE);
  gtk_label_set_xalign (self->cf_label, 0);
  gtk_label_set_selectable (self->cf_label, TRUE);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->cf_label));

  GtkWidget *hrow = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *h = heading ("Evidence per field");
  gtk_widget_set_hexpand (h, TRUE);
  self->method = GTK_DROP_DOWN (gtk_drop_down_new_from_strings ((const char *[]) {
    "Occlusion (causal)", "Integrated gradients", "Gradient × input", "Attention rollout", NULL }));
  gtk_widget_set_valign (GTK_WIDGET (self->method), GTK_ALIGN_END);
  set_a11y_label (self->method, "Evidence method");
  g_signal_connect_swapped (self->method, "notify::selected", G_CALLBACK (method_changed_cb), self);
  gtk_box_append (GTK_BOX (hrow), h);
  gtk_box_append (GTK_BOX (hrow), GTK_WIDGET (self->method));
  gtk_box_append (GTK_BOX (box), hrow);
  gtk_box_append (GTK_BOX (box), note ("Occlusion: change in log-odds when the field's line is removed. Blue pushed "
                                       "towards approval, orange towards rejection."));
  self->bars_area = figure (self, 0);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->bars_area));
  self->ig_label = GTK_LABEL (note (""));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->ig_label));

  gtk_box_append (GTK_BOX (box), heading ("Evidence per token"));
  self->tokens_area = figure (self, 1);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->tokens_area));

  hrow = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  h = heading ("Attention from the decision position");
  gtk_widget_set_hexpand (h, TRUE);
  self->attention_kind = GTK_DROP_DOWN (gtk_drop_down_new_from_strings ((const char *[]) {
    "Mean per layer", "Every head", NULL }));
  gtk_widget_set_valign (GTK_WIDGET (self->attention_kind), GTK_ALIGN_END);
  set_a11y_label (self->attention_kind, "Attention aggregation");
  g_signal_connect_swapped (self->attention_kind, "notify::selected", G_CALLBACK (method_changed_cb), self);
  gtk_box_append (GTK_BOX (hrow), h);
  gtk_box_append (GTK_BOX (hrow), GTK_WIDGET (self->attention_kind));
  gtk_box_append (GTK_BOX (box), hrow);
  GtkWidget *caveat = note ("Attention is not explanation (Jain & Wallace 2019): it shows where the decision position "
                            "reads from, not what caused the decision. Rows: each layer's mean over heads, then the "
                            "rollout; each row scaled to its maximum.");
  gtk_widget_remove_css_class (caveat, "dim-label");
  gtk_widget_add_css_class (caveat, "warning");
  gtk_box_append (GTK_BOX (box), caveat);
  self->attention_area = figure (self, 2);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->attention_area));

  self->sae_heading = heading ("SAE features at the decision position");
  self->sae_note = GTK_LABEL (note (""));
  self->sae_list = GTK_LIST_BOX (gtk_list_box_new ());
  self->sae_field_list = GTK_LIST_BOX (gtk_list_box_new ());
  self->sae_field_row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *fl = gtk_label_new ("Strongest over the tokens of the field");
  gtk_widget_add_css_class (fl, "heading");
  self->sae_field_names = gtk_string_list_new (NULL);
  self->sae_field_dd = GTK_DROP_DOWN (gtk_drop_down_new (G_LIST_MODEL (g_object_ref (self->sae_field_names)), NULL));
  g_signal_connect_swapped (self->sae_field_dd, "notify::selected", G_CALLBACK (sae_field_changed_cb), self);
  set_a11y_label (self->sae_field_dd, "Field whose tokens the SAE features are read over");
  gtk_box_append (GTK_BOX (self->sae_field_row), fl);
  gtk_box_append (GTK_BOX (self->sae_field_row), GTK_WIDGET (self->sae_field_dd));
  gtk_widget_set_margin_top (self->sae_field_row, 6);
  for (GtkListBox **l = (GtkListBox *[]) { self->sae_list, self->sae_field_list }, **end = l + 2; l < end; l++)
    {
      gtk_list_box_set_selection_mode (*l, GTK_SELECTION_NONE);
      gtk_widget_add_css_class (GTK_WIDGET (*l), "card");
    }
  gtk_box_append (GTK_BOX (box), self->sae_heading);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->sae_note));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->sae_list));
  gtk_box_append (GTK_BOX (box), self->sae_field_row);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->sae_field_list));
  gtk_widget_set_visible (self->sae_heading, FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->sae_note), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->sae_list), FALSE);
  gtk_widget_set_visible (self->sae_field_row, FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->sae_field_list), FALSE);

  gtk_box_append (GTK_BOX (box), heading ("Audit"));
  self->audit_area = figure (self, 3);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->audit_area));
  self->audit_gap_label = GTK_LABEL (gtk_label_new (""));
  gtk_label_set_wrap (self->audit_gap_label, TRUE);
  gtk_label_set_xalign (self->audit_gap_label, 0);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->audit_gap_label));
  self->audit_steered_area = figure (self, 4);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->audit_steered_area));

  GtkWidget *scroll = gtk_scrolled_window_new ();
  self->results_scroll = GTK_SCROLLED_WINDOW (scroll);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroll), box);
  gtk_widget_set_hexpand (scroll, TRUE);
  gtk_widget_set_vexpand (scroll, TRUE);

  self->result_stack = GTK_STACK (gtk_stack_new ());
  self->empty_page = ADW_STATUS_PAGE (adw_status_page_new ());
  adw_status_page_set_icon_name (self->empty_page, "dialog-question-symbolic");
  adw_status_page_set_title (self->empty_page, "Explain a Decision");
  adw_status_page_set_description (self->empty_page, "Pick a sample application on the left, open one, or enter "
                                                     "its fields, then press Explain.");
  gtk_stack_add_named (self->result_stack, GTK_WIDGET (self->empty_page), "empty");
  gtk_stack_add_named (self->result_stack, scroll, "result");
  return GTK_WIDGET (self->result_stack);
}

static void
load_samples (GbExplainView *self)
{
  g_autofree char *dir = g_build_filename (GB_DATA_DIR, "applications", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_clear_pointer (&self->sample_paths, g_ptr_array_unref);
  self->sample_paths = g_ptr_array_new_with_free_func (g_free);
  while (d && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "sample-"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, gb_compare_string_ptrs);
  GtkStringList *list = gtk_string_list_new (NULL);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, g_ptr_array_index (names, i), NULL);
      g_autofree char *title = g_strdup (g_ptr_array_index (names, i));
      if (g_str_has_suffix (path, ".json"))
        {
          /* A sample that does not parse keeps its file name as title; opening
           * it then shows the loader's error. */
          g_autoptr (JsonNode) root = gb_json_load_file (path, 1 << 20, GB_JSON_MAX_DEPTH, NULL);
          JsonNode *t = root && JSON_NODE_HOLDS_OBJECT (root)
                          ? json_object_get_member (json_node_get_object (root), "title") : NULL;
          if (t && JSON_NODE_HOLDS_VALUE (t) && json_node_get_value_type (t) == G_TYPE_STRING)
            {
              g_free (title);
              title = g_strdup (json_node_get_string (t));
            }
        }
      else if (g_str_has_suffix (path, ".txt"))
        {
          g_free (title);
          title = g_strdup ("A letter (free text)");
        }
      gtk_string_list_append (list, title);
      g_ptr_array_add (self->sample_paths, g_steal_pointer (&path));
    }
  g_signal_handlers_block_by_func (self->samples, sample_selected_cb, self);
  gtk_drop_down_set_model (self->samples, G_LIST_MODEL (list));
  gtk_drop_down_set_selected (self->samples, GTK_INVALID_LIST_POSITION);
  g_signal_handlers_unblock_by_func (self->samples, sample_selected_cb, self);
  g_object_unref (list);
  g_free (self->audit_path);
  self->audit_path = g_build_filename (dir, "audit-loans.jsonl", NULL);
}

static void
gb_explain_view_dispose (GObject *object)
{
  GbExplainView *self = GB_EXPLAIN_VIEW (object);

  g_cancellable_cancel (self->explain_cancellable);
  g_cancellable_cancel (self->audit_cancellable);
  g_cancellable_cancel (self->train_cancellable);
  g_cancellable_cancel (self->diag_cancellable);
  g_clear_object (&self->explain_cancellable);
  g_clear_object (&self->audit_cancellable);
  g_clear_object (&self->train_cancellable);
  g_clear_object (&self->diag_cancellable);
  g_cancellable_cancel (self->hash_cancellable);
  g_clear_object (&self->hash_cancellable);
  gb_drop_chooser (&self->chooser, self);
  g_signal_handlers_disconnect_by_data (adw_style_manager_get_default (), self);
  G_OBJECT_CLASS (gb_explain_view_parent_class)->dispose (object);
}

static void
gb_explain_view_finalize (GObject *object)
{
  GbExplainView *self = GB_EXPLAIN_VIEW (object);

  g_clear_pointer (&self->explanation, gb_explanation_free);
  g_clear_pointer (&self->audit, gb_audit_free);
  g_clear_pointer (&self->explainer, gb_explainer_free);
  g_clear_pointer (&self->retired, g_ptr_array_unref);
  g_clear_pointer (&self->model, gb_model_unref);
  g_clear_pointer (&self->entries, g_ptr_array_unref);
  g_clear_object (&self->sae_field_names);
  g_clear_pointer (&self->sample_paths, g_ptr_array_unref);
  g_clear_pointer (&self->explain_progress, progress_release);
  g_clear_pointer (&self->audit_progress_state, progress_release);
  g_clear_pointer (&self->train_state, progress_release);
  g_clear_pointer (&self->vector, gb_steer_vector_free);
  g_clear_pointer (&self->sae, gb_sae_free);
  g_clear_pointer (&self->sae_analysis, gb_sae_analysis_free);
  g_clear_pointer (&self->sae_top, g_array_unref);
  g_clear_pointer (&self->sae_field_top, g_array_unref);
  g_clear_pointer (&self->audit_steered, gb_audit_free);
  g_free (self->vector_path);
  g_free (self->sae_dir);
  g_free (self->sae_field);
  g_free (self->steer_desc);
  g_free (self->sae_desc);
  g_free (self->pending_pairs);
  g_free (self->schema_path);
  g_free (self->app_path);
  g_free (self->audit_path);
  g_free (self->error_text);
  g_free (self->report_path);
  g_free (self->weights_sha);
  G_OBJECT_CLASS (gb_explain_view_parent_class)->finalize (object);
}

/* Jobs hold the view, so dispose waits for them: stop them when the view
 * leaves its window (the window closed) instead. */
static void
gb_explain_view_unroot (GtkWidget *widget)
{
  GbExplainView *self = GB_EXPLAIN_VIEW (widget);

  g_cancellable_cancel (self->explain_cancellable);
  g_cancellable_cancel (self->audit_cancellable);
  g_cancellable_cancel (self->train_cancellable);
  g_cancellable_cancel (self->diag_cancellable);
  g_cancellable_cancel (self->hash_cancellable);
  GTK_WIDGET_CLASS (gb_explain_view_parent_class)->unroot (widget);
}

static void
gb_explain_view_class_init (GbExplainViewClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = gb_explain_view_dispose;
  GTK_WIDGET_CLASS (klass)->unroot = gb_explain_view_unroot;
  G_OBJECT_CLASS (klass)->finalize = gb_explain_view_finalize;
  /* The user asked to see an SAE feature: (SAE folder, feature index). */
  g_signal_new ("open-feature", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                G_TYPE_STRING, G_TYPE_INT);
  /* The Steering view should open this bundled pair set (a name). */
  g_signal_new ("open-steering", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                G_TYPE_STRING);
}

static void
gb_explain_view_init (GbExplainView *self)
{
  GtkWidget *paned = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);

  self->entries = g_ptr_array_new ();
  self->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) gb_explainer_free);
  self->schema_path = g_build_filename (GB_DATA_DIR, "applications", "loan-schema.json", NULL);
  gtk_box_append (GTK_BOX (paned), build_sidebar (self));
  gtk_box_append (GTK_BOX (paned), gtk_separator_new (GTK_ORIENTATION_VERTICAL));
  gtk_box_append (GTK_BOX (paned), build_results (self));
  adw_bin_set_child (ADW_BIN (self), paned);
  self->explain_progress = progress_new (self->progress, self->progress_label);
  self->audit_progress_state = progress_new (self->audit_progress, self->audit_progress_label);
  self->train_state = progress_new (self->train_progress, self->train_label);
  set_busy (self, FALSE);
  set_audit_busy (self, FALSE);
  set_train_busy (self, FALSE);
  load_samples (self);
  g_signal_connect_swapped (adw_style_manager_get_default (), "notify::dark", G_CALLBACK (dark_changed_cb), self);
}

/* ---- Public API ---- */

GtkWidget *
gb_explain_view_new (void)
{
  return g_object_new (GB_TYPE_EXPLAIN_VIEW, NULL);
}

static void
hash_thread (GTask        *task,
             gpointer      source,
             gpointer      dir,
             GCancellable *cancellable)
{
  gb_thread_make_background ();
  GError *error = NULL;
  char *sha = gb_model_weights_sha256 (dir, cancellable, &error);
  if (sha == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, sha, g_free);
}

static void
hash_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  g_autoptr (GbExplainView) self = data;
  g_autoptr (GError) error = NULL;
  char *sha = g_task_propagate_pointer (G_TASK (result), &error);

  /* Cancelled (a newer model) or failed: the report hashes at export and
   * reports the error there. */
  if (sha != NULL)
    {
      g_free (self->weights_sha);
      self->weights_sha = sha;
    }
}

static void
hash_weights (GbExplainView *self)
{
  g_cancellable_cancel (self->hash_cancellable);
  g_clear_object (&self->hash_cancellable);
  g_clear_pointer (&self->weights_sha, g_free);
  if (self->model == NULL)
    return;
  self->hash_cancellable = g_cancellable_new ();
  /* No source object: the callback owns the view's reference. */
  g_autoptr (GTask) task = g_task_new (NULL, self->hash_cancellable, hash_done_cb, g_object_ref (self));
  g_task_set_task_data (task, g_strdup (gb_model_get_path (self->model)), g_free);
  g_task_run_in_thread (task, hash_thread);
}

void
gb_explain_view_set_model (GbExplainView *self,
                           GbModel       *model)
{
  g_autoptr (GError) error = NULL;

  g_return_if_fail (GB_IS_EXPLAIN_VIEW (self));
  g_cancellable_cancel (self->explain_cancellable);
  g_cancellable_cancel (self->audit_cancellable);
  /* A cancelled job may still be reading the old explainer. */
  if (self->explainer && self->n_jobs > 0)
    g_ptr_array_add (self->retired, g_steal_pointer (&self->explainer));
  g_clear_pointer (&self->explainer, gb_explainer_free);
  g_clear_pointer (&self->explanation, gb_explanation_free);
  g_clear_pointer (&self->audit, gb_audit_free);
  g_clear_pointer (&self->model, gb_model_unref);
  gtk_stack_set_visible_child_name (self->result_stack, "empty");
  gtk_widget_set_sensitive (GTK_WIDGET (self->export_button), FALSE);
  if (model != NULL)
    {
      self->model = gb_model_ref (model);
      GbAppSchema *schema = gb_app_schema_load (self->schema_path, &error);
      if (schema != NULL)
        {
          GbAppSchema *keep = schema;
          self->explainer = gb_explainer_new (model, schema, &error);
          if (self->explainer == NULL)
            gb_app_schema_free (keep);
        }
      if (self->explainer == NULL)
        {
          g_autofree char *desc = g_markup_printf_escaped ("This model cannot answer the bundled applications: %s",
                                                           error->message);
          adw_status_page_set_description (self->empty_page, desc);
        }
    }
  hash_weights (self);
  /* Vectors and SAEs belong to a model. */
  g_cancellable_cancel (self->train_cancellable);
  g_cancellable_cancel (self->diag_cancellable);
  set_vector (self, NULL, NULL, FALSE);
  g_clear_pointer (&self->sae, gb_sae_free);
  g_clear_pointer (&self->sae_analysis, gb_sae_analysis_free);
  g_clear_pointer (&self->sae_top, g_array_unref);
  g_clear_pointer (&self->sae_field_top, g_array_unref);
  g_clear_pointer (&self->audit_steered, gb_audit_free);
  g_clear_pointer (&self->sae_dir, g_free);
  self->have_steered = FALSE;
  gtk_label_set_text (self->sae_label, "No SAE for this model");
  gtk_label_set_text (self->audit_gap_label, "");
  if (model != NULL)
    {
      gtk_spin_button_set_range (self->steer_block, 0, gb_model_get_config (model)->n_layer - 1);
      gtk_spin_button_set_value (self->steer_block, MIN (4, gb_model_get_config (model)->n_layer - 1));
      g_autofree char *bundled = gb_features_view_bundled_sae (model);
      g_autoptr (GError) sae_error = NULL;
      if (bundled != NULL && !load_sae (self, bundled, &sae_error))
        g_debug ("bundled SAE %s does not fit: %s", bundled, sae_error->message);
    }
  show_diagnosis (self);
  rebuild_form (self);
  set_busy (self, FALSE);
  set_audit_busy (self, FALSE);
  set_train_busy (self, FALSE);
}

void
gb_explain_view_automate_steering (GbExplainView *self,
                                   const char    *vector,
                                   const char    *pairs,
                                   int            block,
                                   double         multiplier,
                                   const char    *sae_dir,
                                   const char    *sae_field)
{
  g_autoptr (GError) error = NULL;

  g_return_if_fail (GB_IS_EXPLAIN_VIEW (self));
  if (block >= 0)
    gtk_spin_button_set_value (self->steer_block, block);
  gtk_spin_button_set_value (self->steer_mult, multiplier);
  self->show_sae = sae_dir != NULL || sae_field != NULL;
  if (sae_dir != NULL && !load_sae (self, sae_dir, &error))
    {
      g_printerr ("glassbox: %s\n", error->message);
      g_clear_error (&error);
    }
  if (vector != NULL && !load_vector (self, vector, &error))
    g_printerr ("glassbox: %s\n", error->message);
  g_free (self->pending_pairs);
  self->pending_pairs = vector == NULL ? g_strdup (pairs) : NULL;
  for (guint i = 0; sae_field && i < g_list_model_get_n_items (G_LIST_MODEL (self->sae_field_names)); i++)
    if (g_str_equal (gtk_string_list_get_string (self->sae_field_names, i), sae_field))
      {
        g_signal_handlers_block_by_func (self->sae_field_dd, sae_field_changed_cb, self);
        gtk_drop_down_set_selected (self->sae_field_dd, i);
        g_signal_handlers_unblock_by_func (self->sae_field_dd, sae_field_changed_cb, self);
        self->sae_field_chosen = TRUE;
      }
}

void
gb_explain_view_automate (GbExplainView *self,
                          const char    *application,
                          const char    *audit,
                          const char    *report,
                          void         (*done) (gpointer data, int status),
                          gpointer       data)
{
  g_autoptr (GError) error = NULL;

  g_return_if_fail (GB_IS_EXPLAIN_VIEW (self));
  g_free (self->report_path);
  self->report_path = g_strdup (report);
  self->done = done;
  self->done_data = data;
  if (audit != NULL)
    {
      g_free (self->audit_path);
      self->audit_path = g_strdup (audit);
      g_autofree char *base = g_path_get_basename (audit);
      gtk_label_set_text (self->audit_file_label, base);
    }
  self->audit_pending = audit != NULL;
  if (application == NULL)
    {
      self->audit_pending = FALSE;
      if (audit)
        run_audit (self);
      else
        finish_automation (self, 0);
      return;
    }
  if (!open_application (self, application, &error))
    {
      g_printerr ("glassbox: %s\n", error->message);
      finish_automation (self, 1);
      return;
    }
  /* Show the sample as selected when it is one. */
  for (guint i = 0; self->sample_paths && i < self->sample_paths->len; i++)
    {
      g_autofree char *a = g_canonicalize_filename (application, NULL);
      g_autofree char *b = g_canonicalize_filename (g_ptr_array_index (self->sample_paths, i), NULL);
      if (g_str_equal (a, b))
        {
          g_signal_handlers_block_by_func (self->samples, sample_selected_cb, self);
          gtk_drop_down_set_selected (self->samples, i);
          g_signal_handlers_unblock_by_func (self->samples, sample_selected_cb, self);
        }
    }
  if (self->pending_pairs != NULL)
    {
      g_autofree char *pairs = g_steal_pointer (&self->pending_pairs);
      self->explain_after_train = TRUE;
      start_training (self, pairs);
      return;
    }
  run_explain (self);
}

void
gb_explain_view_reload_sae_descriptions (GbExplainView *self)
{
  g_return_if_fail (GB_IS_EXPLAIN_VIEW (self));
  if (self->sae == NULL)
    return;
  g_clear_pointer (&self->sae_analysis, gb_sae_analysis_free);
  self->sae_analysis = gb_explain_sae_descriptions (self->sae);
  show_diagnosis (self);
}

const char *
gb_explain_view_get_sae_dir (GbExplainView *self)
{
  g_return_val_if_fail (GB_IS_EXPLAIN_VIEW (self), NULL);
  return self->sae != NULL ? self->sae_dir : NULL;
}
