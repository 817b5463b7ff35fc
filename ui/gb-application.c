/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-ui"

#include <glib/gi18n.h>

#include "gb-application.h"
#include "gb-build-config.h"
#include "gb-kernels.h"
#include "gb-parallel.h"
#include "gb-window.h"

struct _GbApplication
{
  AdwApplication parent_instance;

  /* Owned */
  char        *model_dir;
  GbAutomation automation;
  gboolean     automated;
};

G_DEFINE_FINAL_TYPE (GbApplication, gb_application, ADW_TYPE_APPLICATION)

static void
about_action (GSimpleAction *action,
              GVariant      *param,
              gpointer       user_data)
{
  GtkApplication *app = user_data;
  const char *developers[] = { _("The Glassbox authors"), NULL };

  adw_show_about_window (gtk_application_get_active_window (app),
                         "application-name", "Glassbox",
                         "application-icon", "org.glassbox.Glassbox",
                         "version", GB_VERSION,
                         "comments", _("See inside a transformer language model: what it attends to, which features "
                                       "it uses, and how to steer it."),
                         "translator-credits", _("translator-credits"),
                         "developers", developers,
                         "license-type", GTK_LICENSE_GPL_3_0,
                         "copyright", _("© The Glassbox authors"),
                         NULL);
}

static void
quit_action (GSimpleAction *action,
             GVariant      *param,
             gpointer       user_data)
{
  g_application_quit (G_APPLICATION (user_data));
}

/* Index options are strings: GApplication drops an integer option whose
 * value is 0, so --layer 0 would be ignored. */
static void
lookup_index (GVariantDict *options,
              const char   *name,
              int          *out)
{
  const char *text = NULL;
  gint64 v;

  if (g_variant_dict_lookup (options, name, "&s", &text) && g_ascii_string_to_signed (text, 10, 0, G_MAXINT, &v, NULL))
    *out = (int) v;
}

static int
gb_application_handle_local_options (GApplication *app,
                                     GVariantDict *options)
{
  GbApplication *self = GB_APPLICATION (app);
  GbAutomation *a = &self->automation;

  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("glassbox %s\n", GB_VERSION);
      return 0;
    }
  g_variant_dict_lookup (options, "model", "^ay", &self->model_dir);
  g_variant_dict_lookup (options, "text", "s", &a->text);
  lookup_index (options, "layer", &a->layer);
  lookup_index (options, "head", &a->head);
  g_variant_dict_lookup (options, "show", "s", &a->aggregation);
  g_variant_dict_lookup (options, "export", "^ay", &a->export_path);
  g_variant_dict_lookup (options, "scale", "d", &a->export_scale);
  g_variant_dict_lookup (options, "screenshot", "^ay", &a->screenshot);
  lookup_index (options, "pin-query", &a->pin_query);
  lookup_index (options, "pin-key", &a->pin_key);
  g_variant_dict_lookup (options, "frame-stats", "b", &a->frame_stats);
  g_variant_dict_lookup (options, "view", "s", &a->view);
  g_variant_dict_lookup (options, "steer-pairs", "^ay", &a->steer_pairs);
  g_variant_dict_lookup (options, "steer-layers", "s", &a->steer_layers);
  g_variant_dict_lookup (options, "steer-vector", "^ay", &a->steer_vector);
  g_variant_dict_lookup (options, "sae-field", "s", &a->sae_field);
  g_variant_dict_lookup (options, "steer-multiplier", "d", &a->steer_multiplier);
  g_variant_dict_lookup (options, "steer-prompt", "s", &a->steer_prompt);
  g_variant_dict_lookup (options, "steer-tokens", "i", &a->steer_tokens);
  g_variant_dict_lookup (options, "steer-wiggle", "b", &a->steer_wiggle);
  g_variant_dict_lookup (options, "steer-sweep-png", "^ay", &a->steer_sweep_png);
  g_variant_dict_lookup (options, "sae", "^ay", &a->sae);
  g_variant_dict_lookup (options, "sae-corpus", "^ay", &a->sae_corpus);
  g_variant_dict_lookup (options, "search", "s", &a->search);
  /* A string, since GApplication cannot tell an integer option's 0 from unset. */
  g_autofree char *feature = NULL;
  gint64 index;
  if (g_variant_dict_lookup (options, "feature", "s", &feature)
      && g_ascii_string_to_signed (feature, 10, 0, G_MAXINT, &index, NULL))
    a->feature = (int) index;
  g_variant_dict_lookup (options, "export-features", "^ay", &a->export_features);
  g_variant_dict_lookup (options, "features-text", "s", &a->features_text);
  g_variant_dict_lookup (options, "train-sae", "^ay", &a->train_sae);
  g_variant_dict_lookup (options, "train-tokens", "s", &a->train_tokens);
  g_variant_dict_lookup (options, "train-dialog", "b", &a->train_dialog);
  g_variant_dict_lookup (options, "application", "^ay", &a->application);
  g_variant_dict_lookup (options, "audit", "^ay", &a->audit);
  g_variant_dict_lookup (options, "report", "^ay", &a->report);
  self->automated = a->export_path != NULL || a->screenshot != NULL || a->export_features != NULL || a->report != NULL;
  return -1;
}

