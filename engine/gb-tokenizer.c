/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-tokenizer.h"
#include "gb-unicode.h"

/* vocab.json of GPT-2 is 1 MB, merges.txt 0.5 MB; anything near this is not
 * a tokenizer. It also keeps every offset below 2^32. */
#define MAX_FILE_BYTES (64u * 1024 * 1024)
/* vocab.json is one flat object; json-glib recurses once per level. */
#define MAX_JSON_DEPTH 16
/* The per-word cache is cleared when it holds this many words; words longer
 * than MAX_CACHED_WORD bytes are not cached at all. */
#define MAX_CACHE_WORDS 65536
#define MAX_CACHED_WORD 256
/* Encoding positions are 32-bit. */
#define MAX_ENCODE_BYTES ((gsize) G_MAXINT32)

#define EOT_STRING "<|endoftext|>"
#define REPLACEMENT_UTF8 "\xEF\xBF\xBD"

/* One merge "a b": its rank (line order) and the id of "ab". */
typedef struct
{
  guint64 key; /* pair_key (a, b), or EMPTY_KEY */
  guint32 rank;
  gint32  result;
} MergeSlot;

/* Open addressing keyed on the two ids, so no string joining (and no
 * "a,b" ambiguity) is involved. */
typedef struct
{
  MergeSlot *slots; /* 2^bits, at most half used */
  guint      bits;
} MergeTable;

/* A cached word: the key points at the bytes stored after the ids. */
typedef struct
{
  const guint8 *data;
  gsize         len;
} WordKey;

typedef struct
{
  WordKey key;
  guint   n_ids;
  gint32  ids[];
} WordEntry;

typedef struct
{
  guint32 rank;
  guint32 pos;
} HeapItem;

struct _GbTokenizer
{
  gatomicrefcount ref_count;

  guint         n_vocab;
  const char  **strings;      /* [n_vocab], in string_chunk */
  GStringChunk *string_chunk;
  guint32      *byte_offsets; /* [n_vocab + 1] into bytes */
  guint8       *bytes;
  gint32        byte_ids[256];
  gint32        eot;
  MergeTable    merges;

  GMutex      cache_lock;
  GHashTable *cache; /* WordKey* -> WordEntry* (owned) */
};

struct _GbDecodeStream
{
  GbTokenizer *tokenizer; /* owned ref */
  GByteArray  *pending;   /* start of an unfinished UTF-8 sequence */
};

#define EMPTY_KEY G_MAXUINT64

static inline guint64
pair_key (gint32 left,
          gint32 right)
{
  return ((guint64) (guint32) left << 32) | (guint32) right;
}

static inline gsize
slot_index (const MergeTable *table,
            guint64           key)
{
  /* Fibonacci hashing: the top bits of the product are well mixed. */
  return (gsize) ((key * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)) >> (64 - table->bits));
}

static void
merge_table_init (MergeTable *table,
                  guint       n_expected)
{
  table->bits = 4;
  while (((gsize) 1 << table->bits) < (gsize) n_expected * 2)
    table->bits++;
  table->slots = g_new (MergeSlot, (gsize) 1 << table->bits);
  for (gsize i = 0; i < ((gsize) 1 << table->bits); i++)
    table->slots[i].key = EMPTY_KEY;
}

static inline const MergeSlot *
merge_table_lookup (const MergeTable *table,
                    gint32            left,
                    gint32            right)
{
  guint64 key = pair_key (left, right);
  gsize mask = ((gsize) 1 << table->bits) - 1;

  for (gsize i = slot_index (table, key);; i = (i + 1) & mask)
    {
      const MergeSlot *slot = &table->slots[i];

      if (slot->key == key)
        return slot;
      if (slot->key == EMPTY_KEY)
        return NULL;
    }
}

/* A repeated pair keeps its last rank, as GPT-2's dict(zip(merges, ranks))
 * does. The table never fills beyond half (sized for every line). */
