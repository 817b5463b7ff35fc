/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "gb-npy.h"

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

/* @texture as a PNG at @path, atomically (a temporary file in the same
 * folder, fsynced and renamed): a failed save leaves no half-written file
 * and the old one untouched. Overwrites (the callers asked first). */
static inline gboolean
gb_texture_save_png (GdkTexture *texture,
                     const char *path,
                     GError    **error)
{
  g_autoptr (GBytes) png = gdk_texture_save_to_png_bytes (texture);
  gsize len = 0;
  const void *data = g_bytes_get_data (png, &len);
  g_autoptr (GbAtomicFile) file = gb_atomic_file_new (path, TRUE, error);
  return file != NULL && gb_atomic_file_write (file, data, len, error) && gb_atomic_file_commit (file, error);
}

G_END_DECLS
