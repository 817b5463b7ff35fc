/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-render"

#include <cairo-pdf.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

#include "gb-colormap.h"
#include "gb-explain-report.h"
#include "gb-heatmap.h"

#define PAGE_W 595.0 /* A4 in points */
#define PAGE_H 842.0
#define MARGIN 42.0
#define ROW_H 15.0
#define CAVEAT "Attention is not explanation (Jain & Wallace 2019): these weights show where the decision position " \
               "reads from, not what caused the decision. Occlusion above is the causal measure."

static const char *evidence_names[GB_N_EVIDENCE] = {
  [GB_EVIDENCE_OCCLUSION] = "occlusion",
  [GB_EVIDENCE_IG] = "integrated gradients",
  [GB_EVIDENCE_GRAD_X_INPUT] = "gradient x input",
  [GB_EVIDENCE_ROLLOUT] = "attention rollout",
};

const char *
gb_evidence_name (GbEvidence evidence)
{
  g_return_val_if_fail (evidence < GB_N_EVIDENCE, NULL);
  return evidence_names[evidence];
}

const double *
gb_evidence_fields (const GbExplanation *e,
                    GbEvidence           evidence)
{
  switch (evidence)
    {
    case GB_EVIDENCE_OCCLUSION: return e->occlusion;
    case GB_EVIDENCE_IG: return e->field_ig;
    case GB_EVIDENCE_GRAD_X_INPUT: return e->field_grad_x_input;
    case GB_EVIDENCE_ROLLOUT: return e->field_rollout;
    default: return NULL;
    }
}

double *
gb_evidence_tokens (const GbExplanation *e,
                    GbEvidence           evidence)
{
  const double *src = NULL;
  switch (evidence)
    {
    case GB_EVIDENCE_OCCLUSION: src = e->token_occlusion; break;
    case GB_EVIDENCE_IG: src = e->ig; break;
    case GB_EVIDENCE_GRAD_X_INPUT: src = e->grad_x_input; break;
    case GB_EVIDENCE_ROLLOUT:
      if (e->attn_rollout == NULL)
        return NULL;
      double *out = g_new (double, e->n_tokens);
      for (guint t = 0; t < e->n_tokens; t++)
        out[t] = e->attn_rollout[t];
      return out;
    default: break;
    }
  return src ? g_memdup2 (src, e->n_tokens * sizeof (double)) : NULL;
}

void
gb_explain_diverging (double   v,
                      gboolean dark,
                      double   rgb[3])
{
  static const double pos[3] = { 0.16, 0.45, 0.85 }, neg[3] = { 0.87, 0.33, 0.12 };
  const double bg[3] = { dark ? 0.16 : 1.0, dark ? 0.16 : 1.0, dark ? 0.17 : 1.0 };
  const double *end = v >= 0 ? pos : neg;
  double t = CLAMP (fabs (isfinite (v) ? v : 0), 0, 1);
  for (int i = 0; i < 3; i++)
    rgb[i] = bg[i] + t * (end[i] - bg[i]);
}

/* ---- Text ---- */

static void
fg (cairo_t *cr,
    gboolean dark,
    double   alpha)
{
  if (dark)
    cairo_set_source_rgba (cr, 0.93, 0.93, 0.93, alpha);
  else
    cairo_set_source_rgba (cr, 0.1, 0.1, 0.12, alpha);
}

/* Draws @s at (x, y), wrapped to @width when > 0; returns its height. */
static double
text (cairo_t    *cr,
      const char *s,
      double      px,
      gboolean    bold,
      double      x,
      double      y,
      double      width,
      gboolean    ellipsize)
{
  g_autoptr (PangoLayout) layout = gb_heatmap_create_layout (cr, s, px, bold);
  PangoRectangle r;

  if (width > 0)
    {
      pango_layout_set_width (layout, (int) (width * PANGO_SCALE));
      if (ellipsize)
        pango_layout_set_ellipsize (layout, PANGO_ELLIPSIZE_END);
      else
        pango_layout_set_wrap (layout, PANGO_WRAP_WORD_CHAR);
    }
  pango_layout_get_extents (layout, NULL, &r);
  cairo_move_to (cr, x, y);
  pango_cairo_show_layout (cr, layout);
  return (double) r.height / PANGO_SCALE;
}

