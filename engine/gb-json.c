/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gb-error.h"
#include "gb-json.h"

/* Whether the digit at @data[@i] (outside a string) is the first digit of a
 * number's integer part, rather than within it, its fraction or exponent
 * (where JSON allows leading zeros: 1e-05). */
static gboolean
starts_integer_part (const char *data,
                     gsize       i)
{
  if (i == 0)
    return TRUE;
  char p = data[i - 1];
  if (g_ascii_isdigit (p) || p == '.' || p == 'e' || p == 'E' || p == '+')
    return FALSE;
  if (p == '-')
    return i < 2 || (data[i - 2] != 'e' && data[i - 2] != 'E');
  return TRUE;
}

gboolean
gb_json_plain_and_shallow (const char *data,
                           gsize       len,
                           guint       max_depth)
{
  gboolean in_string = FALSE;
  guint depth = 0;

  for (gsize i = 0; i < len; i++)
    {
      char c = data[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > max_depth)
            return FALSE;
        }
      else if (c == ']' || c == '}')
        depth = depth > 0 ? depth - 1 : 0;
      else if (c == '0' && i + 1 < len && g_ascii_isdigit (data[i + 1]) && starts_integer_part (data, i))
        return FALSE; /* json-glib reads 010 as octal 8; JSON forbids it */
      else if (c == '\0' || strchr (" \t\r\n:,+-.0123456789eEtrufalsn", c) == NULL)
        return FALSE;
    }
  return TRUE;
}

JsonNode *
gb_json_parse (const char *data,
               gsize       len,
               guint       max_depth,
               const char *path,
               GError    **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local = NULL;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (len <= G_MAXSSIZE, NULL);

  if (memchr (data, '\0', len) != NULL || !g_utf8_validate (data, (gssize) len, NULL))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not valid JSON: the text is not UTF-8", path);
      return NULL;
    }
  if (!gb_json_plain_and_shallow (data, len, max_depth))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: not valid JSON (it has a character JSON does not allow or a number with a leading zero, "
                   "or is nested deeper than %u levels)", path, max_depth);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not valid JSON: %s", path, local->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: empty, expected JSON", path);
      return NULL;
    }
  return json_node_ref (root);
}

JsonNode *
gb_json_load_file (const char *path,
                   gsize       max_bytes,
                   guint       max_depth,
                   GError    **error)
{
  g_autofree char *data = NULL;
  struct stat st;
  gsize got = 0;

  g_return_val_if_fail (path != NULL, NULL);

  /* O_NONBLOCK: opening a FIFO planted in a model folder must not hang
   * (it is then refused as not a regular file). */
  int fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, GB_ERROR, saved == ENOENT ? GB_ERROR_MISSING : GB_ERROR_IO, "%s: %s", path,
                   g_strerror (saved));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: not a regular file", path);
      close (fd);
      return NULL;
    }
  if ((guint64) st.st_size > max_bytes)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT,
                   "%s: %" G_GUINT64_FORMAT " bytes is more than the %" G_GSIZE_FORMAT " this kind of file may have", path,
                   (guint64) st.st_size, max_bytes);
      close (fd);
      return NULL;
    }
  /* One byte more than fstat said, to notice a file that grew meanwhile. */
  gsize cap = (gsize) st.st_size + 1;
  data = g_malloc (cap);
  while (got < cap)
    {
      gssize n = read (fd, data + got, cap - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: %s", path, g_strerror (saved));
          close (fd);
          return NULL;
        }
      if (n == 0)
        break;
      got += (gsize) n;
    }
  close (fd);
  if (got > max_bytes)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: grew past %" G_GSIZE_FORMAT " bytes while being read", path,
                   max_bytes);
      return NULL;
    }
  return gb_json_parse (data, got, max_depth, path, error);
}

gboolean
gb_json_parser_load (JsonParser *parser,
                     const char *data,
                     gssize      len,
                     GError    **error)
{
  const gsize n = len < 0 ? strlen (data) : (gsize) len;

  if (!gb_json_plain_and_shallow (data, n, GB_JSON_MAX_DEPTH))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "not plain JSON (it has a character JSON does not allow or a number with a leading zero, "
                   "or is nested deeper than %u levels)", GB_JSON_MAX_DEPTH);
      return FALSE;
    }
  return json_parser_load_from_data (parser, data, (gssize) n, error);
}

gboolean
gb_json_parser_load_file (JsonParser *parser,
                          const char *path,
                          GError    **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "not a regular file");
      return FALSE;
    }
  if (!g_file_get_contents (path, &data, &len, error))
    return FALSE;
  return gb_json_parser_load (parser, data, (gssize) len, error);
}

guint64
gb_json_count (double  value,
               guint64 max)
{
  if (!(value > 0))
    return 0;
  if (value >= (double) max)
    return max;
  return (guint64) value;
}