static void
gb_application_startup (GApplication *app)
{
  static const GActionEntry entries[] = {
    { "about", about_action },
    { "quit", quit_action },
  };
  static const struct
  {
    const char *action;
    const char *accels[3];
  } accels[] = {
    { "win.open", { "<Control>o", NULL } },
    { "win.export", { "<Control>e", NULL } },
    { "win.export-all", { "<Control><Shift>e", NULL } },
    { "win.zoom-in", { "<Control>plus", "<Control>equal", NULL } },
    { "win.zoom-out", { "<Control>minus", NULL } },
    { "win.zoom-fit", { "<Control>0", NULL } },
    { "win.zoom-actual", { "<Control>1", NULL } },
    { "win.show-help-overlay", { "F1", "<Control>question", NULL } },
    { "window.close", { "<Control>w", NULL } },
    { "app.quit", { "<Control>q", NULL } },
  };

  G_APPLICATION_CLASS (gb_application_parent_class)->startup (app);
  /* The window decodes one token at a time on worker threads, two at once in
   * the Steering view: one-row products gain nothing from OpenBLAS's own
   * threads, which spin on the cores the main loop needs. Measured on the
   * demo model, 2 busy cores: longest frame gap while both panes stream
   * 130-180 ms with 2 BLAS threads, 16-32 ms with 1. So the app leaves one
   * core to the main loop: one thread fewer than there are cores (1 here;
   * long prefills on a bigger laptop still use the rest). The environment
   * still decides when set (the engine then leaves the count alone). */
  if (g_getenv ("OPENBLAS_NUM_THREADS") == NULL && g_getenv ("GOTO_NUM_THREADS") == NULL &&
      g_getenv ("OMP_NUM_THREADS") == NULL)
    {
      const int n = MAX (1, (int) g_get_num_processors () - 1);
      g_autofree char *value = g_strdup_printf ("%d", n);
      g_setenv ("OPENBLAS_NUM_THREADS", value, TRUE);
      gb_blas_set_threads (n);
    }
  /* And the workers run at background priority, so the main loop keeps a
   * core's share when they fill both. */
  gb_set_background_workers (TRUE);
  g_action_map_add_action_entries (G_ACTION_MAP (app), entries, G_N_ELEMENTS (entries), app);
  for (guint i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), accels[i].action, accels[i].accels);
}

static void
gb_application_activate (GApplication *app)
{
  GbApplication *self = GB_APPLICATION (app);
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));

  if (window == NULL)
    {
      GbWindow *win = gb_window_new (ADW_APPLICATION (app));
      if (self->automated)
        gb_window_automate (win, &self->automation);
      gb_window_load_model (win, self->model_dir ? self->model_dir : gb_window_default_model_dir ());
      window = GTK_WINDOW (win);
    }
  gtk_window_present (window);
}

/* The folder a command-line argument or "Open With" file stands for: a
 * model folder itself, or the folder holding a weights file, config.json
 * or any other file of the model. */
static char *
model_folder_of (GFile *file)
{
  g_autofree char *path = g_file_get_path (file);

  if (path == NULL)
    return NULL;
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&path);
  return g_path_get_dirname (path);
}

static void
gb_application_open (GApplication *app,
                     GFile       **files,
                     int           n_files,
                     const char   *hint)
{
  GbApplication *self = GB_APPLICATION (app);

  /* One model per window: the first file wins, as with --model. */
  g_autofree char *dir = n_files > 0 ? model_folder_of (files[0]) : NULL;
  if (dir != NULL)
    {
      g_free (self->model_dir);
      self->model_dir = g_steal_pointer (&dir);
    }
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));
  if (window != NULL)
    {
      gb_window_load_model (GB_WINDOW (window), self->model_dir);
      gtk_window_present (window);
      return;
    }
  gb_application_activate (app);
}

