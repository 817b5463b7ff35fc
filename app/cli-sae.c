/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gb-cli.h"
#include "gb-kernels.h"

/* glassbox-cli sae train | features | eval: sparse autoencoders over one
 * hook point, in SAELens' file layout. */

static gboolean
parse_hook_kind (const char *name,
                 GbHook     *hook)
{
  static const struct { const char *name; GbHook hook; } hooks[] = {
    { "resid_pre", GB_HOOK_RESID_PRE }, { "resid_mid", GB_HOOK_RESID_MID },
    { "resid_post", GB_HOOK_RESID_POST }, { "mlp_out", GB_HOOK_MLP_OUT },
    { "attn_out", GB_HOOK_ATTN_OUT },
  };
  for (guint i = 0; i < G_N_ELEMENTS (hooks); i++)
    if (g_str_equal (name, hooks[i].name) || g_str_equal (name, gb_hook_name (hooks[i].hook)))
      {
        *hook = hooks[i].hook;
        return TRUE;
      }
  return FALSE;
}

typedef struct
{
  GTimer *timer;
  double  last;
} TrainReport;

static void
train_progress_cb (const GbSaeProgress *p,
                   gpointer             data)
{
  TrainReport *r = data;
  const double now = g_timer_elapsed (r->timer, NULL);
  if (g_str_equal (p->phase, "training") && now - r->last < 2.0 && p->tokens < p->n_tokens)
    return;
  r->last = now;
  if (g_str_equal (p->phase, "training"))
    g_printerr ("step %" G_GUINT64_FORMAT "  tokens %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "  loss %.4f  mse %.4f  EV %.3f  L0 %.1f  dead %.1f%%  %.0f tok/s  ETA %.0fs\n",
                p->step, p->tokens, p->n_tokens, p->loss, p->mse, p->explained_variance, p->l0, 100 * p->dead_fraction,
                p->tokens_per_s, isnan (p->eta_s) ? 0 : p->eta_s);
  else
    g_printerr ("%s...\n", p->phase);
}

static void
print_metrics_json (JsonBuilder       *b,
                    const GbSaeMetrics *m)
{
  const struct { const char *name; double v; } f[] = {
    { "explained_variance", m->explained_variance }, { "mean_l0", m->mean_l0 },
    { "dead_fraction", m->dead_fraction }, { "clean_loss", m->clean_loss },
    { "spliced_loss", m->spliced_loss }, { "loss_increase", m->loss_increase },
  };
  for (guint i = 0; i < G_N_ELEMENTS (f); i++)
    {
      json_builder_set_member_name (b, f[i].name);
      if (isnan (f[i].v))
        json_builder_add_null_value (b);
      else
        json_builder_add_double_value (b, f[i].v);
    }
}

