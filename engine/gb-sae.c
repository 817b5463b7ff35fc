/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <cblas.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gb-error.h"
#include "gb-gemm.h"
#include "gb-json.h"
#include "gb-kernels.h"
#include "gb-parallel.h"
#include "gb-safetensors.h"
#include "gb-paths.h"
#include "gb-sae.h"

#define MAX_D_SAE (1u << 22)
#define MAX_D_IN  (1u << 16)

static const char *kind_names[] = { "standard", "topk", "jumprelu" };

const char *
gb_sae_kind_name (GbSaeKind kind)
{
  return kind < G_N_ELEMENTS (kind_names) ? kind_names[kind] : "unknown";
}

gboolean
gb_sae_kind_parse (const char *name,
                   GbSaeKind  *kind)
{
  for (guint i = 0; i < G_N_ELEMENTS (kind_names); i++)
    if (g_strcmp0 (name, kind_names[i]) == 0)
      {
        *kind = (GbSaeKind) i;
        return TRUE;
      }
  return FALSE;
}

/* An SAE's header without its weights: the loader allocates each tensor only
 * once the weights file has shown it holds that many values, so a cfg.json
 * that claims a huge d_sae costs nothing. */
static GbSae *
sae_header_new (GbSaeKind kind,
                guint     d_in,
                guint     d_sae,
                guint     k)
{
  GbSae *sae = g_new0 (GbSae, 1);

  sae->kind = kind;
  sae->d_in = d_in;
  sae->d_sae = d_sae;
  sae->k = k;
  sae->hook = GB_HOOK_RESID_POST;
  sae->apply_b_dec_to_input = TRUE;
  sae->explained_variance = sae->mean_l0 = sae->dead_fraction = NAN;
  sae->loss_increase = sae->clean_loss = NAN;
  return sae;
}

GbSae *
gb_sae_new (GbSaeKind kind,
            guint     d_in,
            guint     d_sae,
            guint     k)
{
  GbSae *sae = sae_header_new (kind, d_in, d_sae, k);

  sae->W_enc = g_new0 (float, (gsize) d_in * d_sae);
  sae->W_dec = g_new0 (float, (gsize) d_sae * d_in);
  sae->b_enc = g_new0 (float, d_sae);
  sae->b_dec = g_new0 (float, d_in);
  if (kind == GB_SAE_JUMPRELU)
    sae->threshold = g_new0 (float, d_sae);
  return sae;
}

void
gb_sae_free (GbSae *sae)
{
  if (sae == NULL)
    return;
  g_free (sae->norm_mean);
  g_free (sae->norm_std);
  g_free (sae->model_name);
  g_free (sae->W_enc);
  g_free (sae->W_dec);
  g_free (sae->b_enc);
  g_free (sae->b_dec);
  g_free (sae->threshold);
  g_free (sae->log_sparsity);
  g_free (sae->path);
  g_free (sae->weights_sha256);
  g_free (sae);
}

static float *
dup_floats (const float *p,
            gsize        n)
{
  return p ? g_memdup2 (p, n * sizeof (float)) : NULL;
}

GbSae *
gb_sae_copy (const GbSae *src)
{
  GbSae *sae = g_memdup2 (src, sizeof (GbSae));
  const gsize di = src->d_in, ds = src->d_sae;

  sae->norm_mean = dup_floats (src->norm_mean, di);
  sae->norm_std = dup_floats (src->norm_std, di);
  sae->model_name = g_strdup (src->model_name);
  sae->W_enc = dup_floats (src->W_enc, di * ds);
  sae->W_dec = dup_floats (src->W_dec, di * ds);
  sae->b_enc = dup_floats (src->b_enc, ds);
  sae->b_dec = dup_floats (src->b_dec, di);
  sae->threshold = dup_floats (src->threshold, ds);
  sae->log_sparsity = dup_floats (src->log_sparsity, ds);
  sae->path = g_strdup (src->path);
  sae->weights_sha256 = g_strdup (src->weights_sha256);
  return sae;
}

const char *
gb_sae_weights_sha256 (const GbSae *sae,
                       GError     **error)
{
  g_return_val_if_fail (sae != NULL, NULL);
  if (sae->weights_sha256 == NULL)
    {
      if (sae->path == NULL)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "the SAE has no folder (it was never saved)");
          return NULL;
        }
      g_autofree char *w = g_build_filename (sae->path, "sae_weights.safetensors", NULL);
      /* A cache: the SAE is not changed by asking. */
      ((GbSae *) sae)->weights_sha256 = gb_file_sha256 (w, error);
    }
  return sae->weights_sha256;
}

static double
rand_normal (GRand *rng)
{
  double u1 = g_rand_double (rng), u2 = g_rand_double (rng);
  return sqrt (-2.0 * log (u1 + 1e-300)) * cos (2 * G_PI * u2);
}

static void
normalize_row (float *row,
               guint  n)
{
  double s = 0;
  for (guint i = 0; i < n; i++)
    s += (double) row[i] * row[i];
  if (s <= 0)
    return;
  const float inv = (float) (1.0 / sqrt (s));
  for (guint i = 0; i < n; i++)
    row[i] *= inv;
}

void
gb_sae_init_random (GbSae  *sae,
                    guint64 seed)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed ((guint32) (seed ^ (seed >> 32)));
  const guint di = sae->d_in, ds = sae->d_sae;

  for (guint j = 0; j < ds; j++)
    {
      float *row = sae->W_dec + (gsize) j * di;
      for (guint i = 0; i < di; i++)
        row[i] = (float) rand_normal (rng);
      normalize_row (row, di);
      for (guint i = 0; i < di; i++)
        sae->W_enc[(gsize) i * ds + j] = row[i];
    }
  memset (sae->b_enc, 0, ds * sizeof (float));
  memset (sae->b_dec, 0, di * sizeof (float));
}

/* ---- Encode / decode ---- */

void
gb_sae_preprocess (const GbSae *sae,
                   float       *x,
                   guint        n,
                   float       *token_means)
{
  const guint d = sae->d_in;

  for (guint t = 0; t < n; t++)
    {
      float *row = x + (gsize) t * d;
      float m = 0;
      if (sae->center)
        {
          double s = 0;
          for (guint i = 0; i < d; i++)
            s += row[i];
          m = (float) (s / d);
          for (guint i = 0; i < d; i++)
            row[i] -= m;
        }
      if (token_means)
        token_means[t] = m;
      if (sae->norm_mean)
        for (guint i = 0; i < d; i++)
          row[i] = (row[i] - sae->norm_mean[i]) / sae->norm_std[i];
    }
}

void
gb_sae_postprocess (const GbSae *sae,
                    float       *x,
                    guint        n,
                    const float *token_means)
{
  const guint d = sae->d_in;

  for (guint t = 0; t < n; t++)
    {
      float *row = x + (gsize) t * d;
      if (sae->norm_mean)
        for (guint i = 0; i < d; i++)
          row[i] = row[i] * sae->norm_std[i] + sae->norm_mean[i];
      if (sae->center && token_means)
        for (guint i = 0; i < d; i++)
          row[i] += token_means[t];
    }
}

/* Keeps the k largest of row[n] (ties: lower index first), zeroes the rest,
 * then applies ReLU; writes the kept indices to idx[k] (sorted by value,
 * largest first) and returns how many are > 0. */
