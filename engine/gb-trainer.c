/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-kernels.h"
#include "gb-npy.h"
#include "gb-trainer.h"

/* trainer_state.json is a few hundred bytes. */
#define MAX_STATE_BYTES (1u << 20)

struct _GbTrainer
{
  GbNet         *net;
  GbTrainOptions opt;
  guint64        step;
  float         *m, *v;    /* AdamW moments */
  gint32        *tokens, *targets;
  float         *weights;
  guint          n_workers;
  GbNet        **replicas; /* n_workers - 1 nets sharing the parameters */
  char          *data_hash;   /* of the training stream of the current run */
  char          *resume_hash; /* the checkpoint's, checked by the next run */
};

/* FNV-1a over the stream's tokens and weights: a resumed run must see the
 * data the interrupted one saw. */
static char *
stream_hash (const GbTokenStream *s)
{
  guint64 h = 0xcbf29ce484222325ull;
  const guint8 *p = (const guint8 *) s->tokens;
  for (gsize i = 0; i < s->n * sizeof (gint32); i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  if (s->weights != NULL)
    {
      p = (const guint8 *) s->weights;
      for (gsize i = 0; i < s->n * sizeof (float); i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
  return g_strdup_printf ("%016" G_GINT64_MODIFIER "x-%" G_GSIZE_FORMAT, h, s->n);
}

/* Everything that shapes the run's arithmetic, as one string. */
static char *
options_fingerprint (const GbTrainer *self)
{
  const GbTrainOptions *o = &self->opt;
  const GbModelShape *s = gb_net_get_shape (self->net);
  return g_strdup_printf ("shape %u/%u/%u/%u/%u batch %u seq %u steps %" G_GUINT64_FORMAT " lr %.9g min_lr %.9g warmup %u "
                          "wd %.9g decay_emb %d betas %.9g %.9g eps %.9g clip %.9g seed %" G_GUINT64_FORMAT " workers %u",
                          s->n_layer, s->n_head, s->n_embd, s->n_positions, s->n_vocab, o->batch_size, o->seq_len,
                          o->max_steps, o->lr, o->min_lr, o->warmup_steps, o->weight_decay, o->decay_embeddings,
                          o->beta1, o->beta2, o->adam_eps, o->grad_clip, o->seed, self->n_workers);
}

/* Trains with one OpenBLAS thread per worker, each worker running forward
 * and backward over its share of the batch: on two cores this keeps both
 * busy through the element-wise loops too, where threaded BLAS leaves its
 * threads spinning. */
typedef struct
{
  GbNet        *net;
  const gint32 *tokens, *targets;
  const float  *weights;
  guint         B, T;
  double        total_w;
  gboolean      backward;
  double        nll;
  gboolean      ok;
  GError       *error;
} Shard;

static gpointer
run_shard (gpointer data)
{
  Shard *sh = data;
  if (sh->backward)
    gb_net_zero_grads (sh->net);
  sh->ok = gb_net_loss_partial (sh->net, sh->tokens, sh->targets, sh->weights, sh->B, sh->T, sh->total_w, sh->backward,
                                &sh->nll, &sh->error);
  return NULL;
}

/* The weighted mean loss of the batch in self->tokens...; with @backward
 * the gradients summed into the main net. *@total_w receives the batch's
 * weight (0: nothing to learn from, the gradient is zero). */
static gboolean
batch_loss (GbTrainer *self,
            gboolean   backward,
            double    *loss,
            double    *total_w_out,
            GError   **error)
{
  const guint B = self->opt.batch_size, T = self->opt.seq_len;
  const guint n = MIN (self->n_workers, B);
  double total_w = 0.0;
  for (gsize i = 0; i < (gsize) B * T; i++)
    total_w += self->weights[i];
  *total_w_out = total_w;
  *loss = 0.0;
  if (total_w <= 0.0)
    {
      if (backward)
        gb_net_zero_grads (self->net);
      return TRUE;
    }

  Shard shards[16];
  GThread *threads[16] = { NULL };
  /* One BLAS thread per worker; the count is restored before returning.
   * (Process-wide: a trainer should not share the process with other
   * BLAS users while it runs.) */
  int blas_threads = gb_blas_get_threads ();
  if (n > 1)
    gb_blas_set_threads (1);
  for (guint k = 0, b0 = 0; k < n; k++)
    {
      guint nb = B / n + (k < B % n ? 1 : 0);
      gsize off = (gsize) b0 * T;
      shards[k] = (Shard) { k == 0 ? self->net : self->replicas[k - 1], self->tokens + off, self->targets + off,
                            self->weights + off, nb, T, total_w, backward, 0.0, FALSE, NULL };
      b0 += nb;
      if (k > 0)
        threads[k] = g_thread_new ("gb-train", run_shard, &shards[k]);
    }
  run_shard (&shards[0]);
  double nll = 0.0;
  gboolean ok = TRUE;
  for (guint k = 0; k < n; k++)
    {
      if (threads[k] != NULL)
        g_thread_join (threads[k]);
      nll += shards[k].nll;
      if (!shards[k].ok && ok)
        {
          g_propagate_error (error, shards[k].error);
          shards[k].error = NULL;
          ok = FALSE;
        }
      g_clear_error (&shards[k].error);
    }
  if (n > 1)
    gb_blas_set_threads (blas_threads);
  if (!ok)
    return FALSE;
  *loss = nll / total_w;
  if (!isfinite (*loss))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA,
                   "the loss is not finite (%g) at step %" G_GUINT64_FORMAT "; the learning rate may be too high", *loss,
                   self->step);
      return FALSE;
    }
  if (backward)
    {
      float *g = gb_net_get_grads (self->net);
      const gsize np = gb_net_get_n_params (self->net);
      for (guint k = 1; k < n; k++)
        {
          const float *gk = gb_net_get_grads (self->replicas[k - 1]);
          for (gsize i = 0; i < np; i++)
            g[i] += gk[i];
        }
    }
  return TRUE;
}

void
gb_train_options_init (GbTrainOptions *o)
{
  *o = (GbTrainOptions) {
    .batch_size = 16,
    .seq_len = 128,
    .max_steps = 1000,
    .lr = 1e-3,
    .min_lr = 1e-4,
    .warmup_steps = 100,
    .weight_decay = 0.1,
    .decay_embeddings = FALSE,
    .beta1 = 0.9,
    .beta2 = 0.99,
    .adam_eps = 1e-8,
    .grad_clip = 1.0,
    .seed = 1,
    .checkpoint_every = 500,
    .eval_every = 250,
    .eval_batches = 8,
    .n_threads = 0,
  };
}

GbTrainer *
gb_trainer_new (GbNet                *net,
                const GbTrainOptions *options,
                GError              **error)
{
  g_return_val_if_fail (net != NULL && options != NULL, NULL);

  if (gb_net_get_params (net) == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "the model to train must own its parameters");
      gb_net_free (net);
      return NULL;
    }
  const GbModelShape *s = gb_net_get_shape (net);
  if (options->batch_size == 0 || options->seq_len < 2 || options->seq_len > s->n_positions)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "sequence length %u must be between 2 and the context (%u), batch size at least 1",
                   options->seq_len, s->n_positions);
      gb_net_free (net);
      return NULL;
    }
  if (!(options->lr > 0) || !(options->min_lr >= 0) || !(options->beta1 >= 0 && options->beta1 < 1) ||
      !(options->beta2 >= 0 && options->beta2 < 1) || !(options->weight_decay >= 0))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "learning rate, betas or weight decay out of range");
      gb_net_free (net);
      return NULL;
    }
  guint workers = options->n_threads > 0 ? options->n_threads : (guint) g_get_num_processors ();
  workers = CLAMP (workers, 1, 16);
  if (options->eval_every > 0 && options->eval_batches == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "evaluation needs at least one batch");
      gb_net_free (net);
      return NULL;
    }
  /* Activations for the whole batch, across the workers: refuse what this
   * machine cannot hold rather than abort on allocation. */
  double need = workers * gb_net_activation_bytes (s, (options->batch_size + workers - 1) / workers, options->seq_len);
  double have = (double) sysconf (_SC_PHYS_PAGES) * sysconf (_SC_PAGESIZE);
  if (have > 0 && need > have)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT,
                   "a batch of %u x %u tokens needs %.1f GiB of activations, more than this machine's %.1f GiB; lower the batch or sequence length",
                   options->batch_size, options->seq_len, need / (1 << 30), have / (1 << 30));
      gb_net_free (net);
      return NULL;
    }
  GbTrainer *self = g_new0 (GbTrainer, 1);
  self->net = net;
  self->opt = *options;
  gsize n = gb_net_get_n_params (net), bt = (gsize) options->batch_size * options->seq_len;
  self->m = g_new0 (float, n);
  self->v = g_new0 (float, n);
  self->tokens = g_new (gint32, bt);
  self->targets = g_new (gint32, bt);
  self->weights = g_new (float, bt);
  self->n_workers = workers;
  self->replicas = g_new0 (GbNet *, self->n_workers);
  for (guint k = 1; k < self->n_workers; k++)
    self->replicas[k - 1] = gb_net_new_replica (net);
  return self;
}

