/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-render"

#include <json-glib/json-glib.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

#include "gb-attention-render.h"

#define THUMB 112.0
#define THUMB_GAP 14.0
#define PAD 16.0

GArray *
gb_attention_tokenize (GbModel    *model,
                       const char *text,
                       guint      *n_dropped,
                       GError    **error)
{
  const guint ctx = gb_model_get_config (model)->n_positions;
  if (!gb_model_check_prompt_size (model, strlen (text), error))
    return NULL;
  GArray *ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), text, -1, FALSE, error);

  if (ids == NULL)
    return NULL;
  if (n_dropped)
    *n_dropped = ids->len > ctx ? ids->len - ctx : 0;
  if (ids->len > ctx)
    g_array_set_size (ids, ctx);
  return ids;
}

char *
gb_token_label (GbTokenizer *tokenizer,
                gint32       id)
{
  gsize n = 0;
  const guint8 *bytes = gb_tokenizer_token_bytes (tokenizer, id, &n);
  g_autofree char *valid = bytes ? g_utf8_make_valid ((const char *) bytes, (gssize) n) : g_strdup ("�");
  GString *out = g_string_new (NULL);

  for (const char *p = valid; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c == ' ')
        g_string_append (out, "·");
      else if (c == '\n')
        g_string_append (out, "↵");
      else if (c < 0x20 || c == 0x7f)
        g_string_append_unichar (out, c == 0x7f ? 0x2421 : 0x2400 + c);
      else
        g_string_append_unichar (out, c);
    }
  /* A token for byte 0 has no visible character left: show it. */
  if (out->len == 0 && n > 0)
    g_string_append (out, "␀");
  return g_string_free (out, FALSE);
}

char **
gb_token_labels (GbTokenizer  *tokenizer,
                 const gint32 *ids,
                 guint         n)
{
  char **labels = g_new0 (char *, n + 1);

  for (guint i = 0; i < n; i++)
    labels[i] = gb_token_label (tokenizer, ids[i]);
  return labels;
}

float *
gb_attention_selection_weights (const GbAttentionMaps      *m,
                                const GbAttentionSelection *sel)
{
  const gsize TT = (gsize) m->n_tokens * m->n_tokens;
  float *out = g_new (float, TT);

  switch (sel->aggregation)
    {
    case GB_AGG_HEAD:
      gb_attention_maps_get_head (m, sel->layer, sel->head, out);
      break;
    case GB_AGG_LAYER_MEAN:
      memcpy (out, m->layer_means + sel->layer * TT, TT * sizeof (float));
      break;
    case GB_AGG_ROLLOUT:
    default:
      memcpy (out, m->rollout, TT * sizeof (float));
      break;
    }
  return out;
}

char *
gb_attention_selection_title (const char                 *model_name,
                              const GbAttentionMaps      *m,
                              const GbAttentionSelection *sel)
{
  switch (sel->aggregation)
    {
    case GB_AGG_HEAD:
      return g_strdup_printf ("%s — layer %u, head %u", model_name, sel->layer, sel->head);
    case GB_AGG_LAYER_MEAN:
      return g_strdup_printf ("%s — layer %u, mean of %u heads", model_name, sel->layer, m->n_head);
    case GB_AGG_ROLLOUT:
    default:
      return g_strdup_printf ("%s — attention rollout over %u layers", model_name, m->n_layer);
    }
}

char *
gb_attention_selection_subtitle (const GbAttentionMaps      *m,
                                 const GbAttentionSelection *sel)
{
  static const char *scales[] = { "linear scale", "log scale", "each row scaled to its maximum" };

  return g_strdup_printf ("%u tokens · %s · hatched cells: a token cannot attend to later tokens",
                          m->n_tokens, scales[sel->norm]);
}

