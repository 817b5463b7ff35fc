/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <json-glib/json-glib.h>
#include <errno.h>
#include <string.h>

#include "gb-cli.h"

GArray *
gb_cli_parse_token_list (const char *list,
                         GError    **error)
{
  g_auto (GStrv) parts = g_strsplit (list, ",", -1);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  for (guint i = 0; parts[i] != NULL; i++)
    {
      gint64 v;
      if (!g_ascii_string_to_signed (g_strstrip (parts[i]), 10, 0, G_MAXINT32, &v, NULL))
        {
          g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "--tokens: “%s” is not a token id", parts[i]);
          return NULL;
        }
      gint32 id = (gint32) v;
      g_array_append_val (ids, id);
    }
  return g_steal_pointer (&ids);
}

/* Stacks the per-layer arrays of @hook, each of shape @inner, into one
 * [L, inner...] .npy file. */
static gboolean
dump_stacked (const GbTrace *trace,
              GbHook         hook,
              const char    *dir,
              const char    *file,
              const gint64  *inner,
              guint          n_inner,
              GError       **error)
{
  gint64 shape[4] = { trace->n_layer };
  gsize layer_n = 1;
  for (guint i = 0; i < n_inner; i++)
    {
      shape[i + 1] = inner[i];
      layer_n *= (gsize) inner[i];
    }
  g_autofree float *all = g_new (float, layer_n * trace->n_layer);
  for (guint l = 0; l < trace->n_layer; l++)
    memcpy (all + l * layer_n, gb_trace_get (trace, hook, l), layer_n * sizeof (float));
  g_autofree char *path = g_build_filename (dir, file, NULL);
  return gb_npy_write_f32 (path, all, shape, n_inner + 1, error);
}

static gboolean
dump_tokens (GbTokenizer   *tok,
             const GbTrace *trace,
             const char    *dir,
             GError       **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "tokens");
  json_builder_begin_array (b);
  for (guint t = 0; t < trace->n_tokens; t++)
    json_builder_add_int_value (b, trace->tokens[t]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "strings");
  json_builder_begin_array (b);
  for (guint t = 0; t < trace->n_tokens; t++)
    {
      g_autofree char *s = gb_tokenizer_decode (tok, &trace->tokens[t], 1, NULL);
      json_builder_add_string_value (b, s ? s : "");
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize len;
  g_autofree char *json = json_generator_to_data (gen, &len);
  g_autofree char *path = g_build_filename (dir, "tokens.json", NULL);
  return gb_file_write_atomic (path, json, len, TRUE, error);
}

static gboolean
dump_trace (GbModel       *model,
            const GbTrace *trace,
            const char    *dir,
            GError       **error)
{
  const GbConfig *c = gb_model_get_config (model);
  const gint64 T = trace->n_tokens;
  g_autofree char *logits = g_build_filename (dir, "logits.npy", NULL);
  const gint64 logit_shape[] = { T, c->n_vocab }, pattern[] = { c->n_head, T, T };
  const gint64 resid[] = { T, c->n_embd }, mlp[] = { T, c->n_inner };

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: cannot create the folder: %s", dir, g_strerror (errno));
      return FALSE;
    }
  if (!gb_npy_write_f32 (logits, trace->logits, logit_shape, 2, error) ||
      !dump_stacked (trace, GB_HOOK_PATTERN, dir, "attention.npy", pattern, 3, error) ||
      !dump_stacked (trace, GB_HOOK_RESID_PRE, dir, "resid_pre.npy", resid, 2, error) ||
      !dump_stacked (trace, GB_HOOK_RESID_MID, dir, "resid_mid.npy", resid, 2, error) ||
      !dump_stacked (trace, GB_HOOK_RESID_POST, dir, "resid_post.npy", resid, 2, error) ||
      !dump_stacked (trace, GB_HOOK_MLP_POST, dir, "mlp_post.npy", mlp, 2, error) ||
      !dump_tokens (gb_model_get_tokenizer (model), trace, dir, error))
    return FALSE;
  if (trace->class_logits != NULL)
    {
      g_autofree char *path = g_build_filename (dir, "class_logits.npy", NULL);
      gint64 shape[] = { T, c->n_labels };
      if (!gb_npy_write_f32 (path, trace->class_logits, shape, 2, error))
        return FALSE;
    }
  return TRUE;
}

int
gb_cli_run (int    argc,
            char **argv)
{
  g_autofree char *model_dir = NULL, *text = NULL, *token_list = NULL, *dump = NULL;
  gboolean force = FALSE;
  /* Text options are FILENAME-typed so their bytes reach the tokenizer as
   * given, which names the offset of any invalid UTF-8. */
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &text, "Text to run", "TEXT" },
    { "tokens", 0, 0, G_OPTION_ARG_STRING, &token_list, "Token ids to run instead of text", "1,2,3" },
    { "dump", 'd', 0, G_OPTION_ARG_FILENAME, &dump, "Folder for logits.npy, attention.npy, resid_*.npy, tokens.json", "DIR" },
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Replace an earlier dump in DIR", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- run the model and dump what it computed");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if ((text == NULL) == (token_list == NULL))
    return gb_cli_usage ("give exactly one of --text or --tokens");
  if (dump == NULL)
    return gb_cli_usage ("--dump DIR is required");
  static const char *const outputs[] = { "tokens.json", "logits.npy", "attention.npy", "resid_post.npy", NULL };
  if ((code = gb_cli_check_outputs (dump, outputs, force)) != 0)
    return code;

  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL || (text != NULL && !gb_model_check_prompt_size (model, strlen (text), &error)))
    return gb_cli_fail (error);
  g_autoptr (GArray) ids = text ? gb_tokenizer_encode (gb_model_get_tokenizer (model), text, -1, FALSE, &error)
                                : gb_cli_parse_token_list (token_list, &error);
  if (ids == NULL)
    return gb_cli_fail (error);
  if (ids->len == 0)
    return gb_cli_usage ("the text is empty");

  GbRecord rec = { .logits = GB_LOGITS_ALL };
  rec.hooks[GB_HOOK_PATTERN] = rec.hooks[GB_HOOK_RESID_PRE] = rec.hooks[GB_HOOK_RESID_MID] =
    rec.hooks[GB_HOOK_RESID_POST] = rec.hooks[GB_HOOK_MLP_POST] = GB_ALL_LAYERS;
  g_autoptr (GbTrace) trace = gb_model_forward (model, (gint32 *) ids->data, ids->len, &rec, NULL, 0, NULL, &error);
  if (trace == NULL || !dump_trace (model, trace, dump, &error))
    return gb_cli_fail (error);
  return GB_CLI_OK;
}
