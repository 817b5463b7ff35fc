/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gb-parallel.h"
#include "gb-bpe-train.h"
#include "gb-error.h"
#include "gb-npy.h"
#include "gb-unicode.h"

/* Training keeps, for every adjacent pair of symbols, its count over all
 * words (weighted by word frequency) and the words it was ever seen in. A
 * merge only revisits those words, so each step costs the size of the words
 * it touches rather than the corpus (the incremental scheme of
 * Sennrich et al. and Hugging Face tokenizers). The best pair comes from a
 * max-heap with lazy deletion: entries may be stale, and a popped entry whose
 * count no longer matches is dropped or pushed back with the current count. */

#define EOT_STRING "<|endoftext|>"
#define PROGRESS_EVERY 64

typedef struct
{
  const char *data;
  gsize       len;
} Span;

typedef struct
{
  gint32 *syms;
  guint32 n;
  guint32 stamp; /* last merge that visited this word, + 1 */
  gint64  count;
} Word;

typedef struct
{
  guint64 key; /* left << 32 | right */
  gint64  count;
  GArray *words; /* guint32 word indices; may hold stale or repeated ones */
} Pair;

typedef struct
{
  gint64 count;
  gint32 left, right;
} HeapItem;

struct _GbBpe
{
  /* Owned */
  GByteArray *tok_data;   /* bytes of every symbol, back to back */
  GArray     *tok_off;    /* guint32 per id */
  GArray     *tok_len;    /* guint32 per id */
  GHashTable *tok_by_bytes; /* Span (into a private copy) -> id + 1 */
  GArray     *merges;     /* gint32 pairs (left, right) */
  GArray     *words;      /* Word */
  GHashTable *pairs;      /* &Pair.key -> Pair */
  GArray     *heap;       /* HeapItem */
  guint64     n_pretokens;
};

static inline guint64
pair_key (gint32 left,
          gint32 right)
{
  return ((guint64) (guint32) left << 32) | (guint32) right;
}

static guint
span_hash (gconstpointer p)
{
  const Span *s = p;
  guint32 h = 2166136261u;
  for (gsize i = 0; i < s->len; i++)
    h = (h ^ (guint8) s->data[i]) * 16777619u;
  return h;
}

static gboolean
span_equal (gconstpointer a,
            gconstpointer b)
{
  const Span *x = a, *y = b;
  return x->len == y->len && memcmp (x->data, y->data, x->len) == 0;
}

static void
span_free (gpointer p)
{
  Span *s = p;
  g_free ((char *) s->data);
  g_free (s);
}

static void
pair_free (gpointer p)
{
  Pair *pair = p;
  g_array_unref (pair->words);
  g_free (pair);
}

static const guint8 *
tok_bytes (GbBpe  *self,
           gint32  id,
           guint32 *len)
{
  *len = g_array_index (self->tok_len, guint32, id);
  return self->tok_data->data + g_array_index (self->tok_off, guint32, id);
}

static gint32
tok_add (GbBpe        *self,
         const guint8 *bytes,
         guint32       len)
{
  gint32 id = (gint32) self->tok_off->len;
  guint32 off = self->tok_data->len;
  Span *key = g_new (Span, 1);

  g_byte_array_append (self->tok_data, bytes, len);
  g_array_append_val (self->tok_off, off);
  g_array_append_val (self->tok_len, len);
  key->data = g_memdup2 (bytes, len);
  key->len = len;
  g_hash_table_insert (self->tok_by_bytes, key, GINT_TO_POINTER (id + 1));
  return id;
}

/* Negative, zero or positive as (left bytes, right bytes) of @a sorts before,
 * equal to or after that of @b. */
static int
pair_order (GbBpe  *self,
            gint32  a_left,
            gint32  a_right,
            gint32  b_left,
            gint32  b_right)
{
  gint32 sides[2][2] = { { a_left, b_left }, { a_right, b_right } };
  for (guint s = 0; s < 2; s++)
    {
      guint32 la, lb;
      const guint8 *pa = tok_bytes (self, sides[s][0], &la);
      const guint8 *pb = tok_bytes (self, sides[s][1], &lb);
      int c = memcmp (pa, pb, MIN (la, lb));
      if (c != 0)
        return c;
      if (la != lb)
        return la < lb ? -1 : 1;
    }
  return 0;
}

