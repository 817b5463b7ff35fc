/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define GB_TYPE_SEPARATION_CHART (gb_separation_chart_get_type ())
G_DECLARE_FINAL_TYPE (GbSeparationChart, gb_separation_chart, GB, SEPARATION_CHART, GtkWidget)

/* One bar per block: its held-out separation (accuracy as the bar, effect
 * size as the label); a click toggles the block in the selection, which
 * emits "selection-changed". Blocks without scores (n = 0, or NaN) draw
 * as empty slots. */
GtkWidget *gb_separation_chart_new (void);
void       gb_separation_chart_set_scores (GbSeparationChart *self,
                                           guint              n_blocks,
                                           const double      *accuracy,
                                           const double      *effect);
void       gb_separation_chart_set_selection (GbSeparationChart *self,
                                              guint64            mask);
guint64    gb_separation_chart_get_selection (GbSeparationChart *self);

G_END_DECLS
