/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "gb-heatmap.h"

G_BEGIN_DECLS

#define GB_TYPE_ATTENTION_GRID (gb_attention_grid_get_type ())
G_DECLARE_FINAL_TYPE (GbAttentionGrid, gb_attention_grid, GB, ATTENTION_GRID, GtkWidget)

/* Extra tooltip lines for cell (query, key), e.g. the other aggregations. */
typedef char *(*GbAttentionGridTooltipFunc) (guint    query,
                                             guint    key,
                                             gpointer user_data);

GtkWidget *gb_attention_grid_new (void);
/* Copies @weights [n, n] and @labels; resets the view to "fit". */
void       gb_attention_grid_set_data (GbAttentionGrid    *self,
                                       guint               n,
                                       const float        *weights,
                                       const char *const  *labels,
                                       const char         *description);
void       gb_attention_grid_clear (GbAttentionGrid *self);
GbNorm     gb_attention_grid_get_norm (GbAttentionGrid *self);
void       gb_attention_grid_set_norm (GbAttentionGrid *self,
                                       GbNorm           norm);
double     gb_attention_grid_get_zoom (GbAttentionGrid *self);
void       gb_attention_grid_zoom_at (GbAttentionGrid *self,
                                      double           factor,
                                      double           x,
                                      double           y);
void       gb_attention_grid_fit (GbAttentionGrid *self);
void       gb_attention_grid_actual_size (GbAttentionGrid *self);
/* The pinned cell, or FALSE when none. */
gboolean   gb_attention_grid_get_pinned (GbAttentionGrid *self,
                                         guint           *query,
                                         guint           *key);
void       gb_attention_grid_set_pinned (GbAttentionGrid *self,
                                         int              query,
                                         int              key);
void       gb_attention_grid_set_tooltip_func (GbAttentionGrid           *self,
                                               GbAttentionGridTooltipFunc func,
                                               gpointer                   user_data);

G_END_DECLS
