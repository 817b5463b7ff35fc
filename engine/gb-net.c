/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "gb-error.h"
#include "gb-kernels.h"
#include "gb-model-private.h"
#include "gb-net.h"
#include "gb-npy.h"

/* Pointers to one set of tensors (parameters or their gradients), laid out
 * in Hugging Face's order inside one buffer. */
typedef struct
{
  float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
  float *ln2_w, *ln2_b, *fc_w, *fc_b, *out_w, *out_b;
} NetBlock;

typedef struct
{
  float    *wte, *wpe;
  NetBlock *blocks;
  float    *lnf_w, *lnf_b;
} NetTensors;

/* What the backward pass needs from the forward, per layer. */
typedef struct
{
  float *x_in;        /* [N, D] resid_pre */
  float *ln1_mean, *ln1_rstd; /* [N] */
  float *h1;          /* [N, D] */
  float *qkv;         /* [N, 3D] */
  float *probs;       /* [B, H, T, T] */
  float *z;           /* [N, D] */
  float *x_mid;       /* [N, D] */
  float *ln2_mean, *ln2_rstd;
  float *h2;          /* [N, D] */
  float *f_pre;       /* [N, F] */
  float *f_act;       /* [N, F] */
} LayerTape;

struct _GbNet
{
  GbModelShape  shape;
  guint         n_inner;
  float         eps;
  GbActivation  activation;
  GbModel      *model;      /* when borrowed */

  float        *params;     /* the parameter buffer, NULL when borrowed */
  gboolean      owns_params; /* FALSE for a replica */
  float        *grads;
  gsize         n_params;
  NetTensors    p, g;
  GArray       *info;       /* GbParamInfo */

  /* Tape, sized for the largest N = B * T seen. */
  guint         cap_n, cap_t;
  gsize         cap_bt;
  guint         B, T;
  LayerTape    *tape;
  float        *x_final, *lnf_mean, *lnf_rstd, *hf, *logits;
  /* Backward scratch. */
  float        *dx, *dh, *dqkv, *dz, *df, *dp;
};

static void
add_info (GArray     *info,
          const char *name,
          guint       n_dims,
          gint64      d0,
          gint64      d1,
          gsize      *offset,
          gboolean    decay,
          gboolean    embedding)
{
  GbParamInfo pi = { g_intern_string (name), n_dims, { d0, d1 }, *offset, (gsize) d0 * (n_dims == 2 ? (gsize) d1 : 1), decay, embedding };
  *offset += pi.n;
  g_array_append_val (info, pi);
}

/* The parameter list in Hugging Face's order (gb-init.c writes the same). */
static GArray *
build_info (const GbModelShape *s,
            guint               F)
{
  GArray *info = g_array_new (FALSE, FALSE, sizeof (GbParamInfo));
  const gint64 D = s->n_embd;
  gsize off = 0;
  char name[64];

  add_info (info, "wte.weight", 2, s->n_vocab, D, &off, FALSE, TRUE);
  add_info (info, "wpe.weight", 2, s->n_positions, D, &off, FALSE, TRUE);
  for (guint l = 0; l < s->n_layer; l++)
    {
#define ADD(suffix, nd, d0, d1, decay) \
  (g_snprintf (name, sizeof name, "h.%u." suffix, l), add_info (info, name, nd, d0, d1, &off, decay, FALSE))
      ADD ("ln_1.weight", 1, D, 0, FALSE);
      ADD ("ln_1.bias", 1, D, 0, FALSE);
      ADD ("attn.c_attn.weight", 2, D, 3 * D, TRUE);
      ADD ("attn.c_attn.bias", 1, 3 * D, 0, FALSE);
      ADD ("attn.c_proj.weight", 2, D, D, TRUE);
      ADD ("attn.c_proj.bias", 1, D, 0, FALSE);
      ADD ("ln_2.weight", 1, D, 0, FALSE);
      ADD ("ln_2.bias", 1, D, 0, FALSE);
      ADD ("mlp.c_fc.weight", 2, D, F, TRUE);
      ADD ("mlp.c_fc.bias", 1, F, 0, FALSE);
      ADD ("mlp.c_proj.weight", 2, F, D, TRUE);
      ADD ("mlp.c_proj.bias", 1, D, 0, FALSE);
#undef ADD
    }
  add_info (info, "ln_f.weight", 1, D, 0, &off, FALSE, FALSE);
  add_info (info, "ln_f.bias", 1, D, 0, &off, FALSE, FALSE);
  return info;
}

