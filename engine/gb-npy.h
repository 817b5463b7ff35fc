/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Writes a little-endian float32 NumPy .npy file atomically. */
gboolean gb_npy_write_f32 (const char   *path,
                           const float  *data,
                           const gint64 *shape,
                           guint         n_dims,
                           GError      **error);

/* Writes @len bytes to @path atomically: temporary file in the same folder,
 * fsync, rename. An existing file is replaced only if @overwrite. */
gboolean gb_file_write_atomic (const char *path,
                               const void *data,
                               gsize       len,
                               gboolean    overwrite,
                               GError    **error);

/* A file being written: a temporary name in the target's folder until
 * gb_atomic_file_commit() fsyncs and renames it into place. Freeing an
 * uncommitted file removes the temporary, so a failed save leaves the old
 * file untouched. */
typedef struct _GbAtomicFile GbAtomicFile;

GbAtomicFile *gb_atomic_file_new (const char *path,
                                  gboolean    overwrite,
                                  GError    **error);
gboolean      gb_atomic_file_write (GbAtomicFile *self,
                                    const void   *data,
                                    gsize         len,
                                    GError      **error);
gboolean      gb_atomic_file_commit (GbAtomicFile *self,
                                     GError      **error);
void          gb_atomic_file_free (GbAtomicFile *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbAtomicFile, gb_atomic_file_free)

G_END_DECLS
