/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Internal helpers of the GPT-2 tokenizer: the byte-to-unicode alphabet,
 * the pre-tokenisation scanner and UTF-8 validation/repair. Not public API. */

/* The character classes GPT-2's pre-tokenisation pattern distinguishes. */
typedef enum
{
  GB_CHAR_OTHER,  /* [^\s\p{L}\p{N}] */
  GB_CHAR_LETTER, /* \p{L}: Lu Ll Lt Lm Lo */
  GB_CHAR_NUMBER, /* \p{N}: Nd Nl No */
  GB_CHAR_SPACE,  /* JavaScript's \s */
} GbCharClass;

GbCharClass gb_unicode_classify (gunichar c);

/* GPT-2's bytes_to_unicode(): every byte maps to a printable character, so
 * a byte string becomes a vocab.json string. */
gunichar gb_byte_to_unichar (guint8 byte);
/* The inverse; -1 when @c is not one of the 256 characters. */
int      gb_unichar_to_byte (gunichar c);
/* The byte of the @index-th entry (0..255) of bytes_to_unicode()'s order,
 * which is also the order of GPT-2's first 256 ids. */
guint8   gb_byte_at_rank (guint index);

/* Checks that @len bytes of @text are well-formed UTF-8 (U+0000 included).
 * On failure returns FALSE and sets @bad_offset to the first bad byte. */
gboolean gb_utf8_check (const char *text,
                        gsize       len,
                        gsize      *bad_offset);

/* Length in bytes of the pre-token that starts at @pos in @text (valid UTF-8,
 * @pos < @len), following
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with the leftmost-alternative semantics of a backtracking regex engine. */
gsize gb_pretoken_next (const char *text,
                        gsize       len,
                        gsize       pos);

/* Appends @len bytes of @data to @out, replacing each maximal ill-formed
 * subpart by U+FFFD (as the WHATWG decoder and Python's "replace" do).
 * Unless @final, an incomplete but so far well-formed sequence at the end is
 * left unconsumed. Returns the number of bytes consumed. */
gsize gb_utf8_append_repaired (GString      *out,
                               const guint8 *data,
                               gsize         len,
                               gboolean      final);

G_END_DECLS