static void
bind_tensors (NetTensors  *t,
              GArray      *info,
              float       *base,
              guint        n_layer)
{
  const GbParamInfo *pi = (const GbParamInfo *) info->data;
  guint k = 0;

  t->wte = base + pi[k++].offset;
  t->wpe = base + pi[k++].offset;
  t->blocks = g_new0 (NetBlock, n_layer);
  for (guint l = 0; l < n_layer; l++)
    {
      float **slots[] = {
        &t->blocks[l].ln1_w, &t->blocks[l].ln1_b, &t->blocks[l].qkv_w, &t->blocks[l].qkv_b,
        &t->blocks[l].proj_w, &t->blocks[l].proj_b, &t->blocks[l].ln2_w, &t->blocks[l].ln2_b,
        &t->blocks[l].fc_w, &t->blocks[l].fc_b, &t->blocks[l].out_w, &t->blocks[l].out_b,
      };
      for (guint i = 0; i < G_N_ELEMENTS (slots); i++)
        *slots[i] = base + pi[k++].offset;
    }
  t->lnf_w = base + pi[k++].offset;
  t->lnf_b = base + pi[k++].offset;
}

static GbNet *
net_new (const GbModelShape *shape,
         guint               n_inner)
{
  GbNet *self = g_new0 (GbNet, 1);
  self->shape = *shape;
  self->n_inner = n_inner;
  self->eps = 1e-5f;
  self->activation = GB_ACT_GELU_NEW;
  self->info = build_info (shape, n_inner);
  const GbParamInfo *last = &g_array_index (self->info, GbParamInfo, self->info->len - 1);
  self->n_params = last->offset + last->n;
  return self;
}

GbNet *
gb_net_new_random (const GbModelShape *shape,
                   guint64             seed)
{
  g_return_val_if_fail (shape != NULL && shape->n_layer > 0 && shape->n_head > 0 && shape->n_embd % shape->n_head == 0 &&
                          shape->n_vocab > 0 && shape->n_positions > 0, NULL);

  GbNet *self = net_new (shape, 4 * shape->n_embd);
  self->params = g_new (float, self->n_params);
  self->owns_params = TRUE;
  bind_tensors (&self->p, self->info, self->params, shape->n_layer);

  /* Same order and draws as gb_model_write_random(). */
  g_autoptr (GRand) rng = g_rand_new_with_seed_array ((const guint32[]) { (guint32) seed, (guint32) (seed >> 32) }, 2);
  const double proj_std = 0.02 / sqrt (2.0 * shape->n_layer);
  for (guint i = 0; i < self->info->len; i++)
    {
      const GbParamInfo *pi = &g_array_index (self->info, GbParamInfo, i);
      float *data = self->params + pi->offset;
      if (pi->n_dims == 2)
        {
          double std = 0.02;
          if (g_str_equal (pi->name, "wpe.weight"))
            std = 0.01;
          else if (g_str_has_suffix (pi->name, "c_proj.weight"))
            std = proj_std;
          gb_fill_normal (rng, data, pi->n, std);
        }
      else
        {
          float v = g_str_has_suffix (pi->name, "ln_1.weight") || g_str_has_suffix (pi->name, "ln_2.weight") ||
                        g_str_equal (pi->name, "ln_f.weight")
                      ? 1.f
                      : 0.f;
          for (gsize j = 0; j < pi->n; j++)
            data[j] = v;
        }
    }
  return self;
}

GbNet *
gb_net_new_from_model (GbModel  *model,
                       gboolean  copy,
                       GError  **error)
{
  const GbConfig *c = model->config;

  if (c->n_labels > 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED,
                   "%s: gradients through a classification head are not supported", model->path);
      return NULL;
    }
  if (!c->tie_word_embeddings && model->lm_head != model->wte)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED,
                   "%s: gradients need lm_head tied to wte", model->path);
      return NULL;
    }

  GbModelShape shape = { c->n_layer, c->n_head, c->n_embd, c->n_positions, c->n_vocab };
  GbNet *self = net_new (&shape, c->n_inner);
  self->eps = (float) c->layer_norm_epsilon;
  self->activation = model->activation;

  if (!copy)
    {
      self->model = gb_model_ref (model);
      self->p.wte = (float *) model->wte;
      self->p.wpe = (float *) model->wpe;
      self->p.lnf_w = (float *) model->lnf_w;
      self->p.lnf_b = (float *) model->lnf_b;
      self->p.blocks = g_new0 (NetBlock, shape.n_layer);
      for (guint l = 0; l < shape.n_layer; l++)
        {
          const GbBlockWeights *w = &model->blocks[l];
          NetBlock *b = &self->p.blocks[l];
          b->ln1_w = (float *) w->ln1_w, b->ln1_b = (float *) w->ln1_b;
          b->qkv_w = (float *) w->qkv_w, b->qkv_b = (float *) w->qkv_b;
          b->proj_w = (float *) w->proj_w, b->proj_b = (float *) w->proj_b;
          b->ln2_w = (float *) w->ln2_w, b->ln2_b = (float *) w->ln2_b;
          b->fc_w = (float *) w->fc_w, b->fc_b = (float *) w->fc_b;
          b->out_w = (float *) w->out_w, b->out_b = (float *) w->out_b;
        }
      return self;
    }

  self->params = g_new (float, self->n_params);
  self->owns_params = TRUE;
  bind_tensors (&self->p, self->info, self->params, shape.n_layer);
  const gsize D = shape.n_embd, F = c->n_inner;
