/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <math.h>
#include <stdio.h>

#include <string.h>

#include "gb-cli.h"

static gboolean
print_piece_cb (gint32      token,
                const char *text_piece,
                gpointer    user_data)
{
  fputs (text_piece, stdout);
  fflush (stdout);
  return TRUE;
}

int
gb_cli_generate (int    argc,
                 char **argv)
{
  g_autofree char *model_dir = NULL, *prompt = NULL, *steer = NULL;
  int max_new = 32, top_k = 0, steer_from = 0;
  double temperature = 0, top_p = 1, multiplier = 1;
  gint64 seed = 0;
  gboolean truncate = FALSE;
  /* Text options are FILENAME-typed so their bytes reach the tokenizer as
   * given, which names the offset of any invalid UTF-8. */
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "prompt", 'p', 0, G_OPTION_ARG_FILENAME, &prompt, "Text to continue", "TEXT" },
    { "max-new-tokens", 'n', 0, G_OPTION_ARG_INT, &max_new, "Tokens to generate (default 32)", "N" },
    { "temperature", 0, 0, G_OPTION_ARG_DOUBLE, &temperature, "Sampling temperature; 0 = greedy (default)", "T" },
    { "top-k", 0, 0, G_OPTION_ARG_INT, &top_k, "Sample from the K most likely tokens (0 = all)", "K" },
    { "top-p", 0, 0, G_OPTION_ARG_DOUBLE, &top_p, "Sample from the smallest set with probability >= P (default 1)", "P" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed for sampling (default 0)", "S" },
    { "steer", 0, 0, G_OPTION_ARG_FILENAME, &steer, "Add a steering vector (glassbox-cli steer train, or a llama.cpp control-vector GGUF)", "VEC" },
    { "multiplier", 0, 0, G_OPTION_ARG_DOUBLE, &multiplier, "Scale of the steering vector (default 1; 0 = none)", "M" },
    { "steer-from", 0, 0, G_OPTION_ARG_INT, &steer_from, "Steer from this absolute token position on (default 0: prompt and continuation)", "POS" },
    { "truncate", 0, 0, G_OPTION_ARG_NONE, &truncate, "Keep the end of a prompt longer than the context instead of failing", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- continue a prompt, printing only the continuation");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (prompt == NULL)
    return gb_cli_usage ("--prompt TEXT is required");
  if (max_new < 0 || top_k < 0 || seed < 0 || steer_from < 0)
    return gb_cli_usage ("--max-new-tokens, --top-k, --seed and --steer-from must not be negative");
  if (!isfinite (multiplier))
    return gb_cli_usage ("--multiplier must be a finite number");

  GbGenerateParams params;
  gb_generate_params_init (&params);
  params.max_new_tokens = (guint) max_new;
  params.temperature = (float) temperature;
  params.top_k = (guint) top_k;
  params.top_p = (float) top_p;
  params.seed = (guint64) seed;
  params.truncate_left = truncate;

  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL || (prompt != NULL && !gb_model_check_prompt_size (model, strlen (prompt), &error)))
    return gb_cli_fail (error);
  g_autoptr (GbSteerVector) vec = NULL;
  g_autofree GbIntervention *iv = NULL;
  guint n_iv = 0;
  if (steer != NULL)
    {
      vec = gb_steer_vector_load (steer, &error);
      if (vec == NULL)
        return gb_cli_fail (error);
      if (!gb_steer_vector_check (vec, model, &error))
        {
          g_prefix_error (&error, "%s: ", steer);
          return gb_cli_fail (error);
        }
      iv = g_new (GbIntervention, vec->n_layers);
      n_iv = gb_steer_vector_interventions (vec, (float) multiplier, (guint) steer_from, iv);
    }
  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), prompt, -1, FALSE, &error);
  if (ids == NULL)
    return gb_cli_fail (error);
  if (ids->len == 0)
    return gb_cli_usage ("the prompt is empty");

  guint truncated = 0;
  g_autoptr (GArray) out = gb_generate (model, (gint32 *) ids->data, ids->len, &params, iv, n_iv, print_piece_cb, NULL,
                                        &truncated, NULL, &error);
  if (out == NULL)
    return gb_cli_fail (error);
  printf ("\n");
  if (truncated > 0)
    g_printerr ("glassbox-cli: note: the prompt's first %u tokens were dropped to fit the context\n", truncated);
  return GB_CLI_OK;
}