static void
merge_table_insert (MergeTable *table,
                    gint32      left,
                    gint32      right,
                    guint32     rank,
                    gint32      result)
{
  guint64 key = pair_key (left, right);
  gsize mask = ((gsize) 1 << table->bits) - 1;
  gsize i = slot_index (table, key);

  while (table->slots[i].key != EMPTY_KEY && table->slots[i].key != key)
    i = (i + 1) & mask;
  table->slots[i] = (MergeSlot) { key, rank, result };
}

static guint
word_key_hash (gconstpointer data)
{
  const WordKey *key = data;
  guint32 h = 2166136261u;

  for (gsize i = 0; i < key->len; i++)
    h = (h ^ key->data[i]) * 16777619u;
  return h;
}

static gboolean
word_key_equal (gconstpointer a,
                gconstpointer b)
{
  const WordKey *ka = a, *kb = b;

  return ka->len == kb->len && memcmp (ka->data, kb->data, ka->len) == 0;
}

static GbTokenizer *
tokenizer_alloc (guint n_vocab)
{
  GbTokenizer *self = g_new0 (GbTokenizer, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->n_vocab = n_vocab;
  self->strings = g_new0 (const char *, n_vocab);
  self->string_chunk = g_string_chunk_new (4096);
  self->byte_offsets = g_new0 (guint32, (gsize) n_vocab + 1);
  self->eot = GB_TOKEN_NONE;
  g_mutex_init (&self->cache_lock);
  self->cache = g_hash_table_new_full (word_key_hash, word_key_equal, NULL, g_free);
  return self;
}

static void
tokenizer_free (GbTokenizer *self)
{
  g_hash_table_unref (self->cache);
  g_mutex_clear (&self->cache_lock);
  g_free (self->merges.slots);
  g_free (self->bytes);
  g_free (self->byte_offsets);
  g_free (self->strings);
  g_string_chunk_free (self->string_chunk);
  g_free (self);
}

/* Reads a whole regular file of at most MAX_FILE_BYTES, NUL-terminated. */
static gboolean
read_bounded (const char *path,
              char      **contents,
              gsize      *length,
              GError    **error)
{
  g_autofree char *data = NULL;
  struct stat st;
  gsize got = 0;
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, GB_ERROR, saved == ENOENT ? GB_ERROR_MISSING : GB_ERROR_IO,
                   "%s: %s", path, g_strerror (saved));
      return FALSE;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: not a regular file", path);
      close (fd);
      return FALSE;
    }
  if (st.st_size > (off_t) MAX_FILE_BYTES)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: file is larger than %u MiB", path,
                   MAX_FILE_BYTES >> 20);
      close (fd);
      return FALSE;
    }

  /* One byte more than fstat said, to notice a file that grew meanwhile. */
  data = g_malloc ((gsize) st.st_size + 2);
  while (got <= (gsize) st.st_size)
    {
      gssize n = read (fd, data + got, (gsize) st.st_size + 1 - got);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: %s", path, g_strerror (saved));
          close (fd);
          return FALSE;
        }
      if (n == 0)
        break;
      got += (gsize) n;
    }
  close (fd);
  if (got > (gsize) st.st_size)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s: the file changed while being read", path);
      return FALSE;
    }

  data[got] = '\0';
  *contents = g_steal_pointer (&data);
  *length = got;
  return TRUE;
}

/* Both files must be UTF-8 text without NUL bytes (which would cut a
 * C string short). */
static gboolean
text_ok (const char *data,
         gsize       len,
         const char *path,
         GError    **error)
{
  const char *nul = memchr (data, '\0', len);
  gsize bad;

  if (nul != NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: NUL byte at byte offset %" G_GSIZE_FORMAT,
                   path, (gsize) (nul - data));
      return FALSE;
    }
  if (!gb_utf8_check (data, len, &bad))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: invalid UTF-8 at byte offset %" G_GSIZE_FORMAT, path, bad);
      return FALSE;
    }
  return TRUE;
}