#define CP(dst, src, n) memcpy ((dst), (src), (n) * sizeof (float))
  CP (self->p.wte, model->wte, (gsize) shape.n_vocab * D);
  CP (self->p.wpe, model->wpe, (gsize) shape.n_positions * D);
  for (guint l = 0; l < shape.n_layer; l++)
    {
      const GbBlockWeights *w = &model->blocks[l];
      NetBlock *b = &self->p.blocks[l];
      CP (b->ln1_w, w->ln1_w, D), CP (b->ln1_b, w->ln1_b, D);
      CP (b->qkv_w, w->qkv_w, D * 3 * D), CP (b->qkv_b, w->qkv_b, 3 * D);
      CP (b->proj_w, w->proj_w, D * D), CP (b->proj_b, w->proj_b, D);
      CP (b->ln2_w, w->ln2_w, D), CP (b->ln2_b, w->ln2_b, D);
      CP (b->fc_w, w->fc_w, D * F), CP (b->fc_b, w->fc_b, F);
      CP (b->out_w, w->out_w, F * D), CP (b->out_b, w->out_b, D);
    }
  CP (self->p.lnf_w, model->lnf_w, D);
  CP (self->p.lnf_b, model->lnf_b, D);
#undef CP
  return self;
}

GbNet *
gb_net_new_replica (GbNet *src)
{
  g_return_val_if_fail (src != NULL && src->params != NULL, NULL);
  GbNet *self = net_new (&src->shape, src->n_inner);
  self->eps = src->eps;
  self->activation = src->activation;
  self->params = src->params;
  self->owns_params = FALSE;
  bind_tensors (&self->p, self->info, self->params, self->shape.n_layer);
  return self;
}

static void
free_tape (GbNet *self)
{
  if (self->tape != NULL)
    for (guint l = 0; l < self->shape.n_layer; l++)
      {
        LayerTape *t = &self->tape[l];
        float *bufs[] = { t->x_in, t->ln1_mean, t->ln1_rstd, t->h1, t->qkv, t->probs, t->z,
                          t->x_mid, t->ln2_mean, t->ln2_rstd, t->h2, t->f_pre, t->f_act };
        for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
          g_free (bufs[i]);
      }
  g_clear_pointer (&self->tape, g_free);
  float **bufs[] = { &self->x_final, &self->lnf_mean, &self->lnf_rstd, &self->hf, &self->logits,
                     &self->dx, &self->dh, &self->dqkv, &self->dz, &self->df, &self->dp };
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
    g_clear_pointer (bufs[i], g_free);
  self->cap_n = self->cap_t = 0;
  self->cap_bt = 0;
}

void
gb_net_free (GbNet *self)
{
  if (self == NULL)
    return;
  free_tape (self);
  g_free (self->p.blocks);
  g_free (self->g.blocks);
  if (self->owns_params)
    g_free (self->params);
  g_free (self->grads);
  g_array_unref (self->info);
  g_clear_pointer (&self->model, gb_model_unref);
  g_free (self);
}

const GbModelShape *
gb_net_get_shape (GbNet *self)
{
  return &self->shape;
}

gsize
gb_net_get_n_params (GbNet *self)
{
  return self->n_params;
}

float *
gb_net_get_params (GbNet *self)
{
  return self->params;
}

float *
gb_net_get_grads (GbNet *self)
{
  if (self->params == NULL)
    return NULL;
  if (self->grads == NULL)
    {
      self->grads = g_new0 (float, self->n_params);
      bind_tensors (&self->g, self->info, self->grads, self->shape.n_layer);
    }
  return self->grads;
}

void
gb_net_zero_grads (GbNet *self)
{
  if (gb_net_get_grads (self) != NULL)
    memset (self->grads, 0, self->n_params * sizeof (float));
}

const GbParamInfo *
gb_net_get_param_info (GbNet *self,
                       guint *n_info)
{
  *n_info = self->info->len;
  return (const GbParamInfo *) self->info->data;
}