static gboolean
export_json (GbModel                    *model,
             const GbAttentionMaps      *m,
             const GbAttentionSelection *sel,
             const float                *w,
             const char                 *path,
             GError                    **error)
{
  static const char *agg_names[] = { "head", "layer-mean", "rollout" };
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_auto (GStrv) labels = gb_token_labels (gb_model_get_tokenizer (model), m->tokens, m->n_tokens);
  const guint T = m->n_tokens;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, gb_model_get_name (model));
  json_builder_set_member_name (b, "aggregation");
  json_builder_add_string_value (b, agg_names[sel->aggregation]);
  if (sel->aggregation != GB_AGG_ROLLOUT)
    {
      json_builder_set_member_name (b, "layer");
      json_builder_add_int_value (b, sel->layer);
    }
  if (sel->aggregation == GB_AGG_HEAD)
    {
      json_builder_set_member_name (b, "head");
      json_builder_add_int_value (b, sel->head);
    }
  json_builder_set_member_name (b, "tokens");
  json_builder_begin_array (b);
  for (guint i = 0; i < T; i++)
    json_builder_add_int_value (b, m->tokens[i]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "labels");
  json_builder_begin_array (b);
  for (guint i = 0; i < T; i++)
    json_builder_add_string_value (b, labels[i]);
  json_builder_end_array (b);
  /* Rows are query tokens, columns key tokens; zeros above the diagonal. */
  json_builder_set_member_name (b, "weights");
  json_builder_begin_array (b);
  for (guint i = 0; i < T; i++)
    {
      json_builder_begin_array (b);
      for (guint j = 0; j < T; j++)
        json_builder_add_double_value (b, w[(gsize) i * T + j]);
      json_builder_end_array (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize len;
  g_autofree char *text = json_generator_to_data (gen, &len);
  return gb_file_write_atomic (path, text, len, TRUE, error);
}

gboolean
gb_attention_export (GbModel                    *model,
                     const GbAttentionMaps      *m,
                     const GbAttentionSelection *sel,
                     const char                 *path,
                     double                      scale,
                     GError                    **error)
{
  g_autofree float *w = gb_attention_selection_weights (m, sel);
  g_autofree char *lower = g_ascii_strdown (path, -1);

  if (g_str_has_suffix (lower, ".npy"))
    {
      const gint64 shape[] = { m->n_tokens, m->n_tokens };
      return gb_npy_write_f32 (path, w, shape, 2, error);
    }
  if (g_str_has_suffix (lower, ".json"))
    return export_json (model, m, sel, w, path, error);

  g_auto (GStrv) labels = gb_token_labels (gb_model_get_tokenizer (model), m->tokens, m->n_tokens);
  g_autofree char *title = gb_attention_selection_title (gb_model_get_name (model), m, sel);
  g_autofree char *subtitle = gb_attention_selection_subtitle (m, sel);
  /* Figures for reports are always light, whatever the window's style. */
  const GbHeatmap heatmap = {
    .n = m->n_tokens,
    .weights = w,
    .labels = (const char *const *) labels,
    .title = title,
    .subtitle = subtitle,
    .causal = TRUE,
    .norm = sel->norm,
    .dark = FALSE,
  };
  return gb_heatmap_export (&heatmap, path, scale, error);
}

/* ---- Every head in one image ---- */

typedef struct
{
  GbModel               *model;
  const GbAttentionMaps *maps;
  const GbHeadScores    *scores;
  GbNorm                 norm;
  double                 top;
} AllHeads;

static void
draw_tile (cairo_t        *cr,
           const AllHeads *a,
           guint           l,
           guint           h,
           double          x,
           double          y,
           float          *buf)
{
  const guint T = a->maps->n_tokens;
  GbHeatmapColors colors;
  g_autofree char *name = g_strdup_printf ("L%u H%u", l, h);
  const GbHeatmap hm = { .n = T, .weights = buf, .causal = TRUE, .norm = a->norm };

  gb_heatmap_colors (FALSE, &colors);
  gb_attention_maps_get_head (a->maps, l, h, buf);
  cairo_set_source_rgb (cr, colors.fg[0], colors.fg[1], colors.fg[2]);
  g_autoptr (PangoLayout) label = gb_heatmap_create_layout (cr, name, 10, TRUE);
  cairo_move_to (cr, x, y);
  pango_cairo_show_layout (cr, label);
  if (a->scores)
    {
      GbHeadRole role = gb_head_scores_dominant (a->scores, l, h);
      if (role < GB_N_HEAD_ROLES)
        {
          g_autofree char *badge = g_strdup_printf ("%s %.2f", gb_head_role_short (role),
                                                    gb_head_scores_get (a->scores, l, h, role));
          g_autoptr (PangoLayout) bl = gb_heatmap_create_layout (cr, badge, 9, FALSE);
          PangoRectangle r;
          pango_layout_get_extents (bl, NULL, &r);
          cairo_move_to (cr, x + THUMB - (double) r.width / PANGO_SCALE, y + 1);
          pango_cairo_show_layout (cr, bl);
        }
    }
  gb_heatmap_draw_cells (cr, &hm, x, y + 16, THUMB / T);
  gb_heatmap_draw_na (cr, &colors, T, x, y + 16, THUMB / T);
}

static void
draw_all_heads (cairo_t *cr,
                gpointer user_data)
{
  const AllHeads *a = user_data;
  const GbAttentionMaps *m = a->maps;
  GbHeatmapColors colors;
  g_autofree float *buf = g_new (float, (gsize) m->n_tokens * m->n_tokens);
  g_autofree char *title = g_strdup_printf ("%s — every head, %u tokens (%s scale)", gb_model_get_name (a->model),
                                            m->n_tokens, gb_norm_name (a->norm));

  gb_heatmap_colors (FALSE, &colors);
  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_paint (cr);
  cairo_set_source_rgb (cr, colors.fg[0], colors.fg[1], colors.fg[2]);
  g_autoptr (PangoLayout) tl = gb_heatmap_create_layout (cr, title, 15, TRUE);
  cairo_move_to (cr, PAD, PAD);
  pango_cairo_show_layout (cr, tl);
  for (guint l = 0; l < m->n_layer; l++)
    for (guint h = 0; h < m->n_head; h++)
      draw_tile (cr, a, l, h, PAD + h * (THUMB + THUMB_GAP), a->top + l * (THUMB + 16 + THUMB_GAP), buf);
  gb_heatmap_draw_legend (cr, &colors, a->norm, PAD + m->n_head * (THUMB + THUMB_GAP) + 6, a->top + 16,
                          CLAMP (m->n_layer * (THUMB + 16 + THUMB_GAP) - THUMB_GAP - 16, THUMB, 280));
}

gboolean
gb_attention_export_all_heads (GbModel               *model,
                               const GbAttentionMaps *maps,
                               const GbHeadScores    *scores,
                               GbNorm                 norm,
                               const char            *path,
                               double                 scale,
                               GError               **error)
{
  AllHeads a = { model, maps, scores, norm, PAD + 32 };
  const double width = PAD * 2 + maps->n_head * (THUMB + THUMB_GAP) + 80;
  const double height = a.top + maps->n_layer * (THUMB + 16 + THUMB_GAP) + PAD;

  if (g_str_has_suffix (path, ".npy") || g_str_has_suffix (path, ".json"))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: the all-heads export is an image (.png, .svg or .pdf)", path);
      return FALSE;
    }
  return gb_figure_export (path, MAX (width, 420), height, scale, draw_all_heads, &a, error);
}
