/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-ui"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>

#include "gb-ui-util.h"
#include "gb-build-config.h"
#include "gb-features-view.h"

#define ANALYSIS_TOKENS 100000
#define CONTEXTS 10
#define RADIUS 8
#define CARD_SNIPPETS 3

/* ---- Feature items (the gallery's model) ---- */

#define GB_TYPE_FEATURE_ITEM (gb_feature_item_get_type ())
G_DECLARE_FINAL_TYPE (GbFeatureItem, gb_feature_item, GB, FEATURE_ITEM, GObject)

struct _GbFeatureItem
{
  GObject             parent_instance;
  const GbSaeFeature *feature;  /* borrowed from the view's analysis */
};

G_DEFINE_FINAL_TYPE (GbFeatureItem, gb_feature_item, G_TYPE_OBJECT)

static void
gb_feature_item_class_init (GbFeatureItemClass *klass)
{
}

static void
gb_feature_item_init (GbFeatureItem *self)
{
}

/* ---- Jobs: progress crosses from the worker one way ---- */

typedef struct
{
  GMutex   lock;
  double   fraction;
  char    *message;
  GArray  *loss, *l0;  /* float, training history */
  guint    idle_id;
  GWeakRef view;
  /* Training's own stop: Cancel during training stops it and the features
   * of the checkpoint are then browsed; the task's cancellable (a new job,
   * a model switch, closing the window) ends everything, analysis included. */
  GCancellable *stop;
  gboolean      training;  /* under lock */
} Job;

typedef struct
{
  /* In */
  GbModel        *model;
  char           *sae_dir;
  char           *corpus;
  gboolean        train;
  GbSaeRunOptions run;
  char           *train_corpus;
  Job            *job;
  /* Out */
  GbSae          *sae;
  GbSaeAnalysis  *analysis;
} JobData;

struct _GbFeaturesView
{
  GtkWidget parent_instance;

  /* Widgets (children of the view) */
  GtkWidget          *box;
  GtkWidget          *stack;
  AdwStatusPage      *empty;
  GtkWidget          *open_bundled;
  GtkWidget          *header;
  GtkLabel           *title;
  GtkLabel           *metrics;
  GtkRevealer        *progress_revealer;
  GtkProgressBar     *progress;
  GtkLabel           *progress_label;
  GtkWidget          *plot;
  GtkSearchEntry     *search;
  GtkDropDown        *sort;
  GtkCheckButton     *hide_dead;
  GtkLabel           *count;
  GtkGridView        *grid;
  GtkWidget          *detail_scroll;
  GtkWidget          *detail;
  GtkWidget          *histogram;
  GtkEntry           *text_entry;
  GtkWidget          *text_expander;
  GtkWidget          *text_tokens;

  /* Owned */
  GbModel            *model;
  GbSae              *sae;
  GbSaeAnalysis      *analysis;
  GListStore         *store;
  GtkCustomFilter    *filter;
  GtkCustomSorter    *sorter;
  GtkSingleSelection *selection;
  GCancellable       *cancellable;
  GtkButton          *cancel_button;
  Job                *job;
  char               *corpus;
  GtkFileChooserNative *chooser;
  char               *search_text;
  float               loss_max, l0_max;
  int                 selected;
};

G_DEFINE_FINAL_TYPE (GbFeaturesView, gb_features_view, GTK_TYPE_WIDGET)

enum
{
  SIGNAL_READY,
  SIGNAL_FAILED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void show_feature (GbFeaturesView *self, const GbSaeFeature *f);

/* ---- Helpers ---- */

const char *
gb_features_view_default_corpus (void)
{
  static char *path;
  if (path == NULL)
    path = g_build_filename (gb_data_dir (), "corpus", "loans-sample.txt", NULL);
  return path;
}

char *
gb_features_view_bundled_sae (GbModel *model)
{
  if (model == NULL)
    return NULL;
  g_autofree char *prefix = g_strdup_printf ("%s-", gb_model_get_name (model));
  g_autofree char *saes_dir = g_build_filename (gb_data_dir (), "saes", NULL);
  g_autoptr (GDir) dir = g_dir_open (saes_dir, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, prefix))
      return g_build_filename (saes_dir, name, NULL);
  return NULL;
}

static void
job_free (Job *job)
{
  g_mutex_clear (&job->lock);
  g_free (job->message);
  g_array_unref (job->loss);
  g_array_unref (job->l0);
  g_weak_ref_clear (&job->view);
  g_clear_object (&job->stop);
}

static void
job_release (Job *job)
{
  g_atomic_rc_box_release_full (job, (GDestroyNotify) job_free);
}

static void
job_data_free (JobData *d)
{
  g_clear_pointer (&d->model, gb_model_unref);
  g_free (d->sae_dir);
  g_free (d->corpus);
  g_free (d->train_corpus);
  g_clear_pointer (&d->sae, gb_sae_free);
  g_clear_pointer (&d->analysis, gb_sae_analysis_free);
  if (d->job)
    job_release (d->job);
  g_free (d);
}

/* A token as display text: control characters and newlines made visible. */
static char *
token_text (GbTokenizer *tok,
            gint32       id)
{
  g_autofree char *s = gb_tokenizer_decode (tok, &id, 1, NULL);
  if (s == NULL)
    return g_strdup ("?");
  GString *out = g_string_new (NULL);
  for (const char *p = s; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c == '\n')
        g_string_append (out, "↵");
      else if (c == '\t')
        g_string_append (out, "→");
      else if (g_unichar_iscntrl (c))
        g_string_append (out, "·");
      else
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

/* Pango markup of a context: each token's background shaded by its
 * activation relative to @scale, the peak token in bold. */
static char *
context_markup (GbTokenizer        *tok,
                const GbSaeContext *c,
                float               scale)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < c->n; i++)
    {
      g_autofree char *t = token_text (tok, c->tokens[i]);
      g_autofree char *esc = g_markup_escape_text (t, -1);
      const double a = scale > 0 ? CLAMP (c->acts[i] / scale, 0, 1) : 0;
      if (a > 0.02)
        g_string_append_printf (s, "<span background=\"#ff9f1c\" bgalpha=\"%d%%\"%s>%s</span>", (int) (8 + 80 * a),
                                i == c->peak ? " weight=\"bold\"" : "", esc);
      else
        g_string_append (s, esc);
    }
  return g_string_free (s, FALSE);
}

static char *
format_percent (double f)
{
  if (f <= 0)
    return g_strdup ("never");
  if (f < 0.0001)
    return g_strdup_printf ("%.4f%%", 100 * f);
  return g_strdup_printf ("%.2f%%", 100 * f);
}

static GtkWidget *
dim_label (const char *text)
{
  GtkWidget *l = gtk_label_new (text);
  gtk_label_set_xalign (GTK_LABEL (l), 0);
  gtk_widget_add_css_class (l, "dim-label");
  return l;
}

static GtkWidget *
heading (const char *text)
{
  GtkWidget *l = gtk_label_new (text);
  gtk_label_set_xalign (GTK_LABEL (l), 0);
  gtk_widget_add_css_class (l, "heading");
  gtk_widget_set_margin_top (l, 8);
  return l;
}

static GtkWidget *
snippet_label (const char *markup,
               int         lines)
{
  GtkWidget *l = gtk_label_new (NULL);
  gtk_label_set_markup (GTK_LABEL (l), markup);
  gtk_label_set_xalign (GTK_LABEL (l), 0);
  gtk_label_set_wrap (GTK_LABEL (l), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (l), PANGO_WRAP_WORD_CHAR);
  if (lines > 0)
    {
      gtk_label_set_lines (GTK_LABEL (l), lines);
      gtk_label_set_ellipsize (GTK_LABEL (l), PANGO_ELLIPSIZE_END);
    }
  gtk_widget_add_css_class (l, "snippet");
  return l;
}

static void
clear_box (GtkWidget *box)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (box)) != NULL)
    gtk_box_remove (GTK_BOX (box), child);
}

/* ---- Progress (worker -> main thread) ---- */

static gboolean
job_idle_cb (gpointer data)
{
  Job *job = data;
  g_autoptr (GbFeaturesView) self = g_weak_ref_get (&job->view);
  g_mutex_lock (&job->lock);
  job->idle_id = 0;
  const double fraction = job->fraction;
  const gboolean training = job->training;
  g_autofree char *message = g_strdup (job->message);
  g_mutex_unlock (&job->lock);
  if (self == NULL || self->job != job)
    return G_SOURCE_REMOVE;
  if (!training)
    {
      gtk_button_set_label (self->cancel_button, "Cancel");
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->cancel_button), NULL);
    }
  gtk_progress_bar_set_fraction (self->progress, CLAMP (fraction, 0, 1));
  gtk_label_set_text (self->progress_label, message ? message : "");
  gtk_widget_queue_draw (self->plot);
  return G_SOURCE_REMOVE;
}

static void
job_post (Job        *job,
          double      fraction,
          const char *message)
{
  g_mutex_lock (&job->lock);
  job->fraction = fraction;
  g_free (job->message);
  job->message = g_strdup (message);
  if (job->idle_id == 0)
    job->idle_id = g_idle_add_full (G_PRIORITY_DEFAULT, job_idle_cb, g_atomic_rc_box_acquire (job),
                                    (GDestroyNotify) job_release);
  g_mutex_unlock (&job->lock);
}

static void
analysis_progress_cb (double      fraction,
                      const char *message,
                      gpointer    data)
{
  job_post (data, fraction, message);
}

