/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <json-glib/json-glib.h>
#include <string.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-npy.h"
#include "gb-steer.h"

/* Contrastive pair sets: parsing (JSON and JSONL), checks, saving, hashing. */

static void
clear_pair (gpointer data)
{
  GbPair *p = data;
  g_clear_pointer (&p->positive, g_free);
  g_clear_pointer (&p->negative, g_free);
}

GbPairSet *
gb_pair_set_new (const char *name,
                 const char *description)
{
  GbPairSet *self = g_new0 (GbPairSet, 1);
  self->name = g_strdup (name ? name : "");
  self->description = g_strdup (description ? description : "");
  self->pairs = g_array_new (FALSE, FALSE, sizeof (GbPair));
  g_array_set_clear_func (self->pairs, clear_pair);
  return self;
}

void
gb_pair_set_free (GbPairSet *self)
{
  if (self == NULL)
    return;
  g_free (self->name);
  g_free (self->description);
  g_array_unref (self->pairs);
  g_free (self);
}

GbPairSet *
gb_pair_set_copy (const GbPairSet *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  GbPairSet *copy = gb_pair_set_new (self->name, self->description);
  for (guint i = 0; i < self->pairs->len; i++)
    {
      const GbPair *p = &g_array_index (self->pairs, GbPair, i);
      gb_pair_set_add (copy, p->positive, p->negative);
    }
  return copy;
}

void
gb_pair_set_add (GbPairSet  *self,
                 const char *positive,
                 const char *negative)
{
  g_return_if_fail (self != NULL);

  GbPair p = { g_strdup (positive ? positive : ""), g_strdup (negative ? negative : "") };
  g_array_append_val (self->pairs, p);
}

void
gb_pair_set_remove (GbPairSet *self,
                    guint      index)
{
  g_return_if_fail (self != NULL && index < self->pairs->len);
  g_array_remove_index (self->pairs, index);
}

guint
gb_pair_set_get_n_pairs (const GbPairSet *self)
{
  return self->pairs->len;
}

const GbPair *
gb_pair_set_get (const GbPairSet *self,
                 guint            index)
{
  g_return_val_if_fail (self != NULL && index < self->pairs->len, NULL);
  return &g_array_index (self->pairs, GbPair, index);
}

static gboolean
check_text (const char *text,
            const char *origin,
            guint       index,
            const char *side,
            GError    **error)
{
  gsize n = strlen (text);
  const char *end;

  if (n == 0 || strspn (text, " \t\r\n") == n)
    return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: pair %u: the %s text is empty", origin,
                        index + 1, side),
           FALSE;
  if (n > GB_PAIR_MAX_BYTES)
    return g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: pair %u: the %s text is %zu bytes, over the limit of %d",
                        origin, index + 1, side, n, GB_PAIR_MAX_BYTES),
           FALSE;
  if (!g_utf8_validate (text, (gssize) n, &end))
    return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA,
                        "%s: pair %u: the %s text is not valid UTF-8 (byte %zu)", origin, index + 1, side,
                        (gsize) (end - text)),
           FALSE;
  return TRUE;
}

gboolean
gb_pair_set_validate (const GbPairSet *self,
                      const char      *origin,
                      GError         **error)
{
  g_return_val_if_fail (self != NULL, FALSE);

  if (origin == NULL)
    origin = self->name && *self->name ? self->name : "pair set";
  if (self->pairs->len == 0)
    return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: the pair set has no pairs", origin), FALSE;
  for (guint i = 0; i < self->pairs->len; i++)
    {
      const GbPair *p = &g_array_index (self->pairs, GbPair, i);
      if (!check_text (p->positive, origin, i, "positive", error) ||
          !check_text (p->negative, origin, i, "negative", error))
        return FALSE;
    }
  return TRUE;
}