/* TRUE when @a should be popped before @b. */
static gboolean
heap_before (GbBpe          *self,
             const HeapItem *a,
             const HeapItem *b)
{
  if (a->count != b->count)
    return a->count > b->count;
  return pair_order (self, a->left, a->right, b->left, b->right) < 0;
}

static void
heap_push (GbBpe  *self,
           gint64  count,
           gint32  left,
           gint32  right)
{
  HeapItem item = { count, left, right };
  HeapItem *h;
  guint i = self->heap->len;

  g_array_append_val (self->heap, item);
  h = (HeapItem *) self->heap->data;
  while (i > 0)
    {
      guint parent = (i - 1) / 2;
      if (!heap_before (self, &h[i], &h[parent]))
        break;
      HeapItem t = h[i];
      h[i] = h[parent];
      h[parent] = t;
      i = parent;
    }
}

static HeapItem
heap_pop (GbBpe *self)
{
  HeapItem *h = (HeapItem *) self->heap->data;
  HeapItem top = h[0];
  guint n = self->heap->len - 1, i = 0;

  h[0] = h[n];
  g_array_set_size (self->heap, n);
  for (;;)
    {
      guint l = 2 * i + 1, r = l + 1, best = i;
      if (l < n && heap_before (self, &h[l], &h[best]))
        best = l;
      if (r < n && heap_before (self, &h[r], &h[best]))
        best = r;
      if (best == i)
        break;
      HeapItem t = h[i];
      h[i] = h[best];
      h[best] = t;
      i = best;
    }
  return top;
}

static Pair *
pair_lookup (GbBpe  *self,
             gint32  left,
             gint32  right,
             gboolean create)
{
  guint64 key = pair_key (left, right);
  Pair *pair = g_hash_table_lookup (self->pairs, &key);

  if (pair == NULL && create)
    {
      pair = g_new0 (Pair, 1);
      pair->key = key;
      pair->words = g_array_new (FALSE, FALSE, sizeof (guint32));
      g_hash_table_insert (self->pairs, &pair->key, pair);
    }
  return pair;
}

static GbBpe *
bpe_new (void)
{
  GbBpe *self = g_new0 (GbBpe, 1);
  guint8 rank_byte[256];

  self->tok_data = g_byte_array_new ();
  self->tok_off = g_array_new (FALSE, FALSE, sizeof (guint32));
  self->tok_len = g_array_new (FALSE, FALSE, sizeof (guint32));
  self->tok_by_bytes = g_hash_table_new_full (span_hash, span_equal, span_free, NULL);
  self->merges = g_array_new (FALSE, FALSE, sizeof (gint32));
  self->words = g_array_new (FALSE, FALSE, sizeof (Word));
  self->pairs = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, pair_free);
  self->heap = g_array_new (FALSE, FALSE, sizeof (HeapItem));
  for (guint i = 0; i < 256; i++)
    {
      rank_byte[i] = gb_byte_at_rank (i);
      tok_add (self, &rank_byte[i], 1);
    }
  return self;
}

void
gb_bpe_free (GbBpe *self)
{
  if (self == NULL)
    return;
  for (guint i = 0; i < self->words->len; i++)
    g_free (g_array_index (self->words, Word, i).syms);
  g_byte_array_unref (self->tok_data);
  g_array_unref (self->tok_off);
  g_array_unref (self->tok_len);
  g_hash_table_unref (self->tok_by_bytes);
  g_array_unref (self->merges);
  g_array_unref (self->words);
  g_hash_table_unref (self->pairs);
  g_array_unref (self->heap);
  g_free (self);
}

/* Counts the pre-tokens of @len bytes of @text into @counts (Span -> count
 * pointer, spans pointing into @text). */
static void
count_piece (GbBpe      *self,
             GHashTable *counts,
             const char *text,
             gsize       len)
{
  gsize pos = 0;

  while (pos < len)
    {
      gsize n = gb_pretoken_next (text, len, pos);
      Span key = { text + pos, n };
      gint64 *c = g_hash_table_lookup (counts, &key);
      if (c == NULL)
        {
          Span *k = g_new (Span, 1);
          *k = key;
          c = g_new0 (gint64, 1);
          g_hash_table_insert (counts, k, c);
        }
      (*c)++;
      self->n_pretokens++;
      pos += n;
    }
}

