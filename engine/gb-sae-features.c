/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <cblas.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-model-private.h"
#include "gb-paths.h"
#include "gb-sae.h"

#define N_BANDS 4
#define N_EFFECTS 10

/* One non-zero activation: token (index into the analysed stream) and value. */
typedef struct
{
  guint32 token;
  float   value;
} Hit;

static void
context_free (GbSaeContext *c)
{
  g_free (c->tokens);
  g_free (c->acts);
  g_free (c);
}

void
gb_sae_analysis_free (GbSaeAnalysis *a)
{
  if (a == NULL)
    return;
  for (guint j = 0; j < a->n_features; j++)
    {
      g_clear_pointer (&a->features[j].top, g_ptr_array_unref);
      g_clear_pointer (&a->features[j].bands, g_ptr_array_unref);
      g_free (a->features[j].label);
    }
  g_free (a->features);
  g_free (a->corpus);
  g_free (a);
}

/* The activation of one feature at stream position @tok (0 when it did not
 * fire): binary search in its hits, which are in token order. */
static float
hit_value (const Hit *hits,
           guint      n,
           guint32    tok)
{
  guint lo = 0, hi = n;
  while (lo < hi)
    {
      guint mid = (lo + hi) / 2;
      if (hits[mid].token < tok)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo < n && hits[lo].token == tok ? hits[lo].value : 0.0f;
}

static GbSaeContext *
make_context (const gint32  *stream,
              const guint32 *window_of,
              const Hit     *hits,
              guint          n_hits,
              guint32        tok,
              float          value,
              guint          radius,
              guint64        n_stream)
{
  GbSaeContext *c = g_new0 (GbSaeContext, 1);
  guint32 first = tok >= radius ? tok - radius : 0, last = MIN ((guint64) tok + radius, n_stream - 1);

  while (first < tok && window_of[first] != window_of[tok])
    first++;
  while (last > tok && window_of[last] != window_of[tok])
    last--;
  c->n = last - first + 1;
  c->tokens = g_new (gint32, c->n);
  c->acts = g_new (float, c->n);
  c->peak = tok - first;
  c->value = value;
  for (guint i = 0; i < c->n; i++)
    {
      c->tokens[i] = stream[first + i];
      c->acts[i] = hit_value (hits, n_hits, first + i);
    }
  return c;
}

static int
cmp_hit_desc (gconstpointer a,
              gconstpointer b)
{
  const Hit *x = a, *y = b;
  if (x->value != y->value)
    return x->value < y->value ? 1 : -1;
  return x->token < y->token ? -1 : x->token > y->token;
}

/* The most common peak tokens of the top contexts, e.g. " 40106 / Eastbrook". */
static char *
make_label (GbTokenizer  *tok,
            GPtrArray    *top)
{
  g_autoptr (GHashTable) counts = g_hash_table_new (g_direct_hash, g_direct_equal);
  gint32 best[2] = { -1, -1 };
  guint best_n[2] = { 0, 0 };

  for (guint i = 0; i < top->len; i++)
    {
      const GbSaeContext *c = top->pdata[i];
      gpointer key = GINT_TO_POINTER (c->tokens[c->peak] + 1);
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, key)) + 1;
      g_hash_table_insert (counts, key, GUINT_TO_POINTER (n));
    }
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, counts);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      gint32 id = GPOINTER_TO_INT (k) - 1;
      guint n = GPOINTER_TO_UINT (v);
      if (n > best_n[0] || (n == best_n[0] && id < best[0]))
        {
          best[1] = best[0], best_n[1] = best_n[0];
          best[0] = id, best_n[0] = n;
        }
      else if (n > best_n[1] || (n == best_n[1] && id < best[1]))
        best[1] = id, best_n[1] = n;
    }
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < 2; i++)
    {
      if (best[i] < 0 || (i == 1 && best_n[1] * 3 < best_n[0]))
        continue;
      g_autofree char *text = gb_tokenizer_decode (tok, &best[i], 1, NULL);
      g_autofree char *one = text ? g_strescape (g_strstrip (text), NULL) : g_strdup ("?");
      g_string_append_printf (s, "%s“%s”", s->len ? " / " : "", *one ? one : "␣");
    }
  return g_string_free (s, FALSE);
}

