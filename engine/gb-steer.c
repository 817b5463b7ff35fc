/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <math.h>
#include <string.h>

#include "gb-parallel.h"
#include "gb-error.h"
#include "gb-steer.h"

/* Steering vectors: training from contrastive pairs (mean difference, as the
 * steering-vectors library does, or repeng's PCA of differences), held-out
 * separation per block, and the add-vector interventions that apply them. */

/* LAPACK (OpenBLAS ships it): eigenvalues and vectors of a symmetric matrix. */
extern void dsyev_ (const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *info);

const char *
gb_steer_method_name (GbSteerMethod method)
{
  return method == GB_STEER_PCA ? "pca" : "mean";
}

gboolean
gb_steer_method_parse (const char    *name,
                       GbSteerMethod *method)
{
  if (g_strcmp0 (name, "mean") == 0)
    *method = GB_STEER_MEAN;
  else if (g_strcmp0 (name, "pca") == 0)
    *method = GB_STEER_PCA;
  else
    return FALSE;
  return TRUE;
}

void
gb_steer_params_init (GbSteerParams *params)
{
  *params = (GbSteerParams) {
    .method = GB_STEER_MEAN,
    .layers = 0,
    .read_pos = -1,
    .holdout_every = 5,
  };
}

void
gb_steer_vector_free (GbSteerVector *self)
{
  if (self == NULL)
    return;
  for (guint i = 0; i < self->n_layers; i++)
    g_free (self->layers[i].vector);
  g_free (self->layers);
  g_free (self->model_name);
  g_free (self->model_type);
  g_free (self->pairs_name);
  g_free (self->pairs_hash);
  g_free (self);
}

GbSteerVector *
gb_steer_vector_copy (const GbSteerVector *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  GbSteerVector *copy = g_memdup2 (self, sizeof *self);
  copy->model_name = g_strdup (self->model_name);
  copy->model_type = g_strdup (self->model_type);
  copy->pairs_name = g_strdup (self->pairs_name);
  copy->pairs_hash = g_strdup (self->pairs_hash);
  copy->layers = g_memdup2 (self->layers, self->n_layers * sizeof (GbSteerLayer));
  for (guint i = 0; i < self->n_layers; i++)
    copy->layers[i].vector = g_memdup2 (self->layers[i].vector, self->n_embd * sizeof (float));
  return copy;
}

GbSteerVector *
gb_steer_vector_subset (const GbSteerVector *self,
                        guint64              mask)
{
  g_return_val_if_fail (self != NULL, NULL);

  GbSteerVector *copy = gb_steer_vector_copy (self);
  guint kept = 0;
  for (guint i = 0; i < copy->n_layers; i++)
    {
      if (copy->layers[i].layer < 64 && (mask >> copy->layers[i].layer) & 1)
        copy->layers[kept++] = copy->layers[i];
      else
        g_free (copy->layers[i].vector);
    }
  copy->n_layers = kept;
  if (kept == 0)
    g_clear_pointer (&copy, gb_steer_vector_free);
  return copy;
}

const GbSteerLayer *
gb_steer_vector_get_layer (const GbSteerVector *self,
                           guint                layer)
{
  for (guint i = 0; i < self->n_layers; i++)
    if (self->layers[i].layer == layer)
      return &self->layers[i];
  return NULL;
}

/* ---- Reading activations ---- */

static gboolean
is_heldout (const GbSteerParams *params,
            guint                i)
{
  return params->holdout_every > 0 && (i + 1) % params->holdout_every == 0;
}

/* Runs @text and copies the chosen blocks' output rows at the read position
 * into out[k][D] (k over the chosen blocks in order). */
