/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <stdarg.h>

#include <glassbox-engine.h>

G_BEGIN_DECLS

/* A fresh temporary folder, removed with its contents at exit. */
char *gb_test_tmpdir (void);
/* A path under a new temporary directory (removed at exit). */
char *gb_test_tmp_path (const char *first, ...) G_GNUC_NULL_TERMINATED;
/* Runs $GLASSBOX_CLI with the NULL-terminated arguments; returns the exit
 * status (128 + signal when killed) and its stdout and stderr. */
int gb_test_cli (char **out,
                 char **err,
                 ...) G_GNUC_NULL_TERMINATED;
int gb_test_cliv (char  **out,
                  char  **err,
                  va_list args);

/* A CLI run's exit status and output, freed with g_auto (GbTestResult). */
typedef struct
{
  int   status;
  char *out;
  char *err;
} GbTestResult;

void gb_test_result_clear (GbTestResult *r);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (GbTestResult, gb_test_result_clear)

/* gb_test_cli() into @r; arguments end with NULL. */
void gb_test_run_cli (GbTestResult *r,
                      ...) G_GNUC_NULL_TERMINATED;
/* The folder holding GPT-2's encoder.json and vocab.bpe ($GLASSBOX_GPT2_VOCAB);
 * aborts the test if missing. */
char *gb_test_gpt2_vocab_dir (void);
/* Writes vocab.json and merges.txt into @dir: GPT-2's own, or the 256-byte
 * alphabet plus <|endoftext|> when @gpt2 is FALSE. */
void  gb_test_write_vocab (const char *dir,
                           gboolean    gpt2);
/* Writes a random GPT-2 checkpoint in Hugging Face layout into @dir. */
void  gb_test_write_model (const char *dir,
                           guint       n_layer,
                           guint       n_head,
                           guint       n_embd,
                           guint       n_positions,
                           gboolean    gpt2_vocab,
                           guint32     seed);

G_END_DECLS