/* The bytes a vocab.json string stands for: each character of the
 * byte-to-unicode alphabet is its byte; any other character (an added token
 * outside the alphabet) stands for its own UTF-8. */
static void
append_token_bytes (GByteArray *bytes,
                    const char *string)
{
  for (const char *p = string; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      int b = gb_unichar_to_byte (c);

      if (b >= 0)
        {
          guint8 byte = (guint8) b;

          g_byte_array_append (bytes, &byte, 1);
        }
      else
        g_byte_array_append (bytes, (const guint8 *) p, (guint) g_utf8_skip[*(const guchar *) p]);
    }
}

/* Fills byte_offsets/bytes from strings, and byte_ids/eot from @by_string. */
static gboolean
index_vocab (GbTokenizer *self,
             GHashTable  *by_string,
             const char  *vocab_path,
             GError     **error)
{
  g_autoptr (GByteArray) bytes = g_byte_array_new ();

  for (guint id = 0; id < self->n_vocab; id++)
    {
      self->byte_offsets[id] = bytes->len;
      append_token_bytes (bytes, self->strings[id]);
    }
  self->byte_offsets[self->n_vocab] = bytes->len;
  self->bytes = g_byte_array_free (g_steal_pointer (&bytes), FALSE);

  for (guint b = 0; b < 256; b++)
    {
      char utf8[8] = { 0 };
      gpointer id;

      g_unichar_to_utf8 (gb_byte_to_unichar ((guint8) b), utf8);
      if (!g_hash_table_lookup_extended (by_string, utf8, NULL, &id))
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                       "%s: no token for byte 0x%02X (“%s”); a byte-level vocabulary needs all 256",
                       vocab_path, b, utf8);
          return FALSE;
        }
      self->byte_ids[b] = GPOINTER_TO_INT (id);
    }

  {
    gpointer id;

    if (g_hash_table_lookup_extended (by_string, EOT_STRING, NULL, &id))
      self->eot = GPOINTER_TO_INT (id);
  }
  return TRUE;
}

/* Checks one vocab.json entry and records it. @seen marks the ids used. */
static gboolean
add_vocab_entry (GbTokenizer *self,
                 const char  *vocab_path,
                 const char  *string,
                 JsonNode    *node,
                 guint8      *seen,
                 GError     **error)
{
  gint64 id;

  /* A \uD800 escape can give a key that is not UTF-8. */
  if (!g_utf8_validate (string, -1, NULL))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: a token string is not valid UTF-8 (lone surrogate escape?)", vocab_path);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: entry “%s”: the id is not an integer", vocab_path, string);
      return FALSE;
    }
  id = json_node_get_int (node);
  if (id < 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: entry “%s”: id %" G_GINT64_FORMAT " is negative", vocab_path, string, id);
      return FALSE;
    }
  if (id >= (gint64) self->n_vocab)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: entry “%s”: id %" G_GINT64_FORMAT " is out of range; %u entries need ids "
                   "0..%u without gaps",
                   vocab_path, string, id, self->n_vocab, self->n_vocab - 1);
      return FALSE;
    }
  if (seen[id])
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: entry “%s”: id %" G_GINT64_FORMAT " is also the id of “%s”", vocab_path,
                   string, id, self->strings[id]);
      return FALSE;
    }
  seen[id] = 1;
  self->strings[id] = g_string_chunk_insert (self->string_chunk, string);
  return TRUE;
}

/* Reads @path into @parser and returns its top-level object (borrowed). */
static JsonObject *
parse_vocab_json (JsonParser *parser,
                  const char *vocab_path,
                  GError    **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *data = NULL;
  JsonNode *root;
  gsize len;

  if (!read_bounded (vocab_path, &data, &len, error) || !text_ok (data, len, vocab_path, error))
    return NULL;
  if (!gb_json_plain_and_shallow (data, len, MAX_JSON_DEPTH))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: not plain JSON (a character JSON does not allow, a number with a leading zero), or nested deeper than %d levels", vocab_path,
                   MAX_JSON_DEPTH);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: %s", vocab_path, local_error->message);
      return NULL;
    }

  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: expected a JSON object of token strings to ids", vocab_path);
      return NULL;
    }
  return json_node_get_object (root);
}

