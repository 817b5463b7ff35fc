/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <gb-attention-render.h>

#include "gb-cli.h"

typedef struct
{
  char    *model_dir, *text, *output, *norm;
  int      layer, head;
  gboolean mean, rollout, all_heads, force;
  double   scale;
} Options;

static void
options_clear (Options *o)
{
  g_free (o->model_dir);
  g_free (o->text);
  g_free (o->output);
  g_free (o->norm);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Options, options_clear)

/* Checks the options against each other and the model; 0 when they agree. */
static int
check_selection (const Options        *o,
                 const GbConfig       *c,
                 GbAttentionSelection *sel)
{
  const int n_kinds = (o->head >= 0) + o->mean + o->rollout + o->all_heads;

  if (n_kinds != 1)
    return gb_cli_usage ("give exactly one of --head H, --mean, --rollout or --all-heads");
  if ((o->head >= 0 || o->mean) && o->layer < 0)
    return gb_cli_usage ("--layer L is required with --head and --mean");
  if (o->layer >= 0 && (guint) o->layer >= c->n_layer)
    return gb_cli_usage ("--layer %d: the model has layers 0 to %u", o->layer, c->n_layer - 1);
  if (o->head >= 0 && (guint) o->head >= c->n_head)
    return gb_cli_usage ("--head %d: the model has heads 0 to %u", o->head, c->n_head - 1);
  sel->aggregation = o->head >= 0 ? GB_AGG_HEAD : o->mean ? GB_AGG_LAYER_MEAN : GB_AGG_ROLLOUT;
  sel->layer = MAX (o->layer, 0);
  sel->head = MAX (o->head, 0);
  return 0;
}

int
gb_cli_attention (int    argc,
                  char **argv)
{
  g_auto (Options) o = { .layer = -1, .head = -1, .scale = 1 };
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &o.model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &o.text, "Text to run", "TEXT" },
    { "layer", 'l', 0, G_OPTION_ARG_INT, &o.layer, "Layer (0-based)", "L" },
    { "head", 'H', 0, G_OPTION_ARG_INT, &o.head, "One head of the layer (0-based)", "H" },
    { "mean", 0, 0, G_OPTION_ARG_NONE, &o.mean, "Mean over the layer's heads", NULL },
    { "rollout", 0, 0, G_OPTION_ARG_NONE, &o.rollout, "Attention rollout across all layers", NULL },
    { "all-heads", 0, 0, G_OPTION_ARG_NONE, &o.all_heads, "Every head in one grid image", NULL },
    { "norm", 0, 0, G_OPTION_ARG_STRING, &o.norm, "Colour scale: linear (default), log or row-max", "NORM" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &o.output, "Image (.png, .svg, .pdf) or raw weights (.npy, .json)", "FILE" },
    { "scale", 's', 0, G_OPTION_ARG_DOUBLE, &o.scale, "PNG pixels per figure unit: 1, 2, 4... (default 1)", "PX" },
    { "force", 'f', 0, G_OPTION_ARG_NONE, &o.force, "Replace FILE if it exists", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- draw an attention heatmap with token labels, title and legend");
  g_autoptr (GError) error = NULL;
  GbAttentionSelection sel = { 0 };
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (argc > 1)
    return gb_cli_usage ("unexpected argument “%s”", argv[1]);
  if (o.text == NULL || o.output == NULL)
    return gb_cli_usage ("--text TEXT and --output FILE are required");
  if (o.norm != NULL && !gb_norm_from_name (o.norm, &sel.norm))
    return gb_cli_usage ("--norm %s: use linear, log or row-max", o.norm);
  if (!(o.scale >= 0.25 && o.scale <= 16))
    return gb_cli_usage ("--scale must lie between 0.25 and 16");
  if (!o.force && g_file_test (o.output, G_FILE_TEST_EXISTS))
    return gb_cli_usage ("%s already exists (use --force to replace it)", o.output);

  g_autoptr (GbModel) model = gb_model_load (o.model_dir ? o.model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL)
    return gb_cli_fail (error);
  if ((code = check_selection (&o, gb_model_get_config (model), &sel)) != 0)
    return code;
  guint dropped = 0;
  g_autoptr (GArray) ids = gb_attention_tokenize (model, o.text, &dropped, &error);
  if (ids == NULL)
    return gb_cli_fail (error);
  if (ids->len == 0)
    return gb_cli_usage ("the text is empty");
  if (dropped > 0)
    g_printerr ("glassbox-cli: note: the text is %u tokens past the model's context of %u; they were left out\n",
                dropped, ids->len);

  g_autoptr (GbAttentionMaps) maps = gb_attention_maps_compute (model, (gint32 *) ids->data, ids->len, NULL, NULL, NULL, &error);
  if (maps == NULL)
    return gb_cli_fail (error);
  gboolean ok;
  if (o.all_heads)
    {
      g_autoptr (GbHeadScores) scores = gb_head_scores_compute (model, 0, 0, NULL, &error);
      ok = scores != NULL && gb_attention_export_all_heads (model, maps, scores, sel.norm, o.output, o.scale, &error);
    }
  else
    ok = gb_attention_export (model, maps, &sel, o.output, o.scale, &error);
  return ok ? GB_CLI_OK : gb_cli_fail (error);
}