static int
span_compare (gconstpointer a,
              gconstpointer b)
{
  const Span *x = *(Span *const *) a, *y = *(Span *const *) b;
  int c = memcmp (x->data, y->data, MIN (x->len, y->len));
  return c != 0 ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* Splits at "<|endoftext|>", counts pre-tokens and builds the word list
 * (sorted by bytes, so the words' order never depends on hashing). */
static void
count_words (GbBpe      *self,
             const char *text,
             gsize       len)
{
  static const gsize eot_len = sizeof EOT_STRING - 1;
  g_autoptr (GHashTable) counts = g_hash_table_new_full (span_hash, span_equal, g_free, g_free);
  gint32 byte_id[256];
  gsize start = 0, i = 0;

  while (i + eot_len <= len)
    {
      const char *lt = memchr (text + i, '<', len - eot_len + 1 - i);
      if (lt == NULL)
        break;
      i = lt - text;
      if (memcmp (lt, EOT_STRING, eot_len) == 0)
        {
          count_piece (self, counts, text + start, i - start);
          start = i = i + eot_len;
        }
      else
        i++;
    }
  count_piece (self, counts, text + start, len - start);

  for (guint r = 0; r < 256; r++)
    byte_id[gb_byte_at_rank (r)] = (gint32) r;
  guint n_keys;
  g_autofree gpointer *keys = g_hash_table_get_keys_as_array (counts, &n_keys);
  qsort (keys, n_keys, sizeof *keys, span_compare);
  for (guint k = 0; k < n_keys; k++)
    {
      const Span *s = keys[k];
      Word w = { g_new (gint32, s->len), (guint32) s->len, 0, *(gint64 *) g_hash_table_lookup (counts, s) };
      for (gsize b = 0; b < s->len; b++)
        w.syms[b] = byte_id[(guint8) s->data[b]];
      g_array_append_val (self->words, w);
    }
}

static void
count_initial_pairs (GbBpe *self)
{
  for (guint32 wi = 0; wi < self->words->len; wi++)
    {
      Word *w = &g_array_index (self->words, Word, wi);
      for (guint32 j = 0; j + 1 < w->n; j++)
        {
          Pair *p = pair_lookup (self, w->syms[j], w->syms[j + 1], TRUE);
          if (p->count == 0 || g_array_index (p->words, guint32, p->words->len - 1) != wi)
            g_array_append_val (p->words, wi);
          p->count += w->count;
        }
    }
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, self->pairs);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      Pair *p = value;
      heap_push (self, p->count, (gint32) (p->key >> 32), (gint32) (guint32) p->key);
    }
}

/* The best pair still present, or FALSE when none is left. */
static gboolean
pop_best (GbBpe  *self,
          gint32 *left,
          gint32 *right)
{
  while (self->heap->len > 0)
    {
      HeapItem item = heap_pop (self);
      Pair *p = pair_lookup (self, item.left, item.right, FALSE);
      if (p == NULL || p->count <= 0 || item.count < p->count)
        continue; /* gone, or a fresher entry with the higher count exists */
      if (item.count > p->count)
        {
          heap_push (self, p->count, item.left, item.right);
          continue;
        }
      *left = item.left;
      *right = item.right;
      return TRUE;
    }
  return FALSE;
}

static void
add_word_pairs (GbBpe   *self,
                Word    *w,
                guint32  wi,
                gint64   sign,
                gint32   fresh,
                GHashTable *touched)
{
  for (guint32 j = 0; j + 1 < w->n; j++)
    {
      gboolean is_new = w->syms[j] == fresh || w->syms[j + 1] == fresh;
      Pair *p = pair_lookup (self, w->syms[j], w->syms[j + 1], sign > 0);
      p->count += sign * w->count;
      if (sign > 0 && is_new)
        {
          g_array_append_val (p->words, wi);
          g_hash_table_add (touched, &p->key);
        }
    }
}

/* Replaces every non-overlapping (@left, @right), left to right, by @fresh. */
static gboolean
merge_word (Word   *w,
            gint32  left,
            gint32  right,
            gint32  fresh)
{
  guint32 out = 0;
  gboolean any = FALSE;

  for (guint32 j = 0; j < w->n; j++)
    {
      if (j + 1 < w->n && w->syms[j] == left && w->syms[j + 1] == right)
        {
          w->syms[out++] = fresh;
          j++;
          any = TRUE;
        }
      else
        w->syms[out++] = w->syms[j];
    }
  w->n = out;
  return any;
}