/* Top N_EFFECTS entries each way of logits[V]. */
static void
top_effects (const float *logits,
             guint        V,
             gint32      *promoted,
             float       *promoted_logit,
             gint32      *suppressed,
             float       *suppressed_logit)
{
  for (guint r = 0; r < N_EFFECTS; r++)
    promoted[r] = suppressed[r] = -1;
  for (guint v = 0; v < V; v++)
    for (guint side = 0; side < 2; side++)
      {
        gint32 *ids = side ? suppressed : promoted;
        float *vals = side ? suppressed_logit : promoted_logit;
        const float key = side ? -logits[v] : logits[v];
        if (ids[N_EFFECTS - 1] >= 0 && !(key > (side ? -vals[N_EFFECTS - 1] : vals[N_EFFECTS - 1])))
          continue;
        guint p = N_EFFECTS - 1;
        while (p > 0 && (ids[p - 1] < 0 || key > (side ? -vals[p - 1] : vals[p - 1])))
          {
            ids[p] = ids[p - 1];
            vals[p] = vals[p - 1];
            p--;
          }
        ids[p] = (gint32) v;
        vals[p] = logits[v];
      }
}

/* The decoder rows [first, first + n) in raw activation space, through the
 * unembedding: logits [n, V] = dirs [n, d] @ W_U^T. */
static void
effect_logits (GbModel     *model,
               const GbSae *sae,
               guint        first,
               guint        n,
               float       *logits)
{
  const guint V = model->config->n_vocab, d = sae->d_in;
  g_autofree float *dirs = g_new (float, (gsize) n * d);
  for (guint r = 0; r < n; r++)
    for (guint i = 0; i < d; i++)
      dirs[(gsize) r * d + i] = sae->W_dec[(gsize) (first + r) * d + i] * (sae->norm_std ? sae->norm_std[i] : 1.0f);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, V, d, 1.0f, dirs, d, model->lm_head, d, 0.0f, logits, V);
}

void
gb_sae_logit_effects (GbModel     *model,
                      const GbSae *sae,
                      guint        j,
                      gint32      *promoted,
                      float       *promoted_logit,
                      gint32      *suppressed,
                      float       *suppressed_logit)
{
  g_autofree float *logits = g_new (float, model->config->n_vocab);
  effect_logits (model, sae, j, 1, logits);
  top_effects (logits, model->config->n_vocab, promoted, promoted_logit, suppressed, suppressed_logit);
}

static void
summarise_feature (GbSaeFeature  *f,
                   Hit           *hits,
                   guint          n,
                   const gint32  *stream,
                   const guint32 *window_of,
                   guint64        n_stream,
                   guint          top_k,
                   guint          radius)
{
  f->n_fired = n;
  f->frequency = (double) n / n_stream;
  f->top = g_ptr_array_new_with_free_func ((GDestroyNotify) context_free);
  f->bands = g_ptr_array_new_with_free_func ((GDestroyNotify) context_free);
  if (n == 0)
    return;
  double sum = 0;
  for (guint i = 0; i < n; i++)
    {
      f->max_act = MAX (f->max_act, hits[i].value);
      sum += hits[i].value;
    }
  f->mean_act = sum / n;
  for (guint i = 0; i < n; i++)
    {
      guint bin = (guint) (hits[i].value / f->max_act * GB_SAE_HIST_BINS);
      f->hist[MIN (bin, GB_SAE_HIST_BINS - 1)]++;
    }
  /* Sorted by value on a copy: contexts need the hits in token order. */
  g_autofree Hit *sorted = g_memdup2 (hits, (gsize) n * sizeof (Hit));
  qsort (sorted, n, sizeof (Hit), cmp_hit_desc);
  /* Top contexts: one per window, strongest first. */
  g_autoptr (GHashTable) seen = g_hash_table_new (g_direct_hash, g_direct_equal);
  for (guint i = 0; i < n && f->top->len < top_k; i++)
    {
      gpointer w = GUINT_TO_POINTER (window_of[sorted[i].token] + 1);
      if (g_hash_table_contains (seen, w))
        continue;
      g_hash_table_add (seen, w);
      g_ptr_array_add (f->top, make_context (stream, window_of, hits, n, sorted[i].token, sorted[i].value, radius, n_stream));
    }
  /* Quantile bands: the hit at the middle of each of N_BANDS equal bands of
   * the sorted activations below the top ones. */
  for (guint b = 0; b < N_BANDS && n > top_k; b++)
    {
      guint i = top_k + (guint) (((double) b + 0.5) / N_BANDS * (n - top_k));
      i = MIN (i, n - 1);
      g_ptr_array_add (f->bands, make_context (stream, window_of, hits, n, sorted[i].token, sorted[i].value, radius, n_stream));
    }
}

