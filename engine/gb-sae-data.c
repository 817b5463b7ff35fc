/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-model-private.h"
#include "gb-sae.h"

#define MAX_DOC_BYTES (16u << 20)
#define EOT_LINE "<|endoftext|>"

/* ---- Corpus ---- */

typedef enum
{
  CORPUS_LINES,
  CORPUS_SEPARATED,
  CORPUS_JSONL,
} CorpusMode;

struct _GbCorpus
{
  char      *path;
  FILE      *file;
  CorpusMode mode;
  guint64    line;
  char      *buf;
  size_t     buf_cap;
};

static gboolean
detect_mode (GbCorpus *self,
             GError  **error)
{
  char head[65536];
  size_t n = fread (head, 1, sizeof head - 1, self->file);

  if (ferror (self->file))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: could not read: %s", self->path, g_strerror (errno));
      return FALSE;
    }
  head[n] = '\0';
  rewind (self->file);
  const char *p = head;
  while (*p && g_ascii_isspace (*p))
    p++;
  if (g_str_has_suffix (self->path, ".jsonl") || *p == '{')
    self->mode = CORPUS_JSONL;
  else if (g_str_has_prefix (head, EOT_LINE "\n") || strstr (head, "\n" EOT_LINE "\n") != NULL
           || g_str_has_suffix (head, "\n" EOT_LINE))
    self->mode = CORPUS_SEPARATED;
  else
    self->mode = CORPUS_LINES;
  return TRUE;
}

GbCorpus *
gb_corpus_open (const char *path,
                GError    **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: is a folder, not a corpus file", path);
      return NULL;
    }
  FILE *f = fopen (path, "rb");
  if (f == NULL)
    {
      int e = errno;
      g_set_error (error, GB_ERROR, e == ENOENT ? GB_ERROR_MISSING : GB_ERROR_IO, "%s: could not open: %s", path,
                   g_strerror (e));
      return NULL;
    }
  g_autoptr (GbCorpus) self = g_new0 (GbCorpus, 1);
  self->path = g_strdup (path);
  self->file = f;
  if (!detect_mode (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

void
gb_corpus_free (GbCorpus *self)
{
  if (self == NULL)
    return;
  if (self->file)
    fclose (self->file);
  g_free (self->path);
  free (self->buf);
  g_free (self);
}

gboolean
gb_corpus_rewind (GbCorpus *self,
                  GError  **error)
{
  (void) error;
  rewind (self->file);
  self->line = 0;
  return TRUE;
}

/* The next line without its newline, or NULL at the end (or on error). */
static const char *
read_line (GbCorpus *self,
           gssize   *len,
           GError  **error)
{
  ssize_t n = getline (&self->buf, &self->buf_cap, self->file);
  if (n < 0)
    {
      if (ferror (self->file))
        g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: could not read: %s", self->path, g_strerror (errno));
      return NULL;
    }
  self->line++;
  if ((size_t) n > MAX_DOC_BYTES)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: line %" G_GUINT64_FORMAT " is longer than %u MiB", self->path,
                   self->line, MAX_DOC_BYTES >> 20);
      return NULL;
    }
  while (n > 0 && (self->buf[n - 1] == '\n' || self->buf[n - 1] == '\r'))
    self->buf[--n] = '\0';
  *len = n;
  return self->buf;
}

static gboolean
check_utf8 (GbCorpus   *self,
            const char *text,
            gssize      len,
            GError    **error)
{
  const char *end;
  if (g_utf8_validate (text, len, &end))
    return TRUE;
  g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: line %" G_GUINT64_FORMAT ": invalid UTF-8 at byte %ld", self->path,
               self->line, (long) (end - text));
  return FALSE;
}

