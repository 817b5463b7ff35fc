/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gb-application.h"
#include "gb-json.h"
#include "gb-error.h"

#define MAX_SCHEMA_BYTES (1 << 20)
#define MAX_APP_BYTES (1 << 20)
#define MAX_RECORDS_BYTES ((gsize) 256 << 20)
#define DEFAULT_MAX_RECORDS 100000
#define DEFAULT_MAX_STRING 200
#define MAX_LABEL_CHARS 40

/* ---- Schema ---- */

static void
field_spec_free (gpointer data)
{
  GbFieldSpec *spec = data;

  g_free (spec->name);
  g_free (spec->label);
  g_strfreev (spec->values);
  g_free (spec->neutral);
  g_free (spec);
}

void
gb_app_schema_free (GbAppSchema *schema)
{
  if (schema == NULL)
    return;
  g_free (schema->path);
  g_free (schema->name);
  g_free (schema->template_text);
  g_free (schema->suffix);
  g_free (schema->positive);
  g_free (schema->negative);
  g_free (schema->label_key);
  g_ptr_array_unref (schema->fields);
  g_free (schema);
}

const GbFieldSpec *
gb_app_schema_find (const GbAppSchema *schema,
                    const char        *name)
{
  for (guint i = 0; i < schema->fields->len; i++)
    {
      const GbFieldSpec *spec = g_ptr_array_index (schema->fields, i);
      if (g_ascii_strcasecmp (spec->name, name) == 0 || (spec->label && g_ascii_strcasecmp (spec->label, name) == 0))
        return spec;
    }
  return NULL;
}

static const char *
member_string (JsonObject *obj,
               const char *key,
               const char *fallback)
{
  JsonNode *node = json_object_get_member (obj, key);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return fallback;
  return json_node_get_string (node);
}

static gboolean
member_double (JsonObject *obj,
               const char *key,
               double     *out)
{
  JsonNode *node = json_object_get_member (obj, key);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  GType t = json_node_get_value_type (node);
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
    return FALSE;
  *out = json_node_get_double (node);
  return isfinite (*out);
}

static GbFieldSpec *
field_spec_parse (JsonNode   *node,
                  const char *where,
                  guint       index,
                  GError    **error)
{
  g_autoptr (GPtrArray) values = g_ptr_array_new_with_free_func (g_free);

  if (!JSON_NODE_HOLDS_OBJECT (node))
    goto bad;
  JsonObject *obj = json_node_get_object (node);
  const char *name = member_string (obj, "name", NULL);
  const char *type = member_string (obj, "type", "string");
  if (name == NULL || *name == '\0')
    goto bad;

  JsonNode *vn = json_object_get_member (obj, "values");
  if (vn != NULL && JSON_NODE_HOLDS_ARRAY (vn))
    {
      JsonArray *arr = json_node_get_array (vn);
      for (guint i = 0; i < json_array_get_length (arr); i++)
        {
          JsonNode *e = json_array_get_element (arr, i);
          if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
            goto bad;
          g_ptr_array_add (values, g_strdup (json_node_get_string (e)));
        }
    }

  GbFieldSpec *spec = g_new0 (GbFieldSpec, 1);
  spec->name = g_strdup (name);
  spec->label = g_strdup (member_string (obj, "label", NULL));
  if (g_str_equal (type, "integer") || g_str_equal (type, "money"))
    spec->type = GB_FIELD_INTEGER;
  else if (g_str_equal (type, "number"))
    spec->type = GB_FIELD_NUMBER;
  else if (g_str_equal (type, "enum"))
    spec->type = GB_FIELD_ENUM;
  else
    spec->type = GB_FIELD_STRING;
  spec->money = g_str_equal (type, "money");
  spec->min = spec->type == GB_FIELD_STRING || spec->type == GB_FIELD_ENUM ? 0 : -1e15;
  spec->max = spec->type == GB_FIELD_STRING || spec->type == GB_FIELD_ENUM ? DEFAULT_MAX_STRING : 1e15;
  member_double (obj, "min", &spec->min);
  member_double (obj, "max", &spec->max);
  spec->search_min = spec->min, spec->search_max = spec->max, spec->step = 0;
  member_double (obj, "search_min", &spec->search_min);
  member_double (obj, "search_max", &spec->search_max);
  member_double (obj, "step", &spec->step);
  spec->neutral = g_strdup (member_string (obj, "neutral", NULL));
  if (values->len > 0)
    {
      g_ptr_array_add (values, NULL);
      spec->values = (char **) g_ptr_array_steal (values, NULL);
    }
  if (spec->type == GB_FIELD_ENUM && spec->values == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: field “%s” is an enum without “values”", where, name);
      field_spec_free (spec);
      return NULL;
    }
  if (spec->min > spec->max || spec->search_min > spec->search_max || spec->step < 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: field “%s” has an empty range", where, name);
      field_spec_free (spec);
      return NULL;
    }
  return spec;

bad:
  g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: fields[%u] must be an object with a “name” and string “values”",
               where, index);
  return NULL;
}

