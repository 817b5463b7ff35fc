/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The folder of Glassbox's own data (models/, pairs/): $GLASSBOX_DATA_DIR
 * when set; else the source tree's data/ when it is there (a build run
 * uninstalled, the tests); else the installed copy (share/glassbox), which
 * is what a package or the Flatpak, built in a tree that is gone, uses. */
const char *gb_data_dir (void);

/* gb_data_dir()/models/loan-officer, the bundled demo model. */
const char *gb_demo_model_dir (void);

/* SHA-256 of a file's bytes as 64 hex digits, read in 1 MiB blocks (a
 * model's weights never sit in memory twice); errors name the file. */
char *gb_file_sha256 (const char *path,
                      GError    **error);
/* The same, checking @cancellable between blocks (G_IO_ERROR_CANCELLED). */
char *gb_file_sha256_cancellable (const char   *path,
                                  GCancellable *cancellable,
                                  GError      **error);

/* For g_ptr_array_sort() of strings: it passes pointers to the elements,
 * so g_strcmp0 itself would compare the pointers' bytes. */
int gb_compare_string_ptrs (gconstpointer a,
                            gconstpointer b);

G_END_DECLS