static void
train_progress_cb (const GbSaeProgress *p,
                   gpointer             data)
{
  Job *job = data;
  g_autofree char *msg = NULL;
  if (g_str_equal (p->phase, "training"))
    {
      g_mutex_lock (&job->lock);
      float loss = (float) p->loss, l0 = (float) p->l0;
      g_array_append_val (job->loss, loss);
      g_array_append_val (job->l0, l0);
      g_mutex_unlock (&job->lock);
      msg = g_strdup_printf ("Training: step %" G_GUINT64_FORMAT " · loss %.3f · explained variance %.3f · L0 %.1f · dead %.1f%% · "
                             "%.0f tokens/s · %.0f s left",
                             p->step, p->loss, p->explained_variance, p->l0, 100 * p->dead_fraction, p->tokens_per_s,
                             isnan (p->eta_s) ? 0 : p->eta_s);
    }
  else
    msg = g_strdup_printf ("%c%s the held-out metrics…", g_ascii_toupper (p->phase[0]), p->phase + 1);
  job_post (job, p->n_tokens ? 0.9 * p->tokens / (double) p->n_tokens : 0, msg);
}

/* ---- Worker ---- */

static gboolean
cache_write (const GbSaeAnalysis *a,
             const char          *sae_dir,
             const char          *key)
{
  g_autofree char *path = g_build_filename (sae_dir, "features.json", NULL);
  if (gb_sae_analysis_save (a, path, key, NULL))
    return TRUE;
  /* A read-only SAE (bundled or installed): the user's cache instead. */
  g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA1, sae_dir, -1);
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "glassbox", "features", NULL);
  g_autofree char *alt = g_build_filename (dir, hash, NULL);
  g_mkdir_with_parents (dir, 0755);
  return gb_sae_analysis_save (a, alt, key, NULL);
}

static GbSaeAnalysis *
cache_read (const char *sae_dir,
            const char *key)
{
  g_autofree char *path = g_build_filename (sae_dir, "features.json", NULL);
  GbSaeAnalysis *a = gb_sae_analysis_load (path, key, NULL);
  if (a)
    return a;
  g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA1, sae_dir, -1);
  g_autofree char *alt = g_build_filename (g_get_user_cache_dir (), "glassbox", "features", hash, NULL);
  return gb_sae_analysis_load (alt, key, NULL);
}

static void
stop_training (GCancellable *cancellable,
               gpointer      stop)
{
  g_cancellable_cancel (stop);
}

static void
job_thread (GTask        *task,
            gpointer      source,
            gpointer      task_data,
            GCancellable *cancellable)
{
  gb_thread_make_background ();
  JobData *d = task_data;
  g_autoptr (GError) error = NULL;

  if (d->train)
    {
      /* Ending the job also stops training. */
      gulong id = g_cancellable_connect (cancellable, G_CALLBACK (stop_training), d->job->stop, NULL);
      GbSae *trained = gb_sae_train_on_model (d->model, &d->run, train_progress_cb, d->job, d->job->stop, &error);
      g_cancellable_disconnect (cancellable, id);
      g_mutex_lock (&d->job->lock);
      d->job->training = FALSE;
      g_mutex_unlock (&d->job->lock);
      if (trained == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      gb_sae_free (trained);
      if (g_task_return_error_if_cancelled (task))
        return;
      g_autofree char *cfg = g_build_filename (d->sae_dir, "cfg.json", NULL);
      if (error != NULL && !g_file_test (cfg, G_FILE_TEST_EXISTS))
        {
          /* Cancelled before the first step: nothing to show. */
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      /* Stopped: the checkpoint is browsed as it is. */
      g_clear_error (&error);
    }
  d->sae = gb_sae_load (d->sae_dir, &error);
  if (d->sae == NULL || !gb_sae_check_model (d->sae, d->model, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_autofree char *base = gb_sae_analysis_key (d->sae, d->corpus, ANALYSIS_TOKENS);
  g_autofree char *key = g_strdup_printf ("%s k:%d r:%d c:%d", base, CONTEXTS, RADIUS, d->sae->center);
  job_post (d->job, 0, "Reading the feature cache…");
  d->analysis = cache_read (d->sae_dir, key);
  if (d->analysis != NULL && d->analysis->n_features != d->sae->d_sae)
    g_clear_pointer (&d->analysis, gb_sae_analysis_free); /* not this SAE's: recompute */
  if (d->analysis == NULL)
    {
      d->analysis = gb_sae_analyze (d->model, d->sae, d->corpus, ANALYSIS_TOKENS, CONTEXTS, RADIUS, analysis_progress_cb,
                                    d->job, cancellable, &error);
      if (d->analysis == NULL)
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      GbSaeMetrics *m = &d->analysis->metrics;
      if (!isnan (d->sae->explained_variance))
        {
          /* Held-out metrics measured after training. */
          m->explained_variance = d->sae->explained_variance;
          m->mean_l0 = d->sae->mean_l0;
          m->dead_fraction = d->sae->dead_fraction;
          m->loss_increase = d->sae->loss_increase;
          m->clean_loss = d->sae->clean_loss;
          m->spliced_loss = d->sae->clean_loss + d->sae->loss_increase;
        }
      else
        {
          job_post (d->job, 0.95, "Measuring explained variance and the spliced-in loss…");
          if (!gb_sae_evaluate (d->model, d->sae, d->corpus, 10000, m, cancellable, &error))
            {
              g_task_return_error (task, g_steal_pointer (&error));
              return;
            }
        }
      cache_write (d->analysis, d->sae_dir, key);
    }
  g_task_return_boolean (task, TRUE);
}

/* ---- Gallery ---- */

static gboolean
feature_matches (GbFeaturesView     *self,
                 const GbSaeFeature *f)
{
  if (gtk_check_button_get_active (self->hide_dead) && f->n_fired == 0)
    return FALSE;
  if (self->search_text == NULL || *self->search_text == '\0')
    return TRUE;
  g_autofree char *needle = g_utf8_casefold (self->search_text, -1);
  guint64 id;
  if (self->search_text[0] == '#' && g_ascii_string_to_unsigned (self->search_text + 1, 10, 0, G_MAXUINT, &id, NULL))
    return f->index == id;
  g_autofree char *label = g_utf8_casefold (f->label ? f->label : "", -1);
  if (strstr (label, needle))
    return TRUE;
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  for (guint i = 0; i < f->top->len; i++)
    {
      const GbSaeContext *c = f->top->pdata[i];
      g_autofree char *t = token_text (tok, c->tokens[c->peak]);
      g_autofree char *tf = g_utf8_casefold (t, -1);
      if (strstr (tf, needle))
        return TRUE;
    }
  return FALSE;
}

static gboolean
filter_cb (gpointer item,
           gpointer data)
{
  return feature_matches (data, GB_FEATURE_ITEM (item)->feature);
}

static int
sort_cb (gconstpointer a,
         gconstpointer b,
         gpointer      data)
{
  GbFeaturesView *self = data;
  const GbSaeFeature *x = GB_FEATURE_ITEM ((gpointer) a)->feature, *y = GB_FEATURE_ITEM ((gpointer) b)->feature;
  switch (gtk_drop_down_get_selected (self->sort))
    {
    case 0:
      if (x->frequency != y->frequency)
        return x->frequency < y->frequency ? 1 : -1;
      break;
    case 1:
      if (x->max_act != y->max_act)
        return x->max_act < y->max_act ? 1 : -1;
      break;
    case 2:
      {
        int c = g_utf8_collate (x->label ? x->label : "", y->label ? y->label : "");
        if (c != 0)
          return c;
        break;
      }
    default:
      break;
    }
  return x->index < y->index ? -1 : x->index > y->index;
}

static void
update_count (GbFeaturesView *self)
{
  if (self->analysis == NULL)
    return;
  guint shown = g_list_model_get_n_items (G_LIST_MODEL (self->selection));
  g_autofree char *text = g_strdup_printf ("%u of %u features", shown, self->analysis->n_features);
  gtk_label_set_text (self->count, text);
}

static void
refilter (GbFeaturesView *self)
{
  gtk_filter_changed (GTK_FILTER (self->filter), GTK_FILTER_CHANGE_DIFFERENT);
  update_count (self);
}

static void
search_changed_cb (GbFeaturesView *self)
{
  g_free (self->search_text);
  self->search_text = g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->search)));
  refilter (self);
}

static void
sort_changed_cb (GbFeaturesView *self)
{
  gtk_sorter_changed (GTK_SORTER (self->sorter), GTK_SORTER_CHANGE_DIFFERENT);
}

static void
card_setup_cb (GtkSignalListItemFactory *factory,
               GtkListItem              *item,
               gpointer                  data)
{
  GtkWidget *card = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *top = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *title = gtk_label_new (NULL), *id = dim_label (NULL), *stats = dim_label (NULL);

  gtk_widget_add_css_class (card, "card");
  gtk_widget_add_css_class (card, "feature-card");
  gtk_label_set_xalign (GTK_LABEL (title), 0);
  gtk_label_set_ellipsize (GTK_LABEL (title), PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand (title, TRUE);
  gtk_widget_add_css_class (title, "heading");
  gtk_widget_add_css_class (stats, "caption");
  gtk_box_append (GTK_BOX (top), title);
  gtk_box_append (GTK_BOX (top), id);
  gtk_box_append (GTK_BOX (card), top);
  gtk_box_append (GTK_BOX (card), stats);
  for (guint i = 0; i < CARD_SNIPPETS; i++)
    gtk_box_append (GTK_BOX (card), snippet_label ("", 2));
  gtk_list_item_set_child (item, card);
}

static void
card_bind_cb (GtkSignalListItemFactory *factory,
              GtkListItem              *item,
              gpointer                  data)
{
  GbFeaturesView *self = data;
  const GbSaeFeature *f = GB_FEATURE_ITEM (gtk_list_item_get_item (item))->feature;
  GtkWidget *card = gtk_list_item_get_child (item);
  GtkWidget *top = gtk_widget_get_first_child (card);
  GtkWidget *stats = gtk_widget_get_next_sibling (top);
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  g_autofree char *id = g_strdup_printf ("#%u", f->index);
  g_autofree char *freq = format_percent (f->frequency);
  g_autofree char *st = f->n_fired ? g_strdup_printf ("fires on %s of tokens · max %.2f", freq, f->max_act)
                                   : g_strdup ("dead: never fired on this corpus");

  gtk_label_set_text (GTK_LABEL (gtk_widget_get_first_child (top)), f->label && *f->label ? f->label : "(dead)");
  gtk_label_set_text (GTK_LABEL (gtk_widget_get_last_child (top)), id);
  gtk_label_set_text (GTK_LABEL (stats), st);
  GtkWidget *snip = gtk_widget_get_next_sibling (stats);
  for (guint i = 0; snip != NULL; i++, snip = gtk_widget_get_next_sibling (snip))
    {
      g_autofree char *m = NULL;
      if (i < f->top->len)
        {
          /* Cards show a few tokens either side of the peak, so it stays in view. */
          const GbSaeContext *c = f->top->pdata[i];
          const guint first = c->peak > 6 ? c->peak - 6 : 0, last = MIN (c->n, c->peak + 6);
          GbSaeContext near = { c->tokens + first, c->acts + first, last - first, c->peak - first, c->value };
          m = context_markup (tok, &near, f->max_act);
        }
      else
        m = g_strdup ("");
      gtk_label_set_markup (GTK_LABEL (snip), m);
      gtk_widget_set_visible (snip, i < f->top->len);
    }
}

static void
selection_changed_cb (GbFeaturesView *self)
{
  GbFeatureItem *item = gtk_single_selection_get_selected_item (self->selection);
  show_feature (self, item ? item->feature : NULL);
}

/* ---- Feature page ---- */

static void
histogram_draw_cb (GtkDrawingArea *area,
                   cairo_t        *cr,
                   int             width,
                   int             height,
                   gpointer        data)
{
  GbFeaturesView *self = data;
  if (self->analysis == NULL || self->selected < 0)
    return;
  const GbSaeFeature *f = &self->analysis->features[self->selected];
  guint64 top = 1;
  for (guint b = 0; b < GB_SAE_HIST_BINS; b++)
    top = MAX (top, f->hist[b]);
  GdkRGBA fg;
  gtk_style_context_get_color (gtk_widget_get_style_context (GTK_WIDGET (area)), &fg);
  const double pad = 14, bw = (width - 2.0) / GB_SAE_HIST_BINS;
  cairo_set_source_rgba (cr, 1.0, 0.624, 0.11, 0.9);
  for (guint b = 0; b < GB_SAE_HIST_BINS; b++)
    {
      /* Square-root heights, so the tail stays visible. */
      double h = sqrt ((double) f->hist[b] / top) * (height - pad - 2);
      cairo_rectangle (cr, 1 + b * bw + 1, height - pad - h, bw - 2, h);
    }
  cairo_fill (cr);
  cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.7);
  cairo_set_font_size (cr, 10);
  cairo_move_to (cr, 2, height - 2);
  cairo_show_text (cr, "0");
  g_autofree char *mx = g_strdup_printf ("%.2f", f->max_act);
  cairo_text_extents_t ext;
  cairo_text_extents (cr, mx, &ext);
  cairo_move_to (cr, width - ext.x_advance - 2, height - 2);
  cairo_show_text (cr, mx);
}

static GtkWidget *
effects_box (GbTokenizer  *tok,
             const gint32 *ids,
             const float  *vals,
             const char   *css)
{
  GtkWidget *flow = gtk_flow_box_new ();
  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (flow), GTK_SELECTION_NONE);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (flow), 10);
  for (guint r = 0; r < 10 && ids[r] >= 0; r++)
    {
      g_autofree char *t = token_text (tok, ids[r]);
      g_autofree char *s = g_strdup_printf ("%s  %+.2f", t, vals[r]);
      GtkWidget *chip = gtk_label_new (s);
      gtk_widget_add_css_class (chip, "token-chip");
      gtk_widget_add_css_class (chip, css);
      gtk_flow_box_append (GTK_FLOW_BOX (flow), chip);
    }
  return flow;
}

