/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A hostile vocabulary: vocab.json, a NUL byte, then merges.txt. A
 * vocabulary that loads must encode text so that it decodes back. */
#include <string.h>

#include "fuzz-util.h"

static void
check_round_trip (GbTokenizer *tok,
                  const char  *text,
                  gssize       len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, text, len, FALSE, &error);

  FUZZ_CHECK (ids != NULL, "valid UTF-8 encodes");
  for (guint i = 0; i < ids->len; i++)
    FUZZ_CHECK ((guint) g_array_index (ids, gint32, i) < gb_tokenizer_get_n_vocab (tok), "ids in range");
  g_autofree char *back = gb_tokenizer_decode (tok, (const gint32 *) ids->data, ids->len, &error);
  FUZZ_CHECK (back != NULL, "own ids decode");
  FUZZ_CHECK (strlen (back) == (gsize) (len < 0 ? (gssize) strlen (text) : len) &&
                memcmp (back, text, strlen (back)) == 0,
              "decode (encode (text)) == text");
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const guint8 *nul = memchr (data, '\0', size);
  gsize vocab_len = nul ? (gsize) (nul - data) : size;
  const guint8 *merges = nul ? nul + 1 : data + size;
  gsize merges_len = size - vocab_len - (nul ? 1 : 0);
  g_autoptr (GError) error = NULL;

  g_autofree char *vocab_path = g_strdup (fuzz_write ("vocab.json", data, vocab_len));
  g_autofree char *merges_path = g_strdup (fuzz_write ("merges.txt", merges, merges_len));
  g_autoptr (GbTokenizer) tok = gb_tokenizer_new_from_files (vocab_path, merges_path, &error);
  if (tok == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == GB_ERROR, "a refusal is a GB_ERROR");
      FUZZ_CHECK (strstr (error->message, vocab_path) || strstr (error->message, merges_path),
                  "the error names the file");
      return 0;
    }
  check_round_trip (tok, "The applicant, 34, lives at 90210 – “café” 🙂 <|endoftext|>  \n\n end", -1);
  /* The merges file is text too: the merges it lists must all apply. */
  if (g_utf8_validate ((const char *) merges, (gssize) merges_len, NULL) && memchr (merges, 0, merges_len) == NULL)
    check_round_trip (tok, (const char *) merges, (gssize) merges_len);
  return 0;
}