static gboolean
read_text (GbModel             *model,
           const char          *text,
           const guint         *blocks,
           guint                n_blocks,
           const GbSteerParams *params,
           const char          *what,
           double             **out,
           GCancellable        *cancellable,
           GError             **error)
{
  const GbConfig *c = gb_model_get_config (model);
  g_autoptr (GError) local = NULL;

  g_autoptr (GArray) ids = gb_tokenizer_encode (gb_model_get_tokenizer (model), text, -1, FALSE, &local);
  if (ids == NULL)
    return g_set_error (error, GB_ERROR, local->code, "%s: %s", what, local->message), FALSE;
  if (ids->len == 0)
    return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: the text has no tokens", what), FALSE;
  if (ids->len > c->n_positions)
    return g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: the text is %u tokens, longer than the model's context of %u",
                        what, ids->len, c->n_positions),
           FALSE;
  gint64 pos = params->read_pos >= 0 ? params->read_pos : (gint64) ids->len + params->read_pos;
  if (pos < 0 || pos >= ids->len)
    return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: read position %d is outside its %u tokens", what,
                        params->read_pos, ids->len),
           FALSE;

  GbRecord rec = { .logits = GB_LOGITS_NONE };
  for (guint k = 0; k < n_blocks; k++)
    rec.hooks[GB_HOOK_RESID_POST] |= G_GUINT64_CONSTANT (1) << blocks[k];
  g_autoptr (GbTrace) trace = gb_model_forward (model, (const gint32 *) ids->data, ids->len, &rec, NULL, 0, cancellable,
                                                error);
  if (trace == NULL)
    return FALSE;
  for (guint k = 0; k < n_blocks; k++)
    {
      const float *row = gb_trace_get (trace, GB_HOOK_RESID_POST, blocks[k]) + (gsize) pos * c->n_embd;
      for (guint j = 0; j < c->n_embd; j++)
        out[k][j] = row[j];
    }
  return TRUE;
}

/* ---- Directions ---- */

static double
dot (const double *a,
     const double *b,
     guint         n)
{
  double s = 0;
  for (guint i = 0; i < n; i++)
    s += a[i] * b[i];
  return s;
}

/* The top eigenvector of the symmetric @a [n, n] (destroyed) into @v [n]. */
static gboolean
top_eigenvector (double *a,
                 int     n,
                 double *v,
                 GError **error)
{
  g_autofree double *w = g_new (double, n);
  int lwork = -1, info = 0;
  double query;

  dsyev_ ("V", "U", &n, a, &n, w, &query, &lwork, &info);
  lwork = MAX ((int) query, 3 * n);
  g_autofree double *work = g_new (double, lwork);
  dsyev_ ("V", "U", &n, a, &n, w, work, &lwork, &info);
  if (info != 0)
    return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "the eigen-decomposition failed (LAPACK info %d)", info),
           FALSE;
  /* Ascending eigenvalues: the last column (column-major) is the top one. */
  memcpy (v, a + (gsize) (n - 1) * n, (gsize) n * sizeof (double));
  return TRUE;
}

/* First principal component of the centred rows of @d [m, D] into @u [D]
 * (unit length; sign arbitrary). Works on the smaller of the Gram and the
 * covariance matrix. */
static gboolean
first_component (double *const *d,
                 guint          m,
                 guint          D,
                 double        *u,
                 GError       **error)
{
  g_autofree double *mean = g_new0 (double, D);
  g_autofree double *x = g_new (double, (gsize) m * D);

  for (guint i = 0; i < m; i++)
    for (guint j = 0; j < D; j++)
      mean[j] += d[i][j] / m;
  for (guint i = 0; i < m; i++)
    for (guint j = 0; j < D; j++)
      x[(gsize) i * D + j] = d[i][j] - mean[j];

  if (m <= D)
    {
      g_autofree double *g = g_new (double, (gsize) m * m);
      g_autofree double *a = g_new (double, m);
      for (guint i = 0; i < m; i++)
        for (guint k = 0; k <= i; k++)
          g[(gsize) i * m + k] = g[(gsize) k * m + i] = dot (x + (gsize) i * D, x + (gsize) k * D, D);
      if (!top_eigenvector (g, (int) m, a, error))
        return FALSE;
      memset (u, 0, D * sizeof (double));
      for (guint i = 0; i < m; i++)
        for (guint j = 0; j < D; j++)
          u[j] += a[i] * x[(gsize) i * D + j];
    }
  else
    {
      g_autofree double *cov = g_new0 (double, (gsize) D * D);
      for (guint i = 0; i < m; i++)
        for (guint j = 0; j < D; j++)
          for (guint k = 0; k < D; k++)
            cov[(gsize) j * D + k] += x[(gsize) i * D + j] * x[(gsize) i * D + k];
      if (!top_eigenvector (cov, (int) D, u, error))
        return FALSE;
    }
  double norm = sqrt (dot (u, u, D));
  if (!(norm > 0))
    return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA,
                        "the differences do not vary, so they have no principal component (use the mean method)"),
           FALSE;
  for (guint j = 0; j < D; j++)
    u[j] /= norm;
  return TRUE;
}