GbAppSchema *
gb_app_schema_new_from_data (const char *json,
                             gssize      len,
                             const char *where,
                             GError    **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;

  if (!gb_json_parser_load (parser, json, len, &local))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not valid JSON: %s", where, local->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: a schema is a JSON object", where);
      return NULL;
    }
  JsonObject *obj = json_node_get_object (root);
  const char *tmpl = member_string (obj, "template", NULL);
  JsonNode *labels = json_object_get_member (obj, "labels");
  JsonNode *fields = json_object_get_member (obj, "fields");
  if (tmpl == NULL || labels == NULL || !JSON_NODE_HOLDS_OBJECT (labels) || fields == NULL
      || !JSON_NODE_HOLDS_ARRAY (fields))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: a schema needs “template”, “labels” and “fields”", where);
      return NULL;
    }
  JsonObject *lo = json_node_get_object (labels);
  const char *pos = member_string (lo, "positive", NULL), *neg = member_string (lo, "negative", NULL);
  if (pos == NULL || neg == NULL || *pos == '\0' || *neg == '\0' || g_str_equal (pos, neg))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: “labels” needs two different words, “positive” and “negative”",
                   where);
      return NULL;
    }

  g_autoptr (GbAppSchema) schema = g_new0 (GbAppSchema, 1);
  schema->fields = g_ptr_array_new_with_free_func (field_spec_free);
  schema->name = g_strdup (member_string (obj, "name", "application"));
  schema->template_text = g_strdup (tmpl);
  schema->suffix = g_strdup (member_string (obj, "suffix", "Decision:"));
  schema->positive = g_strdup (pos);
  schema->negative = g_strdup (neg);
  schema->label_key = g_strdup (member_string (obj, "label_key", "decision"));
  if (!g_str_has_suffix (tmpl, schema->suffix))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: the template must end with the suffix “%s”", where,
                   schema->suffix);
      return NULL;
    }
  JsonArray *arr = json_node_get_array (fields);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      GbFieldSpec *spec = field_spec_parse (json_array_get_element (arr, i), where, i, error);
      if (spec == NULL)
        return NULL;
      g_ptr_array_add (schema->fields, spec);
    }
  /* Every placeholder must name a field. */
  for (const char *p = strchr (tmpl, '{'); p != NULL; p = strchr (p + 1, '{'))
    {
      const char *close = strchr (p, '}');
      g_autofree char *name = close ? g_strndup (p + 1, close - p - 1) : g_strdup (p + 1);
      if (close == NULL || gb_app_schema_find (schema, name) == NULL)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: the template names an unknown field “%s”", where, name);
          return NULL;
        }
    }
  return g_steal_pointer (&schema);
}

static char *
read_file_checked (const char *path,
                   gsize       max,
                   gsize      *len,
                   GError    **error)
{
  g_autoptr (GError) local = NULL;
  char *data = NULL;

  if (!g_file_get_contents (path, &data, len, &local))
    {
      g_set_error (error, GB_ERROR, g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? GB_ERROR_MISSING : GB_ERROR_IO,
                   "%s: %s", path, local->message);
      return NULL;
    }
  const char *bad;
  if (*len > max)
    g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: %" G_GSIZE_FORMAT " bytes is over the limit of %" G_GSIZE_FORMAT,
                 path, *len, max);
  else if (!g_utf8_validate (data, *len, &bad))
    g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: invalid UTF-8 at byte %" G_GSIZE_FORMAT, path,
                 (gsize) (bad - data));
  else
    return data;
  g_free (data);
  return NULL;
}

