/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

#include <math.h>
#include <string.h>

#include "gb-gemm.h"
#include "gb-kernels.h"
#include "gb-parallel.h"
#include "gb-test-util.h"

static void
fill_random (GRand *rng,
             float *x,
             gsize  n)
{
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, -1, 1);
}

static double
max_rel_error (const float *a,
               const float *b,
               gsize        n)
{
  double num = 0, den = 0;
  for (gsize i = 0; i < n; i++)
    {
      num = MAX (num, fabs ((double) a[i] - b[i]));
      den = MAX (den, fabs ((double) b[i]));
    }
  return den > 0 ? num / den : num;
}

static void
test_matmul (void)
{
  /* Both the sgemm path (T > 1) and the sgemv path (T = 1), with and without bias. */
  const guint shapes[][3] = { { 1, 64, 96 }, { 1, 37, 1027 }, { 7, 33, 65 }, { 32, 128, 17 } };
  g_autoptr (GRand) rng = g_rand_new_with_seed (7);

  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      guint T = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
      g_autofree float *in = g_new (float, T * K), *w = g_new (float, K * N), *bias = g_new (float, N);
      g_autofree float *fast = g_new (float, T * N), *ref = g_new (float, T * N), *wt = g_new (float, N * K);
      fill_random (rng, in, T * K);
      fill_random (rng, w, K * N);
      fill_random (rng, bias, N);
      for (guint with_bias = 0; with_bias < 2; with_bias++)
        {
          gb_matmul (fast, in, w, with_bias ? bias : NULL, T, K, N);
          gb_matmul_naive (ref, in, w, with_bias ? bias : NULL, T, K, N);
          g_assert_cmpfloat (max_rel_error (fast, ref, T * N), <, 1e-5);
        }
      for (guint k = 0; k < K; k++)
        for (guint n = 0; n < N; n++)
          wt[n * K + k] = w[k * N + n];
      gb_matmul_bt (fast, in, wt, T, K, N);
      gb_matmul_naive (ref, in, w, NULL, T, K, N);
      g_assert_cmpfloat (max_rel_error (fast, ref, T * N), <, 1e-5);
    }
}

/* The packed kernels against the naive loop: every edge of the tiling (rows
 * not a multiple of 8, columns not a multiple of the 48-wide panels, K past
 * one 768-row chunk), with and without bias and GELU, on one thread and on
 * the worker pool. */
static void
check_packed (GRand *rng,
              guint  T,
              guint  K,
              guint  N)
{
  g_autofree float *in = g_new (float, (gsize) T * K), *w = g_new (float, (gsize) K * N), *bias = g_new (float, N);
  g_autofree float *fast = g_new (float, (gsize) T * N), *ref = g_new (float, (gsize) T * N);
  fill_random (rng, in, (gsize) T * K);
  fill_random (rng, w, (gsize) K * N);
  fill_random (rng, bias, N);
  GbPackedMatrix *p = gb_packed_new (w, K, N);
  g_assert_nonnull (p);
  g_assert_cmpuint (gb_packed_get_k (p), ==, K);
  g_assert_cmpuint (gb_packed_get_n (p), ==, N);
  for (guint with_bias = 0; with_bias < 2; with_bias++)
    for (guint gelu = 0; gelu < 2; gelu++)
      {
        /* A guard column past the output: the masked stores must not touch it. */
        g_autofree float *out = g_new (float, (gsize) T * N + 1);
        out[(gsize) T * N] = 12345.f;
        gb_packed_matmul (out, in, p, with_bias ? bias : NULL, T, gelu ? GB_EPILOGUE_GELU_NEW : GB_EPILOGUE_NONE);
        gb_matmul_naive (ref, in, w, with_bias ? bias : NULL, T, K, N);
        if (gelu)
          gb_gelu_new (ref, (gsize) T * N);
        memcpy (fast, out, (gsize) T * N * sizeof (float));
        g_assert_cmpfloat (out[(gsize) T * N], ==, 12345.f);
        double err = max_rel_error (fast, ref, (gsize) T * N);
        if (err >= 1e-5)
          g_error ("packed T=%u K=%u N=%u bias=%u gelu=%u: relative error %g", T, K, N, with_bias, gelu, err);
      }
  gb_packed_free (p);
}

