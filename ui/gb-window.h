/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define GB_TYPE_WINDOW (gb_window_get_type ())
G_DECLARE_FINAL_TYPE (GbWindow, gb_window, GB, WINDOW, AdwApplicationWindow)

/* What the hidden command-line options ask a window to do unattended: run
 * @text, show (@layer, @head), export the heatmap and/or save a screenshot,
 * then quit. Used by the UI tests and to make the README's screenshots. */
typedef struct
{
  char  *text;
  int    layer, head;
  char  *aggregation;  /* "head", "mean", "rollout", "token" */
  char  *export_path;
  double export_scale;
  char  *screenshot;
  int    pin_query, pin_key;
  gboolean frame_stats; /* print frame-clock gaps seen while the text ran */
  /* --view steering: train on @steer_pairs, steer @steer_layers ("" = the
   * best block) at @steer_multiplier, generate from @steer_prompt. */
  char  *view;
  char  *steer_pairs;
  char  *steer_layers;
  double steer_multiplier;
  char  *steer_prompt;
  int    steer_tokens;
  gboolean steer_wiggle;
  char  *steer_sweep_png;
  /* The Features view: show it, open @sae on @sae_corpus, then search and
   * select @feature (-1: none) before the screenshot. */
  /* (view: "attention" (default), "features", "steering", "explain") */
  char  *sae;
  char  *sae_corpus;
  char  *search;
  int    feature;
  char  *export_features;  /* .html, .json (gallery) or .png (feature page) */
  char  *features_text;    /* "Features on this text" */
  char  *train_sae;        /* train an SAE into this folder (on @sae_corpus) instead of opening @sae */
  char  *train_tokens;     /* its budget */
  gboolean train_dialog;   /* screenshot the Train dialog instead of the window */
  char  *application;  /* explain view: the application to explain */
  char  *audit;        /* explain view: records to audit */
  char  *report;       /* explain view: write the PDF report there */
  char  *sae_field;    /* explain view: SAE features over this field's tokens */
  char  *steer_vector; /* explain view: steer with this vector file (or train on @steer_pairs) */
} GbAutomation;

/* The model the window opens first: $GLASSBOX_MODEL, else the bundled one. */
const char *gb_window_default_model_dir (void);

GbWindow *gb_window_new (AdwApplication *app);
/* Loads a model folder on a worker thread; on failure a toast shows the
 * engine's error and the current model stays. */
void      gb_window_load_model (GbWindow   *self,
                                const char *dir);
/* Borrows @automation for the window's lifetime. */
void      gb_window_automate (GbWindow           *self,
                              const GbAutomation *automation);

G_END_DECLS