static void
try_changed_cb (GtkEditable *entry,
                gpointer     data)
{
  GbFeaturesView *self = data;
  GtkLabel *out = g_object_get_data (G_OBJECT (entry), "out");
  const char *text = gtk_editable_get_text (entry);
  g_autoptr (GError) error = NULL;

  if (self->sae == NULL || self->selected < 0 || *text == '\0')
    {
      gtk_label_set_text (out, "");
      return;
    }
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, text, -1, FALSE, &error);
  if (ids == NULL)
    {
      gtk_label_set_text (out, error->message);
      return;
    }
  const guint ctx = gb_model_get_config (self->model)->n_positions;
  gint32 eot = gb_tokenizer_get_eot (tok);
  g_autoptr (GArray) seq = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (eot != GB_TOKEN_NONE)
    g_array_append_val (seq, eot);
  g_array_append_vals (seq, ids->data, MIN (ids->len, ctx - 1));
  /* A short text through a small forward pass: milliseconds, on this thread. */
  GbRecord rec = { { 0 }, GB_LOGITS_NONE };
  rec.hooks[self->sae->hook] = (guint64) 1 << self->sae->layer;
  g_autoptr (GbTrace) tr = gb_model_forward (self->model, (gint32 *) seq->data, seq->len, &rec, NULL, 0, NULL, &error);
  if (tr == NULL)
    {
      gtk_label_set_text (out, error->message);
      return;
    }
  const guint n = seq->len - 1, d = self->sae->d_in, ds = self->sae->d_sae;
  g_autofree float *x = g_memdup2 (gb_trace_get (tr, self->sae->hook, self->sae->layer) + d, (gsize) n * d * sizeof (float));
  g_autofree float *z = g_new (float, (gsize) n * ds);
  gb_sae_preprocess (self->sae, x, n, NULL);
  gb_sae_encode (self->sae, z, x, n);
  GbSaeContext c = { (gint32 *) seq->data + 1, g_new (float, n), n, 0, 0 };
  float peak = 0;
  for (guint t = 0; t < n; t++)
    {
      c.acts[t] = z[(gsize) t * ds + self->selected];
      if (c.acts[t] > peak)
        peak = c.acts[t], c.peak = t;
    }
  const float scale = MAX (self->analysis->features[self->selected].max_act, peak);
  g_autofree char *m = context_markup (tok, &c, scale);
  g_autofree char *full = g_strdup_printf ("%s\n<small>peak %.2f</small>", m, peak);
  gtk_label_set_markup (out, full);
  g_free (c.acts);
}

static void
add_contexts (GbFeaturesView *self,
              GtkWidget      *box,
              GPtrArray      *list,
              float           scale,
              gboolean        values)
{
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  for (guint i = 0; i < list->len; i++)
    {
      const GbSaeContext *c = list->pdata[i];
      g_autofree char *m = context_markup (tok, c, scale);
      g_autofree char *full = values ? g_strdup_printf ("<small><tt>%5.2f</tt></small>  %s", c->value, m) : g_strdup (m);
      gtk_box_append (GTK_BOX (box), snippet_label (full, 0));
    }
}

static void
show_feature (GbFeaturesView     *self,
              const GbSaeFeature *f)
{
  clear_box (self->detail);
  self->histogram = NULL;
  self->selected = f ? (int) f->index : -1;
  gtk_widget_set_visible (self->detail_scroll, f != NULL);
  if (f == NULL)
    return;
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  g_autofree char *title = g_strdup_printf ("#%u  %s", f->index, f->label && *f->label ? f->label : "(dead)");
  GtkWidget *t = gtk_label_new (title);
  gtk_label_set_xalign (GTK_LABEL (t), 0);
  gtk_label_set_wrap (GTK_LABEL (t), TRUE);
  gtk_widget_add_css_class (t, "title-2");
  gtk_box_append (GTK_BOX (self->detail), t);
  g_autofree char *freq = format_percent (f->frequency);
  g_autofree char *dens = g_strdup_printf ("Activation density %s (%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                                           " tokens) · max %.2f · mean %.2f when firing",
                                           freq, f->n_fired, self->analysis->n_tokens, f->max_act, f->mean_act);
  GtkWidget *dl = dim_label (dens);
  gtk_label_set_wrap (GTK_LABEL (dl), TRUE);
  gtk_box_append (GTK_BOX (self->detail), dl);

  gtk_box_append (GTK_BOX (self->detail), heading ("Non-zero activations"));
  self->histogram = gtk_drawing_area_new ();
  gtk_widget_set_size_request (self->histogram, -1, 70);
  gtk_drawing_area_set_draw_func (GTK_DRAWING_AREA (self->histogram), histogram_draw_cb, self, NULL);
  gtk_box_append (GTK_BOX (self->detail), self->histogram);

  gtk_box_append (GTK_BOX (self->detail), heading ("Promotes (decoder direction · unembedding)"));
  gtk_box_append (GTK_BOX (self->detail), effects_box (tok, f->promoted, f->promoted_logit, "promoted"));
  gtk_box_append (GTK_BOX (self->detail), heading ("Suppresses"));
  gtk_box_append (GTK_BOX (self->detail), effects_box (tok, f->suppressed, f->suppressed_logit, "suppressed"));

  gtk_box_append (GTK_BOX (self->detail), heading ("Top activations"));
  if (f->top->len == 0)
    gtk_box_append (GTK_BOX (self->detail), dim_label ("It never fired on this corpus."));
  add_contexts (self, self->detail, f->top, f->max_act, TRUE);
  if (f->bands->len > 0)
    {
      gtk_box_append (GTK_BOX (self->detail), heading ("Lower activations (one per quantile band)"));
      add_contexts (self, self->detail, f->bands, f->max_act, TRUE);
    }
  gtk_box_append (GTK_BOX (self->detail), heading ("Try it"));
  GtkWidget *entry = gtk_entry_new ();
  GtkWidget *out = snippet_label ("", 0);
  gtk_entry_set_placeholder_text (GTK_ENTRY (entry), "Type a text to see this feature's activation per token");
  set_a11y_label (entry, "Text to try this feature on");
  g_object_set_data (G_OBJECT (entry), "out", out);
  g_signal_connect (entry, "changed", G_CALLBACK (try_changed_cb), self);
  gtk_box_append (GTK_BOX (self->detail), entry);
  gtk_box_append (GTK_BOX (self->detail), out);
}

