/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include "gb-unicode.h"

#include <string.h>

typedef enum
{
  SEQ_OK,         /* a complete, well-formed sequence */
  SEQ_BAD,        /* ill-formed; the length is that of its maximal subpart */
  SEQ_INCOMPLETE, /* well-formed so far, cut short by the end of the data */
} SeqStatus;

/* Bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF stand for themselves; the 68
 * others are shifted, in byte order, to U+0100..U+0143. */
gunichar
gb_byte_to_unichar (guint8 byte)
{
  if (byte <= 0x20)
    return 0x100 + byte;
  if (byte >= 0x7F && byte <= 0xA0)
    return 0x100 + 33 + (byte - 0x7F);
  if (byte == 0xAD)
    return 0x100 + 67;
  return byte;
}

int
gb_unichar_to_byte (gunichar c)
{
  if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))
    return (int) c;
  if (c >= 0x100 && c <= 0x120)
    return (int) (c - 0x100);
  if (c >= 0x121 && c <= 0x142)
    return (int) (c - 0x121 + 0x7F);
  if (c == 0x143)
    return 0xAD;
  return -1;
}

/* bytes_to_unicode() lists the printable bytes first, then the rest. */
guint8
gb_byte_at_rank (guint index)
{
  g_return_val_if_fail (index < 256, 0);

  if (index < 94)
    return 0x21 + index;
  if (index < 106)
    return 0xA1 + (index - 94);
  if (index < 188)
    return 0xAE + (index - 106);
  if (index < 221)
    return index - 188;
  if (index < 255)
    return 0x7F + (index - 221);
  return 0xAD;
}

GbCharClass
gb_unicode_classify (gunichar c)
{
  if (c < 0x80)
    {
      if ((guint) ((c | 0x20) - 'a') < 26)
        return GB_CHAR_LETTER;
      if ((guint) (c - '0') < 10)
        return GB_CHAR_NUMBER;
      if (c == ' ' || (guint) (c - '\t') < 5)
        return GB_CHAR_SPACE;
      return GB_CHAR_OTHER;
    }

  /* JavaScript's \s: the Zs characters plus U+FEFF and U+2028/U+2029 (not
   * U+0085, which is a control there). */
  if (c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029
      || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF)
    return GB_CHAR_SPACE;

  switch (g_unichar_type (c))
    {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return GB_CHAR_LETTER;
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return GB_CHAR_NUMBER;
    default:
      return GB_CHAR_OTHER;
    }
}

/* Unicode 15.0, table 3-7 (well-formed UTF-8 byte sequences). */
static SeqStatus
utf8_sequence (const guint8 *p,
               gsize         avail,
               gsize        *length)
{
  guint8 lead = p[0];
  guint8 lo = 0x80, hi = 0xBF;
  gsize need;

  if (lead < 0x80)
    need = 1;
  else if (lead >= 0xC2 && lead <= 0xDF)
    need = 2;
  else if (lead >= 0xE0 && lead <= 0xEF)
    {
      need = 3;
      if (lead == 0xE0)
        lo = 0xA0;
      else if (lead == 0xED)
        hi = 0x9F;
    }
  else if (lead >= 0xF0 && lead <= 0xF4)
    {
      need = 4;
      if (lead == 0xF0)
        lo = 0x90;
      else if (lead == 0xF4)
        hi = 0x8F;
    }
  else
    {
      *length = 1;
      return SEQ_BAD;
    }

  for (gsize i = 1; i < need; i++)
    {
      if (i >= avail)
        {
          *length = avail;
          return SEQ_INCOMPLETE;
        }
      if (p[i] < lo || p[i] > hi)
        {
          *length = i;
          return SEQ_BAD;
        }
      lo = 0x80;
      hi = 0xBF;
    }

  *length = need;
  return SEQ_OK;
}