/* Reads one {"positive", "negative"} object; @where says "pair 3" or "line 3". */
static gboolean
read_pair (JsonNode   *node,
           GbPairSet  *set,
           const char *origin,
           const char *where,
           GError    **error)
{
  static const char *const keys[] = { "positive", "negative" };
  const char *text[2];

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: %s is not an object with \"positive\" and \"negative\"",
                        origin, where),
           FALSE;
  JsonObject *o = json_node_get_object (node);
  for (guint k = 0; k < 2; k++)
    {
      JsonNode *m = json_object_get_member (o, keys[k]);
      if (m == NULL)
        return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: %s has no \"%s\" text", origin, where, keys[k]),
               FALSE;
      if (!JSON_NODE_HOLDS_VALUE (m) || json_node_get_value_type (m) != G_TYPE_STRING)
        return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: %s: \"%s\" is not a string", origin, where, keys[k]),
               FALSE;
      text[k] = json_node_get_string (m);
    }
  gb_pair_set_add (set, text[0], text[1]);
  return TRUE;
}

static const char *
optional_string (JsonObject *o,
                 const char *key)
{
  JsonNode *m = json_object_get_member (o, key);
  if (m == NULL || !JSON_NODE_HOLDS_VALUE (m) || json_node_get_value_type (m) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (m);
}

static GbPairSet *
from_json_root (JsonNode   *root,
                const char *origin,
                GError    **error)
{
  g_autoptr (GbPairSet) set = NULL;
  JsonArray *pairs;

  if (JSON_NODE_HOLDS_ARRAY (root))
    {
      set = gb_pair_set_new (NULL, NULL);
      pairs = json_node_get_array (root);
    }
  else if (JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *o = json_node_get_object (root);
      JsonNode *m = json_object_get_member (o, "pairs");
      if (m == NULL && json_object_has_member (o, "positive"))
        {
          /* A JSONL file of one line. */
          set = gb_pair_set_new (NULL, NULL);
          return read_pair (root, set, origin, "line 1", error) ? g_steal_pointer (&set) : NULL;
        }
      if (m == NULL)
        return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: no \"pairs\" array", origin), NULL;
      if (!JSON_NODE_HOLDS_ARRAY (m))
        return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: \"pairs\" is not an array", origin), NULL;
      set = gb_pair_set_new (optional_string (o, "name"), optional_string (o, "description"));
      pairs = json_node_get_array (m);
    }
  else
    return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not a pair set (expected a JSON object)", origin), NULL;

  for (guint i = 0; i < json_array_get_length (pairs); i++)
    {
      g_autofree char *where = g_strdup_printf ("pair %u", i + 1);
      if (!read_pair (json_array_get_element (pairs, i), set, origin, where, error))
        return NULL;
    }
  return g_steal_pointer (&set);
}

static GbPairSet *
from_jsonl (const char *data,
            gsize       len,
            const char *origin,
            GError    **error)
{
  g_autoptr (GbPairSet) set = gb_pair_set_new (NULL, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  const char *p = data, *end = data + len;

  for (guint line = 1; p < end; line++)
    {
      const char *nl = memchr (p, '\n', (gsize) (end - p));
      const char *stop = nl ? nl : end;
      g_autofree char *text = g_strndup (p, (gsize) (stop - p));
      p = nl ? nl + 1 : end;
      if (*g_strstrip (text) == '\0')
        continue;
      g_autoptr (GError) local = NULL;
      if (!gb_json_parser_load (parser, text, -1, &local))
        return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: line %u is not JSON: %s", origin, line,
                            local->message),
               NULL;
      g_autofree char *where = g_strdup_printf ("line %u", line);
      if (!read_pair (json_parser_get_root (parser), set, origin, where, error))
        return NULL;
    }
  return g_steal_pointer (&set);
}

/* JSONL: a first line that is a whole JSON object, and more after it.
 * (json-glib would otherwise read the first object and ignore the rest.) */
static gboolean
looks_like_jsonl (const char *data,
                  gsize       len)
{
  const char *nl = memchr (data, '\n', len);
  if (nl == NULL)
    return FALSE;
  g_autofree char *first = g_strndup (data, (gsize) (nl - data));
  g_strstrip (first);
  if (strspn (nl, " \t\r\n") == len - (gsize) (nl - data))
    return FALSE;
  if (*first != '{')
    return FALSE;
  g_autoptr (JsonParser) parser = json_parser_new ();
  return gb_json_parser_load (parser, first, -1, NULL) &&
         JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser));
}