static void
test_packed_matmul (void)
{
  if (!gb_packed_supported ())
    {
      g_test_skip ("no AVX-512 on this CPU (or GLASSBOX_PACKED_GEMM=0): the forward pass uses OpenBLAS");
      return;
    }
  const guint shapes[][3] = {
    { 1, 64, 96 }, { 1, 769, 49 }, { 7, 33, 65 }, { 8, 48, 48 }, { 9, 5, 1 },
    { 17, 100, 47 }, { 32, 128, 17 }, { 130, 1600, 150 }, { 64, 768, 2304 },
  };
  g_autoptr (GRand) rng = g_rand_new_with_seed (11);
  const int threads = gb_blas_get_threads ();

  for (int t = 1; t <= 2; t++)
    {
      gb_blas_set_threads (t);
      for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
        check_packed (rng, shapes[s][0], shapes[s][1], shapes[s][2]);
    }
  gb_blas_set_threads (threads);
}

/* The attention's strided products against a double loop: row strides wider
 * than the rows, widths that end inside a vector (masked loads), and both
 * causal limits, with the columns past a causal limit left untouched. */
static void
test_strided_matmul (void)
{
  if (!gb_packed_supported ())
    {
      g_test_skip ("no AVX-512 on this CPU (or GLASSBOX_PACKED_GEMM=0)");
      return;
    }
  const guint shapes[][4] = { /* M, K, N, offset */
    { 1, 64, 64, 0 }, { 13, 64, 100, 3 }, { 40, 100, 37, 0 }, { 9, 17, 16, 5 }, { 130, 64, 130, 0 }, { 20, 800, 64, 780 },
  };
  g_autoptr (GRand) rng = g_rand_new_with_seed (5);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (GbCausal causal = GB_CAUSAL_NONE; causal <= GB_CAUSAL_DEPTH; causal++)
      {
        const guint M = shapes[s][0], K = shapes[s][1], N = shapes[s][2], off = shapes[s][3];
        /* Wider strides than rows, and (odd shapes) exact ones, so the
         * last row of b ends its allocation (ASan sees an over-read). */
        const gboolean exact = s % 2 == 1;
        const gsize lda = exact ? K : K + 3, ldb = exact ? N : N + 5, ldc = N + 7;
        g_autofree float *a = g_new (float, M * lda), *b = g_new (float, K * ldb), *c = g_new (float, M * ldc);
        fill_random (rng, a, M * lda);
        fill_random (rng, b, K * ldb);
        for (gsize i = 0; i < M * ldc; i++)
          c[i] = 777.f;
        gb_gemm_strided (c, ldc, a, lda, b, ldb, M, K, N, 0.5f, causal, off);
        for (guint i = 0; i < M; i++)
          {
            const guint limit = off + (i / 8) * 8 + MIN (8, M - (i / 8) * 8);
            for (guint n = 0; n < ldc; n++)
              {
                const gboolean written = n < N && (causal != GB_CAUSAL_COLUMNS || n < limit);
                if (!written)
                  {
                    g_assert_cmpfloat (c[i * ldc + n], ==, 777.f);
                    continue;
                  }
                const guint depth = causal == GB_CAUSAL_DEPTH ? MIN (K, limit) : K;
                double ref = 0, mag = 0;
                for (guint k = 0; k < depth; k++)
                  {
                    ref += (double) a[i * lda + k] * b[k * ldb + n];
                    mag += fabs ((double) a[i * lda + k] * b[k * ldb + n]);
                  }
                ref *= 0.5;
                if (fabs (c[i * ldc + n] - ref) > 1e-6 * (1 + mag))
                  g_error ("strided M=%u K=%u N=%u causal=%d: c[%u][%u] = %g, expected %g", M, K, N, causal, i, n,
                           c[i * ldc + n], ref);
              }
          }
      }
}