/* ---- Showing an SAE ---- */

static void
show_sae (GbFeaturesView *self)
{
  const GbSae *s = self->sae;
  const GbSaeMetrics *m = &self->analysis->metrics;
  g_autofree char *name = g_path_get_basename (s->path ? s->path : "SAE");
  g_autofree char *kind = s->kind == GB_SAE_TOPK ? g_strdup_printf ("TopK, k = %u", s->k)
                                                 : g_strdup (s->kind == GB_SAE_STANDARD ? "L1 (ReLU)" : "JumpReLU");
  g_autofree char *title = g_strdup_printf ("%s · blocks.%u.%s · %u → %u latents · %s", name, s->layer,
                                            gb_hook_name (s->hook), s->d_in, s->d_sae, kind);
  g_autofree char *metrics = g_strdup_printf ("Explained variance %.3f · L0 %.1f · dead %.1f%% · next-token loss %+.3f "
                                              "(%.3f → %.3f) · features measured on %" G_GUINT64_FORMAT " tokens of %s",
                                              m->explained_variance, m->mean_l0, 100 * m->dead_fraction, m->loss_increase,
                                              m->clean_loss, m->spliced_loss, self->analysis->n_tokens,
                                              self->analysis->corpus);
  gtk_label_set_text (self->title, title);
  gtk_label_set_text (self->metrics, metrics);
  g_list_store_remove_all (self->store);
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint j = 0; j < self->analysis->n_features; j++)
    {
      GbFeatureItem *item = g_object_new (GB_TYPE_FEATURE_ITEM, NULL);
      item->feature = &self->analysis->features[j];
      g_ptr_array_add (items, item);
    }
  g_list_store_splice (self->store, 0, 0, items->pdata, items->len);
  gtk_single_selection_set_selected (self->selection, GTK_INVALID_LIST_POSITION);
  show_feature (self, NULL);
  update_count (self);
  gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "gallery");
}

static void
job_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      data)
{
  g_autoptr (GbFeaturesView) self = data;
  g_autoptr (GError) error = NULL;
  JobData *d = g_task_get_task_data (G_TASK (result));

  if (self->job == d->job)
    {
      g_clear_pointer (&self->job, job_release);
      gtk_revealer_set_reveal_child (self->progress_revealer, FALSE);
    }
  if (d->model != self->model)
    return;  /* made for a model that is no longer loaded */
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      gtk_label_set_text (self->progress_label, error->message);
      if (self->analysis == NULL)
        {
          adw_status_page_set_description (self->empty, error->message);
          gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "empty");
        }
      g_signal_emit (self, signals[SIGNAL_FAILED], 0, error->message);
      return;
    }
  g_clear_pointer (&self->sae, gb_sae_free);
  g_clear_pointer (&self->analysis, gb_sae_analysis_free);
  self->sae = g_steal_pointer (&d->sae);
  self->analysis = g_steal_pointer (&d->analysis);
  show_sae (self);
  g_signal_emit (self, signals[SIGNAL_READY], 0);
}

static void
start_job (GbFeaturesView *self,
           JobData        *d,
           const char     *message)
{
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  g_clear_pointer (&self->job, job_release);
  self->job = g_atomic_rc_box_new0 (Job);
  g_mutex_init (&self->job->lock);
  self->job->loss = g_array_new (FALSE, FALSE, sizeof (float));
  self->job->l0 = g_array_new (FALSE, FALSE, sizeof (float));
  g_weak_ref_init (&self->job->view, self);
  self->job->stop = g_cancellable_new ();
  self->job->training = d->train;
  d->job = g_atomic_rc_box_acquire (self->job);
  d->model = gb_model_ref (self->model);
  gtk_progress_bar_set_fraction (self->progress, 0);
  gtk_label_set_text (self->progress_label, message);
  gtk_widget_set_visible (self->plot, d->train);
  gtk_button_set_label (self->cancel_button, d->train ? "Stop" : "Cancel");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->cancel_button),
                               d->train ? "Stop training and browse the features learned so far" : NULL);
  gtk_revealer_set_reveal_child (self->progress_revealer, TRUE);
  /* No source object (the worker may drop the task's last reference; the
   * view must be finalized on the main thread): the callback owns this. */
  g_autoptr (GTask) task = g_task_new (NULL, self->cancellable, job_done_cb, g_object_ref (self));
  g_task_set_source_tag (task, start_job);
  g_task_set_task_data (task, d, (GDestroyNotify) job_data_free);
  g_task_run_in_thread (task, job_thread);
}

/* The progress row's button: Stop while training, Cancel after. */
static void
cancel_clicked_cb (GbFeaturesView *self)
{
  if (!gb_features_view_stop_training (self))
    gb_features_view_cancel (self);
}

/* ---- Training plot ---- */

static void
plot_series (cairo_t     *cr,
             const float *v,
             guint        n,
             double       w,
             double       h,
             double       r,
             double       g,
             double       b)
{
  float top = 1e-6f;
  for (guint i = 0; i < n; i++)
    top = MAX (top, v[i]);
  cairo_set_source_rgb (cr, r, g, b);
  cairo_set_line_width (cr, 1.5);
  for (guint i = 0; i < n; i++)
    {
      double x = n > 1 ? w * i / (n - 1) : 0, y = h - 4 - (h - 8) * v[i] / top;
      if (i == 0)
        cairo_move_to (cr, x, y);
      else
        cairo_line_to (cr, x, y);
    }
  cairo_stroke (cr);
}

static void
plot_draw_cb (GtkDrawingArea *area,
              cairo_t        *cr,
              int             width,
              int             height,
              gpointer        data)
{
  GbFeaturesView *self = data;
  if (self->job == NULL)
    return;
  g_mutex_lock (&self->job->lock);
  g_autoptr (GArray) loss = g_array_copy (self->job->loss);
  g_autoptr (GArray) l0 = g_array_copy (self->job->l0);
  g_mutex_unlock (&self->job->lock);
  plot_series (cr, (float *) loss->data, loss->len, width, height, 0.2, 0.5, 0.9);
  plot_series (cr, (float *) l0->data, l0->len, width, height, 1.0, 0.62, 0.11);
  cairo_set_font_size (cr, 10);
  cairo_set_source_rgb (cr, 0.2, 0.5, 0.9);
  cairo_move_to (cr, 4, 12);
  cairo_show_text (cr, "loss");
  cairo_set_source_rgb (cr, 1.0, 0.62, 0.11);
  cairo_move_to (cr, 34, 12);
  cairo_show_text (cr, "L0");
}

/* ---- Train dialog ---- */

typedef struct
{
  GbFeaturesView *view;
  GtkWindow      *window;
  GtkSpinButton  *layer, *width, *k, *l1, *tokens;
  GtkDropDown    *hook, *kind;
  GtkEntry       *corpus, *output;
  GtkFileChooserNative *chooser;
} TrainForm;

static GtkWidget *
form_row (GtkWidget  *group,
          const char *title,
          const char *subtitle,
          GtkWidget  *widget)
{
  GtkWidget *row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  if (subtitle)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  gtk_widget_set_valign (widget, GTK_ALIGN_CENTER);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), widget);
  adw_preferences_group_add (ADW_PREFERENCES_GROUP (group), row);
  return row;
}

static void
kind_changed_cb (TrainForm *f)
{
  const gboolean topk = gtk_drop_down_get_selected (f->kind) == 0;
  gtk_widget_set_sensitive (GTK_WIDGET (f->k), topk);
  gtk_widget_set_sensitive (GTK_WIDGET (f->l1), !topk);
}

static void
train_clicked_cb (GtkButton *button,
                  TrainForm *f)
{
  GbFeaturesView *self = f->view;
  static const GbHook hooks[] = { GB_HOOK_RESID_POST, GB_HOOK_RESID_PRE, GB_HOOK_RESID_MID, GB_HOOK_MLP_OUT };
  JobData *d = g_new0 (JobData, 1);
  const guint width = gb_model_hook_width (self->model, hooks[gtk_drop_down_get_selected (f->hook)]);

  gb_sae_run_options_init (&d->run);
  d->run.layer = (guint) gtk_spin_button_get_value_as_int (f->layer);
  d->run.hook = hooks[gtk_drop_down_get_selected (f->hook)];
  d->run.train.kind = gtk_drop_down_get_selected (f->kind) == 0 ? GB_SAE_TOPK : GB_SAE_STANDARD;
  d->run.train.d_sae = width * (guint) gtk_spin_button_get_value_as_int (f->width);
  d->run.train.k = (guint) gtk_spin_button_get_value_as_int (f->k);
  d->run.train.l1 = gtk_spin_button_get_value (f->l1);
  d->run.n_tokens = (guint64) gtk_spin_button_get_value (f->tokens);
  gb_features_view_train (self, &d->run, gtk_editable_get_text (GTK_EDITABLE (f->corpus)),
                          gtk_editable_get_text (GTK_EDITABLE (f->output)));
  g_free (d);
  gtk_window_destroy (f->window);
}