static GbTokenizer *
load_vocab (const char  *vocab_path,
            GHashTable **by_string_out,
            GError     **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GHashTable) by_string = NULL;
  g_autofree guint8 *seen = NULL;
  GbTokenizer *self;
  JsonObject *object;
  JsonObjectIter iter;
  const char *string;
  JsonNode *node;
  guint size;

  object = parse_vocab_json (parser, vocab_path, error);
  if (object == NULL)
    return NULL;
  size = json_object_get_size (object);
  if (size == 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: the vocabulary is empty", vocab_path);
      return NULL;
    }

  self = tokenizer_alloc (size);
  seen = g_new0 (guint8, size);
  json_object_iter_init (&iter, object);
  while (json_object_iter_next (&iter, &string, &node))
    {
      if (!add_vocab_entry (self, vocab_path, string, node, seen, error))
        {
          tokenizer_free (self);
          return NULL;
        }
    }

  /* size distinct ids in 0..size-1 leave no gap. json-glib keeps the last of
   * duplicate keys, so a duplicate shows up above as an out-of-range id. */
  by_string = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint id = 0; id < size; id++)
    g_hash_table_insert (by_string, (gpointer) self->strings[id], GINT_TO_POINTER (id));

  if (!index_vocab (self, by_string, vocab_path, error))
    {
      tokenizer_free (self);
      return NULL;
    }

  *by_string_out = g_steal_pointer (&by_string);
  return self;
}

static gboolean
lookup_symbol (GHashTable *by_string,
               const char *symbol,
               gint32     *id)
{
  gpointer value;

  if (!g_hash_table_lookup_extended (by_string, symbol, NULL, &value))
    return FALSE;
  *id = GPOINTER_TO_INT (value);
  return TRUE;
}

static gboolean
merge_symbol (GHashTable *by_string,
              const char *symbol,
              const char *merges_path,
              guint       line_no,
              gint32     *id,
              GError    **error)
{
  if (lookup_symbol (by_string, symbol, id))
    return TRUE;
  g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
               "%s: line %u: symbol “%s” is not in the vocabulary", merges_path, line_no, symbol);
  return FALSE;
}

/* One line of merges.txt, "a b"; @line is modified in place. */
static gboolean
parse_merge_line (GbTokenizer *self,
                  GHashTable  *by_string,
                  const char  *merges_path,
                  guint        line_no,
                  char        *line,
                  guint32      rank,
                  GError     **error)
{
  g_autofree char *joined = NULL;
  char *space = strchr (line, ' ');
  const char *left = line, *right;
  gint32 left_id, right_id, result_id;

  if (space == NULL || space == line || space[1] == '\0' || strchr (space + 1, ' ') != NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: line %u: expected two symbols separated by one space", merges_path,
                   line_no);
      return FALSE;
    }
  *space = '\0';
  right = space + 1;

  if (!merge_symbol (by_string, left, merges_path, line_no, &left_id, error)
      || !merge_symbol (by_string, right, merges_path, line_no, &right_id, error))
    return FALSE;
  joined = g_strconcat (left, right, NULL);
  if (!lookup_symbol (by_string, joined, &result_id))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                   "%s: line %u: the merge result “%s” is not in the vocabulary", merges_path,
                   line_no, joined);
      return FALSE;
    }

  merge_table_insert (&self->merges, left_id, right_id, rank, result_id);
  return TRUE;
}

static guint
count_lines (const char *data,
             gsize       len)
{
  guint n = 0;

  for (const char *p = data; (p = memchr (p, '\n', len - (gsize) (p - data))) != NULL; p++)
    n++;
  return n + 1;
}

