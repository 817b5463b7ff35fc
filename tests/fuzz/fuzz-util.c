/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
remove_tree (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
remove_dir (void)
{
  remove_tree (dir);
}

/* libFuzzer ends a timed run with _exit(), which skips atexit(): folders
 * are named after their process, and those of processes gone are removed
 * when the next one starts. */
static void
remove_stale (const char *base)
{
  g_autoptr (GDir) d = g_dir_open (base, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      guint64 pid;
      if (!g_str_has_prefix (name, "gb-fuzz-") ||
          !g_ascii_string_to_unsigned (name + strlen ("gb-fuzz-"), 10, 1, G_MAXINT32, &pid, NULL))
        continue;
      g_autofree char *proc = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT, pid);
      if (!g_file_test (proc, G_FILE_TEST_EXISTS))
        {
          g_autofree char *path = g_build_filename (base, name, NULL);
          remove_tree (path);
        }
    }
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
      remove_stale (base);
      g_autofree char *name = g_strdup_printf ("gb-fuzz-%d", (int) getpid ());
      dir = g_build_filename (base, name, NULL);
      remove_tree (dir);  /* a recycled pid's */
      if (g_mkdir (dir, 0700) != 0)
        g_error ("cannot make %s: %s", dir, g_strerror (errno));
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
