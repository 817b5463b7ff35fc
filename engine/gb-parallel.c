/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "gb-parallel.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gb-kernels.h"

#define BACKGROUND_NICE 5

static gint background_workers;

void
gb_set_background_workers (gboolean background)
{
  g_atomic_int_set (&background_workers, background ? 1 : 0);
}

void
gb_thread_make_background (void)
{
  if (!g_atomic_int_get (&background_workers))
    return;
  /* Nice values are per thread on Linux (PRIO_PROCESS with a thread id). */
  const id_t tid = (id_t) syscall (SYS_gettid);
  errno = 0;
  const int nice = getpriority (PRIO_PROCESS, tid);
  if (errno == 0 && nice < BACKGROUND_NICE)
    setpriority (PRIO_PROCESS, tid, BACKGROUND_NICE);
}

/* The worker pool.
 *
 * Persistent threads (as many as OpenBLAS is set to use, less the caller),
 * started on first use. A task is n_parts numbered parts; the posting thread
 * and the workers claim parts with an atomic counter, so a worker that wakes
 * late costs nothing: the poster has taken its parts. One task at a time:
 * a thread that finds the pool busy (another job's forward pass) runs its
 * parts itself, which keeps two jobs from oversubscribing the cores.
 *
 * Publication is a sequence number: odd while the poster fills the task in,
 * even once it is published. A worker counts itself in (active) and checks
 * that the number did not move before it reads the task; the poster waits
 * for active to drop to zero before it refills the task. */

#define MAX_WORKERS 31
/* Iterations a worker polls for the next task before it sleeps (and the
 * poster for the last parts before it waits): 2000 pauses, 20 to 100
 * microseconds depending on the CPU's pause, enough for the gap between two
 * products of a forward pass, short enough not to steal a core for long. */
#define SPIN_ITERATIONS 2000

typedef struct
{
  GMutex      post_lock;  /* held by the one posting thread */
  GMutex      wake_lock;
  GCond       wake;
  gint        sleepers;   /* workers waiting on wake (atomic) */
  GMutex      done_lock;
  GCond       done;       /* the last part finished */
  gint        seq;        /* even: task published (atomic) */
  gint        active;     /* workers inside the task (atomic) */
  guint       n_workers;  /* started so far; under post_lock */

  GbPartFunc  func;
  gpointer    data;
  gint        n_parts;
  guint       helpers;    /* workers that may join (threads - 1 now) */
  gint        next;       /* next part to claim (atomic) */
  gint        finished;   /* parts done (atomic) */
} Pool;

static Pool pool;

/* Set while this thread runs a part: a gb_parallel_for inside a part runs
 * its parts on this thread (the pool is busy with the outer task). */
static _Thread_local gboolean in_part;

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#endif
}

static void
run_parts (void)
{
  gint part;
  in_part = TRUE;
  while ((part = g_atomic_int_add (&pool.next, 1)) < pool.n_parts)
    {
      pool.func ((guint) part, pool.data);
      if (g_atomic_int_add (&pool.finished, 1) + 1 == pool.n_parts)
        {
          g_mutex_lock (&pool.done_lock);
          g_cond_broadcast (&pool.done);
          g_mutex_unlock (&pool.done_lock);
        }
    }
  in_part = FALSE;
}