GbPairSet *
gb_pair_set_parse (const char *data,
                   gssize      len,
                   const char *origin,
                   GError    **error)
{
  g_autoptr (GbPairSet) set = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  const char *bad;

  g_return_val_if_fail (data != NULL, NULL);
  if (origin == NULL)
    origin = "pair set";
  gsize n = len < 0 ? strlen (data) : (gsize) len;
  if (memchr (data, '\0', n) != NULL)
    return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not a text file (it holds a NUL byte)", origin), NULL;
  /* From here the text is NUL-terminated (strspn and the JSONL reader rely
   * on it; @data with a length need not be). */
  g_autofree char *copy = g_strndup (data, n);
  data = copy;
  if (!g_utf8_validate (data, (gssize) n, &bad))
    return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: not valid UTF-8 (byte %zu)", origin,
                        (gsize) (bad - data)),
           NULL;
  if (strspn (data, " \t\r\n") == n)
    return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: the file is empty", origin), NULL;

  if (looks_like_jsonl (data, n))
    set = from_jsonl (data, n, origin, error);
  else if (gb_json_parser_load (parser, data, (gssize) n, &local))
    set = from_json_root (json_parser_get_root (parser), origin, error);
  else
    return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not JSON or JSONL: %s", origin, local->message), NULL;
  if (set == NULL || !gb_pair_set_validate (set, origin, error))
    return NULL;
  if (*set->name == '\0')
    {
      g_autofree char *base = g_path_get_basename (origin);
      char *dot = strrchr (base, '.');
      if (dot != NULL && dot != base)
        *dot = '\0';
      g_free (set->name);
      set->name = g_steal_pointer (&base);
    }
  return g_steal_pointer (&set);
}

GbPairSet *
gb_pair_set_load (const char *path,
                  GError    **error)
{
  g_autofree char *data = NULL;
  g_autoptr (GError) local = NULL;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);
  if (!g_file_get_contents (path, &data, &len, &local))
    return g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s", local->message), NULL;
  return gb_pair_set_parse (data, (gssize) len, path, error);
}

char *
gb_pair_set_to_json (const GbPairSet *self,
                     gsize           *len)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, self->name);
  json_builder_set_member_name (b, "description");
  json_builder_add_string_value (b, self->description);
  json_builder_set_member_name (b, "pairs");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->pairs->len; i++)
    {
      const GbPair *p = &g_array_index (self->pairs, GbPair, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "positive");
      json_builder_add_string_value (b, p->positive);
      json_builder_set_member_name (b, "negative");
      json_builder_add_string_value (b, p->negative);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  g_autofree char *json = json_generator_to_data (gen, NULL);
  char *out = g_strconcat (json, "\n", NULL);
  if (len != NULL)
    *len = strlen (out);
  return out;
}

gboolean
gb_pair_set_save (const GbPairSet *self,
                  const char      *path,
                  GError         **error)
{
  gsize len;

  g_return_val_if_fail (self != NULL && path != NULL, FALSE);
  if (!gb_pair_set_validate (self, path, error))
    return FALSE;
  g_autofree char *json = gb_pair_set_to_json (self, &len);
  return gb_file_write_atomic (path, json, len, TRUE, error);
}

char *
gb_pair_set_hash (const GbPairSet *self)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  static const guchar nul = 0;

  for (guint i = 0; i < self->pairs->len; i++)
    {
      const GbPair *p = &g_array_index (self->pairs, GbPair, i);
      g_checksum_update (sum, (const guchar *) p->positive, (gssize) strlen (p->positive));
      g_checksum_update (sum, &nul, 1);
      g_checksum_update (sum, (const guchar *) p->negative, (gssize) strlen (p->negative));
      g_checksum_update (sum, &nul, 1);
    }
  return g_strconcat ("sha256:", g_checksum_get_string (sum), NULL);
}