static double
text_width (cairo_t    *cr,
            const char *s,
            double      px)
{
  g_autoptr (PangoLayout) layout = gb_heatmap_create_layout (cr, s, px, FALSE);
  PangoRectangle r;
  pango_layout_get_extents (layout, NULL, &r);
  return (double) r.width / PANGO_SCALE;
}

static double
max_abs (const double *v,
         guint         n)
{
  double m = 0;
  for (guint i = 0; i < n; i++)
    if (isfinite (v[i]))
      m = MAX (m, fabs (v[i]));
  return m;
}

/* ---- Figures ---- */

double
gb_explain_draw_field_bars (cairo_t             *cr,
                            const GbExplanation *e,
                            GbEvidence           evidence,
                            double               x,
                            double               y,
                            double               width,
                            gboolean             dark)
{
  const double *v = gb_evidence_fields (e, evidence);
  const double name_w = 104, value_w = 116, num_w = 52;
  const double bar_x = x + name_w + value_w, bar_w = MAX (40, width - name_w - value_w - num_w);
  const double zero = evidence == GB_EVIDENCE_ROLLOUT ? bar_x : bar_x + bar_w / 2;
  const double half = evidence == GB_EVIDENCE_ROLLOUT ? bar_w : bar_w / 2;

  if (v == NULL)
    {
      fg (cr, dark, 0.7);
      return text (cr, e->gradient_note ? e->gradient_note : "not computed", 10, FALSE, x, y, width, FALSE);
    }
  const double m = max_abs (v, e->n_fields);
  for (guint f = 0; f < e->n_fields; f++)
    {
      const GbAppField *af = g_ptr_array_index (e->app->fields, f);
      const double ry = y + f * ROW_H;
      double rgb[3];
      if (f % 2 == 0)
        {
          fg (cr, dark, 0.04);
          cairo_rectangle (cr, x, ry, width, ROW_H);
          cairo_fill (cr);
        }
      fg (cr, dark, 1);
      text (cr, af->name, 9.5, FALSE, x + 2, ry + 1.5, name_w - 6, TRUE);
      fg (cr, dark, 0.65);
      text (cr, af->value, 9.5, FALSE, x + name_w, ry + 1.5, value_w - 6, TRUE);
      const double frac = m > 0 ? v[f] / m : 0;
      gb_explain_diverging (evidence == GB_EVIDENCE_ROLLOUT ? fabs (frac) : (frac >= 0 ? 1 : -1) * MAX (0.55, fabs (frac)),
                            dark, rgb);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      const double len = fabs (frac) * half;
      cairo_rectangle (cr, frac >= 0 ? zero : zero - len, ry + 3, MAX (len, 0.5), ROW_H - 6);
      cairo_fill (cr);
      fg (cr, dark, 1);
      char num[32];
      g_snprintf (num, sizeof num, evidence == GB_EVIDENCE_ROLLOUT ? "%.3f" : "%+.2f", v[f]);
      text (cr, num, 9.5, FALSE, x + width - text_width (cr, num, 9.5), ry + 1.5, 0, FALSE);
    }
  /* The zero line. */
  fg (cr, dark, 0.5);
  cairo_set_line_width (cr, 0.75);
  cairo_move_to (cr, zero, y);
  cairo_line_to (cr, zero, y + e->n_fields * ROW_H);
  cairo_stroke (cr);
  return e->n_fields * ROW_H;
}

/* A token's text as it reads in the application ("\n" ends the line). */
static char *
token_text (GbTokenizer *tok,
            gint32       id,
            gboolean    *newline)
{
  gsize n = 0;
  const guint8 *b = gb_tokenizer_token_bytes (tok, id, &n);
  g_autofree char *raw = g_strndup ((const char *) b, n);
  char *valid = g_utf8_make_valid (raw, -1);
  *newline = strchr (valid, '\n') != NULL;
  g_strdelimit (valid, "\n\r\t", ' ');
  return valid;
}