static gboolean
load_merges (GbTokenizer *self,
             GHashTable  *by_string,
             const char  *merges_path,
             GError     **error)
{
  g_autofree char *data = NULL;
  gsize len, pos = 0;
  guint line_no = 0;
  guint32 rank = 0;

  if (!read_bounded (merges_path, &data, &len, error))
    return FALSE;
  if (!text_ok (data, len, merges_path, error))
    return FALSE;

  merge_table_init (&self->merges, count_lines (data, len));
  /* Lines are cut in place; a final newline ends the last line rather than
   * starting an empty one. */
  while (pos < len)
    {
      char *line = data + pos;
      char *newline = memchr (line, '\n', len - pos);
      gsize line_len = newline != NULL ? (gsize) (newline - line) : len - pos;

      pos += line_len + 1;
      line_no++;
      line[line_len] = '\0';
      if (line_len > 0 && line[line_len - 1] == '\r')
        line[line_len - 1] = '\0';
      if (line_no == 1 && g_str_has_prefix (line, "#version"))
        continue;
      if (!parse_merge_line (self, by_string, merges_path, line_no, line, rank++, error))
        return FALSE;
    }
  return TRUE;
}

GbTokenizer *
gb_tokenizer_new_from_files (const char *vocab_path,
                             const char *merges_path,
                             GError    **error)
{
  g_autoptr (GHashTable) by_string = NULL;
  GbTokenizer *self;

  g_return_val_if_fail (vocab_path != NULL, NULL);
  g_return_val_if_fail (merges_path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = load_vocab (vocab_path, &by_string, error);
  if (self == NULL)
    return NULL;
  if (!load_merges (self, by_string, merges_path, error))
    {
      tokenizer_free (self);
      return NULL;
    }
  return self;
}

GbTokenizer *
gb_tokenizer_new_bytes (void)
{
  g_autoptr (GHashTable) by_string = g_hash_table_new (g_str_hash, g_str_equal);
  GbTokenizer *self = tokenizer_alloc (257);
  gboolean ok;

  for (guint id = 0; id < 256; id++)
    {
      char utf8[8] = { 0 };

      g_unichar_to_utf8 (gb_byte_to_unichar (gb_byte_at_rank (id)), utf8);
      self->strings[id] = g_string_chunk_insert (self->string_chunk, utf8);
    }
  self->strings[256] = g_string_chunk_insert (self->string_chunk, EOT_STRING);
  for (guint id = 0; id < 257; id++)
    g_hash_table_insert (by_string, (gpointer) self->strings[id], GINT_TO_POINTER (id));

  ok = index_vocab (self, by_string, "(bytes)", NULL);
  g_assert (ok);
  (void) ok; /* release builds compile the assertion out */
  merge_table_init (&self->merges, 0);
  return self;
}

GbTokenizer *
gb_tokenizer_ref (GbTokenizer *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
gb_tokenizer_unref (GbTokenizer *self)
{
  g_return_if_fail (self != NULL);

  if (g_atomic_ref_count_dec (&self->ref_count))
    tokenizer_free (self);
}

guint
gb_tokenizer_get_n_vocab (GbTokenizer *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->n_vocab;
}

gint32
gb_tokenizer_get_eot (GbTokenizer *self)
{
  g_return_val_if_fail (self != NULL, GB_TOKEN_NONE);

  return self->eot;
}

static inline gboolean
heap_less (HeapItem a,
           HeapItem b)
{
  return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void
heap_push (HeapItem *heap,
           guint    *n,
           HeapItem  item)
{
  guint i = (*n)++;

  while (i > 0 && heap_less (item, heap[(i - 1) / 2]))
    {
      heap[i] = heap[(i - 1) / 2];
      i = (i - 1) / 2;
    }
  heap[i] = item;
}

static HeapItem
heap_pop (HeapItem *heap,
          guint    *n)
{
  HeapItem top = heap[0];
  HeapItem last = heap[--(*n)];
  guint i = 0;

  for (;;)
    {
      guint child = 2 * i + 1;

      if (child >= *n)
        break;
      if (child + 1 < *n && heap_less (heap[child + 1], heap[child]))
        child++;
      if (!heap_less (heap[child], last))
        break;
      heap[i] = heap[child];
      i = child;
    }
  if (*n > 0)
    heap[i] = last;
  return top;
}

/* The symbols of one word as a linked list over positions; a merge keeps the
 * left position and unlinks the right one. */
typedef struct
{
  gint32   *sym;  /* -1 once merged away */
  gint32   *next; /* -1 at the end */
  gint32   *prev; /* -1 at the start */
  HeapItem *heap;
  guint     n_heap;
  guint32  *pending;
  guint     n_pending;
} Word;

static const MergeSlot *
merge_at_pos (const GbTokenizer *self,
              const Word        *w,
              guint32            pos)
{
  if (w->sym[pos] < 0 || w->next[pos] < 0)
    return NULL;
  return merge_table_lookup (&self->merges, w->sym[pos], w->sym[w->next[pos]]);
}

static void
push_pair (const GbTokenizer *self,
           Word              *w,
           guint32            pos)
{
  const MergeSlot *slot = merge_at_pos (self, w, pos);

  if (slot != NULL)
    heap_push (w->heap, &w->n_heap, (HeapItem) { slot->rank, pos });
}

static void
apply_merge (Word    *w,
             guint32  pos,
             gint32   result)
{
  gint32 right = w->next[pos];

  w->sym[pos] = result;
  w->sym[right] = -1;
  w->next[pos] = w->next[right];
  if (w->next[right] >= 0)
    w->prev[w->next[right]] = (gint32) pos;

  if (w->prev[pos] >= 0)
    w->pending[w->n_pending++] = (guint32) w->prev[pos];
  w->pending[w->n_pending++] = pos;
}

/* GPT-2's bpe(): repeatedly take the lowest-ranked adjacent pair and merge
 * every occurrence of it, left to right. The heap orders occurrences by
 * (rank, position); pairs a pass creates enter the heap only after the pass,
 * so one rank is applied across the whole word before any other, exactly as
 * the reference's loop does. O(n log n), so a long word is no trap. */
static void
bpe_word (const GbTokenizer *self,
          const guint8      *bytes,
          guint32            n,
          GArray            *out)
{
  g_autofree gint32 *links = g_new (gint32, (gsize) n * 3);
  g_autofree HeapItem *heap = g_new (HeapItem, (gsize) n * 3);
  g_autofree guint32 *pending = g_new (guint32, (gsize) n * 2);
  Word w = { links, links + n, links + 2 * (gsize) n, heap, 0, pending, 0 };

  for (guint32 i = 0; i < n; i++)
    {
      w.sym[i] = self->byte_ids[bytes[i]];
      w.next[i] = i + 1 < n ? (gint32) i + 1 : -1;
      w.prev[i] = (gint32) i - 1;
    }
  for (guint32 i = 0; i + 1 < n; i++)
    push_pair (self, &w, i);

  while (w.n_heap > 0)
    {
      guint32 rank = w.heap[0].rank;

      w.n_pending = 0;
      while (w.n_heap > 0 && w.heap[0].rank == rank)
        {
          HeapItem item = heap_pop (w.heap, &w.n_heap);
          const MergeSlot *slot = merge_at_pos (self, &w, item.pos);

          /* Stale: the pair at this position has changed since. */
          if (slot == NULL || slot->rank != rank)
            continue;
          apply_merge (&w, item.pos, slot->result);
        }
      for (guint i = 0; i < w.n_pending; i++)
        push_pair (self, &w, w.pending[i]);
    }

  for (gint32 i = 0; i >= 0; i = w.next[i])
    g_array_append_val (out, w.sym[i]);
}

static gboolean
cache_lookup (GbTokenizer  *self,
              const guint8 *bytes,
              gsize         len,
              GArray       *out)
{
  WordKey key = { bytes, len };
  WordEntry *entry;

  g_mutex_lock (&self->cache_lock);
  entry = g_hash_table_lookup (self->cache, &key);
  if (entry != NULL)
    g_array_append_vals (out, entry->ids, entry->n_ids);
  g_mutex_unlock (&self->cache_lock);
  return entry != NULL;
}

static void
cache_insert (GbTokenizer  *self,
              const guint8 *bytes,
              gsize         len,
              const gint32 *ids,
              guint         n_ids)
{
  WordEntry *entry = g_malloc (sizeof (WordEntry) + n_ids * sizeof (gint32) + len);
  guint8 *copy = (guint8 *) (entry->ids + n_ids);

  memcpy (entry->ids, ids, n_ids * sizeof (gint32));
  memcpy (copy, bytes, len);
  entry->n_ids = n_ids;
  entry->key = (WordKey) { copy, len };

  g_mutex_lock (&self->cache_lock);
  if (g_hash_table_size (self->cache) >= MAX_CACHE_WORDS)
    g_hash_table_remove_all (self->cache);
  /* Another thread may have cached the word meanwhile; keep theirs. */
  if (g_hash_table_contains (self->cache, &entry->key))
    g_free (entry);
  else
    g_hash_table_insert (self->cache, &entry->key, entry);
  g_mutex_unlock (&self->cache_lock);
}

static void
encode_word (GbTokenizer  *self,
             const guint8 *bytes,
             gsize         len,
             GArray       *out)
{
  guint start = out->len;
  gboolean cacheable = len <= MAX_CACHED_WORD;

  if (len == 1)
    {
      g_array_append_val (out, self->byte_ids[bytes[0]]);
      return;
    }
  if (cacheable && cache_lookup (self, bytes, len, out))
    return;

  bpe_word (self, bytes, (guint32) len, out);
  if (cacheable)
    cache_insert (self, bytes, len, &g_array_index (out, gint32, start), out->len - start);
}

static void
encode_ordinary (GbTokenizer *self,
                 const char  *text,
                 gsize        len,
                 GArray      *out)
{
  gsize pos = 0;

  while (pos < len)
    {
      gsize n = gb_pretoken_next (text, len, pos);

      encode_word (self, (const guint8 *) text + pos, n, out);
      pos += n;
    }
}

GArray *
gb_tokenizer_encode (GbTokenizer *self,
                     const char  *text,
                     gssize       len,
                     gboolean     allow_special,
                     GError     **error)
{
  g_autoptr (GArray) ids = NULL;
  gsize n_bytes, bad, pos = 0;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (text != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  n_bytes = len < 0 ? strlen (text) : (gsize) len;
  if (n_bytes > MAX_ENCODE_BYTES)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT,
                   "text of %" G_GSIZE_FORMAT " bytes is too long to encode", n_bytes);
      return NULL;
    }
  if (!gb_utf8_check (text, n_bytes, &bad))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA,
                   "invalid UTF-8 in text at byte offset %" G_GSIZE_FORMAT, bad);
      return NULL;
    }

  ids = g_array_sized_new (FALSE, FALSE, sizeof (gint32), (guint) (n_bytes / 4 + 1));
  if (allow_special && self->eot != GB_TOKEN_NONE)
    {
      const gsize eot_len = strlen (EOT_STRING);
      const char *hit;

      while ((hit = memmem (text + pos, n_bytes - pos, EOT_STRING, eot_len)) != NULL)
        {
          encode_ordinary (self, text + pos, (gsize) (hit - (text + pos)), ids);
          g_array_append_val (ids, self->eot);
          pos = (gsize) (hit - text) + eot_len;
        }
    }
  encode_ordinary (self, text + pos, n_bytes - pos, ids);

  return g_steal_pointer (&ids);
}

