/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Nesting deeper than this is refused before json-glib sees the text: json-glib
 * 1.6 recurses once per level and overflows the stack on deep input (a
 * "[[[[...]]]]" config.json or safetensors header crashed the loader). No
 * file Glassbox reads needs more than a handful of levels. */
#define GB_JSON_MAX_DEPTH 64

/* TRUE when @data (@len bytes) holds only what strict JSON allows outside
 * strings (json-glib also takes 'single-quoted' strings and comments, where
 * a quote would throw the count off), has no number with a leading zero
 * (json-glib reads 010 as octal 8, where every other reader refuses it) and
 * never nests deeper than @max_depth. */
gboolean gb_json_plain_and_shallow (const char *data,
                                    gsize       len,
                                    guint       max_depth);

/* Parses @len bytes of @data from the file @path (named in errors) after
 * checking that the text is UTF-8 without NUL bytes, plain and at most
 * @max_depth deep. Returns the root node (a new reference) or NULL with a
 * GB_ERROR_FORMAT error naming @path. */
JsonNode *gb_json_parse (const char *data,
                         gsize       len,
                         guint       max_depth,
                         const char *path,
                         GError    **error);

/* Reads the regular file @path (at most @max_bytes, else GB_ERROR_LIMIT)
 * and parses it as gb_json_parse() does. */
JsonNode *gb_json_load_file (const char *path,
                             gsize       max_bytes,
                             guint       max_depth,
                             GError    **error);

/* json_parser_load_from_data() behind the same depth guard: @len bytes (-1:
 * up to the NUL), refused with a GB_ERROR_FORMAT error ("nested deeper than
 * 64 levels, or not plain JSON") before json-glib recurses. For parsers
 * that report json-glib's own messages. */
gboolean gb_json_parser_load (JsonParser *parser,
                              const char *data,
                              gssize      len,
                              GError    **error);

/* The same for a regular file (never a FIFO or device). */
gboolean gb_json_parser_load_file (JsonParser *parser,
                                   const char *path,
                                   GError    **error);

/* A JSON number read as a count: NaN and negatives give 0, anything at or
 * past @max gives @max (a plain cast of 1e51 to an integer is undefined). */
guint64 gb_json_count (double  value,
                       guint64 max);

G_END_DECLS