static void
form_free (TrainForm *f)
{
  gb_drop_chooser (&f->chooser, f);
  g_free (f);
}

static void
corpus_chosen_cb (GtkNativeDialog *dialog,
                  int              response,
                  TrainForm       *f)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);
      if (path)
        gtk_editable_set_text (GTK_EDITABLE (f->corpus), path);
    }
}

static void
choose_corpus_cb (TrainForm *f)
{
  g_clear_object (&f->chooser);
  f->chooser = gtk_file_chooser_native_new ("Choose a Corpus", f->window, GTK_FILE_CHOOSER_ACTION_OPEN, "_Choose", "_Cancel");
  g_signal_connect (f->chooser, "response", G_CALLBACK (corpus_chosen_cb), f);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (f->chooser));
}

static GtkSpinButton *
spin (double lo,
      double hi,
      double step,
      double value,
      guint  digits)
{
  GtkWidget *s = gtk_spin_button_new_with_range (lo, hi, step);
  gtk_spin_button_set_digits (GTK_SPIN_BUTTON (s), digits);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (s), value);
  return GTK_SPIN_BUTTON (s);
}

GtkWindow *
gb_features_view_show_train_dialog (GbFeaturesView *self)
{
  const GbConfig *cfg = gb_model_get_config (self->model);
  TrainForm *f = g_new0 (TrainForm, 1);
  GtkWidget *win = gtk_window_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  GtkWidget *group = adw_preferences_group_new ();
  const char *hooks[] = { "resid_post", "resid_pre", "resid_mid", "mlp_out", NULL };
  const char *kinds[] = { "TopK", "L1 (ReLU)", NULL };

  f->view = self;
  f->window = GTK_WINDOW (win);
  gtk_window_set_title (f->window, "Train a Sparse Autoencoder");
  gtk_window_set_modal (f->window, TRUE);
  gtk_window_set_default_size (f->window, 520, -1);
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  if (GTK_IS_WINDOW (root))
    gtk_window_set_transient_for (f->window, GTK_WINDOW (root));
  g_object_set_data_full (G_OBJECT (win), "form", f, (GDestroyNotify) form_free);

  adw_preferences_group_set_description (ADW_PREFERENCES_GROUP (group),
                                         "Activations of one hook, streamed from a corpus; Adam, decoder rows kept at unit norm, "
                                         "dead latents resampled. Cancel keeps the last checkpoint.");
  f->layer = spin (0, cfg->n_layer - 1, 1, cfg->n_layer / 2, 0);
  form_row (group, "Layer", NULL, GTK_WIDGET (f->layer));
  f->hook = GTK_DROP_DOWN (gtk_drop_down_new_from_strings (hooks));
  set_a11y_label (f->hook, "Hook point");
  form_row (group, "Hook", "blocks.L.hook_…", GTK_WIDGET (f->hook));
  f->kind = GTK_DROP_DOWN (gtk_drop_down_new_from_strings (kinds));
  set_a11y_label (f->kind, "SAE kind");
  form_row (group, "Kind", NULL, GTK_WIDGET (f->kind));
  f->width = spin (1, 64, 1, 8, 0);
  form_row (group, "Width", "Latents per activation dimension", GTK_WIDGET (f->width));
  f->k = spin (1, 512, 1, 32, 0);
  form_row (group, "k", "Active latents per token (TopK)", GTK_WIDGET (f->k));
  f->l1 = spin (0, 1000, 0.1, 5, 2);
  form_row (group, "L1 coefficient", "Sparsity penalty (L1)", GTK_WIDGET (f->l1));
  f->tokens = spin (1000, 1e9, 10000, 500000, 0);
  form_row (group, "Tokens", "Training budget", GTK_WIDGET (f->tokens));
  f->corpus = GTK_ENTRY (gtk_entry_new ());
  set_a11y_label (f->corpus, "Corpus file");
  gtk_editable_set_text (GTK_EDITABLE (f->corpus), self->corpus);
  gtk_editable_set_width_chars (GTK_EDITABLE (f->corpus), 24);
  GtkWidget *corpus_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  GtkWidget *choose = gtk_button_new_from_icon_name ("document-open-symbolic");
  gtk_widget_set_tooltip_text (choose, "Choose a file");
  g_signal_connect_swapped (choose, "clicked", G_CALLBACK (choose_corpus_cb), f);
  gtk_box_append (GTK_BOX (corpus_box), GTK_WIDGET (f->corpus));
  gtk_box_append (GTK_BOX (corpus_box), choose);
  form_row (group, "Corpus", "Text (one document per line, or end-of-text separated) or JSONL", corpus_box);
  g_autofree char *out = g_build_filename (g_get_user_data_dir (), "glassbox", "saes", NULL);
  g_autofree char *name = g_strdup_printf ("%s-L%d-%s", gb_model_get_name (self->model), cfg->n_layer / 2, "topk");
  g_autofree char *out_dir = g_build_filename (out, name, NULL);
  f->output = GTK_ENTRY (gtk_entry_new ());
  set_a11y_label (f->output, "Output folder");
  gtk_editable_set_text (GTK_EDITABLE (f->output), out_dir);
  gtk_editable_set_width_chars (GTK_EDITABLE (f->output), 28);
  form_row (group, "Save to", "SAELens folder", GTK_WIDGET (f->output));
  g_signal_connect_swapped (f->kind, "notify::selected", G_CALLBACK (kind_changed_cb), f);
  kind_changed_cb (f);

  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *cancel = gtk_button_new_with_label ("Cancel");
  GtkWidget *train = gtk_button_new_with_label ("Train");
  gtk_widget_add_css_class (train, "suggested-action");
  gtk_widget_set_halign (buttons, GTK_ALIGN_END);
  gtk_box_append (GTK_BOX (buttons), cancel);
  gtk_box_append (GTK_BOX (buttons), train);
  g_signal_connect_swapped (cancel, "clicked", G_CALLBACK (gtk_window_destroy), win);
  g_signal_connect (train, "clicked", G_CALLBACK (train_clicked_cb), f);
  gtk_widget_set_margin_top (box, 18);
  gtk_widget_set_margin_bottom (box, 18);
  gtk_widget_set_margin_start (box, 18);
  gtk_widget_set_margin_end (box, 18);
  gtk_box_append (GTK_BOX (box), group);
  gtk_box_append (GTK_BOX (box), buttons);
  gtk_window_set_child (f->window, box);
  gtk_window_present (f->window);
  return f->window;
}

/* ---- Export ---- */

/* The features the gallery shows, in its order. */
static GPtrArray *
shown_features (GbFeaturesView *self)
{
  GListModel *m = G_LIST_MODEL (self->selection);
  GPtrArray *out = g_ptr_array_new ();
  for (guint i = 0; i < g_list_model_get_n_items (m); i++)
    {
      g_autoptr (GbFeatureItem) item = g_list_model_get_item (m, i);
      g_ptr_array_add (out, (gpointer) item->feature);
    }
  return out;
}

static void
html_context (GString            *s,
              GbTokenizer        *tok,
              const GbSaeContext *c,
              float               scale)
{
  g_string_append (s, "<div class=\"snippet\">");
  for (guint i = 0; i < c->n; i++)
    {
      g_autofree char *t = token_text (tok, c->tokens[i]);
      g_autofree char *esc = g_markup_escape_text (t, -1);
      const double a = scale > 0 ? CLAMP (c->acts[i] / scale, 0, 1) : 0;
      if (a > 0.02)
        g_string_append_printf (s, "<span style=\"background: rgba(255,159,28,%.2f)%s\" title=\"%.3f\">%s</span>",
                                0.08 + 0.8 * a, i == c->peak ? "; font-weight: bold" : "", c->acts[i], esc);
      else
        g_string_append (s, esc);
    }
  g_string_append (s, "</div>\n");
}

static char *
gallery_html (GbFeaturesView *self)
{
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  g_autoptr (GPtrArray) feats = shown_features (self);
  GString *s = g_string_new ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Glassbox features</title>\n<style>\n"
                             "body { font-family: sans-serif; margin: 2em; } .card { border: 1px solid #ccc; border-radius: 8px; "
                             "padding: 0.6em 1em; margin: 0.6em 0; } .snippet { font-family: monospace; white-space: pre-wrap; "
                             "margin: 0.2em 0; } .dim { color: #666; } .chip { font-family: monospace; padding: 0 4px; "
                             "border-radius: 4px; background: #e6f4ea; margin-right: 4px; }\n</style></head><body>\n");
  g_autofree char *title = g_markup_escape_text (gtk_label_get_text (self->title), -1);
  g_autofree char *metrics = g_markup_escape_text (gtk_label_get_text (self->metrics), -1);
  g_string_append_printf (s, "<h1>%s</h1>\n<p class=\"dim\">%s</p>\n", title, metrics);
  for (guint i = 0; i < feats->len; i++)
    {
      const GbSaeFeature *f = feats->pdata[i];
      g_autofree char *label = g_markup_escape_text (f->label ? f->label : "", -1);
      g_autofree char *freq = format_percent (f->frequency);
      g_string_append_printf (s, "<div class=\"card\"><h3>#%u %s</h3><p class=\"dim\">fires on %s of tokens · max %.2f</p><p>",
                              f->index, label, freq, f->max_act);
      for (guint r = 0; r < 5 && f->promoted[r] >= 0; r++)
        {
          g_autofree char *t = token_text (tok, f->promoted[r]);
          g_autofree char *esc = g_markup_escape_text (t, -1);
          g_string_append_printf (s, "<span class=\"chip\">%s %+.2f</span>", esc, f->promoted_logit[r]);
        }
      g_string_append (s, "</p>\n");
      for (guint c = 0; c < MIN (5u, f->top->len); c++)
        html_context (s, tok, f->top->pdata[c], f->max_act);
      g_string_append (s, "</div>\n");
    }
  g_string_append (s, "</body></html>\n");
  return g_string_free (s, FALSE);
}

