/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glassbox-engine.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define GB_TYPE_STEERING_VIEW (gb_steering_view_get_type ())
G_DECLARE_FINAL_TYPE (GbSteeringView, gb_steering_view, GB, STEERING_VIEW, GtkWidget)

/* The Steering page: a pair editor, training on a worker thread, the
 * per-block separation chart to choose blocks, and baseline and steered
 * continuations streamed side by side, plus a multiplier sweep. */
GtkWidget *gb_steering_view_new (void);
/* Borrows a reference; NULL clears. Cancels whatever runs. */
void       gb_steering_view_set_model (GbSteeringView *self,
                                       GbModel        *model);

/* Shows the bundled pair set @name ("zip-neutral-loans"); FALSE when there
 * is none. */
gboolean   gb_steering_view_select_pairs (GbSteeringView *self,
                                          const char     *name);

/* Unattended run for tests and screenshots: load the bundled set @pairs
 * (a name such as "sentiment", or a file), train, steer @blocks (0 = the
 * best-separating block) at @multiplier, generate @n_tokens from @prompt in
 * both panes; with @wiggle, then move the slider ten times quickly and wait
 * for the one steered run that should follow. Lines starting "steering:"
 * go to stderr; @done runs with 0 on success. */
typedef struct
{
  const char *pairs;
  guint64     blocks;
  double      multiplier;
  const char *prompt;
  guint       n_tokens;
  gboolean    wiggle;
  const char *sweep_png; /* export the sweep there (may be NULL) */
} GbSteeringDemo;

void gb_steering_view_run_demo (GbSteeringView       *self,
                                const GbSteeringDemo *demo,
                                void (*done) (int status, gpointer data),
                                gpointer              data);

/* Steered generations whose worker is still alive (tests). */
guint gb_steering_view_get_n_steered_alive (void);

G_END_DECLS
