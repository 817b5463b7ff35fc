/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <locale.h>
#include <stdio.h>

#include "gb-build-config.h"
#include "gb-cli.h"

typedef struct
{
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
  { "tokenize", gb_cli_tokenize, "Split text into the model's tokens" },
  { "run", gb_cli_run, "Run the model on a text and dump logits, attention and activations as .npy" },
  { "generate", gb_cli_generate, "Continue a prompt (greedy or sampled), streaming the text" },
  { "train", gb_cli_train, "Train a GPT-2 on a text corpus (AdamW, checkpoints, resume)" },
  { "eval", gb_cli_eval, "Next-token loss and perplexity of the model on a text file" },
  { "grad", gb_cli_grad, "Dump gradients of the next-token loss and of a logit difference (for notebooks)" },
  { "attention", gb_cli_attention, "Render an attention heatmap (one head, a layer's mean or the rollout) to PNG, SVG or PDF" },
  { "heads", gb_cli_heads, "Score every head's role: previous-token, first-token, self, induction, diffuse" },
  { "init-model", gb_cli_init_model, "Write a randomly initialised GPT-2 checkpoint (benchmarks, tests)" },
  { "train-tokenizer", gb_cli_train_tokenizer, "Train a byte-level BPE vocabulary (vocab.json, merges.txt) on a corpus" },
};

const char *
gb_cli_default_model_dir (void)
{
  const char *env = g_getenv ("GLASSBOX_MODEL");
  return env != NULL && *env != '\0' ? env : gb_demo_model_dir ();
}

int
gb_cli_fail (const GError *error)
{
  g_printerr ("glassbox-cli: error: %s\n", error->message);
  return GB_CLI_RUNTIME_ERROR;
}

int
gb_cli_usage (const char *format,
              ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("glassbox-cli: error: %s\n", msg);
  return GB_CLI_USAGE_ERROR;
}

gboolean
gb_cli_parse (GOptionContext *context,
              int            *argc,
              char         ***argv,
              int            *exit_code)
{
  g_autoptr (GError) error = NULL;

  if (!g_option_context_parse (context, argc, argv, &error))
    {
      *exit_code = gb_cli_usage ("%s (see --help)", error->message);
      return FALSE;
    }
  return TRUE;
}

static void
print_usage (FILE *out)
{
  fprintf (out, "Usage: glassbox-cli COMMAND [OPTIONS]\n\nLook inside GPT-2-family language models.\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-16s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun “glassbox-cli COMMAND --help” for a command's options.\n");
}

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");
  g_set_prgname ("glassbox-cli");

  if (argc < 2)
    {
      print_usage (stderr);
      return GB_CLI_USAGE_ERROR;
    }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h") || g_str_equal (argv[1], "help"))
    {
      print_usage (stdout);
      return GB_CLI_OK;
    }
  if (g_str_equal (argv[1], "--version"))
    {
      printf ("glassbox-cli %s\n", GB_VERSION);
      return GB_CLI_OK;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (argv[1], commands[i].name))
      return commands[i].run (argc - 1, argv + 1);
  return gb_cli_usage ("unknown command “%s” (see glassbox-cli --help)", argv[1]);
}
