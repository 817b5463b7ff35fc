/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gb-test-util.h"

/* The trainer: AdamW as PyTorch defines it, the schedule, data-parallel
 * workers that agree with one, bit-exact resume, safe checkpoints. */

static const GbModelShape shape = { 2, 2, 16, 16, 257 };

/* A byte-level token stream with structure (a repeated sentence). */
static gint32 *
make_stream (gsize *n)
{
  const char *text = "the cat sat on the mat. the dog sat on the log. ";
  gsize len = strlen (text);
  *n = 40 * len;
  gint32 *ids = g_new (gint32, *n);
  for (gsize i = 0; i < *n; i++)
    ids[i] = (guchar) text[i % len];
  return ids;
}

static GbTrainOptions
small_options (void)
{
  GbTrainOptions o;
  gb_train_options_init (&o);
  o.batch_size = 4;
  o.seq_len = 16;
  o.max_steps = 10;
  o.warmup_steps = 3;
  o.checkpoint_every = 0;
  o.eval_every = 0;
  o.n_threads = 1;
  return o;
}

static void
test_adamw_steps (void)
{
  /* Three steps against the formula, computed here in double: PyTorch's
   * AdamW (decoupled decay on weight matrices only) after clipping by the
   * global norm. Constant learning rate (min_lr = lr, no warm-up). */
  gsize n;
  g_autofree gint32 *ids = make_stream (&n);
  GbTokenStream stream = { ids, NULL, n };
  GbTrainOptions o = small_options ();
  o.max_steps = 3;
  o.warmup_steps = 0;
  o.lr = o.min_lr = 1e-2;
  o.weight_decay = 0.5;
  o.beta1 = 0.8;
  o.beta2 = 0.95;
  o.grad_clip = 0.05; /* small enough to clip */
  g_autoptr (GError) error = NULL;

  GbNet *net = gb_net_new_random (&shape, 2);
  const gsize np = gb_net_get_n_params (net);
  g_autofree double *p = g_new (double, np), *m = g_new0 (double, np), *v = g_new0 (double, np);
  for (gsize i = 0; i < np; i++)
    p[i] = gb_net_get_params (net)[i];
  g_autoptr (GbTrainer) trainer = gb_trainer_new (net, &o, &error);
  g_assert_no_error (error);
  guint n_info;
  const GbParamInfo *info = gb_net_get_param_info (net, &n_info);

  for (guint t = 1; t <= 3; t++)
    {
      /* One more step; the gradient it used stays in the net. */
      gb_trainer_set_max_steps (trainer, t);
      g_assert_true (gb_trainer_run (trainer, &stream, NULL, NULL, NULL, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
      const float *g = gb_net_get_grads (net), *p1 = gb_net_get_params (net);
      double sq = 0;
      for (gsize i = 0; i < np; i++)
        sq += (double) g[i] * g[i];
      double clip = MIN (1.0, o.grad_clip / sqrt (sq));
      g_assert_cmpfloat (clip, <, 1.0);
      double worst = 0, scale = 0;
      for (guint k = 0; k < n_info; k++)
        for (gsize j = 0; j < info[k].n; j++)
          {
            gsize i = info[k].offset + j;
            double gi = g[i] * clip;
            m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
            v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
            double mhat = m[i] / (1 - pow (o.beta1, t)), vhat = v[i] / (1 - pow (o.beta2, t));
            p[i] *= info[k].decay ? 1 - o.lr * o.weight_decay : 1.0;
            p[i] -= o.lr * mhat / (sqrt (vhat) + o.adam_eps);
            worst = MAX (worst, fabs (p[i] - p1[i]));
            scale = MAX (scale, fabs (p[i]));
          }
      g_assert_cmpfloat (worst, <=, 1e-6 * MAX (scale, 1.0));
      /* Keep the reference on the engine's float parameters, so rounding
       * does not accumulate across steps. */
      for (gsize i = 0; i < np; i++)
        p[i] = p1[i];
    }
}

static void
test_zero_weight_batch (void)
{
  /* A batch whose every position has weight 0 carries no gradient: the
   * parameters stay as they were (no stale gradient is applied). */
  gsize n;
  g_autofree gint32 *ids = make_stream (&n);
  g_autofree float *w = g_new0 (float, n);
  GbTokenStream stream = { ids, w, n };
  GbTrainOptions o = small_options ();
  o.max_steps = 2;
  g_autoptr (GError) error = NULL;
  GbNet *net = gb_net_new_random (&shape, 3);
  g_autofree float *before = g_memdup2 (gb_net_get_params (net), gb_net_get_n_params (net) * sizeof (float));
  g_autoptr (GbTrainer) trainer = gb_trainer_new (net, &o, &error);
  g_assert_true (gb_trainer_run (trainer, &stream, NULL, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (gb_trainer_get_step (trainer), ==, 2);
  g_assert_true (memcmp (before, gb_net_get_params (net), gb_net_get_n_params (net) * sizeof (float)) == 0);
  /* NaN weights are a clear error, and leave the parameters alone. */
  w[5] = NAN;
  for (gsize i = 6; i < n; i++)
    w[i] = 1.f;
  o.max_steps = 40;
  g_autoptr (GbTrainer) nan_trainer = gb_trainer_new (gb_net_new_random (&shape, 3), &o, &error);
  gboolean ok = gb_trainer_run (nan_trainer, &stream, NULL, NULL, NULL, NULL, NULL, NULL, &error);
  /* Batches are random windows: one of the 40 steps covers position 5. */
  g_assert_false (ok);
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
  const float *pp = gb_net_get_params (gb_trainer_get_net (nan_trainer));
  for (gsize i = 0; i < gb_net_get_n_params (gb_trainer_get_net (nan_trainer)); i++)
    g_assert_true (isfinite (pp[i]));
}

static void
record_lr (const GbTrainProgress *p,
           gpointer               data)
{
  g_array_append_val ((GArray *) data, p->lr);
}

static void
test_schedule (void)
{
  gsize n;
  g_autofree gint32 *ids = make_stream (&n);
  GbTokenStream stream = { ids, NULL, n };
  GbTrainOptions o = small_options ();
  o.max_steps = 13;
  o.warmup_steps = 4;
  o.lr = 1e-3;
  o.min_lr = 1e-4;
  g_autoptr (GError) error = NULL;
  g_autoptr (GbTrainer) trainer = gb_trainer_new (gb_net_new_random (&shape, 1), &o, &error);
  g_autoptr (GArray) lrs = g_array_new (FALSE, FALSE, sizeof (double));
  g_assert_true (gb_trainer_run (trainer, &stream, NULL, NULL, NULL, NULL, record_lr, lrs, &error));
  g_assert_cmpuint (lrs->len, ==, 13);
  const double *lr = (const double *) lrs->data;
  /* Linear warm-up to the peak, then a cosine from peak to min_lr. */
  for (guint s = 0; s < 4; s++)
    g_assert_cmpfloat (fabs (lr[s] - 1e-3 * (s + 1) / 4), <=, 1e-12);
  for (guint s = 4; s < 13; s++)
    {
      double want = 1e-4 + 0.5 * 9e-4 * (1 + cos (G_PI * (s - 4) / 9.0));
      g_assert_cmpfloat (fabs (lr[s] - want), <=, 1e-12);
    }
}

static float *
train_params (guint    n_threads,
              guint64  steps,
              gsize   *np)
{
  gsize n;
  g_autofree gint32 *ids = make_stream (&n);
  GbTokenStream stream = { ids, NULL, n };
  GbTrainOptions o = small_options ();
  o.n_threads = n_threads;
  o.max_steps = steps;
  g_autoptr (GError) error = NULL;
  g_autoptr (GbTrainer) trainer = gb_trainer_new (gb_net_new_random (&shape, 4), &o, &error);
  g_assert_true (gb_trainer_run (trainer, &stream, NULL, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  *np = gb_net_get_n_params (gb_trainer_get_net (trainer));
  return g_memdup2 (gb_net_get_params (gb_trainer_get_net (trainer)), *np * sizeof (float));
}

static void
test_workers_agree (void)
{
  /* Two workers on halves of the batch compute the gradient of the same
   * loss as one worker: the parameters after 10 steps agree to rounding. */
  gsize np;
  g_autofree float *one = train_params (1, 10, &np);
  g_autofree float *two = train_params (2, 10, &np);
  g_autofree float *three = train_params (3, 10, &np);
  double worst = 0;
  for (gsize i = 0; i < np; i++)
    worst = MAX (worst, MAX (fabs (one[i] - two[i]), fabs (one[i] - three[i])));
  g_assert_cmpfloat (worst, <=, 1e-4);
  /* And the same thread count is deterministic to the bit. */
  g_autofree float *again = train_params (2, 10, &np);
  g_assert_true (memcmp (two, again, np * sizeof (float)) == 0);
}

static void
cancel_at_6 (const GbTrainProgress *p,
             gpointer               data)
{
  if (p->step == 6)
    g_cancellable_cancel (data);
}

static void
test_resume_is_exact (void)
{
  /* 10 steps straight == 6 steps, checkpoint, a new trainer resumed, 4 more. */
  gsize n, np;
  g_autofree gint32 *ids = make_stream (&n);
  GbTokenStream stream = { ids, NULL, n };
  g_autofree float *straight = train_params (2, 10, &np);
  g_autofree char *dir = gb_test_tmp_path ("resume", "checkpoint", NULL);
  g_autofree char *vocab = gb_test_tmp_path ("resume-vocab", NULL);
  g_mkdir_with_parents (vocab, 0755);
  gb_test_write_vocab (vocab, FALSE);
  g_autoptr (GError) error = NULL;

  GbTrainOptions o = small_options ();
  o.n_threads = 2;
  o.max_steps = 10;
  {
    /* Stopped after step 6 (as Ctrl+C or --stop-after do): a checkpoint. */
    g_autoptr (GbTrainer) first = gb_trainer_new (gb_net_new_random (&shape, 4), &o, &error);
    g_autoptr (GCancellable) cancel = g_cancellable_new ();
    g_assert_false (gb_trainer_run (first, &stream, NULL, dir, vocab, cancel, cancel_at_6, cancel, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    g_assert_cmpuint (gb_trainer_get_step (first), ==, 6);
    g_assert_true (gb_trainer_save_checkpoint (first, dir, vocab, &error));
    g_assert_no_error (error);
    /* Saving again replaces it cleanly (no .new or .old left behind). */
    g_assert_true (gb_trainer_save_checkpoint (first, dir, vocab, &error));
    g_autofree char *fresh = g_strconcat (dir, ".new", NULL), *old = g_strconcat (dir, ".old", NULL);
    g_assert_false (g_file_test (fresh, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (old, G_FILE_TEST_EXISTS));
  }
  /* The checkpoint is a loadable model. */
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_autoptr (GbTrainer) second = gb_trainer_new (gb_net_new_random (&shape, 99), &o, &error);
  g_assert_true (gb_trainer_resume (second, dir, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (gb_trainer_get_step (second), ==, 6);
  g_assert_true (gb_trainer_run (second, &stream, NULL, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_true (memcmp (straight, gb_net_get_params (gb_trainer_get_net (second)), np * sizeof (float)) == 0);

  /* Other settings, or other data, are refused: the run would not be the
   * one that was interrupted. */
  GbTrainOptions changed = o;
  changed.lr = 2e-3;
  g_autoptr (GbTrainer) other_opts = gb_trainer_new (gb_net_new_random (&shape, 4), &changed, &error);
  g_assert_false (gb_trainer_resume (other_opts, dir, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "lr 0.002"));
  g_clear_error (&error);
  g_autoptr (GbTrainer) other_data = gb_trainer_new (gb_net_new_random (&shape, 4), &o, &error);
  g_assert_true (gb_trainer_resume (other_data, dir, &error));
  GbTokenStream shorter = { ids, NULL, n - 1 };
  g_assert_false (gb_trainer_run (other_data, &shorter, NULL, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);

  /* A checkpoint of another shape, or a damaged one, is refused by name. */
  GbModelShape other = shape;
  other.n_embd = 8;
  g_autoptr (GbTrainer) wrong = gb_trainer_new (gb_net_new_random (&other, 1), &o, &error);
  g_assert_false (gb_trainer_resume (wrong, dir, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_SHAPE);
  g_clear_error (&error);
  g_autofree char *state = g_build_filename (dir, "trainer_state.json", NULL);
  const char *const bad_states[] = {
    "{\"step\": ", "{}", "[]", "{\"step\": \"7\", \"n_params\": 1, \"options\": \"\", \"data\": \"\"}",
    "{\"step\": 7.5, \"n_params\": 1, \"options\": \"\", \"data\": \"\"}",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad_states); i++)
    {
      g_assert_true (g_file_set_contents (state, bad_states[i], -1, NULL));
      g_assert_false (gb_trainer_resume (second, dir, &error));
      g_assert_error (error, GB_ERROR, GB_ERROR_FORMAT);
      g_assert_nonnull (strstr (error->message, "trainer_state.json"));
      g_clear_error (&error);
    }
}

static void
test_learns (void)
{
  /* Loss on a repetitive text falls well below its start; held-out
   * evaluation is reported. */
  gsize n;
  g_autofree gint32 *ids = make_stream (&n);
  GbTokenStream stream = { ids, NULL, n };
  GbTrainOptions o = small_options ();
  o.max_steps = 60;
  o.lr = 1e-2;
  o.min_lr = 1e-3;
  o.eval_every = 20;
  o.eval_batches = 2;
  g_autoptr (GError) error = NULL;
  g_autoptr (GbTrainer) trainer = gb_trainer_new (gb_net_new_random (&shape, 5), &o, &error);
  double before = gb_trainer_evaluate (trainer, &stream, 2, &error);
  g_assert_no_error (error);
  g_assert_true (gb_trainer_run (trainer, &stream, &stream, NULL, NULL, NULL, NULL, NULL, &error));
  double after = gb_trainer_evaluate (trainer, &stream, 2, &error);
  g_assert_cmpfloat (before, >, 5.0); /* about log(257) */
  g_assert_cmpfloat (after, <, 0.4 * before);
}

static void
test_cancel_and_bad_input (void)
{
  gsize n;
  g_autofree gint32 *ids = make_stream (&n);
  GbTokenStream stream = { ids, NULL, n }, tiny = { ids, NULL, 10 };
  GbTrainOptions o = small_options ();
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = gb_test_tmp_path ("cancel", "checkpoint", NULL);
  g_autofree char *vocab = gb_test_tmp_path ("cancel-vocab", NULL);
  g_mkdir_with_parents (vocab, 0755);
  gb_test_write_vocab (vocab, FALSE);

  g_autoptr (GbTrainer) trainer = gb_trainer_new (gb_net_new_random (&shape, 1), &o, &error);
  g_assert_false (gb_trainer_run (trainer, &tiny, NULL, NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);

  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_cancellable_cancel (cancel);
  g_assert_false (gb_trainer_run (trainer, &stream, NULL, dir, vocab, cancel, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_autofree char *state = g_build_filename (dir, "trainer_state.json", NULL);
  g_assert_true (g_file_test (state, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  /* Options out of range, and a read-only net, are refused. */
  o.seq_len = 17;
  g_assert_null (gb_trainer_new (gb_net_new_random (&shape, 1), &o, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);
  o = small_options ();
  o.lr = NAN;
  g_assert_null (gb_trainer_new (gb_net_new_random (&shape, 1), &o, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  o = small_options ();
  g_assert_null (gb_trainer_new (gb_net_new_from_model (model, FALSE, NULL), &o, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/train/adamw-steps", test_adamw_steps);
  g_test_add_func ("/train/zero-weight-batch", test_zero_weight_batch);
  g_test_add_func ("/train/schedule", test_schedule);
  g_test_add_func ("/train/workers-agree", test_workers_agree);
  g_test_add_func ("/train/resume-is-exact", test_resume_is_exact);
  g_test_add_func ("/train/learns", test_learns);
  g_test_add_func ("/train/cancel-and-bad-input", test_cancel_and_bad_input);
  return g_test_run ();
}
