/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Runs f(begin, end, data) over [0, n) split into contiguous ranges of at
 * least @grain items, on the calling thread and the pool's worker threads: as
 * many threads in all as OpenBLAS is set to use (gb_blas_get_threads), so
 * Glassbox's own loops (softmax, GELU, LayerNorm) use the cores the matrix
 * products use, never more. Returns when every range is done. Ranges must be
 * independent. Safe to call from several threads at once. Built on
 * gb_parallel_for. */
typedef void (*GbRangeFunc) (gsize    begin,
                             gsize    end,
                             gpointer data);

void gb_parallel_range (gsize       n,
                        gsize       grain,
                        GbRangeFunc func,
                        gpointer    data);

/* Runs func(part, data) for every part in [0, n_parts), on the calling
 * thread and the pool's worker threads (as many in all as
 * gb_blas_get_threads), each thread claiming the next unclaimed part. Parts
 * must be independent. Returns when all are done. When another thread is
 * using the pool, every part runs on the calling thread. */
typedef void (*GbPartFunc) (guint    part,
                            gpointer data);

void gb_parallel_for (guint      n_parts,
                      GbPartFunc func,
                      gpointer   data);

/* Worker threads at background priority. An interactive front end calls
 * gb_set_background_workers (TRUE) once; from then on every worker thread
 * that calls gb_thread_make_background() (each job's thread function, in
 * the engine and the UI) runs at nice +5 (or stays lower), so the kernel
 * prefers the main loop's thread when the cores are busy (a model that
 * streams into two panes keeps both cores busy). Helper threads those
 * workers start inherit it. Without the call (the CLI) nothing changes.
 * Limits: an unprivileged thread cannot raise its priority again, so GLib's
 * shared GTask pool threads keep nice +5 for later asynchronous work they
 * run (file queries and the like, which then wait a little when the cores
 * are full); and OpenBLAS's own threads, when it runs more than one (the GUI
 * asks for cores - 1), keep the priority of the thread that started them. */
void gb_set_background_workers (gboolean background);
void gb_thread_make_background (void);

G_END_DECLS
