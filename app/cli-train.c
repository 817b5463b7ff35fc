/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "gb-cli.h"
#include "gb-kernels.h"

static volatile sig_atomic_t interrupted;

static void
on_sigint (int sig)
{
  interrupted = 1;
}

typedef struct
{
  GCancellable *cancellable;
  FILE         *log;
  guint         log_every;
  guint64       stop_after;
} RunState;

static void
on_progress (const GbTrainProgress *p,
             gpointer               user_data)
{
  RunState *st = user_data;

  if (interrupted || (st->stop_after > 0 && p->step >= st->stop_after))
    g_cancellable_cancel (st->cancellable);
  if (st->log != NULL)
    {
      char a[G_ASCII_DTOSTR_BUF_SIZE], b[G_ASCII_DTOSTR_BUF_SIZE], c[G_ASCII_DTOSTR_BUF_SIZE];
      fprintf (st->log, "{\"step\": %" G_GUINT64_FORMAT ", \"loss\": %s, \"eval_loss\": %s, \"lr\": %s, \"tokens_per_s\": %.0f}\n",
               p->step, g_ascii_formatd (a, sizeof a, "%.5f", p->loss),
               !p->evaluated || !isfinite (p->eval_loss) ? "null" : g_ascii_formatd (b, sizeof b, "%.5f", p->eval_loss),
               g_ascii_formatd (c, sizeof c, "%.3e", p->lr), p->tokens_per_s);
      fflush (st->log);
    }
  if (p->step % st->log_every != 0 && p->step != p->max_steps && !p->checkpointed)
    return;
  guint eta = (guint) p->eta_s;
  g_autofree char *eval = isnan (p->eval_loss) ? g_strdup ("") : g_strdup_printf (" held-out %.4f", p->eval_loss);
  printf ("step %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "  loss %.4f%s  lr %.2e  |g| %.3f  %.0f tok/s  ETA %um%02us%s\n",
          p->step, p->max_steps, p->loss, eval, p->lr, p->grad_norm, p->tokens_per_s, eta / 60, eta % 60,
          p->checkpointed ? "  (checkpoint)" : "");
  fflush (stdout);
}

/* Tokenises a whole corpus file (<|endoftext|> is the special token). */
static GArray *
encode_file (GbTokenizer *tok,
             const char  *path,
             GError     **error)
{
  g_autofree char *text = NULL;
  gsize len;
  GError *local = NULL;

  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s", local->message);
      g_error_free (local);
      return NULL;
    }
  GArray *ids = gb_tokenizer_encode (tok, text, (gssize) len, TRUE, &local);
  if (ids == NULL)
    {
      g_set_error (error, GB_ERROR, local->code, "%s: %s", path, local->message);
      g_error_free (local);
    }
  return ids;
}

/* MARKER=W: the token after each occurrence of MARKER's tokens gets loss
 * weight W (the decision word after "Decision:", say). Returns how many
 * positions were weighted, or -1 on a bad spec. */
static gssize
apply_emphasis (GbTokenizer  *tok,
                const GArray *ids,
                float        *weights,
                const char   *spec,
                GError      **error)
{
  const char *eq = strrchr (spec, '=');
  double w;
  char *end;

  if (eq == NULL || eq == spec || (w = g_ascii_strtod (eq + 1, &end), *end != '\0') || !(w > 0 && w <= 1000))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "--emphasis: expected MARKER=WEIGHT (0 < WEIGHT <= 1000), got “%s”", spec);
      return -1;
    }
  g_autofree char *marker = g_strndup (spec, eq - spec);
  g_autoptr (GArray) m = gb_tokenizer_encode (tok, marker, -1, FALSE, error);
  if (m == NULL)
    return -1;
  const gint32 *s = (const gint32 *) ids->data, *k = (const gint32 *) m->data;
  gssize count = 0;
  for (gsize i = 0; i + m->len < ids->len; i++)
    if (memcmp (s + i, k, m->len * sizeof (gint32)) == 0)
      {
        weights[i + m->len] = (float) w;
        count++;
      }
  return count;
}

/* A resumed run appends to train_log.jsonl; rows past the checkpoint (the
 * steps an interrupted run did after its last save, which it will do
 * again) are dropped first, so the log counts each step once, in order. */
static gboolean
trim_log (const char *path,
          guint64     step,
          GError    **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &text, NULL, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_autoptr (GString) kept = g_string_new (NULL);
  for (const char *line = text; *line != '\0';)
    {
      const char *nl = strchr (line, '\n');
      const gsize len = nl ? (gsize) (nl - line + 1) : strlen (line);
      guint64 s;
      if (sscanf (line, "{\"step\": %" G_GUINT64_FORMAT, &s) == 1 && s <= step && nl != NULL)
        g_string_append_len (kept, line, len);
      line += len;
    }
  return kept->len == strlen (text) || g_file_set_contents (path, kept->str, kept->len, error);
}

