/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* GPT-2 byte-level BPE, identical to GPT-2's reference encoder
 * (pre-tokenisation regex with Unicode letter/number classes, the
 * bytes-to-unicode table, merge ranks). Immutable once loaded, so one
 * tokenizer may be used from several threads at once; the word cache is
 * internally locked. */
typedef struct _GbTokenizer GbTokenizer;

#define GB_TOKEN_NONE ((gint32) -1)

/* vocab.json: {"token-string": id, ...} in GPT-2's byte-to-unicode alphabet.
 * merges.txt: optional "#version" first line, then "a b" per line. */
/* The ids must be exactly 0..n-1 and include the 256 single-byte tokens;
 * every merge must join two vocabulary symbols into a third. A pair listed
 * twice keeps its last rank, as GPT-2's encoder.py does. Files over 64 MiB
 * are refused. Errors are GB_ERROR_FORMAT naming the file and the entry or
 * line (GB_ERROR_MISSING, _IO or _LIMIT for the file itself). */
GbTokenizer *gb_tokenizer_new_from_files (const char  *vocab_path,
                                          const char  *merges_path,
                                          GError     **error);
/* A tokenizer over the 256 single bytes and no merges (ids 0..255 in the
 * byte-to-unicode order GPT-2 uses), plus <|endoftext|> = 256. For tests and
 * the "tiny" preset. */
GbTokenizer *gb_tokenizer_new_bytes (void);
GbTokenizer *gb_tokenizer_ref (GbTokenizer *self);
void         gb_tokenizer_unref (GbTokenizer *self);

guint        gb_tokenizer_get_n_vocab (GbTokenizer *self);
/* Id of <|endoftext|>, or GB_TOKEN_NONE when the vocabulary has none. */
gint32       gb_tokenizer_get_eot (GbTokenizer *self);

/* Pre-tokenisation follows GPT-2's pattern with JavaScript's \s (as npm
 * gpt-3-encoder runs it) and GLib's Unicode tables for \p{L} and \p{N}.
 * Encodes @len bytes of @text (len -1: NUL-terminated). Invalid UTF-8 is a
 * GB_ERROR_INVALID_DATA error naming the byte offset. With @allow_special,
 * the literal "<|endoftext|>" becomes the special token; without, it is
 * encoded as ordinary text (as GPT-2's encoder does). Returns an array of
 * gint32 ids. */
GArray      *gb_tokenizer_encode (GbTokenizer *self,
                                  const char  *text,
                                  gssize       len,
                                  gboolean     allow_special,
                                  GError     **error);

/* The raw bytes of one token (borrowed, not NUL-terminated, may be a partial
 * UTF-8 sequence). NULL for an out-of-range id. */
const guint8 *gb_tokenizer_token_bytes (GbTokenizer *self,
                                        gint32       id,
                                        gsize       *n_bytes);
/* The byte length of the vocabulary's longest token (at least 1). */
guint         gb_tokenizer_get_max_token_bytes (GbTokenizer *self);
/* The vocab.json string of a token (borrowed), e.g. "Ġthe". */
const char   *gb_tokenizer_token_string (GbTokenizer *self,
                                         gint32       id);

/* Decodes ids to text. Byte sequences that are not valid UTF-8 are replaced
 * by U+FFFD (one per maximal ill-formed subpart, as Python's and WHATWG's
 * decoders do), so the result is always valid UTF-8. Out-of-range ids are an
 * error. A token for byte 0 decodes to an embedded NUL. */
char         *gb_tokenizer_decode (GbTokenizer  *self,
                                   const gint32 *ids,
                                   gsize         n_ids,
                                   GError      **error);

/* Streaming decode: feed one token at a time; returns the text that is now
 * complete (possibly ""), holding back the bytes of an unfinished UTF-8
 * sequence until a later token completes it. Never returns invalid UTF-8. */
typedef struct _GbDecodeStream GbDecodeStream;

GbDecodeStream *gb_decode_stream_new (GbTokenizer *tokenizer);
void            gb_decode_stream_free (GbDecodeStream *stream);
/* An out-of-range id decodes as U+FFFD. */
char           *gb_decode_stream_push (GbDecodeStream *stream,
                                       gint32          id);
/* Flushes held bytes (an incomplete sequence becomes U+FFFD). */
char           *gb_decode_stream_finish (GbDecodeStream *stream);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbTokenizer, gb_tokenizer_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbDecodeStream, gb_decode_stream_free)

G_END_DECLS