static int
sae_train (int    argc,
           char **argv)
{
  g_autofree char *model_dir = NULL, *corpus = NULL, *output = NULL, *hook_name = NULL, *heldout = NULL;
  gint layer = -1, latent = 0, topk = 0, batch = 0, threads = 0, heldout_tokens = -1, resample = -1;
  gint64 tokens = 0, seed = 1;
  double l1 = NAN, lr = 0;
  gboolean no_norm = FALSE, center = FALSE, resume = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "layer", 'l', 0, G_OPTION_ARG_INT, &layer, "Block whose activations to encode", "L" },
    { "hook", 0, 0, G_OPTION_ARG_STRING, &hook_name, "resid_pre, resid_mid, resid_post (default), mlp_out or attn_out", "HOOK" },
    { "corpus", 'c', 0, G_OPTION_ARG_FILENAME, &corpus, "Text (documents separated by <|endoftext|> lines, or one per line) or JSONL with \"text\"", "FILE" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "SAE folder to write (SAELens layout)", "DIR" },
    { "latent", 0, 0, G_OPTION_ARG_INT, &latent, "Number of latents (default 8 x the hook's width)", "N" },
    { "l1", 0, 0, G_OPTION_ARG_DOUBLE, &l1, "Classic L1 SAE with this coefficient", "C" },
    { "topk", 0, 0, G_OPTION_ARG_INT, &topk, "TopK SAE with K active latents (the default, K = 32)", "K" },
    { "tokens", 0, 0, G_OPTION_ARG_INT64, &tokens, "Training budget in tokens (default 1,000,000)", "N" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Tokens per step (default 512)", "N" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "Adam learning rate (default 4e-4)", "LR" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 1)", "S" },
    { "resample-every", 0, 0, G_OPTION_ARG_INT, &resample, "Steps between dead-latent resamplings (default 500, 0 = never)", "N" },
    { "heldout", 0, 0, G_OPTION_ARG_FILENAME, &heldout, "Held-out corpus for the metrics (default: the corpus past the budget)", "FILE" },
    { "heldout-tokens", 0, 0, G_OPTION_ARG_INT, &heldout_tokens, "Held-out tokens for the metrics (default 20,000; 0 = none)", "N" },
    { "no-normalize", 0, 0, G_OPTION_ARG_NONE, &no_norm, "Do not normalise each dimension", NULL },
    { "center", 0, 0, G_OPTION_ARG_NONE, &center, "Mean-centre each token's activation first (TransformerLens' centred residual)", NULL },
    { "resume", 0, 0, G_OPTION_ARG_NONE, &resume, "Continue the checkpoint in --output", NULL },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "BLAS threads (default: one per core)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- train a sparse autoencoder on a model's activations");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (layer < 0 || corpus == NULL || output == NULL)
    return gb_cli_usage ("--layer L, --corpus FILE and --output DIR are required");
  if (!isnan (l1) && topk > 0)
    return gb_cli_usage ("--l1 and --topk exclude each other");
  if ((!isnan (l1) && !(l1 >= 0)) || topk < 0 || latent < 0 || tokens < 0 || batch < 0 || lr < 0 || heldout_tokens < -1)
    return gb_cli_usage ("--l1, --topk, --latent, --tokens, --batch, --lr and --heldout-tokens must not be negative");
  GbSaeRunOptions o;
  gb_sae_run_options_init (&o);
  if (hook_name && !parse_hook_kind (hook_name, &o.hook))
    return gb_cli_usage ("unknown --hook “%s” (resid_pre, resid_mid, resid_post, mlp_out, attn_out)", hook_name);

  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL)
    return gb_cli_fail (error);
  if (threads > 0)
    gb_blas_set_threads (threads);
  const guint width = gb_model_hook_width (model, o.hook);
  o.layer = (guint) layer;
  o.train.kind = isnan (l1) ? GB_SAE_TOPK : GB_SAE_STANDARD;
  o.train.k = topk > 0 ? (guint) topk : 32;
  if (!isnan (l1))
    o.train.l1 = l1;
  o.train.d_sae = latent > 0 ? (guint) latent : 8 * width;
  if (o.train.kind == GB_SAE_TOPK && o.train.k > o.train.d_sae)
    return gb_cli_usage ("--topk %u is larger than --latent %u", o.train.k, o.train.d_sae);
  o.n_tokens = tokens > 0 ? (guint64) tokens : 1000000;
  if (batch > 0)
    o.train.batch_size = (guint) batch;
  if (lr > 0)
    o.train.lr = lr;
  if (resample >= 0)
    o.train.resample_every = (guint) resample;
  o.train.seed = (guint64) seed;
  o.normalize = !no_norm;
  o.center = center;
  o.resume = resume;
  o.corpus_path = corpus;
  o.heldout_path = heldout;
  if (heldout_tokens >= 0)
    o.heldout_tokens = (guint64) heldout_tokens;
  o.output_dir = output;

  TrainReport r = { g_timer_new (), -10 };
  g_autoptr (GbSae) sae = gb_sae_train_on_model (model, &o, train_progress_cb, &r, NULL, &error);
  const double elapsed = g_timer_elapsed (r.timer, NULL);
  g_timer_destroy (r.timer);
  if (sae == NULL)
    return gb_cli_fail (error);
  printf ("%s: %s SAE on blocks.%u.%s, %u -> %u latents, %" G_GUINT64_FORMAT " tokens in %.1f s\n", output,
          gb_sae_kind_name (sae->kind), sae->layer, gb_hook_name (sae->hook), sae->d_in, sae->d_sae, sae->trained_tokens,
          elapsed);
  if (!isnan (sae->explained_variance))
    printf ("held-out: explained variance %.4f, L0 %.1f, dead %.1f%%, next-token loss %.4f -> %.4f (+%.4f)\n",
            sae->explained_variance, sae->mean_l0, 100 * sae->dead_fraction, sae->clean_loss,
            sae->clean_loss + sae->loss_increase, sae->loss_increase);
  return GB_CLI_OK;
}

static GbSae *
load_sae_for (GbModel    *model,
              const char *dir,
              gboolean    center,
              GError    **error)
{
  GbSae *sae = gb_sae_load (dir, error);
  if (sae == NULL)
    return NULL;
  if (center)
    sae->center = TRUE;
  if (!gb_sae_check_model (sae, model, error))
    {
      gb_sae_free (sae);
      return NULL;
    }
  return sae;
}

