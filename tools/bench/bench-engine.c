/* SPDX-License-Identifier: GPL-3.0-or-later */
/* bench-engine: the hand-run benchmark of the Glassbox engine.
 *
 * Measures, best of --repeats after one warm-up run:
 *   prefill of 128 and 512 tokens, last-position logits only, and again with
 *   every layer's attention pattern recorded;
 *   KV-cached greedy decode (ms per new token, 64 tokens after a 16-token
 *   prompt, one gb_session_feed per token);
 *   peak RSS of each of those (each runs in its own process, so one
 *   scenario's peak is not another's);
 * and the machine it runs on: OpenBLAS sgemm GFLOP/s, sgemv GB/s and a
 * STREAM-like memory bandwidth (triad and read-only, on pthreads).
 *
 * Output: one JSON object per line on stdout (lines start with '{'), then a
 * human table (lines start with '#'). tools/bench/run.sh puts these side by
 * side with bench_torch.py. */

#include <cblas.h>
#include <errno.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gb-kernels.h"
#include "glassbox-engine.h"

/* ---------------------------------------------------------------- options */

static char    *opt_model = NULL;
static char    *opt_only = NULL;
static int      opt_threads = 0;
static int      opt_repeats = 5;
static int      opt_prompt = 16;
static int      opt_new = 64;
static int      opt_bw_mb = 256;
static int      opt_bw_threads = 2;
static gboolean opt_json_only = FALSE;
static gboolean opt_no_isolate = FALSE;

static const GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &opt_model, "GPT-2 folder (Hugging Face layout)", "DIR" },
  { "threads", 't', 0, G_OPTION_ARG_INT, &opt_threads,
    "OpenBLAS threads (default: $OPENBLAS_NUM_THREADS, else 2)", "N" },
  { "repeats", 'r', 0, G_OPTION_ARG_INT, &opt_repeats, "Timed repeats after the warm-up (default 5)", "N" },
  { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only,
    "One scenario: sgemm, sgemv, bandwidth, load, prefill128, prefill128-attn, prefill512, "
    "prefill512-attn, decode", "NAME" },
  { "prompt-tokens", 0, 0, G_OPTION_ARG_INT, &opt_prompt, "Decode: prompt length (default 16)", "N" },
  { "new-tokens", 0, 0, G_OPTION_ARG_INT, &opt_new, "Decode: new tokens (default 64)", "N" },
  { "bw-mb", 0, 0, G_OPTION_ARG_INT, &opt_bw_mb, "Bandwidth: MiB per array (default 256, 3 arrays)", "MIB" },
  { "bw-threads", 0, 0, G_OPTION_ARG_INT, &opt_bw_threads, "Bandwidth: threads (default 2)", "N" },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json_only, "JSON lines only, no table", NULL },
  { "no-isolate", 0, 0, G_OPTION_ARG_NONE, &opt_no_isolate,
    "Run every scenario in this process (peak RSS is then the maximum so far)", NULL },
  { NULL }
};

static const char *const scenarios[] = {
  "sgemm", "sgemv", "bandwidth", "load", "prefill128", "prefill128-attn",
  "prefill512", "prefill512-attn", "decode",
};

static int         n_threads;
static const char *threads_source;

/* ---------------------------------------------------------------- helpers */