/* One block's direction from the training differences @d [m, D]. Mean: their
 * average. PCA: the first component, its sign set so that most pairs project
 * positive (ties: the mean's side), scaled by the mean projection so that
 * multipliers mean the same for both methods. */
static gboolean
direction (GbSteerMethod  method,
           double *const *d,
           guint          m,
           guint          D,
           double        *v,
           GError       **error)
{
  g_autofree double *mean = g_new0 (double, D);
  for (guint i = 0; i < m; i++)
    for (guint j = 0; j < D; j++)
      mean[j] += d[i][j];
  for (guint j = 0; j < D; j++)
    mean[j] /= m;

  if (method == GB_STEER_MEAN)
    {
      memcpy (v, mean, D * sizeof (double));
      return TRUE;
    }
  if (m < 2)
    return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "the PCA method needs at least 2 training pairs"), FALSE;
  if (!first_component (d, m, D, v, error))
    return FALSE;
  guint above = 0, below = 0;
  for (guint i = 0; i < m; i++)
    {
      double p = dot (d[i], v, D);
      above += p > 0;
      below += p < 0;
    }
  double along = dot (mean, v, D);
  if (below > above || (below == above && along < 0))
    {
      for (guint j = 0; j < D; j++)
        v[j] = -v[j];
      along = -along;
    }
  double scale = fabs (along);
  for (guint j = 0; j < D; j++)
    v[j] *= scale;
  return TRUE;
}

/* Held-out separation of one block. pos/neg: [n_pairs][D] activations. */
static void
separation (GbSteerLayer        *out,
            const double        *v,
            double *const       *pos,
            double *const       *neg,
            guint                n_pairs,
            guint                D,
            const GbSteerParams *params)
{
  g_autofree double *u = g_memdup2 (v, D * sizeof (double));
  double norm = sqrt (dot (v, v, D)), mid = 0;
  guint n_train = 0, n_held = 0, right = 0;
  double gap = 0, s_pos = 0, s_neg = 0, q_pos = 0, q_neg = 0;

  double sq = 0;

  out->accuracy = out->gap = out->effect = NAN;
  for (guint j = 0; j < D; j++)
    u[j] /= norm;
  for (guint i = 0; i < n_pairs; i++)
    if (!is_heldout (params, i))
      {
        double a = dot (pos[i], u, D), b = dot (neg[i], u, D);
        mid += (a + b) / 2;
        sq += a * a + b * b;
        n_train++;
      }
  mid /= n_train;
  /* The pooled training projections' mean is the midpoint of the sides. */
  out->proj_mean = mid;
  out->proj_sd = sqrt (MAX (sq / (2.0 * n_train) - mid * mid, 0));
  for (guint i = 0; i < n_pairs; i++)
    if (is_heldout (params, i))
      {
        double a = dot (pos[i], u, D), b = dot (neg[i], u, D);
        right += (a > mid) + (b < mid);
        gap += a - b;
        s_pos += a, s_neg += b, q_pos += a * a, q_neg += b * b;
        n_held++;
      }
  if (n_held == 0)
    return;
  out->accuracy = (double) right / (2.0 * n_held);
  out->gap = gap / n_held;
  double m_pos = s_pos / n_held, m_neg = s_neg / n_held;
  double var = (MAX (q_pos / n_held - m_pos * m_pos, 0) + MAX (q_neg / n_held - m_neg * m_neg, 0)) / 2;
  out->effect = var > 0 ? out->gap / sqrt (var) : (out->gap == 0 ? 0 : copysign (INFINITY, out->gap));
}