void
gb_trainer_free (GbTrainer *self)
{
  if (self == NULL)
    return;
  for (guint k = 1; k < self->n_workers; k++)
    gb_net_free (self->replicas[k - 1]);
  g_free (self->replicas);
  g_free (self->data_hash);
  g_free (self->resume_hash);
  gb_net_free (self->net);
  g_free (self->m);
  g_free (self->v);
  g_free (self->tokens);
  g_free (self->targets);
  g_free (self->weights);
  g_free (self);
}

GbNet *
gb_trainer_get_net (GbTrainer *self)
{
  return self->net;
}

void
gb_trainer_set_max_steps (GbTrainer *self,
                          guint64    max_steps)
{
  self->opt.max_steps = max_steps;
}

guint64
gb_trainer_get_step (GbTrainer *self)
{
  return self->step;
}

static double
lr_at (const GbTrainOptions *o,
       guint64               step)
{
  if (step < o->warmup_steps)
    return o->lr * (double) (step + 1) / o->warmup_steps;
  if (o->max_steps <= o->warmup_steps)
    return o->lr;
  double progress = (double) (step - o->warmup_steps) / (double) (o->max_steps - o->warmup_steps);
  progress = MIN (progress, 1.0);
  return o->min_lr + 0.5 * (o->lr - o->min_lr) * (1.0 + cos (G_PI * progress));
}

