/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Arbitrary bytes through the bundled demo model's tokenizer (or the
 * 256-byte one): encode, decode and streaming decode. The first byte picks
 * the options; the rest is the text, and also read as token ids. */
#include <string.h>

#include "gb-build-config.h"
#include "fuzz-util.h"

static GbTokenizer *demo, *bytes;

static GbTokenizer *
tokenizer (gboolean use_demo)
{
  if (demo == NULL)
    {
      g_autoptr (GError) error = NULL;
      fuzz_dir ();
      demo = gb_tokenizer_new_from_files (GB_DATA_DIR "/models/loan-officer/vocab.json",
                                          GB_DATA_DIR "/models/loan-officer/merges.txt", &error);
      if (demo == NULL)
        g_error ("%s", error->message);
      bytes = gb_tokenizer_new_bytes ();
    }
  return use_demo ? demo : bytes;
}

/* UTF-8 in Unicode's sense, where U+0000 is a character (GLib's validator
 * stops at a NUL byte). */
static gboolean
valid_utf8 (const char *text,
            gsize       len)
{
  const char *end = text + len;
  while (text < end)
    {
      const char *nul = memchr (text, '\0', (gsize) (end - text));
      const char *stop = nul ? nul : end;
      if (!g_utf8_validate_len (text, (gsize) (stop - text), NULL))
        return FALSE;
      text = nul ? nul + 1 : end;
    }
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  if (size == 0)
    return 0;
  GbTokenizer *tok = tokenizer ((data[0] & 2) == 0);
  gboolean special = data[0] & 1;
  const char *text = (const char *) data + 1;
  gsize len = size - 1;
  g_autoptr (GError) error = NULL;

  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, text, (gssize) len, special, &error);
  gboolean valid = valid_utf8 (text, len);
  FUZZ_CHECK ((ids != NULL) == valid, "exactly valid UTF-8 encodes");
  if (ids != NULL)
    {
      g_autofree char *back = gb_tokenizer_decode (tok, (const gint32 *) ids->data, ids->len, &error);
      FUZZ_CHECK (back != NULL, "own ids decode");
      if (memchr (text, '\0', len) == NULL)
        FUZZ_CHECK (strlen (back) == len && memcmp (back, text, len) == 0, "decode (encode (text)) == text");

      g_autoptr (GbDecodeStream) stream = gb_decode_stream_new (tok);
      g_autoptr (GString) streamed = g_string_new (NULL);
      for (guint i = 0; i < ids->len; i++)
        {
          g_autofree char *piece = gb_decode_stream_push (stream, g_array_index (ids, gint32, i));
          g_string_append (streamed, piece);
        }
      g_autofree char *rest = gb_decode_stream_finish (stream);
      g_string_append (streamed, rest);
      if (memchr (text, '\0', len) == NULL)
        FUZZ_CHECK (g_str_equal (streamed->str, back), "streaming decode == decode");
    }
  else
    FUZZ_CHECK (error->domain == GB_ERROR, "a refusal is a GB_ERROR");
  g_clear_error (&error);

  /* The same bytes as token ids, in range or not. */
  gsize n_ids = len / 4;
  g_autofree gint32 *raw = g_new (gint32, n_ids + 1);
  memcpy (raw, text, n_ids * 4);
  g_autofree char *decoded = gb_tokenizer_decode (tok, raw, n_ids, &error);
  FUZZ_CHECK (decoded == NULL || g_utf8_validate (decoded, -1, NULL), "decode gives UTF-8");
  g_autoptr (GbDecodeStream) stream = gb_decode_stream_new (tok);
  for (gsize i = 0; i < n_ids; i++)
    {
      g_autofree char *piece = gb_decode_stream_push (stream, raw[i]);
      FUZZ_CHECK (g_utf8_validate (piece, -1, NULL), "the stream gives UTF-8");
    }
  g_autofree char *tail = gb_decode_stream_finish (stream);
  FUZZ_CHECK (g_utf8_validate (tail, -1, NULL), "the stream's end is UTF-8");
  return 0;
}