static gboolean
word_has_pair (const Word *w,
               gint32      left,
               gint32      right)
{
  for (guint32 j = 0; j + 1 < w->n; j++)
    if (w->syms[j] == left && w->syms[j + 1] == right)
      return TRUE;
  return FALSE;
}

static gint32
symbol_for (GbBpe  *self,
            gint32  left,
            gint32  right)
{
  guint32 ll, lr;
  const guint8 *bl = tok_bytes (self, left, &ll);
  const guint8 *br = tok_bytes (self, right, &lr);
  g_autofree guint8 *joined = g_malloc (ll + lr);
  memcpy (joined, bl, ll);
  memcpy (joined + ll, br, lr);
  Span key = { (const char *) joined, ll + lr };
  gpointer found = g_hash_table_lookup (self->tok_by_bytes, &key);
  return found != NULL ? GPOINTER_TO_INT (found) - 1 : tok_add (self, joined, ll + lr);
}

static void
apply_merge (GbBpe  *self,
             gint32  left,
             gint32  right,
             guint32 stamp)
{
  Pair *p = pair_lookup (self, left, right, FALSE);
  g_autoptr (GArray) where = p->words;
  g_autoptr (GHashTable) touched = g_hash_table_new (g_int64_hash, g_int64_equal);
  gint32 fresh = symbol_for (self, left, right);

  p->words = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_array_append_val (self->merges, left);
  g_array_append_val (self->merges, right);
  for (guint k = 0; k < where->len; k++)
    {
      guint32 wi = g_array_index (where, guint32, k);
      Word *w = &g_array_index (self->words, Word, wi);
      if (w->stamp == stamp || !word_has_pair (w, left, right))
        continue;
      w->stamp = stamp;
      add_word_pairs (self, w, wi, -1, fresh, touched);
      merge_word (w, left, right, fresh);
      add_word_pairs (self, w, wi, +1, fresh, touched);
    }
  /* Push each pair that grew once, with its final count. */
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, touched);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      Pair *q = g_hash_table_lookup (self->pairs, key);
      if (q->count > 0)
        heap_push (self, q->count, (gint32) (q->key >> 32), (gint32) (guint32) q->key);
    }
}

GbBpe *
gb_bpe_train (const char     *text,
              gssize          len,
              guint           vocab_size,
              GCancellable   *cancellable,
              GbProgressFunc  progress,
              gpointer        progress_data,
              GError        **error)
{
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  gsize bad;

  g_return_val_if_fail (text != NULL || n == 0, NULL);
  if (vocab_size < 257)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT,
                   "vocabulary size %u is too small: it must hold the 256 bytes and <|endoftext|> (at least 257)",
                   vocab_size);
      return NULL;
    }
  if (!gb_utf8_check (text, n, &bad))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "corpus: invalid UTF-8 at byte %" G_GSIZE_FORMAT, bad);
      return NULL;
    }

  g_autoptr (GbBpe) self = bpe_new ();
  count_words (self, text, n);
  if (self->n_pretokens == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "corpus is empty: no text outside <|endoftext|> markers");
      return NULL;
    }
  count_initial_pairs (self);

  guint target = vocab_size - 1, start = self->tok_off->len;
  guint32 stamp = 0;
  gint32 left, right;
  while (self->tok_off->len < target && pop_best (self, &left, &right))
    {
      apply_merge (self, left, right, ++stamp);
      if (stamp % PROGRESS_EVERY == 0)
        {
          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            return NULL;
          if (progress != NULL)
            {
              g_autofree char *msg = g_strdup_printf ("%u of %u tokens", self->tok_off->len + 1, vocab_size);
              progress ((double) (self->tok_off->len - start) / (target - start), msg, progress_data);
            }
        }
    }
  if (progress != NULL)
    progress (1.0, "done", progress_data);
  return g_steal_pointer (&self);
}