gboolean
gb_utf8_check (const char *text,
               gsize       len,
               gsize      *bad_offset)
{
  const guint8 *p = (const guint8 *) text;
  gsize i = 0;

  while (i < len)
    {
      gsize n;

      if (p[i] < 0x80)
        {
          i++;
          continue;
        }
      if (utf8_sequence (p + i, len - i, &n) != SEQ_OK)
        {
          if (bad_offset != NULL)
            *bad_offset = i;
          return FALSE;
        }
      i += n;
    }

  return TRUE;
}

gsize
gb_utf8_append_repaired (GString      *out,
                         const guint8 *data,
                         gsize         len,
                         gboolean      final)
{
  gsize i = 0;

  while (i < len)
    {
      gsize n;

      switch (utf8_sequence (data + i, len - i, &n))
        {
        case SEQ_OK:
          g_string_append_len (out, (const char *) data + i, n);
          break;
        case SEQ_INCOMPLETE:
          if (!final)
            return i;
          G_GNUC_FALLTHROUGH;
        case SEQ_BAD:
          g_string_append (out, "\xEF\xBF\xBD");
          break;
        default:
          g_assert_not_reached ();
        }
      i += n;
    }

  return i;
}

/* @pos < @len; @text is valid UTF-8. */
static inline gunichar
char_at (const char *text,
         gsize       pos,
         gsize      *n_bytes)
{
  guchar lead = (guchar) text[pos];

  if (lead < 0x80)
    {
      *n_bytes = 1;
      return lead;
    }
  *n_bytes = g_utf8_skip[lead];
  return g_utf8_get_char (text + pos);
}

/* End of the run of characters of class @cls that starts at @pos. */
static gsize
run_end (const char *text,
         gsize       len,
         gsize       pos,
         GbCharClass cls)
{
  while (pos < len)
    {
      gsize n;
      gunichar c = char_at (text, pos, &n);

      if (gb_unicode_classify (c) != cls)
        break;
      pos += n;
    }
  return pos;
}

/* 's 't 'm 'd 're 've 'll, case-sensitive: the length after the apostrophe,
 * or 0. */
static gsize
contraction_length (const char *rest,
                    gsize       avail)
{
  if (avail >= 1 && (rest[0] == 's' || rest[0] == 't' || rest[0] == 'm' || rest[0] == 'd'))
    return 1;
  if (avail >= 2
      && (memcmp (rest, "re", 2) == 0 || memcmp (rest, "ve", 2) == 0 || memcmp (rest, "ll", 2) == 0))
    return 2;
  return 0;
}

/* \s+(?!\S)|\s+ : the whole run when it ends the text; otherwise the run
 * less its last character (which then leads the next pre-token), unless the
 * run is a single character. */
static gsize
space_run_length (const char *text,
                  gsize       len,
                  gsize       pos)
{
  gsize end = pos, last = pos;
  guint n_chars = 0;

  while (end < len)
    {
      gsize n;
      gunichar c = char_at (text, end, &n);

      if (gb_unicode_classify (c) != GB_CHAR_SPACE)
        break;
      last = end;
      end += n;
      n_chars++;
    }

  if (end == len || n_chars == 1)
    return end - pos;
  return last - pos;
}

gsize
gb_pretoken_next (const char *text,
                  gsize       len,
                  gsize       pos)
{
  gsize n;
  gunichar c;
  GbCharClass cls;

  g_assert (pos < len);

  c = char_at (text, pos, &n);
  if (c == '\'')
    {
      gsize m = contraction_length (text + pos + 1, len - pos - 1);

      if (m > 0)
        return 1 + m;
    }

  /* " ?X+": a space joins the run that follows it unless that is spaces. */
  if (c == ' ' && pos + 1 < len)
    {
      gsize n1;

      cls = gb_unicode_classify (char_at (text, pos + 1, &n1));
      if (cls != GB_CHAR_SPACE)
        return run_end (text, len, pos + 1, cls) - pos;
    }

  cls = gb_unicode_classify (c);
  if (cls != GB_CHAR_SPACE)
    return run_end (text, len, pos, cls) - pos;

  return space_run_length (text, len, pos);
}