static double
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int
cmp_double (const void *a,
            const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (double *v,
        int     n)
{
  qsort (v, (size_t) n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double
min_of (const double *v,
        int           n)
{
  double m = v[0];
  for (int i = 1; i < n; i++)
    m = MIN (m, v[i]);
  return m;
}

/* kB from /proc/self/status ("VmHWM:", "VmRSS:"), or -1. */
static double
proc_status_mb (const char *key)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents ("/proc/self/status", &text, NULL, NULL))
    return -1;
  const char *p = strstr (text, key);
  if (p == NULL)
    return -1;
  return g_ascii_strtod (p + strlen (key), NULL) / 1024.0;
}

static double
peak_rss_mb (void)
{
  double hwm = proc_status_mb ("VmHWM:");
  if (hwm >= 0)
    return hwm;
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

/* Deterministic token ids in [0, n_vocab): the same in every run. */
static gint32 *
make_tokens (guint n,
             guint n_vocab)
{
  gint32 *t = g_new (gint32, n);
  guint64 s = 0x9E3779B97F4A7C15ull;
  for (guint i = 0; i < n; i++)
    {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      t[i] = (gint32) ((s >> 33) % n_vocab);
    }
  return t;
}

/* One JSON line: {"suite":"glassbox","name":NAME, ...fields}. */
static void G_GNUC_NULL_TERMINATED
emit (const char *name,
      ...)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  va_list ap;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "suite");
  json_builder_add_string_value (b, "glassbox");
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, "threads");
  json_builder_add_int_value (b, n_threads);
  va_start (ap, name);
  for (const char *key = va_arg (ap, const char *); key != NULL; key = va_arg (ap, const char *))
    {
      if (key[0] == 's' && key[1] == ':')
        {
          /* "s:key" takes a string */
          json_builder_set_member_name (b, key + 2);
          json_builder_add_string_value (b, va_arg (ap, const char *));
        }
      else
        {
          double v = va_arg (ap, double);
          json_builder_set_member_name (b, key);
          if (isfinite (v))
            json_builder_add_double_value (b, v);
          else
            json_builder_add_null_value (b);
        }
    }
  va_end (ap);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autofree char *line = json_generator_to_data (gen, NULL);
  printf ("%s\n", line);
  fflush (stdout);
}

/* ------------------------------------------------------ machine: BLAS, RAM */

static void
bench_sgemm (void)
{
  /* The MLP's first product at T = 1024 (and T = 128): [M,K] @ [K,N]. */
  static const int shapes[][3] = { { 1024, 768, 3072 }, { 128, 768, 3072 } };

  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      const int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
      g_autofree float *a = g_new (float, (gsize) M * K);
      g_autofree float *w = g_new (float, (gsize) K * N);
      g_autofree float *c = g_new (float, (gsize) M * N);
      for (gsize i = 0; i < (gsize) M * K; i++)
        a[i] = (float) ((i * 7) % 13) * 0.01f;
      for (gsize i = 0; i < (gsize) K * N; i++)
        w[i] = (float) ((i * 5) % 11) * 0.01f;

      const int reps = MAX (opt_repeats, 1) * (M < 512 ? 8 : 2);
      double *t = g_new (double, reps);
      for (int r = -1; r < reps; r++)
        {
          double t0 = now_ms ();
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.f, a, K, w, N, 0.f, c, N);
          if (r >= 0)
            t[r] = now_ms () - t0;
        }
      double best = min_of (t, reps), med = median (t, reps);
      double gflop = 2.0 * M * N * K * 1e-9;
      g_autofree char *name = g_strdup_printf ("sgemm_%dx%dx%d", M, K, N);
      emit (name, "s:unit", "GFLOP/s", "value", gflop / (best * 1e-3), "median", gflop / (med * 1e-3),
            "best_ms", best, "gflop", gflop, NULL);
      g_free (t);
    }
}

static void
bench_sgemv (void)
{
  /* The unembedding of one token: y[V] = W[V,D] x[D], W 154 MB, far over
   * any cache, so this is OpenBLAS's matrix-vector streaming rate. */
  const int V = 50257, D = 768;
  g_autofree float *w = g_new (float, (gsize) V * D);
  g_autofree float *x = g_new (float, D);
  g_autofree float *y = g_new (float, V);
  for (gsize i = 0; i < (gsize) V * D; i++)
    w[i] = (float) (i % 17) * 0.001f;
  for (int i = 0; i < D; i++)
    x[i] = 0.01f * i;

  const int reps = MAX (opt_repeats, 1) * 4;
  double *t = g_new (double, reps);
  for (int r = -1; r < reps; r++)
    {
      double t0 = now_ms ();
      cblas_sgemv (CblasRowMajor, CblasNoTrans, V, D, 1.f, w, D, x, 1, 0.f, y, 1);
      if (r >= 0)
        t[r] = now_ms () - t0;
    }
  double bytes = (double) V * D * sizeof (float);
  double best = min_of (t, reps), med = median (t, reps);
  emit ("sgemv_50257x768", "s:unit", "GB/s", "value", bytes / (best * 1e6), "median", bytes / (med * 1e6),
        "best_ms", best, NULL);
  g_free (t);
}

