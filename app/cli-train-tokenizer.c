/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include "gb-cli.h"

int
gb_cli_train_tokenizer (int    argc,
                        char **argv)
{
  g_autofree char *corpus = NULL, *output = NULL;
  gint64 vocab_size = -1;
  gboolean quiet = FALSE, force = FALSE;
  GOptionEntry entries[] = {
    { "corpus", 0, 0, G_OPTION_ARG_FILENAME, &corpus, "UTF-8 text to train on (documents may be separated by <|endoftext|>)", "FILE" },
    { "vocab-size", 0, 0, G_OPTION_ARG_INT64, &vocab_size, "Ids in the vocabulary: 256 bytes + merges + <|endoftext|> (>= 257)", "N" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Folder to write vocab.json and merges.txt into", "DIR" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Do not print the summary line", NULL },
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Replace vocab.json and merges.txt already in DIR", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- train a byte-level BPE tokenizer in GPT-2's format");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (argc > 1)
    return gb_cli_usage ("unexpected argument “%s” (see --help)", argv[1]);
  if (corpus == NULL || output == NULL || vocab_size < 0)
    return gb_cli_usage ("--corpus FILE, --vocab-size N and --output DIR are required");
  if (vocab_size < 257 || vocab_size > G_MAXINT32)
    return gb_cli_usage ("--vocab-size must be at least 257 (the 256 bytes and <|endoftext|>)");
  static const char *const outputs[] = { "vocab.json", "merges.txt", NULL };
  if ((code = gb_cli_check_outputs (output, outputs, force)) != 0)
    return code;

  g_autoptr (GbBpe) bpe = gb_bpe_train_file (corpus, (guint) vocab_size, NULL, NULL, NULL, &error);
  if (bpe == NULL || !gb_bpe_save (bpe, output, &error))
    return gb_cli_fail (error);
  if (!quiet)
    g_print ("%u tokens (%u merges) from %" G_GUINT64_FORMAT " pre-tokens, %u distinct, written to %s\n",
             gb_bpe_get_n_vocab (bpe), gb_bpe_get_n_merges (bpe), gb_bpe_get_n_pretokens (bpe),
             gb_bpe_get_n_words (bpe), output);
  return GB_CLI_OK;
}
