/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include "gb-build-config.h"
#include <errno.h>
#include <stdio.h>
#include "gb-error.h"
#include "gb-paths.h"

const char *
gb_data_dir (void)
{
  static gsize once;
  static char *dir;

  if (g_once_init_enter (&once))
    {
      const char *env = g_getenv ("GLASSBOX_DATA_DIR");
      if (env != NULL && *env != '\0')
        dir = g_strdup (env);
      else if (g_file_test (GB_DATA_DIR "/models", G_FILE_TEST_IS_DIR))
        dir = g_strdup (GB_DATA_DIR);
      else
        dir = g_strdup (GB_INSTALLED_DATA_DIR);
      g_once_init_leave (&once, 1);
    }
  return dir;
}

const char *
gb_demo_model_dir (void)
{
  static gsize once;
  static char *dir;

  if (g_once_init_enter (&once))
    {
      dir = g_build_filename (gb_data_dir (), "models", "loan-officer", NULL);
      g_once_init_leave (&once, 1);
    }
  return dir;
}

char *
gb_file_sha256 (const char *path,
                GError    **error)
{
  return gb_file_sha256_cancellable (path, NULL, error);
}

char *
gb_file_sha256_cancellable (const char   *path,
                            GCancellable *cancellable,
                            GError      **error)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  FILE *fp = fopen (path, "rb");

  if (fp == NULL)
    {
      int e = errno;
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: cannot read: %s", path, g_strerror (e));
      return NULL;
    }
  g_autofree guchar *buf = g_malloc (1 << 20);
  size_t n;
  while ((n = fread (buf, 1, 1 << 20, fp)) > 0)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          fclose (fp);
          return NULL;
        }
      g_checksum_update (sum, buf, n);
    }
  const gboolean failed = ferror (fp) != 0;
  fclose (fp);
  if (failed)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: read error", path);
      return NULL;
    }
  return g_strdup (g_checksum_get_string (sum));
}

int
gb_compare_string_ptrs (gconstpointer a,
                        gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}
