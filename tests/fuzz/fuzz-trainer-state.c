/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A hostile trainer_state.json in an otherwise valid checkpoint: resuming
 * must refuse it with an error, or accept a state within the run's steps. */
#include <glib/gstdio.h>
#include <string.h>

#include "fuzz-util.h"

static GbTrainOptions options;
static const GbModelShape shape = { .n_layer = 1, .n_head = 2, .n_embd = 8, .n_positions = 16, .n_vocab = 257 };

static const char *
checkpoint (void)
{
  static char *dir;
  if (dir == NULL)
    {
      g_autoptr (GError) error = NULL;
      gb_train_options_init (&options);
      options.batch_size = 2;
      options.seq_len = 8;
      options.max_steps = 50;
      options.n_threads = 1;
      dir = g_build_filename (fuzz_dir (), "checkpoint", NULL);
      g_autofree char *vocab = g_build_filename (fuzz_dir (), "vocab", NULL);
      g_mkdir_with_parents (vocab, 0700);
      g_autoptr (GbTrainer) trainer = gb_trainer_new (gb_net_new_random (&shape, 1), &options, &error);
      if (trainer == NULL || !gb_vocab_write_bytes (vocab, &error) ||
          !gb_trainer_save_checkpoint (trainer, dir, vocab, &error))
        g_error ("cannot write the checkpoint: %s", error->message);
    }
  return dir;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *dir = checkpoint ();
  g_autofree char *state = g_build_filename (dir, "trainer_state.json", NULL);
  g_autoptr (GError) error = NULL;

  if (!g_file_set_contents (state, (const char *) data, (gssize) size, &error))
    g_error ("%s", error->message);
  g_autoptr (GbTrainer) trainer = gb_trainer_new (gb_net_new_random (&shape, 2), &options, &error);
  FUZZ_CHECK (trainer != NULL, "a trainer");
  if (!gb_trainer_resume (trainer, dir, &error))
    {
      FUZZ_CHECK (error != NULL && error->domain == GB_ERROR, "a refusal is a GB_ERROR");
      FUZZ_CHECK (strstr (error->message, "trainer_state.json") != NULL || strstr (error->message, dir) != NULL,
                  "the error names the file");
      return 0;
    }
  FUZZ_CHECK (gb_trainer_get_step (trainer) <= options.max_steps, "the step is within the run");
  return 0;
}
