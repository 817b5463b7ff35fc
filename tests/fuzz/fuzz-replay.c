/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Runs a fuzz target over files and folders of files (the seed corpus and
 * every crash found so far), for builds without libFuzzer: this is how the
 * normal and ASan test suites replay them. */
#include <stdio.h>

#include "fuzz-util.h"

static guint n_run;

static void
run_file (const char *path)
{
  g_autofree char *data = NULL;
  g_autoptr (GError) error = NULL;
  gsize len;

  if (!g_file_get_contents (path, &data, &len, &error))
    g_error ("%s", error->message);
  /* A copy of exactly @len bytes, so ASan sees any read past the end. */
  g_autofree guint8 *copy = g_memdup2 (data, len);
  LLVMFuzzerTestOneInput (copy, len);
  n_run++;
}

static void
run_path (const char *path)
{
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      run_file (path);
      return;
    }
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, gb_compare_string_ptrs);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *child = g_build_filename (path, names->pdata[i], NULL);
      run_path (child);
    }
}

int
main (int    argc,
      char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
      return 2;
    }
  fuzz_dir ();
  for (int i = 1; i < argc; i++)
    run_path (argv[i]);
  g_autofree char *self = g_path_get_basename (argv[0]);
  printf ("%s: %u inputs, no crash\n", self, n_run);
  return n_run > 0 ? 0 : 1;
}