/* The small vector kernels at every tail length, against double loops; the
 * softmax keeps a NaN (the whole row becomes NaN, as the scalar loop does). */
static void
test_vector_kernels (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (9);
  for (guint n = 1; n <= 70; n++)
    {
      /* Each array at the very end of its own allocation, so an over-read
       * trips AddressSanitizer in the sanitizer build. */
      float *x = g_new (float, n), *y = g_new (float, n), *w = g_new (float, n), *row = g_new (float, n);
      fill_random (rng, x, n);
      fill_random (rng, y, n);
      fill_random (rng, w, n);
      double dot = 0, dot_w = 0;
      for (guint i = 0; i < n; i++)
        dot += (double) x[i] * y[i], dot_w += (double) x[i] * w[i];
      g_assert_cmpfloat (fabs (gb_dot (n, x, y) - dot), <, 1e-5);
      g_autofree float *y0 = g_memdup2 (y, n * sizeof (float));
      gb_axpy (n, 0.5f, x, y);
      for (guint i = 0; i < n; i++)
        g_assert_cmpfloat (fabs (y[i] - (y0[i] + 0.5 * x[i])), <, 1e-6);
      const float d = gb_axpy_dot (n, -2.f, x, y, w);
      g_assert_cmpfloat (fabs (d - dot_w), <, 1e-5);
      for (guint i = 0; i < n; i++)
        g_assert_cmpfloat (fabs (y[i] - (y0[i] + 0.5 * x[i] - 2.0 * x[i])), <, 1e-5);

      for (guint i = 0; i < n; i++)
        row[i] = 8.f * x[i];
      double max = -INFINITY, sum = 0;
      for (guint i = 0; i < n; i++)
        max = MAX (max, row[i]);
      g_autofree double *ref = g_new (double, n);
      for (guint i = 0; i < n; i++)
        sum += ref[i] = exp (row[i] - max);
      gb_softmax (row, n);
      for (guint i = 0; i < n; i++)
        g_assert_cmpfloat (fabs (row[i] - ref[i] / sum), <, 1e-6);
      row[n / 2] = NAN;
      gb_softmax (row, n);
      for (guint i = 0; i < n; i++)
        g_assert_true (isnan (row[i]));

      if (gb_packed_supported ())
        {
          /* Unembedding row dots: n rows of 37 (and the strided form). */
          const guint cols = 37;
          float *m = g_new (float, (gsize) n * cols), *xv = g_new (float, cols), *out = g_new (float, n);
          fill_random (rng, m, (gsize) n * cols);
          fill_random (rng, xv, cols);
          gb_row_dots (out, m, xv, n, cols);
          for (guint r = 0; r < n; r++)
            {
              double e = 0;
              for (guint k = 0; k < cols; k++)
                e += (double) m[(gsize) r * cols + k] * xv[k];
              g_assert_cmpfloat (fabs (out[r] - e), <, 1e-5);
            }
          gb_row_dots_strided (out, m, cols, xv, n, cols, 0.25f);
          for (guint r = 0; r < n; r++)
            {
              double e = 0;
              for (guint k = 0; k < cols; k++)
                e += (double) m[(gsize) r * cols + k] * xv[k];
              g_assert_cmpfloat (fabs (out[r] - 0.25 * e), <, 1e-5);
            }
          g_free (m);
          g_free (xv);
          g_free (out);
        }
      g_free (x);
      g_free (y);
      g_free (w);
      g_free (row);
    }
}