const guint8 *
gb_tokenizer_token_bytes (GbTokenizer *self,
                          gint32       id,
                          gsize       *n_bytes)
{
  g_return_val_if_fail (self != NULL, NULL);

  if (id < 0 || (guint) id >= self->n_vocab)
    {
      if (n_bytes != NULL)
        *n_bytes = 0;
      return NULL;
    }
  if (n_bytes != NULL)
    *n_bytes = self->byte_offsets[id + 1] - self->byte_offsets[id];
  return self->bytes + self->byte_offsets[id];
}

guint
gb_tokenizer_get_max_token_bytes (GbTokenizer *self)
{
  guint longest = 1;

  g_return_val_if_fail (self != NULL, 1);
  for (guint id = 0; id < self->n_vocab; id++)
    longest = MAX (longest, self->byte_offsets[id + 1] - self->byte_offsets[id]);
  return longest;
}

const char *
gb_tokenizer_token_string (GbTokenizer *self,
                           gint32       id)
{
  g_return_val_if_fail (self != NULL, NULL);

  if (id < 0 || (guint) id >= self->n_vocab)
    return NULL;
  return self->strings[id];
}

char *
gb_tokenizer_decode (GbTokenizer  *self,
                     const gint32 *ids,
                     gsize         n_ids,
                     GError      **error)
{
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  GString *text;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  for (gsize i = 0; i < n_ids; i++)
    {
      const guint8 *token;
      gsize n;

      token = gb_tokenizer_token_bytes (self, ids[i], &n);
      if (token == NULL)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA,
                       "token id %d at position %" G_GSIZE_FORMAT
                       " is out of range (the vocabulary has %u tokens)",
                       ids[i], i, self->n_vocab);
          return NULL;
        }
      g_byte_array_append (bytes, token, (guint) n);
    }

  text = g_string_sized_new (bytes->len + 1);
  gb_utf8_append_repaired (text, bytes->data, bytes->len, TRUE);
  return g_string_free (text, FALSE);
}

