/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <glib/gi18n.h>
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
  { "tokenize", gb_cli_tokenize, N_("Split text into the model's tokens") },
  { "run", gb_cli_run, N_("Run the model on a text and dump logits, attention and activations as .npy") },
  { "generate", gb_cli_generate, N_("Continue a prompt (greedy or sampled), streaming the text") },
  { "train", gb_cli_train, N_("Train a GPT-2 on a text corpus (AdamW, checkpoints, resume)") },
  { "eval", gb_cli_eval, N_("Next-token loss and perplexity of the model on a text file") },
  { "grad", gb_cli_grad, N_("Dump gradients of the next-token loss and of a logit difference (for notebooks)") },
  { "attention", gb_cli_attention, N_("Render an attention heatmap (one head, a layer's mean or the rollout) to PNG, SVG or PDF") },
  { "explain", gb_cli_explain, N_("Explain a decision on an application (occlusion, gradients, attention, counterfactual) or audit many; PDF report") },
  { "heads", gb_cli_heads, N_("Score every head's role: previous-token, first-token, self, induction, diffuse") },
  { "steer", gb_cli_steer, N_("Steering vectors: train from contrastive pairs, export/import llama.cpp GGUF, show") },
  { "init-model", gb_cli_init_model, N_("Write a randomly initialised GPT-2 checkpoint (benchmarks, tests)") },
  { "sae", gb_cli_sae, N_("Sparse autoencoders: train, list features with their top contexts, evaluate") },
  { "train-tokenizer", gb_cli_train_tokenizer, N_("Train a byte-level BPE vocabulary (vocab.json, merges.txt) on a corpus") },
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

int
gb_cli_check_outputs (const char        *dir,
                      const char *const *names,
                      gboolean           force)
{
  for (guint i = 0; !force && names[i] != NULL; i++)
    {
      g_autofree char *path = g_build_filename (dir, names[i], NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return gb_cli_usage ("%s already holds %s (use --force to replace it)", dir, names[i]);
    }
  return 0;
}

static void
print_usage (FILE *out)
{
  fprintf (out, "%s\n\n%s\n\n%s\n", _("Usage: glassbox-cli COMMAND [OPTIONS]"),
           _("Look inside GPT-2-family language models."), _("Commands:"));
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-16s %s\n", commands[i].name, _(commands[i].summary));
  fprintf (out, "\n%s\n", _("Run “glassbox-cli COMMAND --help” for a command's options."));
}

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, GB_LOCALE_DIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
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