const float *
gb_net_get_dlogits (GbNet *self)
{
  return self->logits;
}

gboolean
gb_net_save (GbNet      *self,
             const char *dir,
             GbDtype     dtype,
             GError    **error)
{
  g_return_val_if_fail (self->params != NULL, FALSE);
  const GbModelShape *s = &self->shape;

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "%s: %s", dir, g_strerror (e));
      return FALSE;
    }
  g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (GbTensorOut));
  for (guint i = 0; i < self->info->len; i++)
    {
      const GbParamInfo *pi = &g_array_index (self->info, GbParamInfo, i);
      GbTensorOut t = { pi->name, pi->n_dims, { pi->shape[0], pi->shape[1] }, self->params + pi->offset };
      g_array_append_val (out, t);
    }
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, "format", "pt");
  g_autofree char *weights = g_build_filename (dir, "model.safetensors", NULL);
  if (!gb_safetensors_write (weights, (GbTensorOut *) out->data, out->len, dtype, meta, error))
    return FALSE;

  const char *dtype_name = dtype == GB_DTYPE_F16 ? "float16" : dtype == GB_DTYPE_BF16 ? "bfloat16" : "float32";
  char eps[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_dtostr (eps, sizeof eps, self->eps);
  g_autofree char *json = g_strdup_printf (
    "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
    "  \"activation_function\": \"%s\",\n  \"n_layer\": %u,\n  \"n_head\": %u,\n  \"n_embd\": %u,\n"
    "  \"n_inner\": %u,\n  \"n_positions\": %u,\n  \"n_ctx\": %u,\n  \"vocab_size\": %u,\n"
    "  \"layer_norm_epsilon\": %s,\n  \"bos_token_id\": %u,\n  \"eos_token_id\": %u,\n"
    "  \"tie_word_embeddings\": true,\n  \"torch_dtype\": \"%s\"\n}\n",
    self->activation == GB_ACT_GELU ? "gelu" : "gelu_new", s->n_layer, s->n_head, s->n_embd, self->n_inner,
    s->n_positions, s->n_positions, s->n_vocab, eps, s->n_vocab - 1, s->n_vocab - 1, dtype_name);
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  return gb_file_write_atomic (config, json, strlen (json), TRUE, error);
}

/* ---- Kernels ---------------------------------------------------------- */

static void
ln_forward (float       *y,
            float       *mean_out,
            float       *rstd_out,
            const float *x,
            const float *w,
            const float *b,
            guint        N,
            guint        D,
            float        eps)
{
  /* The arithmetic of gb_layernorm(), so forward values match the engine. */
  for (guint t = 0; t < N; t++)
    {
      const float *xr = x + (gsize) t * D;
      float *yr = y + (gsize) t * D;
      float mean = 0.f, var = 0.f;
      for (guint i = 0; i < D; i++)
        mean += xr[i];
      mean /= D;
      for (guint i = 0; i < D; i++)
        var += (xr[i] - mean) * (xr[i] - mean);
      var /= D;
      float rstd = 1.f / sqrtf (var + eps);
      for (guint i = 0; i < D; i++)
        yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
      mean_out[t] = mean;
      rstd_out[t] = rstd;
    }
}

/* dx (+)= LayerNorm'(dy); dw, db accumulate (may be NULL). */
static void
ln_backward (float       *dx,
             gboolean     accumulate,
             float       *dw,
             float       *db,
             const float *dy,
             const float *x,
             const float *mean,
             const float *rstd,
             const float *w,
             guint        N,
             guint        D)
{
  for (guint t = 0; t < N; t++)
    {
      const float *dyr = dy + (gsize) t * D, *xr = x + (gsize) t * D;
      float *dxr = dx + (gsize) t * D;
      const float mu = mean[t], rs = rstd[t];
      float sum_g = 0.f, sum_gx = 0.f;
      for (guint i = 0; i < D; i++)
        {
          float xhat = (xr[i] - mu) * rs;
          float g = dyr[i] * w[i];
          sum_g += g;
          sum_gx += g * xhat;
          if (dw != NULL)
            {
              dw[i] += dyr[i] * xhat;
              db[i] += dyr[i];
            }
        }
      sum_g /= D;
      sum_gx /= D;
      for (guint i = 0; i < D; i++)
        {
          float xhat = (xr[i] - mu) * rs;
          float v = rs * (dyr[i] * w[i] - sum_g - xhat * sum_gx);
          dxr[i] = accumulate ? dxr[i] + v : v;
        }
    }
}