GbSaeAnalysis *
gb_sae_analyze (GbModel       *model,
                const GbSae   *sae,
                const char    *corpus_path,
                guint64        max_tokens,
                guint          top_k,
                guint          radius,
                GbProgressFunc progress,
                gpointer       progress_data,
                GCancellable  *cancellable,
                GError       **error)
{
  if (!gb_sae_check_model (sae, model, error))
    return NULL;
  if (max_tokens == 0 || max_tokens > G_MAXUINT32 / 2)
    max_tokens = G_MAXUINT32 / 2;
  g_autoptr (GbTokenWindows) windows = gb_token_windows_new (model, corpus_path, G_MAXUINT, error);
  if (windows == NULL)
    return NULL;
  const guint d = sae->d_in, ds = sae->d_sae, W = model->config->n_positions;
  g_autoptr (GArray) stream = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) window_of = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) hit_tok = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) hit_feat = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) hit_val = g_array_new (FALSE, FALSE, sizeof (float));
  g_autofree gint32 *tokens = g_new (gint32, W);
  g_autofree float *z = g_new (float, (gsize) W * ds);
  g_autoptr (GError) local = NULL;
  guint32 n_windows = 0;
  guint T;

  while (stream->len < max_tokens && (T = gb_token_windows_next (windows, tokens, FALSE, &local)) > 0)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      GbRecord rec = { { 0 }, GB_LOGITS_NONE };
      rec.hooks[sae->hook] = (guint64) 1 << sae->layer;
      g_autoptr (GbTrace) tr = gb_model_forward (model, tokens, T, &rec, NULL, 0, cancellable, error);
      if (tr == NULL)
        return NULL;
      T = (guint) MIN ((guint64) T, max_tokens - stream->len + 1);
      g_autofree float *x = g_memdup2 (gb_trace_get (tr, sae->hook, sae->layer) + d, (gsize) (T - 1) * d * sizeof (float));
      gb_sae_preprocess (sae, x, T - 1, NULL);
      gb_sae_encode (sae, z, x, T - 1);
      /* Position 0 (the attention sink) is not analysed. */
      for (guint t = 1; t < T; t++)
        {
          const guint32 pos = stream->len;
          g_array_append_val (stream, tokens[t]);
          g_array_append_val (window_of, n_windows);
          const float *row = z + (gsize) (t - 1) * ds;
          for (guint j = 0; j < ds; j++)
            if (row[j] != 0)
              {
                g_array_append_val (hit_tok, pos);
                g_array_append_val (hit_feat, j);
                g_array_append_val (hit_val, row[j]);
              }
        }
      n_windows++;
      if (progress)
        progress (0.8 * stream->len / (double) MIN (max_tokens, G_MAXUINT32), "Encoding the corpus", progress_data);
    }
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  if (stream->len == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: no tokens to analyse", corpus_path);
      return NULL;
    }

  /* Hits grouped by feature (counting sort keeps token order). */
  g_autofree guint64 *start = g_new0 (guint64, ds + 1);
  for (guint i = 0; i < hit_feat->len; i++)
    start[g_array_index (hit_feat, guint32, i) + 1]++;
  for (guint j = 0; j < ds; j++)
    start[j + 1] += start[j];
  g_autofree Hit *hits = g_new (Hit, MAX (hit_feat->len, 1u));
  g_autofree guint64 *fill = g_memdup2 (start, (ds + 1) * sizeof (guint64));
  for (guint i = 0; i < hit_feat->len; i++)
    {
      guint32 j = g_array_index (hit_feat, guint32, i);
      hits[fill[j]++] = (Hit) { g_array_index (hit_tok, guint32, i), g_array_index (hit_val, float, i) };
    }
  g_clear_pointer (&hit_tok, g_array_unref);
  g_clear_pointer (&hit_feat, g_array_unref);
  g_clear_pointer (&hit_val, g_array_unref);

  GbSaeAnalysis *a = g_new0 (GbSaeAnalysis, 1);
  a->n_tokens = stream->len;
  a->n_features = ds;
  a->features = g_new0 (GbSaeFeature, ds);
  a->context_radius = radius;
  a->corpus = g_path_get_basename (corpus_path);
  a->metrics.explained_variance = a->metrics.mean_l0 = a->metrics.dead_fraction = NAN;
  a->metrics.clean_loss = a->metrics.spliced_loss = a->metrics.loss_increase = NAN;
  /* Logit effects, a block of features per product (one W_U pass each). */
  const guint V = model->config->n_vocab, block = 128;
  g_autofree float *logits = g_new (float, (gsize) block * V);
  for (guint j0 = 0; j0 < ds; j0 += block)
    {
      const guint n = MIN (block, ds - j0);
      effect_logits (model, sae, j0, n, logits);
      for (guint r = 0; r < n; r++)
        {
          GbSaeFeature *f = &a->features[j0 + r];
          top_effects (logits + (gsize) r * V, V, f->promoted, f->promoted_logit, f->suppressed, f->suppressed_logit);
        }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          gb_sae_analysis_free (a);
          return NULL;
        }
    }
  for (guint j = 0; j < ds; j++)
    {
      GbSaeFeature *f = &a->features[j];
      f->index = j;
      summarise_feature (f, hits + start[j], (guint) (start[j + 1] - start[j]), (const gint32 *) stream->data,
                         (const guint32 *) window_of->data, stream->len, top_k, radius);
      f->label = make_label (model->tokenizer, f->top);
      if (progress && j % 256 == 0)
        progress (0.8 + 0.2 * j / ds, "Summarising features", progress_data);
      if (j % 256 == 0 && g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          gb_sae_analysis_free (a);
          return NULL;
        }
    }
  return a;
}

