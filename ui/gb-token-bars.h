/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define GB_TYPE_TOKEN_BARS (gb_token_bars_get_type ())
G_DECLARE_FINAL_TYPE (GbTokenBars, gb_token_bars, GB, TOKEN_BARS, GtkWidget)

/* "From this token": one query row as a bar per key token. Copies @weights
 * [n] and @labels; @query marks the attending token. */
void gb_token_bars_set_row (GbTokenBars       *self,
                            guint              n,
                            const float       *weights,
                            const char *const *labels,
                            guint              query,
                            const char        *caption);

G_END_DECLS