typedef struct
{
  float          *a, *b, *c;
  gsize           begin, end;
  int             op; /* 0 init, 1 triad, 2 read */
  double          sum;
  pthread_barrier_t *barrier;
} BwJob;

typedef float v4sf __attribute__ ((vector_size (16)));

static void *
bw_worker (void *data)
{
  BwJob *j = data;
  pthread_barrier_wait (j->barrier);
  switch (j->op)
    {
    case 0:
      for (gsize i = j->begin; i < j->end; i++)
        {
          j->a[i] = 0.f;
          j->b[i] = 1.f;
          j->c[i] = 2.f;
        }
      break;
    case 1:
      {
        const float s = 3.f;
        for (gsize i = j->begin; i < j->end; i++)
          j->a[i] = j->b[i] + s * j->c[i];
      }
      break;
    default:
      {
        /* Four independent vector sums, so the adds do not bound the loads. */
        v4sf s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
        const v4sf *p = (const v4sf *) (j->b + j->begin);
        gsize n = (j->end - j->begin) / 16;
        for (gsize i = 0; i < n; i++)
          {
            s0 += p[4 * i];
            s1 += p[4 * i + 1];
            s2 += p[4 * i + 2];
            s3 += p[4 * i + 3];
          }
        v4sf s = s0 + s1 + s2 + s3;
        j->sum = s[0] + s[1] + s[2] + s[3];
      }
      break;
    }
  return NULL;
}

/* Runs @op on @nt threads, each over its slice; returns wall ms (from a
 * common start, threads already created). */
static double
bw_run (float *a,
        float *b,
        float *c,
        gsize  n,
        int    nt,
        int    op)
{
  pthread_barrier_t barrier;
  pthread_t th[64];
  BwJob jobs[64];

  pthread_barrier_init (&barrier, NULL, (unsigned) nt + 1);
  for (int i = 0; i < nt; i++)
    {
      /* Slices on 64-float boundaries so the vector loop stays aligned. */
      gsize chunk = (n / nt) & ~(gsize) 63;
      jobs[i] = (BwJob) { a, b, c, i * chunk, i == nt - 1 ? n : (i + 1) * chunk, op, 0, &barrier };
      pthread_create (&th[i], NULL, bw_worker, &jobs[i]);
    }
  double t0 = now_ms ();
  pthread_barrier_wait (&barrier);
  for (int i = 0; i < nt; i++)
    pthread_join (th[i], NULL);
  double t = now_ms () - t0;
  pthread_barrier_destroy (&barrier);
  return t;
}