GbBpe *
gb_bpe_train_file (const char     *path,
                   guint           vocab_size,
                   GCancellable   *cancellable,
                   GbProgressFunc  progress,
                   gpointer        progress_data,
                   GError        **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) map = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  map = g_mapped_file_new (path, FALSE, &local);
  if (map == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s", local->message);
      return NULL;
    }
  const char *data = g_mapped_file_get_contents (map);
  gsize len = g_mapped_file_get_length (map);
  GbBpe *bpe = gb_bpe_train (len > 0 ? data : "", (gssize) len, vocab_size, cancellable, progress, progress_data,
                             &local);
  if (bpe == NULL)
    g_set_error (error, GB_ERROR, local->code, "%s: %s", path, local->message);
  return bpe;
}

typedef struct
{
  char          *path;
  guint          vocab_size;
  GbProgressFunc progress;
  gpointer       progress_data;
} TrainTask;

static void
train_task_free (gpointer data)
{
  TrainTask *t = data;
  g_free (t->path);
  g_free (t);
}

static void
train_thread (GTask        *task,
              gpointer      source,
              gpointer      task_data,
              GCancellable *cancellable)
{
  gb_thread_make_background ();
  TrainTask *t = task_data;
  GError *error = NULL;
  GbBpe *bpe = gb_bpe_train_file (t->path, t->vocab_size, cancellable, t->progress, t->progress_data, &error);

  if (bpe == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, bpe, (GDestroyNotify) gb_bpe_free);
}

void
gb_bpe_train_file_async (const char          *path,
                         guint                vocab_size,
                         GCancellable        *cancellable,
                         GbProgressFunc       progress,
                         gpointer             progress_data,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  TrainTask *t = g_new0 (TrainTask, 1);

  g_return_if_fail (path != NULL);
  t->path = g_strdup (path);
  t->vocab_size = vocab_size;
  t->progress = progress;
  t->progress_data = progress_data;
  g_task_set_source_tag (task, gb_bpe_train_file_async);
  g_task_set_task_data (task, t, train_task_free);
  g_task_run_in_thread (task, train_thread);
}

GbBpe *
gb_bpe_train_file_finish (GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gb_bpe_train_file_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

guint
gb_bpe_get_n_vocab (GbBpe *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->tok_off->len + 1;
}

guint
gb_bpe_get_n_merges (GbBpe *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->merges->len / 2;
}

guint
gb_bpe_get_n_words (GbBpe *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->words->len;
}

guint64
gb_bpe_get_n_pretokens (GbBpe *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->n_pretokens;
}

/* The vocab.json string of a symbol: its bytes through bytes_to_unicode. */
static void
append_symbol (GbBpe   *self,
               GString *out,
               gint32   id,
               gboolean json)
{
  guint32 len;
  const guint8 *b = tok_bytes (self, id, &len);
  for (guint32 i = 0; i < len; i++)
    {
      gunichar c = gb_byte_to_unichar (b[i]);
      if (json && (c == '"' || c == '\\'))
        g_string_append_c (out, '\\');
      g_string_append_unichar (out, c);
    }
}

gboolean
gb_bpe_save (GbBpe      *self,
             const char *dir,
             GError    **error)
{
  g_autoptr (GString) vocab = g_string_new ("{");
  g_autoptr (GString) merges = g_string_new ("#version: 0.2\n");
  guint n = self->tok_off->len;

  g_return_val_if_fail (self != NULL && dir != NULL, FALSE);
  for (guint id = 0; id < n; id++)
    {
      g_string_append_c (vocab, '"');
      append_symbol (self, vocab, (gint32) id, TRUE);
      g_string_append_printf (vocab, "\": %u, ", id);
    }
  g_string_append_printf (vocab, "\"" EOT_STRING "\": %u}", n);
  for (guint m = 0; m < self->merges->len; m += 2)
    {
      append_symbol (self, merges, g_array_index (self->merges, gint32, m), FALSE);
      g_string_append_c (merges, ' ');
      append_symbol (self, merges, g_array_index (self->merges, gint32, m + 1), FALSE);
      g_string_append_c (merges, '\n');
    }

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int saved = errno;
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: cannot create the folder: %s", dir, g_strerror (saved));
      return FALSE;
    }
  g_autofree char *vocab_path = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges_path = g_build_filename (dir, "merges.txt", NULL);
  return gb_file_write_atomic (vocab_path, vocab->str, vocab->len, TRUE, error) &&
         gb_file_write_atomic (merges_path, merges->str, merges->len, TRUE, error);
}