/* y[N,M] = x[N,K] @ w[K,M] + b */
static void
linear (float       *y,
        const float *x,
        const float *w,
        const float *b,
        guint        N,
        guint        K,
        guint        M)
{
  for (guint t = 0; t < N; t++)
    memcpy (y + (gsize) t * M, b, M * sizeof (float));
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, N, M, K, 1.f, x, K, w, M, 1.f, y, M);
}

/* dx[N,K] = dy @ w^T (or += with @accumulate); dw[K,M] += x^T @ dy;
 * db[M] += sum dy. dw NULL: only dx. */
static void
linear_backward (float       *dx,
                 gboolean     accumulate,
                 float       *dw,
                 float       *db,
                 const float *dy,
                 const float *x,
                 const float *w,
                 guint        N,
                 guint        K,
                 guint        M)
{
  if (dx != NULL)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, N, K, M, 1.f, dy, M, w, M, accumulate ? 1.f : 0.f, dx, K);
  if (dw != NULL)
    {
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, K, M, N, 1.f, x, K, dy, M, 1.f, dw, M);
      for (guint t = 0; t < N; t++)
        {
          const float *r = dy + (gsize) t * M;
          for (guint j = 0; j < M; j++)
            db[j] += r[j];
        }
    }
}

static void
act_forward (GbActivation act,
             float       *y,
             const float *x,
             gsize        n)
{
  memcpy (y, x, n * sizeof (float));
  if (act == GB_ACT_GELU)
    gb_gelu_erf (y, n);
  else
    gb_gelu_new (y, n);
}

/* d[i] *= act'(x[i]) */
static void
act_backward (GbActivation act,
              float       *d,
              const float *x,
              gsize        n)
{
  if (act == GB_ACT_GELU)
    {
      for (gsize i = 0; i < n; i++)
        {
          float v = x[i];
          float cdf = 0.5f * (1.f + erff (v * (float) M_SQRT1_2));
          float pdf = 0.3989422804014327f * expf (-0.5f * v * v);
          d[i] *= cdf + v * pdf;
        }
      return;
    }
  /* gelu_new(x) = x * sigmoid(s), s = sqrt(8/pi) (x + 0.044715 x^3) */
  for (gsize i = 0; i < n; i++)
    {
      float v = x[i];
      float s = 1.5957691216057308f * (v + 0.044715f * v * v * v);
      float sig = 1.f / (1.f + gb_expf_inline (-s));
      float ds = 1.5957691216057308f * (1.f + 3.f * 0.044715f * v * v);
      d[i] *= sig + v * sig * (1.f - sig) * ds;
    }
}

/* ---- Forward and backward -------------------------------------------- */

static void
ensure_tape (GbNet *self,
             guint  B,
             guint  T)
{
  guint N = B * T;
  const gsize D = self->shape.n_embd, F = self->n_inner, H = self->shape.n_head;
  const gsize V = self->shape.n_vocab;

  /* Every buffer is sized by its own extent: N rows, B T^2 attention, T^2
   * scratch (a later call may have fewer rows but longer sequences). */
  const gsize need_bt = (gsize) B * T * T;
  if (N <= self->cap_n && T <= self->cap_t && need_bt <= self->cap_bt)
    return;
  const guint new_n = MAX (N, self->cap_n), new_t = MAX (T, self->cap_t);
  const gsize new_bt = MAX (need_bt, self->cap_bt);
  free_tape (self);
  self->cap_n = N = new_n;
  self->cap_t = new_t;
  self->cap_bt = new_bt;
  self->tape = g_new0 (LayerTape, self->shape.n_layer);
  for (guint l = 0; l < self->shape.n_layer; l++)
    {
      LayerTape *t = &self->tape[l];
      t->x_in = g_new (float, N * D);
      t->ln1_mean = g_new (float, N);
      t->ln1_rstd = g_new (float, N);
      t->h1 = g_new (float, N * D);
      t->qkv = g_new (float, N * 3 * D);
      t->probs = g_new (float, self->cap_bt * H);
      t->z = g_new (float, N * D);
      t->x_mid = g_new (float, N * D);
      t->ln2_mean = g_new (float, N);
      t->ln2_rstd = g_new (float, N);
      t->h2 = g_new (float, N * D);
      t->f_pre = g_new (float, N * F);
      t->f_act = g_new (float, N * F);
    }
  self->x_final = g_new (float, N * D);
  self->lnf_mean = g_new (float, N);
  self->lnf_rstd = g_new (float, N);
  self->hf = g_new (float, N * D);
  self->logits = g_new (float, N * V);
  self->dx = g_new (float, N * D);
  self->dh = g_new (float, N * D);
  self->dqkv = g_new (float, N * 3 * D);
  self->dz = g_new (float, N * D);
  self->df = g_new (float, N * F);
  self->dp = g_new (float, (gsize) self->cap_t * self->cap_t);
}

