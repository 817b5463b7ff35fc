/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "gb-error.h"
#include "gb-npy.h"

struct _GbAtomicFile
{
  char    *path;
  char    *tmp_path;
  int      fd;
  gboolean overwrite;
  gboolean committed;
};

static gboolean
set_errno_error (GError    **error,
                 const char *path,
                 const char *what,
                 int         saved_errno)
{
  g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: %s: %s", path, what, g_strerror (saved_errno));
  return FALSE;
}

GbAtomicFile *
gb_atomic_file_new (const char *path,
                    gboolean    overwrite,
                    GError    **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  if (!overwrite && g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: file exists (not overwriting it)", path);
      return NULL;
    }

  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmpl = g_strdup_printf ("%s/.%s.XXXXXX", dir, base);
  int fd = g_mkstemp_full (tmpl, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      set_errno_error (error, path, "cannot create a temporary file", errno);
      return NULL;
    }

  GbAtomicFile *self = g_new0 (GbAtomicFile, 1);
  self->path = g_strdup (path);
  self->tmp_path = g_steal_pointer (&tmpl);
  self->fd = fd;
  self->overwrite = overwrite;
  return self;
}

gboolean
gb_atomic_file_write (GbAtomicFile *self,
                      const void   *data,
                      gsize         len,
                      GError      **error)
{
  const guint8 *p = data;

  g_return_val_if_fail (self != NULL && self->fd >= 0, FALSE);

  while (len > 0)
    {
      gssize n = write (self->fd, p, MIN (len, (gsize) 1 << 30));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return set_errno_error (error, self->path, "cannot write", n < 0 ? errno : ENOSPC);
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

gboolean
gb_atomic_file_commit (GbAtomicFile *self,
                       GError      **error)
{
  g_return_val_if_fail (self != NULL && self->fd >= 0, FALSE);

  if (fsync (self->fd) != 0)
    return set_errno_error (error, self->path, "cannot flush to disk", errno);
  int fd = self->fd;
  self->fd = -1;
  if (close (fd) != 0)
    return set_errno_error (error, self->path, "cannot close", errno);
  if (!self->overwrite && g_file_test (self->path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: file exists (not overwriting it)", self->path);
      return FALSE;
    }
  if (g_rename (self->tmp_path, self->path) != 0)
    return set_errno_error (error, self->path, "cannot rename into place", errno);
  self->committed = TRUE;
  return TRUE;
}

void
gb_atomic_file_free (GbAtomicFile *self)
{
  if (self == NULL)
    return;
  if (self->fd >= 0)
    close (self->fd);
  if (!self->committed)
    g_unlink (self->tmp_path);
  g_free (self->tmp_path);
  g_free (self->path);
  g_free (self);
}

gboolean
gb_file_write_atomic (const char *path,
                      const void *data,
                      gsize       len,
                      gboolean    overwrite,
                      GError    **error)
{
  g_autoptr (GbAtomicFile) file = gb_atomic_file_new (path, overwrite, error);

  return file != NULL && gb_atomic_file_write (file, data, len, error) &&
         gb_atomic_file_commit (file, error);
}

/* NPY format 1.0: magic, version, little-endian header length, a Python dict
 * literal padded with spaces to a multiple of 64 bytes, then the data. */
gboolean
gb_npy_write_f32 (const char   *path,
                  const float  *data,
                  const gint64 *shape,
                  guint         n_dims,
                  GError      **error)
{
  g_autoptr (GString) dict = g_string_new ("{'descr': '<f4', 'fortran_order': False, 'shape': (");
  gsize n = 1;

  g_return_val_if_fail (path != NULL && (data != NULL || n_dims > 0), FALSE);

  for (guint i = 0; i < n_dims; i++)
    {
      g_string_append_printf (dict, "%" G_GINT64_FORMAT "%s", shape[i],
                              (n_dims == 1 || i + 1 < n_dims) ? ", " : "");
      n *= (gsize) shape[i];
    }
  if (n_dims == 1)
    g_string_truncate (dict, dict->len - 1);
  g_string_append (dict, "), }");
  while ((10 + dict->len + 1) % 64 != 0)
    g_string_append_c (dict, ' ');
  g_string_append_c (dict, '\n');

  guint8 head[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0 };
  head[8] = dict->len & 0xff;
  head[9] = (dict->len >> 8) & 0xff;

  g_autoptr (GbAtomicFile) file = gb_atomic_file_new (path, TRUE, error);
  return file != NULL && gb_atomic_file_write (file, head, sizeof head, error) &&
         gb_atomic_file_write (file, dict->str, dict->len, error) &&
         gb_atomic_file_write (file, data, n * sizeof (float), error) &&
         gb_atomic_file_commit (file, error);
}