static char *
next_jsonl (GbCorpus *self,
            GError  **error)
{
  const char *line;
  gssize len;

  while ((line = read_line (self, &len, error)) != NULL)
    {
      if (len == 0 || strspn (line, " \t") == (size_t) len)
        continue;
      g_autoptr (JsonParser) parser = json_parser_new ();
      g_autoptr (GError) local = NULL;
      if (!check_utf8 (self, line, len, error))
        return NULL;
      if (!gb_json_parser_load (parser, line, len, &local))
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: line %" G_GUINT64_FORMAT ": not valid JSON: %s", self->path,
                       self->line, local->message);
          return NULL;
        }
      JsonNode *root = json_parser_get_root (parser);
      JsonNode *text = root && JSON_NODE_HOLDS_OBJECT (root) ? json_object_get_member (json_node_get_object (root), "text") : NULL;
      if (text == NULL || !JSON_NODE_HOLDS_VALUE (text) || json_node_get_value_type (text) != G_TYPE_STRING)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: line %" G_GUINT64_FORMAT ": expected an object with a “text” string",
                       self->path, self->line);
          return NULL;
        }
      if (*json_node_get_string (text) == '\0')
        continue;
      return g_strdup (json_node_get_string (text));
    }
  return NULL;
}

char *
gb_corpus_next (GbCorpus *self,
                GError  **error)
{
  const char *line;
  gssize len;

  g_return_val_if_fail (self != NULL, NULL);
  if (self->mode == CORPUS_JSONL)
    return next_jsonl (self, error);
  if (self->mode == CORPUS_LINES)
    {
      while ((line = read_line (self, &len, error)) != NULL)
        {
          if (len == 0 || g_str_equal (line, EOT_LINE))
            continue;
          if (!check_utf8 (self, line, len, error))
            return NULL;
          return g_strndup (line, len);
        }
      return NULL;
    }
  GString *doc = g_string_new (NULL);
  while ((line = read_line (self, &len, error)) != NULL)
    {
      if (g_str_equal (line, EOT_LINE))
        {
          if (doc->len > 0)
            break;
          continue;
        }
      if (!check_utf8 (self, line, len, error))
        break;
      if (doc->len + len > MAX_DOC_BYTES)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: the document ending at line %" G_GUINT64_FORMAT " is longer than %u MiB",
                       self->path, self->line, MAX_DOC_BYTES >> 20);
          break;
        }
      if (doc->len > 0)
        g_string_append_c (doc, '\n');
      g_string_append_len (doc, line, len);
    }
  if ((error && *error) || doc->len == 0)
    {
      g_string_free (doc, TRUE);
      return NULL;
    }
  return g_string_free (doc, FALSE);
}

/* ---- Token windows ---- */

struct _GbTokenWindows
{
  GbCorpus    *corpus;
  GbTokenizer *tokenizer;
  guint        max_window;
  GArray      *doc;       /* gint32, current document (EOT first) */
  guint        offset;
  guint64      n_docs;
};

GbTokenWindows *
gb_token_windows_new (GbModel    *model,
                      const char *corpus_path,
                      guint       max_window,
                      GError    **error)
{
  GbCorpus *corpus = gb_corpus_open (corpus_path, error);
  if (corpus == NULL)
    return NULL;
  GbTokenWindows *self = g_new0 (GbTokenWindows, 1);
  self->corpus = corpus;
  self->tokenizer = gb_tokenizer_ref (gb_model_get_tokenizer (model));
  self->max_window = MAX (2, MIN (max_window, gb_model_get_config (model)->n_positions));
  self->doc = g_array_new (FALSE, FALSE, sizeof (gint32));
  return self;
}

void
gb_token_windows_free (GbTokenWindows *self)
{
  if (self == NULL)
    return;
  gb_corpus_free (self->corpus);
  gb_tokenizer_unref (self->tokenizer);
  g_array_unref (self->doc);
  g_free (self);
}

/* Each document starts with <|endoftext|> (as in training, where it
 * separates documents), so the first window of a document is a fresh context. */
