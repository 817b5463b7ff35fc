/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox"

#include <glib/gi18n.h>
#include <locale.h>

#include "gb-application.h"
#include "gb-build-config.h"

int
main (int    argc,
      char **argv)
{
  g_autoptr (GbApplication) app = NULL;
  int status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, GB_LOCALE_DIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  app = gb_application_new ();
  status = g_application_run (G_APPLICATION (app), argc, argv);
  return status != 0 ? status : gb_application_get_exit_status (app);
}
