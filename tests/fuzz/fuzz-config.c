/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A hostile config.json: every accepted config must be within the caps the
 * loader promises before it allocates anything from it. */
#include "fuzz-util.h"

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *path = fuzz_write ("config.json", data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (GbConfig) c = gb_config_load (path, &error);

  if (c == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == GB_ERROR, "a refusal is a GB_ERROR");
      FUZZ_CHECK (g_str_has_prefix (error->message, path), "the error names the file");
      return 0;
    }
  FUZZ_CHECK (g_str_equal (c->model_type, "gpt2"), "only GPT-2");
  FUZZ_CHECK (c->n_layer > 0 && c->n_layer <= 512, "n_layer capped");
  FUZZ_CHECK (c->n_head > 0 && c->n_embd % c->n_head == 0, "heads divide the width");
  FUZZ_CHECK (c->n_positions > 0 && c->n_vocab > 0 && c->n_inner > 0, "sizes positive");
  FUZZ_CHECK (c->layer_norm_epsilon > 0 && c->layer_norm_epsilon < 1, "epsilon in (0, 1)");
  FUZZ_CHECK (c->pad_token_id >= -1 && c->pad_token_id < (gint32) c->n_vocab, "pad id in range");
  for (guint i = 0; i < c->n_labels; i++)
    FUZZ_CHECK (c->labels[i] != NULL && g_utf8_validate (c->labels[i], -1, NULL), "every label is UTF-8 text");
  FUZZ_CHECK (c->labels == NULL || c->labels[c->n_labels] == NULL, "labels NULL-terminated");
  return 0;
}
