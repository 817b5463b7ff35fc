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

#define MAX_PARTS 16

typedef struct
{
  GbRangeFunc func;
  gpointer    data;
  GMutex      lock;
  GCond       done;
  guint       pending;
} Job;

typedef struct
{
  Job  *job;
  gsize begin, end;
} Part;

static gpointer
run_part (gpointer item)
{
  Part *p = item;
  Job *job = p->job;

  job->func (p->begin, p->end, job->data);
  g_mutex_lock (&job->lock);
  if (--job->pending == 0)
    g_cond_signal (&job->done);
  g_mutex_unlock (&job->lock);
  return NULL;
}

void
gb_parallel_range (gsize       n,
                   gsize       grain,
                   GbRangeFunc func,
                   gpointer    data)
{
  int threads = gb_blas_get_threads ();
  gsize parts = (gsize) CLAMP (threads, 1, MAX_PARTS);

  grain = MAX (grain, 1);
  parts = MIN (parts, n / grain);
  if (parts <= 1)
    {
      if (n > 0)
        func (0, n, data);
      return;
    }

  Job job = { func, data };
  Part p[MAX_PARTS];
  GThread *t[MAX_PARTS] = { NULL };
  g_mutex_init (&job.lock);
  g_cond_init (&job.done);
  job.pending = (guint) parts - 1;
  for (gsize k = 0; k < parts; k++)
    p[k] = (Part) { &job, n * k / parts, n * (k + 1) / parts };
  /* A thread per part (tens of microseconds each, against milliseconds of
   * work per call); where none can be made, the part runs here. */
  for (gsize k = 1; k < parts; k++)
    if ((t[k] = g_thread_try_new ("gb-parallel", run_part, &p[k], NULL)) == NULL)
      run_part (&p[k]);
  func (p[0].begin, p[0].end, data);
  g_mutex_lock (&job.lock);
  while (job.pending > 0)
    g_cond_wait (&job.done, &job.lock);
  g_mutex_unlock (&job.lock);
  for (gsize k = 1; k < parts; k++)
    if (t[k] != NULL)
      g_thread_join (t[k]);
  g_mutex_clear (&job.lock);
  g_cond_clear (&job.done);
}