/* ---- Training ---- */

typedef struct
{
  guint    n_pairs, n_blocks, D;
  guint   *blocks;
  double **pos, **neg; /* [n_blocks * n_pairs] rows of D, index k * n_pairs + i */
} Acts;

static void
acts_free (Acts *a)
{
  for (guint r = 0; r < a->n_blocks * a->n_pairs; r++)
    {
      g_free (a->pos[r]);
      g_free (a->neg[r]);
    }
  g_free (a->pos);
  g_free (a->neg);
  g_free (a->blocks);
}

static gboolean
check_params (GbModel             *model,
              const GbPairSet     *pairs,
              const GbSteerParams *params,
              GError             **error)
{
  const GbConfig *c = gb_model_get_config (model);
  guint n = gb_pair_set_get_n_pairs (pairs), n_held = 0;

  if (!gb_pair_set_validate (pairs, NULL, error))
    return FALSE;
  /* Blocks are bits of a 64-bit mask here and in the vector files' users. */
  if (c->n_layer > 64)
    return g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "steering handles models of at most 64 blocks; this one has %u",
                        c->n_layer),
           FALSE;
  if (c->n_layer < 64 && (params->layers >> c->n_layer) != 0)
    return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "the model has blocks 0-%u only", c->n_layer - 1), FALSE;
  for (guint i = 0; i < n; i++)
    n_held += is_heldout (params, i);
  if (n - n_held == 0)
    return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "no pairs are left to train on after holding %u out",
                        n_held),
           FALSE;
  return TRUE;
}

static gboolean
collect (GbModel             *model,
         const GbPairSet     *pairs,
         const GbSteerParams *params,
         Acts                *a,
         GCancellable        *cancellable,
         GbProgressFunc       progress,
         gpointer             progress_data,
         GError             **error)
{
  g_autofree double **pos_rows = g_new (double *, a->n_blocks);
  g_autofree double **neg_rows = g_new (double *, a->n_blocks);

  for (guint i = 0; i < a->n_pairs; i++)
    {
      const GbPair *p = gb_pair_set_get (pairs, i);
      g_autofree char *what_pos = g_strdup_printf ("pair %u (positive)", i + 1);
      g_autofree char *what_neg = g_strdup_printf ("pair %u (negative)", i + 1);
      for (guint k = 0; k < a->n_blocks; k++)
        {
          pos_rows[k] = a->pos[k * a->n_pairs + i] = g_new (double, a->D);
          neg_rows[k] = a->neg[k * a->n_pairs + i] = g_new (double, a->D);
        }
      if (!read_text (model, p->positive, a->blocks, a->n_blocks, params, what_pos, pos_rows, cancellable, error) ||
          !read_text (model, p->negative, a->blocks, a->n_blocks, params, what_neg, neg_rows, cancellable, error))
        return FALSE;
      if (progress != NULL)
        {
          g_autofree char *msg = g_strdup_printf ("Read pair %u of %u", i + 1, a->n_pairs);
          progress ((i + 1.0) / a->n_pairs, msg, progress_data);
        }
    }
  return TRUE;
}

