/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* The accessible name of a control that shows no text of its own (an entry,
 * a drop-down, an icon button). */
static inline void
set_a11y_label (gpointer    widget,
                const char *label)
{
  gtk_accessible_update_property (GTK_ACCESSIBLE (widget), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
}

G_END_DECLS