double
gb_explain_draw_tokens (cairo_t             *cr,
                        GbExplainer         *explainer,
                        const GbExplanation *e,
                        GbEvidence           evidence,
                        double               x,
                        double               y,
                        double               width,
                        gboolean             dark)
{
  GbTokenizer *tok = gb_model_get_tokenizer (gb_explainer_get_model (explainer));
  g_autofree double *v = gb_evidence_tokens (e, evidence);
  const double px = 10, line_h = 15;
  double cx = x, cy = y;

  if (v == NULL)
    {
      fg (cr, dark, 0.7);
      return text (cr, e->gradient_note ? e->gradient_note : "not computed", 10, FALSE, x, y, width, FALSE);
    }
  const double m = max_abs (v, e->n_tokens);
  for (guint t = 0; t < e->n_tokens; t++)
    {
      gboolean newline;
      g_autofree char *s = token_text (tok, e->tokens[t], &newline);
      const gboolean lead = s[0] == ' ';
      const char *shown = lead ? s + 1 : s;
      const double gap = lead ? 3 : 0;
      const double w = *shown ? text_width (cr, shown, px) + 1 : 0;
      if (cx + gap + w > x + width && cx > x)
        cx = x, cy += line_h;
      cx += cx > x ? gap : 0;
      if (w > 0)
        {
          double rgb[3];
          gb_explain_diverging (m > 0 ? (evidence == GB_EVIDENCE_ROLLOUT ? fabs (v[t]) : v[t]) / m : 0, dark, rgb);
          cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
          cairo_rectangle (cr, cx, cy, w, line_h - 1.5);
          cairo_fill (cr);
          fg (cr, dark, 1);
          text (cr, shown, px, FALSE, cx + 0.5, cy + 0.5, 0, FALSE);
          cx += w;
        }
      if (newline)
        cx = x, cy += line_h;
    }
  return cy + line_h - y;
}