GbAppSchema *
gb_app_schema_load (const char *path,
                    GError    **error)
{
  gsize len;
  g_autofree char *data = read_file_checked (path, MAX_SCHEMA_BYTES, &len, error);
  if (data == NULL)
    return NULL;
  GbAppSchema *schema = gb_app_schema_new_from_data (data, len, path, error);
  if (schema != NULL)
    schema->path = g_strdup (path);
  return schema;
}

/* ---- Values ---- */

char *
gb_field_format (const GbFieldSpec *spec,
                 const char        *value)
{
  if (spec == NULL || !spec->money)
    return g_strdup (value);
  gint64 v;
  if (!g_ascii_string_to_signed (value, 10, G_MININT64 / 2, G_MAXINT64 / 2, &v, NULL))
    return g_strdup (value);
  g_autofree char *digits = g_strdup_printf ("%" G_GINT64_FORMAT, v < 0 ? -v : v);
  GString *out = g_string_new (v < 0 ? "-$" : "$");
  gsize n = strlen (digits);
  for (gsize i = 0; i < n; i++)
    {
      if (i > 0 && (n - i) % 3 == 0)
        g_string_append_c (out, ',');
      g_string_append_c (out, digits[i]);
    }
  return g_string_free (out, FALSE);
}

static const char *
type_name (GbFieldType type)
{
  switch (type)
    {
    case GB_FIELD_INTEGER: return "an integer";
    case GB_FIELD_NUMBER: return "a number";
    case GB_FIELD_ENUM: return "one of its listed values";
    default: return "text";
    }
}

/* Checks @raw against @spec and returns its canonical text (integers
 * without "$" or ","). */
static char *
field_validate (const GbFieldSpec *spec,
                const char        *raw,
                const char        *where,
                GError           **error)
{
  g_autofree char *s = g_strstrip (g_strdup (raw));

  switch (spec->type)
    {
    case GB_FIELD_INTEGER:
    case GB_FIELD_NUMBER:
      {
        /* Accept what a form shows: "$52,000". */
        GString *clean = g_string_new (NULL);
        for (const char *p = s; *p; p++)
          if (*p != ',' && !(*p == '$' && spec->money))
            g_string_append_c (clean, *p);
        g_autofree char *c = g_string_free (clean, FALSE);
        char *end = NULL;
        double v = *c ? g_ascii_strtod (c, &end) : NAN;
        if (end == NULL || *end != '\0' || !isfinite (v) || (spec->type == GB_FIELD_INTEGER && v != floor (v)))
          {
            g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: field “%s” must be %s, got “%.40s”", where,
                         spec->name, type_name (spec->type), s);
            return NULL;
          }
        if (v < spec->min || v > spec->max)
          {
            g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: field “%s” = %.40s is outside %g..%g", where,
                         spec->name, s, spec->min, spec->max);
            return NULL;
          }
        if (spec->type == GB_FIELD_INTEGER)
          return g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) v);
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        return g_strdup (g_ascii_dtostr (buf, sizeof buf, v));
      }
    case GB_FIELD_ENUM:
      if (!g_strv_contains ((const char *const *) spec->values, s))
        {
          g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: field “%s” = “%.40s” is not one of its %u values",
                       where, spec->name, s, g_strv_length (spec->values));
          return NULL;
        }
      return g_steal_pointer (&s);
    default:
      if (*s == '\0' || (double) g_utf8_strlen (s, -1) > spec->max || strpbrk (s, "\n\r{}") != NULL)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA,
                       "%s: field “%s” must be one line of 1 to %g characters without braces", where, spec->name,
                       spec->max);
          return NULL;
        }
      return g_steal_pointer (&s);
    }
}

/* ---- Applications ---- */

static void
app_field_free (gpointer data)
{
  GbAppField *f = data;
  g_free (f->name);
  g_free (f->value);
  g_free (f);
}

static GbApplication *
app_new (void)
{
  GbApplication *app = g_new0 (GbApplication, 1);
  app->fields = g_ptr_array_new_with_free_func (app_field_free);
  app->attrs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return app;
}

void
gb_application_free (GbApplication *app)
{
  if (app == NULL)
    return;
  g_free (app->id);
  g_free (app->text);
  g_ptr_array_unref (app->fields);
  g_free (app->true_label);
  g_hash_table_unref (app->attrs);
  g_free (app);
}

static void
add_field (GbApplication     *app,
           const char        *name,
           const char        *value,
           gsize              start,
           gsize              end,
           const GbFieldSpec *spec)
{
  GbAppField *f = g_new0 (GbAppField, 1);
  f->name = g_strdup (name);
  f->value = g_strdup (value);
  f->start = start, f->end = end, f->spec = spec;
  g_ptr_array_add (app->fields, f);
}

