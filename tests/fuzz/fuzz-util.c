/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <glib/gstdio.h>
#include <stdlib.h>

#include "fuzz-util.h"

static char *dir;
static GHashTable *paths; /* name -> path */

/* Warnings, criticals and errors abort (SIGABRT, which libFuzzer catches and
 * saves the input for; g_error() alone would trap). Debug output is dropped. */
static void
log_handler (const char    *domain,
             GLogLevelFlags level,
             const char    *message,
             gpointer       user_data)
{
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      fprintf (stderr, "%s: %s\n", domain ? domain : "", message);
      abort ();
    }
}

static void
remove_dir (void)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (dir);
}

const char *
fuzz_dir (void)
{
  if (dir == NULL)
    {
      g_log_set_default_handler (log_handler, NULL);
      g_setenv ("OPENBLAS_NUM_THREADS", "1", FALSE);
      const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) && g_access ("/dev/shm", W_OK) == 0
                           ? "/dev/shm" : g_get_tmp_dir ();
      g_autofree char *templ = g_build_filename (base, "gb-fuzz-XXXXXX", NULL);
      dir = g_mkdtemp (g_steal_pointer (&templ));
      if (dir == NULL)
        g_error ("cannot make a folder under %s", base);
      paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      atexit (remove_dir);
    }
  return dir;
}

const char *
fuzz_write (const char   *name,
            const guint8 *data,
            gsize         len)
{
  g_autoptr (GError) error = NULL;
  const char *base = fuzz_dir ();
  char *path = g_hash_table_lookup (paths, name);

  if (path == NULL)
    {
      path = g_build_filename (base, name, NULL);
      g_hash_table_insert (paths, g_strdup (name), path);
    }
  if (!g_file_set_contents (path, (const char *) data, (gssize) len, &error))
    g_error ("%s", error->message);
  return path;
}
