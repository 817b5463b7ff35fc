/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include "gb-gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gb-kernels.h"
#include "gb-parallel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX512_KERNELS 1
#include <immintrin.h>
/* GCC 12 flags the deliberately undefined vectors inside some AVX-512
 * intrinsics (_mm512_cvttps_epi32 and others) once they are inlined. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define NR GB_PACK_NR
/* Rows of the output one kernel call computes: 8 rows x 48 columns is 24
 * accumulators of the 32 vector registers. */
#define MR 8
/* The reduction is split in chunks of KC rows of the panel, so a chunk of
 * the panel (KC x 48 floats, 144 KiB) and the KC columns of the input rows
 * stay in the core's L2 cache while every row block uses them. */
#define KC 768

struct _GbPackedMatrix
{
  guint  K, N, n_panels;
  float *data; /* [n_panels][K][NR], 64-byte aligned, zero past column N */
};

gboolean
gb_packed_supported (void)
{
  static gsize once;
  static gboolean supported;

  if (g_once_init_enter (&once))
    {
      const char *env = g_getenv ("GLASSBOX_PACKED_GEMM");
      gboolean ok = FALSE;
#ifdef HAVE_AVX512_KERNELS
      __builtin_cpu_init ();
      ok = __builtin_cpu_supports ("avx512f");
#endif
      if (env != NULL && g_str_equal (env, "0"))
        ok = FALSE;
      supported = ok;
      g_once_init_leave (&once, 1);
    }
  return supported;
}

guint64
gb_packed_bytes (guint K,
                 guint N)
{
  return (guint64) ((N + NR - 1) / NR) * K * NR * sizeof (float);
}

typedef struct
{
  GbPackedMatrix *p;
  const float    *w;
  guint           n_parts;
  gboolean        transposed; /* w is [N, K] */
} Packing;

/* One part: a run of panels, row by row, so the source (a memory-mapped
 * file, often) is read in order. */
static void
pack_part (guint    part,
           gpointer data)
{
  const Packing *pk = data;
  GbPackedMatrix *p = pk->p;
  const guint q0 = (guint) ((guint64) p->n_panels * part / pk->n_parts);
  const guint q1 = (guint) ((guint64) p->n_panels * (part + 1) / pk->n_parts);

  if (pk->transposed)
    {
      /* Panel by panel: its 48 source rows, each read in order, scattered
       * 48 floats apart into the panel (which stays in L2). */
      for (guint q = q0; q < q1; q++)
        {
          float *panel = p->data + (gsize) q * p->K * NR;
          const guint n0 = q * NR, width = MIN (NR, p->N - n0);
          for (guint c = 0; c < NR; c++)
            {
              const float *src = pk->w + (gsize) (n0 + c) * p->K;
              if (c < width)
                for (guint k = 0; k < p->K; k++)
                  panel[(gsize) k * NR + c] = src[k];
              else
                for (guint k = 0; k < p->K; k++)
                  panel[(gsize) k * NR + c] = 0.f;
            }
        }
      return;
    }
  for (guint k = 0; k < p->K; k++)
    {
      const float *row = pk->w + (gsize) k * p->N;
      for (guint q = q0; q < q1; q++)
        {
          float *dst = p->data + ((gsize) q * p->K + k) * NR;
          const guint n0 = q * NR, width = MIN (NR, p->N - n0);
          memcpy (dst, row + n0, width * sizeof (float));
          if (width < NR)
            memset (dst + width, 0, (NR - width) * sizeof (float));
        }
    }
}

GbPackedMatrix *
gb_packed_new (const float *w,
               guint        K,
               guint        N)
{
  GbPackedMatrix *p = gb_packed_alloc (K, N);
  if (p == NULL)
    return NULL;
  Packing pk = { p, w, MIN (p->n_panels, 8), FALSE };
  gb_parallel_for (pk.n_parts, pack_part, &pk);
  return p;
}

