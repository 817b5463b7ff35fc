/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Training throughput of the engine's trainer (forward, backward, AdamW
 * step) on random tokens, for the same shape bench_train.py trains in
 * PyTorch. Prints one JSON line. Run through tools/bench/train.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glassbox-engine.h>

#include "gb-kernels.h"

int
main (int argc, char **argv)
{
  gint vocab = 4096, layers = 6, heads = 6, embd = 192, seq_len = 128, batch = 32, steps = 20, warmup = 3, threads = 2;
  GOptionEntry entries[] = {
    { "vocab", 0, 0, G_OPTION_ARG_INT, &vocab, "Vocabulary", "N" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "Blocks", "N" },
    { "heads", 0, 0, G_OPTION_ARG_INT, &heads, "Heads", "N" },
    { "embd", 0, 0, G_OPTION_ARG_INT, &embd, "Width", "N" },
    { "seq-len", 0, 0, G_OPTION_ARG_INT, &seq_len, "Tokens per sequence", "N" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Sequences per step", "N" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &steps, "Timed steps", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Untimed steps first", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "OpenBLAS threads", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- training throughput");
  g_autoptr (GError) error = NULL;
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return 2;
    }
  gb_blas_set_threads (threads);

  GbModelShape shape = { layers, heads, embd, seq_len, vocab };
  GbTrainOptions opt;
  gb_train_options_init (&opt);
  opt.batch_size = batch;
  opt.seq_len = seq_len;
  opt.checkpoint_every = opt.eval_every = 0;
  opt.max_steps = warmup;
  opt.n_threads = threads;
  GbNet *net = gb_net_new_random (&shape, 1);
  gsize n_params = gb_net_get_n_params (net);
  g_autoptr (GbTrainer) trainer = gb_trainer_new (net, &opt, &error);
  g_assert_no_error (error);

  gsize n = (gsize) 64 * batch * (seq_len + 1);
  g_autofree gint32 *tokens = g_new (gint32, n);
  GRand *rng = g_rand_new_with_seed (1);
  for (gsize i = 0; i < n; i++)
    tokens[i] = g_rand_int_range (rng, 0, vocab);
  g_rand_free (rng);
  GbTokenStream stream = { tokens, NULL, n };

  /* Untimed warm-up steps (first touch of every buffer), then the timed ones
   * on the same trainer. */
  gb_trainer_run (trainer, &stream, NULL, NULL, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  gint64 t0 = g_get_monotonic_time ();
  for (gint s = 0; s < steps; s++)
    {
      /* Each run continues where the last stopped; raise the limit by one. */
      gb_trainer_set_max_steps (trainer, warmup + s + 1);
      gb_trainer_run (trainer, &stream, NULL, NULL, NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
    }
  double dt = (g_get_monotonic_time () - t0) / 1e6;
  printf ("{\"name\": \"train\", \"impl\": \"glassbox\", \"threads\": %d, \"params\": %" G_GSIZE_FORMAT
          ", \"tokens_per_s\": %.1f, \"ms_per_step\": %.1f}\n",
          threads, n_params, (double) steps * batch * seq_len / dt, dt / steps * 1e3);
  return 0;
}