static int
sae_eval (int    argc,
          char **argv)
{
  g_autofree char *model_dir = NULL, *sae_dir = NULL, *corpus = NULL;
  gint64 tokens = 20000;
  gboolean json = FALSE, center = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "sae", 's', 0, G_OPTION_ARG_FILENAME, &sae_dir, "SAE folder (SAELens layout)", "DIR" },
    { "corpus", 'c', 0, G_OPTION_ARG_FILENAME, &corpus, "Held-out text", "FILE" },
    { "tokens", 0, 0, G_OPTION_ARG_INT64, &tokens, "Tokens to evaluate on (default 20,000)", "N" },
    { "center", 0, 0, G_OPTION_ARG_NONE, &center, "Mean-centre each token first (for SAEs trained on TransformerLens' centred residual)", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- explained variance, L0, dead latents and the spliced-in loss of an SAE");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (sae_dir == NULL || corpus == NULL)
    return gb_cli_usage ("--sae DIR and --corpus FILE are required");
  if (tokens <= 0)
    return gb_cli_usage ("--tokens must be positive");
  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL)
    return gb_cli_fail (error);
  g_autoptr (GbSae) sae = load_sae_for (model, sae_dir, center, &error);
  if (sae == NULL)
    return gb_cli_fail (error);
  GbSaeMetrics m;
  if (!gb_sae_evaluate (model, sae, corpus, (guint64) tokens, &m, NULL, &error))
    return gb_cli_fail (error);
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "n_tokens");
      json_builder_add_int_value (b, (gint64) m.n_tokens);
      print_metrics_json (b, &m);
      json_builder_end_object (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      g_autofree char *out = json_to_string (root, FALSE);
      printf ("%s\n", out);
    }
  else
    printf ("%" G_GUINT64_FORMAT " tokens: explained variance %.4f, L0 %.1f, dead %.1f%%, next-token loss %.4f -> %.4f (+%.4f)\n",
            m.n_tokens, m.explained_variance, m.mean_l0, 100 * m.dead_fraction, m.clean_loss, m.spliced_loss, m.loss_increase);
  return GB_CLI_OK;
}

/* A context as text, the peak token in [[ ]]. */
static char *
context_text (GbTokenizer        *tok,
              const GbSaeContext *c)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < c->n; i++)
    {
      g_autofree char *t = gb_tokenizer_decode (tok, &c->tokens[i], 1, NULL);
      g_autofree char *flat = g_strdelimit (g_strdup (t ? t : "?"), "\n\r\t", ' ');
      g_string_append_printf (s, i == c->peak ? "[[%s]]" : "%s", flat);
    }
  return g_string_free (s, FALSE);
}