GbPackedMatrix *
gb_packed_alloc (guint K,
                 guint N)
{
  if (!gb_packed_supported () || K == 0 || N == 0)
    return NULL;

  GbPackedMatrix *p = g_new0 (GbPackedMatrix, 1);
  p->K = K;
  p->N = N;
  p->n_panels = (N + NR - 1) / NR;
  const gsize bytes = gb_packed_bytes (K, N), huge = 2 << 20;
  /* In 2 MiB pages where the kernel offers them (transparent huge pages in
   * "madvise" mode, Debian's default): a few hundred page faults instead of
   * a hundred thousand while packing, and fewer TLB misses while reading. */
  if (posix_memalign ((void **) &p->data, bytes >= huge ? huge : 64, bytes) != 0)
    {
      /* The caller keeps the unpacked matrix and OpenBLAS. */
      g_warning ("could not allocate %" G_GSIZE_FORMAT " bytes to pack a %u x %u matrix", bytes, K, N);
      g_free (p);
      return NULL;
    }
#ifdef MADV_HUGEPAGE
  if (bytes >= huge)
    madvise (p->data, bytes / huge * huge, MADV_HUGEPAGE);
#endif
  return p;
}

void
gb_packed_fill_transposed (GbPackedMatrix *p,
                           const float    *wt)
{
  Packing pk = { p, wt, MIN (p->n_panels, 8), TRUE };
  gb_parallel_for (pk.n_parts, pack_part, &pk);
}

void
gb_packed_free (GbPackedMatrix *p)
{
  if (p == NULL)
    return;
  free (p->data);
  g_free (p);
}

guint
gb_packed_get_k (const GbPackedMatrix *p)
{
  return p->K;
}

guint
gb_packed_get_n (const GbPackedMatrix *p)
{
  return p->N;
}

#ifdef HAVE_AVX512_KERNELS

#define AVX512 __attribute__ ((target ("avx512f")))