double
gb_explain_draw_attention (cairo_t             *cr,
                           GbExplainer         *explainer,
                           const GbExplanation *e,
                           gboolean             heads,
                           double               x,
                           double               y,
                           double               width,
                           gboolean             dark)
{
  const guint L = e->n_layer, H = e->n_head, T = e->n_tokens;
  const guint n_rows = heads ? L * H : L;
  const double label_w = 54, row_h = heads ? 7 : 13;
  const double cell = (width - label_w) / MAX (1, T);

  if (e->attn_mean == NULL || T == 0)
    return 0;
  for (guint r = 0; r <= n_rows; r++)
    {
      const float *row = r == n_rows ? e->attn_rollout : heads ? e->attn_heads + (gsize) r * T : e->attn_mean + (gsize) r * T;
      const double ry = y + r * row_h + (r == n_rows ? 4 : 0) + (heads && r < n_rows ? (r / H) * 2 : (heads ? (L - 1) * 2 : 0));
      const double rh = r == n_rows ? 13 : row_h;
      float m = 0;
      for (guint t = 0; t < T; t++)
        m = MAX (m, row[t]);
      char name[32] = "";
      if (r == n_rows)
        g_strlcpy (name, "rollout", sizeof name);
      else if (!heads)
        g_snprintf (name, sizeof name, "layer %u", r);
      else if (r % H == 0)
        g_snprintf (name, sizeof name, "layer %u", r / H);
      fg (cr, dark, 1);
      if (*name)
        text (cr, name, heads && r < n_rows ? 7.5 : 9, FALSE, x, ry - (heads && r < n_rows ? 1.5 : -0.5), label_w - 4, TRUE);
      for (guint t = 0; t < T; t++)
        {
          const guint8 *c = gb_viridis (m > 0 ? row[t] / m : 0);
          cairo_set_source_rgb (cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
          cairo_rectangle (cr, x + label_w + t * cell, ry, ceil (cell * 4) / 4 + 0.2, rh - 1);
          cairo_fill (cr);
        }
    }
  const double grid_h = n_rows * row_h + (heads ? (L - 1) * 2 : 0) + 4 + 13;
  /* Fields under their tokens. */
  double by = y + grid_h + 8;
  double last_end = -1;
  for (guint f = 0; f < e->n_fields; f++)
    {
      int first = -1, last = -1;
      for (guint t = 0; t < T; t++)
        if (e->token_field[t] == (int) f)
          {
            first = first < 0 ? (int) t : first;
            last = (int) t;
          }
      if (first < 0)
        continue;
      const double x0 = x + label_w + first * cell, x1 = x + label_w + (last + 1) * cell;
      fg (cr, dark, 0.6);
      cairo_set_line_width (cr, 1);
      cairo_move_to (cr, x0 + 0.5, by);
      cairo_line_to (cr, x1 - 0.5, by);
      cairo_stroke (cr);
      if (x0 > last_end)
        {
          cairo_save (cr);
          cairo_move_to (cr, (x0 + x1) / 2 - 4, by + 3);
          cairo_translate (cr, (x0 + x1) / 2 - 4, by + 3);
          cairo_rotate (cr, G_PI / 2);
          fg (cr, dark, 0.85);
          const GbAppField *af = g_ptr_array_index (e->app->fields, f);
          text (cr, af->name, 8, FALSE, 0, -5, 80, TRUE);
          cairo_restore (cr);
          last_end = (x0 + x1) / 2 + 5;
        }
    }
  (void) explainer;
  return grid_h + 8 + 86;
}

double
gb_explain_draw_audit (cairo_t       *cr,
                       GbExplainer   *explainer,
                       const GbAudit *a,
                       double         x,
                       double         y,
                       double         width,
                       gboolean       dark)
{
  GbAppSchema *schema = gb_explainer_get_schema (explainer);
  g_autofree char *pos = g_strstrip (g_strdup (schema->positive));
  const char *heads[] = { a->group_key ? a->group_key : "group", "n", pos, "rate", "TP", "FP", "FN", "TN" };
  const double cols[] = { 0, 110, 150, 215, 270, 310, 350, 390 };
  const double bar_x = x + 435, bar_w = MAX (20, width - 435);
  double ry = y;

  fg (cr, dark, 1);
  for (guint c = 0; c < G_N_ELEMENTS (heads); c++)
    text (cr, heads[c], 9.5, TRUE, x + cols[c], ry, c == 0 ? 104 : 0, TRUE);
  ry += ROW_H + 2;
  for (guint i = 0; i <= a->groups->len; i++)
    {
      const GbAuditGroup *g = i < a->groups->len ? g_ptr_array_index (a->groups, i) : &a->total;
      char cells[8][48];
      g_strlcpy (cells[0], g->group, sizeof cells[0]);
      g_snprintf (cells[1], 48, "%u", g->n);
      g_snprintf (cells[2], 48, "%u", g->n_positive);
      g_snprintf (cells[3], 48, "%.1f%%", 100 * g->rate);
      const guint conf[] = { g->tp, g->fp, g->fn, g->tn };
      for (guint c = 0; c < 4; c++)
        g_snprintf (cells[4 + c], 48, g->n_labeled ? "%u" : "-", conf[c]);
      if (i == a->groups->len)
        {
          fg (cr, dark, 0.4);
          cairo_set_line_width (cr, 0.75);
          cairo_move_to (cr, x, ry - 1);
          cairo_line_to (cr, x + width, ry - 1);
          cairo_stroke (cr);
        }
      fg (cr, dark, 1);
      for (guint c = 0; c < 8; c++)
        text (cr, cells[c], 9.5, i == a->groups->len, x + cols[c], ry, c == 0 ? 104 : 0, TRUE);
      double rgb[3];
      gb_explain_diverging (0.8, dark, rgb);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      cairo_rectangle (cr, bar_x, ry + 3, g->rate * bar_w, ROW_H - 6);
      cairo_fill (cr);
      ry += ROW_H;
    }
  ry += 4;
  g_autofree char *gap = g_strdup_printf ("Gap between the highest and lowest %s rate: %.1f percentage points. "
                                          "TP/FP/FN/TN against the records' own labels (“%s”).",
                                          pos, 100 * a->gap, schema->label_key);
  fg (cr, dark, 1);
  ry += text (cr, gap, 9.5, FALSE, x, ry, width, FALSE);
  return ry - y;
}

/* ---- Provenance ---- */

char *
gb_model_weights_sha256 (const char   *dir,
                         GCancellable *cancellable,
                         GError      **error)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GString *out = g_string_new (NULL);
  const char *name;

  if (d == NULL)
    return g_string_free (out, TRUE), NULL;
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".safetensors"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, gb_compare_string_ptrs);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, g_ptr_array_index (names, i), NULL);
      g_autofree char *sha = gb_file_sha256_cancellable (path, cancellable, error);
      if (sha == NULL)
        return g_string_free (out, TRUE), NULL;
      g_string_append_printf (out, "%s%s  %s", i ? "\n" : "", (char *) g_ptr_array_index (names, i),
                              sha);
    }
  return g_string_free (out, FALSE);
}