static gboolean
load_doc (GbTokenWindows *self,
          gboolean        wrap,
          GError        **error)
{
  for (guint attempt = 0; attempt < 2; attempt++)
    {
      g_autoptr (GError) local = NULL;
      g_autofree char *text = gb_corpus_next (self->corpus, &local);
      if (text == NULL)
        {
          if (local)
            {
              g_propagate_error (error, g_steal_pointer (&local));
              return FALSE;
            }
          if (!wrap || self->n_docs == 0)
            return FALSE;
          gb_corpus_rewind (self->corpus, NULL);
          continue;
        }
      g_autoptr (GArray) ids = gb_tokenizer_encode (self->tokenizer, text, -1, TRUE, error);
      if (ids == NULL)
        {
          g_prefix_error (error, "%s: document %" G_GUINT64_FORMAT ": ", self->corpus->path, self->n_docs + 1);
          return FALSE;
        }
      g_array_set_size (self->doc, 0);
      gint32 eot = gb_tokenizer_get_eot (self->tokenizer);
      if (eot != GB_TOKEN_NONE)
        g_array_append_val (self->doc, eot);
      g_array_append_vals (self->doc, ids->data, ids->len);
      self->offset = 0;
      self->n_docs++;
      return TRUE;
    }
  return FALSE;
}

guint
gb_token_windows_next (GbTokenWindows *self,
                       gint32         *tokens,
                       gboolean        wrap,
                       GError        **error)
{
  guint n = 0;

  /* Documents packed back to back, each after its <|endoftext|>, as the
   * model saw them in training; a window of fewer than two tokens (one
   * prediction, one activation past the sink position) is dropped. */
  while (n < self->max_window)
    {
      if (self->offset >= self->doc->len)
        {
          g_autoptr (GError) local = NULL;
          if (!load_doc (self, wrap, &local))
            {
              if (local != NULL)
                {
                  g_propagate_error (error, g_steal_pointer (&local));
                  return 0;
                }
              break;
            }
        }
      const guint take = MIN (self->max_window - n, self->doc->len - self->offset);
      memcpy (tokens + n, &g_array_index (self->doc, gint32, self->offset), take * sizeof (gint32));
      n += take;
      self->offset += take;
    }
  return n >= 2 ? n : 0;
}

/* ---- Activations ---- */

/* Records the hook of @sae's kind at @layer for a window; returns the trace
 * (with all logits when @logits). */
static GbTrace *
run_window (GbModel      *model,
            GbHook        hook,
            guint         layer,
            const gint32 *tokens,
            guint         T,
            gboolean      logits,
            const GbIntervention *iv,
            guint         n_iv,
            GCancellable *cancellable,
            GError      **error)
{
  GbRecord rec = { { 0 }, logits ? GB_LOGITS_ALL : GB_LOGITS_NONE };
  if (hook != GB_N_HOOKS)
    rec.hooks[hook] = (guint64) 1 << layer;
  return gb_model_forward (model, tokens, T, &rec, iv, n_iv, cancellable, error);
}

/* Mean next-token cross-entropy over logits [T, V] predicting tokens[1..T). */
static double
window_nll (const float  *logits,
            const gint32 *tokens,
            guint         T,
            guint         V)
{
  double sum = 0;
  for (guint t = 0; t + 1 < T; t++)
    {
      const float *row = logits + (gsize) t * V;
      float mx = row[0];
      for (guint v = 1; v < V; v++)
        mx = MAX (mx, row[v]);
      double s = 0;
      for (guint v = 0; v < V; v++)
        s += exp ((double) row[v] - mx);
      sum += log (s) + mx - row[tokens[t + 1]];
    }
  return sum;
}

/* x^ in raw space for the rows of x [T, d] (position 0 kept as is). */
static void
reconstruct (const GbSae *sae,
             const float *x,
             float       *xhat,
             float       *z,
             guint        T)
{
  g_autofree float *means = g_new (float, T);
  memcpy (xhat, x, (gsize) T * sae->d_in * sizeof (float));
  gb_sae_preprocess (sae, xhat + sae->d_in, T - 1, means);
  gb_sae_encode (sae, z, xhat + sae->d_in, T - 1);
  gb_sae_decode (sae, xhat + sae->d_in, z, T - 1);
  gb_sae_postprocess (sae, xhat + sae->d_in, T - 1, means);
}