/* A matrix packed from its transpose equals one packed directly. */
static void
test_packed_transposed (void)
{
  if (!gb_packed_supported ())
    {
      g_test_skip ("no AVX-512 on this CPU (or GLASSBOX_PACKED_GEMM=0)");
      return;
    }
  const guint K = 70, N = 101, T = 13;
  g_autoptr (GRand) rng = g_rand_new_with_seed (4);
  g_autofree float *w = g_new (float, K * N), *wt = g_new (float, N * K), *in = g_new (float, T * K);
  g_autofree float *a = g_new (float, T * N), *b = g_new (float, T * N);
  fill_random (rng, w, K * N);
  fill_random (rng, in, T * K);
  for (guint k = 0; k < K; k++)
    for (guint n = 0; n < N; n++)
      wt[n * K + k] = w[k * N + n];
  GbPackedMatrix *p = gb_packed_new (w, K, N), *q = gb_packed_alloc (K, N);
  gb_packed_fill_transposed (q, wt);
  gb_packed_matmul (a, in, p, NULL, T, GB_EPILOGUE_NONE);
  gb_packed_matmul (b, in, q, NULL, T, GB_EPILOGUE_NONE);
  g_assert_cmpmem (a, T * N * sizeof (float), b, T * N * sizeof (float));
  gb_packed_free (p);
  gb_packed_free (q);
}

typedef struct
{
  gint *hits;
  guint n;
} NestJob;

static void
count_part (guint    part,
            gpointer data)
{
  g_atomic_int_inc (&((gint *) data)[part]);
}

static void
nest_part (guint    part,
           gpointer data)
{
  NestJob *j = data;
  g_atomic_int_inc (&j->hits[part]);
  /* A call from inside a part runs on this thread, every part once. */
  gint inner[5] = { 0 };
  gb_parallel_for (5, count_part, inner);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (inner[i], ==, 1);
}

/* The worker pool: every part runs exactly once, also after the thread
 * count was raised and lowered again, and with calls nested in parts. */
static void
test_pool (void)
{
  const int threads = gb_blas_get_threads ();
  const int counts[] = { 2, 4, 1, 3, 2 };
  for (guint c = 0; c < G_N_ELEMENTS (counts); c++)
    {
      gb_blas_set_threads (counts[c]);
      for (guint n = 1; n < 40; n += 7)
        {
          g_autofree gint *hits = g_new0 (gint, n);
          gb_parallel_for (n, count_part, hits);
          for (guint i = 0; i < n; i++)
            g_assert_cmpint (hits[i], ==, 1);
          NestJob j = { g_new0 (gint, n), n };
          gb_parallel_for (n, nest_part, &j);
          for (guint i = 0; i < n; i++)
            g_assert_cmpint (j.hits[i], ==, 1);
          g_free (j.hits);
        }
    }
  gb_blas_set_threads (threads);
}

typedef struct
{
  const GbPackedMatrix *p;
  const float          *in;
  float                *out;
  guint                 T;
} PackedJob;

static gpointer
packed_job (gpointer data)
{
  PackedJob *j = data;
  for (guint i = 0; i < 20; i++)
    gb_packed_matmul (j->out, j->in, j->p, NULL, j->T, GB_EPILOGUE_NONE);
  return NULL;
}

/* Several threads multiply at once (the GUI's jobs do): one has the worker
 * pool, the others run their parts themselves; every result is right. */
static void
test_packed_concurrent (void)
{
  if (!gb_packed_supported ())
    {
      g_test_skip ("no AVX-512 on this CPU (or GLASSBOX_PACKED_GEMM=0)");
      return;
    }
  const guint T = 40, K = 200, N = 300, n_jobs = 4;
  g_autoptr (GRand) rng = g_rand_new_with_seed (3);
  g_autofree float *w = g_new (float, K * N), *in = g_new (float, T * K), *ref = g_new (float, T * N);
  fill_random (rng, w, K * N);
  fill_random (rng, in, T * K);
  gb_matmul_naive (ref, in, w, NULL, T, K, N);
  GbPackedMatrix *p = gb_packed_new (w, K, N);
  const int threads = gb_blas_get_threads ();
  gb_blas_set_threads (2);

  PackedJob jobs[4];
  GThread *th[4];
  for (guint i = 0; i < n_jobs; i++)
    {
      jobs[i] = (PackedJob) { p, in, g_new0 (float, T * N), T };
      th[i] = g_thread_new ("packed", packed_job, &jobs[i]);
    }
  for (guint i = 0; i < n_jobs; i++)
    {
      g_thread_join (th[i]);
      g_assert_cmpfloat (max_rel_error (jobs[i].out, ref, T * N), <, 1e-5);
      g_free (jobs[i].out);
    }
  gb_blas_set_threads (threads);
  gb_packed_free (p);
}

