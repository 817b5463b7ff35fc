/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Matrix products against weights packed once, at load.
 *
 * OpenBLAS packs both operands on every call. For a prefill of a hundred or
 * so tokens, packing the weights (read from memory, written to a buffer, read
 * again) took a quarter of the time: each weight is used only T times. A
 * GbPackedMatrix holds a [K, N] weight matrix in the layout the kernel reads,
 * panels of GB_PACK_NR columns, each panel's K rows contiguous, so a product
 * streams the weights once, and the kernel prefetches the next panel while it
 * works on this one. The bias and the tanh GELU are applied as the results
 * are stored, so the MLP's activation costs no pass of its own.
 *
 * The kernels need AVX-512F; gb_packed_new() returns NULL on a CPU without
 * it (or when $GLASSBOX_PACKED_GEMM is 0, or memory runs out), and callers
 * keep using OpenBLAS. Each output is a float32 sum of fused multiply-adds
 * over K, in order within chunks of 768 and the chunks added in order (the
 * row dots and softmax sum 16 lanes apart, then reduce), so results differ
 * from OpenBLAS's only by float32 rounding. */

#define GB_PACK_NR 48

typedef struct _GbPackedMatrix GbPackedMatrix;

typedef enum
{
  GB_EPILOGUE_NONE,
  GB_EPILOGUE_GELU_NEW, /* gelu_new after the bias, as gb_gelu_new() computes it */
} GbEpilogue;

/* Whether this CPU (and the environment) allows packed products. */
gboolean        gb_packed_supported (void);
/* Bytes a packed copy of a [K, N] matrix takes. */
guint64         gb_packed_bytes (guint K,
                                 guint N);
/* A packed copy of w[K, N] (row-major), or NULL where unsupported. */
GbPackedMatrix *gb_packed_new (const float *w,
                               guint        K,
                               guint        N);
/* Room for a packed [K, N] matrix, not filled in (gb_packed_fill_transposed). */
GbPackedMatrix *gb_packed_alloc (guint K,
                                 guint N);
void            gb_packed_free (GbPackedMatrix *p);
/* Refills @p (made for a [K, N] matrix) from wt[N, K], the transpose: a
 * matrix that changes every step (the SAE trainer's encoder), packed anew. */
void            gb_packed_fill_transposed (GbPackedMatrix *p,
                                           const float    *wt);
guint           gb_packed_get_k (const GbPackedMatrix *p);
guint           gb_packed_get_n (const GbPackedMatrix *p);

/* out[T, N] = epilogue(in[T, K] @ w + bias) (bias may be NULL). Splits the
 * panels across the worker threads (gb_parallel_for). */
void gb_packed_matmul (float                *out,
                       const float          *in,
                       const GbPackedMatrix *w,
                       const float          *bias,
                       guint                 T,
                       GbEpilogue            epilogue);

/* The attention's products, one head at a time, on the calling thread:
 * c[M, N] = alpha * a[M, K] @ b[K, N], every operand row-major with its own
 * row stride, none packed. Causal limits, for row block r0..r0+m-1 (blocks
 * of 8 rows), limit = offset + r0 + m:
 *   GB_CAUSAL_COLUMNS  only columns below limit are written (q k^T: the
 *                      keys a block of queries sees);
 *   GB_CAUSAL_DEPTH    the sum runs over k below limit only (p v: the
 *                      probabilities past it are zero).
 * Only where gb_packed_supported(). */
typedef enum
{
  GB_CAUSAL_NONE,
  GB_CAUSAL_COLUMNS,
  GB_CAUSAL_DEPTH,
} GbCausal;

void gb_gemm_strided (float       *c,
                      gsize        ldc,
                      const float *a,
                      gsize        lda,
                      const float *b,
                      gsize        ldb,
                      guint        M,
                      guint        K,
                      guint        N,
                      float        alpha,
                      GbCausal     causal,
                      guint        offset);

/* out[r] = w[r, :] . x for r < rows (w row-major [rows, cols]): the
 * unembedding of one position, split across the worker pool. Only where
 * gb_packed_supported(). */
void gb_row_dots (float       *out,
                  const float *w,
                  const float *x,
                  guint        rows,
                  guint        cols);

/* out[r] = alpha * w[r * ldw .. + cols] . x for r < rows, on the calling
 * thread (one decode step's attention scores). */
void gb_row_dots_strided (float       *out,
                          const float *w,
                          gsize        ldw,
                          const float *x,
                          guint        rows,
                          guint        cols,
                          float        alpha);

/* gb_softmax() in 16 lanes (the sum in another order, so the last bit may
 * differ). Only where gb_packed_supported(). */
void gb_softmax_avx512 (float *row,
                        guint  n);

/* y += a x, and x . y, over n floats: the sparse SAE kernels' inner loops
 * (16 lanes where AVX-512 is, plain loops elsewhere). */
void  gb_axpy (guint        n,
               float        a,
               const float *x,
               float       *y);
float gb_dot (guint        n,
              const float *x,
              const float *y);
/* y += a x; returns x . w (one pass over x). */
float gb_axpy_dot (guint        n,
                   float        a,
                   const float *x,
                   float       *y,
                   const float *w);

G_END_DECLS