double
gb_net_activation_bytes (const GbModelShape *s,
                         guint               B,
                         guint               T)
{
  const double N = (double) B * T, D = s->n_embd, F = 4.0 * s->n_embd, H = s->n_head;
  const double per_layer = N * (8 * D + 2 * F + 4) + (double) B * H * T * T;
  return 4.0 * (s->n_layer * per_layer + N * (3 * D + F + 2 + s->n_vocab) + N * 4 * D + (double) T * T);
}

static gboolean
check_input (GbNet        *self,
             const gint32 *tokens,
             guint         B,
             guint         T,
             GError      **error)
{
  if (B == 0 || T == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "empty batch");
      return FALSE;
    }
  if (T > self->shape.n_positions)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%u tokens exceed the model's context of %u", T,
                   self->shape.n_positions);
      return FALSE;
    }
  if (tokens != NULL)
    for (gsize i = 0; i < (gsize) B * T; i++)
      if (tokens[i] < 0 || (guint) tokens[i] >= self->shape.n_vocab)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "token id %d at %" G_GSIZE_FORMAT " is outside the vocabulary (%u)",
                       tokens[i], i, self->shape.n_vocab);
          return FALSE;
        }
  return TRUE;
}

static void
forward (GbNet        *self,
         const gint32 *tokens,
         const float  *input_embed,
         guint         B,
         guint         T)
{
  const guint N = B * T, H = self->shape.n_head;
  const guint D = self->shape.n_embd, F = self->n_inner, V = self->shape.n_vocab;
  const guint hd = D / H;
  const float scale = 1.f / sqrtf ((float) hd);

  ensure_tape (self, B, T);
  self->B = B;
  self->T = T;

  /* Embeddings into layer 0's x_in. */
  float *x = self->tape[0].x_in;
  if (input_embed != NULL)
    memcpy (x, input_embed, (gsize) N * D * sizeof (float));
  else
    for (guint i = 0; i < N; i++)
      {
        const float *te = self->p.wte + (gsize) tokens[i] * D, *pe = self->p.wpe + (gsize) (i % T) * D;
        float *xr = x + (gsize) i * D;
        for (guint j = 0; j < D; j++)
          xr[j] = te[j] + pe[j];
      }

  for (guint l = 0; l < self->shape.n_layer; l++)
    {
      LayerTape *t = &self->tape[l];
      const NetBlock *w = &self->p.blocks[l];

      ln_forward (t->h1, t->ln1_mean, t->ln1_rstd, t->x_in, w->ln1_w, w->ln1_b, N, D, self->eps);
      linear (t->qkv, t->h1, w->qkv_w, w->qkv_b, N, D, 3 * D);
      for (guint b = 0; b < B; b++)
        for (guint h = 0; h < H; h++)
          {
            const float *q = t->qkv + (gsize) b * T * 3 * D + h * hd;
            float *p = t->probs + ((gsize) b * H + h) * T * T;
            cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, q, 3 * D, q + D, 3 * D, 0.f, p, T);
            for (guint i = 0; i < T; i++)
              {
                float *row = p + (gsize) i * T;
                gb_softmax (row, i + 1);
                memset (row + i + 1, 0, (T - i - 1) * sizeof (float));
              }
            cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.f, p, T, q + 2 * D, 3 * D, 0.f,
                         t->z + (gsize) b * T * D + h * hd, D);
          }
      /* x_mid = x_in + z @ proj + b */
      linear (t->x_mid, t->z, w->proj_w, w->proj_b, N, D, D);
      for (gsize i = 0; i < (gsize) N * D; i++)
        t->x_mid[i] += t->x_in[i];
      ln_forward (t->h2, t->ln2_mean, t->ln2_rstd, t->x_mid, w->ln2_w, w->ln2_b, N, D, self->eps);
      linear (t->f_pre, t->h2, w->fc_w, w->fc_b, N, D, F);
      act_forward (self->activation, t->f_act, t->f_pre, (gsize) N * F);
      float *x_out = l + 1 < self->shape.n_layer ? self->tape[l + 1].x_in : self->x_final;
      linear (x_out, t->f_act, w->out_w, w->out_b, N, F, D);
      for (gsize i = 0; i < (gsize) N * D; i++)
        x_out[i] += t->x_mid[i];
    }
  if (self->shape.n_layer == 0)
    memcpy (self->x_final, x, (gsize) N * D * sizeof (float));

  ln_forward (self->hf, self->lnf_mean, self->lnf_rstd, self->x_final, self->p.lnf_w, self->p.lnf_b, N, D, self->eps);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, N, V, D, 1.f, self->hf, D, self->p.wte, D, 0.f, self->logits, V);
}