static void
json_tokens (JsonBuilder        *b,
             GbTokenizer        *tok,
             const GbSaeContext *c)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "tokens");
  json_builder_begin_array (b);
  for (guint t = 0; t < c->n; t++)
    {
      g_autofree char *s = gb_tokenizer_decode (tok, &c->tokens[t], 1, NULL);
      json_builder_add_string_value (b, s ? s : "");
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "acts");
  json_builder_begin_array (b);
  for (guint t = 0; t < c->n; t++)
    json_builder_add_double_value (b, c->acts[t]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "peak");
  json_builder_add_int_value (b, c->peak);
  json_builder_end_object (b);
}

static char *
gallery_json (GbFeaturesView *self)
{
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  g_autoptr (GPtrArray) feats = shown_features (self);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sae");
  json_builder_add_string_value (b, gtk_label_get_text (self->title));
  json_builder_set_member_name (b, "metrics");
  json_builder_add_string_value (b, gtk_label_get_text (self->metrics));
  json_builder_set_member_name (b, "features");
  json_builder_begin_array (b);
  for (guint i = 0; i < feats->len; i++)
    {
      const GbSaeFeature *f = feats->pdata[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "index");
      json_builder_add_int_value (b, f->index);
      json_builder_set_member_name (b, "label");
      json_builder_add_string_value (b, f->label ? f->label : "");
      json_builder_set_member_name (b, "frequency");
      json_builder_add_double_value (b, f->frequency);
      json_builder_set_member_name (b, "max_act");
      json_builder_add_double_value (b, f->max_act);
      json_builder_set_member_name (b, "promoted");
      json_builder_begin_array (b);
      for (guint r = 0; r < 10 && f->promoted[r] >= 0; r++)
        {
          g_autofree char *t = gb_tokenizer_decode (tok, &f->promoted[r], 1, NULL);
          json_builder_add_string_value (b, t ? t : "");
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "top");
      json_builder_begin_array (b);
      for (guint c = 0; c < f->top->len; c++)
        json_tokens (b, tok, f->top->pdata[c]);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, TRUE);
}

static gboolean
save_feature_png (GbFeaturesView *self,
                  const char     *path,
                  GError        **error)
{
  GtkWidget *w = self->detail;
  const int width = gtk_widget_get_width (w), height = gtk_widget_get_height (w);
  if (self->selected < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "No feature page is shown");
      return FALSE;
    }
  if (width <= 0 || height <= 0 || !gtk_widget_get_mapped (w))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING, "The feature page is not laid out yet");
      return FALSE;
    }
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (w);
  GtkSnapshot *snap = gtk_snapshot_new ();
  GdkRGBA bg = { 1, 1, 1, 1 };
  if (adw_style_manager_get_dark (adw_style_manager_get_default ()))
    bg = (GdkRGBA) { 0.14, 0.14, 0.14, 1 };
  gtk_snapshot_append_color (snap, &bg, &GRAPHENE_RECT_INIT (0, 0, width, height));
  gdk_paintable_snapshot (paintable, snap, width, height);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snap);
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (w));
  g_autoptr (GdkTexture) tex = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, width, height));
  return gb_texture_save_png (tex, path, error);
}

gboolean
gb_features_view_export (GbFeaturesView *self,
                         const char     *path,
                         GError        **error)
{
  g_return_val_if_fail (GB_IS_FEATURES_VIEW (self), FALSE);
  if (self->analysis == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "No SAE is open");
      return FALSE;
    }
  if (g_str_has_suffix (path, ".png"))
    return save_feature_png (self, path, error);
  g_autofree char *data = NULL;
  if (g_str_has_suffix (path, ".html") || g_str_has_suffix (path, ".htm"))
    data = gallery_html (self);
  else if (g_str_has_suffix (path, ".json"))
    data = gallery_json (self);
  else
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: export to .html, .json or .png (the feature page)", path);
      return FALSE;
    }
  /* g_file_set_contents writes a temporary file and renames it into place. */
  return g_file_set_contents (path, data, -1, error);
}

static void
export_response_cb (GtkNativeDialog *dialog,
                    int              response,
                    gpointer         data)
{
  GbFeaturesView *self = data;
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);
      g_autoptr (GError) error = NULL;
      if (path && !gb_features_view_export (self, path, &error))
        gtk_label_set_text (self->metrics, error->message);
    }
  g_clear_object (&self->chooser);
}

static void
export_clicked_cb (GtkButton      *button,
                   GbFeaturesView *self)
{
  const char *name = g_object_get_data (G_OBJECT (button), "name");
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  g_clear_object (&self->chooser);
  self->chooser = gtk_file_chooser_native_new ("Export", GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                               GTK_FILE_CHOOSER_ACTION_SAVE, "_Export", "_Cancel");
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (self->chooser), name);
  g_signal_connect (self->chooser, "response", G_CALLBACK (export_response_cb), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static GtkWidget *
build_export_menu (GbFeaturesView *self)
{
  GtkWidget *button = gtk_menu_button_new ();
  GtkWidget *pop = gtk_popover_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  const char *labels[][2] = { { "Gallery as HTML…", "features.html" }, { "Gallery as JSON…", "features.json" },
                              { "Feature page as PNG…", "feature.png" } };
  gtk_menu_button_set_label (GTK_MENU_BUTTON (button), "Export");
  for (guint i = 0; i < G_N_ELEMENTS (labels); i++)
    {
      GtkWidget *b = gtk_button_new_with_label (labels[i][0]);
      gtk_widget_add_css_class (b, "flat");
      g_object_set_data (G_OBJECT (b), "name", (gpointer) labels[i][1]);
      g_signal_connect (b, "clicked", G_CALLBACK (export_clicked_cb), self);
      g_signal_connect_swapped (b, "clicked", G_CALLBACK (gtk_popover_popdown), pop);
      gtk_box_append (GTK_BOX (box), b);
    }
  gtk_popover_set_child (GTK_POPOVER (pop), box);
  gtk_menu_button_set_popover (GTK_MENU_BUTTON (button), pop);
  return button;
}


/* ---- Features on a text ---- */

static void
token_feature_clicked_cb (GtkButton      *button,
                          GbFeaturesView *self)
{
  int index = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (button), "feature"));
  GtkWidget *pop = gtk_widget_get_ancestor (GTK_WIDGET (button), GTK_TYPE_POPOVER);
  if (pop)
    gtk_popover_popdown (GTK_POPOVER (pop));
  gb_features_view_select (self, index);
}

/* One token: a button whose popover lists its strongest features. */
static GtkWidget *
token_button (GbFeaturesView *self,
              gint32          id,
              const float    *z)
{
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  const guint ds = self->sae->d_sae;
  guint best[5] = { 0 };
  guint n = 0;
  for (guint j = 0; j < ds; j++)
    {
      if (!(z[j] > 0) || (n == 5 && !(z[j] > z[best[4]])))
        continue;
      guint p = n < 5 ? n++ : 4;
      while (p > 0 && z[j] > z[best[p - 1]])
        {
          best[p] = best[p - 1];
          p--;
        }
      best[p] = j;
    }
  g_autofree char *text = token_text (tok, id);
  GtkWidget *button = gtk_menu_button_new ();
  gtk_menu_button_set_label (GTK_MENU_BUTTON (button), text);
  gtk_widget_add_css_class (button, "flat");
  gtk_widget_add_css_class (button, "token-button");
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  if (n == 0)
    gtk_box_append (GTK_BOX (box), dim_label ("No feature fires here"));
  for (guint i = 0; i < n; i++)
    {
      const GbSaeFeature *f = &self->analysis->features[best[i]];
      g_autofree char *label = g_strdup_printf ("#%u %s  %.2f", best[i], f->label ? f->label : "", z[best[i]]);
      GtkWidget *b = gtk_button_new_with_label (label);
      gtk_widget_add_css_class (b, "flat");
      g_object_set_data (G_OBJECT (b), "feature", GINT_TO_POINTER (best[i]));
      g_signal_connect (b, "clicked", G_CALLBACK (token_feature_clicked_cb), self);
      gtk_box_append (GTK_BOX (box), b);
    }
  GtkWidget *pop = gtk_popover_new ();
  gtk_popover_set_child (GTK_POPOVER (pop), box);
  gtk_menu_button_set_popover (GTK_MENU_BUTTON (button), pop);
  return button;
}