static const char *
find_checkpoint (const char *output)
{
  static const char *const names[] = { "checkpoint", "checkpoint.new", "checkpoint.old" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *state = g_build_filename (output, names[i], "trainer_state.json", NULL);
      g_autofree char *opt = g_build_filename (output, names[i], "optimizer.safetensors", NULL);
      if (g_file_test (state, G_FILE_TEST_EXISTS) && g_file_test (opt, G_FILE_TEST_EXISTS))
        return names[i];
    }
  return NULL;
}

int
gb_cli_train (int    argc,
              char **argv)
{
  g_autofree char *corpus = NULL, *heldout = NULL, *output = NULL, *tokenizer = NULL, *init = NULL, *dtype_name = NULL;
  g_auto (GStrv) emphasis = NULL;
  gint n_layer = 4, n_head = 4, n_embd = 128, context = 128, batch = 16, seq_len = 0, warmup = 100, threads = 0;
  gint ckpt_every = 500, eval_every = 250, log_every = 10;
  gint64 steps = 1000, seed = 1, stop_after = 0;
  double lr = 1e-3, min_lr = -1, wd = 0.1, clip = 1.0;
  gboolean resume = FALSE;
  GOptionEntry entries[] = {
    { "corpus", 'c', 0, G_OPTION_ARG_FILENAME, &corpus, "Training text (documents separated by <|endoftext|>)", "FILE" },
    { "heldout", 0, 0, G_OPTION_ARG_FILENAME, &heldout, "Held-out text for the evaluation loss", "FILE" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Folder for the trained model (checkpoints in OUTPUT/checkpoint)", "DIR" },
    { "tokenizer", 0, 0, G_OPTION_ARG_FILENAME, &tokenizer, "Folder with vocab.json and merges.txt (for a new model)", "DIR" },
    { "init", 0, 0, G_OPTION_ARG_FILENAME, &init, "Start from this model's weights (fine-tuning) instead of a random one", "DIR" },
    { "resume", 0, 0, G_OPTION_ARG_NONE, &resume, "Continue from OUTPUT/checkpoint", NULL },
    { "layers", 0, 0, G_OPTION_ARG_INT, &n_layer, "Blocks of a new model (default 4)", "N" },
    { "heads", 0, 0, G_OPTION_ARG_INT, &n_head, "Attention heads (default 4)", "N" },
    { "embd", 0, 0, G_OPTION_ARG_INT, &n_embd, "Width (default 128)", "N" },
    { "context", 0, 0, G_OPTION_ARG_INT, &context, "Context length (default 128)", "N" },
    { "steps", 0, 0, G_OPTION_ARG_INT64, &steps, "Optimizer steps (default 1000)", "N" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Sequences per step (default 16)", "N" },
    { "seq-len", 0, 0, G_OPTION_ARG_INT, &seq_len, "Tokens per sequence (default: the context)", "N" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "Peak learning rate (default 1e-3)", "LR" },
    { "min-lr", 0, 0, G_OPTION_ARG_DOUBLE, &min_lr, "Final learning rate (default lr/10)", "LR" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Warm-up steps (default 100)", "N" },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &wd, "AdamW weight decay on weight matrices (default 0.1)", "WD" },
    { "clip", 0, 0, G_OPTION_ARG_DOUBLE, &clip, "Gradient clipping by global norm (default 1; 0 = off)", "NORM" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed for initialisation and batches (default 1)", "S" },
    { "emphasis", 0, 0, G_OPTION_ARG_STRING_ARRAY, &emphasis, "Weight the loss of the token after MARKER by W (repeatable)", "MARKER=W" },
    { "checkpoint-every", 0, 0, G_OPTION_ARG_INT, &ckpt_every, "Steps between checkpoints (default 500)", "N" },
    { "eval-every", 0, 0, G_OPTION_ARG_INT, &eval_every, "Steps between held-out evaluations (default 250)", "N" },
    { "log-every", 0, 0, G_OPTION_ARG_INT, &log_every, "Steps between progress lines (default 10)", "N" },
    { "stop-after", 0, 0, G_OPTION_ARG_INT64, &stop_after, "Stop after step N with a checkpoint (continue later with --resume)", "N" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "Final weights: f32 (default), f16 or bf16", "TYPE" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Worker threads, each on part of the batch (default: all cores)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- train a GPT-2 language model on a text corpus");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (corpus == NULL || output == NULL)
    return gb_cli_usage ("--corpus FILE and --output DIR are required");
  if (n_layer < 1 || n_layer > 64 || n_head < 1 || n_embd < 1 || n_embd > 4096 || n_embd % n_head != 0 || context < 2 ||
      context > 8192)
    return gb_cli_usage ("--layers 1..64, --embd 1..4096 divisible by --heads, --context 2..8192");
  if (steps < 1 || batch < 1 || batch > 4096 || seq_len < 0 || warmup < 0 || ckpt_every < 0 || eval_every < 0 ||
      log_every < 1 || stop_after < 0 || threads < 0 || threads > 16 || !(lr > 0) || !(wd >= 0) || !(clip >= 0) || seed < 0)
    return gb_cli_usage ("--steps, --batch, --lr must be positive; --warmup, --weight-decay, --clip, --seed not negative");
  GbDtype dtype = GB_DTYPE_F32;
  if (dtype_name != NULL)
    {
      if (g_str_equal (dtype_name, "f16"))
        dtype = GB_DTYPE_F16;
      else if (g_str_equal (dtype_name, "bf16"))
        dtype = GB_DTYPE_BF16;
      else if (!g_str_equal (dtype_name, "f32"))
        return gb_cli_usage ("--dtype must be f32, f16 or bf16");
    }
  if (resume && init != NULL)
    return gb_cli_usage ("--resume and --init exclude each other");

  /* The starting point: a checkpoint, a model, or a fresh initialisation. */
  g_autofree char *start_dir = NULL;
  const char *ckpt_name = resume ? find_checkpoint (output) : NULL;
  if (resume && ckpt_name == NULL)
    {
      g_set_error (&error, GB_ERROR, GB_ERROR_MISSING, "%s: no checkpoint to resume from", output);
      return gb_cli_fail (error);
    }
  if (ckpt_name != NULL)
    {
      start_dir = g_build_filename (output, "checkpoint", NULL);
      if (!g_str_equal (ckpt_name, "checkpoint"))
        {
          /* A save was interrupted between its two renames: the complete
           * folder found becomes the checkpoint again. */
          g_autofree char *found = g_build_filename (output, ckpt_name, NULL);
          if (g_rename (found, start_dir) != 0)
            {
              int e = errno;
              g_set_error (&error, GB_ERROR, GB_ERROR_IO, "%s: cannot restore the checkpoint: %s", found, g_strerror (e));
              return gb_cli_fail (error);
            }
        }
    }
  else if (init != NULL)
    start_dir = g_strdup (init);

  g_autoptr (GbTokenizer) tok = NULL;
  GbNet *net = NULL;
  const char *vocab_dir;
  if (start_dir != NULL)
    {
      g_autoptr (GbModel) model = gb_model_load (start_dir, NULL, NULL, NULL, &error);
      if (model == NULL)
        return gb_cli_fail (error);
      tok = gb_tokenizer_ref (gb_model_get_tokenizer (model));
      net = gb_net_new_from_model (model, TRUE, &error);
      if (net == NULL)
        return gb_cli_fail (error);
      vocab_dir = start_dir;
    }
  else
    {
      if (tokenizer == NULL)
        return gb_cli_usage ("a new model needs --tokenizer DIR (vocab.json, merges.txt)");
      g_autofree char *vp = g_build_filename (tokenizer, "vocab.json", NULL);
      g_autofree char *mp = g_build_filename (tokenizer, "merges.txt", NULL);
      tok = gb_tokenizer_new_from_files (vp, mp, &error);
      if (tok == NULL)
        return gb_cli_fail (error);
      GbModelShape shape = { n_layer, n_head, n_embd, context, gb_tokenizer_get_n_vocab (tok) };
      net = gb_net_new_random (&shape, (guint64) seed);
      vocab_dir = tokenizer;
    }
  const GbModelShape *shape = gb_net_get_shape (net);

  GbTrainOptions opt;
  gb_train_options_init (&opt);
  opt.batch_size = batch;
  opt.seq_len = seq_len > 0 ? (guint) seq_len : shape->n_positions;
  opt.max_steps = steps;
  opt.lr = lr;
  opt.min_lr = min_lr >= 0 ? min_lr : lr / 10;
  opt.warmup_steps = warmup;
  opt.weight_decay = wd;
  opt.grad_clip = clip;
  opt.seed = seed;
  opt.checkpoint_every = ckpt_every;
  opt.eval_every = eval_every;
  opt.n_threads = threads > 0 ? (guint) threads : 0;
  g_autoptr (GbTrainer) trainer = gb_trainer_new (net, &opt, &error);
  if (trainer == NULL)
    return gb_cli_fail (error);
  if (ckpt_name != NULL && !gb_trainer_resume (trainer, start_dir, &error))
    return gb_cli_fail (error);

  /* Data. */
  g_autoptr (GArray) train_ids = encode_file (tok, corpus, &error);
  if (train_ids == NULL)
    return gb_cli_fail (error);
  g_autofree float *weights = NULL;
  if (emphasis != NULL)
    {
      weights = g_new (float, train_ids->len);
      for (guint i = 0; i < train_ids->len; i++)
        weights[i] = 1.f;
      for (guint i = 0; emphasis[i] != NULL; i++)
        {
          gssize n = apply_emphasis (tok, train_ids, weights, emphasis[i], &error);
          if (n < 0)
            return gb_cli_usage ("%s", error->message);
          printf ("emphasis %s: %" G_GSSIZE_FORMAT " positions\n", emphasis[i], n);
        }
    }
  if (train_ids->len <= opt.seq_len + 1)
    {
      g_set_error (&error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: %u tokens, not enough for one sequence of %u", corpus,
                   train_ids->len, opt.seq_len + 1);
      return gb_cli_fail (error);
    }
  GbTokenStream train = { (const gint32 *) train_ids->data, weights, train_ids->len };
  g_autoptr (GArray) held_ids = NULL;
  GbTokenStream held = { 0 };
  if (heldout != NULL)
    {
      held_ids = encode_file (tok, heldout, &error);
      if (held_ids == NULL)
        return gb_cli_fail (error);
      if (held_ids->len <= opt.seq_len + 1)
        {
          g_set_error (&error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: %u tokens, not enough for one sequence of %u", heldout,
                       held_ids->len, opt.seq_len + 1);
          return gb_cli_fail (error);
        }
      held = (GbTokenStream) { (const gint32 *) held_ids->data, NULL, held_ids->len };
    }

  if (g_mkdir_with_parents (output, 0755) != 0)
    {
      g_set_error (&error, GB_ERROR, GB_ERROR_IO, "%s: cannot create the folder: %s", output, g_strerror (errno));
      return gb_cli_fail (error);
    }
  printf ("model: %u layers, %u heads, width %u, context %u, vocabulary %u: %" G_GSIZE_FORMAT " parameters\n",
          shape->n_layer, shape->n_head, shape->n_embd, shape->n_positions, shape->n_vocab, gb_net_get_n_params (net));
  g_autofree char *held_note = held_ids ? g_strdup_printf (", %u held-out", held_ids->len) : g_strdup ("");
  g_autofree char *resume_note =
    ckpt_name ? g_strdup_printf (" (resuming at step %" G_GUINT64_FORMAT ")", gb_trainer_get_step (trainer)) : g_strdup ("");
  printf ("data: %u training tokens%s; %u x %u tokens per step, %" G_GUINT64_FORMAT " steps%s\n", train_ids->len, held_note,
          opt.batch_size, opt.seq_len, opt.max_steps, resume_note);
  fflush (stdout);

  g_autofree char *ckpt_dir = g_build_filename (output, "checkpoint", NULL);
  g_autofree char *log_path = g_build_filename (output, "train_log.jsonl", NULL);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  if (resume && !trim_log (log_path, gb_trainer_get_step (trainer), &error))
    return gb_cli_fail (error);
  RunState st = { cancellable, fopen (log_path, resume ? "a" : "w"), (guint) log_every, (guint64) stop_after };
  /* Ctrl+C or SIGTERM: finish the step, checkpoint, exit. A second one
   * kills at once (SA_RESETHAND). */
  struct sigaction sa = { .sa_handler = on_sigint, .sa_flags = SA_RESETHAND }, old_int, old_term;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, &old_int);
  sigaction (SIGTERM, &sa, &old_term);
  gboolean ok = gb_trainer_run (trainer, &train, heldout ? &held : NULL, ckpt_dir, vocab_dir, cancellable, on_progress, &st,
                                &error);
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  if (st.log != NULL)
    fclose (st.log);
  if (!ok)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && !interrupted)
        {
          printf ("stopped at step %" G_GUINT64_FORMAT "; continue with --resume (checkpoint in %s)\n",
                  gb_trainer_get_step (trainer), ckpt_dir);
          return GB_CLI_OK;
        }
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_prefix_error (&error, "interrupted; continue with --resume (checkpoint in %s): ", ckpt_dir);
      return gb_cli_fail (error);
    }

  /* The final model beside the checkpoint. */
  if (!gb_net_save (gb_trainer_get_net (trainer), output, dtype, &error) || !gb_copy_vocab_files (vocab_dir, output, &error))
    return gb_cli_fail (error);
  printf ("saved %s\n", output);
  return GB_CLI_OK;
}
