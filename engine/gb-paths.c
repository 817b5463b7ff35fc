/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include "gb-build-config.h"
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