static void
text_activate_cb (GbFeaturesView *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->text_entry));
  g_autoptr (GError) error = NULL;
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (self->text_tokens)) != NULL)
    gtk_flow_box_remove (GTK_FLOW_BOX (self->text_tokens), child);
  if (self->sae == NULL || *text == '\0')
    return;
  GbTokenizer *tok = gb_model_get_tokenizer (self->model);
  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, text, -1, FALSE, &error);
  if (ids == NULL)
    {
      gtk_flow_box_append (GTK_FLOW_BOX (self->text_tokens), dim_label (error->message));
      return;
    }
  const guint ctx = gb_model_get_config (self->model)->n_positions;
  gint32 eot = gb_tokenizer_get_eot (tok);
  g_autoptr (GArray) seq = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (eot != GB_TOKEN_NONE)
    g_array_append_val (seq, eot);
  g_array_append_vals (seq, ids->data, MIN (ids->len, ctx - 1));
  GbRecord rec = { { 0 }, GB_LOGITS_NONE };
  rec.hooks[self->sae->hook] = (guint64) 1 << self->sae->layer;
  g_autoptr (GbTrace) tr = gb_model_forward (self->model, (gint32 *) seq->data, seq->len, &rec, NULL, 0, NULL, &error);
  if (tr == NULL || seq->len < 2)
    return;
  const guint n = seq->len - 1, d = self->sae->d_in, ds = self->sae->d_sae;
  g_autofree float *x = g_memdup2 (gb_trace_get (tr, self->sae->hook, self->sae->layer) + d, (gsize) n * d * sizeof (float));
  g_autofree float *z = g_new (float, (gsize) n * ds);
  gb_sae_preprocess (self->sae, x, n, NULL);
  gb_sae_encode (self->sae, z, x, n);
  for (guint t = 0; t < n; t++)
    gtk_flow_box_append (GTK_FLOW_BOX (self->text_tokens),
                         token_button (self, g_array_index (seq, gint32, t + 1), z + (gsize) t * ds));
}

static GtkWidget *
build_text_panel (GbFeaturesView *self)
{
  GtkWidget *expander = gtk_expander_new ("Features on this text");
  self->text_expander = expander;
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  self->text_entry = GTK_ENTRY (gtk_entry_new ());
  set_a11y_label (self->text_entry, "Text to show the features of");
  gtk_entry_set_placeholder_text (self->text_entry, "Paste a text and press Enter; click a token to see its strongest features");
  g_signal_connect_swapped (self->text_entry, "activate", G_CALLBACK (text_activate_cb), self);
  self->text_tokens = gtk_flow_box_new ();
  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (self->text_tokens), GTK_SELECTION_NONE);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (self->text_tokens), 40);
  /* Bounded, so a long text never squeezes the gallery. */
  GtkWidget *scroll = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (scroll), TRUE);
  gtk_scrolled_window_set_max_content_height (GTK_SCROLLED_WINDOW (scroll), 110);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroll), self->text_tokens);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->text_entry));
  gtk_box_append (GTK_BOX (box), scroll);
  gtk_expander_set_child (GTK_EXPANDER (expander), box);
  return expander;
}

/* ---- Actions ---- */

static void
chooser_response_cb (GtkNativeDialog *dialog,
                     int              response,
                     gpointer         data)
{
  GbFeaturesView *self = data;
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);
      if (path)
        gb_features_view_open (self, path, NULL);
    }
  g_clear_object (&self->chooser);
}

static void
open_clicked_cb (GbFeaturesView *self)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  g_clear_object (&self->chooser);
  self->chooser = gtk_file_chooser_native_new ("Open an SAE Folder", GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                               GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Open", "_Cancel");
  g_signal_connect (self->chooser, "response", G_CALLBACK (chooser_response_cb), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static void
open_bundled_cb (GbFeaturesView *self)
{
  g_autofree char *dir = gb_features_view_bundled_sae (self->model);
  if (dir)
    gb_features_view_open (self, dir, NULL);
}

static void
train_cb (GbFeaturesView *self)
{
  if (self->model)
    gb_features_view_show_train_dialog (self);
}

/* ---- Building the view ---- */

static GtkWidget *
build_toolbar (GbFeaturesView *self)
{
  GtkWidget *bar = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *open = gtk_button_new_with_label ("Open SAE…");
  GtkWidget *train = gtk_button_new_with_label ("Train…");
  const char *sorts[] = { "Frequency", "Max activation", "Label", "Index", NULL };

  g_signal_connect_swapped (open, "clicked", G_CALLBACK (open_clicked_cb), self);
  g_signal_connect_swapped (train, "clicked", G_CALLBACK (train_cb), self);
  self->search = GTK_SEARCH_ENTRY (gtk_search_entry_new ());
  set_a11y_label (self->search, "Search features by token");
  g_object_set (self->search, "placeholder-text", "Which features fire on… (e.g. zip, 40106, #12)", NULL);
  gtk_widget_set_hexpand (GTK_WIDGET (self->search), TRUE);
  g_signal_connect_swapped (self->search, "search-changed", G_CALLBACK (search_changed_cb), self);
  self->sort = GTK_DROP_DOWN (gtk_drop_down_new_from_strings (sorts));
  set_a11y_label (self->sort, "Sort features by");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->sort), "Sort by");
  g_signal_connect_swapped (self->sort, "notify::selected", G_CALLBACK (sort_changed_cb), self);
  self->hide_dead = GTK_CHECK_BUTTON (gtk_check_button_new_with_label ("Hide dead"));
  gtk_check_button_set_active (self->hide_dead, TRUE);
  g_signal_connect_swapped (self->hide_dead, "toggled", G_CALLBACK (refilter), self);
  self->count = GTK_LABEL (dim_label (""));
  gtk_box_append (GTK_BOX (bar), open);
  gtk_box_append (GTK_BOX (bar), train);
  gtk_box_append (GTK_BOX (bar), GTK_WIDGET (self->search));
  gtk_box_append (GTK_BOX (bar), GTK_WIDGET (self->sort));
  gtk_box_append (GTK_BOX (bar), GTK_WIDGET (self->hide_dead));
  gtk_box_append (GTK_BOX (bar), GTK_WIDGET (self->count));
  gtk_box_append (GTK_BOX (bar), build_export_menu (self));
  return bar;
}

static GtkWidget *
build_progress (GbFeaturesView *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  self->cancel_button = GTK_BUTTON (gtk_button_new_with_label ("Cancel"));

  self->progress = GTK_PROGRESS_BAR (gtk_progress_bar_new ());
  gtk_widget_set_hexpand (GTK_WIDGET (self->progress), TRUE);
  gtk_widget_set_valign (GTK_WIDGET (self->progress), GTK_ALIGN_CENTER);
  self->progress_label = GTK_LABEL (dim_label (""));
  gtk_label_set_ellipsize (self->progress_label, PANGO_ELLIPSIZE_END);
  g_signal_connect_swapped (self->cancel_button, "clicked", G_CALLBACK (cancel_clicked_cb), self);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->progress));
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->cancel_button));
  self->plot = gtk_drawing_area_new ();
  gtk_widget_set_size_request (self->plot, -1, 60);
  gtk_drawing_area_set_draw_func (GTK_DRAWING_AREA (self->plot), plot_draw_cb, self, NULL);
  gtk_box_append (GTK_BOX (box), row);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->progress_label));
  gtk_box_append (GTK_BOX (box), self->plot);
  self->progress_revealer = GTK_REVEALER (gtk_revealer_new ());
  gtk_revealer_set_child (self->progress_revealer, box);
  return GTK_WIDGET (self->progress_revealer);
}

static GtkWidget *
build_gallery (GbFeaturesView *self)
{
  GtkWidget *paned = gtk_paned_new (GTK_ORIENTATION_HORIZONTAL);
  GtkWidget *left = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();

  self->title = GTK_LABEL (gtk_label_new (""));
  gtk_label_set_xalign (self->title, 0);
  gtk_label_set_ellipsize (self->title, PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (GTK_WIDGET (self->title), "heading");
  self->metrics = GTK_LABEL (dim_label (""));
  gtk_label_set_wrap (self->metrics, TRUE);
  gtk_box_append (GTK_BOX (left), GTK_WIDGET (self->title));
  gtk_box_append (GTK_BOX (left), GTK_WIDGET (self->metrics));
  gtk_box_append (GTK_BOX (left), build_text_panel (self));

  self->store = g_list_store_new (GB_TYPE_FEATURE_ITEM);
  self->filter = gtk_custom_filter_new (filter_cb, self, NULL);
  self->sorter = gtk_custom_sorter_new (sort_cb, self, NULL);
  GtkFilterListModel *filtered = gtk_filter_list_model_new (G_LIST_MODEL (g_object_ref (self->store)),
                                                            GTK_FILTER (g_object_ref (self->filter)));
  GtkSortListModel *sorted = gtk_sort_list_model_new (G_LIST_MODEL (filtered), GTK_SORTER (g_object_ref (self->sorter)));
  self->selection = gtk_single_selection_new (G_LIST_MODEL (sorted));
  gtk_single_selection_set_autoselect (self->selection, FALSE);
  gtk_single_selection_set_can_unselect (self->selection, TRUE);
  g_signal_connect_swapped (self->selection, "notify::selected-item", G_CALLBACK (selection_changed_cb), self);
  g_signal_connect (factory, "setup", G_CALLBACK (card_setup_cb), self);
  g_signal_connect (factory, "bind", G_CALLBACK (card_bind_cb), self);
  self->grid = GTK_GRID_VIEW (gtk_grid_view_new (GTK_SELECTION_MODEL (g_object_ref (self->selection)), factory));
  gtk_grid_view_set_max_columns (self->grid, 6);
  gtk_grid_view_set_min_columns (self->grid, 1);
  gtk_widget_add_css_class (GTK_WIDGET (self->grid), "feature-grid");
  GtkWidget *scroll = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroll), GTK_WIDGET (self->grid));
  gtk_widget_set_vexpand (scroll, TRUE);
  gtk_box_append (GTK_BOX (left), scroll);

  self->detail = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_margin_start (self->detail, 12);
  gtk_widget_set_margin_end (self->detail, 12);
  gtk_widget_set_margin_top (self->detail, 6);
  gtk_widget_set_margin_bottom (self->detail, 12);
  self->detail_scroll = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (self->detail_scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (self->detail_scroll), self->detail);
  gtk_widget_set_size_request (self->detail_scroll, 380, -1);
  gtk_widget_set_visible (self->detail_scroll, FALSE);
  gtk_paned_set_start_child (GTK_PANED (paned), left);
  gtk_paned_set_end_child (GTK_PANED (paned), self->detail_scroll);
  gtk_paned_set_resize_end_child (GTK_PANED (paned), FALSE);
  gtk_paned_set_shrink_end_child (GTK_PANED (paned), FALSE);
  return paned;
}