/* Fills the batch for @step: B windows of T+1 tokens at offsets drawn from
 * a generator seeded by (seed, step, salt). */
static void
fill_batch (GbTrainer           *self,
            const GbTokenStream *stream,
            guint64              step,
            guint32              salt)
{
  const guint B = self->opt.batch_size, T = self->opt.seq_len;
  const guint32 seed[] = { (guint32) self->opt.seed, (guint32) (self->opt.seed >> 32), (guint32) step,
                           (guint32) (step >> 32), salt };
  g_autoptr (GRand) rng = g_rand_new_with_seed_array (seed, G_N_ELEMENTS (seed));
  const gsize span = stream->n - T; /* stream->n > T checked by callers */

  for (guint b = 0; b < B; b++)
    {
      gsize off = (gsize) (g_rand_double (rng) * (double) span);
      off = MIN (off, span - 1);
      for (guint t = 0; t < T; t++)
        {
          gsize i = (gsize) b * T + t;
          self->tokens[i] = stream->tokens[off + t];
          self->targets[i] = stream->tokens[off + t + 1];
          self->weights[i] = stream->weights ? stream->weights[off + t + 1] : 1.f;
        }
    }
}

static gboolean
check_stream (GbTrainer           *self,
              const GbTokenStream *stream,
              const char          *what,
              GError             **error)
{
  if (stream == NULL || stream->n <= (gsize) self->opt.seq_len + 1)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "the %s text has %" G_GSIZE_FORMAT " tokens; it needs more than the sequence length (%u)",
                   what, stream ? stream->n : 0, self->opt.seq_len + 1);
      return FALSE;
    }
  return TRUE;
}