gboolean
gb_sae_splice_loss (GbModel      *model,
                    const GbSae  *sae,
                    const gint32 *tokens,
                    guint         T,
                    double       *clean_loss,
                    double       *spliced_loss,
                    GError      **error)
{
  const guint V = gb_model_get_config (model)->n_vocab, d = sae->d_in;

  if (!gb_sae_check_model (sae, model, error))
    return FALSE;
  if (T < 2)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "the splice loss needs at least two tokens");
      return FALSE;
    }
  g_autoptr (GbTrace) clean = run_window (model, sae->hook, sae->layer, tokens, T, TRUE, NULL, 0, NULL, error);
  if (clean == NULL)
    return FALSE;
  g_autofree float *xhat = g_new (float, (gsize) T * d);
  g_autofree float *z = g_new (float, (gsize) T * sae->d_sae);
  reconstruct (sae, gb_trace_get (clean, sae->hook, sae->layer), xhat, z, T);
  GbIntervention iv = { .kind = GB_INTERVENE_REPLACE, .hook = sae->hook, .layer = sae->layer,
                        .start_pos = 1, .n_positions = T - 1, .values = xhat + d };
  g_autoptr (GbTrace) spliced = run_window (model, GB_N_HOOKS, 0, tokens, T, TRUE, &iv, 1, NULL, error);
  if (spliced == NULL)
    return FALSE;
  *clean_loss = window_nll (clean->logits, tokens, T, V) / (T - 1);
  *spliced_loss = window_nll (spliced->logits, tokens, T, V) / (T - 1);
  return TRUE;
}

static gboolean
evaluate_windows (GbModel        *model,
                  const GbSae    *sae,
                  GbTokenWindows *windows,
                  guint64         max_tokens,
                  GbSaeMetrics   *m,
                  GCancellable   *cancellable,
                  GError        **error)
{
  const guint d = sae->d_in, ds = sae->d_sae, V = gb_model_get_config (model)->n_vocab;
  const guint W = windows->max_window;
  g_autofree gint32 *tokens = g_new (gint32, W);
  g_autofree float *xhat = g_new (float, (gsize) W * d);
  g_autofree float *z = g_new (float, (gsize) W * ds);
  g_autofree guint8 *fired = g_new0 (guint8, ds);
  g_autofree double *sum_x = g_new0 (double, d);
  double sum_sq = 0, err = 0, l0 = 0, clean = 0, spliced = 0;
  guint64 n_act = 0, n_pred = 0;
  guint T;

  g_autoptr (GError) local = NULL;
  memset (m, 0, sizeof *m);
  while (n_act < max_tokens && (T = gb_token_windows_next (windows, tokens, FALSE, &local)) > 0)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      g_autoptr (GbTrace) tr = run_window (model, sae->hook, sae->layer, tokens, T, TRUE, NULL, 0, cancellable, error);
      if (tr == NULL)
        return FALSE;
      const float *x = gb_trace_get (tr, sae->hook, sae->layer);
      reconstruct (sae, x, xhat, z, T);
      for (guint t = 1; t < T; t++)
        for (guint i = 0; i < d; i++)
          {
            const double v = x[(gsize) t * d + i], e = v - xhat[(gsize) t * d + i];
            sum_x[i] += v;
            sum_sq += v * v;
            err += e * e;
          }
      for (gsize q = 0; q < (gsize) (T - 1) * ds; q++)
        if (z[q] != 0)
          {
            l0++;
            fired[q % ds] = 1;
          }
      GbIntervention iv = { .kind = GB_INTERVENE_REPLACE, .hook = sae->hook, .layer = sae->layer,
                            .start_pos = 1, .n_positions = T - 1, .values = xhat + d };
      g_autoptr (GbTrace) sp = run_window (model, GB_N_HOOKS, 0, tokens, T, TRUE, &iv, 1, cancellable, error);
      if (sp == NULL)
        return FALSE;
      clean += window_nll (tr->logits, tokens, T, V);
      spliced += window_nll (sp->logits, tokens, T, V);
      n_pred += T - 1;
      n_act += T - 1;
    }
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (n_act == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: no tokens to evaluate on", windows->corpus->path);
      return FALSE;
    }
  double total = sum_sq;
  for (guint i = 0; i < d; i++)
    total -= sum_x[i] * sum_x[i] / n_act;
  guint64 n_fired = 0;
  for (guint j = 0; j < ds; j++)
    n_fired += fired[j];
  m->n_tokens = n_act;
  m->explained_variance = total > 0 ? 1.0 - err / total : NAN;
  m->mean_l0 = l0 / n_act;
  m->dead_fraction = 1.0 - (double) n_fired / ds;
  m->clean_loss = clean / n_pred;
  m->spliced_loss = spliced / n_pred;
  m->loss_increase = m->spliced_loss - m->clean_loss;
  return TRUE;
}

