/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Plain kernels on raw float32 arrays, row-major. Shapes in each comment;
 * outputs first. None allocates, none fails. */

/* out[T,N] = in[T,K] @ w[K,N] + bias[N] (bias may be NULL). */
void gb_matmul (float       *out,
                const float *in,
                const float *w,
                const float *bias,
                guint        T,
                guint        K,
                guint        N);
/* out[T,N] = in[T,K] @ w[N,K]^T (the unembedding: w is [V, D]). */
void gb_matmul_bt (float       *out,
                   const float *in,
                   const float *w,
                   guint        T,
                   guint        K,
                   guint        N);
/* The naive triple loop (double accumulation), for tests. */
void gb_matmul_naive (float       *out,
                      const float *in,
                      const float *w,
                      const float *bias,
                      guint        T,
                      guint        K,
                      guint        N);

/* out[T,D] = (in - mean) / sqrt(var + eps) * w + b, per row. out may alias in. */
void gb_layernorm (float       *out,
                   const float *in,
                   const float *w,
                   const float *b,
                   guint        T,
                   guint        D,
                   float        eps);

/* x[n] = gelu(x), tanh form (gelu_new) or erf form. */
void gb_gelu_new (float *x,
                  gsize  n);
void gb_gelu_erf (float *x,
                  gsize  n);

/* Softmax over row[0..n) in place. */
void gb_softmax (float *row,
                 guint  n);

/* exp(x) to about 1e-7 relative: Cody-Waite range reduction and a degree-6
 * polynomial (Cephes expf). Inline, with no libm calls (ternary clamps, the
 * 1.5 * 2^23 rounding trick), so the loops that call it vectorise. */
static inline float
gb_expf_inline (float x)
{
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.37f ? 88.37f : x; /* 2^127 is the largest power of two */
  float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  union { gint32 i; float f; } scale = { .i = ((gint32) n + 127) << 23 };
  return p * scale.f;
}

float gb_expf (float x);

/* Sets the thread count of OpenBLAS (0 = its default). */
void gb_blas_set_threads (int n);
int  gb_blas_get_threads (void);

G_END_DECLS