double
gb_trainer_evaluate (GbTrainer           *self,
                     const GbTokenStream *stream,
                     guint                n_batches,
                     GError             **error)
{
  if (!check_stream (self, stream, "held-out", error))
    return NAN;
  if (n_batches == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "no batches to evaluate");
      return NAN;
    }
  double sum = 0, weight = 0;
  for (guint i = 0; i < n_batches; i++)
    {
      /* Fixed batches: the same every evaluation; weighted by their weight. */
      fill_batch (self, stream, i, 0x65766131u);
      double loss, w;
      if (!batch_loss (self, FALSE, &loss, &w, error))
        return NAN;
      sum += loss * w;
      weight += w;
    }
  return weight > 0 ? sum / weight : 0.0;
}

/* One AdamW step (PyTorch's formulation, decoupled decay) after clipping;
 * *norm_out gets the gradient norm before clipping. A non-finite gradient
 * changes nothing and is an error. */
static gboolean
adamw_step (GbTrainer *self,
            double    *norm_out,
            GError   **error)
{
  GbNet *net = self->net;
  float *p = gb_net_get_params (net), *g = gb_net_get_grads (net);
  const gsize n = gb_net_get_n_params (net);
  const GbTrainOptions *o = &self->opt;

  double sq = 0;
  for (gsize i = 0; i < n; i++)
    sq += (double) g[i] * g[i];
  double norm = sqrt (sq);
  *norm_out = norm;
  if (!isfinite (norm))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "the gradient is not finite at step %" G_GUINT64_FORMAT
                   "; the parameters are left as they were", self->step);
      return FALSE;
    }
  float clip = (o->grad_clip > 0 && norm > o->grad_clip) ? (float) (o->grad_clip / norm) : 1.f;

  const double lr = lr_at (o, self->step);
  const guint64 t = self->step + 1;
  const float b1 = (float) o->beta1, b2 = (float) o->beta2;
  const float bc1 = (float) (1.0 - pow (o->beta1, (double) t)), bc2 = (float) (1.0 - pow (o->beta2, (double) t));
  const float step_size = (float) lr / bc1, inv_sqrt_bc2 = 1.f / sqrtf (bc2), eps = (float) o->adam_eps;

  guint n_info;
  const GbParamInfo *info = gb_net_get_param_info (net, &n_info);
  for (guint k = 0; k < n_info; k++)
    {
      gboolean decay = info[k].decay || (o->decay_embeddings && info[k].embedding);
      const float keep = decay ? (float) (1.0 - lr * o->weight_decay) : 1.f;
      float *pk = p + info[k].offset, *gk = g + info[k].offset, *mk = self->m + info[k].offset, *vk = self->v + info[k].offset;
      for (gsize i = 0; i < info[k].n; i++)
        {
          float gi = gk[i] * clip;
          mk[i] = b1 * mk[i] + (1.f - b1) * gi;
          vk[i] = b2 * vk[i] + (1.f - b2) * gi * gi;
          pk[i] = pk[i] * keep - step_size * mk[i] / (sqrtf (vk[i]) * inv_sqrt_bc2 + eps);
        }
    }
  self->step++;
  return TRUE;
}

static gboolean
remove_tree (const char *path,
             GError    **error)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  if (dir != NULL)
    {
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
            {
              if (!remove_tree (child, error))
                return FALSE;
            }
          else if (g_unlink (child) != 0)
            {
              int e = errno;
              g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: cannot remove: %s", child, g_strerror (e));
              return FALSE;
            }
        }
    }
  if (g_rmdir (path) != 0 && errno != ENOENT)
    {
      int e = errno;
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: cannot remove: %s", path, g_strerror (e));
      return FALSE;
    }
  return TRUE;
}