static void
bench_bandwidth (void)
{
  const gsize n = (gsize) opt_bw_mb * 1024 * 1024 / sizeof (float);
  const int nt = CLAMP (opt_bw_threads, 1, 64);
  float *a = aligned_alloc (64, n * sizeof (float));
  float *b = aligned_alloc (64, n * sizeof (float));
  float *c = aligned_alloc (64, n * sizeof (float));
  const int reps = MAX (opt_repeats, 1) * 4;
  double *tt = g_new (double, reps), *tr = g_new (double, reps);

  if (a == NULL || b == NULL || c == NULL)
    g_error ("bandwidth: out of memory");
  bw_run (a, b, c, n, nt, 0); /* first touch by the threads that use it */
  for (int r = -1; r < reps; r++)
    {
      double t1 = bw_run (a, b, c, n, nt, 1);
      double t2 = bw_run (a, b, c, n, nt, 2);
      if (r >= 0)
        tt[r] = t1, tr[r] = t2;
    }
  /* STREAM's convention: triad moves 3 arrays (write-allocate not counted). */
  double triad_bytes = 3.0 * n * sizeof (float), read_bytes = (double) n * sizeof (float);
  double bt = min_of (tt, reps), br = min_of (tr, reps);
  emit ("bandwidth_triad", "s:unit", "GB/s", "value", triad_bytes / (bt * 1e6), "median",
        triad_bytes / (median (tt, reps) * 1e6), "bw_threads", (double) nt, "array_mib", (double) opt_bw_mb, NULL);
  emit ("bandwidth_read", "s:unit", "GB/s", "value", read_bytes / (br * 1e6), "median",
        read_bytes / (median (tr, reps) * 1e6), "bw_threads", (double) nt, "array_mib", (double) opt_bw_mb, NULL);
  free (a);
  free (b);
  free (c);
  g_free (tt);
  g_free (tr);
}

/* ------------------------------------------------------------- the engine */

static GbModel *
load_model (double *ms)
{
  g_autoptr (GError) error = NULL;
  if (opt_model == NULL)
    {
      g_printerr ("bench-engine: error: --model DIR is required\n");
      exit (2);
    }
  double t0 = now_ms ();
  GbModel *m = gb_model_load (opt_model, NULL, NULL, NULL, &error);
  if (m == NULL)
    {
      g_printerr ("bench-engine: error: %s\n", error->message);
      exit (1);
    }
  if (ms)
    *ms = now_ms () - t0;
  return m;
}

/* FLOPs of one prefill of T tokens (matrix products only, attention over
 * the full T x T square as the engine computes it, unembedding of one row). */
static double
prefill_flops (const GbConfig *c,
               guint           T)
{
  double D = c->n_embd, F = c->n_inner, L = c->n_layer;
  double per_layer = 2.0 * T * D * (3 * D + D + 2 * F) + 4.0 * T * T * D;
  return L * per_layer + 2.0 * D * c->n_vocab;
}

/* Bytes of weights one decode step reads: every block's matrices, biases and
 * LayerNorms, the final LayerNorm, and the unembedding [V, D]. */
static double
decode_weight_bytes (const GbConfig *c)
{
  double D = c->n_embd, F = c->n_inner, L = c->n_layer;
  double block = D * 3 * D + 3 * D + D * D + D + D * F + F + F * D + D + 4 * D;
  return 4.0 * (L * block + 2 * D + (double) c->n_vocab * D);
}

static void
bench_load (void)
{
  /* Best of the repeats, so a cold page cache (the first read of the file
   * after it was written or evicted) does not count. */
  const int reps = MAX (opt_repeats, 1);
  double *t = g_new (double, reps), rss = 0;
  for (int r = 0; r < reps; r++)
    {
      GbModel *tmp = load_model (&t[r]);
      if (r == 0)
        rss = proc_status_mb ("VmRSS:");
      gb_model_unref (tmp);
    }
  double ms = min_of (t, reps), med = median (t, reps);
  g_free (t);
  GbModel *m = load_model (NULL);
  const GbConfig *c = gb_model_get_config (m);
  emit ("load", "s:unit", "ms", "value", ms, "median", med, "rss_after_load_mb", rss,
        "n_params", (double) gb_model_get_n_params (m), "n_layer", (double) c->n_layer, "n_embd",
        (double) c->n_embd, "n_vocab", (double) c->n_vocab, "prefill128_gflop", prefill_flops (c, 128) * 1e-9,
        "prefill512_gflop", prefill_flops (c, 512) * 1e-9, "decode_weight_mb", decode_weight_bytes (c) * 1e-6,
        NULL);
  gb_model_unref (m);
}

