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

/* Lets go of a file chooser that may still be on screen: its "response"
 * must not reach @owner once @owner is gone (the dialog can outlive the
 * reference dropped here while it is shown). */
static inline void
gb_drop_chooser (GtkFileChooserNative **chooser,
                 gpointer               owner)
{
  if (*chooser == NULL)
    return;
  g_signal_handlers_disconnect_by_data (*chooser, owner);
  gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (*chooser));
  g_clear_object (chooser);
}

G_END_DECLS