gboolean
gb_sae_evaluate (GbModel      *model,
                 const GbSae  *sae,
                 const char   *corpus_path,
                 guint64       max_tokens,
                 GbSaeMetrics *metrics,
                 GCancellable *cancellable,
                 GError      **error)
{
  if (!gb_sae_check_model (sae, model, error))
    return FALSE;
  g_autoptr (GbTokenWindows) w = gb_token_windows_new (model, corpus_path, G_MAXUINT, error);
  if (w == NULL)
    return FALSE;
  return evaluate_windows (model, sae, w, max_tokens, metrics, cancellable, error);
}

/* ---- Training on a model ---- */

void
gb_sae_run_options_init (GbSaeRunOptions *o)
{
  memset (o, 0, sizeof *o);
  gb_sae_train_options_init (&o->train);
  o->hook = GB_HOOK_RESID_POST;
  o->layer = 0;
  o->n_tokens = 2000000;
  o->buffer_tokens = 1 << 16;
  o->heldout_tokens = 20000;
  o->normalize = TRUE;
  o->checkpoint_every = 0;
}

/* Fills @buf [n, d] with activations (positions past the first of each
 * window) into *n_out; FALSE on error or cancel. */
static gboolean
collect (GbModel        *model,
         GbHook          hook,
         guint           layer,
         GbTokenWindows *windows,
         float          *buf,
         guint           n,
         guint          *n_out,
         GCancellable   *cancellable,
         GError        **error)
{
  const guint d = gb_model_hook_width (model, hook);
  g_autofree gint32 *tokens = g_new (gint32, windows->max_window);
  g_autoptr (GError) local = NULL;
  guint have = 0, T;

  *n_out = 0;
  while (have < n)
    {
      T = gb_token_windows_next (windows, tokens, TRUE, &local);
      if (T == 0)
        {
          if (local == NULL)
            g_set_error (&local, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: no documents to train on", windows->corpus->path);
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      g_autoptr (GbTrace) tr = run_window (model, hook, layer, tokens, T, FALSE, NULL, 0, cancellable, error);
      if (tr == NULL)
        return FALSE;
      guint take = MIN (T - 1, n - have);
      memcpy (buf + (gsize) have * d, gb_trace_get (tr, hook, layer) + d, (gsize) take * d * sizeof (float));
      have += take;
    }
  *n_out = have;
  return TRUE;
}

static void
set_norm_stats (GbSae       *sae,
                const float *x,
                guint        n)
{
  const guint d = sae->d_in;
  g_autofree double *s = g_new0 (double, d), *s2 = g_new0 (double, d);
  g_autofree float *row = g_new (float, d);

  for (guint t = 0; t < n; t++)
    {
      memcpy (row, x + (gsize) t * d, d * sizeof (float));
      if (sae->center)
        {
          double m = 0;
          for (guint i = 0; i < d; i++)
            m += row[i];
          for (guint i = 0; i < d; i++)
            row[i] -= (float) (m / d);
        }
      for (guint i = 0; i < d; i++)
        {
          s[i] += row[i];
          s2[i] += (double) row[i] * row[i];
        }
    }
  sae->norm_mean = g_new (float, d);
  sae->norm_std = g_new (float, d);
  for (guint i = 0; i < d; i++)
    {
      double mu = s[i] / n, var = s2[i] / n - mu * mu;
      sae->norm_mean[i] = (float) mu;
      sae->norm_std[i] = (float) sqrt (MAX (var, 1e-12)) + 1e-6f;
    }
}

static void
report (GbSaeProgressFunc progress,
        gpointer          data,
        GbSaeProgress    *p)
{
  if (progress)
    progress (p, data);
}

GbSae *
gb_sae_train_on_model (GbModel               *model,
                       const GbSaeRunOptions *o,
                       GbSaeProgressFunc      progress,
                       gpointer               progress_data,
                       GCancellable          *cancellable,
                       GError               **error)
{
  g_return_val_if_fail (o->corpus_path != NULL && o->output_dir != NULL, NULL);
  const GbConfig *cfg = gb_model_get_config (model);
  const guint d = gb_model_hook_width (model, o->hook);
  const guint B = MAX (1u, o->train.batch_size);
  const guint nbuf = (guint) MAX (MIN ((guint64) o->buffer_tokens, o->n_tokens), (guint64) B);
  g_autoptr (GbSaeTrainer) trainer = NULL;
  g_autoptr (GbTokenWindows) held = NULL;
  GbSaeProgress p = { 0 };

  if (o->layer >= cfg->n_layer || o->hook == GB_HOOK_PATTERN || d == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "layer %u is past the model's %u layers", o->layer, cfg->n_layer);
      return NULL;
    }
  if (o->train.kind == GB_SAE_JUMPRELU)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "Glassbox trains standard and topk SAEs, not jumprelu");
      return NULL;
    }
  if (o->train.kind == GB_SAE_TOPK && (o->train.k == 0 || o->train.k > o->train.d_sae))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "k must be between 1 and the SAE width %u", o->train.d_sae);
      return NULL;
    }
  if (o->train.d_sae == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "the SAE needs at least one latent");
      return NULL;
    }
  g_autoptr (GbTokenWindows) windows = gb_token_windows_new (model, o->corpus_path, G_MAXUINT, error);
  if (windows == NULL)
    return NULL;
  g_autofree float *buf = g_new (float, (gsize) nbuf * d);
  g_autofree float *batch = g_new (float, (gsize) B * d);
  g_autofree guint *perm = g_new (guint, nbuf);
  guint64 done = 0;

  p.n_tokens = o->n_tokens;
  p.phase = "collecting";
  report (progress, progress_data, &p);
  if (o->resume)
    {
      trainer = gb_sae_trainer_resume (o->output_dir, &o->train, error);
      if (trainer == NULL)
        return NULL;
      GbSae *sae = gb_sae_trainer_get_sae (trainer);
      if (sae->hook != o->hook || sae->layer != o->layer || sae->d_in != d)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "%s: the checkpoint is for another hook or model", o->output_dir);
          return NULL;
        }
      done = gb_sae_trainer_get_step (trainer) * B;
      /* Skip what the interrupted run consumed, so the run sees new tokens. */
      for (guint64 skipped = 0; skipped < done;)
        {
          g_autofree gint32 *tok = g_new (gint32, windows->max_window);
          g_autoptr (GError) local = NULL;
          guint T = gb_token_windows_next (windows, tok, TRUE, &local);
          if (T == 0)
            {
              if (local == NULL)
                g_set_error (&local, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: no documents", o->corpus_path);
              g_propagate_error (error, g_steal_pointer (&local));
              return NULL;
            }
          skipped += T - 1;
        }
    }
  g_autoptr (GTimer) timer = g_timer_new ();
  guint64 done_at_start = done;
  g_autoptr (GRand) rng = g_rand_new_with_seed ((guint32) (o->train.seed + 7919 * done));
  while (done < o->n_tokens)
    {
      guint n;
      if (!collect (model, o->hook, o->layer, windows, buf, nbuf, &n, cancellable, error))
        goto cancelled;
      if (trainer == NULL)
        {
          GbSae *sae = gb_sae_new (o->train.kind, d, o->train.d_sae, o->train.k);
          sae->hook = o->hook;
          sae->layer = o->layer;
          sae->center = o->center;
          sae->model_name = g_strdup (gb_model_get_name (model));
          gb_sae_init_random (sae, o->train.seed);
          if (o->normalize)
            set_norm_stats (sae, buf, n);
          /* b_dec starts at the data's mean (in the SAE's input space). */
          g_autofree float *tmp = g_memdup2 (buf, (gsize) n * d * sizeof (float));
          gb_sae_preprocess (sae, tmp, n, NULL);
          for (guint i = 0; i < d; i++)
            {
              double s = 0;
              for (guint t = 0; t < n; t++)
                s += tmp[(gsize) t * d + i];
              sae->b_dec[i] = (float) (s / n);
            }
          trainer = gb_sae_trainer_new (sae, &o->train);
        }
      GbSae *sae = gb_sae_trainer_get_sae (trainer);
      gb_sae_preprocess (sae, buf, n, NULL);
      for (guint i = 0; i < n; i++)
        perm[i] = i;
      for (guint i = n - 1; i > 0; i--)
        {
          guint j = g_rand_int_range (rng, 0, (gint32) i + 1), t = perm[i];
          perm[i] = perm[j];
          perm[j] = t;
        }
      p.phase = "training";
      for (guint off = 0; off + B <= n && done < o->n_tokens; off += B)
        {
          if (g_cancellable_is_cancelled (cancellable))
            {
              g_cancellable_set_error_if_cancelled (cancellable, error);
              goto cancelled;
            }
          for (guint b = 0; b < B; b++)
            memcpy (batch + (gsize) b * d, buf + (gsize) perm[off + b] * d, d * sizeof (float));
          GbSaeStepStats st;
          gb_sae_trainer_step (trainer, batch, B, &st);
          done += B;
          const double el = g_timer_elapsed (timer, NULL);
          p.tokens = done;
          p.step = gb_sae_trainer_get_step (trainer);
          p.loss = st.loss;
          p.mse = st.mse;
          p.l0 = st.l0;
          p.explained_variance = st.var > 0 ? 1 - st.mse / st.var : NAN;
          p.dead_fraction = gb_sae_trainer_dead_fraction (trainer);
          p.tokens_per_s = el > 0 ? (done - done_at_start) / el : 0;
          p.eta_s = p.tokens_per_s > 0 ? (done < o->n_tokens ? o->n_tokens - done : 0) / p.tokens_per_s : NAN;
          report (progress, progress_data, &p);
          if (o->checkpoint_every > 0 && p.step % o->checkpoint_every == 0
              && !gb_sae_trainer_save (trainer, o->output_dir, error))
            return NULL;
        }
    }
  if (!gb_sae_trainer_save (trainer, o->output_dir, error))
    return NULL;

  /* Held-out metrics */
  p.phase = "evaluating";
  report (progress, progress_data, &p);
  GbSae *sae = gb_sae_trainer_get_sae (trainer);
  GbSaeMetrics m;
  if (o->heldout_path)
    {
      held = gb_token_windows_new (model, o->heldout_path, G_MAXUINT, error);
      if (held == NULL)
        return NULL;
    }
  if (o->heldout_tokens > 0 && !evaluate_windows (model, sae, held ? held : windows, o->heldout_tokens, &m, cancellable, error))
    return NULL;
  if (o->heldout_tokens > 0)
    {
      sae->explained_variance = m.explained_variance;
      sae->mean_l0 = m.mean_l0;
      sae->dead_fraction = gb_sae_trainer_dead_fraction (trainer);
      sae->loss_increase = m.loss_increase;
      sae->clean_loss = m.clean_loss;
    }
  sae->trained_tokens = done;
  if (!gb_sae_save (sae, o->output_dir, error))
    return NULL;
  return gb_sae_copy (sae);

cancelled:
  if (trainer != NULL)
    {
      g_autoptr (GError) local = NULL;
      gb_sae_trainer_get_sae (trainer)->trained_tokens = done;
      if (!gb_sae_trainer_save (trainer, o->output_dir, &local))
        g_warning ("could not save the checkpoint: %s", local->message);
    }
  return NULL;
}