static void
bench_prefill (guint    T,
               gboolean attn)
{
  g_autoptr (GbModel) m = load_model (NULL);
  const GbConfig *c = gb_model_get_config (m);
  double rss_load = proc_status_mb ("VmRSS:");
  g_autofree gint32 *tokens = make_tokens (T, c->n_vocab);
  GbRecord rec = { .logits = GB_LOGITS_LAST };
  if (attn)
    rec.hooks[GB_HOOK_PATTERN] = GB_ALL_LAYERS;

  const int reps = MAX (opt_repeats, 1);
  double *t = g_new (double, reps);
  for (int r = -1; r < reps; r++)
    {
      g_autoptr (GError) error = NULL;
      double t0 = now_ms ();
      GbTrace *trace = gb_model_forward (m, tokens, T, &rec, NULL, 0, NULL, &error);
      double dt = now_ms () - t0;
      if (trace == NULL)
        g_error ("prefill: %s", error->message);
      gb_trace_free (trace);
      if (r >= 0)
        t[r] = dt;
    }
  g_autofree char *name = g_strdup_printf ("prefill%u%s", T, attn ? "_attn" : "");
  double best = min_of (t, reps), med = median (t, reps);
  emit (name, "s:unit", "ms", "value", best, "median", med, "repeats", (double) reps, "tokens", (double) T,
        "gflop", prefill_flops (c, T) * 1e-9, "gflops_achieved", prefill_flops (c, T) * 1e-9 / (best * 1e-3),
        "peak_rss_mb", peak_rss_mb (), "rss_after_load_mb", rss_load, NULL);
  g_free (t);
}

static gint32
argmax (const float *x,
        guint        n)
{
  guint best = 0;
  for (guint i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return (gint32) best;
}

static void
bench_decode (void)
{
  g_autoptr (GbModel) m = load_model (NULL);
  const GbConfig *c = gb_model_get_config (m);
  double rss_load = proc_status_mb ("VmRSS:");
  const guint P = (guint) MAX (opt_prompt, 1), N = (guint) MAX (opt_new, 1);
  g_autofree gint32 *prompt = make_tokens (P, c->n_vocab);
  const int reps = MAX (opt_repeats, 1);
  double *tok = g_new (double, reps), *pre = g_new (double, reps);
  gint32 last = -1;

  for (int r = -1; r < reps; r++)
    {
      g_autoptr (GError) error = NULL;
      /* A fresh session each time, as gb_generate makes one per call. */
      g_autoptr (GbSession) s = gb_session_new (m);
      double t0 = now_ms ();
      const float *logits = gb_session_feed (s, prompt, P, NULL, 0, NULL, &error);
      double t1 = now_ms ();
      for (guint i = 0; i < N && logits != NULL; i++)
        {
          gint32 next = argmax (logits, c->n_vocab);
          last = next;
          logits = gb_session_feed (s, &next, 1, NULL, 0, NULL, &error);
        }
      double t2 = now_ms ();
      if (logits == NULL)
        g_error ("decode: %s", error->message);
      if (r >= 0)
        {
          pre[r] = t1 - t0;
          tok[r] = (t2 - t1) / N;
        }
    }
  double best = min_of (tok, reps), med = median (tok, reps);
  emit ("decode", "s:unit", "ms/token", "value", best, "median", med, "repeats", (double) reps,
        "prompt_tokens", (double) P, "new_tokens", (double) N, "prompt_ms", min_of (pre, reps),
        "tokens_per_s", 1e3 / best, "weight_gb_per_s", decode_weight_bytes (c) / (best * 1e6),
        "last_token", (double) last, "peak_rss_mb", peak_rss_mb (), "rss_after_load_mb", rss_load, NULL);
  g_free (tok);
  g_free (pre);
}

static void
run_one (const char *name)
{
  if (g_str_equal (name, "sgemm"))
    bench_sgemm ();
  else if (g_str_equal (name, "sgemv"))
    bench_sgemv ();
  else if (g_str_equal (name, "bandwidth"))
    bench_bandwidth ();
  else if (g_str_equal (name, "load"))
    bench_load ();
  else if (g_str_equal (name, "prefill128"))
    bench_prefill (128, FALSE);
  else if (g_str_equal (name, "prefill128-attn"))
    bench_prefill (128, TRUE);
  else if (g_str_equal (name, "prefill512"))
    bench_prefill (512, FALSE);
  else if (g_str_equal (name, "prefill512-attn"))
    bench_prefill (512, TRUE);
  else if (g_str_equal (name, "decode"))
    bench_decode ();
  else
    {
      g_printerr ("bench-engine: error: unknown scenario “%s”\n", name);
      exit (2);
    }
}

/* Runs @name in a child process (this program with --only) and passes its
 * JSON lines through; returns them parsed. */
static GPtrArray *
run_isolated (const char *self_exe,
              const char *name)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  int status;

  g_ptr_array_add (argv, g_strdup (self_exe));
  g_ptr_array_add (argv, g_strdup ("--json"));
  g_ptr_array_add (argv, g_strdup_printf ("--only=%s", name));
  g_ptr_array_add (argv, g_strdup_printf ("--threads=%d", n_threads));
  g_ptr_array_add (argv, g_strdup_printf ("--repeats=%d", opt_repeats));
  g_ptr_array_add (argv, g_strdup_printf ("--prompt-tokens=%d", opt_prompt));
  g_ptr_array_add (argv, g_strdup_printf ("--new-tokens=%d", opt_new));
  g_ptr_array_add (argv, g_strdup_printf ("--bw-mb=%d", opt_bw_mb));
  g_ptr_array_add (argv, g_strdup_printf ("--bw-threads=%d", opt_bw_threads));
  if (opt_model != NULL)
    {
      g_ptr_array_add (argv, g_strdup ("--model"));
      g_ptr_array_add (argv, g_strdup (opt_model));
    }
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, &out, NULL,
                     &status, &error) ||
      !g_spawn_check_wait_status (status, &error))
    {
      g_printerr ("bench-engine: error: %s: %s\n", name, error->message);
      exit (1);
    }

  GPtrArray *objs = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] != '{')
        continue;
      printf ("%s\n", lines[i]);
      g_autoptr (JsonParser) p = json_parser_new ();
      if (json_parser_load_from_data (p, lines[i], -1, NULL) && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
        g_ptr_array_add (objs, json_object_ref (json_node_get_object (json_parser_get_root (p))));
    }
  fflush (stdout);
  return objs;
}