/* Backward from d_logits (in self->logits, [N, V]). With @param_grads,
 * accumulates into self->g. Writes the gradient at each block's input to
 * @d_resid_pre [L, N, D] and at the embeddings to @d_embed [N, D] when
 * non-NULL. */
static void
backward (GbNet        *self,
          const gint32 *tokens,
          gboolean      param_grads,
          float        *d_embed,
          float        *d_resid_pre)
{
  const guint B = self->B, T = self->T, N = B * T, H = self->shape.n_head;
  const guint D = self->shape.n_embd, F = self->n_inner, V = self->shape.n_vocab;
  const guint hd = D / H;
  const float scale = 1.f / sqrtf ((float) hd);
  NetTensors *g = param_grads ? &self->g : NULL;
  float *dx = self->dx, *dh = self->dh;

  /* Unembedding (tied): logits = hf @ wte^T. */
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, V, 1.f, self->logits, V, self->p.wte, D, 0.f, dh, D);
  if (g != NULL)
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, V, D, N, 1.f, self->logits, V, self->hf, D, 1.f, g->wte, D);
  ln_backward (dx, FALSE, g ? g->lnf_w : NULL, g ? g->lnf_b : NULL, dh, self->x_final, self->lnf_mean, self->lnf_rstd,
               self->p.lnf_w, N, D);

  for (guint l = self->shape.n_layer; l-- > 0;)
    {
      LayerTape *t = &self->tape[l];
      const NetBlock *w = &self->p.blocks[l];
      NetBlock *gw = g ? &g->blocks[l] : NULL;

      /* MLP: x_out = x_mid + act(h2 @ fc + b) @ out + b */
      linear_backward (self->df, FALSE, gw ? gw->out_w : NULL, gw ? gw->out_b : NULL, dx, t->f_act, w->out_w, N, F, D);
      act_backward (self->activation, self->df, t->f_pre, (gsize) N * F);
      linear_backward (dh, FALSE, gw ? gw->fc_w : NULL, gw ? gw->fc_b : NULL, self->df, t->h2, w->fc_w, N, D, F);
      ln_backward (dx, TRUE, gw ? gw->ln2_w : NULL, gw ? gw->ln2_b : NULL, dh, t->x_mid, t->ln2_mean, t->ln2_rstd,
                   w->ln2_w, N, D);

      /* Attention: x_mid = x_in + z @ proj + b */
      linear_backward (self->dz, FALSE, gw ? gw->proj_w : NULL, gw ? gw->proj_b : NULL, dx, t->z, w->proj_w, N, D, D);
      for (guint b = 0; b < B; b++)
        for (guint h = 0; h < H; h++)
          {
            const gsize row0 = (gsize) b * T;
            const float *q = t->qkv + row0 * 3 * D + h * hd, *k = q + D, *v = q + 2 * D;
            float *dq = self->dqkv + row0 * 3 * D + h * hd, *dk = dq + D, *dv = dq + 2 * D;
            const float *dzh = self->dz + row0 * D + h * hd;
            const float *p = t->probs + ((gsize) b * H + h) * T * T;
            float *dp = self->dp;

            /* z = P V: dP = dz V^T, dV = P^T dz */
            cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.f, dzh, D, v, 3 * D, 0.f, dp, T);
            cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.f, p, T, dzh, D, 0.f, dv, 3 * D);
            /* softmax: dS = P (dP - rowsum(P dP)); masked entries have P = 0 */
            for (guint i = 0; i < T; i++)
              {
                const float *pr = p + (gsize) i * T;
                float *dr = dp + (gsize) i * T;
                float dot = 0.f;
                for (guint j = 0; j <= i; j++)
                  dot += pr[j] * dr[j];
                for (guint j = 0; j <= i; j++)
                  dr[j] = pr[j] * (dr[j] - dot);
                for (guint j = i + 1; j < T; j++)
                  dr[j] = 0.f;
              }
            /* S = scale Q K^T: dQ = scale dS K, dK = scale dS^T Q */
            cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dp, T, k, 3 * D, 0.f, dq, 3 * D);
            cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dp, T, q, 3 * D, 0.f, dk, 3 * D);
          }
      linear_backward (dh, FALSE, gw ? gw->qkv_w : NULL, gw ? gw->qkv_b : NULL, self->dqkv, t->h1, w->qkv_w, N, D,
                       3 * D);
      ln_backward (dx, TRUE, gw ? gw->ln1_w : NULL, gw ? gw->ln1_b : NULL, dh, t->x_in, t->ln1_mean, t->ln1_rstd,
                   w->ln1_w, N, D);
      if (d_resid_pre != NULL)
        memcpy (d_resid_pre + (gsize) l * N * D, dx, (gsize) N * D * sizeof (float));
    }

  if (d_embed != NULL)
    memcpy (d_embed, dx, (gsize) N * D * sizeof (float));
  if (g != NULL)
    for (guint i = 0; i < N; i++)
      {
        const float *dr = dx + (gsize) i * D;
        float *te = g->wte + (gsize) tokens[i] * D, *pe = g->wpe + (gsize) (i % T) * D;
        for (guint j = 0; j < D; j++)
          {
            te[j] += dr[j];
            pe[j] += dr[j];
          }
      }
}

