/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bench-sae: SAE training throughput (activations/s) of the engine's
 * trainer on synthetic activations, the classic L1 SAE of the issue:
 * d_in 768, 4x width, batch 512, Adam, renormalised decoder. The data are
 * sparse combinations of random unit directions (as a residual stream is),
 * so the SAE becomes sparse as it trains, as it does on real activations.
 * Prints one JSON line per phase (warm-up steps, then measured steps).
 *
 *   bench-sae [--d-in 768] [--width 4] [--batch 512] [--steps 200] [--warmup 100]
 *             [--l1 C] [--topk K] [--sparse-below F] [--threads N]
 */
#include <glassbox-engine.h>
#include <math.h>
#include <stdio.h>

#include "gb-kernels.h"

static void
make_data (float  *x,
           guint   n,
           guint   d,
           const float *dirs,
           guint   n_dirs,
           GRand  *rng)
{
  for (guint t = 0; t < n; t++)
    {
      float *row = x + (gsize) t * d;
      for (guint i = 0; i < d; i++)
        row[i] = (float) (0.05 * (g_rand_double (rng) - 0.5));
      for (guint a = 0; a < 16; a++)
        {
          guint j = g_rand_int_range (rng, 0, (gint32) n_dirs);
          float c = (float) (1 + 2 * g_rand_double (rng));
          for (guint i = 0; i < d; i++)
            row[i] += c * dirs[(gsize) j * d + i];
        }
    }
}

int
main (int    argc,
      char **argv)
{
  gint d = 768, width = 4, batch = 512, steps = 200, warmup = 100, topk = 0, threads = 0;
  double l1 = 0.5, sparse_below = -1, lr = 4e-4;
  GOptionEntry entries[] = {
    { "d-in", 0, 0, G_OPTION_ARG_INT, &d, "Input width", "D" },
    { "width", 0, 0, G_OPTION_ARG_INT, &width, "Expansion factor", "F" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Tokens per step", "B" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &steps, "Measured steps", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Steps before measuring", "N" },
    { "l1", 0, 0, G_OPTION_ARG_DOUBLE, &l1, "L1 coefficient", "C" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "Learning rate", "LR" },
    { "topk", 0, 0, G_OPTION_ARG_INT, &topk, "TopK SAE instead", "K" },
    { "sparse-below", 0, 0, G_OPTION_ARG_DOUBLE, &sparse_below, "Sparse kernels below this density (default: the engine's)", "F" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "BLAS threads (default: all cores)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- SAE training throughput");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, NULL))
    return 2;
  gb_blas_set_threads (threads > 0 ? threads : (int) g_get_num_processors ());

  const guint ds = (guint) (d * width), n_dirs = ds;
  g_autoptr (GRand) rng = g_rand_new_with_seed (42);
  g_autofree float *dirs = g_new (float, (gsize) n_dirs * d);
  for (gsize i = 0; i < (gsize) n_dirs * d; i++)
    dirs[i] = (float) (g_rand_double (rng) - 0.5);
  for (guint j = 0; j < n_dirs; j++)
    {
      double s = 0;
      for (gint i = 0; i < d; i++)
        s += dirs[(gsize) j * d + i] * dirs[(gsize) j * d + i];
      for (gint i = 0; i < d; i++)
        dirs[(gsize) j * d + i] /= sqrt (s);
    }
  const guint n_data = 64 * (guint) batch;
  g_autofree float *data = g_new (float, (gsize) n_data * d);
  make_data (data, n_data, d, dirs, n_dirs, rng);

  GbSaeTrainOptions o;
  gb_sae_train_options_init (&o);
  o.kind = topk > 0 ? GB_SAE_TOPK : GB_SAE_STANDARD;
  o.k = topk;
  o.l1 = l1;
  o.lr = lr;
  o.d_sae = ds;
  o.batch_size = batch;
  o.resample_every = 0;
  if (sparse_below >= 0)
    o.sparse_below = sparse_below;
  GbSae *sae = gb_sae_new (o.kind, d, ds, o.k);
  gb_sae_init_random (sae, 1);
  g_autoptr (GbSaeTrainer) tr = gb_sae_trainer_new (sae, &o);
  GbSaeStepStats st = { 0 };
  const char *phases[2] = { "warmup", "measured" };
  const gint n_steps[2] = { warmup, steps };
  guint pos = 0;
  for (guint ph = 0; ph < 2; ph++)
    {
      g_autoptr (GTimer) timer = g_timer_new ();
      for (gint s = 0; s < n_steps[ph]; s++)
        {
          gb_sae_trainer_step (tr, data + (gsize) pos * d, batch, &st);
          pos = (pos + batch) % n_data;
        }
      const double el = g_timer_elapsed (timer, NULL);
      const double ev = st.var > 0 ? 1 - st.mse / st.var : NAN;
      printf ("{\"impl\": \"glassbox\", \"phase\": \"%s\", \"steps\": %d, \"seconds\": %.3f, \"acts_per_s\": %.0f, "
              "\"l0\": %.1f, \"ev\": %.3f, \"mse\": %.4f}\n",
              phases[ph], n_steps[ph], el, n_steps[ph] * (double) batch / MAX (el, 1e-9), st.l0, ev, st.mse);
      fflush (stdout);
    }
  return 0;
}
