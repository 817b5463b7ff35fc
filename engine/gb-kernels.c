/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "gb-gemm.h"
#include "gb-kernels.h"

/* Debian's OpenBLAS exports these; they are not in every cblas.h. */
extern void openblas_set_num_threads (int n);
extern int  openblas_get_num_threads (void);

void
gb_blas_set_threads (int n)
{
  if (n > 0)
    openblas_set_num_threads (n);
}

int
gb_blas_get_threads (void)
{
  return openblas_get_num_threads ();
}

/* out[T,N] = in[T,K] @ w[K,N] + bias[N]
 * One row is a matrix-vector product: OpenBLAS's sgemv reads the weights at
 * memory bandwidth, its one-row sgemm is about 3x slower. */
void
gb_matmul (float       *out,
           const float *in,
           const float *w,
           const float *bias,
           guint        T,
           guint        K,
           guint        N)
{
  float beta = 0.f;

  if (bias != NULL)
    {
      for (guint t = 0; t < T; t++)
        memcpy (out + (gsize) t * N, bias, N * sizeof (float));
      beta = 1.f;
    }
  if (T == 1)
    cblas_sgemv (CblasRowMajor, CblasTrans, K, N, 1.f, w, N, in, 1, beta, out, 1);
  else
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, K, 1.f, in, K, w, N, beta, out, N);
}

/* out[T,N] = in[T,K] @ w[N,K]^T */
void
gb_matmul_bt (float       *out,
              const float *in,
              const float *w,
              guint        T,
              guint        K,
              guint        N)
{
  if (T == 1 && gb_packed_supported ())
    gb_row_dots (out, w, in, N, K);
  else if (T == 1)
    cblas_sgemv (CblasRowMajor, CblasNoTrans, N, K, 1.f, w, K, in, 1, 0.f, out, 1);
  else
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.f, in, K, w, K, 0.f, out, N);
}

void
gb_matmul_naive (float       *out,
                 const float *in,
                 const float *w,
                 const float *bias,
                 guint        T,
                 guint        K,
                 guint        N)
{
  for (guint t = 0; t < T; t++)
    for (guint n = 0; n < N; n++)
      {
        double acc = bias ? bias[n] : 0.0;
        for (guint k = 0; k < K; k++)
          acc += (double) in[(gsize) t * K + k] * w[(gsize) k * N + n];
        out[(gsize) t * N + n] = (float) acc;
      }
}

/* Two passes (mean, then centred variance) as PyTorch does; the variance is
 * biased (divided by D). */
void
gb_layernorm (float       *out,
              const float *in,
              const float *w,
              const float *b,
              guint        T,
              guint        D,
              float        eps)
{
  for (guint t = 0; t < T; t++)
    {
      const float *x = in + (gsize) t * D;
      float *y = out + (gsize) t * D;
      float mean = 0.f, var = 0.f;
      for (guint i = 0; i < D; i++)
        mean += x[i];
      mean /= D;
      for (guint i = 0; i < D; i++)
        var += (x[i] - mean) * (x[i] - mean);
      var /= D;
      float rstd = 1.f / sqrtf (var + eps);
      for (guint i = 0; i < D; i++)
        y[i] = (x[i] - mean) * rstd * w[i] + b[i];
    }
}

/* gelu_new(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
 * written as x * sigmoid(2u), which is the same function and stays accurate
 * where tanh(u) is near -1. */
void
gb_gelu_new (float *x,
             gsize  n)
{
  for (gsize i = 0; i < n; i++)
    {
      float v = x[i];
      float u2 = 1.5957691216057308f * (v + 0.044715f * v * v * v);
      x[i] = v / (1.f + gb_expf_inline (-u2));
    }
}

void
gb_gelu_erf (float *x,
             gsize  n)
{
  for (gsize i = 0; i < n; i++)
    x[i] = 0.5f * x[i] * (1.f + erff (x[i] * (float) M_SQRT1_2));
}

float
gb_expf (float x)
{
  return gb_expf_inline (x);
}

void
gb_softmax (float *row,
            guint  n)
{
  float max = -INFINITY, sum = 0.f;

  if (gb_packed_supported ())
    {
      gb_softmax_avx512 (row, n);
      return;
    }
  /* A plain comparison (not fmaxf, a libm call here) so the loop vectorises. */
  for (guint i = 0; i < n; i++)
    max = row[i] > max ? row[i] : max;
  for (guint i = 0; i < n; i++)
    {
      row[i] = gb_expf_inline (row[i] - max);
      sum += row[i];
    }
  float inv = 1.f / sum;
  for (guint i = 0; i < n; i++)
    row[i] *= inv;
}