/* ---- The report ---- */

static cairo_status_t
append_bytes (void                *closure,
              const unsigned char *data,
              unsigned int         length)
{
  g_byte_array_append (closure, data, length);
  return CAIRO_STATUS_SUCCESS;
}

typedef struct
{
  cairo_t *cr;
  double   y;
  guint    page;
} Page;

static void
need (Page  *p,
      double h)
{
  if (p->y + h <= PAGE_H - MARGIN)
    return;
  cairo_show_page (p->cr);
  p->page++;
  p->y = MARGIN;
}

/* A heading kept on the same page as the first @keep points below it. */
static void
heading_keep (Page       *p,
              const char *s,
              double      keep)
{
  need (p, 40 + keep);
  p->y += 10;
  fg (p->cr, FALSE, 1);
  p->y += text (p->cr, s, 13, TRUE, MARGIN, p->y, PAGE_W - 2 * MARGIN, FALSE) + 4;
}

static void
heading (Page       *p,
         const char *s)
{
  heading_keep (p, s, 0);
}

static void
para (Page       *p,
      const char *s,
      double      px,
      double      alpha)
{
  need (p, 2 * px);
  fg (p->cr, FALSE, alpha);
  p->y += text (p->cr, s, px, FALSE, MARGIN, p->y, PAGE_W - 2 * MARGIN, FALSE) + 3;
}

static void
draw_explanation (Page                *p,
                  GbExplainer         *ex,
                  const GbExplanation *e)
{
  GbAppSchema *schema = gb_explainer_get_schema (ex);
  const double W = PAGE_W - 2 * MARGIN;
  g_autofree char *word = g_strstrip (g_strdup (e->decision.positive ? schema->positive : schema->negative));
  g_autofree char *pos = g_strstrip (g_strdup (schema->positive));
  g_autofree char *neg = g_strstrip (g_strdup (schema->negative));

  heading (p, "Decision");
  g_autofree char *big = g_strdup_printf ("%s", word);
  big[0] = g_ascii_toupper (big[0]);
  double rgb[3];
  gb_explain_diverging (e->decision.positive ? 1 : -1, FALSE, rgb);
  cairo_set_source_rgb (p->cr, rgb[0], rgb[1], rgb[2]);
  p->y += text (p->cr, big, 22, TRUE, MARGIN, p->y, 0, FALSE);
  g_autofree char *probs = g_strdup_printf (
    "p(%s) = %.3f, p(%s) = %.3f (the two label words renormalised); log-odds %s/%s = %+.3f. "
    "Over the whole %s: p(“%s”) = %.3g, p(“%s”) = %.3g.",
    pos, e->decision.p_positive, neg, 1 - e->decision.p_positive, pos, neg, e->decision.log_odds,
    e->classifier ? "set of classes" : "vocabulary", pos, e->decision.p_pos_full, neg, e->decision.p_neg_full);
  para (p, probs, 10, 1);

  heading (p, "Application");
  need (p, 60);
  fg (p->cr, FALSE, 0.04);
  g_autoptr (PangoLayout) lay = gb_heatmap_create_layout (p->cr, e->app->text, 9.5, FALSE);
  PangoRectangle r;
  pango_layout_set_width (lay, (int) ((W - 16) * PANGO_SCALE));
  pango_layout_set_wrap (lay, PANGO_WRAP_WORD_CHAR);
  pango_layout_get_extents (lay, NULL, &r);
  const double th = (double) r.height / PANGO_SCALE;
  need (p, th + 12);
  fg (p->cr, FALSE, 0.05);
  cairo_rectangle (p->cr, MARGIN, p->y, W, th + 12);
  cairo_fill (p->cr);
  fg (p->cr, FALSE, 1);
  cairo_move_to (p->cr, MARGIN + 8, p->y + 6);
  pango_cairo_show_layout (p->cr, lay);
  p->y += th + 16;

  heading_keep (p, "Field attributions: occlusion (causal)", e->n_fields * ROW_H + 30);
  g_autofree char *how = g_strdup_printf ("Change in log-odds %s/%s when %s; positive bars pushed towards %s, negative "
                                          "towards %s.", pos, neg,
                                          e->occlusion_mode == GB_OCCLUDE_NEUTRAL
                                            ? "the field's value is replaced by the schema's neutral value (its line "
                                              "removed when it has none)"
                                            : "the field's line is removed from the application",
                                          pos, neg);
  para (p, how, 9.5, 0.75);
  need (p, e->n_fields * ROW_H + 4);
  p->y += gb_explain_draw_field_bars (p->cr, e, GB_EVIDENCE_OCCLUSION, MARGIN, p->y, W, FALSE) + 6;

  heading (p, "Counterfactual");
  g_autofree char *sentence = gb_explanation_counterfactual_sentence (e, ex);
  para (p, sentence ? sentence : "No single-field change among the values tried flips the decision.", 10.5, 1);

  heading_keep (p, "Field attributions: integrated gradients", e->n_fields * ROW_H + 30);
  if (e->ig)
    {
      g_autofree char *ig = g_strdup_printf (
        "%u steps on the token embeddings (baseline: position embeddings only). Completeness: the attributions sum to "
        "%.3f; F(input) - F(baseline) = %.3f (error %.2f%%).",
        e->ig_steps, e->ig_sum, e->decision.log_odds - e->baseline_log_odds, 100 * e->ig_completeness);
      para (p, ig, 9.5, 0.75);
    }
  need (p, e->n_fields * ROW_H + 4);
  p->y += gb_explain_draw_field_bars (p->cr, e, GB_EVIDENCE_IG, MARGIN, p->y, W, FALSE) + 6;

  heading_keep (p, "Token heatmap: occlusion of each token", 120);
  para (p, "Each token removed in turn; blue pushed towards the positive label, orange towards the negative.", 9.5, 0.75);
  need (p, 120);
  p->y += gb_explain_draw_tokens (p->cr, ex, e, GB_EVIDENCE_OCCLUSION, MARGIN, p->y, W, FALSE) + 6;
  heading_keep (p, "Token heatmap: integrated gradients", 120);
  need (p, 120);
  p->y += gb_explain_draw_tokens (p->cr, ex, e, GB_EVIDENCE_IG, MARGIN, p->y, W, FALSE) + 6;

  heading_keep (p, "Attention from the decision position", (e->n_layer + 1) * 13 + 130);
  para (p, CAVEAT, 9.5, 0.75);
  need (p, (e->n_layer + 1) * 13 + 100);
  p->y += gb_explain_draw_attention (p->cr, ex, e, FALSE, MARGIN, p->y, W, FALSE) + 6;
  heading_keep (p, "Attention from the decision position, every head", e->n_layer * e->n_head * 7 + 140);
  p->y += gb_explain_draw_attention (p->cr, ex, e, TRUE, MARGIN, p->y, W, FALSE) + 6;
}