static guint
topk_row (float *row,
          guint  n,
          guint  k,
          guint *idx)
{
  guint m = 0;

  k = MIN (k, n);
  /* idx[0..m) sorted descending by value; insertion keeps it small (k ~ 32). */
  for (guint j = 0; j < n; j++)
    {
      const float v = row[j];
      if (m == k && !(v > row[idx[m - 1]]))
        continue;
      guint p = m < k ? m++ : m - 1;
      while (p > 0 && v > row[idx[p - 1]])
        {
          idx[p] = idx[p - 1];
          p--;
        }
      idx[p] = j;
    }
  float kept[m > 0 ? m : 1];
  for (guint i = 0; i < m; i++)
    kept[i] = row[idx[i]];
  memset (row, 0, n * sizeof (float));
  guint pos = 0;
  for (guint i = 0; i < m; i++)
    if (kept[i] > 0)
      {
        row[idx[i]] = kept[i];
        idx[pos++] = idx[i];
      }
  return pos;
}

static void
activate_rows (const GbSae *sae,
               float       *z,
               guint        n)
{
  const guint ds = sae->d_sae;
  g_autofree guint *idx = sae->kind == GB_SAE_TOPK ? g_new (guint, MAX (sae->k, 1)) : NULL;

  for (guint t = 0; t < n; t++)
    {
      float *row = z + (gsize) t * ds;
      switch (sae->kind)
        {
        case GB_SAE_STANDARD:
          for (guint j = 0; j < ds; j++)
            row[j] = row[j] > 0 ? row[j] : 0;
          break;
        case GB_SAE_TOPK:
          topk_row (row, ds, sae->k, idx);
          break;
        case GB_SAE_JUMPRELU:
          for (guint j = 0; j < ds; j++)
            row[j] = row[j] > sae->threshold[j] && row[j] > 0 ? row[j] : 0;
          break;
        default:
          g_assert_not_reached ();
        }
    }
}

void
gb_sae_encode (const GbSae *sae,
               float       *z,
               const float *x,
               guint        n)
{
  const guint di = sae->d_in, ds = sae->d_sae;
  g_autofree float *xin = NULL;

  if (sae->apply_b_dec_to_input)
    {
      xin = g_new (float, (gsize) n * di);
      for (gsize t = 0; t < n; t++)
        for (guint i = 0; i < di; i++)
          xin[t * di + i] = x[t * di + i] - sae->b_dec[i];
      x = xin;
    }
  gb_matmul (z, x, sae->W_enc, sae->b_enc, n, di, ds);
  activate_rows (sae, z, n);
}

void
gb_sae_decode (const GbSae *sae,
               float       *xhat,
               const float *z,
               guint        n)
{
  gb_matmul (xhat, z, sae->W_dec, sae->b_dec, n, sae->d_sae, sae->d_in);
}

/* ---- Files ---- */

static gboolean
get_uint (JsonObject  *obj,
          const char  *member,
          guint       *out,
          const char  *path,
          GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: “%s” is missing", path, member);
      return FALSE;
    }
  if (json_node_get_value_type (node) != G_TYPE_INT64 || json_node_get_int (node) <= 0
      || json_node_get_int (node) > G_MAXINT32)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: “%s” must be a positive integer", path, member);
      return FALSE;
    }
  *out = (guint) json_node_get_int (node);
  return TRUE;
}

static const char *
get_string (JsonObject *obj,
            const char *member)
{
  if (obj == NULL)
    return NULL;
  JsonNode *node = json_object_get_member (obj, member);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
get_bool (JsonObject *obj,
          const char *member,
          gboolean    fallback)
{
  if (obj == NULL)
    return fallback;
  JsonNode *node = json_object_get_member (obj, member);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return fallback;
  return json_node_get_boolean (node);
}

static JsonObject *
get_object (JsonObject *obj,
            const char *member)
{
  if (obj == NULL)
    return NULL;
  JsonNode *node = json_object_get_member (obj, member);
  return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static double
get_double (JsonObject *obj,
            const char *member)
{
  if (obj == NULL)
    return NAN;
  JsonNode *node = json_object_get_member (obj, member);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return NAN;
  GType t = json_node_get_value_type (node);
  if (t == G_TYPE_DOUBLE || t == G_TYPE_INT64)
    return json_node_get_double (node);
  return NAN;
}

/* The SAE's kind and k from v6 ("architecture", "k") or older cfgs
 * ("activation_fn_str": "topk", "activation_fn_kwargs": {"k": N}). */
static gboolean
parse_kind (JsonObject *cfg,
            GbSaeKind  *kind,
            guint      *k,
            const char *path,
            GError    **error)
{
  const char *arch = get_string (cfg, "architecture");
  const char *act = get_string (cfg, "activation_fn_str");

  *k = 0;
  if (arch == NULL || g_str_equal (arch, "standard"))
    *kind = act && g_str_equal (act, "topk") ? GB_SAE_TOPK : GB_SAE_STANDARD;
  else if (!gb_sae_kind_parse (arch, kind))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED,
                   "%s: architecture “%s” is not supported (standard, topk or jumprelu)", path, arch);
      return FALSE;
    }
  if (act && !g_str_equal (act, "relu") && !g_str_equal (act, "topk"))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "%s: activation “%s” is not supported", path, act);
      return FALSE;
    }
  if (*kind != GB_SAE_TOPK)
    return TRUE;
  if (json_object_has_member (cfg, "k"))
    return get_uint (cfg, "k", k, path, error);
  JsonObject *kw = get_object (cfg, "activation_fn_kwargs");
  if (kw == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: a topk SAE needs “k”", path);
      return FALSE;
    }
  return get_uint (kw, "k", k, path, error);
}

