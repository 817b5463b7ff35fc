/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glassbox-engine.h>
#include <stdio.h>
#include <stdlib.h>

G_BEGIN_DECLS

/* Every target defines this (libFuzzer's entry point); fuzz-replay.c calls
 * it on files when the build has no libFuzzer. */
int LLVMFuzzerTestOneInput (const guint8 *data,
                            size_t        size);

/* A private folder for this process (on /dev/shm when there is one),
 * removed at exit, and GLib warnings and criticals made fatal: a
 * g_return_if_fail() that hostile input can reach is a bug too. */
const char *fuzz_dir (void);
/* Writes @len bytes to fuzz_dir()/@name and returns the path (owned by the
 * helper, valid until the next call with the same name). */
const char *fuzz_write (const char   *name,
                        const guint8 *data,
                        gsize         len);
/* Aborts with @what when @cond is false: a broken invariant, not bad input. */
#define FUZZ_CHECK(cond, what)                                                 \
  G_STMT_START {                                                               \
    if (!(cond))                                                               \
      {                                                                        \
        fprintf (stderr, "invariant broken: %s (%s)\n", what, #cond);          \
        abort ();                                                              \
      }                                                                        \
  } G_STMT_END

G_END_DECLS
