/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The BPE trainer on arbitrary text (the first byte sets the vocabulary
 * size): what it saves must load as a tokenizer that round-trips the text. */
#include <string.h>

#include "fuzz-util.h"

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  if (size == 0 || size > 4096)
    return 0;
  guint vocab_size = 257 + data[0] % 64;
  const char *text = (const char *) data + 1;
  gsize len = size - 1;
  g_autoptr (GError) error = NULL;

  g_autoptr (GbBpe) bpe = gb_bpe_train (text, (gssize) len, vocab_size, NULL, NULL, NULL, &error);
  if (bpe == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == GB_ERROR, "a refusal is a GB_ERROR");
      return 0;
    }
  FUZZ_CHECK (gb_bpe_get_n_vocab (bpe) <= vocab_size, "no more ids than asked");
  g_autofree char *dir = g_build_filename (fuzz_dir (), "bpe", NULL);
  if (!gb_bpe_save (bpe, dir, &error))
    g_error ("%s", error->message);
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  g_autoptr (GbTokenizer) tok = gb_tokenizer_new_from_files (vocab, merges, &error);
  if (tok == NULL)
    g_error ("the trained vocabulary does not load: %s", error->message);
  FUZZ_CHECK (gb_tokenizer_get_n_vocab (tok) == gb_bpe_get_n_vocab (bpe), "every id saved");
  g_autoptr (GArray) ids = gb_tokenizer_encode (tok, text, (gssize) len, TRUE, &error);
  FUZZ_CHECK (ids != NULL, "the training text encodes");
  g_autofree char *back = gb_tokenizer_decode (tok, (const gint32 *) ids->data, ids->len, &error);
  if (memchr (text, '\0', len) == NULL)
    FUZZ_CHECK (back != NULL && strlen (back) == len && memcmp (back, text, len) == 0, "decode (encode (text)) == text");
  return 0;
}