static gboolean
parse_hook (JsonObject *cfg,
            GbSae      *sae,
            const char *path,
            GError    **error)
{
  JsonObject *meta = get_object (cfg, "metadata");
  const char *name = get_string (meta, "hook_name");

  if (name == NULL)
    name = get_string (cfg, "hook_name");
  if (name == NULL)
    name = get_string (cfg, "hook_point");
  if (name == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING,
                   "%s: no hook (metadata.hook_name, hook_name or hook_point)", path);
      return FALSE;
    }
  if (!gb_hook_parse (name, &sae->hook, &sae->layer) || sae->hook == GB_HOOK_PATTERN)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "%s: hook “%s” is not one Glassbox knows", path, name);
      return FALSE;
    }
  double layer = get_double (cfg, "hook_layer");
  if (isnan (layer))
    layer = get_double (cfg, "hook_point_layer");  /* SAELens before 3 (gpt2-small-res-jb) */
  if (!isnan (layer) && layer != sae->layer)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: hook_layer %g disagrees with hook “%s”", path, layer, name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_cfg (const char *path,
           GbSae     **out,
           GError    **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  GbSaeKind kind;
  guint d_in, d_sae, k;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: no such file (an SAE folder holds cfg.json)", path);
      return FALSE;
    }
  if (!gb_json_parser_load_file (parser, path, &local))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not valid JSON: %s", path, local->message);
      return FALSE;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: expected a JSON object", path);
      return FALSE;
    }
  JsonObject *cfg = json_node_get_object (root);
  if (!get_uint (cfg, "d_in", &d_in, path, error))
    return FALSE;
  /* The oldest cfgs give the width as an expansion factor only. */
  guint factor = 0;
  if (!json_object_has_member (cfg, "d_sae") && json_object_has_member (cfg, "expansion_factor"))
    {
      if (!get_uint (cfg, "expansion_factor", &factor, path, error))
        return FALSE;
      d_sae = factor <= MAX_D_SAE / d_in ? d_in * factor : MAX_D_SAE + 1;
    }
  else if (!get_uint (cfg, "d_sae", &d_sae, path, error))
    return FALSE;
  if (!parse_kind (cfg, &kind, &k, path, error))
    return FALSE;
  if (d_in > MAX_D_IN || d_sae > MAX_D_SAE)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: d_in %u or d_sae %u is past the limit", path, d_in, d_sae);
      return FALSE;
    }
  if (kind == GB_SAE_TOPK && k > d_sae)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: k %u is larger than d_sae %u", path, k, d_sae);
      return FALSE;
    }
  const char *norm = get_string (cfg, "normalize_activations");
  JsonNode *norm_node = json_object_get_member (cfg, "normalize_activations");
  gboolean norm_false = norm_node && JSON_NODE_HOLDS_VALUE (norm_node)
                        && json_node_get_value_type (norm_node) == G_TYPE_BOOLEAN && !json_node_get_boolean (norm_node);
  if (norm != NULL && !g_str_equal (norm, "none") && !norm_false)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED,
                   "%s: normalize_activations “%s” is not supported (only “none”)", path, norm);
      return FALSE;
    }
  g_autoptr (GbSae) sae = sae_header_new (kind, d_in, d_sae, k);
  if (!parse_hook (cfg, sae, path, error))
    return FALSE;
  JsonObject *meta = get_object (cfg, "metadata");
  JsonObject *gb = get_object (meta, "glassbox");
  sae->apply_b_dec_to_input = get_bool (cfg, "apply_b_dec_to_input", TRUE);
  sae->center = get_bool (gb, "center", FALSE);
  const char *model = get_string (meta, "model_name");
  sae->model_name = g_strdup (model ? model : get_string (cfg, "model_name"));
  sae->explained_variance = get_double (gb, "explained_variance");
  sae->mean_l0 = get_double (gb, "mean_l0");
  sae->dead_fraction = get_double (gb, "dead_fraction");
  sae->loss_increase = get_double (gb, "loss_increase");
  sae->clean_loss = get_double (gb, "clean_loss");
  double tokens = get_double (gb, "trained_tokens");
  sae->trained_tokens = gb_json_count (tokens, G_MAXUINT64);
  *out = g_steal_pointer (&sae);
  return TRUE;
}

/* Tensor @name of @st if it is there with shape [a] or [a, b]. */
static const GbTensorView *
find_tensor (GbSafetensors *st,
             const char    *name,
             guint          n_dims,
             gint64         a,
             gint64         b,
             GError       **error)
{
  const char *path = gb_safetensors_get_path (st);
  const GbTensorView *t = gb_safetensors_lookup (st, name);

  if (t == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: tensor “%s” is missing", path, name);
      return NULL;
    }
  if (t->n_dims != n_dims || t->shape[0] != a || (n_dims == 2 && t->shape[1] != b))
    {
      g_autofree char *want = n_dims == 2 ? g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", a, b)
                                          : g_strdup_printf ("[%" G_GINT64_FORMAT "]", a);
      GString *got = g_string_new ("[");
      for (guint i = 0; i < t->n_dims; i++)
        g_string_append_printf (got, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->shape[i]);
      g_string_append (got, "]");
      g_set_error (error, GB_ERROR, GB_ERROR_SHAPE, "%s: tensor “%s” has shape %s, expected %s (cfg.json's d_in/d_sae)",
                   path, name, got->str, want);
      g_string_free (got, TRUE);
      return NULL;
    }
  return t;
}

/* Copies tensor @name of shape [a] or [a, b] into @dst as float32, checking
 * shape and finiteness. */
static gboolean
read_tensor (GbSafetensors *st,
             const char    *name,
             guint          n_dims,
             gint64         a,
             gint64         b,
             float         *dst,
             GError       **error)
{
  const char *path = gb_safetensors_get_path (st);
  const GbTensorView *t = find_tensor (st, name, n_dims, a, b, error);

  if (t == NULL)
    return FALSE;
  for (gint64 i = 0; i < t->n_elements; i++)
    {
      float v;
      switch (t->dtype)
        {
        case GB_DTYPE_F32:
          memcpy (&v, t->data + i * 4, 4);
          break;
        case GB_DTYPE_F16:
        case GB_DTYPE_BF16:
          {
            guint16 h;
            memcpy (&h, t->data + i * 2, 2);
            v = t->dtype == GB_DTYPE_F16 ? gb_f16_to_f32 (h) : gb_bf16_to_f32 (h);
            break;
          }
        default:
          g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "%s: tensor “%s” has dtype %s (F32, F16 or BF16 expected)",
                       path, name, gb_dtype_name (t->dtype));
          return FALSE;
        }
      if (!isfinite (v))
        {
          g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: tensor “%s” holds a NaN or infinite value at %" G_GINT64_FORMAT,
                       path, name, i);
          return FALSE;
        }
      dst[i] = v;
    }
  return TRUE;
}


/* read_tensor() into a new array, allocated only once the file has shown
 * that it holds the tensor at that shape. */
static gboolean
read_tensor_new (GbSafetensors *st,
                 const char    *name,
                 guint          n_dims,
                 gint64         a,
                 gint64         b,
                 float        **dst,
                 GError       **error)
{
  g_assert (*dst == NULL);
  if (find_tensor (st, name, n_dims, a, b, error) == NULL)
    return FALSE;
  *dst = g_new (float, n_dims == 2 ? a * b : a);
  return read_tensor (st, name, n_dims, a, b, *dst, error);
}

