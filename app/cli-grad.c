/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gb-cli.h"

/* glassbox-cli grad: what the backward pass computes, as files a notebook
 * (and the float64 reference test) can read:
 *   grads.safetensors  d(mean next-token loss)/d(every parameter), HF names
 *   loss.json          {"loss": L, "n_tokens": T}
 *   d_embed.npy [T,D], d_resid_pre.npy [L,T,D]   with --logit-diff POS,A,B:
 *                      d(logits[POS][A] - logits[POS][B]) (B = -1: logit A) */

static gboolean
parse_logit_diff (const char *spec,
                  gint64      out[3],
                  GError    **error)
{
  g_auto (GStrv) parts = g_strsplit (spec, ",", -1);
  if (g_strv_length (parts) != 3)
    goto bad;
  for (guint i = 0; i < 3; i++)
    if (!g_ascii_string_to_signed (g_strstrip (parts[i]), 10, i == 2 ? -1 : 0, G_MAXINT32, &out[i], NULL))
      goto bad;
  return TRUE;
bad:
  g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "--logit-diff: expected POS,A,B (B may be -1), got “%s”", spec);
  return FALSE;
}

int
gb_cli_grad (int    argc,
             char **argv)
{
  g_autofree char *model_dir = NULL, *text = NULL, *token_list = NULL, *dump = NULL, *diff = NULL;
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &text, "Text", "TEXT" },
    { "tokens", 0, 0, G_OPTION_ARG_STRING, &token_list, "Token ids instead of text", "1,2,3" },
    { "logit-diff", 0, 0, G_OPTION_ARG_STRING, &diff, "Also the gradient of logits[POS][A] - logits[POS][B] with respect to the input embeddings and each block's input", "POS,A,B" },
    { "dump", 'd', 0, G_OPTION_ARG_FILENAME, &dump, "Folder for grads.safetensors, loss.json, d_embed.npy, d_resid_pre.npy", "DIR" },
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Replace an earlier dump in DIR", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- dump gradients of the loss and of a logit difference");
  g_autoptr (GError) error = NULL;
  gint64 spec[3];
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if ((text == NULL) == (token_list == NULL))
    return gb_cli_usage ("give exactly one of --text or --tokens");
  if (dump == NULL)
    return gb_cli_usage ("--dump DIR is required");
  static const char *const outputs[] = { "grads.safetensors", "loss.json", "d_embed.npy", "d_resid_pre.npy", NULL };
  if ((code = gb_cli_check_outputs (dump, outputs, force)) != 0)
    return code;
  if (diff != NULL && !parse_logit_diff (diff, spec, &error))
    return gb_cli_usage ("%s", error->message);

  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL || (text != NULL && !gb_model_check_prompt_size (model, strlen (text), &error)))
    return gb_cli_fail (error);
  g_autoptr (GArray) ids = text ? gb_tokenizer_encode (gb_model_get_tokenizer (model), text, -1, FALSE, &error)
                                : gb_cli_parse_token_list (token_list, &error);
  if (ids == NULL)
    return gb_cli_fail (error);
  if (ids->len < 2)
    return gb_cli_usage ("the loss needs at least two tokens");

  g_autoptr (GbNet) net = gb_net_new_from_model (model, TRUE, &error);
  if (net == NULL)
    return gb_cli_fail (error);
  const guint T = ids->len;
  const gint32 *tokens = (const gint32 *) ids->data;
  g_autofree gint32 *targets = g_new (gint32, T);
  for (guint i = 0; i < T; i++)
    targets[i] = i + 1 < T ? tokens[i + 1] : -1;
  gb_net_zero_grads (net);
  double loss = gb_net_loss (net, tokens, targets, NULL, 1, T, TRUE, &error);
  if (error != NULL)
    return gb_cli_fail (error);

  /* Everything is computed before the first file is written, so a bad
   * --logit-diff leaves no partial dump behind. (The parameter gradients
   * are left alone by it.) */
  const GbModelShape *s = gb_net_get_shape (net);
  g_autofree float *d_embed = NULL, *d_resid = NULL;
  if (diff != NULL)
    {
      d_embed = g_new (float, (gsize) T * s->n_embd);
      d_resid = g_new (float, (gsize) s->n_layer * T * s->n_embd);
      if (!gb_net_grad_logit_diff (net, tokens, NULL, T, (guint) spec[0], (gint32) spec[1], (gint32) spec[2], d_embed,
                                   d_resid, NULL, &error))
        return gb_cli_fail (error);
    }

  if (g_mkdir_with_parents (dump, 0755) != 0)
    {
      g_set_error (&error, GB_ERROR, GB_ERROR_IO, "%s: cannot create the folder: %s", dump, g_strerror (errno));
      return gb_cli_fail (error);
    }
  guint n_info;
  const GbParamInfo *info = gb_net_get_param_info (net, &n_info);
  g_autofree GbTensorOut *out = g_new0 (GbTensorOut, n_info);
  for (guint i = 0; i < n_info; i++)
    out[i] = (GbTensorOut) { info[i].name, info[i].n_dims, { info[i].shape[0], info[i].shape[1] },
                             gb_net_get_grads (net) + info[i].offset };
  g_autofree char *grads = g_build_filename (dump, "grads.safetensors", NULL);
  if (!gb_safetensors_write (grads, out, n_info, GB_DTYPE_F32, NULL, &error))
    return gb_cli_fail (error);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_autofree char *json = g_strdup_printf ("{\"loss\": %s, \"n_tokens\": %u}\n", g_ascii_dtostr (buf, sizeof buf, loss), T);
  g_autofree char *loss_path = g_build_filename (dump, "loss.json", NULL);
  if (!gb_file_write_atomic (loss_path, json, strlen (json), TRUE, &error))
    return gb_cli_fail (error);

  if (diff != NULL)
    {
      g_autofree char *pe = g_build_filename (dump, "d_embed.npy", NULL);
      g_autofree char *pr = g_build_filename (dump, "d_resid_pre.npy", NULL);
      const gint64 se[] = { T, s->n_embd }, sr[] = { s->n_layer, T, s->n_embd };
      if (!gb_npy_write_f32 (pe, d_embed, se, 2, &error) || !gb_npy_write_f32 (pr, d_resid, sr, 3, &error))
        return gb_cli_fail (error);
    }
  return GB_CLI_OK;
}
