/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gb-cli.h"

/* glassbox-cli eval: the model's next-token loss and perplexity on a text
 * file, over consecutive windows of the context (each token predicted once,
 * the first of each window without context). */
int
gb_cli_eval (int    argc,
             char **argv)
{
  g_autofree char *model_dir = NULL, *corpus = NULL;
  gboolean json = FALSE;
  gint window = 0, max_tokens = 0;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "corpus", 'c', 0, G_OPTION_ARG_FILENAME, &corpus, "Text file (documents separated by <|endoftext|>)", "FILE" },
    { "window", 0, 0, G_OPTION_ARG_INT, &window, "Tokens per window (default: the context)", "N" },
    { "max-tokens", 0, 0, G_OPTION_ARG_INT, &max_tokens, "Evaluate only the first N tokens", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- next-token loss and perplexity on a text file");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (corpus == NULL)
    return gb_cli_usage ("--corpus FILE is required");
  if (window < 0 || max_tokens < 0)
    return gb_cli_usage ("--window and --max-tokens must not be negative");

  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL)
    return gb_cli_fail (error);
  g_autoptr (GbNet) net = gb_net_new_from_model (model, FALSE, &error);
  if (net == NULL)
    return gb_cli_fail (error);
  g_autofree char *text = NULL;
  gsize len;
  if (!g_file_get_contents (corpus, &text, &len, &error))
    return gb_cli_fail (error);
  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), text, (gssize) len, TRUE, &error);
  if (ids == NULL)
    {
      g_prefix_error (&error, "%s: ", corpus);
      return gb_cli_fail (error);
    }
  guint n = ids->len;
  if (max_tokens > 0)
    n = MIN (n, (guint) max_tokens);
  if (n < 2)
    {
      g_set_error (&error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: fewer than two tokens", corpus);
      return gb_cli_fail (error);
    }
  const guint ctx_len = gb_net_get_shape (net)->n_positions;
  const guint W = window > 0 ? MIN ((guint) window, ctx_len) : ctx_len;
  const gint32 *tok = (const gint32 *) ids->data;
  g_autofree gint32 *targets = g_new (gint32, W);
  double sum = 0;
  guint64 count = 0;
  for (guint start = 0; start + 1 < n; start += W)
    {
      guint T = MIN (W, n - 1 - start);
      for (guint i = 0; i < T; i++)
        targets[i] = tok[start + i + 1];
      double nll;
      if (!gb_net_loss_partial (net, tok + start, targets, NULL, 1, T, 1.0, FALSE, &nll, &error))
        return gb_cli_fail (error);
      sum += nll;
      count += T;
    }
  double loss = sum / count;
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "file");
      g_autofree char *name = g_filename_display_name (corpus);
      json_builder_add_string_value (b, name);
      json_builder_set_member_name (b, "tokens");
      json_builder_add_int_value (b, (gint64) count);
      json_builder_set_member_name (b, "loss");
      json_builder_add_double_value (b, loss);
      json_builder_set_member_name (b, "perplexity");
      json_builder_add_double_value (b, exp (loss));
      json_builder_end_object (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      g_autofree char *out = json_to_string (root, FALSE);
      printf ("%s\n", out);
    }
  else
    printf ("%s: %" G_GUINT64_FORMAT " tokens, loss %.4f, perplexity %.2f\n", corpus, count, loss, exp (loss));
  return GB_CLI_OK;
}