static void
json_contexts (JsonBuilder  *b,
               GbTokenizer  *tok,
               GPtrArray    *list)
{
  json_builder_begin_array (b);
  for (guint i = 0; i < list->len; i++)
    {
      const GbSaeContext *c = list->pdata[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "peak");
      json_builder_add_int_value (b, c->peak);
      json_builder_set_member_name (b, "value");
      json_builder_add_double_value (b, c->value);
      json_builder_set_member_name (b, "tokens");
      json_builder_begin_array (b);
      for (guint t = 0; t < c->n; t++)
        {
          g_autofree char *s = gb_tokenizer_decode (tok, &c->tokens[t], 1, NULL);
          json_builder_add_string_value (b, s ? s : "");
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "acts");
      json_builder_begin_array (b);
      for (guint t = 0; t < c->n; t++)
        json_builder_add_double_value (b, c->acts[t]);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static void
json_effects (JsonBuilder  *b,
              GbTokenizer  *tok,
              const gint32 *ids,
              const float  *vals)
{
  json_builder_begin_array (b);
  for (guint r = 0; r < 10 && ids[r] >= 0; r++)
    {
      g_autofree char *s = gb_tokenizer_decode (tok, &ids[r], 1, NULL);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "token");
      json_builder_add_string_value (b, s ? s : "");
      json_builder_set_member_name (b, "logit");
      json_builder_add_double_value (b, vals[r]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static int
cmp_frequency (gconstpointer a,
               gconstpointer b,
               gpointer      data)
{
  const GbSaeFeature *f = data;
  const GbSaeFeature *x = &f[*(const guint *) a], *y = &f[*(const guint *) b];
  return x->frequency < y->frequency ? 1 : x->frequency > y->frequency ? -1 : (int) x->index - (int) y->index;
}

static int
cmp_max (gconstpointer a,
         gconstpointer b,
         gpointer      data)
{
  const GbSaeFeature *f = data;
  const GbSaeFeature *x = &f[*(const guint *) a], *y = &f[*(const guint *) b];
  return x->max_act < y->max_act ? 1 : x->max_act > y->max_act ? -1 : (int) x->index - (int) y->index;
}

/* Features whose top contexts peak on a token containing @needle. */
static gboolean
matches (GbTokenizer        *tok,
         const GbSaeFeature *f,
         const char         *needle)
{
  if (needle == NULL)
    return TRUE;
  g_autofree char *lower = g_utf8_strdown (needle, -1);
  for (guint i = 0; i < f->top->len; i++)
    {
      const GbSaeContext *c = f->top->pdata[i];
      g_autofree char *t = gb_tokenizer_decode (tok, &c->tokens[c->peak], 1, NULL);
      g_autofree char *tl = t ? g_utf8_strdown (t, -1) : NULL;
      if (tl && strstr (tl, lower))
        return TRUE;
    }
  return FALSE;
}

static int
sae_features (int    argc,
              char **argv)
{
  g_autofree char *model_dir = NULL, *sae_dir = NULL, *corpus = NULL, *sort = NULL, *search = NULL;
  gint top = 20, contexts = 10, radius = 8;
  gint64 tokens = 100000;
  gboolean json = FALSE, center = FALSE, no_cache = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "sae", 's', 0, G_OPTION_ARG_FILENAME, &sae_dir, "SAE folder (SAELens layout)", "DIR" },
    { "corpus", 'c', 0, G_OPTION_ARG_FILENAME, &corpus, "Text to find each feature's top contexts in", "FILE" },
    { "top", 'n', 0, G_OPTION_ARG_INT, &top, "Features to print (default 20; 0 = all)", "N" },
    { "sort", 0, 0, G_OPTION_ARG_STRING, &sort, "frequency (default), max or index", "KEY" },
    { "search", 0, 0, G_OPTION_ARG_STRING, &search, "Only features whose top contexts peak on a token containing TEXT", "TEXT" },
    { "tokens", 0, 0, G_OPTION_ARG_INT64, &tokens, "Corpus tokens to analyse (default 100,000)", "N" },
    { "contexts", 0, 0, G_OPTION_ARG_INT, &contexts, "Top contexts kept per feature (default 10)", "K" },
    { "center", 0, 0, G_OPTION_ARG_NONE, &center, "Mean-centre each token first (TransformerLens' centred residual)", NULL },
    { "no-cache", 0, 0, G_OPTION_ARG_NONE, &no_cache, "Recompute even when features.json matches", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- each feature's frequency, top contexts and logit effects");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (sae_dir == NULL || corpus == NULL)
    return gb_cli_usage ("--sae DIR and --corpus FILE are required");
  if (top < 0 || tokens <= 0 || contexts <= 0 || contexts > 100)
    return gb_cli_usage ("--top must not be negative, --tokens must be positive, --contexts between 1 and 100");
  if (sort && !g_str_equal (sort, "frequency") && !g_str_equal (sort, "max") && !g_str_equal (sort, "index"))
    return gb_cli_usage ("unknown --sort “%s” (frequency, max or index)", sort);
  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL)
    return gb_cli_fail (error);
  g_autoptr (GbSae) sae = load_sae_for (model, sae_dir, center, &error);
  if (sae == NULL)
    return gb_cli_fail (error);

  g_autofree char *cache = g_build_filename (sae_dir, "features.json", NULL);
  g_autofree char *key_base = gb_sae_analysis_key (sae, corpus, (guint64) tokens);
  g_autofree char *key = g_strdup_printf ("%s k:%d r:%d c:%d", key_base, contexts, radius, center);
  g_autoptr (GbSaeAnalysis) a = no_cache ? NULL : gb_sae_analysis_load (cache, key, NULL);
  if (a != NULL && a->n_features != sae->d_sae)
    g_clear_pointer (&a, gb_sae_analysis_free); /* not this SAE's: recompute */
  if (a == NULL)
    {
      a = gb_sae_analyze (model, sae, corpus, (guint64) tokens, (guint) contexts, (guint) radius, NULL, NULL, NULL, &error);
      if (a == NULL)
        return gb_cli_fail (error);
      if (!gb_sae_evaluate (model, sae, corpus, MIN ((guint64) tokens, 20000), &a->metrics, NULL, &error))
        return gb_cli_fail (error);
      g_autoptr (GError) cache_error = NULL;
      if (!gb_sae_analysis_save (a, cache, key, &cache_error))
        g_printerr ("glassbox-cli: warning: could not write the cache: %s\n", cache_error->message);
    }

  GbTokenizer *tok = gb_model_get_tokenizer (model);
  g_autofree guint *order = g_new (guint, a->n_features);
  guint n = 0;
  for (guint j = 0; j < a->n_features; j++)
    if (matches (tok, &a->features[j], search))
      order[n++] = j;
  if (sort == NULL || g_str_equal (sort, "frequency"))
    g_qsort_with_data (order, n, sizeof (guint), cmp_frequency, a->features);
  else if (g_str_equal (sort, "max"))
    g_qsort_with_data (order, n, sizeof (guint), cmp_max, a->features);
  const guint shown = top > 0 ? MIN ((guint) top, n) : n;

  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "sae");
      json_builder_add_string_value (b, sae_dir);
      json_builder_set_member_name (b, "n_tokens");
      json_builder_add_int_value (b, (gint64) a->n_tokens);
      json_builder_set_member_name (b, "metrics");
      json_builder_begin_object (b);
      print_metrics_json (b, &a->metrics);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "features");
      json_builder_begin_array (b);
      for (guint r = 0; r < shown; r++)
        {
          const GbSaeFeature *f = &a->features[order[r]];
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "index");
          json_builder_add_int_value (b, f->index);
          json_builder_set_member_name (b, "label");
          json_builder_add_string_value (b, f->label);
          json_builder_set_member_name (b, "frequency");
          json_builder_add_double_value (b, f->frequency);
          json_builder_set_member_name (b, "max_act");
          json_builder_add_double_value (b, f->max_act);
          json_builder_set_member_name (b, "histogram");
          json_builder_begin_array (b);
          for (guint i = 0; i < GB_SAE_HIST_BINS; i++)
            json_builder_add_int_value (b, (gint64) f->hist[i]);
          json_builder_end_array (b);
          json_builder_set_member_name (b, "promoted");
          json_effects (b, tok, f->promoted, f->promoted_logit);
          json_builder_set_member_name (b, "suppressed");
          json_effects (b, tok, f->suppressed, f->suppressed_logit);
          json_builder_set_member_name (b, "top");
          json_contexts (b, tok, f->top);
          json_builder_set_member_name (b, "bands");
          json_contexts (b, tok, f->bands);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      g_autofree char *out = json_to_string (root, FALSE);
      printf ("%s\n", out);
      return GB_CLI_OK;
    }
  const GbSaeMetrics *m = &a->metrics;
  printf ("%s on %" G_GUINT64_FORMAT " tokens of %s: explained variance %.3f, L0 %.1f, dead %.1f%%, loss +%.4f\n", sae_dir,
          a->n_tokens, a->corpus, m->explained_variance, m->mean_l0, 100 * m->dead_fraction, m->loss_increase);
  for (guint r = 0; r < shown; r++)
    {
      const GbSaeFeature *f = &a->features[order[r]];
      printf ("\n#%u %s  freq %.4f%%  max %.2f\n", f->index, f->label, 100 * f->frequency, f->max_act);
      GString *eff = g_string_new ("  promotes:");
      for (guint i = 0; i < 5 && f->promoted[i] >= 0; i++)
        {
          g_autofree char *s = gb_tokenizer_decode (tok, &f->promoted[i], 1, NULL);
          g_string_append_printf (eff, " “%s”", s ? s : "?");
        }
      printf ("%s\n", eff->str);
      g_string_free (eff, TRUE);
      for (guint i = 0; i < MIN (3u, f->top->len); i++)
        {
          g_autofree char *t = context_text (tok, f->top->pdata[i]);
          printf ("  %.2f  %s\n", ((GbSaeContext *) f->top->pdata[i])->value, t);
        }
    }
  return GB_CLI_OK;
}

int
gb_cli_sae (int    argc,
            char **argv)
{
  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h"))
    {
      FILE *out = argc < 2 ? stderr : stdout;
      fprintf (out, "Usage: glassbox-cli sae train|features|eval [OPTIONS]\n\n"
                    "  train     Train an SAE on a model's activations (SAELens layout)\n"
                    "  features  Each feature's frequency, top contexts and logit effects\n"
                    "  eval      Explained variance, L0, dead latents and spliced-in loss\n");
      return argc < 2 ? GB_CLI_USAGE_ERROR : GB_CLI_OK;
    }
  if (g_str_equal (argv[1], "train"))
    return sae_train (argc - 1, argv + 1);
  if (g_str_equal (argv[1], "features"))
    return sae_features (argc - 1, argv + 1);
  if (g_str_equal (argv[1], "eval"))
    return sae_eval (argc - 1, argv + 1);
  return gb_cli_usage ("unknown sae command “%s” (train, features or eval)", argv[1]);
}