char *
gb_explain_steer_description (const char          *path,
                              const GbSteerVector *vec,
                              double               multiplier,
                              guint                start_pos,
                              GError             **error)
{
  g_autofree char *sha = gb_file_sha256 (path, error);
  if (sha == NULL)
    return NULL;
  GString *blocks = g_string_new (NULL);
  for (guint i = 0; i < vec->n_layers; i++)
    g_string_append_printf (blocks, "%s%u", i ? ", " : "", vec->layers[i].layer);
  char *out = g_strdup_printf ("%s (SHA-256 %s): added to the output of block%s %s, multiplier %g, from position %u", path,
                               sha, vec->n_layers > 1 ? "s" : "", blocks->str, multiplier, start_pos);
  g_string_free (blocks, TRUE);
  return out;
}

char *
gb_explain_sae_description (const GbSae *sae,
                            GError     **error)
{
  const char *sha = gb_sae_weights_sha256 (sae, error);
  if (sha == NULL)
    return NULL;
  g_autofree char *kind = sae->kind == GB_SAE_TOPK ? g_strdup_printf ("topk k=%u", sae->k) : g_strdup (gb_sae_kind_name (sae->kind));
  return g_strdup_printf ("%s (blocks.%u.%s, %s, %u -> %u; sae_weights.safetensors SHA-256 %s)", sae->path ? sae->path : "SAE",
                          sae->layer, gb_hook_name (sae->hook), kind, sae->d_in, sae->d_sae, sha);
}

char *
gb_sae_user_cache_path (const char *sae_dir)
{
  g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA1, sae_dir, -1);
  return g_build_filename (g_get_user_cache_dir (), "glassbox", "features", hash, NULL);
}

