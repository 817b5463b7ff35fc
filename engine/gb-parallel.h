/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Runs f(begin, end, data) over [0, n) split into contiguous ranges of at
 * least @grain items, on the calling thread and short-lived helper threads: as
 * many threads in all as OpenBLAS is set to use (gb_blas_get_threads), so
 * Glassbox's own loops (softmax, GELU, LayerNorm) use the cores the matrix
 * products use, never more. Returns when every range is done. Ranges must be
 * independent. Safe to call from several threads at once. */
typedef void (*GbRangeFunc) (gsize    begin,
                             gsize    end,
                             gpointer data);

void gb_parallel_range (gsize       n,
                        gsize       grain,
                        GbRangeFunc func,
                        gpointer    data);

G_END_DECLS