GbApplication *
gb_application_copy (const GbApplication *app)
{
  GbApplication *copy = app_new ();
  copy->id = g_strdup (app->id);
  copy->text = g_strdup (app->text);
  copy->true_label = g_strdup (app->true_label);
  copy->from_fields = app->from_fields;
  for (guint i = 0; i < app->fields->len; i++)
    {
      const GbAppField *f = g_ptr_array_index (app->fields, i);
      add_field (copy, f->name, f->value, f->start, f->end, f->spec);
    }
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, app->attrs);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_hash_table_insert (copy->attrs, g_strdup (k), g_strdup (v));
  return copy;
}

static GbApplication *
render_fields (const GbAppSchema *schema,
               GHashTable        *fields,
               const char        *where,
               GError           **error)
{
  g_autoptr (GbApplication) app = app_new ();
  GString *text = g_string_new (NULL);
  const char *p = schema->template_text;

  app->from_fields = TRUE;
  while (*p)
    {
      const char *open = strchr (p, '{');
      if (open == NULL)
        {
          g_string_append (text, p);
          break;
        }
      g_string_append_len (text, p, open - p);
      const char *close = strchr (open, '}');
      g_autofree char *name = g_strndup (open + 1, close - open - 1);
      const GbFieldSpec *spec = gb_app_schema_find (schema, name);
      const char *raw = g_hash_table_lookup (fields, spec->name);
      if (raw == NULL)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: field “%s” is missing", where, spec->name);
          g_string_free (text, TRUE);
          return NULL;
        }
      g_autofree char *canon = field_validate (spec, raw, where, error);
      if (canon == NULL)
        {
          g_string_free (text, TRUE);
          return NULL;
        }
      g_autofree char *shown = gb_field_format (spec, canon);
      gsize start = text->len;
      g_string_append (text, shown);
      add_field (app, spec->name, shown, start, text->len, spec);
      g_hash_table_insert (app->attrs, g_strdup (spec->name), g_strdup (canon));
      p = close + 1;
    }
  app->text = g_string_free (text, FALSE);
  return g_steal_pointer (&app);
}

GbApplication *
gb_application_new_from_fields (const GbAppSchema *schema,
                                GHashTable        *fields,
                                GError           **error)
{
  g_return_val_if_fail (schema != NULL && fields != NULL, NULL);
  return render_fields (schema, fields, "application", error);
}

static char *
field_key_from_label (const char *label)
{
  GString *s = g_string_new (NULL);
  for (const char *p = label; *p; p++)
    g_string_append_c (s, g_ascii_isalnum (*p) ? g_ascii_tolower (*p) : '_');
  return g_string_free (s, FALSE);
}

static gboolean
overlaps (GbApplication *app,
          gsize          start,
          gsize          end)
{
  for (guint i = 0; i < app->fields->len; i++)
    {
      const GbAppField *f = g_ptr_array_index (app->fields, i);
      if (f->start < end && f->end > start)
        return TRUE;
    }
  return FALSE;
}

/* Free text without "Label: value" lines (a letter): the schema's listed
 * values found in it become those fields (so a zip code in a sentence can be
 * occluded and changed), and every sentence becomes a segment "sentence N". */
static void
find_prose_fields (const GbAppSchema *schema,
                   GbApplication     *app,
                   const char        *text)
{
  const gsize body = strlen (text) - strlen (schema->suffix);

  for (guint i = 0; i < schema->fields->len; i++)
    {
      const GbFieldSpec *spec = g_ptr_array_index (schema->fields, i);
      for (guint v = 0; spec->values && spec->values[v]; v++)
        {
          const gsize n = strlen (spec->values[v]);
          gboolean found = FALSE;
          for (const char *hit = text; n > 0 && !found && (hit = g_strstr_len (hit, body - (hit - text), spec->values[v]));
               hit++)
            {
              const gsize start = hit - text, end = start + n;
              if ((start > 0 && g_ascii_isalnum (text[start - 1])) || g_ascii_isalnum (text[end]) || overlaps (app, start, end))
                continue;
              add_field (app, spec->name, spec->values[v], start, end, spec);
              g_hash_table_insert (app->attrs, g_strdup (spec->name), g_strdup (spec->values[v]));
              found = TRUE;
            }
          if (found)
            break;
        }
    }
  guint n = 0;
  gsize at = 0;
  while (at < body)
    {
      gsize end = at;
      while (end < body && text[end] != '\n' && !(text[end] == '.' && (end + 1 >= body || text[end + 1] == ' ' || text[end + 1] == '\n')))
        end++;
      if (end < body && text[end] == '.')
        end++;
      gsize s0 = at, s1 = end;
      while (s0 < s1 && g_ascii_isspace (text[s0]))
        s0++;
      while (s1 > s0 && g_ascii_isspace (text[s1 - 1]))
        s1--;
      if (s1 > s0 && memchr (text + s0, ' ', s1 - s0) != NULL)
        {
          g_autofree char *name = g_strdup_printf ("sentence %u", ++n);
          g_autofree char *value = g_strndup (text + s0, s1 - s0);
          add_field (app, name, value, s0, s1, NULL);
        }
      at = end + 1;
    }
}