/* exp(x) as gb_expf_inline computes it, 16 lanes. */
static inline AVX512 __m512
exp16 (__m512 x)
{
  /* The constant first: MAXPS/MINPS return the second operand when one is
   * NaN, so a NaN stays NaN (as in gb_expf_inline's comparisons). */
  x = _mm512_max_ps (_mm512_set1_ps (-87.3f), x);
  x = _mm512_min_ps (_mm512_set1_ps (88.37f), x);
  const __m512 magic = _mm512_set1_ps (12582912.f);
  __m512 n = _mm512_sub_ps (_mm512_fmadd_ps (x, _mm512_set1_ps (1.44269504088896341f), magic), magic);
  __m512 r = _mm512_fnmadd_ps (n, _mm512_set1_ps (0.693359375f), x);
  r = _mm512_fmadd_ps (n, _mm512_set1_ps (2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps (1.9875691500e-4f);
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.3981999507e-3f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (8.3334519073e-3f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (4.1665795894e-2f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.6666665459e-1f));
  p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (5.0000001201e-1f));
  p = _mm512_fmadd_ps (_mm512_mul_ps (p, r), r, _mm512_add_ps (r, _mm512_set1_ps (1.f)));
  __m512i e = _mm512_slli_epi32 (_mm512_add_epi32 (_mm512_cvttps_epi32 (n), _mm512_set1_epi32 (127)), 23);
  return _mm512_mul_ps (p, _mm512_castsi512_ps (e));
}

/* gelu_new(v) = v / (1 + exp(-2u)), u = sqrt(2/pi) (v + 0.044715 v^3). */
static inline AVX512 __m512
gelu16 (__m512 v)
{
  __m512 v3 = _mm512_mul_ps (_mm512_mul_ps (v, v), v);
  __m512 u2 = _mm512_mul_ps (_mm512_set1_ps (1.5957691216057308f), _mm512_fmadd_ps (_mm512_set1_ps (0.044715f), v3, v));
  return _mm512_div_ps (v, _mm512_add_ps (_mm512_set1_ps (1.f), exp16 (_mm512_sub_ps (_mm512_setzero_ps (), u2))));
}

typedef struct
{
  const float *a;   /* row 0 of the block, lda apart */
  gsize        lda;
  const float *b;   /* the panel chunk: kc rows of NR floats, ldb apart */
  gsize        ldb;
  float       *c;   /* row 0, column 0 of the tile, ldc apart */
  gsize        ldc;
  guint        kc;
  guint        width;      /* columns of the tile that exist (<= NR) */
  gboolean     padded;     /* b's rows hold NR floats whatever the width */
  gboolean     accumulate; /* add to c (a later chunk of K) */
  gboolean     finish;     /* the last chunk: alpha, bias and epilogue */
  float        alpha;      /* multiplies the product (not what is accumulated) */
  const float *bias;       /* NR floats past column 0, or NULL */
  GbEpilogue   epilogue;
  const char  *prefetch;   /* the next chunk's bytes to pull into L2 */
  guint        prefetch_lines;
  guint        prefetch_every; /* one line per this many steps of k */
} Tile;

/* The kernel, for compile-time m rows (1..MR) and nv vectors of 16 columns
 * (1..3). Written out register by register (accN0..accN2 for row N): with
 * arrays and loops, GCC kept the accumulators in memory for some (m, nv) and
 * the products ran at half speed. */
#define ACC_DECL(i) __m512 acc##i##0 = _mm512_setzero_ps (), acc##i##1 = acc##i##0, acc##i##2 = acc##i##0
#define ACC_FMA(i)                                                         \
  if (m > i)                                                               \
    {                                                                      \
      const __m512 x = _mm512_set1_ps (t->a[i * t->lda + k]);              \
      acc##i##0 = _mm512_fmadd_ps (x, b0, acc##i##0);                      \
      if (nv > 1)                                                          \
        acc##i##1 = _mm512_fmadd_ps (x, b1, acc##i##1);                    \
      if (nv > 2)                                                          \
        acc##i##2 = _mm512_fmadd_ps (x, b2, acc##i##2);                    \
    }
#define ACC_STORE(i)                                                       \
  if (m > i)                                                               \
    {                                                                      \
      store (t, t->c + i * t->ldc, acc##i##0, mask0, bias0);               \
      if (nv > 1)                                                          \
        store (t, t->c + i * t->ldc + 16, acc##i##1, mask1, bias1);        \
      if (nv > 2)                                                          \
        store (t, t->c + i * t->ldc + 32, acc##i##2, mask2, bias2);        \
    }

static inline AVX512 __attribute__ ((always_inline)) void
store (const Tile *t,
       float      *c,
       __m512      v,
       __mmask16   mask,
       __m512      bias)
{
  if (t->alpha != 1.f)
    v = _mm512_mul_ps (v, _mm512_set1_ps (t->alpha));
  if (t->accumulate)
    v = _mm512_add_ps (_mm512_maskz_loadu_ps (mask, c), v);
  if (t->finish)
    {
      v = _mm512_add_ps (v, bias);
      if (t->epilogue == GB_EPILOGUE_GELU_NEW)
        v = gelu16 (v);
    }
  _mm512_mask_storeu_ps (c, mask, v);
}

static inline __mmask16
column_mask (guint width,
             guint j)
{
  const int cols = (int) width - 16 * (int) j;
  return cols >= 16 ? 0xffff : cols <= 0 ? 0 : (__mmask16) ((1u << cols) - 1);
}

static inline AVX512 __attribute__ ((always_inline)) void
kernel (const Tile    *t,
        const guint    m,
        const guint    nv,
        const gboolean masked)
{
  const float *b = t->b;
  const char *pf = t->prefetch;
  guint pf_left = t->prefetch_lines, countdown = 1;
  const __mmask16 mask0 = column_mask (t->width, 0), mask1 = column_mask (t->width, 1),
                  mask2 = column_mask (t->width, 2);
  ACC_DECL (0); ACC_DECL (1); ACC_DECL (2); ACC_DECL (3);
  ACC_DECL (4); ACC_DECL (5); ACC_DECL (6); ACC_DECL (7);

  for (guint k = 0; k < t->kc; k++, b += t->ldb)
    {
      if (pf_left > 0 && --countdown == 0)
        {
          _mm_prefetch (pf, _MM_HINT_T1);
          pf += 64;
          pf_left--;
          countdown = t->prefetch_every;
        }
      /* Masked loads only where a row of b ends inside the last vector
       * (they halve the speed of the whole kernel). */
      const __m512 b0 = masked && nv == 1 ? _mm512_maskz_loadu_ps (mask0, b) : _mm512_loadu_ps (b);
      const __m512 b1 = nv < 2 ? b0 : masked && nv == 2 ? _mm512_maskz_loadu_ps (mask1, b + 16) : _mm512_loadu_ps (b + 16);
      const __m512 b2 = nv < 3 ? b0 : masked ? _mm512_maskz_loadu_ps (mask2, b + 32) : _mm512_loadu_ps (b + 32);
      ACC_FMA (0) ACC_FMA (1) ACC_FMA (2) ACC_FMA (3)
      ACC_FMA (4) ACC_FMA (5) ACC_FMA (6) ACC_FMA (7)
    }

  __m512 bias0 = _mm512_setzero_ps (), bias1 = bias0, bias2 = bias0;
  if (t->finish && t->bias != NULL)
    {
      bias0 = _mm512_maskz_loadu_ps (mask0, t->bias);
      if (nv > 1)
        bias1 = _mm512_maskz_loadu_ps (mask1, t->bias + 16);
      if (nv > 2)
        bias2 = _mm512_maskz_loadu_ps (mask2, t->bias + 32);
    }
  ACC_STORE (0) ACC_STORE (1) ACC_STORE (2) ACC_STORE (3)
  ACC_STORE (4) ACC_STORE (5) ACC_STORE (6) ACC_STORE (7)
}

#define KERNEL_ROWS(nv, masked)                 \
  switch (m)                                    \
    {                                           \
    case 8: kernel (t, 8, nv, masked); break;   \
    case 7: kernel (t, 7, nv, masked); break;   \
    case 6: kernel (t, 6, nv, masked); break;   \
    case 5: kernel (t, 5, nv, masked); break;   \
    case 4: kernel (t, 4, nv, masked); break;   \
    case 3: kernel (t, 3, nv, masked); break;   \
    case 2: kernel (t, 2, nv, masked); break;   \
    case 1: kernel (t, 1, nv, masked); break;   \
    default: g_assert_not_reached ();           \
    }

/* The kernel loads 16 * nv floats of each row of b; where t->width is not
 * a multiple of 16 the last load is masked, unless b is a packed panel
 * (padded with zeros to 48 columns). */
static AVX512 void
run_tile (const Tile *t,
          guint       m)
{
  const gboolean masked = t->width % 16 != 0 && !t->padded;
  if (t->width > 32 && masked)
    KERNEL_ROWS (3, TRUE)
  else if (t->width > 32)
    KERNEL_ROWS (3, FALSE)
  else if (t->width > 16 && masked)
    KERNEL_ROWS (2, TRUE)
  else if (t->width > 16)
    KERNEL_ROWS (2, FALSE)
  else if (masked)
    KERNEL_ROWS (1, TRUE)
  else
    KERNEL_ROWS (1, FALSE)
}

typedef struct
{
  float                *out;
  const float          *in;
  const GbPackedMatrix *w;
  const float          *bias;
  guint                 T;
  GbEpilogue            epilogue;
  guint                 n_parts;
} Product;

/* One part: a contiguous run of panels, every row. */
static AVX512 void
product_part (guint    part,
              gpointer data)
{
  const Product *pr = data;
  const GbPackedMatrix *w = pr->w;
  const guint p0 = (guint) ((guint64) w->n_panels * part / pr->n_parts);
  const guint p1 = (guint) ((guint64) w->n_panels * (part + 1) / pr->n_parts);
  const guint K = w->K, N = w->N, T = pr->T;
  const guint n_blocks = (T + MR - 1) / MR;

  for (guint q = p0; q < p1; q++)
    {
      const float *panel = w->data + (gsize) q * K * NR;
      const guint n0 = q * NR, width = MIN (NR, N - n0);
      for (guint k0 = 0; k0 < K; k0 += KC)
        {
          const guint kc = MIN (KC, K - k0);
          const float *chunk = panel + (gsize) k0 * NR;
          /* What this part reads next: the rest of the panel, then the next
           * panel, which follow this chunk in memory. Spread its lines over
           * the row blocks. */
          const gboolean more = k0 + kc < K || q + 1 < p1;
          const guint next_kc = k0 + kc < K ? MIN (KC, K - k0 - kc) : MIN (KC, K);
          const guint lines = more ? next_kc * NR * (guint) sizeof (float) / 64 : 0;
          const guint per_block = (lines + n_blocks - 1) / n_blocks;
          for (guint blk = 0; blk < n_blocks; blk++)
            {
              const guint r0 = blk * MR, m = MIN (MR, T - r0);
              const guint first = MIN (lines, blk * per_block);
              Tile t = {
                .a = pr->in + (gsize) r0 * K + k0,
                .lda = K,
                .b = chunk,
                .ldb = NR,
                .padded = TRUE,
                .c = pr->out + (gsize) r0 * N + n0,
                .ldc = N,
                .kc = kc,
                .width = width,
                .accumulate = k0 > 0,
                .finish = k0 + kc >= K,
                .alpha = 1.f,
                .bias = pr->bias != NULL ? pr->bias + n0 : NULL,
                .epilogue = pr->epilogue,
                .prefetch = (const char *) (chunk + (gsize) kc * NR) + (gsize) first * 64,
                .prefetch_lines = MIN (per_block, lines - first),
                .prefetch_every = per_block > 0 ? MAX (1, kc / per_block) : 1,
              };
              run_tile (&t, m);
            }
        }
    }
}

void
gb_packed_matmul (float                *out,
                  const float          *in,
                  const GbPackedMatrix *w,
                  const float          *bias,
                  guint                 T,
                  GbEpilogue            epilogue)
{
  if (T == 0)
    return;
  /* Two parts per thread, so a worker that starts late is absorbed; fewer
   * when there are few panels (each part streams its panels in order, and
   * its first panel comes from memory without a prefetch). */
  const guint threads = (guint) CLAMP (gb_blas_get_threads (), 1, 64);
  const guint n_parts = MAX (1, MIN (w->n_panels / 4, 2 * threads));
  Product pr = { out, in, w, bias, T, epilogue, n_parts };
  gb_parallel_for (n_parts, product_part, &pr);
}

void
gb_gemm_strided (float       *c,
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
                 guint        offset)
{
  if (alpha == 0.f)
    {
      /* A zeroed head: exact zeros, whatever a (which may hold inf) holds. */
      for (guint r = 0; r < M; r++)
        {
          const guint limit = offset + (r / MR) * MR + MIN (MR, M - (r / MR) * MR);
          memset (c + (gsize) r * ldc, 0, (causal == GB_CAUSAL_COLUMNS ? MIN (N, limit) : N) * sizeof (float));
        }
      return;
    }
  for (guint r0 = 0; r0 < M; r0 += MR)
    {
      const guint m = MIN (MR, M - r0), limit = offset + r0 + m;
      const guint n_cols = causal == GB_CAUSAL_COLUMNS ? MIN (N, limit) : N;
      const guint depth = causal == GB_CAUSAL_DEPTH ? MIN (K, limit) : K;
      for (guint n0 = 0; n0 < n_cols; n0 += NR)
        for (guint k0 = 0; k0 < depth; k0 += KC)
          {
            const guint kc = MIN (KC, depth - k0);
            Tile t = {
              .a = a + (gsize) r0 * lda + k0,
              .lda = lda,
              .b = b + (gsize) k0 * ldb + n0,
              .ldb = ldb,
              .c = c + (gsize) r0 * ldc + n0,
              .ldc = ldc,
              .kc = kc,
              .width = MIN (NR, n_cols - n0),
              .accumulate = k0 > 0,
              .finish = k0 + kc >= depth,
              .alpha = alpha,
              .epilogue = GB_EPILOGUE_NONE,
            };
            run_tile (&t, m);
          }
    }
}

AVX512 void
gb_softmax_avx512 (float *row,
                   guint  n)
{
  const guint full = n / 16 * 16;
  const __mmask16 tail = (__mmask16) ((1u << (n - full)) - 1);
  __m512 vmax = _mm512_set1_ps (-INFINITY);
  guint i = 0;
  for (; i < full; i += 16)
    vmax = _mm512_max_ps (vmax, _mm512_loadu_ps (row + i));
  if (tail)
    vmax = _mm512_mask_max_ps (vmax, tail, vmax, _mm512_maskz_loadu_ps (tail, row + i));
  const __m512 max = _mm512_set1_ps (_mm512_reduce_max_ps (vmax));
  __m512 vsum = _mm512_setzero_ps ();
  for (i = 0; i < full; i += 16)
    {
      const __m512 e = exp16 (_mm512_sub_ps (_mm512_loadu_ps (row + i), max));
      _mm512_storeu_ps (row + i, e);
      vsum = _mm512_add_ps (vsum, e);
    }
  if (tail)
    {
      const __m512 e = exp16 (_mm512_sub_ps (_mm512_maskz_loadu_ps (tail, row + i), max));
      _mm512_mask_storeu_ps (row + i, tail, e);
      vsum = _mm512_mask_add_ps (vsum, tail, vsum, e);
    }
  const __m512 inv = _mm512_set1_ps (1.f / _mm512_reduce_add_ps (vsum));
  for (i = 0; i < full; i += 16)
    _mm512_storeu_ps (row + i, _mm512_mul_ps (_mm512_loadu_ps (row + i), inv));
  if (tail)
    _mm512_mask_storeu_ps (row + i, tail, _mm512_mul_ps (_mm512_maskz_loadu_ps (tail, row + i), inv));
}

static AVX512 void
axpy16 (guint        n,
        float        a,
        const float *x,
        float       *y)
{
  const __m512 va = _mm512_set1_ps (a);
  guint i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps (y + i, _mm512_fmadd_ps (va, _mm512_loadu_ps (x + i), _mm512_loadu_ps (y + i)));
  if (i < n)
    {
      const __mmask16 m = (__mmask16) ((1u << (n - i)) - 1);
      _mm512_mask_storeu_ps (y + i, m, _mm512_fmadd_ps (va, _mm512_maskz_loadu_ps (m, x + i), _mm512_maskz_loadu_ps (m, y + i)));
    }
}

/* y += a x and returns x . w, reading x once. */
static AVX512 float
axpy_dot16 (guint        n,
            float        a,
            const float *x,
            float       *y,
            const float *w)
{
  const __m512 va = _mm512_set1_ps (a);
  __m512 s0 = _mm512_setzero_ps (), s1 = s0;
  guint i = 0;
  for (; i + 32 <= n; i += 32)
    {
      const __m512 x0 = _mm512_loadu_ps (x + i), x1 = _mm512_loadu_ps (x + i + 16);
      _mm512_storeu_ps (y + i, _mm512_fmadd_ps (va, x0, _mm512_loadu_ps (y + i)));
      _mm512_storeu_ps (y + i + 16, _mm512_fmadd_ps (va, x1, _mm512_loadu_ps (y + i + 16)));
      s0 = _mm512_fmadd_ps (x0, _mm512_loadu_ps (w + i), s0);
      s1 = _mm512_fmadd_ps (x1, _mm512_loadu_ps (w + i + 16), s1);
    }
  for (; i < n; i += 16)
    {
      const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16) ((1u << (n - i)) - 1);
      const __m512 x0 = _mm512_maskz_loadu_ps (m, x + i);
      _mm512_mask_storeu_ps (y + i, m, _mm512_fmadd_ps (va, x0, _mm512_maskz_loadu_ps (m, y + i)));
      s0 = _mm512_fmadd_ps (x0, _mm512_maskz_loadu_ps (m, w + i), s0);
    }
  return _mm512_reduce_add_ps (_mm512_add_ps (s0, s1));
}

static AVX512 float
dot16 (guint        n,
       const float *x,
       const float *y)
{
  __m512 s0 = _mm512_setzero_ps (), s1 = s0;
  guint i = 0;
  for (; i + 32 <= n; i += 32)
    {
      s0 = _mm512_fmadd_ps (_mm512_loadu_ps (x + i), _mm512_loadu_ps (y + i), s0);
      s1 = _mm512_fmadd_ps (_mm512_loadu_ps (x + i + 16), _mm512_loadu_ps (y + i + 16), s1);
    }
  for (; i + 16 <= n; i += 16)
    s0 = _mm512_fmadd_ps (_mm512_loadu_ps (x + i), _mm512_loadu_ps (y + i), s0);
  if (i < n)
    {
      const __mmask16 m = (__mmask16) ((1u << (n - i)) - 1);
      s1 = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (m, x + i), _mm512_maskz_loadu_ps (m, y + i), s1);
    }
  return _mm512_reduce_add_ps (_mm512_add_ps (s0, s1));
}

typedef struct
{
  float       *out;
  const float *w;
  gsize        ldw;
  const float *x;
  guint        rows, cols, n_parts;
  float        alpha;
} RowDots;

/* out[r] = w[r, :] . x for a run of rows, four rows at a time (four
 * independent sums keep the loads in flight; the matrix streams from memory
 * once). */
static AVX512 void
row_dots_part (guint    part,
               gpointer data)
{
  const RowDots *d = data;
  const guint r0 = (guint) ((guint64) d->rows * part / d->n_parts);
  const guint r1 = (guint) ((guint64) d->rows * (part + 1) / d->n_parts);
  const guint C = d->cols, full = C / 16 * 16;
  const __mmask16 tail = (__mmask16) ((1u << (C - full)) - 1);

  guint r = r0;
  for (; r + 4 <= r1; r += 4)
    {
      const float *w0 = d->w + (gsize) r * d->ldw, *w1 = w0 + d->ldw, *w2 = w1 + d->ldw, *w3 = w2 + d->ldw;
      __m512 s0 = _mm512_setzero_ps (), s1 = s0, s2 = s0, s3 = s0;
      guint c = 0;
      for (; c < full; c += 16)
        {
          const __m512 x = _mm512_loadu_ps (d->x + c);
          s0 = _mm512_fmadd_ps (_mm512_loadu_ps (w0 + c), x, s0);
          s1 = _mm512_fmadd_ps (_mm512_loadu_ps (w1 + c), x, s1);
          s2 = _mm512_fmadd_ps (_mm512_loadu_ps (w2 + c), x, s2);
          s3 = _mm512_fmadd_ps (_mm512_loadu_ps (w3 + c), x, s3);
        }
      if (tail)
        {
          const __m512 x = _mm512_maskz_loadu_ps (tail, d->x + c);
          s0 = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (tail, w0 + c), x, s0);
          s1 = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (tail, w1 + c), x, s1);
          s2 = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (tail, w2 + c), x, s2);
          s3 = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (tail, w3 + c), x, s3);
        }
      d->out[r] = d->alpha * _mm512_reduce_add_ps (s0);
      d->out[r + 1] = d->alpha * _mm512_reduce_add_ps (s1);
      d->out[r + 2] = d->alpha * _mm512_reduce_add_ps (s2);
      d->out[r + 3] = d->alpha * _mm512_reduce_add_ps (s3);
    }
  for (; r < r1; r++)
    {
      const float *w0 = d->w + (gsize) r * d->ldw;
      __m512 s0 = _mm512_setzero_ps ();
      guint c = 0;
      for (; c < full; c += 16)
        s0 = _mm512_fmadd_ps (_mm512_loadu_ps (w0 + c), _mm512_loadu_ps (d->x + c), s0);
      if (tail)
        s0 = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (tail, w0 + c), _mm512_maskz_loadu_ps (tail, d->x + c), s0);
      d->out[r] = d->alpha * _mm512_reduce_add_ps (s0);
    }
}