static void
test_expf (void)
{
  double worst = 0;
  for (float x = -87.f; x < 88.f; x += 0.001953125f)
    {
      double ref = exp ((double) x);
      worst = MAX (worst, fabs (gb_expf (x) - ref) / ref);
    }
  g_test_message ("gb_expf max relative error %.3g", worst);
  g_assert_cmpfloat (worst, <, 3e-7);
  g_assert_cmpfloat (gb_expf (-1000.f), <, 1e-37);
  g_assert_true (isfinite (gb_expf (1000.f)));
}

static void
test_gelu (void)
{
  float x[2001], y[2001];
  for (guint i = 0; i < G_N_ELEMENTS (x); i++)
    x[i] = y[i] = -10.f + i * 0.01f;
  gb_gelu_new (y, G_N_ELEMENTS (y));
  for (guint i = 0; i < G_N_ELEMENTS (x); i++)
    {
      double v = x[i];
      double ref = 0.5 * v * (1 + tanh (sqrt (2 / G_PI) * (v + 0.044715 * v * v * v)));
      g_assert_cmpfloat (fabs (y[i] - ref), <=, 2e-7 * MAX (1.0, fabs (ref)));
    }
}

static void
test_softmax_layernorm (void)
{
  float row[5] = { 1, 2, 3, 4, 1000 };
  gb_softmax (row, 4);
  double sum = 0, den = exp (-3) + exp (-2) + exp (-1) + 1;
  for (guint i = 0; i < 4; i++)
    {
      sum += row[i];
      g_assert_cmpfloat (fabs (row[i] - exp (i - 3.0) / den), <, 1e-7);
    }
  g_assert_cmpfloat (fabs (sum - 1), <, 1e-6);
  g_assert_cmpfloat (row[4], ==, 1000); /* untouched past n */

  float x[4] = { 1, 2, 3, 4 }, w[4] = { 1, 1, 2, 2 }, b[4] = { 0, 0, 1, 1 }, y[4];
  gb_layernorm (y, x, w, b, 1, 4, 1e-5f);
  double rstd = 1 / sqrt (1.25 + 1e-5);
  double expect[4] = { -1.5 * rstd, -0.5 * rstd, 1 + 2 * 0.5 * rstd, 1 + 2 * 1.5 * rstd };
  for (guint i = 0; i < 4; i++)
    g_assert_cmpfloat (fabs (y[i] - expect[i]), <, 1e-6);
}