gboolean
gb_net_loss_partial (GbNet        *self,
                     const gint32 *tokens,
                     const gint32 *targets,
                     const float  *weights,
                     guint         B,
                     guint         T,
                     double        total_w,
                     gboolean      backward_pass,
                     double       *nll_sum,
                     GError      **error)
{
  g_return_val_if_fail (self != NULL && tokens != NULL && targets != NULL, FALSE);

  if (!check_input (self, tokens, B, T, error))
    return FALSE;
  if (backward_pass && self->params == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "a read-only model has no parameter gradients");
      return FALSE;
    }
  const guint N = B * T, V = self->shape.n_vocab;
  for (guint i = 0; i < N; i++)
    if (targets[i] >= (gint32) V || targets[i] < -1)
      {
        g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "target id %d at %u is outside the vocabulary (%u)", targets[i], i, V);
        return FALSE;
      }

  forward (self, tokens, NULL, B, T);

  /* Softmax cross-entropy (sums in double); the logits become dlogits. */
  double total = 0.0;
  for (guint i = 0; i < N; i++)
    {
      float *row = self->logits + (gsize) i * V;
      gb_softmax (row, V);
      if (targets[i] < 0 || total_w <= 0.0)
        {
          memset (row, 0, V * sizeof (float));
          continue;
        }
      float wi = weights ? weights[i] : 1.f;
      /* NaN stays NaN (the trainer stops on it); an underflowed
       * probability costs log(1e-30). */
      float pt = row[targets[i]];
      total += wi * (pt > 1e-30f ? -log (pt) : isnan (pt) ? NAN : 69.0776);
      float c = (float) (wi / total_w);
      for (guint j = 0; j < V; j++)
        row[j] *= c;
      row[targets[i]] -= c;
    }
  if (backward_pass && total_w > 0.0)
    {
      gb_net_get_grads (self);
      backward (self, tokens, TRUE, NULL, NULL);
    }
  *nll_sum = total;
  return TRUE;
}

double
gb_net_loss (GbNet        *self,
             const gint32 *tokens,
             const gint32 *targets,
             const float  *weights,
             guint         B,
             guint         T,
             gboolean      backward_pass,
             GError      **error)
{
  g_return_val_if_fail (self != NULL && tokens != NULL && targets != NULL, NAN);

  double total_w = 0.0, sum = 0.0;
  for (gsize i = 0; i < (gsize) B * T; i++)
    if (targets[i] >= 0)
      total_w += weights ? weights[i] : 1.f;
  if (!gb_net_loss_partial (self, tokens, targets, weights, B, T, total_w, backward_pass, &sum, error))
    return NAN;
  return total_w > 0.0 ? sum / total_w : 0.0;
}

gboolean
gb_net_grad_logit_diff (GbNet        *self,
                        const gint32 *tokens,
                        const float  *input_embed,
                        guint         T,
                        guint         pos,
                        gint32        tok_a,
                        gint32        tok_b,
                        float        *d_embed,
                        float        *d_resid_pre,
                        float        *value,
                        GError      **error)
{
  g_return_val_if_fail (self != NULL && (tokens != NULL || input_embed != NULL), FALSE);

  const guint V = self->shape.n_vocab;
  if (!check_input (self, input_embed != NULL ? NULL : tokens, 1, T, error))
    return FALSE;
  if (pos >= T || tok_a < 0 || (guint) tok_a >= V || tok_b >= (gint32) V)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "position %u or token ids %d, %d out of range", pos, tok_a, tok_b);
      return FALSE;
    }
  forward (self, tokens, input_embed, 1, T);
  float *row = self->logits + (gsize) pos * V;
  if (value != NULL)
    *value = row[tok_a] - (tok_b >= 0 ? row[tok_b] : 0.f);
  memset (self->logits, 0, (gsize) T * V * sizeof (float));
  row[tok_a] = 1.f;
  if (tok_b >= 0)
    row[tok_b] -= 1.f;
  backward (self, tokens, FALSE, d_embed, d_resid_pre);
  return TRUE;
}