GbDecodeStream *
gb_decode_stream_new (GbTokenizer *tokenizer)
{
  GbDecodeStream *stream;

  g_return_val_if_fail (tokenizer != NULL, NULL);

  stream = g_new0 (GbDecodeStream, 1);
  stream->tokenizer = gb_tokenizer_ref (tokenizer);
  stream->pending = g_byte_array_new ();
  return stream;
}

void
gb_decode_stream_free (GbDecodeStream *stream)
{
  if (stream == NULL)
    return;

  g_byte_array_unref (stream->pending);
  gb_tokenizer_unref (stream->tokenizer);
  g_free (stream);
}

/* An out-of-range id cannot fail here (there is no GError); it decodes as
 * U+FFFD, like any other undecodable input. */
char *
gb_decode_stream_push (GbDecodeStream *stream,
                       gint32          id)
{
  const guint8 *token;
  GString *text;
  gsize n, used;

  g_return_val_if_fail (stream != NULL, NULL);

  text = g_string_new (NULL);
  token = gb_tokenizer_token_bytes (stream->tokenizer, id, &n);
  if (token == NULL)
    g_byte_array_append (stream->pending, (const guint8 *) REPLACEMENT_UTF8, 3);
  else
    g_byte_array_append (stream->pending, token, (guint) n);

  used = gb_utf8_append_repaired (text, stream->pending->data, stream->pending->len, FALSE);
  g_byte_array_remove_range (stream->pending, 0, (guint) used);
  return g_string_free (text, FALSE);
}

char *
gb_decode_stream_finish (GbDecodeStream *stream)
{
  GString *text;

  g_return_val_if_fail (stream != NULL, NULL);

  text = g_string_new (NULL);
  gb_utf8_append_repaired (text, stream->pending->data, stream->pending->len, TRUE);
  g_byte_array_set_size (stream->pending, 0);
  return g_string_free (text, FALSE);
}