static gboolean
load_norm (GbSae      *sae,
           const char *dir,
           GError    **error)
{
  g_autofree char *path = g_build_filename (dir, "glassbox_norm.safetensors", NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  g_autoptr (GbSafetensors) st = gb_safetensors_open (path, error);
  if (st == NULL)
    return FALSE;
  if (!read_tensor_new (st, "mean", 1, sae->d_in, 0, &sae->norm_mean, error)
      || !read_tensor_new (st, "std", 1, sae->d_in, 0, &sae->norm_std, error))
    return FALSE;
  for (guint i = 0; i < sae->d_in; i++)
    if (!(sae->norm_std[i] > 0))
      {
        g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: “std” must be positive (index %u)", path, i);
        return FALSE;
      }
  return TRUE;
}

GbSae *
gb_sae_load (const char *dir,
             GError    **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_autofree char *cfg_path = g_build_filename (dir, "cfg.json", NULL);
  g_autofree char *w_path = g_build_filename (dir, "sae_weights.safetensors", NULL);
  g_autofree char *sp_path = g_build_filename (dir, "sparsity.safetensors", NULL);
  g_autoptr (GbSae) sae = NULL;

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: not a folder (an SAE is a folder with cfg.json and sae_weights.safetensors)", dir);
      return NULL;
    }
  if (!parse_cfg (cfg_path, &sae, error))
    return NULL;
  if (!g_file_test (w_path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: no such file", w_path);
      return NULL;
    }
  g_autoptr (GbSafetensors) st = gb_safetensors_open (w_path, error);
  if (st == NULL)
    return NULL;
  const gint64 di = sae->d_in, ds = sae->d_sae;
  if (!read_tensor_new (st, "W_enc", 2, di, ds, &sae->W_enc, error)
      || !read_tensor_new (st, "W_dec", 2, ds, di, &sae->W_dec, error)
      || !read_tensor_new (st, "b_enc", 1, ds, 0, &sae->b_enc, error)
      || !read_tensor_new (st, "b_dec", 1, di, 0, &sae->b_dec, error))
    return NULL;
  if (sae->kind == GB_SAE_JUMPRELU && !read_tensor_new (st, "threshold", 1, ds, 0, &sae->threshold, error))
    return NULL;
  if (g_file_test (sp_path, G_FILE_TEST_EXISTS))
    {
      g_autoptr (GbSafetensors) sp = gb_safetensors_open (sp_path, error);
      if (sp == NULL)
        return NULL;
      if (!read_tensor_new (sp, "sparsity", 1, ds, 0, &sae->log_sparsity, error))
        return NULL;
    }
  if (!load_norm (sae, dir, error))
    return NULL;
  sae->path = g_strdup (dir);
  return g_steal_pointer (&sae);
}

static void
add_double (JsonBuilder *b,
            const char  *name,
            double       v)
{
  if (isnan (v))
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_double_value (b, v);
}

static char *
cfg_to_json (const GbSae *sae)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *hook = g_strdup_printf ("blocks.%u.%s", sae->layer, gb_hook_name (sae->hook));

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "architecture");
  json_builder_add_string_value (b, gb_sae_kind_name (sae->kind));
  json_builder_set_member_name (b, "d_in");
  json_builder_add_int_value (b, sae->d_in);
  json_builder_set_member_name (b, "d_sae");
  json_builder_add_int_value (b, sae->d_sae);
  if (sae->kind == GB_SAE_TOPK)
    {
      json_builder_set_member_name (b, "k");
      json_builder_add_int_value (b, sae->k);
    }
  json_builder_set_member_name (b, "dtype");
  json_builder_add_string_value (b, "float32");
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, "cpu");
  json_builder_set_member_name (b, "apply_b_dec_to_input");
  json_builder_add_boolean_value (b, sae->apply_b_dec_to_input);
  json_builder_set_member_name (b, "normalize_activations");
  json_builder_add_string_value (b, "none");
  json_builder_set_member_name (b, "reshape_activations");
  json_builder_add_string_value (b, "none");
  json_builder_set_member_name (b, "metadata");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "hook_name");
  json_builder_add_string_value (b, hook);
  json_builder_set_member_name (b, "model_name");
  json_builder_add_string_value (b, sae->model_name ? sae->model_name : "");
  json_builder_set_member_name (b, "prepend_bos");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_set_member_name (b, "glassbox");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "center");
  json_builder_add_boolean_value (b, sae->center);
  json_builder_set_member_name (b, "normalize");
  json_builder_add_string_value (b, sae->norm_mean ? "per_dimension" : "none");
  add_double (b, "explained_variance", sae->explained_variance);
  add_double (b, "mean_l0", sae->mean_l0);
  add_double (b, "dead_fraction", sae->dead_fraction);
  add_double (b, "loss_increase", sae->loss_increase);
  add_double (b, "clean_loss", sae->clean_loss);
  json_builder_set_member_name (b, "trained_tokens");
  json_builder_add_int_value (b, (gint64) sae->trained_tokens);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

gboolean
gb_sae_save (GbSae      *sae,
             const char *dir,
             GError    **error)
{
  g_return_val_if_fail (sae != NULL && dir != NULL, FALSE);
  const gint64 di = sae->d_in, ds = sae->d_sae;

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: could not create the folder: %s", dir, g_strerror (errno));
      return FALSE;
    }
  GbTensorOut t[5] = {
    { "W_enc", 2, { di, ds }, sae->W_enc },
    { "W_dec", 2, { ds, di }, sae->W_dec },
    { "b_enc", 1, { ds }, sae->b_enc },
    { "b_dec", 1, { di }, sae->b_dec },
    { "threshold", 1, { ds }, sae->threshold },
  };
  g_autofree char *w_path = g_build_filename (dir, "sae_weights.safetensors", NULL);
  if (!gb_safetensors_write (w_path, t, sae->kind == GB_SAE_JUMPRELU ? 5 : 4, GB_DTYPE_F32, NULL, error))
    return FALSE;
  if (sae->log_sparsity)
    {
      GbTensorOut s = { "sparsity", 1, { ds }, sae->log_sparsity };
      g_autofree char *sp_path = g_build_filename (dir, "sparsity.safetensors", NULL);
      if (!gb_safetensors_write (sp_path, &s, 1, GB_DTYPE_F32, NULL, error))
        return FALSE;
    }
  if (sae->norm_mean)
    {
      GbTensorOut n[2] = { { "mean", 1, { di }, sae->norm_mean }, { "std", 1, { di }, sae->norm_std } };
      g_autofree char *n_path = g_build_filename (dir, "glassbox_norm.safetensors", NULL);
      if (!gb_safetensors_write (n_path, n, 2, GB_DTYPE_F32, NULL, error))
        return FALSE;
    }
  g_autofree char *json = cfg_to_json (sae);
  g_autofree char *cfg_path = g_build_filename (dir, "cfg.json", NULL);
  /* g_file_set_contents writes a temporary file and renames it into place. */
  if (!g_file_set_contents (cfg_path, json, -1, error))
    return FALSE;
  if (sae->path != dir)
    {
      g_free (sae->path);
      sae->path = g_strdup (dir);
    }
  g_clear_pointer (&sae->weights_sha256, g_free); /* new weights on disk */
  return TRUE;
}

gboolean
gb_sae_check_model (const GbSae *sae,
                    GbModel     *model,
                    GError     **error)
{
  const GbConfig *cfg = gb_model_get_config (model);
  const char *where = sae->path ? sae->path : "SAE";

  if (sae->layer >= cfg->n_layer)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_SHAPE, "%s: hook blocks.%u.%s is past the model's %u layers", where, sae->layer,
                   gb_hook_name (sae->hook), cfg->n_layer);
      return FALSE;
    }
  guint width = gb_model_hook_width (model, sae->hook);
  if (width != sae->d_in)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_SHAPE, "%s: d_in is %u but the model's %s is %u wide (an SAE for another model?)",
                   where, sae->d_in, gb_hook_name (sae->hook), width);
      return FALSE;
    }
  return TRUE;
}

/* ---- Training ---- */

void
gb_sae_train_options_init (GbSaeTrainOptions *o)
{
  memset (o, 0, sizeof *o);
  o->kind = GB_SAE_TOPK;
  o->d_sae = 1536;
  o->k = 32;
  o->l1 = 5.0;
  o->lr = 4e-4;
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->adam_eps = 1e-8;
  o->batch_size = 512;
  o->seed = 1;
  o->dead_window = 200000;
  o->resample_every = 500;
  o->sparse_below = 0.12;
}