void
gb_row_dots (float       *out,
             const float *w,
             const float *x,
             guint        rows,
             guint        cols)
{
  const guint threads = (guint) CLAMP (gb_blas_get_threads (), 1, 64);
  RowDots d = { out, w, cols, x, rows, cols, MAX (1, MIN (rows / 256, 4 * threads)), 1.f };
  gb_parallel_for (d.n_parts, row_dots_part, &d);
}

void
gb_row_dots_strided (float       *out,
                     const float *w,
                     gsize        ldw,
                     const float *x,
                     guint        rows,
                     guint        cols,
                     float        alpha)
{
  RowDots d = { out, w, ldw, x, rows, cols, 1, alpha };
  row_dots_part (0, &d);
}

#else /* no AVX-512 kernels: gb_packed_supported() is FALSE, nothing is packed */

void
gb_packed_matmul (float                *out,
                  const float          *in,
                  const GbPackedMatrix *w,
                  const float          *bias,
                  guint                 T,
                  GbEpilogue            epilogue)
{
  g_assert_not_reached ();
}

void
gb_gemm_strided (float       *c,
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
                 guint        offset)
{
  g_assert_not_reached ();
}

void
gb_row_dots (float       *out,
             const float *w,
             const float *x,
             guint        rows,
             guint        cols)
{
  g_assert_not_reached ();
}