static GbApplication *
parse_text (const GbAppSchema *schema,
            const char        *input,
            const char        *where,
            GError           **error)
{
  g_autoptr (GbApplication) app = app_new ();
  g_autofree char *text = NULL;
  const char *cut = g_strrstr (input, schema->suffix);

  if (!g_utf8_validate (input, -1, NULL))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: the text is not valid UTF-8", where);
      return NULL;
    }
  if (cut != NULL)
    text = g_strndup (input, cut - input + strlen (schema->suffix));
  else
    {
      g_autofree char *body = g_strdup (input);
      g_strchomp (body);
      text = *body ? g_strconcat (body, "\n", schema->suffix, NULL) : NULL;
    }
  g_autofree char *stripped = text ? g_strstrip (g_strdup (text)) : NULL;
  if (stripped == NULL || g_str_equal (stripped, schema->suffix))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: the application is empty", where);
      return NULL;
    }

  /* "Label: value" lines become fields. */
  gsize line = 0, n = strlen (text);
  while (line < n)
    {
      const char *nl = memchr (text + line, '\n', n - line);
      gsize end = nl ? (gsize) (nl - text) : n;
      const char *colon = g_strstr_len (text + line, end - line, ": ");
      if (colon != NULL)
        {
          g_autofree char *label = g_strndup (text + line, colon - (text + line));
          g_strstrip (label);
          gsize vs = colon + 2 - text, ve = end;
          while (vs < ve && text[vs] == ' ')
            vs++;
          while (ve > vs && (text[ve - 1] == ' ' || text[ve - 1] == '\r'))
            ve--;
          glong chars = g_utf8_strlen (label, -1);
          if (chars >= 1 && chars <= MAX_LABEL_CHARS && ve > vs)
            {
              const GbFieldSpec *spec = gb_app_schema_find (schema, label);
              g_autofree char *key = spec ? g_strdup (spec->name) : field_key_from_label (label);
              g_autofree char *value = g_strndup (text + vs, ve - vs);
              if (gb_application_find_field (app, key) < 0)
                {
                  add_field (app, key, value, vs, ve, spec);
                  g_hash_table_insert (app->attrs, g_strdup (key), g_strdup (value));
                }
            }
        }
      line = end + 1;
    }
  if (app->fields->len == 0)
    find_prose_fields (schema, app, text);
  app->text = g_steal_pointer (&text);
  return g_steal_pointer (&app);
}

GbApplication *
gb_application_new_from_text (const GbAppSchema *schema,
                              const char        *text,
                              GError           **error)
{
  g_return_val_if_fail (schema != NULL && text != NULL, NULL);
  return parse_text (schema, text, "application", error);
}

/* A JSON scalar as text; NULL (with an error naming @key) otherwise. */
static char *
scalar_text (JsonNode   *node,
             const char *where,
             const char *key,
             GError    **error)
{
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node))
    {
      GType t = json_node_get_value_type (node);
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      if (t == G_TYPE_STRING)
        return g_strdup (json_node_get_string (node));
      if (t == G_TYPE_INT64)
        return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
      if (t == G_TYPE_DOUBLE)
        return g_strdup (g_ascii_dtostr (buf, sizeof buf, json_node_get_double (node)));
      if (t == G_TYPE_BOOLEAN)
        return g_strdup (json_node_get_boolean (node) ? "true" : "false");
    }
  const char *what = node == NULL || JSON_NODE_HOLDS_NULL (node) ? "null"
                     : JSON_NODE_HOLDS_ARRAY (node)              ? "an array"
                                                                 : "an object";
  g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: field “%s” must be a number or text, got %s", where, key, what);
  return NULL;
}