struct _GbSaeTrainer
{
  GbSae            *sae;     /* owned; its W_enc is refreshed from W_encT on demand */
  GbSaeTrainOptions opt;
  guint64           step;
  guint64           n_resampled;
  gboolean          sae_stale;
  GRand            *rng;
  /* Parameters, gradients and Adam moments, one block each, laid out as
   * W_encT [d_sae, d_in] | W_dec [d_sae, d_in] | b_enc [d_sae] | b_dec [d_in]. */
  gsize             n_params;
  float            *p, *g, *m, *v;
  guint64          *since_fired;  /* [d_sae] tokens since the latent last fired */
  guint64          *n_fired;      /* [d_sae] tokens it fired on */
  guint64           n_seen;
  /* Scratch, grown to the batch */
  guint             cap;
  float            *xin, *pre, *xhat, *dx;  /* [B, d_in], [B, d_sae], [B, d_in], [B, d_in] */
  guint            *act_idx;                /* [B, d_sae] active latents per row */
  guint            *act_n;                  /* [B] */
  /* The active pairs by latent (the sparse path): latent j's rows are
   * col_row[col_ptr[j] .. col_ptr[j + 1]), ascending, with z in col_val;
   * grown to the pairs of a sparse step. */
  guint            *col_ptr;                /* [d_sae + 1] */
  guint            *col_row;                /* [col_cap] */
  float            *col_val;                /* [col_cap] */
  gsize             col_cap;
  /* W_enc packed for gb_packed_matmul, refilled every step; NULL where the
   * CPU has no AVX-512 or the memory was not there (then OpenBLAS). */
  GbPackedMatrix   *enc_packed;
};

static float *
p_W_encT (GbSaeTrainer *self, float *base) { (void) self; return base; }
static float *
p_W_dec (GbSaeTrainer *self, float *base) { return base + (gsize) self->sae->d_sae * self->sae->d_in; }
static float *
p_b_enc (GbSaeTrainer *self, float *base) { return base + 2 * (gsize) self->sae->d_sae * self->sae->d_in; }
static float *
p_b_dec (GbSaeTrainer *self, float *base) { return p_b_enc (self, base) + self->sae->d_sae; }

static void
transpose (float       *dst,
           const float *src,
           guint        rows,
           guint        cols)
{
  for (guint r = 0; r < rows; r++)
    for (guint c = 0; c < cols; c++)
      dst[(gsize) c * rows + r] = src[(gsize) r * cols + c];
}

GbSaeTrainer *
gb_sae_trainer_new (GbSae                   *sae,
                    const GbSaeTrainOptions *options)
{
  g_return_val_if_fail (sae != NULL && options != NULL, NULL);
  g_return_val_if_fail (sae->kind != GB_SAE_JUMPRELU, NULL);
  GbSaeTrainer *self = g_new0 (GbSaeTrainer, 1);
  const gsize di = sae->d_in, ds = sae->d_sae;

  self->sae = sae;
  self->opt = *options;
  self->opt.kind = sae->kind;
  self->opt.k = sae->k;
  self->rng = g_rand_new_with_seed ((guint32) (options->seed * 2654435761u + 1));
  self->n_params = 2 * ds * di + ds + di;
  self->p = g_new0 (float, self->n_params);
  self->g = g_new0 (float, self->n_params);
  self->m = g_new0 (float, self->n_params);
  self->v = g_new0 (float, self->n_params);
  self->since_fired = g_new0 (guint64, ds);
  self->n_fired = g_new0 (guint64, ds);
  transpose (p_W_encT (self, self->p), sae->W_enc, di, ds);
  memcpy (p_W_dec (self, self->p), sae->W_dec, ds * di * sizeof (float));
  memcpy (p_b_enc (self, self->p), sae->b_enc, ds * sizeof (float));
  memcpy (p_b_dec (self, self->p), sae->b_dec, di * sizeof (float));
  self->enc_packed = gb_packed_alloc (di, ds);
  return self;
}

void
gb_sae_trainer_free (GbSaeTrainer *self)
{
  if (self == NULL)
    return;
  gb_sae_free (self->sae);
  g_rand_free (self->rng);
  g_free (self->p);
  g_free (self->g);
  g_free (self->m);
  g_free (self->v);
  g_free (self->since_fired);
  g_free (self->n_fired);
  g_free (self->xin);
  g_free (self->pre);
  g_free (self->xhat);
  g_free (self->dx);
  g_free (self->act_idx);
  g_free (self->act_n);
  g_free (self->col_ptr);
  g_free (self->col_row);
  g_free (self->col_val);
  gb_packed_free (self->enc_packed);
  g_free (self);
}

GbSae *
gb_sae_trainer_get_sae (GbSaeTrainer *self)
{
  GbSae *sae = self->sae;
  const gsize di = sae->d_in, ds = sae->d_sae;

  if (self->sae_stale)
    {
      transpose (sae->W_enc, p_W_encT (self, self->p), ds, di);
      memcpy (sae->W_dec, p_W_dec (self, self->p), ds * di * sizeof (float));
      memcpy (sae->b_enc, p_b_enc (self, self->p), ds * sizeof (float));
      memcpy (sae->b_dec, p_b_dec (self, self->p), di * sizeof (float));
      if (self->n_seen > 0)
        {
          if (sae->log_sparsity == NULL)
            sae->log_sparsity = g_new (float, ds);
          for (gsize j = 0; j < ds; j++)
            sae->log_sparsity[j] = (float) log10 ((self->n_fired[j] + 1e-10) / self->n_seen);
        }
      self->sae_stale = FALSE;
    }
  return sae;
}

guint64
gb_sae_trainer_get_step (GbSaeTrainer *self)
{
  return self->step;
}

guint64
gb_sae_trainer_get_n_resampled (GbSaeTrainer *self)
{
  return self->n_resampled;
}

double
gb_sae_trainer_dead_fraction (GbSaeTrainer *self)
{
  guint64 dead = 0;
  for (guint j = 0; j < self->sae->d_sae; j++)
    dead += self->since_fired[j] >= self->opt.dead_window;
  return (double) dead / self->sae->d_sae;
}

static void
reserve (GbSaeTrainer *self,
         guint         B)
{
  const gsize di = self->sae->d_in, ds = self->sae->d_sae;
  if (B <= self->cap)
    return;
  self->cap = B;
  self->xin = g_renew (float, self->xin, B * di);
  self->pre = g_renew (float, self->pre, B * ds);
  self->xhat = g_renew (float, self->xhat, B * di);
  self->dx = g_renew (float, self->dx, B * di);
  self->act_idx = g_renew (guint, self->act_idx, B * ds);
  self->act_n = g_renew (guint, self->act_n, B);
  self->col_ptr = g_renew (guint, self->col_ptr, ds + 1);
}

/* The active pairs regrouped by latent (a counting sort), rows ascending. */
static void
build_columns (GbSaeTrainer *self,
               guint         B,
               guint64       nnz)
{
  const guint ds = self->sae->d_sae;
  guint *ptr = self->col_ptr;

  if (nnz > self->col_cap)
    {
      self->col_cap = nnz;
      self->col_row = g_renew (guint, self->col_row, nnz);
      self->col_val = g_renew (float, self->col_val, nnz);
    }

  memset (ptr, 0, (ds + 1) * sizeof (guint));
  for (guint b = 0; b < B; b++)
    for (guint a = 0; a < self->act_n[b]; a++)
      ptr[self->act_idx[(gsize) b * ds + a] + 1]++;
  for (guint j = 0; j < ds; j++)
    ptr[j + 1] += ptr[j];
  g_autofree guint *fill = g_memdup2 (ptr, ds * sizeof (guint));
  for (guint b = 0; b < B; b++)
    for (guint a = 0; a < self->act_n[b]; a++)
      {
        const guint j = self->act_idx[(gsize) b * ds + a], at = fill[j]++;
        self->col_row[at] = b;
        self->col_val[at] = self->pre[(gsize) b * ds + j];
      }
}