GbSaeAnalysis *
gb_explain_sae_descriptions (const GbSae *sae)
{
  if (sae->path == NULL)
    return NULL;
  g_autofree char *path = g_build_filename (sae->path, "features.json", NULL);
  GbSaeAnalysis *a = gb_sae_analysis_load_for_weights (path, sae, NULL);
  if (a != NULL)
    return a;
  g_autofree char *alt = gb_sae_user_cache_path (sae->path);
  return gb_sae_analysis_load_for_weights (alt, sae, NULL);
}

const char *
gb_explain_feature_label (const GbSaeAnalysis *a,
                          guint                index)
{
  if (a == NULL)
    return NULL;
  if (index < a->n_features && a->features[index].index == index)
    return a->features[index].label;
  for (guint j = 0; j < a->n_features; j++)
    if (a->features[j].index == index)
      return a->features[j].label;
  return NULL;
}

static void
draw_feature_table (Page                     *p,
                    const GbReportProvenance *prov,
                    const GArray             *top)
{
  if (top->len == 0)
    {
      para (p, "No feature is active there.", 10, 1);
      return;
    }
  const double cols[3] = { MARGIN, MARGIN + 70, MARGIN + 160 };
  const char *head[3] = { "Feature", "Activation", "Description (most common top tokens)" };
  need (p, ROW_H);
  fg (p->cr, FALSE, 1);
  for (guint c = 0; c < 3; c++)
    text (p->cr, head[c], 9.5, TRUE, cols[c], p->y, 0, FALSE);
  p->y += ROW_H;
  for (guint i = 0; i < top->len; i++)
    {
      const GbFeatureActivation *fa = &g_array_index (top, GbFeatureActivation, i);
      const char *label = gb_explain_feature_label (prov->sae_analysis, fa->index);
      g_autofree char *idx = g_strdup_printf ("#%u", fa->index);
      g_autofree char *act = g_strdup_printf ("%.3f", fa->activation);
      need (p, ROW_H);
      fg (p->cr, FALSE, 1);
      text (p->cr, idx, 9.5, FALSE, cols[0], p->y, 0, FALSE);
      text (p->cr, act, 9.5, FALSE, cols[1], p->y, 0, FALSE);
      fg (p->cr, FALSE, label && *label ? 1 : 0.6);
      text (p->cr, label && *label ? label : "no feature cache (glassbox-cli sae features)", 9.5, FALSE, cols[2], p->y,
            PAGE_W - MARGIN - cols[2], TRUE);
      p->y += ROW_H;
    }
  p->y += 4;
}

static void
draw_sae_features (Page                     *p,
                   const GbReportProvenance *prov)
{
  heading_keep (p, "SAE features at the decision position", (prov->sae_features->len + 3) * ROW_H + 30);
  para (p, prov->sae ? prov->sae : "", 9, 0.75);
  draw_feature_table (p, prov, prov->sae_features);
  if (prov->sae_field_features != NULL)
    {
      g_autofree char *h = g_strdup_printf ("SAE features over the tokens of “%s” (largest activation on any of them)",
                                            prov->sae_field);
      need (p, (prov->sae_field_features->len + 2) * ROW_H + 20);
      para (p, h, 10, 1);
      draw_feature_table (p, prov, prov->sae_field_features);
    }
}

static void
draw_provenance (Page                     *p,
                 const GbReportProvenance *prov,
                 const char               *sha)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *date = g_date_time_format_iso8601 (now);
  heading (p, "Provenance");
  g_autofree char *lines = g_strdup_printf ("Model folder: %s\nWeights (SHA-256):\n%s\nSchema: %s\nApplication: %s\n"
                                            "Audit records: %s\nInterventions: %s\nSAE: %s\nGlassbox %s, %s",
                                            prov->model_dir, sha, prov->schema_path ? prov->schema_path : "-",
                                            prov->application ? prov->application : "-", prov->audit ? prov->audit : "-",
                                            prov->interventions ? prov->interventions : "none", prov->sae ? prov->sae : "none",
                                            prov->version, date);
  para (p, lines, 9, 0.9);
}