void
gb_row_dots_strided (float       *out,
                     const float *w,
                     gsize        ldw,
                     const float *x,
                     guint        rows,
                     guint        cols,
                     float        alpha)
{
  g_assert_not_reached ();
}

void
gb_softmax_avx512 (float *row,
                   guint  n)
{
  g_assert_not_reached ();
}

#endif

void
gb_axpy (guint        n,
         float        a,
         const float *x,
         float       *y)
{
#ifdef HAVE_AVX512_KERNELS
  if (gb_packed_supported ())
    {
      axpy16 (n, a, x, y);
      return;
    }
#endif
  for (guint i = 0; i < n; i++)
    y[i] += a * x[i];
}

float
gb_dot (guint        n,
        const float *x,
        const float *y)
{
#ifdef HAVE_AVX512_KERNELS
  if (gb_packed_supported ())
    return dot16 (n, x, y);
#endif
  float s = 0.f;
  for (guint i = 0; i < n; i++)
    s += x[i] * y[i];
  return s;
}

float
gb_axpy_dot (guint        n,
             float        a,
             const float *x,
             float       *y,
             const float *w)
{
#ifdef HAVE_AVX512_KERNELS
  if (gb_packed_supported ())
    return axpy_dot16 (n, a, x, y, w);
#endif
  float s = 0.f;
  for (guint i = 0; i < n; i++)
    {
      y[i] += a * x[i];
      s += x[i] * w[i];
    }
  return s;
}