static double
get (GHashTable *by_name,
     const char *name,
     const char *member)
{
  JsonObject *o = g_hash_table_lookup (by_name, name);
  if (o == NULL || !json_object_has_member (o, member) || json_object_get_null_member (o, member))
    return NAN;
  return json_object_get_double_member (o, member);
}

static void
print_table (GHashTable *r)
{
  printf ("# Glassbox engine, %s (core %s), %d thread(s) [%s], best of %d after a warm-up\n",
          openblas_get_config (), openblas_get_corename (), n_threads, threads_source, opt_repeats);
  printf ("# %-28s %12s %12s %14s\n", "metric", "best", "median", "peak RSS MiB");
  static const struct { const char *name, *label, *unit; } rows[] = {
    { "prefill128", "prefill 128 (logits)", "ms" },
    { "prefill128_attn", "prefill 128 + attention", "ms" },
    { "prefill512", "prefill 512 (logits)", "ms" },
    { "prefill512_attn", "prefill 512 + attention", "ms" },
    { "decode", "decode (KV cache)", "ms/tok" },
    { "load", "model load", "ms" },
    { "sgemm_1024x768x3072", "sgemm 1024x768x3072", "GFLOP/s" },
    { "sgemm_128x768x3072", "sgemm 128x768x3072", "GFLOP/s" },
    { "sgemv_50257x768", "sgemv 50257x768", "GB/s" },
    { "bandwidth_triad", "bandwidth triad", "GB/s" },
    { "bandwidth_read", "bandwidth read", "GB/s" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      if (!g_hash_table_contains (r, rows[i].name))
        continue;
      double rss = get (r, rows[i].name, "peak_rss_mb");
      char rss_s[32] = "";
      if (isfinite (rss))
        g_snprintf (rss_s, sizeof rss_s, "%.0f", rss);
      printf ("# %-28s %9.2f %-7s %7.2f %14s\n", rows[i].label, get (r, rows[i].name, "value"), rows[i].unit,
              get (r, rows[i].name, "median"), rss_s);
    }
  double gflop = get (r, "load", "prefill128_gflop"), rate = get (r, "sgemm_1024x768x3072", "value");
  /* Decoding reads the weights and writes next to nothing: the read rate is
   * its bound (triad's, with its write traffic, is lower). */
  double bytes = get (r, "load", "decode_weight_mb"), bw = get (r, "bandwidth_read", "value");
  if (isfinite (gflop) && isfinite (rate))
    printf ("# floor prefill 128: %.2f GFLOP / %.1f GFLOP/s = %.1f ms\n", gflop, rate, gflop / rate * 1e3);
  if (isfinite (bytes) && isfinite (bw))
    printf ("# floor decode: %.0f MB of weights / %.1f GB/s (read) = %.1f ms/token\n", bytes, bw, bytes / bw);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- benchmark the Glassbox engine");
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("bench-engine: error: %s\n", error->message);
      return 2;
    }

  /* Thread count: --threads, else $OPENBLAS_NUM_THREADS, else 2. OpenBLAS
   * reads the variable when it loads, so children get it in their
   * environment as well as through openblas_set_num_threads. */
  const char *env = g_getenv ("OPENBLAS_NUM_THREADS");
  if (opt_threads > 0)
    n_threads = opt_threads, threads_source = "--threads";
  else if (env != NULL && atoi (env) > 0)
    n_threads = atoi (env), threads_source = "OPENBLAS_NUM_THREADS";
  else
    n_threads = 2, threads_source = "default";
  g_autofree char *nt = g_strdup_printf ("%d", n_threads);
  g_setenv ("OPENBLAS_NUM_THREADS", nt, TRUE);
  gb_blas_set_threads (n_threads);
  int actual = gb_blas_get_threads ();
  if (actual != n_threads)
    g_printerr ("bench-engine: warning: asked OpenBLAS for %d threads, it runs %d\n", n_threads, actual);

  if (opt_only != NULL)
    {
      if (!opt_json_only)
        emit ("env", "s:openblas", openblas_get_config (), "s:core", openblas_get_corename (), "s:threads_source",
              threads_source, "cpus", (double) sysconf (_SC_NPROCESSORS_ONLN), NULL);
      run_one (opt_only);
      return 0;
    }

  emit ("env", "s:openblas", openblas_get_config (), "s:core", openblas_get_corename (), "s:threads_source",
        threads_source, "cpus", (double) sysconf (_SC_NPROCESSORS_ONLN), "openblas_threads", (double) actual,
        "repeats", (double) opt_repeats, NULL);

  g_autoptr (GHashTable) results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                          (GDestroyNotify) json_object_unref);
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (scenarios); i++)
    {
      const char *s = scenarios[i];
      gboolean needs_model = !g_str_equal (s, "sgemm") && !g_str_equal (s, "sgemv") && !g_str_equal (s, "bandwidth");
      if (needs_model && opt_model == NULL)
        continue;
      if (opt_no_isolate || self_exe == NULL)
        {
          run_one (s); /* results are then only in the JSON lines */
          continue;
        }
      g_autoptr (GPtrArray) objs = run_isolated (self_exe, s);
      for (guint j = 0; j < objs->len; j++)
        {
          JsonObject *o = objs->pdata[j];
          g_hash_table_replace (results, g_strdup (json_object_get_string_member (o, "name")), json_object_ref (o));
        }
    }
  if (opt_model == NULL)
    g_printerr ("bench-engine: no --model DIR, so only the machine was measured\n");
  if (!opt_json_only && g_hash_table_size (results) > 0)
    print_table (results);
  return 0;
}