static void
set_true_label (GbApplication     *app,
                const GbAppSchema *schema)
{
  const char *v = g_hash_table_lookup (app->attrs, schema->label_key);
  if (v == NULL)
    return;
  g_autofree char *want = g_strstrip (g_ascii_strdown (v, -1));
  g_autofree char *pos = g_strstrip (g_ascii_strdown (schema->positive, -1));
  g_autofree char *neg = g_strstrip (g_ascii_strdown (schema->negative, -1));
  if (g_str_equal (want, pos) || g_str_equal (want, "true") || g_str_equal (want, "1"))
    app->true_label = g_strdup ("positive");
  else if (g_str_equal (want, neg) || g_str_equal (want, "false") || g_str_equal (want, "0"))
    app->true_label = g_strdup ("negative");
}

static GbApplication *
app_from_object (const GbAppSchema *schema,
                 JsonObject        *obj,
                 const char        *where,
                 GError           **error)
{
  g_autoptr (GHashTable) attrs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GbApplication) app = NULL;
  JsonNode *fields = json_object_get_member (obj, "fields");
  g_autoptr (GList) members = json_object_get_members (obj);

  for (GList *l = members; l; l = l->next)
    {
      JsonNode *node = json_object_get_member (obj, l->data);
      if (JSON_NODE_HOLDS_VALUE (node))
        g_hash_table_insert (attrs, g_strdup (l->data), scalar_text (node, where, l->data, NULL));
    }
  if (fields != NULL)
    {
      if (!JSON_NODE_HOLDS_OBJECT (fields))
        {
          g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: “fields” must be an object", where);
          return NULL;
        }
      obj = json_node_get_object (fields);
    }
  /* Fields, when any of the schema's are there; else the text. */
  gboolean any = FALSE;
  for (guint i = 0; i < schema->fields->len && !any; i++)
    any = json_object_has_member (obj, ((GbFieldSpec *) g_ptr_array_index (schema->fields, i))->name);
  if (any || fields != NULL)
    {
      g_autoptr (GHashTable) values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      for (guint i = 0; i < schema->fields->len; i++)
        {
          const char *name = ((GbFieldSpec *) g_ptr_array_index (schema->fields, i))->name;
          if (!json_object_has_member (obj, name))
            continue;
          char *v = scalar_text (json_object_get_member (obj, name), where, name, error);
          if (v == NULL)
            return NULL;
          g_hash_table_insert (values, g_strdup (name), v);
        }
      app = render_fields (schema, values, where, error);
    }
  else
    {
      const char *text = g_hash_table_lookup (attrs, "prompt");
      text = text ? text : g_hash_table_lookup (attrs, "text");
      if (text == NULL)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: a record needs “fields”, the schema's fields, “prompt” or “text”",
                       where);
          return NULL;
        }
      app = parse_text (schema, text, where, error);
    }
  if (app == NULL)
    return NULL;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, attrs);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (v != NULL && !g_hash_table_contains (app->attrs, k))
      g_hash_table_insert (app->attrs, g_strdup (k), g_strdup (v));
  app->id = g_strdup (g_hash_table_lookup (attrs, "id"));
  set_true_label (app, schema);
  return g_steal_pointer (&app);
}

GbApplication *
gb_application_new_from_json (const GbAppSchema *schema,
                              const char        *json,
                              gssize             len,
                              const char        *where,
                              GError           **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;

  if (!gb_json_parser_load (parser, json, len, &local))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not valid JSON: %s", where, local->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: an application is a JSON object", where);
      return NULL;
    }
  return app_from_object (schema, json_node_get_object (root), where, error);
}

/* ---- CSV ---- */