static gboolean
fit_block (GbSteerLayer        *out,
           const Acts          *a,
           guint                k,
           const GbSteerParams *params,
           GError             **error)
{
  double *const *pos = a->pos + (gsize) k * a->n_pairs, *const *neg = a->neg + (gsize) k * a->n_pairs;
  g_autofree double **d = g_new (double *, a->n_pairs);
  g_autofree double *v = g_new (double, a->D);
  guint m = 0;

  for (guint i = 0; i < a->n_pairs; i++)
    if (!is_heldout (params, i))
      {
        d[m] = g_new (double, a->D);
        for (guint j = 0; j < a->D; j++)
          d[m][j] = pos[i][j] - neg[i][j];
        m++;
      }
  gboolean ok = direction (params->method, d, m, a->D, v, error);
  for (guint i = 0; i < m; i++)
    g_free (d[i]);
  if (!ok)
    return FALSE;
  if (!(sqrt (dot (v, v, a->D)) > 0) || !isfinite (dot (v, v, a->D)))
    return g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA,
                        "block %u: the positive and negative texts give the same activations, so there is no "
                        "direction to learn",
                        a->blocks[k]),
           FALSE;
  out->layer = a->blocks[k];
  out->vector = g_new (float, a->D);
  for (guint j = 0; j < a->D; j++)
    out->vector[j] = (float) v[j];
  separation (out, v, pos, neg, a->n_pairs, a->D, params);
  return TRUE;
}

GbSteerVector *
gb_steer_train (GbModel             *model,
                const GbPairSet     *pairs,
                const GbSteerParams *params,
                GCancellable        *cancellable,
                GbProgressFunc       progress,
                gpointer             progress_data,
                GError             **error)
{
  g_return_val_if_fail (model != NULL && pairs != NULL && params != NULL, NULL);

  const GbConfig *c = gb_model_get_config (model);
  if (!check_params (model, pairs, params, error))
    return NULL;

  Acts a = { .n_pairs = gb_pair_set_get_n_pairs (pairs), .D = c->n_embd };
  a.blocks = g_new (guint, c->n_layer);
  for (guint l = 0; l < c->n_layer; l++)
    if (params->layers == 0 || (params->layers >> l) & 1)
      a.blocks[a.n_blocks++] = l;
  a.pos = g_new0 (double *, (gsize) a.n_blocks * a.n_pairs);
  a.neg = g_new0 (double *, (gsize) a.n_blocks * a.n_pairs);

  g_autoptr (GbSteerVector) vec = g_new0 (GbSteerVector, 1);
  vec->model_name = g_strdup (gb_model_get_name (model));
  vec->model_type = g_strdup (c->model_type ? c->model_type : "gpt2");
  vec->n_embd = c->n_embd;
  vec->method = params->method;
  vec->method_known = TRUE;
  vec->read_pos = params->read_pos;
  vec->pairs_name = g_strdup (pairs->name);
  vec->pairs_hash = gb_pair_set_hash (pairs);
  vec->holdout_every = params->holdout_every;
  for (guint i = 0; i < a.n_pairs; i++)
    vec->n_heldout += is_heldout (params, i);
  vec->n_train = a.n_pairs - vec->n_heldout;
  vec->layers = g_new0 (GbSteerLayer, a.n_blocks);

  gboolean ok = collect (model, pairs, params, &a, cancellable, progress, progress_data, error);
  for (guint k = 0; ok && k < a.n_blocks; k++)
    {
      ok = fit_block (&vec->layers[k], &a, k, params, error);
      vec->n_layers += ok;
    }
  acts_free (&a);
  return ok ? g_steal_pointer (&vec) : NULL;
}

/* ---- Async ---- */

typedef struct
{
  GbModel       *model;
  GbPairSet     *pairs;
  GbSteerParams  params;
  GbProgressFunc progress;
  gpointer       progress_data;
} TrainData;

static void
train_data_free (gpointer data)
{
  TrainData *td = data;
  gb_model_unref (td->model);
  gb_pair_set_free (td->pairs);
  g_free (td);
}

static void
train_thread (GTask        *task,
              gpointer      source,
              gpointer      task_data,
              GCancellable *cancellable)
{
  gb_thread_make_background ();
  TrainData *td = task_data;
  GError *error = NULL;

  GbSteerVector *vec = gb_steer_train (td->model, td->pairs, &td->params, cancellable, td->progress,
                                       td->progress_data, &error);
  if (vec == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, vec, (GDestroyNotify) gb_steer_vector_free);
}