/* ---- Cache (features.json) ---- */

char *
gb_sae_analysis_key (const GbSae *sae,
                     const char  *corpus_path,
                     guint64      max_tokens)
{
  /* Contents, not modification times: a cache shipped beside an SAE (the
   * bundled one) stays valid after a clone or a copy. */
  const char *w_sha = gb_sae_weights_sha256 (sae, NULL);
  g_autofree char *c_sha = corpus_path && *corpus_path ? gb_file_sha256 (corpus_path, NULL) : NULL;
  g_autofree char *base = g_path_get_basename (corpus_path);
  return g_strdup_printf ("v3 w:%s c:%s:%s n:%" G_GUINT64_FORMAT, w_sha ? w_sha : "none", base,
                          c_sha ? c_sha : "none", max_tokens);
}

static void
add_contexts (JsonBuilder *b,
              const char  *name,
              GPtrArray   *list)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; i < list->len; i++)
    {
      const GbSaeContext *c = list->pdata[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "peak");
      json_builder_add_int_value (b, c->peak);
      json_builder_set_member_name (b, "tokens");
      json_builder_begin_array (b);
      for (guint t = 0; t < c->n; t++)
        json_builder_add_int_value (b, c->tokens[t]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "acts");
      json_builder_begin_array (b);
      for (guint t = 0; t < c->n; t++)
        json_builder_add_double_value (b, c->acts[t]);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static void
add_effects (JsonBuilder  *b,
             const char   *name,
             const gint32 *ids,
             const float  *vals)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint r = 0; r < N_EFFECTS && ids[r] >= 0; r++)
    {
      json_builder_begin_array (b);
      json_builder_add_int_value (b, ids[r]);
      json_builder_add_double_value (b, vals[r]);
      json_builder_end_array (b);
    }
  json_builder_end_array (b);
}

static void
add_num (JsonBuilder *b,
         const char  *name,
         double       v)
{
  json_builder_set_member_name (b, name);
  if (isnan (v))
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, v);
}

