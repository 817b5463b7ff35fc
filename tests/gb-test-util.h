/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glassbox-engine.h>

G_BEGIN_DECLS

/* A fresh temporary folder, removed with its contents at exit. */
char *gb_test_tmpdir (void);
/* A path under a new temporary directory (removed at exit). */
char *gb_test_tmp_path (const char *first, ...) G_GNUC_NULL_TERMINATED;
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
