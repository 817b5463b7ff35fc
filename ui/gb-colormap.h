/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

extern const guint8 gb_viridis_table[256][3];

/* The table entry for @t in [0, 1] (clamped; NaN maps to 0). */
static inline const guint8 *
gb_viridis (double t)
{
  int i = t > 0 ? (int) (t * 255.0 + 0.5) : 0;
  return gb_viridis_table[MIN (i, 255)];
}

G_END_DECLS