gboolean
gb_explain_report_write (const char               *path,
                         GbExplainer              *explainer,
                         const GbExplanation      *e,
                         const GbAudit            *audit,
                         const GbReportProvenance *prov,
                         GError                  **error)
{
  g_return_val_if_fail (path != NULL && explainer != NULL && prov != NULL, FALSE);
  g_return_val_if_fail (e != NULL || audit != NULL, FALSE);

  g_autofree char *sha = prov->weights_sha256 ? g_strdup (prov->weights_sha256)
                                              : gb_model_weights_sha256 (prov->model_dir, NULL, error);
  if (sha == NULL)
    return FALSE;
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  cairo_surface_t *surface = cairo_pdf_surface_create_for_stream (append_bytes, bytes, PAGE_W, PAGE_H);
  GbAppSchema *schema = gb_explainer_get_schema (explainer);
  g_autofree char *title = g_strdup_printf ("Explain a decision: %s", e && e->app->id ? e->app->id : schema->name);
  cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_TITLE, title);
  g_autofree char *creator = g_strdup_printf ("Glassbox %s", prov->version);
  cairo_pdf_surface_set_metadata (surface, CAIRO_PDF_METADATA_CREATOR, creator);
  cairo_t *cr = cairo_create (surface);
  Page p = { cr, MARGIN, 1 };

  fg (cr, FALSE, 1);
  p.y += text (cr, title, 18, TRUE, MARGIN, p.y, PAGE_W - 2 * MARGIN, FALSE) + 2;
  g_autofree char *sub = g_strdup_printf ("Model %s · %s · labels “%s” / “%s” after “%s”",
                                          gb_model_get_name (gb_explainer_get_model (explainer)), schema->name,
                                          schema->positive, schema->negative, schema->suffix);
  para (&p, sub, 9.5, 0.7);
  if (e != NULL)
    draw_explanation (&p, explainer, e);
  if (e != NULL && prov->decision_steered != NULL)
    {
      const GbDecision *d = prov->decision_steered;
      g_autofree char *pos = g_strstrip (g_strdup (schema->positive));
      g_autofree char *word = g_strstrip (g_strdup (d->positive ? schema->positive : schema->negative));
      heading (&p, "Decision with the steering vector");
      word[0] = g_ascii_toupper (word[0]);
      g_autofree char *line = g_strdup_printf ("%s: p(%s) = %.3f, log-odds %+.3f (without: %+.3f). %s.", word, pos,
                                               d->p_positive, d->log_odds, e->decision.log_odds,
                                               prov->interventions ? prov->interventions : "");
      para (&p, line, 10, 1);
    }
  if (e != NULL && prov->sae_features != NULL)
    draw_sae_features (&p, prov);
  if (audit != NULL)
    {
      g_autofree char *h = g_strdup_printf ("Audit: %u records grouped by %s", audit->n, audit->group_key);
      heading_keep (&p, h, (audit->groups->len + 4) * ROW_H + 30);
      p.y += gb_explain_draw_audit (cr, explainer, audit, MARGIN, p.y, PAGE_W - 2 * MARGIN, FALSE) + 6;
    }
  if (audit != NULL && prov->audit_steered != NULL)
    {
      const GbAudit *st = prov->audit_steered;
      g_autofree char *h = g_strdup_printf ("Audit with the steering vector: %u records grouped by %s", st->n, st->group_key);
      heading_keep (&p, h, (st->groups->len + 5) * ROW_H + 30);
      para (&p, prov->interventions ? prov->interventions : "", 9.5, 0.75);
      p.y += gb_explain_draw_audit (cr, explainer, st, MARGIN, p.y, PAGE_W - 2 * MARGIN, FALSE) + 2;
      g_autofree char *gap = g_strdup_printf ("The gap moves from %.1f to %.1f percentage points.", 100 * audit->gap,
                                              100 * st->gap);
      para (&p, gap, 10, 1);
    }
  draw_provenance (&p, prov, sha);

  cairo_status_t status = cairo_status (cr);
  cairo_destroy (cr);
  cairo_surface_finish (surface);
  if (status == CAIRO_STATUS_SUCCESS)
    status = cairo_surface_status (surface);
  cairo_surface_destroy (surface);
  if (status != CAIRO_STATUS_SUCCESS)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: drawing the report failed: %s", path, cairo_status_to_string (status));
      return FALSE;
    }
  return gb_file_write_atomic (path, bytes->data, bytes->len, TRUE, error);
}