GPtrArray *
gb_csv_parse (const char *data,
              gsize       len,
              const char *where,
              GError    **error)
{
  g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  g_autoptr (GPtrArray) row = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) cell = g_string_new (NULL);
  guint line = 1, quote_line = 0;
  gboolean quoted = FALSE, after_quote = FALSE, row_started = FALSE;

  for (gsize i = 0; i <= len; i++)
    {
      char c = i < len ? data[i] : '\n';
      if (quoted)
        {
          if (i == len)
            {
              g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s:%u: a quoted cell is never closed", where, quote_line);
              return NULL;
            }
          if (c == '"' && i + 1 < len && data[i + 1] == '"')
            g_string_append_c (cell, '"'), i++;
          else if (c == '"')
            quoted = FALSE, after_quote = TRUE;
          else
            {
              line += c == '\n';
              g_string_append_c (cell, c);
            }
          continue;
        }
      if (c == '"' && cell->len == 0 && !after_quote)
        {
          quoted = TRUE, quote_line = line, row_started = TRUE;
          continue;
        }
      if (c == ',' || c == '\n')
        {
          if (c == '\n' && !row_started && cell->len == 0)
            {
              line++;
              continue; /* blank line */
            }
          if (cell->len > 0 && cell->str[cell->len - 1] == '\r' && c == '\n')
            g_string_truncate (cell, cell->len - 1);
          g_ptr_array_add (row, g_strdup (cell->str));
          g_string_truncate (cell, 0);
          after_quote = FALSE;
          row_started = c == ',';
          if (c == '\n')
            {
              g_ptr_array_add (row, NULL);
              g_ptr_array_add (rows, g_ptr_array_steal (row, NULL));
              line++;
            }
          continue;
        }
      if (after_quote && c != '\r')
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s:%u: text after a closing quote", where, line);
          return NULL;
        }
      g_string_append_c (cell, c);
      row_started = TRUE;
    }
  return g_steal_pointer (&rows);
}

static GbApplication *
app_from_csv_row (const GbAppSchema *schema,
                  char             **header,
                  char             **row,
                  const char        *where,
                  GError           **error)
{
  g_autoptr (JsonObject) obj = json_object_new ();
  for (guint i = 0; header[i] != NULL; i++)
    json_object_set_string_member (obj, header[i], row[i]);
  return app_from_object (schema, obj, where, error);
}

static gboolean
csv_check (GPtrArray  *rows,
           const char *path,
           GError    **error)
{
  if (rows->len < 2)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: a CSV needs a header row and at least one record", path);
      return FALSE;
    }
  guint width = g_strv_length (g_ptr_array_index (rows, 0));
  for (guint r = 1; r < rows->len; r++)
    if (g_strv_length (g_ptr_array_index (rows, r)) != width)
      {
        g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: row %u has %u cells, the header %u", path, r + 1,
                     g_strv_length (g_ptr_array_index (rows, r)), width);
        return FALSE;
      }
  return TRUE;
}

GbApplication *
gb_application_load (const GbAppSchema *schema,
                     const char        *path,
                     GError           **error)
{
  gsize len;
  g_autofree char *data = read_file_checked (path, MAX_APP_BYTES, &len, error);
  if (data == NULL)
    return NULL;
  g_autofree char *stripped = g_strstrip (g_strdup (data));
  if (*stripped == '\0')
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: the application is empty", path);
      return NULL;
    }
  if (g_str_has_suffix (path, ".json"))
    return gb_application_new_from_json (schema, data, len, path, error);
  if (g_str_has_suffix (path, ".jsonl"))
    {
      const char *nl = strchr (stripped, '\n');
      g_autofree char *where = g_strdup_printf ("%s:1", path);
      return gb_application_new_from_json (schema, stripped, nl ? nl - stripped : -1, where, error);
    }
  if (g_str_has_suffix (path, ".csv"))
    {
      g_autoptr (GPtrArray) rows = gb_csv_parse (data, len, path, error);
      if (rows == NULL || !csv_check (rows, path, error))
        return NULL;
      g_autofree char *where = g_strdup_printf ("%s row 2", path);
      return app_from_csv_row (schema, g_ptr_array_index (rows, 0), g_ptr_array_index (rows, 1), where, error);
    }
  return parse_text (schema, data, path, error);
}