static void
test_hook_names (void)
{
  GbHook hook;
  guint layer;
  g_assert_true (gb_hook_parse ("blocks.3.hook_resid_post", &hook, &layer));
  g_assert_cmpint (hook, ==, GB_HOOK_RESID_POST);
  g_assert_cmpuint (layer, ==, 3);
  g_assert_true (gb_hook_parse ("blocks.11.mlp.hook_post", &hook, &layer));
  g_assert_cmpint (hook, ==, GB_HOOK_MLP_POST);
  g_assert_true (gb_hook_parse ("blocks.0.attn.hook_pattern", &hook, &layer));
  g_assert_cmpint (hook, ==, GB_HOOK_PATTERN);
  for (guint h = 0; h < GB_N_HOOKS; h++)
    {
      g_autofree char *name = g_strdup_printf ("blocks.7.%s", gb_hook_name (h));
      g_assert_true (gb_hook_parse (name, &hook, &layer));
      g_assert_cmpint (hook, ==, h);
      g_assert_cmpuint (layer, ==, 7);
    }
  const char *bad[] = { "blocks.x.hook_resid_pre", "blocks.1.hook_nothing", "resid_pre", "blocks..hook_resid_pre",
                        "blocks.99999999999.hook_resid_pre" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (gb_hook_parse (bad[i], &hook, &layer));
}

/* A small model shared by the tests below. */
static GbModel *shared_model;

static GbModel *
tiny_model (void)
{
  if (shared_model == NULL)
    {
      g_autofree char *dir = gb_test_tmpdir ();
      g_autoptr (GError) error = NULL;
      gb_test_write_model (dir, 3, 4, 32, 64, FALSE, 42);
      shared_model = gb_model_load (dir, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
    }
  return shared_model;
}

static const gint32 tokens[] = { 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33 };
#define T G_N_ELEMENTS (tokens)

static GbTrace *
run (const GbRecord       *rec,
     const GbIntervention *iv,
     guint                 n_iv)
{
  g_autoptr (GError) error = NULL;
  GbTrace *trace = gb_model_forward (tiny_model (), tokens, T, rec, iv, n_iv, NULL, &error);
  g_assert_no_error (error);
  return trace;
}

static void
test_record_only_what_asked (void)
{
  GbRecord rec = { .logits = GB_LOGITS_LAST };
  rec.hooks[GB_HOOK_RESID_POST] = 1u << 1;
  g_autoptr (GbTrace) trace = run (&rec, NULL, 0);

  g_assert_cmpuint (trace->n_logit_rows, ==, 1);
  g_assert_nonnull (gb_trace_get (trace, GB_HOOK_RESID_POST, 1));
  g_assert_null (gb_trace_get (trace, GB_HOOK_RESID_POST, 0));
  g_assert_null (gb_trace_get (trace, GB_HOOK_RESID_POST, 2));
  for (guint h = 0; h < GB_N_HOOKS; h++)
    if (h != GB_HOOK_RESID_POST)
      g_assert_null (trace->acts[h]);

  GbRecord none = { .logits = GB_LOGITS_NONE };
  g_autoptr (GbTrace) bare = run (&none, NULL, 0);
  g_assert_null (bare->logits);
}

static void
test_trace_consistency (void)
{
  /* resid_pre of block L+1 is resid_post of block L; attention rows sum to 1
   * and are zero above the diagonal; last-only logits equal the last row of all. */
  GbRecord rec = { .logits = GB_LOGITS_ALL };
  rec.hooks[GB_HOOK_RESID_PRE] = rec.hooks[GB_HOOK_RESID_POST] = rec.hooks[GB_HOOK_PATTERN] = GB_ALL_LAYERS;
  g_autoptr (GbTrace) trace = run (&rec, NULL, 0);
  const GbConfig *c = gb_model_get_config (tiny_model ());

  for (guint l = 0; l + 1 < c->n_layer; l++)
    g_assert_cmpmem (gb_trace_get (trace, GB_HOOK_RESID_POST, l), T * c->n_embd * sizeof (float),
                     gb_trace_get (trace, GB_HOOK_RESID_PRE, l + 1), T * c->n_embd * sizeof (float));
  for (guint l = 0; l < c->n_layer; l++)
    for (guint h = 0; h < c->n_head; h++)
      for (guint q = 0; q < T; q++)
        {
          const float *row = gb_trace_get (trace, GB_HOOK_PATTERN, l) + ((gsize) h * T + q) * T;
          double sum = 0;
          for (guint k = 0; k < T; k++)
            {
              if (k > q)
                g_assert_cmpfloat (row[k], ==, 0);
              sum += row[k];
            }
          g_assert_cmpfloat (fabs (sum - 1), <, 1e-5);
        }
  g_autoptr (GbTrace) last = run (NULL, NULL, 0);
  g_assert_cmpfloat (max_rel_error (last->logits, trace->logits + (T - 1) * c->n_vocab, c->n_vocab), <, 1e-6);
}

static void
test_add_vector (void)
{
  const GbConfig *c = gb_model_get_config (tiny_model ());
  g_autofree float *v = g_new (float, c->n_embd);
  g_autoptr (GRand) rng = g_rand_new_with_seed (3);
  fill_random (rng, v, c->n_embd);

  GbRecord rec = { .logits = GB_LOGITS_ALL };
  rec.hooks[GB_HOOK_RESID_PRE] = 1u << 1;
  GbIntervention add = { .kind = GB_INTERVENE_ADD, .hook = GB_HOOK_RESID_PRE, .layer = 1, .multiplier = 2.5f,
                         .start_pos = 5, .values = v };
  g_autoptr (GbTrace) base = run (&rec, NULL, 0);
  g_autoptr (GbTrace) steered = run (&rec, &add, 1);
  const float *b = gb_trace_get (base, GB_HOOK_RESID_PRE, 1), *s = gb_trace_get (steered, GB_HOOK_RESID_PRE, 1);

  for (guint t = 0; t < T; t++)
    for (guint i = 0; i < c->n_embd; i++)
      {
        float expect = b[t * c->n_embd + i] + (t >= 5 ? 2.5f * v[i] : 0.f);
        g_assert_cmpfloat (s[t * c->n_embd + i], ==, expect);
      }
  /* Causal: logits before position 5 are unchanged, after it they move. */
  g_assert_cmpmem (base->logits, 5 * c->n_vocab * sizeof (float), steered->logits, 5 * c->n_vocab * sizeof (float));
  g_assert_cmpfloat (max_rel_error (base->logits + 5 * c->n_vocab, steered->logits + 5 * c->n_vocab, c->n_vocab), >, 1e-3);
}

static void
test_zero_heads (void)
{
  /* Ablating every head of block 0 leaves only c_proj's bias (zero here) in its output. */
  const GbConfig *c = gb_model_get_config (tiny_model ());
  g_autofree GbIntervention *iv = g_new0 (GbIntervention, c->n_head);
  for (guint h = 0; h < c->n_head; h++)
    iv[h] = (GbIntervention) { .kind = GB_INTERVENE_SCALE_HEAD, .layer = 0, .head = h, .multiplier = 0.f };
  GbRecord rec = { .logits = GB_LOGITS_NONE };
  rec.hooks[GB_HOOK_ATTN_OUT] = 1u;
  g_autoptr (GbTrace) trace = run (&rec, iv, c->n_head);
  const float *out = gb_trace_get (trace, GB_HOOK_ATTN_OUT, 0);
  for (guint i = 0; i < T * c->n_embd; i++)
    g_assert_cmpfloat (out[i], ==, 0.f);

  /* Scaling one head by 1 changes nothing. */
  GbIntervention one = { .kind = GB_INTERVENE_SCALE_HEAD, .layer = 2, .head = 1, .multiplier = 1.f };
  g_autoptr (GbTrace) a = run (NULL, &one, 1);
  g_autoptr (GbTrace) b = run (NULL, NULL, 0);
  g_assert_cmpmem (a->logits, c->n_vocab * sizeof (float), b->logits, c->n_vocab * sizeof (float));
}

static void
test_patching (void)
{
  /* Replacing the final residual stream with another text's gives that text's logits. */
  const GbConfig *c = gb_model_get_config (tiny_model ());
  static const gint32 other[T] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
  GbRecord rec = { .logits = GB_LOGITS_ALL };
  rec.hooks[GB_HOOK_RESID_POST] = GB_ALL_LAYERS;
  g_autoptr (GError) error = NULL;
  g_autoptr (GbTrace) donor = gb_model_forward (tiny_model (), other, T, &rec, NULL, 0, NULL, &error);
  g_assert_no_error (error);

  GbIntervention patch = { .kind = GB_INTERVENE_REPLACE, .hook = GB_HOOK_RESID_POST, .layer = c->n_layer - 1,
                           .start_pos = 0, .n_positions = T,
                           .values = gb_trace_get (donor, GB_HOOK_RESID_POST, c->n_layer - 1) };
  g_autoptr (GbTrace) patched = run (&rec, &patch, 1);
  g_assert_cmpfloat (max_rel_error (patched->logits, donor->logits, T * c->n_vocab), <, 1e-6);
}

static void
test_errors (void)
{
  GbModel *model = tiny_model ();
  g_autoptr (GError) error = NULL;
  gint32 bad[] = { 1, 9999 };
  g_autofree gint32 *long_seq = g_new0 (gint32, 65);

  g_assert_null (gb_model_forward (model, bad, 2, NULL, NULL, 0, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (gb_model_forward (model, long_seq, 65, NULL, NULL, 0, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_LIMIT);
  g_clear_error (&error);
  g_assert_null (gb_model_forward (model, bad, 0, NULL, NULL, 0, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);
  GbIntervention iv = { .kind = GB_INTERVENE_SCALE_HEAD, .layer = 3, .multiplier = 0 };
  g_assert_null (gb_model_forward (model, tokens, T, NULL, &iv, 1, NULL, &error));
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
  g_clear_error (&error);

  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_cancellable_cancel (cancel);
  g_assert_null (gb_model_forward (model, tokens, T, NULL, NULL, 0, cancel, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_dtypes_agree (void)
{
  /* The same weights stored as F16 load to the same values as the F32 file
   * rounded through half precision. */
  g_autofree char *dir = gb_test_tmpdir ();
  g_autoptr (GError) error = NULL;
  GbModelShape shape = { 1, 2, 16, 16, 257 };
  gb_test_write_vocab (dir, FALSE);
  g_assert_true (gb_model_write_random (dir, &shape, GB_DTYPE_BF16, 5, &error));
  g_autoptr (GbModel) m16 = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (gb_model_write_random (dir, &shape, GB_DTYPE_F32, 5, &error));
  g_autoptr (GbModel) m32 = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (GbTrace) a = gb_model_forward (m16, tokens, 8, NULL, NULL, 0, NULL, &error);
  g_autoptr (GbTrace) b = gb_model_forward (m32, tokens, 8, NULL, NULL, 0, NULL, &error);
  g_assert_no_error (error);
  double err = max_rel_error (a->logits, b->logits, 257);
  g_test_message ("bf16 vs f32 logits: max relative error %.3g", err);
  g_assert_cmpfloat (err, >, 0);
  g_assert_cmpfloat (err, <, 0.05);
  g_assert_cmpuint (gb_model_get_n_params (m16), ==, gb_model_get_n_params (m32));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/kernels/matmul", test_matmul);
  g_test_add_func ("/engine/kernels/packed-matmul", test_packed_matmul);
  g_test_add_func ("/engine/kernels/packed-concurrent", test_packed_concurrent);
  g_test_add_func ("/engine/kernels/strided-causal", test_strided_matmul);
  g_test_add_func ("/engine/kernels/vector", test_vector_kernels);
  g_test_add_func ("/engine/kernels/packed-transposed", test_packed_transposed);
  g_test_add_func ("/engine/kernels/pool", test_pool);
  g_test_add_func ("/engine/kernels/expf", test_expf);
  g_test_add_func ("/engine/kernels/gelu-new", test_gelu);
  g_test_add_func ("/engine/kernels/softmax-layernorm", test_softmax_layernorm);
  g_test_add_func ("/engine/forward/hook-names", test_hook_names);
  g_test_add_func ("/engine/forward/record-only-what-asked", test_record_only_what_asked);
  g_test_add_func ("/engine/forward/trace-consistency", test_trace_consistency);
  g_test_add_func ("/engine/forward/add-vector", test_add_vector);
  g_test_add_func ("/engine/forward/zero-heads", test_zero_heads);
  g_test_add_func ("/engine/forward/patching", test_patching);
  g_test_add_func ("/engine/forward/errors", test_errors);
  g_test_add_func ("/engine/forward/dtypes-agree", test_dtypes_agree);
  int status = g_test_run ();
  g_clear_pointer (&shared_model, gb_model_unref);
  return status;
}