typedef struct
{
  GbSaeTrainer *self;
  const float  *W_dec, *W_encT, *xin, *dxhat;
  float        *xhat, *gW_dec, *gW_encT, *gb_enc;
  float         l1_grad;
} SparsePass;

/* xhat[b] += z_bj W_dec[j] for the rows of this part, latents in order:
 * each part's rows of xhat stay in its core's cache, and W_dec streams. */
static void
sparse_decode_rows (gsize    begin,
                    gsize    end,
                    gpointer data)
{
  const SparsePass *sp = data;
  GbSaeTrainer *self = sp->self;
  const guint di = self->sae->d_in, ds = self->sae->d_sae;

  for (guint j = 0; j < ds; j++)
    for (guint e = self->col_ptr[j]; e < self->col_ptr[j + 1]; e++)
      {
        const guint b = self->col_row[e];
        if (b >= begin && b < end)
          gb_axpy (di, self->col_val[e], sp->W_dec + (gsize) j * di, sp->xhat + (gsize) b * di);
      }
}

typedef struct
{
  const float *w;   /* [rows, cols] */
  const float *c;   /* [rows] */
  float       *out; /* [cols] */
  guint        rows, cols;
} RowsTimes;

/* out[i] -= sum_j c[j] w[j, i] for the columns i of this part. */
static void
rows_times_columns (gsize    begin,
                    gsize    end,
                    gpointer data)
{
  const RowsTimes *rt = data;
  for (guint j = 0; j < rt->rows; j++)
    gb_axpy ((guint) (end - begin), -rt->c[j], rt->w + (gsize) j * rt->cols + begin, rt->out + begin);
}

/* For the latents of this part (their rows of the gradients are theirs
 * alone), in two passes so each reads one [B, d_in] matrix, which then
 * stays in the core's L2 cache (both together would not fit):
 *   1. gW_dec[j] = sum_b z_bj dxhat_b, dpre_bj = dxhat_b . W_dec[j] + l1/B
 *      (kept in col_val, over z), gb_enc[j] = sum_b dpre_bj;
 *   2. gW_encT[j] = sum_b dpre_bj xin_b.
 * Each latent's rows of W_dec and of the gradients stay in L1 meanwhile. */
static void
sparse_backward_latents (gsize    begin,
                         gsize    end,
                         gpointer data)
{
  const SparsePass *sp = data;
  GbSaeTrainer *self = sp->self;
  const guint di = self->sae->d_in;

  for (gsize j = begin; j < end; j++)
    {
      float *gd = sp->gW_dec + j * di;
      const float *wd = sp->W_dec + j * di;
      memset (gd, 0, di * sizeof (float));
      float genc = 0.f;
      for (guint e = self->col_ptr[j]; e < self->col_ptr[j + 1]; e++)
        {
          const float *dxb = sp->dxhat + (gsize) self->col_row[e] * di;
          const float dp = gb_axpy_dot (di, self->col_val[e], dxb, gd, wd) + sp->l1_grad;
          self->col_val[e] = dp;
          genc += dp;
        }
      sp->gb_enc[j] = genc;
    }
  for (gsize j = begin; j < end; j++)
    {
      float *ge = sp->gW_encT + j * di;
      memset (ge, 0, di * sizeof (float));
      for (guint e = self->col_ptr[j]; e < self->col_ptr[j + 1]; e++)
        {
          gb_axpy (di, self->col_val[e], sp->xin + (gsize) self->col_row[e] * di, ge);
        }
    }
}

/* pre -> z in place, recording each row's active latents. Returns the
 * number of active (row, latent) pairs. */
typedef struct
{
  GbSaeTrainer *self;
  const float  *b_enc;
} ActivateRows;

static void
activate_train_rows (gsize    begin,
                     gsize    end,
                     gpointer data)
{
  const ActivateRows *a = data;
  GbSaeTrainer *self = a->self;
  const guint ds = self->sae->d_sae;

  for (gsize b = begin; b < end; b++)
    {
      float *row = self->pre + b * ds;
      guint *idx = self->act_idx + b * ds;
      guint n = 0;
      for (guint j = 0; j < ds; j++)
        row[j] += a->b_enc[j];
      if (self->sae->kind == GB_SAE_TOPK)
        n = topk_row (row, ds, self->sae->k, idx);
      else
        for (guint j = 0; j < ds; j++)
          {
            if (row[j] > 0)
              idx[n++] = j;
            else
              row[j] = 0;
          }
      self->act_n[b] = n;
    }
}

/* pre += b_enc, then -> z in place, recording each row's active latents;
 * rows split across the BLAS threads. Returns the number of active
 * (row, latent) pairs. */
static guint64
activate_train (GbSaeTrainer *self,
                const float  *b_enc,
                guint         B)
{
  ActivateRows a = { self, b_enc };
  guint64 nnz = 0;

  gb_parallel_range (B, 16, activate_train_rows, &a);
  for (guint b = 0; b < B; b++)
    nnz += self->act_n[b];
  return nnz;
}

typedef struct
{
  float       *dz;
  const float *z;
  float       *gb_enc;
  guint        B, ds;
  float        l1_grad;
} MaskColumns;

/* dpre = (dz + l1/B) on active latents, 0 elsewhere; gb_enc += its rows. */
static void
mask_columns (gsize    begin,
              gsize    end,
              gpointer data)
{
  const MaskColumns *m = data;

  for (guint b = 0; b < m->B; b++)
    {
      float *row = m->dz + (gsize) b * m->ds;
      const float *zr = m->z + (gsize) b * m->ds;
      for (gsize j = begin; j < end; j++)
        row[j] = zr[j] > 0 ? row[j] + m->l1_grad : 0.0f;
      for (gsize j = begin; j < end; j++)
        m->gb_enc[j] += row[j];
    }
}

/* Forward and backward of the loss (see the header) into self->g. The
 * shapes: x [B, di], xin [B, di], z = pre [B, ds], xhat [B, di]. */