gboolean
gb_copy_vocab_files (const char *src_dir,
                     const char *dst_dir,
                     GError    **error)
{
  static const char *const names[] = { "vocab.json", "merges.txt" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *src = g_build_filename (src_dir, names[i], NULL);
      g_autofree char *dst = g_build_filename (dst_dir, names[i], NULL);
      g_autofree char *data = NULL;
      gsize len;
      GError *local = NULL;
      if (!g_file_get_contents (src, &data, &len, &local))
        {
          g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: %s", src, local->message);
          g_error_free (local);
          return FALSE;
        }
      if (!gb_file_write_atomic (dst, data, len, TRUE, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
gb_trainer_save_checkpoint (GbTrainer  *self,
                            const char *dir,
                            const char *vocab_dir,
                            GError    **error)
{
  /* Written beside, then swapped in: a crash leaves the old checkpoint (or
   * the new one, complete) under one of the two names resume looks at. */
  g_autofree char *clean = g_strdup (dir);
  for (gsize len = strlen (clean); len > 1 && clean[len - 1] == G_DIR_SEPARATOR; len--)
    clean[len - 1] = '\0';
  dir = clean;
  g_autofree char *fresh = g_strconcat (dir, ".new", NULL);
  g_autofree char *old = g_strconcat (dir, ".old", NULL);
  if (!remove_tree (fresh, error))
    return FALSE;
  if (!gb_net_save (self->net, fresh, GB_DTYPE_F32, error))
    return FALSE;
  if (vocab_dir != NULL && !gb_copy_vocab_files (vocab_dir, fresh, error))
    return FALSE;

  guint n_info;
  const GbParamInfo *info = gb_net_get_param_info (self->net, &n_info);
  g_autofree GbTensorOut *out = g_new0 (GbTensorOut, 2 * n_info);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < n_info; i++)
    for (guint k = 0; k < 2; k++)
      {
        char *name = g_strconcat (k == 0 ? "exp_avg." : "exp_avg_sq.", info[i].name, NULL);
        g_ptr_array_add (names, name);
        out[2 * i + k] = (GbTensorOut) { name, info[i].n_dims, { info[i].shape[0], info[i].shape[1] },
                                         (k == 0 ? self->m : self->v) + info[i].offset };
      }
  g_autofree char *opt_path = g_build_filename (fresh, "optimizer.safetensors", NULL);
  if (!gb_safetensors_write (opt_path, out, 2 * n_info, GB_DTYPE_F32, NULL, error))
    return FALSE;
  g_autofree char *fingerprint = options_fingerprint (self);
  g_autofree char *state = g_strdup_printf ("{\"step\": %" G_GUINT64_FORMAT ", \"n_params\": %" G_GSIZE_FORMAT
                                            ", \"options\": \"%s\", \"data\": \"%s\"}\n",
                                            self->step, gb_net_get_n_params (self->net), fingerprint,
                                            self->data_hash ? self->data_hash : "");
  g_autofree char *state_path = g_build_filename (fresh, "trainer_state.json", NULL);
  if (!gb_file_write_atomic (state_path, state, strlen (state), TRUE, error))
    return FALSE;

  if (!remove_tree (old, error))
    return FALSE;
  if (g_file_test (dir, G_FILE_TEST_EXISTS) && g_rename (dir, old) != 0)
    {
      int e = errno;
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: cannot replace the checkpoint: %s", dir, g_strerror (e));
      return FALSE;
    }
  if (g_rename (fresh, dir) != 0)
    {
      int e = errno;
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: cannot move the checkpoint into place: %s", dir, g_strerror (e));
      return FALSE;
    }
  return remove_tree (old, error);
}

/* Copies every tensor of @file named @prefix + param name into @dst. */
static gboolean
read_tensors (GbTrainer  *self,
              const char *path,
              const char *prefix,
              float      *dst,
              GError    **error)
{
  g_autoptr (GError) local = NULL;
  GbSafetensors *file = gb_safetensors_open (path, &local);
  if (file == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  guint n_info;
  const GbParamInfo *info = gb_net_get_param_info (self->net, &n_info);
  gboolean ok = TRUE;
  for (guint i = 0; i < n_info && ok; i++)
    {
      g_autofree char *name = g_strconcat (prefix, info[i].name, NULL);
      const GbTensorView *t = gb_safetensors_lookup (file, name);
      if (t == NULL || t->dtype != GB_DTYPE_F32 || (gsize) t->n_elements != info[i].n)
        {
          g_set_error (error, GB_ERROR, t == NULL ? GB_ERROR_MISSING : GB_ERROR_SHAPE,
                       "%s: tensor %s is %s", path, name, t == NULL ? "missing" : "not F32 of the model's shape");
          ok = FALSE;
          break;
        }
      memcpy (dst + info[i].offset, t->data, info[i].n * sizeof (float));
      const gboolean non_negative = g_str_equal (prefix, "exp_avg_sq.");
      for (gsize j = 0; j < info[i].n; j++)
        if (!isfinite (dst[info[i].offset + j]) || (non_negative && dst[info[i].offset + j] < 0.f))
          {
            g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: tensor %s holds %s", path, name,
                         non_negative ? "NaN, Inf or a negative value" : "NaN or Inf");
            ok = FALSE;
            break;
          }
    }
  gb_safetensors_free (file);
  return ok;
}

gboolean
gb_trainer_resume (GbTrainer  *self,
                   const char *checkpoint_dir,
                   GError    **error)
{
  g_autofree char *state_path = g_build_filename (checkpoint_dir, "trainer_state.json", NULL);
  g_autoptr (JsonNode) root = gb_json_load_file (state_path, MAX_STATE_BYTES, GB_JSON_MAX_DEPTH, error);
  if (root == NULL)
    return FALSE;
  JsonObject *obj = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonNode *step = obj ? json_object_get_member (obj, "step") : NULL;
  JsonNode *np = obj ? json_object_get_member (obj, "n_params") : NULL;
  JsonNode *opts = obj ? json_object_get_member (obj, "options") : NULL;
  JsonNode *data = obj ? json_object_get_member (obj, "data") : NULL;
  if (step == NULL || np == NULL || opts == NULL || data == NULL || json_node_get_value_type (step) != G_TYPE_INT64 ||
      json_node_get_value_type (np) != G_TYPE_INT64 || json_node_get_value_type (opts) != G_TYPE_STRING ||
      json_node_get_value_type (data) != G_TYPE_STRING || json_node_get_int (step) < 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: expected an object with integers step and n_params and strings options and data",
                   state_path);
      return FALSE;
    }
  g_autofree char *fingerprint = options_fingerprint (self);
  if (json_object_get_int_member (obj, "n_params") == (gint64) gb_net_get_n_params (self->net) &&
      !g_str_equal (json_node_get_string (opts), fingerprint))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT,
                   "%s: the checkpoint was trained with other settings (%s; now %s); resume with the same ones", state_path,
                   json_node_get_string (opts), fingerprint);
      return FALSE;
    }
  if ((guint64) json_node_get_int (step) > self->opt.max_steps)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: step %" G_GINT64_FORMAT " is past the run's %" G_GUINT64_FORMAT " steps",
                   state_path, json_node_get_int (step), self->opt.max_steps);
      return FALSE;
    }
  if ((gsize) json_object_get_int_member (obj, "n_params") != gb_net_get_n_params (self->net))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_SHAPE, "%s: the checkpoint has %" G_GINT64_FORMAT " parameters, the model %" G_GSIZE_FORMAT,
                   state_path, json_object_get_int_member (obj, "n_params"), gb_net_get_n_params (self->net));
      return FALSE;
    }
  g_autofree char *model_path = g_build_filename (checkpoint_dir, "model.safetensors", NULL);
  g_autofree char *opt_path = g_build_filename (checkpoint_dir, "optimizer.safetensors", NULL);
  const gsize n = gb_net_get_n_params (self->net);
  g_autofree float *params = g_new (float, n), *m = g_new (float, n), *v = g_new (float, n);
  if (!read_tensors (self, model_path, "", params, error) || !read_tensors (self, opt_path, "exp_avg.", m, error) ||
      !read_tensors (self, opt_path, "exp_avg_sq.", v, error))
    return FALSE;
  memcpy (gb_net_get_params (self->net), params, n * sizeof (float));
  memcpy (self->m, m, n * sizeof (float));
  memcpy (self->v, v, n * sizeof (float));
  self->step = (guint64) json_object_get_int_member (obj, "step");
  g_free (self->resume_hash);
  self->resume_hash = *json_node_get_string (data) ? g_strdup (json_node_get_string (data)) : NULL;
  return TRUE;
}