static GtkWidget *
build_empty (GbFeaturesView *self)
{
  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  GtkWidget *open = gtk_button_new_with_label ("Open SAE…");
  GtkWidget *train = gtk_button_new_with_label ("Train…");

  self->open_bundled = gtk_button_new_with_label ("Open the Demo SAE");
  gtk_widget_add_css_class (self->open_bundled, "suggested-action");
  gtk_widget_add_css_class (self->open_bundled, "pill");
  gtk_widget_add_css_class (open, "pill");
  gtk_widget_add_css_class (train, "pill");
  g_signal_connect_swapped (self->open_bundled, "clicked", G_CALLBACK (open_bundled_cb), self);
  g_signal_connect_swapped (open, "clicked", G_CALLBACK (open_clicked_cb), self);
  g_signal_connect_swapped (train, "clicked", G_CALLBACK (train_cb), self);
  gtk_widget_set_halign (buttons, GTK_ALIGN_CENTER);
  gtk_box_append (GTK_BOX (buttons), self->open_bundled);
  gtk_box_append (GTK_BOX (buttons), open);
  gtk_box_append (GTK_BOX (buttons), train);
  self->empty = ADW_STATUS_PAGE (adw_status_page_new ());
  adw_status_page_set_icon_name (self->empty, "view-list-bullet-symbolic");
  adw_status_page_set_title (self->empty, "Sparse Autoencoder Features");
  adw_status_page_set_description (self->empty,
                                   "Train a sparse autoencoder on one layer's activations, or open one saved by SAELens, "
                                   "then browse its features: the snippets that activate each one most, and the tokens "
                                   "it promotes.");
  adw_status_page_set_child (self->empty, buttons);
  return GTK_WIDGET (self->empty);
}

/* ---- Overrides ---- */

static void
gb_features_view_dispose (GObject *object)
{
  GbFeaturesView *self = GB_FEATURES_VIEW (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  gb_drop_chooser (&self->chooser, self);
  g_clear_pointer (&self->box, gtk_widget_unparent);
  g_clear_object (&self->selection);
  g_clear_object (&self->filter);
  g_clear_object (&self->sorter);
  g_clear_object (&self->store);
  G_OBJECT_CLASS (gb_features_view_parent_class)->dispose (object);
}

static void
gb_features_view_finalize (GObject *object)
{
  GbFeaturesView *self = GB_FEATURES_VIEW (object);

  g_clear_pointer (&self->job, job_release);
  g_clear_pointer (&self->model, gb_model_unref);
  g_clear_pointer (&self->sae, gb_sae_free);
  g_clear_pointer (&self->analysis, gb_sae_analysis_free);
  g_free (self->corpus);
  g_free (self->search_text);
  G_OBJECT_CLASS (gb_features_view_parent_class)->finalize (object);
}

/* Leaving the window ends the job: the job holds the view, so dispose
 * would not run while one is alive. */
static void
gb_features_view_unroot (GtkWidget *widget)
{
  GbFeaturesView *self = GB_FEATURES_VIEW (widget);

  g_cancellable_cancel (self->cancellable);
  GTK_WIDGET_CLASS (gb_features_view_parent_class)->unroot (widget);
}

static void
gb_features_view_class_init (GbFeaturesViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = gb_features_view_dispose;
  widget_class->unroot = gb_features_view_unroot;
  object_class->finalize = gb_features_view_finalize;
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "featuresview");
  signals[SIGNAL_READY] = g_signal_new ("ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 0);
  signals[SIGNAL_FAILED] = g_signal_new ("failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
gb_features_view_init (GbFeaturesView *self)
{
  self->selected = -1;
  self->corpus = g_strdup (gb_features_view_default_corpus ());
  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  gtk_widget_set_margin_start (self->box, 12);
  gtk_widget_set_margin_end (self->box, 12);
  gtk_widget_set_margin_top (self->box, 8);
  gtk_widget_set_margin_bottom (self->box, 8);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));

  self->header = build_toolbar (self);
  gtk_box_append (GTK_BOX (self->box), self->header);
  gtk_box_append (GTK_BOX (self->box), build_progress (self));
  self->stack = gtk_stack_new ();
  gtk_widget_set_vexpand (self->stack, TRUE);
  gtk_stack_add_named (GTK_STACK (self->stack), build_empty (self), "empty");
  gtk_stack_add_named (GTK_STACK (self->stack), build_gallery (self), "gallery");
  gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "empty");
  gtk_box_append (GTK_BOX (self->box), self->stack);
  gtk_widget_set_visible (self->open_bundled, FALSE);
}

/* ---- Public API ---- */

GtkWidget *
gb_features_view_new (void)
{
  return g_object_new (GB_TYPE_FEATURES_VIEW, NULL);
}

void
gb_features_view_set_model (GbFeaturesView *self,
                            GbModel        *model)
{
  g_return_if_fail (GB_IS_FEATURES_VIEW (self));
  if (model == self->model)
    return;
  gb_features_view_cancel (self);
  g_clear_pointer (&self->model, gb_model_unref);
  self->model = model ? gb_model_ref (model) : NULL;
  /* An SAE belongs to one model. */
  g_list_store_remove_all (self->store);
  show_feature (self, NULL);
  g_clear_pointer (&self->sae, gb_sae_free);
  g_clear_pointer (&self->analysis, gb_sae_analysis_free);
  gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "empty");
  g_autofree char *bundled = gb_features_view_bundled_sae (model);
  gtk_widget_set_visible (self->open_bundled, bundled != NULL);
  gtk_widget_set_sensitive (self->header, model != NULL);
}

void
gb_features_view_open (GbFeaturesView *self,
                       const char     *sae_dir,
                       const char     *corpus)
{
  g_return_if_fail (GB_IS_FEATURES_VIEW (self));
  g_return_if_fail (sae_dir != NULL);
  if (self->model == NULL)
    {
      g_signal_emit (self, signals[SIGNAL_FAILED], 0, "No model is loaded");
      return;
    }
  if (corpus)
    {
      g_free (self->corpus);
      self->corpus = g_strdup (corpus);
    }
  JobData *d = g_new0 (JobData, 1);
  d->sae_dir = g_strdup (sae_dir);
  d->corpus = g_strdup (self->corpus);
  g_autofree char *name = g_path_get_basename (sae_dir);
  g_autofree char *msg = g_strdup_printf ("Opening %s…", name);
  start_job (self, d, msg);
}

void
gb_features_view_select (GbFeaturesView *self,
                         int             index)
{
  g_return_if_fail (GB_IS_FEATURES_VIEW (self));
  GListModel *m = G_LIST_MODEL (self->selection);
  for (guint i = 0; i < g_list_model_get_n_items (m); i++)
    {
      g_autoptr (GbFeatureItem) item = g_list_model_get_item (m, i);
      if ((int) item->feature->index == index)
        {
          gtk_single_selection_set_selected (self->selection, i);
          return;
        }
    }
  /* Hidden by the filter (a dead feature, say): its page all the same. */
  gtk_single_selection_set_selected (self->selection, GTK_INVALID_LIST_POSITION);
  if (self->analysis && index >= 0 && (guint) index < self->analysis->n_features)
    show_feature (self, &self->analysis->features[index]);
}

void
gb_features_view_search (GbFeaturesView *self,
                         const char     *text)
{
  g_return_if_fail (GB_IS_FEATURES_VIEW (self));
  gtk_editable_set_text (GTK_EDITABLE (self->search), text ? text : "");
  search_changed_cb (self);
}

void
gb_features_view_cancel (GbFeaturesView *self)
{
  g_return_if_fail (GB_IS_FEATURES_VIEW (self));
  g_cancellable_cancel (self->cancellable);
}

gboolean
gb_features_view_stop_training (GbFeaturesView *self)
{
  g_return_val_if_fail (GB_IS_FEATURES_VIEW (self), FALSE);
  if (self->job == NULL)
    return FALSE;
  g_mutex_lock (&self->job->lock);
  const gboolean training = self->job->training;
  g_mutex_unlock (&self->job->lock);
  if (training)
    g_cancellable_cancel (self->job->stop);
  return training;
}

void
gb_features_view_show_text (GbFeaturesView *self,
                            const char     *text)
{
  g_return_if_fail (GB_IS_FEATURES_VIEW (self));
  gtk_expander_set_expanded (GTK_EXPANDER (self->text_expander), TRUE);
  gtk_editable_set_text (GTK_EDITABLE (self->text_entry), text);
  text_activate_cb (self);
}

void
gb_features_view_train (GbFeaturesView        *self,
                        const GbSaeRunOptions *options,
                        const char            *corpus,
                        const char            *output_dir)
{
  g_return_if_fail (GB_IS_FEATURES_VIEW (self));
  g_return_if_fail (options != NULL && corpus != NULL && output_dir != NULL);
  if (self->model == NULL)
    {
      g_signal_emit (self, signals[SIGNAL_FAILED], 0, "No model is loaded");
      return;
    }
  JobData *d = g_new0 (JobData, 1);
  d->train = TRUE;
  d->run = *options;
  d->train_corpus = g_strdup (corpus);
  d->sae_dir = g_strdup (output_dir);
  d->run.corpus_path = d->train_corpus;
  d->run.output_dir = d->sae_dir;
  d->run.heldout_path = NULL;
  d->corpus = g_strdup (self->corpus);
  start_job (self, d, "Collecting activations…");
}