static void
forward_backward (GbSaeTrainer   *self,
                  const float    *x,
                  guint           B,
                  GbSaeStepStats *stats)
{
  const guint di = self->sae->d_in, ds = self->sae->d_sae;
  const float *W_encT = p_W_encT (self, self->p), *W_dec = p_W_dec (self, self->p);
  const float *b_enc = p_b_enc (self, self->p), *b_dec = p_b_dec (self, self->p);
  float *gW_encT = p_W_encT (self, self->g), *gW_dec = p_W_dec (self, self->g);
  float *gb_enc = p_b_enc (self, self->g), *gb_dec = p_b_dec (self, self->g);
  const double l1_coef = self->sae->kind == GB_SAE_STANDARD ? self->opt.l1 : 0;
  const gboolean apply = self->sae->apply_b_dec_to_input;

  reserve (self, B);
  float *xin = self->xin, *z = self->pre, *xhat = self->xhat, *dxhat = self->dx;
  for (gsize t = 0; t < B; t++)
    for (guint i = 0; i < di; i++)
      xin[t * di + i] = x[t * di + i] - (apply ? b_dec[i] : 0);
  /* pre [B, ds] = xin @ W_encT^T + b_enc (the bias in activate_train) */
  if (self->enc_packed != NULL)
    {
      gb_packed_fill_transposed (self->enc_packed, W_encT);
      gb_packed_matmul (z, xin, self->enc_packed, NULL, B, GB_EPILOGUE_NONE);
    }
  else
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, B, ds, di, 1.0f, xin, di, W_encT, di, 0.0f, z, ds);
  const guint64 nnz = activate_train (self, b_enc, B);
  /* (The pairs are counted in guint: a batch with more is run dense.) */
  const gboolean sparse = (double) nnz / ((double) B * ds) < self->opt.sparse_below && nnz < G_MAXUINT;

  /* xhat [B, di] = z @ W_dec + b_dec */
  SparsePass sp = { self, W_dec, W_encT, xin, dxhat, xhat, gW_dec, gW_encT, gb_enc, 0.f };
  if (sparse)
    {
      build_columns (self, B, nnz);
      for (gsize t = 0; t < B; t++)
        memcpy (xhat + t * di, b_dec, di * sizeof (float));
      gb_parallel_range (B, 64, sparse_decode_rows, &sp);
    }
  else
    {
      for (gsize t = 0; t < B; t++)
        memcpy (xhat + t * di, b_dec, di * sizeof (float));
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, B, di, ds, 1.0f, z, ds, W_dec, di, 1.0f, xhat, di);
    }

  /* Loss and dL/dxhat = 2 (xhat - x) / B */
  double mse = 0, l1 = 0, var = 0;
  g_autofree double *mean = g_new0 (double, di);
  for (gsize t = 0; t < B; t++)
    for (guint i = 0; i < di; i++)
      {
        const double e = (double) xhat[t * di + i] - x[t * di + i];
        mse += e * e;
        mean[i] += x[t * di + i];
        dxhat[t * di + i] = (float) (2.0 * e / B);
      }
  for (guint b = 0; b < B; b++)
    for (guint a = 0; a < self->act_n[b]; a++)
      l1 += z[(gsize) b * ds + self->act_idx[(gsize) b * ds + a]];
  for (guint i = 0; i < di; i++)
    mean[i] /= B;
  for (gsize t = 0; t < B; t++)
    for (guint i = 0; i < di; i++)
      {
        const double c = x[t * di + i] - mean[i];
        var += c * c;
      }
  stats->mse = mse / B;
  stats->l1 = l1 / B;
  stats->loss = stats->mse + l1_coef * stats->l1;
  stats->l0 = (double) nnz / B;
  stats->var = var / B;

  /* gb_dec = sum_b dxhat_b (decoder side) */
  memset (gb_dec, 0, di * sizeof (float));
  for (gsize t = 0; t < B; t++)
    gb_axpy (di, 1.0f, dxhat + t * di, gb_dec);
  memset (gb_enc, 0, ds * sizeof (float));

  /* dpre_bj = (dxhat_b . W_dec[j] + l1/B) on active latents, 0 elsewhere;
   * stored over z. In the dense path, gW_dec = z^T dxhat first (needs z). */
  const float l1_grad = (float) (l1_coef / B);
  if (sparse)
    {
      sp.l1_grad = l1_grad;
      gb_parallel_range (ds, 64, sparse_backward_latents, &sp);
    }
  else
    {
      /* gW_dec [ds, di] = z^T @ dxhat */
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, ds, di, B, 1.0f, z, ds, dxhat, di, 0.0f, gW_dec, di);
      /* z becomes a mask of active latents, then dpre = (dxhat @ W_dec^T + l1/B) * mask */
      g_autofree float *dz = g_new (float, (gsize) B * ds);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, B, ds, di, 1.0f, dxhat, di, W_dec, di, 0.0f, dz, ds);
      /* Columns split across the threads: each sums its own gb_enc[j], over
       * the rows in order, as one thread would. */
      MaskColumns mc = { dz, z, gb_enc, B, ds, l1_grad };
      gb_parallel_range (ds, 256, mask_columns, &mc);
      /* gW_encT [ds, di] = dpre^T @ xin */
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, ds, di, B, 1.0f, dz, ds, xin, di, 0.0f, gW_encT, di);
    }
  /* xin = x - b_dec: gb_dec -= sum_b dpre_b @ W_encT = gb_enc @ W_encT */
  if (apply)
    {
      /* Column ranges split across the threads; within each, the latents
       * in order, as one thread would (OpenBLAS's threads, called here,
       * would spin beside the pool's for the rest of the step). */
      RowsTimes rt = { W_encT, gb_enc, gb_dec, ds, di };
      gb_parallel_range (di, 64, rows_times_columns, &rt);
    }

  /* Firing statistics */
  for (guint j = 0; j < ds; j++)
    self->since_fired[j] += B;
  for (guint b = 0; b < B; b++)
    for (guint a = 0; a < self->act_n[b]; a++)
      {
        const guint j = self->act_idx[(gsize) b * ds + a];
        self->since_fired[j] = 0;
        self->n_fired[j]++;
      }
  self->n_seen += B;
}

void
gb_sae_trainer_gradients (GbSaeTrainer   *self,
                          const float    *x,
                          guint           B,
                          GbSaeStepStats *stats,
                          float          *g_W_enc,
                          float          *g_W_dec,
                          float          *g_b_enc,
                          float          *g_b_dec)
{
  const gsize di = self->sae->d_in, ds = self->sae->d_sae;

  forward_backward (self, x, B, stats);
  if (g_W_enc)
    transpose (g_W_enc, p_W_encT (self, self->g), ds, di);
  if (g_W_dec)
    memcpy (g_W_dec, p_W_dec (self, self->g), ds * di * sizeof (float));
  if (g_b_enc)
    memcpy (g_b_enc, p_b_enc (self, self->g), ds * sizeof (float));
  if (g_b_dec)
    memcpy (g_b_dec, p_b_dec (self, self->g), di * sizeof (float));
}

typedef struct
{
  GbSaeTrainer *self;
  float         b1, b2, eps, c1, c2, lr;
} AdamStep;

/* The engine builds with -fno-math-errno, so GCC vectorises this loop. */
static void
adam_range (gsize    begin,
            gsize    end,
            gpointer data)
{
  const AdamStep *a = data;
  const float b1 = a->b1, b2 = a->b2, eps = a->eps, c1 = a->c1, c2 = a->c2, lr = a->lr;
  float *restrict p = a->self->p, *restrict m = a->self->m, *restrict v = a->self->v;
  const float *restrict g = a->self->g;

  for (gsize i = begin; i < end; i++)
    {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= lr * (m[i] * c1) / (sqrtf (v[i] * c2) + eps);
    }
}

static void
adam (GbSaeTrainer *self)
{
  const double t = (double) self->step;
  AdamStep a = {
    self, (float) self->opt.beta1, (float) self->opt.beta2, (float) self->opt.adam_eps,
    (float) (1.0 / (1.0 - pow (self->opt.beta1, t))), (float) (1.0 / (1.0 - pow (self->opt.beta2, t))),
    (float) self->opt.lr,
  };

  /* Element-wise: split across the BLAS threads, same numbers as one. */
  gb_parallel_range (self->n_params, 1 << 16, adam_range, &a);
}

typedef struct
{
  float *rows;
  guint  n;
} NormRows;