gboolean
gb_sae_analysis_save (const GbSaeAnalysis *a,
                      const char          *path,
                      const char          *key,
                      GError             **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "key");
  json_builder_add_string_value (b, key ? key : "");
  json_builder_set_member_name (b, "corpus");
  json_builder_add_string_value (b, a->corpus ? a->corpus : "");
  json_builder_set_member_name (b, "n_tokens");
  json_builder_add_int_value (b, (gint64) a->n_tokens);
  json_builder_set_member_name (b, "context_radius");
  json_builder_add_int_value (b, a->context_radius);
  json_builder_set_member_name (b, "metrics");
  json_builder_begin_object (b);
  add_num (b, "explained_variance", a->metrics.explained_variance);
  add_num (b, "mean_l0", a->metrics.mean_l0);
  add_num (b, "dead_fraction", a->metrics.dead_fraction);
  add_num (b, "clean_loss", a->metrics.clean_loss);
  add_num (b, "spliced_loss", a->metrics.spliced_loss);
  add_num (b, "loss_increase", a->metrics.loss_increase);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "features");
  json_builder_begin_array (b);
  for (guint j = 0; j < a->n_features; j++)
    {
      const GbSaeFeature *f = &a->features[j];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "index");
      json_builder_add_int_value (b, f->index);
      json_builder_set_member_name (b, "label");
      json_builder_add_string_value (b, f->label ? f->label : "");
      json_builder_set_member_name (b, "n_fired");
      json_builder_add_int_value (b, (gint64) f->n_fired);
      json_builder_set_member_name (b, "frequency");
      json_builder_add_double_value (b, f->frequency);
      json_builder_set_member_name (b, "max_act");
      json_builder_add_double_value (b, f->max_act);
      json_builder_set_member_name (b, "mean_act");
      json_builder_add_double_value (b, f->mean_act);
      json_builder_set_member_name (b, "histogram");
      json_builder_begin_array (b);
      for (guint i = 0; i < GB_SAE_HIST_BINS; i++)
        json_builder_add_int_value (b, (gint64) f->hist[i]);
      json_builder_end_array (b);
      add_effects (b, "promoted", f->promoted, f->promoted_logit);
      add_effects (b, "suppressed", f->suppressed, f->suppressed_logit);
      add_contexts (b, "top", f->top);
      add_contexts (b, "bands", f->bands);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  gsize len;
  g_autofree char *data = json_generator_to_data (gen, &len);
  return g_file_set_contents (path, data, (gssize) len, error);
}

static double
num_member (JsonObject *o,
            const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n))
    return NAN;
  GType t = json_node_get_value_type (n);
  return t == G_TYPE_DOUBLE || t == G_TYPE_INT64 ? json_node_get_double (n) : NAN;
}

static JsonArray *
array_member (JsonObject *o,
              const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static gboolean
read_contexts (JsonArray *arr,
               GPtrArray *out)
{
  for (guint i = 0; arr && i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        return FALSE;
      JsonObject *o = json_node_get_object (n);
      JsonArray *t = array_member (o, "tokens"), *v = array_member (o, "acts");
      double peak = num_member (o, "peak");
      if (t == NULL || v == NULL || json_array_get_length (t) != json_array_get_length (v) || json_array_get_length (t) == 0
          || !(peak >= 0 && peak < json_array_get_length (t)))
        return FALSE;
      GbSaeContext *c = g_new0 (GbSaeContext, 1);
      c->n = json_array_get_length (t);
      c->tokens = g_new (gint32, c->n);
      c->acts = g_new (float, c->n);
      c->peak = (guint) peak;
      for (guint k = 0; k < c->n; k++)
        {
          c->tokens[k] = (gint32) json_array_get_int_element (t, k);
          c->acts[k] = (float) json_array_get_double_element (v, k);
        }
      c->value = c->acts[c->peak];
      g_ptr_array_add (out, c);
    }
  return TRUE;
}

static void
read_effects (JsonArray *arr,
              gint32    *ids,
              float     *vals)
{
  for (guint r = 0; r < N_EFFECTS; r++)
    ids[r] = -1;
  for (guint r = 0; arr && r < MIN (N_EFFECTS, json_array_get_length (arr)); r++)
    {
      JsonNode *n = json_array_get_element (arr, r);
      if (!JSON_NODE_HOLDS_ARRAY (n) || json_array_get_length (json_node_get_array (n)) != 2)
        return;
      ids[r] = (gint32) json_array_get_int_element (json_node_get_array (n), 0);
      vals[r] = (float) json_array_get_double_element (json_node_get_array (n), 1);
    }
}

static GbSaeAnalysis *
analysis_load (const char *path,
               const char *key,
               gboolean    prefix,
               GError    **error);

GbSaeAnalysis *
gb_sae_analysis_load (const char *path,
                      const char *key,
                      GError    **error)
{
  return analysis_load (path, key, FALSE, error);
}

GbSaeAnalysis *
gb_sae_analysis_load_for_weights (const char  *path,
                                  const GbSae *sae,
                                  GError     **error)
{
  /* The key starts "v3 w:SHA256 c:": the weights' part. */
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return NULL;
  g_autofree char *key = gb_sae_analysis_key (sae, "", 0);
  char *c = strstr (key, " c:");
  if (c == NULL)
    return NULL;
  c[1] = '\0';
  GbSaeAnalysis *a = analysis_load (path, key, TRUE, error);
  if (a != NULL && a->n_features != sae->d_sae)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: describes %u features, the SAE has %u", path, a->n_features,
                   sae->d_sae);
      g_clear_pointer (&a, gb_sae_analysis_free);
    }
  return a;
}