static gpointer
worker_main (gpointer data)
{
  const guint index = GPOINTER_TO_UINT (data);
  gint seen = 0;

  gb_thread_make_background ();
  for (;;)
    {
      gint seq = g_atomic_int_get (&pool.seq);
      for (guint i = 0; (seq == seen || (seq & 1)) && i < SPIN_ITERATIONS; i++)
        {
          cpu_relax ();
          seq = g_atomic_int_get (&pool.seq);
        }
      if (seq == seen || (seq & 1))
        {
          g_mutex_lock (&pool.wake_lock);
          g_atomic_int_inc (&pool.sleepers);
          while ((seq = g_atomic_int_get (&pool.seq)) == seen || (seq & 1))
            g_cond_wait (&pool.wake, &pool.wake_lock);
          g_atomic_int_add (&pool.sleepers, -1);
          g_mutex_unlock (&pool.wake_lock);
        }
      g_atomic_int_inc (&pool.active);
      if (g_atomic_int_get (&pool.seq) == seq)
        {
          /* Workers past the thread count of this task sit it out (the
           * count can drop after they were started). */
          if (index < pool.helpers)
            run_parts ();
          seen = seq;
        }
      g_atomic_int_add (&pool.active, -1);
    }
  return NULL;
}

void
gb_parallel_for (guint      n_parts,
                 GbPartFunc func,
                 gpointer   data)
{
  const int threads = CLAMP (gb_blas_get_threads (), 1, MAX_WORKERS + 1);

  if (n_parts <= 1 || threads == 1 || in_part || !g_mutex_trylock (&pool.post_lock))
    {
      for (guint i = 0; i < n_parts; i++)
        func (i, data);
      return;
    }
  while (pool.n_workers < (guint) threads - 1)
    {
      GThread *t = g_thread_try_new ("gb-worker", worker_main, GUINT_TO_POINTER (pool.n_workers), NULL);
      if (t == NULL)
        break;
      g_thread_unref (t);
      pool.n_workers++;
    }

  g_atomic_int_inc (&pool.seq); /* odd: being filled in */
  /* Workers still inside the last task have no part left to claim. */
  for (guint i = 0; g_atomic_int_get (&pool.active) > 0; i++)
    if (i < SPIN_ITERATIONS)
      cpu_relax ();
    else
      g_thread_yield ();
  pool.func = func;
  pool.data = data;
  pool.n_parts = (gint) n_parts;
  pool.helpers = (guint) threads - 1;
  g_atomic_int_set (&pool.next, 0);
  g_atomic_int_set (&pool.finished, 0);
  g_atomic_int_inc (&pool.seq); /* even: published */
  if (g_atomic_int_get (&pool.sleepers) > 0)
    {
      g_mutex_lock (&pool.wake_lock);
      g_cond_broadcast (&pool.wake);
      g_mutex_unlock (&pool.wake_lock);
    }

  run_parts ();
  /* The parts still running are on workers; poll a little, then sleep
   * until the last one signals (a worker at nice +5 that was preempted
   * should not have this thread spinning against it). */
  for (guint i = 0; i < SPIN_ITERATIONS && g_atomic_int_get (&pool.finished) < (gint) n_parts; i++)
    cpu_relax ();
  if (g_atomic_int_get (&pool.finished) < (gint) n_parts)
    {
      g_mutex_lock (&pool.done_lock);
      while (g_atomic_int_get (&pool.finished) < (gint) n_parts)
        g_cond_wait (&pool.done, &pool.done_lock);
      g_mutex_unlock (&pool.done_lock);
    }
  g_mutex_unlock (&pool.post_lock);
}

typedef struct
{
  GbRangeFunc func;
  gpointer    data;
  gsize       n, parts;
} RangeTask;

static void
range_part (guint    part,
            gpointer data)
{
  const RangeTask *r = data;
  r->func (r->n * part / r->parts, r->n * (part + 1) / r->parts, r->data);
}

void
gb_parallel_range (gsize       n,
                   gsize       grain,
                   GbRangeFunc func,
                   gpointer    data)
{
  int threads = gb_blas_get_threads ();
  gsize parts = (gsize) CLAMP (threads, 1, MAX_WORKERS + 1);

  grain = MAX (grain, 1);
  parts = MIN (parts, n / grain);
  if (parts <= 1)
    {
      if (n > 0)
        func (0, n, data);
      return;
    }
  RangeTask r = { func, data, n, parts };
  gb_parallel_for ((guint) parts, range_part, &r);
}
