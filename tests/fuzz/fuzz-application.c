/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A hostile application record, as JSON and as CSV, against the bundled loan
 * schema: a refusal names the source; an accepted application's fields lie
 * inside its text. */
#include <string.h>

#include "fuzz-util.h"

static GbAppSchema *
schema (void)
{
  static GbAppSchema *s;
  if (s == NULL)
    {
      g_autofree char *path = g_build_filename (gb_data_dir (), "applications", "loan-schema.json", NULL);
      g_autoptr (GError) error = NULL;
      s = gb_app_schema_load (path, &error);
      if (s == NULL)
        g_error ("%s", error->message);
    }
  return s;
}

static void
check (const GbApplication *app)
{
  const gsize n = strlen (app->text);
  FUZZ_CHECK (g_utf8_validate (app->text, -1, NULL), "the text is UTF-8");
  for (guint i = 0; i < app->fields->len; i++)
    {
      const GbAppField *f = app->fields->pdata[i];
      FUZZ_CHECK (f->start <= f->end && f->end <= n, "a field's span lies in the text");
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GbApplication) app = gb_application_new_from_json (schema (), (const char *) data, (gssize) size,
                                                                "record.json", &error);
  if (app != NULL)
    check (app);
  else
    FUZZ_CHECK (error != NULL && error->domain == GB_ERROR && strstr (error->message, "record.json") != NULL,
                "a refused record names its source");
  g_clear_error (&error);

  const char *csv = fuzz_write ("records.csv", data, size);
  g_autoptr (GPtrArray) all = gb_application_load_all (schema (), csv, 50, &error);
  if (all != NULL)
    for (guint i = 0; i < all->len; i++)
      check (all->pdata[i]);
  else
    FUZZ_CHECK (error != NULL && error->domain == GB_ERROR && strstr (error->message, "records.csv") != NULL,
                "a refused file names itself");
  return 0;
}