static GbSaeAnalysis *
analysis_load (const char *path,
               const char *key,
               gboolean    prefix,
               GError    **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  g_autoptr (GbSaeAnalysis) a = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return NULL;
  if (!gb_json_parser_load_file (parser, path, &local))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not valid JSON: %s", path, local->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    goto bad;
  JsonObject *obj = json_node_get_object (root);
  JsonNode *k = json_object_get_member (obj, "key");
  const char *stored = k && JSON_NODE_HOLDS_VALUE (k) ? json_node_get_string (k) : NULL;
  if (key && (stored == NULL || (prefix ? !g_str_has_prefix (stored, key) : !g_str_equal (stored, key))))
    return NULL;  /* made from other weights or another corpus */
  JsonArray *feats = array_member (obj, "features");
  JsonNode *mn = json_object_get_member (obj, "metrics");
  if (feats == NULL || mn == NULL || !JSON_NODE_HOLDS_OBJECT (mn))
    goto bad;
  a = g_new0 (GbSaeAnalysis, 1);
  JsonObject *m = json_node_get_object (mn);
  a->n_tokens = gb_json_count (num_member (obj, "n_tokens"), G_MAXUINT64);
  a->context_radius = (guint) gb_json_count (num_member (obj, "context_radius"), G_MAXUINT);
  a->corpus = g_strdup (json_object_get_string_member_with_default (obj, "corpus", ""));
  a->metrics.explained_variance = num_member (m, "explained_variance");
  a->metrics.mean_l0 = num_member (m, "mean_l0");
  a->metrics.dead_fraction = num_member (m, "dead_fraction");
  a->metrics.clean_loss = num_member (m, "clean_loss");
  a->metrics.spliced_loss = num_member (m, "spliced_loss");
  a->metrics.loss_increase = num_member (m, "loss_increase");
  a->n_features = json_array_get_length (feats);
  a->features = g_new0 (GbSaeFeature, a->n_features);
  for (guint j = 0; j < a->n_features; j++)
    {
      GbSaeFeature *f = &a->features[j];
      f->top = g_ptr_array_new_with_free_func ((GDestroyNotify) context_free);
      f->bands = g_ptr_array_new_with_free_func ((GDestroyNotify) context_free);
      JsonNode *n = json_array_get_element (feats, j);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        goto bad;
      JsonObject *o = json_node_get_object (n);
      /* Features are stored in order; views index them by latent. */
      if (num_member (o, "index") != (double) j)
        goto bad;
      f->index = j;
      f->label = g_strdup (json_object_get_string_member_with_default (o, "label", ""));
      f->n_fired = gb_json_count (num_member (o, "n_fired"), G_MAXUINT64);
      f->frequency = num_member (o, "frequency");
      f->max_act = (float) num_member (o, "max_act");
      f->mean_act = num_member (o, "mean_act");
      JsonArray *h = array_member (o, "histogram");
      for (guint i = 0; h && i < MIN (GB_SAE_HIST_BINS, json_array_get_length (h)); i++)
        f->hist[i] = (guint64) MAX (0, json_array_get_int_element (h, i));
      read_effects (array_member (o, "promoted"), f->promoted, f->promoted_logit);
      read_effects (array_member (o, "suppressed"), f->suppressed, f->suppressed_logit);
      if (!read_contexts (array_member (o, "top"), f->top) || !read_contexts (array_member (o, "bands"), f->bands))
        goto bad;
    }
  return g_steal_pointer (&a);

bad:
  g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not a Glassbox feature cache", path);
  return NULL;
}
