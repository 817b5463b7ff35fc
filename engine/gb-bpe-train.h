/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "gb-model.h"

G_BEGIN_DECLS

/* Byte-level BPE training as GPT-2's vocabulary was made: the text is split
 * at every literal "<|endoftext|>" (which never takes part in a merge), each
 * piece is pre-tokenised with the tokenizer's own GPT-2 pattern, and the most
 * frequent adjacent pair of symbols inside a pre-token is merged until the
 * vocabulary holds @vocab_size ids: the 256 bytes (ids 0..255 in GPT-2's
 * bytes_to_unicode order), one id per new symbol in the order it was made,
 * and <|endoftext|> as the last id.
 *
 * Ties between pairs of equal count go to the pair whose (left bytes,
 * right bytes) is smallest, comparing raw bytes lexicographically (a prefix
 * sorts first) on the left symbol, then on the right. When a merge makes a
 * symbol that already exists (two splits of one string), it reuses that id,
 * so the vocabulary can hold fewer ids than 257 + merges. Training stops
 * early when no pair is left. */
typedef struct _GbBpe GbBpe;

/* @len bytes of @text (-1: NUL-terminated), which must be valid UTF-8
 * (GB_ERROR_INVALID_DATA names the first bad byte). @vocab_size counts the
 * bytes and <|endoftext|>, so it is at least 257 (GB_ERROR_ARGUMENT). A text
 * with no pre-token is GB_ERROR_INVALID_DATA. Progress is reported every few
 * dozen merges; cancellation is checked as often. */
GbBpe   *gb_bpe_train (const char     *text,
                       gssize          len,
                       guint           vocab_size,
                       GCancellable   *cancellable,
                       GbProgressFunc  progress,
                       gpointer        progress_data,
                       GError        **error);
/* Reads (memory-maps) @path and trains on it; GB_ERROR_IO names the file. */
GbBpe   *gb_bpe_train_file (const char     *path,
                            guint           vocab_size,
                            GCancellable   *cancellable,
                            GbProgressFunc  progress,
                            gpointer        progress_data,
                            GError        **error);
/* gb_bpe_train_file() on a worker thread. @progress is called on that
 * thread (marshal to the main loop before touching widgets). */
void     gb_bpe_train_file_async (const char          *path,
                                  guint                vocab_size,
                                  GCancellable        *cancellable,
                                  GbProgressFunc       progress,
                                  gpointer             progress_data,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data);
GbBpe   *gb_bpe_train_file_finish (GAsyncResult  *result,
                                   GError       **error);
void     gb_bpe_free (GbBpe *self);

/* Ids in the vocabulary, <|endoftext|> included. */
guint    gb_bpe_get_n_vocab (GbBpe *self);
guint    gb_bpe_get_n_merges (GbBpe *self);
/* Distinct pre-tokens seen, and all pre-tokens counted. */
guint    gb_bpe_get_n_words (GbBpe *self);
guint64  gb_bpe_get_n_pretokens (GbBpe *self);

/* Writes @dir/vocab.json and @dir/merges.txt in GPT-2's format ("#version:
 * 0.2" first), each atomically, creating @dir if needed. */
gboolean gb_bpe_save (GbBpe      *self,
                      const char *dir,
                      GError    **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbBpe, gb_bpe_free)

G_END_DECLS