GPtrArray *
gb_application_load_all (const GbAppSchema *schema,
                         const char        *path,
                         guint              max_records,
                         GError           **error)
{
  gsize len;
  g_autofree char *data = read_file_checked (path, MAX_RECORDS_BYTES, &len, error);
  g_autoptr (GPtrArray) apps = g_ptr_array_new_with_free_func ((GDestroyNotify) gb_application_free);

  if (data == NULL)
    return NULL;
  max_records = max_records ? max_records : DEFAULT_MAX_RECORDS;
  if (g_str_has_suffix (path, ".csv"))
    {
      g_autoptr (GPtrArray) rows = gb_csv_parse (data, len, path, error);
      if (rows == NULL || !csv_check (rows, path, error))
        return NULL;
      for (guint r = 1; r < rows->len; r++)
        {
          g_autofree char *where = g_strdup_printf ("%s row %u", path, r + 1);
          if (apps->len >= max_records)
            goto too_many;
          GbApplication *app = app_from_csv_row (schema, g_ptr_array_index (rows, 0), g_ptr_array_index (rows, r), where, error);
          if (app == NULL)
            return NULL;
          g_ptr_array_add (apps, app);
        }
    }
  else
    {
      g_auto (GStrv) lines = g_strsplit (data, "\n", -1);
      for (guint i = 0; lines[i] != NULL; i++)
        {
          g_strstrip (lines[i]);
          if (*lines[i] == '\0')
            continue;
          if (apps->len >= max_records)
            goto too_many;
          g_autofree char *where = g_strdup_printf ("%s:%u", path, i + 1);
          GbApplication *app = gb_application_new_from_json (schema, lines[i], -1, where, error);
          if (app == NULL)
            return NULL;
          g_ptr_array_add (apps, app);
        }
    }
  if (apps->len == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: no records", path);
      return NULL;
    }
  return g_steal_pointer (&apps);

too_many:
  g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: more than %u records", path, max_records);
  return NULL;
}

/* ---- Edits ---- */

int
gb_application_find_field (const GbApplication *app,
                           const char          *name)
{
  for (guint i = 0; i < app->fields->len; i++)
    if (g_str_equal (((GbAppField *) g_ptr_array_index (app->fields, i))->name, name))
      return (int) i;
  return -1;
}

/* Replaces bytes [start, end) of the text by @with and moves the spans. */
static GbApplication *
splice (const GbApplication *app,
        guint                index,
        gsize                start,
        gsize                end,
        const char          *with,
        const char          *value)
{
  GbApplication *copy = gb_application_copy (app);
  gsize n = strlen (with);
  gssize delta = (gssize) n - (gssize) (end - start);
  g_autofree char *old = copy->text;

  GString *s = g_string_new_len (old, start);
  g_string_append (s, with);
  g_string_append (s, old + end);
  copy->text = g_string_free (s, FALSE);
  for (guint i = 0; i < copy->fields->len; i++)
    {
      GbAppField *f = g_ptr_array_index (copy->fields, i);
      if (i == index)
        {
          g_free (f->value);
          f->value = g_strdup (value);
          f->start = start;
          f->end = start + n;
        }
      else if (f->start >= end)
        f->start += delta, f->end += delta;
    }
  return copy;
}

GbApplication *
gb_application_with_value (const GbApplication *app,
                           guint                index,
                           const char          *value)
{
  g_return_val_if_fail (index < app->fields->len, NULL);
  const GbAppField *f = g_ptr_array_index (app->fields, index);
  return splice (app, index, f->start, f->end, value, value);
}

GbApplication *
gb_application_without_field (const GbApplication *app,
                              guint                index)
{
  g_return_val_if_fail (index < app->fields->len, NULL);
  const GbAppField *f = g_ptr_array_index (app->fields, index);
  gsize ls = f->start, le = f->end;

  while (ls > 0 && app->text[ls - 1] != '\n')
    ls--;
  while (app->text[le] != '\0' && app->text[le] != '\n')
    le++;
  if (app->text[le] == '\n')
    le++;
  for (guint i = 0; i < app->fields->len; i++)
    {
      const GbAppField *g = g_ptr_array_index (app->fields, i);
      if (i != index && g->start < le && g->end > ls)
        return splice (app, index, f->start, f->end, "", "");
    }
  /* The suffix line is never removed. */
  if (g_strstr_len (app->text + ls, le - ls, "\n") == NULL)
    return splice (app, index, f->start, f->end, "", "");
  GbApplication *copy = splice (app, index, ls, le, "", "");
  GbAppField *cf = g_ptr_array_index (copy->fields, index);
  cf->start = cf->end = ls;
  return copy;
}

const char *
gb_application_get_attr (const GbApplication *app,
                         const char          *key)
{
  const char *v = g_hash_table_lookup (app->attrs, key);
  if (v != NULL)
    return v;
  int i = gb_application_find_field (app, key);
  return i >= 0 ? ((GbAppField *) g_ptr_array_index (app->fields, i))->value : NULL;
}