gboolean
gb_trainer_run (GbTrainer           *self,
                const GbTokenStream *train,
                const GbTokenStream *heldout,
                const char          *checkpoint_dir,
                const char          *vocab_dir,
                GCancellable        *cancellable,
                GbTrainProgressFunc  progress,
                gpointer             progress_data,
                GError             **error)
{
  if (!check_stream (self, train, "training", error) || (heldout != NULL && !check_stream (self, heldout, "held-out", error)))
    return FALSE;

  g_free (self->data_hash);
  self->data_hash = stream_hash (train);
  if (self->resume_hash != NULL && !g_str_equal (self->resume_hash, self->data_hash))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT,
                   "the training data (or its loss weights) differ from those the checkpoint was trained on");
      return FALSE;
    }
  const GbTrainOptions *o = &self->opt;
  const double tokens_per_step = (double) o->batch_size * o->seq_len;
  gint64 t0 = g_get_monotonic_time ();
  guint64 step0 = self->step;
  double eval_loss = NAN;

  while (self->step < o->max_steps)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          if (checkpoint_dir != NULL && !gb_trainer_save_checkpoint (self, checkpoint_dir, vocab_dir, error))
            return FALSE;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "training cancelled at step %" G_GUINT64_FORMAT, self->step);
          return FALSE;
        }
      fill_batch (self, train, self->step, 0x74726e31u);
      double loss, weight, norm = 0.0;
      if (!batch_loss (self, TRUE, &loss, &weight, error))
        return FALSE;
      double lr = lr_at (o, self->step);
      if (weight <= 0.0)
        self->step++; /* nothing weighted in this batch: no update */
      else if (!adamw_step (self, &norm, error))
        return FALSE;

      gboolean checkpointed = FALSE, evaluated = FALSE;
      if (heldout != NULL && o->eval_every > 0 && (self->step % o->eval_every == 0 || self->step == o->max_steps))
        {
          evaluated = TRUE;
          eval_loss = gb_trainer_evaluate (self, heldout, o->eval_batches, error);
          if (isnan (eval_loss))
            return FALSE;
        }
      if (checkpoint_dir != NULL && o->checkpoint_every > 0 && self->step % o->checkpoint_every == 0 &&
          self->step < o->max_steps)
        {
          if (!gb_trainer_save_checkpoint (self, checkpoint_dir, vocab_dir, error))
            return FALSE;
          checkpointed = TRUE;
        }
      if (progress != NULL)
        {
          double elapsed = (g_get_monotonic_time () - t0) / 1e6;
          double rate = (self->step - step0) * tokens_per_step / MAX (elapsed, 1e-9);
          GbTrainProgress p = {
            .step = self->step,
            .max_steps = o->max_steps,
            .loss = loss,
            .lr = lr,
            .grad_norm = norm,
            .tokens_per_s = rate,
            .eta_s = (o->max_steps - self->step) * tokens_per_step / MAX (rate, 1e-9),
            .eval_loss = eval_loss,
            .evaluated = evaluated,
            .checkpointed = checkpointed,
          };
          progress (&p, progress_data);
        }
    }
  if (checkpoint_dir != NULL && !gb_trainer_save_checkpoint (self, checkpoint_dir, vocab_dir, error))
    return FALSE;
  return TRUE;
}