void
gb_steer_train_async (GbModel             *model,
                      const GbPairSet     *pairs,
                      const GbSteerParams *params,
                      GCancellable        *cancellable,
                      GbProgressFunc       progress,
                      gpointer             progress_data,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_return_if_fail (model != NULL && pairs != NULL && params != NULL);

  TrainData *td = g_new0 (TrainData, 1);
  td->model = gb_model_ref (model);
  td->pairs = gb_pair_set_copy (pairs);
  td->params = *params;
  td->progress = progress;
  td->progress_data = progress_data;

  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, gb_steer_train_async);
  g_task_set_task_data (task, td, train_data_free);
  g_task_set_return_on_cancel (task, FALSE);
  g_task_run_in_thread (task, train_thread);
}

GbSteerVector *
gb_steer_train_finish (GAsyncResult *result,
                       GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gb_steer_train_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- Applying ---- */

gboolean
gb_steer_vector_check (const GbSteerVector *self,
                       GbModel             *model,
                       GError             **error)
{
  const GbConfig *c = gb_model_get_config (model);

  if (self->n_embd != c->n_embd)
    return g_set_error (error, GB_ERROR, GB_ERROR_SHAPE,
                        "the steering vector is %u wide but the model's residual stream is %u (trained on %s?)",
                        self->n_embd, c->n_embd, self->model_name ? self->model_name : "another model"),
           FALSE;
  for (guint i = 0; i < self->n_layers; i++)
    if (self->layers[i].layer >= c->n_layer)
      return g_set_error (error, GB_ERROR, GB_ERROR_SHAPE,
                          "the steering vector steers block %u but the model has %u blocks", self->layers[i].layer,
                          c->n_layer),
             FALSE;
  return TRUE;
}

guint
gb_steer_vector_interventions (const GbSteerVector *self,
                               float                multiplier,
                               guint                start_pos,
                               GbIntervention      *out)
{
  for (guint i = 0; i < self->n_layers; i++)
    out[i] = (GbIntervention) {
      .kind = GB_INTERVENE_ADD,
      .hook = GB_HOOK_RESID_POST,
      .layer = self->layers[i].layer,
      .multiplier = multiplier,
      .start_pos = start_pos,
      .values = self->layers[i].vector,
    };
  return self->n_layers;
}

double
gb_steer_layer_projection_z (const GbSteerLayer *layer,
                             guint               n_embd,
                             const float        *acts,
                             guint               n_rows)
{
  double norm = 0, worst = 0;

  g_return_val_if_fail (layer != NULL && acts != NULL, NAN);
  if (!(layer->proj_sd > 0) || !isfinite (layer->proj_mean))
    return NAN;
  for (guint j = 0; j < n_embd; j++)
    norm += (double) layer->vector[j] * layer->vector[j];
  norm = sqrt (norm);
  for (guint t = 0; t < n_rows; t++)
    {
      double p = 0;
      for (guint j = 0; j < n_embd; j++)
        p += (double) acts[(gsize) t * n_embd + j] * layer->vector[j];
      worst = MAX (worst, fabs (p / norm - layer->proj_mean) / layer->proj_sd);
    }
  return worst;
}

double
gb_repetition_rate (const gint32 *tokens,
                    guint         n_tokens)
{
  if (n_tokens < 4)
    return 0;
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_bytes_hash, g_bytes_equal, (GDestroyNotify) g_bytes_unref,
                                                       NULL);
  guint repeats = 0, n = n_tokens - 2;
  for (guint i = 0; i < n; i++)
    {
      GBytes *key = g_bytes_new (tokens + i, 3 * sizeof (gint32));
      if (g_hash_table_contains (seen, key))
        {
          repeats++;
          g_bytes_unref (key);
        }
      else
        g_hash_table_add (seen, key);
    }
  return (double) repeats / n;
}
