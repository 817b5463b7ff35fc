/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

#include <math.h>
#include <string.h>

#include "gb-test-util.h"

/* The differentiable GPT-2: same forward values as the inference engine,
 * gradients that agree with central finite differences. The float64 numpy
 * reference (tests/reference) checks the same gradients to 1e-4. */

static char *model_dir;

static void
test_random_matches_init (void)
{
  /* gb_net_new_random draws exactly what gb_model_write_random writes. */
  GbModelShape shape = { 2, 2, 16, 32, 257 };
  g_autofree char *a = gb_test_tmp_path ("a", NULL);
  g_autofree char *b = gb_test_tmp_path ("b", NULL);
  g_autoptr (GError) error = NULL;
  g_mkdir_with_parents (a, 0755);
  g_assert_true (gb_model_write_random (a, &shape, GB_DTYPE_F32, 7, &error));
  g_autoptr (GbNet) net = gb_net_new_random (&shape, 7);
  g_assert_true (gb_net_save (net, b, GB_DTYPE_F32, &error));
  g_assert_no_error (error);

  g_autofree char *pa = g_build_filename (a, "model.safetensors", NULL);
  g_autofree char *pb = g_build_filename (b, "model.safetensors", NULL);
  GbSafetensors *fa = gb_safetensors_open (pa, &error);
  g_assert_no_error (error);
  GbSafetensors *fb = gb_safetensors_open (pb, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (gb_safetensors_get_n_tensors (fa), ==, gb_safetensors_get_n_tensors (fb));
  for (guint i = 0; i < gb_safetensors_get_n_tensors (fa); i++)
    {
      const GbTensorView *ta = gb_safetensors_get_nth (fa, i);
      const GbTensorView *tb = gb_safetensors_lookup (fb, ta->name);
      g_assert_nonnull (tb);
      g_assert_cmpuint (ta->n_bytes, ==, tb->n_bytes);
      g_assert_true (memcmp (ta->data, tb->data, ta->n_bytes) == 0);
    }
  gb_safetensors_free (fa);
  gb_safetensors_free (fb);

  /* And the saved folder loads as a model. */
  gb_test_write_vocab (b, FALSE);
  g_autoptr (GbModel) m = gb_model_load (b, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (gb_model_get_n_params (m), ==, gb_net_get_n_params (net));
}

static const gint32 seq[] = { 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 32, 72, 105 };
#define T_SEQ ((guint) G_N_ELEMENTS (seq))

static void
test_forward_matches_engine (gconstpointer data)
{
  gboolean copy = GPOINTER_TO_INT (data);
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (model_dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (GbNet) net = gb_net_new_from_model (model, copy, &error);
  g_assert_no_error (error);
  const guint V = gb_model_get_config (model)->n_vocab;

  GbRecord rec = { .logits = GB_LOGITS_ALL };
  g_autoptr (GbTrace) trace = gb_model_forward (model, seq, T_SEQ, &rec, NULL, 0, NULL, &error);
  g_assert_no_error (error);

  /* Logits through the attribution entry point (d/d logit = the logit). */
  for (guint pos = 0; pos < T_SEQ; pos += 5)
    for (gint32 tok = 0; tok < (gint32) V; tok += 37)
      {
        float value;
        g_assert_true (gb_net_grad_logit_diff (net, seq, NULL, T_SEQ, pos, tok, -1, NULL, NULL, &value, &error));
        float want = trace->logits[(gsize) pos * V + tok];
        g_assert_cmpfloat (fabsf (value - want), <=, 1e-5f * MAX (1.f, fabsf (want)));
      }

  if (!copy)
    {
      /* A read-only view has no parameter gradients. */
      gint32 targets[T_SEQ];
      for (guint i = 0; i < T_SEQ; i++)
        targets[i] = i + 1 < T_SEQ ? seq[i + 1] : -1;
      double loss = gb_net_loss (net, seq, targets, NULL, 1, T_SEQ, TRUE, &error);
      g_assert_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED);
      g_assert_true (isnan (loss));
      return;
    }

  /* The loss is the mean next-token negative log-likelihood. */
  gint32 targets[T_SEQ];
  double want = 0;
  guint n = 0;
  for (guint i = 0; i + 1 < T_SEQ; i++)
    {
      const float *row = trace->logits + (gsize) i * V;
      double max = row[0], sum = 0;
      for (guint k = 0; k < V; k++)
        max = MAX (max, row[k]);
      for (guint k = 0; k < V; k++)
        sum += exp (row[k] - max);
      want += -(row[seq[i + 1]] - max - log (sum));
      n++;
      targets[i] = seq[i + 1];
    }
  targets[T_SEQ - 1] = -1;
  want /= n;
  double loss = gb_net_loss (net, seq, targets, NULL, 1, T_SEQ, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (fabs (loss - want), <=, 1e-5 * want);
}

/* Loss of the batch at the current parameters, no gradient. */
static double
batch_loss (GbNet        *net,
            const gint32 *tokens,
            const gint32 *targets,
            const float  *weights,
            guint         B,
            guint         T)
{
  g_autoptr (GError) error = NULL;
  double loss = gb_net_loss (net, tokens, targets, weights, B, T, FALSE, &error);
  g_assert_no_error (error);
  return loss;
}

static void
test_param_grads_finite_differences (void)
{
  /* Every parameter tensor: the analytic gradient against central
   * differences (float32 forward, so h = 1e-2 and a tolerance to match). */
  GbModelShape shape = { 2, 2, 16, 16, 257 };
  g_autoptr (GbNet) net = gb_net_new_random (&shape, 3);
  float *params = gb_net_get_params (net);
  /* Larger weights than GPT-2's init, so attention is not uniform and
   * every path carries gradient. */
  for (gsize i = 0; i < gb_net_get_n_params (net); i++)
    params[i] *= 6.f;
  guint n_info;
  const GbParamInfo *info = gb_net_get_param_info (net, &n_info);
  for (guint i = 0; i < n_info; i++)
    if (info[i].n_dims == 1)
      for (gsize j = 0; j < info[i].n; j++)
        params[info[i].offset + j] = (g_str_has_suffix (info[i].name, "weight") ? 1.f : 0.f) +
                                     0.1f * sinf ((float) (i * 31 + j));

  const guint B = 2, T = 8;
  gint32 tokens[16], targets[16];
  float weights[16];
  for (guint i = 0; i < B * T; i++)
    {
      tokens[i] = seq[i % T_SEQ] + (gint32) (i / T);
      targets[i] = (i % T) + 1 < T ? seq[(i + 1) % T_SEQ] : -1;
      weights[i] = i % 3 == 0 ? 5.f : 1.f;
    }
  gb_net_zero_grads (net);
  g_autoptr (GError) error = NULL;
  gb_net_loss (net, tokens, targets, weights, B, T, TRUE, &error);
  g_assert_no_error (error);
  g_autofree float *grads = g_memdup2 (gb_net_get_grads (net), gb_net_get_n_params (net) * sizeof (float));

  GRand *rng = g_rand_new_with_seed (11);
  guint checked = 0;
  for (guint i = 0; i < n_info; i++)
    {
      double worst = 0;
      for (guint s = 0; s < 12; s++)
        {
          gsize j = info[i].offset + g_rand_int_range (rng, 0, (gint32) info[i].n);
          /* Embedding rows of unused tokens have zero gradient: pick a used one. */
          if (g_str_equal (info[i].name, "wte.weight") && s % 2 == 0)
            j = info[i].offset + (gsize) tokens[s] * shape.n_embd + s;
          const float h = 1e-2f, keep = params[j];
          params[j] = keep + h;
          double up = batch_loss (net, tokens, targets, weights, B, T);
          params[j] = keep - h;
          double down = batch_loss (net, tokens, targets, weights, B, T);
          params[j] = keep;
          double fd = (up - down) / (2.0 * h);
          double err = fabs (fd - grads[j]) / MAX (MAX (fabs (fd), fabs (grads[j])), 2e-3);
          worst = MAX (worst, err);
          checked++;
        }
      if (worst > 3e-2)
        g_error ("%s: gradient differs from finite differences by %.3g (relative)", info[i].name, worst);
    }
  g_rand_free (rng);
  g_assert_cmpuint (checked, ==, 12 * n_info);

  /* Gradients accumulate until zeroed. */
  gb_net_loss (net, tokens, targets, weights, B, T, TRUE, &error);
  g_assert_no_error (error);
  const float *twice = gb_net_get_grads (net);
  for (gsize i = 0; i < gb_net_get_n_params (net); i += 97)
    g_assert_cmpfloat (fabsf (twice[i] - 2.f * grads[i]), <=, 1e-5f + 1e-4f * fabsf (grads[i]));
}

static void
test_input_grads_finite_differences (void)
{
  /* The attribution gradient with respect to the input embeddings, and the
   * residual gradient at block 0 (which is the same quantity). */
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (model_dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (GbNet) net = gb_net_new_from_model (model, FALSE, &error);
  g_assert_no_error (error);
  const GbConfig *c = gb_model_get_config (model);
  const guint D = c->n_embd, T = 10, pos = 8;

  g_autofree float *embed = g_new (float, (gsize) T * D);
  g_autofree float *d_embed = g_new (float, (gsize) T * D);
  g_autofree float *d_resid = g_new (float, (gsize) c->n_layer * T * D);
  g_autofree float *d_from_tokens = g_new (float, (gsize) T * D);
  /* The embeddings the tokens would give, as gb_net builds them. */
  GbRecord rec = { .hooks[GB_HOOK_RESID_PRE] = 1 };
  g_autoptr (GbTrace) trace = gb_model_forward (model, seq, T, &rec, NULL, 0, NULL, &error);
  g_assert_no_error (error);
  memcpy (embed, gb_trace_get (trace, GB_HOOK_RESID_PRE, 0), (gsize) T * D * sizeof (float));

  float value;
  g_assert_true (gb_net_grad_logit_diff (net, seq, NULL, T, pos, 40, 50, d_from_tokens, d_resid, &value, &error));
  g_assert_true (gb_net_grad_logit_diff (net, NULL, embed, T, pos, 40, 50, d_embed, NULL, NULL, &error));
  g_assert_no_error (error);
  for (gsize i = 0; i < (gsize) T * D; i++)
    {
      g_assert_cmpfloat (fabsf (d_embed[i] - d_from_tokens[i]), <=, 1e-6f);
      g_assert_cmpfloat (d_resid[i], ==, d_embed[i]);
    }
  /* Causality: nothing after the position matters. */
  for (guint t = pos + 1; t < T; t++)
    for (guint j = 0; j < D; j++)
      g_assert_cmpfloat (d_embed[(gsize) t * D + j], ==, 0.f);

  double worst = 0;
  for (guint s = 0; s < 40; s++)
    {
      gsize i = (gsize) (s % (pos + 1)) * D + (s * 7) % D;
      const float h = 1e-2f, keep = embed[i];
      float up, down;
      embed[i] = keep + h;
      g_assert_true (gb_net_grad_logit_diff (net, NULL, embed, T, pos, 40, 50, NULL, NULL, &up, &error));
      embed[i] = keep - h;
      g_assert_true (gb_net_grad_logit_diff (net, NULL, embed, T, pos, 40, 50, NULL, NULL, &down, &error));
      embed[i] = keep;
      double fd = ((double) up - down) / (2.0 * h);
      worst = MAX (worst, fabs (fd - d_embed[i]) / MAX (MAX (fabs (fd), fabs (d_embed[i])), 1e-2));
    }
  g_assert_cmpfloat (worst, <=, 3e-2);
}

static void
test_reuse_other_shapes (void)
{
  /* A net used for a long batch of short sequences, then for one longer
   * sequence (fewer rows, longer T): every buffer must fit (ASan checks). */
  GbModelShape s = { 1, 2, 8, 16, 257 };
  g_autoptr (GbNet) net = gb_net_new_random (&s, 1);
  gint32 tokens[16], targets[16];
  for (guint i = 0; i < 16; i++)
    {
      tokens[i] = 65 + i;
      targets[i] = 66 + i;
    }
  g_autoptr (GError) error = NULL;
  gb_net_loss (net, tokens, targets, NULL, 8, 2, TRUE, &error);
  g_assert_no_error (error);
  float d[4 * 8], value;
  g_assert_true (gb_net_grad_logit_diff (net, tokens, NULL, 4, 3, 70, 71, d, NULL, &value, &error));
  gb_net_loss (net, tokens, targets, NULL, 1, 16, TRUE, &error);
  g_assert_no_error (error);
  gb_net_loss (net, tokens, targets, NULL, 2, 3, FALSE, &error);
  g_assert_no_error (error);
}

static void
test_erf_gelu_grads (void)
{
  /* The exact (erf) GELU's backward, through a model whose config asks for
   * "gelu". */
  g_autofree char *dir = gb_test_tmp_path ("erf", NULL);
  gb_test_write_model (dir, 1, 2, 16, 16, FALSE, 8);
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  g_autofree char *json = NULL;
  g_assert_true (g_file_get_contents (config, &json, NULL, NULL));
  g_autoptr (GString) edited = g_string_new (json);
  g_assert_cmpuint (g_string_replace (edited, "\"gelu_new\"", "\"gelu\"", 0), ==, 1);
  g_assert_true (g_file_set_contents (config, edited->str, -1, NULL));
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (GbNet) net = gb_net_new_from_model (model, TRUE, &error);
  g_assert_no_error (error);
  /* Scale the MLP input so GELU's curved part matters. */
  guint n_info;
  const GbParamInfo *info = gb_net_get_param_info (net, &n_info);
  float *params = gb_net_get_params (net);
  for (guint i = 0; i < n_info; i++)
    if (g_str_has_suffix (info[i].name, "c_fc.weight"))
      for (gsize j = 0; j < info[i].n; j++)
        params[info[i].offset + j] *= 12.f;

  const guint T = 8, D = 16;
  g_autofree float *embed = g_new (float, T * D), *d_embed = g_new (float, T * D);
  for (guint i = 0; i < T * D; i++)
    embed[i] = sinf (i * 0.37f);
  g_assert_true (gb_net_grad_logit_diff (net, NULL, embed, T, T - 1, 65, 66, d_embed, NULL, NULL, &error));
  double worst = 0;
  for (guint s = 0; s < 30; s++)
    {
      guint i = (s * 13) % (T * D);
      const float h = 1e-2f, keep = embed[i];
      float up, down;
      embed[i] = keep + h;
      g_assert_true (gb_net_grad_logit_diff (net, NULL, embed, T, T - 1, 65, 66, NULL, NULL, &up, &error));
      embed[i] = keep - h;
      g_assert_true (gb_net_grad_logit_diff (net, NULL, embed, T, T - 1, 65, 66, NULL, NULL, &down, &error));
      embed[i] = keep;
      double fd = ((double) up - down) / (2.0 * h);
      worst = MAX (worst, fabs (fd - d_embed[i]) / MAX (MAX (fabs (fd), fabs (d_embed[i])), 1e-2));
    }
  g_test_message ("largest relative error %g", worst);
  g_assert_cmpfloat (worst, <=, 3e-3);
}

static void
test_bad_input (void)
{
  GbModelShape shape = { 1, 2, 8, 8, 257 };
  g_autoptr (GbNet) net = gb_net_new_random (&shape, 1);
  gint32 tokens[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, targets[9] = { 2, 3, 4, 5, 6, 7, 8, 9, -1 };
  g_autoptr (GError) error = NULL;

  g_assert_true (isnan (gb_net_loss (net, tokens, targets, NULL, 1, 9, TRUE, &error)));
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
  g_clear_error (&error);
  tokens[3] = 257;
  g_assert_true (isnan (gb_net_loss (net, tokens, targets, NULL, 1, 8, TRUE, &error)));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);
  tokens[3] = 4;
  targets[2] = 300;
  g_assert_true (isnan (gb_net_loss (net, tokens, targets, NULL, 1, 8, TRUE, &error)));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gb_net_grad_logit_diff (net, tokens, NULL, 8, 8, 1, -1, NULL, NULL, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  model_dir = gb_test_tmp_path ("model", NULL);
  gb_test_write_model (model_dir, 2, 4, 32, 32, FALSE, 5);

  g_test_add_func ("/net/random-matches-init", test_random_matches_init);
  g_test_add_data_func ("/net/forward-matches-engine/copy", GINT_TO_POINTER (TRUE), test_forward_matches_engine);
  g_test_add_data_func ("/net/forward-matches-engine/borrowed", GINT_TO_POINTER (FALSE), test_forward_matches_engine);
  g_test_add_func ("/net/param-grads-finite-differences", test_param_grads_finite_differences);
  g_test_add_func ("/net/input-grads-finite-differences", test_input_grads_finite_differences);
  g_test_add_func ("/net/reuse-other-shapes", test_reuse_other_shapes);
  g_test_add_func ("/net/erf-gelu-grads", test_erf_gelu_grads);
  g_test_add_func ("/net/bad-input", test_bad_input);
  return g_test_run ();
}
