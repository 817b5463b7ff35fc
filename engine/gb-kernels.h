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

/* exp(x) to about 1 ulp, vectorisable. */
float gb_expf (float x);

/* Sets the thread count of OpenBLAS (0 = its default). */
void gb_blas_set_threads (int n);
int  gb_blas_get_threads (void);

G_END_DECLS
