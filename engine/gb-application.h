/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Applications for "Explain a decision": a schema (which fields an
 * application has, how they render as the text the model reads, which label
 * words answer it) and applications (a rendered text with the byte span of
 * every field's value, so evidence per token can be summed per field). */

typedef enum
{
  GB_FIELD_STRING,
  GB_FIELD_INTEGER,
  GB_FIELD_NUMBER,
  GB_FIELD_ENUM,
} GbFieldType;

typedef struct
{
  char        *name;
  char        *label;        /* for forms and text parsing ("Credit score") */
  GbFieldType  type;
  gboolean     money;        /* integer rendered "$52,000" */
  double       min, max;     /* accepted range (numbers); max length (strings) */
  /* Counterfactual search: numbers from search_min to search_max by step;
   * enums and strings over @values. */
  double       search_min, search_max, step;
  char       **values;       /* NULL-terminated, may be NULL */
  char        *neutral;      /* occlusion by a neutral value; NULL: remove */
} GbFieldSpec;

typedef struct
{
  char        *path;         /* where it was loaded from, or NULL */
  char        *name;
  char        *template_text; /* "...Credit score: {credit_score}\n...Decision:" */
  char        *suffix;       /* what every prompt ends with ("Decision:") */
  char        *positive;     /* label words, as the model continues the prompt */
  char        *negative;     /* (" approved", " rejected") */
  char        *label_key;    /* record key holding the true label ("decision") */
  GPtrArray   *fields;       /* GbFieldSpec*, in template order */
} GbAppSchema;

GbAppSchema       *gb_app_schema_load (const char *path,
                                       GError    **error);
GbAppSchema       *gb_app_schema_new_from_data (const char *json,
                                                gssize      len,
                                                const char *name_for_errors,
                                                GError    **error);
void               gb_app_schema_free (GbAppSchema *schema);
const GbFieldSpec *gb_app_schema_find (const GbAppSchema *schema,
                                       const char        *name);
/* @value (a number as text) as the template shows it ("$52,000" for money). */
char              *gb_field_format (const GbFieldSpec *spec,
                                    const char        *value);

/* One field of an application: its value as displayed, and where that text
 * lies in the application's text (bytes; start == end when it is empty). */
typedef struct
{
  char              *name;
  char              *value;
  gsize              start, end;
  const GbFieldSpec *spec;   /* borrowed from the schema; NULL when unknown */
} GbAppField;

typedef struct
{
  char        *id;           /* may be NULL */
  char        *text;         /* the prompt: ends with the schema's suffix */
  GPtrArray   *fields;       /* GbAppField* */
  char        *true_label;   /* "positive", "negative" or NULL (unknown) */
  GHashTable  *attrs;        /* every scalar of the record as a string: groups */
  gboolean     from_fields;  /* rendered from the template (else parsed text) */
} GbApplication;

void           gb_application_free (GbApplication *app);
GbApplication *gb_application_copy (const GbApplication *app);

/* Renders @fields (name -> value as text) through the template; every field
 * the template names must be present and valid for its spec. */
GbApplication *gb_application_new_from_fields (const GbAppSchema *schema,
                                               GHashTable        *fields,
                                               GError           **error);
/* Text as the model reads it; the suffix is appended when missing, and a
 * text that already holds its answer ("Decision: approved ...") is cut
 * after the last suffix. "Label: value" lines become fields. */
GbApplication *gb_application_new_from_text (const GbAppSchema *schema,
                                             const char        *text,
                                             GError           **error);
/* One record: a JSON object with "fields" (an object), "prompt" or "text",
 * or the fields at top level. @where names it in errors ("file.jsonl:3"). */
GbApplication *gb_application_new_from_json (const GbAppSchema *schema,
                                             const char        *json,
                                             gssize             len,
                                             const char        *where,
                                             GError           **error);
/* A file: .json (one record), .jsonl (the first), .csv (the first row) or
 * anything else as plain text. */
GbApplication *gb_application_load (const GbAppSchema *schema,
                                    const char        *path,
                                    GError           **error);
/* Every record of a .jsonl or .csv file (GbApplication*). Errors name the
 * file and line. At most @max_records (0: 100000). */
GPtrArray     *gb_application_load_all (const GbAppSchema *schema,
                                        const char        *path,
                                        guint              max_records,
                                        GError           **error);

int            gb_application_find_field (const GbApplication *app,
                                          const char          *name);
/* A copy with field @index set to @value (already formatted for display),
 * or removed: its whole line when the line holds nothing else, else its
 * value. */
GbApplication *gb_application_with_value (const GbApplication *app,
                                          guint                index,
                                          const char          *value);
GbApplication *gb_application_without_field (const GbApplication *app,
                                             guint                index);
/* A record attribute or a field's value (fields win); NULL when absent. */
const char    *gb_application_get_attr (const GbApplication *app,
                                        const char          *key);

/* RFC 4180 CSV: rows of cells (GPtrArray of GStrv). Errors name @where and
 * the line. */
GPtrArray     *gb_csv_parse (const char *data,
                             gsize       len,
                             const char *where,
                             GError    **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbAppSchema, gb_app_schema_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbApplication, gb_application_free)

G_END_DECLS