static void
normalize_rows (gsize    begin,
                gsize    end,
                gpointer data)
{
  const NormRows *r = data;

  for (gsize j = begin; j < end; j++)
    normalize_row (r->rows + j * r->n, r->n);
}

/* Dead latents get a new direction: the residual (x - xhat) of a batch row
 * drawn with probability proportional to its squared error; the encoder row
 * is that direction scaled to 0.2 x the mean norm of live encoder rows. */
static void
resample_dead (GbSaeTrainer *self,
               const float  *x,
               guint         B)
{
  const guint di = self->sae->d_in, ds = self->sae->d_sae;
  float *W_encT = p_W_encT (self, self->p), *W_dec = p_W_dec (self, self->p), *b_enc = p_b_enc (self, self->p);
  g_autofree double *err = g_new (double, B);
  double total = 0, live_norm = 0;
  guint n_live = 0, n_dead = 0;

  for (guint j = 0; j < ds; j++)
    if (self->since_fired[j] < self->opt.dead_window)
      {
        live_norm += sqrt (cblas_sdot (di, W_encT + (gsize) j * di, 1, W_encT + (gsize) j * di, 1));
        n_live++;
      }
  live_norm = n_live ? live_norm / n_live : 1.0;
  for (guint b = 0; b < B; b++)
    {
      double e = 0;
      for (guint i = 0; i < di; i++)
        {
          const double r = (double) x[(gsize) b * di + i] - self->xhat[(gsize) b * di + i];
          e += r * r;
        }
      err[b] = e;
      total += e;
    }
  if (total <= 0)
    return;
  for (guint j = 0; j < ds; j++)
    {
      if (self->since_fired[j] < self->opt.dead_window)
        continue;
      double u = g_rand_double (self->rng) * total;
      guint b = 0;
      while (b + 1 < B && u >= err[b])
        u -= err[b++];
      float *dec = W_dec + (gsize) j * di, *enc = W_encT + (gsize) j * di;
      for (guint i = 0; i < di; i++)
        dec[i] = x[(gsize) b * di + i] - self->xhat[(gsize) b * di + i];
      normalize_row (dec, di);
      for (guint i = 0; i < di; i++)
        enc[i] = dec[i] * (float) (0.2 * live_norm);
      b_enc[j] = 0;
      const gsize offs[2] = { (gsize) j * di, (gsize) ds * di + (gsize) j * di };
      for (guint s = 0; s < 2; s++)
        {
          memset (self->m + offs[s], 0, di * sizeof (float));
          memset (self->v + offs[s], 0, di * sizeof (float));
        }
      const gsize ob = 2 * (gsize) ds * di + j;
      self->m[ob] = self->v[ob] = 0;
      self->since_fired[j] = 0;
      n_dead++;
    }
  self->n_resampled += n_dead;
}

void
gb_sae_trainer_step (GbSaeTrainer   *self,
                     const float    *x,
                     guint           B,
                     GbSaeStepStats *stats)
{
  const guint di = self->sae->d_in, ds = self->sae->d_sae;

  g_return_if_fail (B > 0);
  forward_backward (self, x, B, stats);
  self->step++;
  adam (self);
  NormRows nr = { p_W_dec (self, self->p), di };
  gb_parallel_range (ds, 64, normalize_rows, &nr);
  if (self->opt.resample_every > 0 && self->step % self->opt.resample_every == 0)
    resample_dead (self, x, B);
  self->sae_stale = TRUE;
}

/* ---- Trainer checkpoints ---- */

gboolean
gb_sae_trainer_save (GbSaeTrainer *self,
                     const char   *dir,
                     GError      **error)
{
  GbSae *sae = gb_sae_trainer_get_sae (self);
  const gsize ds = sae->d_sae;

  if (!gb_sae_save (sae, dir, error))
    return FALSE;
  g_autofree float *since = g_new (float, ds), *fired = g_new (float, ds);
  for (gsize j = 0; j < ds; j++)
    {
      since[j] = (float) MIN (self->since_fired[j], (guint64) 1 << 40);
      fired[j] = (float) self->n_fired[j];
    }
  GbTensorOut t[4] = {
    { "adam_m", 1, { (gint64) self->n_params }, self->m },
    { "adam_v", 1, { (gint64) self->n_params }, self->v },
    { "since_fired", 1, { (gint64) ds }, since },
    { "n_fired", 1, { (gint64) ds }, fired },
  };
  g_autoptr (GHashTable) meta = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert (meta, "step", g_strdup_printf ("%" G_GUINT64_FORMAT, self->step));
  g_hash_table_insert (meta, "n_seen", g_strdup_printf ("%" G_GUINT64_FORMAT, self->n_seen));
  g_hash_table_insert (meta, "n_resampled", g_strdup_printf ("%" G_GUINT64_FORMAT, self->n_resampled));
  g_autofree char *path = g_build_filename (dir, "trainer_state.safetensors", NULL);
  return gb_safetensors_write (path, t, G_N_ELEMENTS (t), GB_DTYPE_F32, meta, error);
}

static gboolean
meta_u64 (GHashTable *meta,
          const char *key,
          guint64    *out,
          const char *path,
          GError    **error)
{
  const char *s = meta ? g_hash_table_lookup (meta, key) : NULL;
  if (s == NULL || !g_ascii_string_to_unsigned (s, 10, 0, G_MAXUINT64, out, NULL))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: metadata “%s” is missing or not a number", path, key);
      return FALSE;
    }
  return TRUE;
}

GbSaeTrainer *
gb_sae_trainer_resume (const char              *dir,
                       const GbSaeTrainOptions *options,
                       GError                 **error)
{
  g_autofree char *path = g_build_filename (dir, "trainer_state.safetensors", NULL);
  GbSae *sae = gb_sae_load (dir, error);
  if (sae == NULL)
    return NULL;
  if (sae->kind == GB_SAE_JUMPRELU)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "%s: Glassbox does not train jumprelu SAEs", dir);
      gb_sae_free (sae);
      return NULL;
    }
  g_autoptr (GbSaeTrainer) self = gb_sae_trainer_new (sae, options);
  g_autoptr (GbSafetensors) st = gb_safetensors_open (path, error);
  if (st == NULL)
    return NULL;
  const gsize ds = sae->d_sae;
  g_autofree float *since = g_new (float, ds), *fired = g_new (float, ds);
  GHashTable *meta = gb_safetensors_get_metadata (st);
  if (!read_tensor (st, "adam_m", 1, (gint64) self->n_params, 0, self->m, error)
      || !read_tensor (st, "adam_v", 1, (gint64) self->n_params, 0, self->v, error)
      || !read_tensor (st, "since_fired", 1, (gint64) ds, 0, since, error)
      || !read_tensor (st, "n_fired", 1, (gint64) ds, 0, fired, error)
      || !meta_u64 (meta, "step", &self->step, path, error) || !meta_u64 (meta, "n_seen", &self->n_seen, path, error)
      || !meta_u64 (meta, "n_resampled", &self->n_resampled, path, error))
    return NULL;
  for (gsize j = 0; j < ds; j++)
    {
      self->since_fired[j] = since[j] < 0 ? 0 : (guint64) since[j];
      self->n_fired[j] = fired[j] < 0 ? 0 : (guint64) fired[j];
    }
  g_rand_set_seed (self->rng, (guint32) (options->seed * 2654435761u + self->step));
  return g_steal_pointer (&self);
}