static void
gb_application_finalize (GObject *object)
{
  GbApplication *self = GB_APPLICATION (object);

  g_free (self->model_dir);
  g_free (self->automation.text);
  g_free (self->automation.aggregation);
  g_free (self->automation.export_path);
  g_free (self->automation.screenshot);
  g_free (self->automation.view);
  g_free (self->automation.steer_pairs);
  g_free (self->automation.steer_layers);
  g_free (self->automation.steer_vector);
  g_free (self->automation.sae_field);
  g_free (self->automation.steer_prompt);
  g_free (self->automation.steer_sweep_png);
  g_free (self->automation.sae);
  g_free (self->automation.sae_corpus);
  g_free (self->automation.search);
  g_free (self->automation.export_features);
  g_free (self->automation.features_text);
  g_free (self->automation.train_sae);
  g_free (self->automation.train_tokens);
  g_free (self->automation.application);
  g_free (self->automation.audit);
  g_free (self->automation.report);
  G_OBJECT_CLASS (gb_application_parent_class)->finalize (object);
}

static void
gb_application_class_init (GbApplicationClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gb_application_finalize;
  G_APPLICATION_CLASS (klass)->handle_local_options = gb_application_handle_local_options;
  G_APPLICATION_CLASS (klass)->startup = gb_application_startup;
  G_APPLICATION_CLASS (klass)->activate = gb_application_activate;
  G_APPLICATION_CLASS (klass)->open = gb_application_open;
}

static void
gb_application_init (GbApplication *self)
{
  /* Unattended runs (tests, screenshots) are hidden options. */
  const GOptionEntry options[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, NULL, N_("Model folder to open"), N_("DIR") },
    { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Print the version and exit"), NULL },
    { "text", 't', G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Text to run", "TEXT" },
    { "layer", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Layer to show", "L" },
    { "head", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Head to show", "H" },
    { "show", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "head, mean, rollout or token", "KIND" },
    { "export", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Export the heatmap there, then quit", "FILE" },
    { "scale", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_DOUBLE, NULL, "PNG scale of --export", "PX" },
    { "screenshot", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Save a screenshot there, then quit", "FILE" },
    { "pin-query", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Pin the crosshair on this query", "I" },
    { "pin-key", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Pin the crosshair on this key", "J" },
    { "frame-stats", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, NULL, "Print the frame-clock gaps seen while the text ran", NULL },
    { "view", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Show this view: attention, features, steering (runs its demo) or explain", "VIEW" },
    { "steer-pairs", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Bundled pair set name or file", "PAIRS" },
    { "steer-layers", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Blocks to steer, e.g. 2,3", "A,B" },
    { "sae-field", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Explain view: SAE features over this field's tokens", "NAME" },
    { "steer-vector", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Explain view: steering vector (JSON or GGUF)", "VEC" },
    { "steer-multiplier", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_DOUBLE, NULL, "Steering multiplier", "M" },
    { "steer-prompt", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Prompt to continue", "TEXT" },
    { "steer-tokens", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, NULL, "Tokens per pane", "N" },
    { "steer-sweep-png", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Export the sweep as PNG there", "FILE" },
    { "steer-wiggle", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, NULL, "Then move the slider ten times quickly", NULL },
    { "sae", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "SAE folder to open in the Features view", "DIR" },
    { "sae-corpus", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Corpus for the SAE's features", "FILE" },
    { "search", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Search the feature gallery", "TEXT" },
    { "feature", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Show this feature's page", "N" },
    { "train-sae", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Train an SAE into this folder (Features view)", "DIR" },
    { "train-dialog", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, NULL, "Screenshot the Train dialog", NULL },
    { "train-tokens", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Its token budget", "N" },
    { "features-text", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, NULL, "Show the features on this text", "TEXT" },
    { "export-features", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Export the gallery (.html, .json) or the feature page (.png), then quit", "FILE" },
    { "application", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Explain view: application to explain", "FILE" },
    { "audit", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Explain view: records to audit", "FILE" },
    { "report", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL, "Explain view: write the PDF report there, then quit", "FILE" },
    { NULL }
  };

  self->automation.layer = self->automation.head = -1;
  self->automation.pin_query = self->automation.pin_key = -1;
  self->automation.feature = -1;
  self->automation.export_scale = 1;
  self->automation.steer_multiplier = 2;
  g_application_add_main_option_entries (G_APPLICATION (self), options);
  g_application_set_option_context_parameter_string (G_APPLICATION (self), _("[MODEL-FOLDER | FILE.safetensors]"));
  g_application_set_option_context_summary (G_APPLICATION (self),
                                            _("See inside a transformer language model: what it attends to, "
                                              "which features it uses, and how to steer it."));
}

GbApplication *
gb_application_new (void)
{
  return g_object_new (GB_TYPE_APPLICATION, "application-id", "org.glassbox.Glassbox", "flags",
                       G_APPLICATION_NON_UNIQUE | G_APPLICATION_HANDLES_OPEN, "resource-base-path", "/org/glassbox/Glassbox", NULL);
}

int
gb_application_get_exit_status (GbApplication *self)
{
  return GPOINTER_TO_INT (g_object_get_data (G_OBJECT (self), "gb-exit-status"));
}
