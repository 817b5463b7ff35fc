/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-kernels.h"
#include "gb-model-private.h"

#define MAX_INDEX_BYTES (16u * 1024 * 1024)

typedef struct
{
  GbModel    *model;
  GHashTable *tensors;  /* canonical name (no "transformer.") -> const GbTensorView* */
  GHashTable *used;     /* canonical names consumed */
} Loader;

static const char *
strip_prefix (const char *name)
{
  return g_str_has_prefix (name, "transformer.") ? name + strlen ("transformer.") : name;
}

static gboolean
index_file (Loader        *loader,
            GbSafetensors *file,
            GError       **error)
{
  for (guint i = 0; i < gb_safetensors_get_n_tensors (file); i++)
    {
      const GbTensorView *t = gb_safetensors_get_nth (file, i);
      const char *name = strip_prefix (t->name);
      if (g_hash_table_contains (loader->tensors, name))
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: tensor “%s” is stored twice",
                       gb_safetensors_get_path (file), t->name);
          return FALSE;
        }
      g_hash_table_insert (loader->tensors, (gpointer) name, (gpointer) t);
    }
  return TRUE;
}

static gboolean
open_file (Loader     *loader,
           const char *path,
           GError    **error)
{
  GbSafetensors *file = gb_safetensors_open (path, error);
  if (file == NULL)
    return FALSE;
  g_ptr_array_add (loader->model->files, file);
  return index_file (loader, file, error);
}

/* A shard name from the index must stay inside the model folder. */
static gboolean
shard_name_ok (const char *name)
{
  return *name != '\0' && strchr (name, '/') == NULL && strchr (name, '\\') == NULL &&
         !g_str_equal (name, ".") && !g_str_equal (name, "..");
}

static gboolean
open_sharded (Loader     *loader,
              const char *index_path,
              GError    **error)
{
  g_autoptr (JsonNode) root = gb_json_load_file (index_path, MAX_INDEX_BYTES, GB_JSON_MAX_DEPTH, error);
  if (root == NULL)
    return FALSE;
  JsonNode *map = root && JSON_NODE_HOLDS_OBJECT (root)
                    ? json_object_get_member (json_node_get_object (root), "weight_map") : NULL;
  if (map == NULL || !JSON_NODE_HOLDS_OBJECT (map))
    return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: no “weight_map” object", index_path), FALSE;

  g_autoptr (GHashTable) shards = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GList) members = json_object_get_members (json_node_get_object (map));
  for (GList *l = members; l; l = l->next)
    {
      JsonNode *v = json_object_get_member (json_node_get_object (map), l->data);
      const char *shard = JSON_NODE_HOLDS_VALUE (v) && json_node_get_value_type (v) == G_TYPE_STRING
                            ? json_node_get_string (v) : NULL;
      if (shard == NULL || !shard_name_ok (shard))
        return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: tensor “%s” maps to an invalid file name",
                            index_path, (const char *) l->data), FALSE;
      g_hash_table_add (shards, (gpointer) shard);
    }
  g_autofree char *dir = g_path_get_dirname (index_path);
  g_autofree gpointer *names = g_hash_table_get_keys_as_array (shards, NULL);
  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autofree char *path = g_build_filename (dir, names[i], NULL);
      if (!open_file (loader, path, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
all_finite (const float *data,
            gsize        n)
{
  /* NaN and Inf are the floats whose exponent bits are all ones. Integer
   * operations, so the loop vectorises (a float sum would not, without
   * reassociation), and it reads the weights at memory speed. */
  guint32 bad = 0;
  for (gsize i = 0; i < n; i++)
    {
      guint32 bits;
      memcpy (&bits, &data[i], sizeof bits);
      bad |= (guint32) ((bits & 0x7f800000u) == 0x7f800000u);
    }
  return bad == 0;
}

static const float *
to_f32 (Loader             *loader,
        const GbTensorView *t)
{
  if (t->dtype == GB_DTYPE_F32 && ((guintptr) t->data % sizeof (float)) == 0)
    return (const float *) t->data;

  float *out = g_new (float, t->n_elements);
  for (gint64 i = 0; i < t->n_elements; i++)
    {
      guint16 h;
      switch (t->dtype)
        {
        case GB_DTYPE_F32:
          memcpy (&out[i], t->data + 4 * i, 4);
          break;
        case GB_DTYPE_F16:
          memcpy (&h, t->data + 2 * i, 2);
          out[i] = gb_f16_to_f32 (h);
          break;
        case GB_DTYPE_BF16:
          memcpy (&h, t->data + 2 * i, 2);
          out[i] = gb_bf16_to_f32 (h);
          break;
        default:
          g_assert_not_reached ();
        }
    }
  g_ptr_array_add (loader->model->buffers, out);
  return out;
}

static const char *
file_of (Loader             *loader,
         const GbTensorView *t)
{
  GPtrArray *files = loader->model->files;
  for (guint i = 0; i < files->len; i++)
    {
      GbSafetensors *f = files->pdata[i];
      if (gb_safetensors_lookup (f, t->name) == t)
        return gb_safetensors_get_path (f);
    }
  return loader->model->path;
}

/* Looks up @name (without "transformer."), checks dtype, shape and values. */
static const float *
take (Loader     *loader,
      const char *name,
      guint       n_dims,
      gint64      d0,
      gint64      d1,
      GError    **error)
{
  const GbTensorView *t = g_hash_table_lookup (loader->tensors, name);

  if (t == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: tensor “%s” is missing", loader->model->path, name);
      return NULL;
    }
  g_hash_table_add (loader->used, (gpointer) name);
  const char *file = file_of (loader, t);
  if (t->dtype != GB_DTYPE_F32 && t->dtype != GB_DTYPE_F16 && t->dtype != GB_DTYPE_BF16)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "%s: tensor “%s”: dtype %s is not supported (F32, F16, BF16)",
                   file, t->name, gb_dtype_name (t->dtype));
      return NULL;
    }
  if (t->n_dims != n_dims || t->shape[0] != d0 || (n_dims == 2 && t->shape[1] != d1))
    {
      g_autoptr (GString) got = g_string_new ("[");
      for (guint i = 0; i < t->n_dims; i++)
        g_string_append_printf (got, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->shape[i]);
      g_string_append_c (got, ']');
      if (n_dims == 1)
        g_set_error (error, GB_ERROR, GB_ERROR_SHAPE, "%s: tensor “%s” has shape %s, expected [%" G_GINT64_FORMAT "]",
                     file, t->name, got->str, d0);
      else
        g_set_error (error, GB_ERROR, GB_ERROR_SHAPE,
                     "%s: tensor “%s” has shape %s, expected [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", file,
                     t->name, got->str, d0, d1);
      return NULL;
    }
  const float *data = to_f32 (loader, t);
  if (!all_finite (data, (gsize) t->n_elements))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_INVALID_DATA, "%s: tensor “%s” contains NaN or infinite values", file,
                   t->name);
      return NULL;
    }
  loader->model->n_params += (guint64) t->n_elements;
  return data;
}

#define TAKE1(dst, fmt, n)                                                        \
  G_STMT_START {                                                                  \
    g_autofree char *nm_ = g_strdup_printf fmt;                                   \
    if (((dst) = take (loader, g_intern_string (nm_), 1, (n), 0, error)) == NULL) \
      return FALSE;                                                               \
  } G_STMT_END
#define TAKE2(dst, fmt, n0, n1)                                                      \
  G_STMT_START {                                                                     \
    g_autofree char *nm_ = g_strdup_printf fmt;                                      \
    if (((dst) = take (loader, g_intern_string (nm_), 2, (n0), (n1), error)) == NULL) \
      return FALSE;                                                                  \
  } G_STMT_END

/* Packs a block's [K, N] matrix for gb_packed_matmul (the forward pass).
 * The unpacked matrix stays for GbNet (gradients, training). A memory-mapped
 * one is dropped from memory (the mapping is read-only, so the kernel reads
 * it back from the file if GbNet touches it); a float32 copy made at load
 * from F16/BF16 stays, which the memory check counts. Without AVX-512
 * nothing is packed and OpenBLAS multiplies the matrix as it is. */
static void
pack_weight (Loader          *loader,
             const float     *w,
             GbPackedMatrix **packed,
             guint            K,
             guint            N)
{
  if ((*packed = gb_packed_new (w, K, N)) == NULL)
    return;
  GPtrArray *buffers = loader->model->buffers;
  for (guint i = 0; i < buffers->len; i++)
    if (buffers->pdata[i] == w)
      return;
  const gsize page = (gsize) sysconf (_SC_PAGESIZE);
  guintptr begin = ((guintptr) w + page - 1) / page * page;
  guintptr end = ((guintptr) w + (gsize) K * N * sizeof (float)) / page * page;
  if (end > begin)
    madvise ((void *) begin, end - begin, MADV_DONTNEED);
}

static gboolean
bind_block (Loader  *loader,
            guint    l,
            GError **error)
{
  const GbConfig *c = loader->model->config;
  GbBlockWeights *b = &loader->model->blocks[l];
  gint64 d = c->n_embd, f = c->n_inner;

  TAKE1 (b->ln1_w, ("h.%u.ln_1.weight", l), d);
  TAKE1 (b->ln1_b, ("h.%u.ln_1.bias", l), d);
  TAKE2 (b->qkv_w, ("h.%u.attn.c_attn.weight", l), d, 3 * d);
  TAKE1 (b->qkv_b, ("h.%u.attn.c_attn.bias", l), 3 * d);
  TAKE2 (b->proj_w, ("h.%u.attn.c_proj.weight", l), d, d);
  TAKE1 (b->proj_b, ("h.%u.attn.c_proj.bias", l), d);
  TAKE1 (b->ln2_w, ("h.%u.ln_2.weight", l), d);
  TAKE1 (b->ln2_b, ("h.%u.ln_2.bias", l), d);
  TAKE2 (b->fc_w, ("h.%u.mlp.c_fc.weight", l), d, f);
  TAKE1 (b->fc_b, ("h.%u.mlp.c_fc.bias", l), f);
  TAKE2 (b->out_w, ("h.%u.mlp.c_proj.weight", l), f, d);
  TAKE1 (b->out_b, ("h.%u.mlp.c_proj.bias", l), d);
  pack_weight (loader, b->qkv_w, &b->qkv_p, d, 3 * d);
  pack_weight (loader, b->proj_w, &b->proj_p, d, d);
  pack_weight (loader, b->fc_w, &b->fc_p, d, f);
  pack_weight (loader, b->out_w, &b->out_p, f, d);
  return TRUE;
}

/* Buffers that checkpoints carry but the maths does not need. */
static gboolean
is_ignored_buffer (const char *name)
{
  return g_str_has_suffix (name, ".attn.bias") || g_str_has_suffix (name, ".attn.masked_bias");
}

guint64
gb_memory_budget (void)
{
  const char *env = g_getenv ("GLASSBOX_MEMORY_LIMIT_MB");
  guint64 mb;
  if (env != NULL && g_ascii_string_to_unsigned (env, 10, 1, G_MAXUINT32, &mb, NULL))
    return mb << 20;
  long pages = sysconf (_SC_PHYS_PAGES), page = sysconf (_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (guint64) pages * (guint64) page : G_MAXUINT64;
}

/* F16/BF16 (and unaligned F32) tensors become float32 copies: add them up
 * before allocating any, so a file that would need more memory than the
 * computer has is refused with a message instead of an abort. */
static gboolean
check_memory (Loader  *loader,
              GError **error)
{
  guint64 needed = 0;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, loader->tensors);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const GbTensorView *t = value;
      if (t->dtype == GB_DTYPE_F16 || t->dtype == GB_DTYPE_BF16 ||
          (t->dtype == GB_DTYPE_F32 && (guintptr) t->data % sizeof (float) != 0))
        needed += (guint64) t->n_elements * sizeof (float);
    }
  /* The packed copies of the blocks' matrices (the unpacked ones go). */
  const GbConfig *c = loader->model->config;
  if (gb_packed_supported ())
    needed += (guint64) c->n_layer * (gb_packed_bytes (c->n_embd, 3 * c->n_embd) + gb_packed_bytes (c->n_embd, c->n_embd) +
                                      gb_packed_bytes (c->n_embd, c->n_inner) + gb_packed_bytes (c->n_inner, c->n_embd));
  guint64 budget = gb_memory_budget ();
  if (needed > budget)
    {
      g_autofree char *need = g_format_size (needed);
      g_autofree char *have = g_format_size (budget);
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT,
                   "%s: loading the weights needs %s of memory, more than the %s available", loader->model->path,
                   need, have);
      return FALSE;
    }
  return TRUE;
}

static gboolean
bind_weights (Loader       *loader,
              GCancellable *cancellable,
              GbProgressFunc progress,
              gpointer      progress_data,
              GError      **error)
{
  GbModel *m = loader->model;
  const GbConfig *c = m->config;

  TAKE2 (m->wte, ("wte.weight"), c->n_vocab, c->n_embd);
  TAKE2 (m->wpe, ("wpe.weight"), c->n_positions, c->n_embd);
  m->blocks = g_new0 (GbBlockWeights, c->n_layer);
  for (guint l = 0; l < c->n_layer; l++)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error) || !bind_block (loader, l, error))
        return FALSE;
      if (progress)
        progress ((l + 1.0) / (c->n_layer + 1.0), "Loading weights", progress_data);
    }
  TAKE1 (m->lnf_w, ("ln_f.weight"), c->n_embd);
  TAKE1 (m->lnf_b, ("ln_f.bias"), c->n_embd);

  /* As transformers does: tied unless the config says otherwise, whatever
   * copy of lm_head.weight the file carries. */
  if (!c->tie_word_embeddings)
    TAKE2 (m->lm_head, ("lm_head.weight"), c->n_vocab, c->n_embd);
  else
    m->lm_head = m->wte;
  if (c->n_labels > 0)
    TAKE2 (m->score, ("score.weight"), c->n_labels, c->n_embd);

  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init (&iter, loader->tensors);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (loader->used, key) && !is_ignored_buffer (key))
      g_debug ("%s: ignoring unknown tensor “%s”", m->path, (const char *) key);
  return TRUE;
}

static char *
display_name (const char *dir)
{
  /* Hub cache snapshots live in models--ORG--NAME/snapshots/HASH. */
  g_autofree char *snapshots = g_path_get_dirname (dir);
  g_autofree char *repo = g_path_get_dirname (snapshots);
  g_autofree char *repo_base = g_path_get_basename (repo);
  g_autofree char *snap_base = g_path_get_basename (snapshots);
  if (g_str_equal (snap_base, "snapshots") && g_str_has_prefix (repo_base, "models--"))
    {
      g_auto (GStrv) parts = g_strsplit (repo_base + strlen ("models--"), "--", -1);
      return g_strjoinv ("/", parts);
    }
  return g_path_get_basename (dir);
}

static gboolean
load_tokenizer (GbModel *m,
                GError **error)
{
  g_autofree char *vocab = g_build_filename (m->path, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (m->path, "merges.txt", NULL);
  m->tokenizer = gb_tokenizer_new_from_files (vocab, merges, error);
  if (m->tokenizer == NULL)
    return FALSE;
  if (gb_tokenizer_get_n_vocab (m->tokenizer) > m->config->n_vocab)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_SHAPE, "%s: the tokenizer has %u tokens but the model only %u (vocab_size)",
                   vocab, gb_tokenizer_get_n_vocab (m->tokenizer), m->config->n_vocab);
      return FALSE;
    }
  return TRUE;
}

static gboolean
open_weights (Loader  *loader,
              GError **error)
{
  const char *dir = loader->model->path;
  g_autofree char *single = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);

  if (g_file_test (single, G_FILE_TEST_EXISTS))
    return open_file (loader, single, error);
  if (g_file_test (index, G_FILE_TEST_EXISTS))
    return open_sharded (loader, index, error);
  g_autofree char *bin = g_build_filename (dir, "pytorch_model.bin", NULL);
  if (g_file_test (bin, G_FILE_TEST_EXISTS))
    g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED,
                 "%s: only pytorch_model.bin here; Glassbox reads safetensors (convert with save_pretrained(safe_serialization=True))",
                 dir);
  else
    g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: no model.safetensors or model.safetensors.index.json", dir);
  return FALSE;
}

/* OpenBLAS does the matrix products with its own threads and the engine's
 * own loops stay on the calling thread, so the two never compete for cores.
 * Pin its count once unless the user set it. */
static void
init_threads (void)
{
  static gsize done;
  if (g_once_init_enter (&done))
    {
      if (g_getenv ("OPENBLAS_NUM_THREADS") == NULL && g_getenv ("GOTO_NUM_THREADS") == NULL &&
          g_getenv ("OMP_NUM_THREADS") == NULL)
        gb_blas_set_threads ((int) g_get_num_processors ());
      g_once_init_leave (&done, 1);
    }
}

GbModel *
gb_model_load (const char     *dir,
               GCancellable   *cancellable,
               GbProgressFunc  progress,
               gpointer        progress_data,
               GError        **error)
{
  g_return_val_if_fail (dir != NULL, NULL);

  init_threads ();
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: not a folder", dir);
      return NULL;
    }

  g_autoptr (GbModel) m = g_new0 (GbModel, 1);
  g_atomic_ref_count_init (&m->ref_count);
  m->path = g_canonicalize_filename (dir, NULL);
  m->name = display_name (m->path);
  m->files = g_ptr_array_new_with_free_func ((GDestroyNotify) gb_safetensors_free);
  m->buffers = g_ptr_array_new_with_free_func (g_free);

  g_autofree char *config_path = g_build_filename (m->path, "config.json", NULL);
  if ((m->config = gb_config_load (config_path, error)) == NULL || !load_tokenizer (m, error))
    return NULL;
  m->activation = g_str_equal (m->config->activation, "gelu") ? GB_ACT_GELU : GB_ACT_GELU_NEW;

  Loader loader = { m, g_hash_table_new (g_str_hash, g_str_equal), g_hash_table_new (g_str_hash, g_str_equal) };
  gboolean ok = open_weights (&loader, error) && check_memory (&loader, error) && bind_weights (&loader, cancellable, progress, progress_data, error);
  g_hash_table_unref (loader.tensors);
  g_hash_table_unref (loader.used);
  if (!ok)
    return NULL;
  if (progress)
    progress (1.0, "Loaded", progress_data);
  return g_steal_pointer (&m);
}

gboolean
gb_model_check_prompt_size (GbModel *self,
                            gsize    n_bytes,
                            GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);

  guint64 cap = (guint64) self->config->n_positions * gb_tokenizer_get_max_token_bytes (self->tokenizer);
  cap = MAX (cap, (guint64) 1 << 20);
  if (n_bytes > cap)
    {
      g_autofree char *size = g_format_size (n_bytes);
      g_autofree char *max = g_format_size (cap);
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT,
                   "the text is %s; at most %s is accepted, as %s reads at most %u tokens (its context)", size,
                   max, self->name, self->config->n_positions);
      return FALSE;
    }
  return TRUE;
}

GbModel *
gb_model_ref (GbModel *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
gb_model_unref (GbModel *self)
{
  if (self == NULL || !g_atomic_ref_count_dec (&self->ref_count))
    return;
  for (guint l = 0; self->blocks != NULL && l < self->config->n_layer; l++)
    {
      gb_packed_free (self->blocks[l].qkv_p);
      gb_packed_free (self->blocks[l].proj_p);
      gb_packed_free (self->blocks[l].fc_p);
      gb_packed_free (self->blocks[l].out_p);
    }
  g_clear_pointer (&self->tokenizer, gb_tokenizer_unref);
  g_clear_pointer (&self->config, gb_config_free);
  g_clear_pointer (&self->buffers, g_ptr_array_unref);
  g_clear_pointer (&self->files, g_ptr_array_unref);
  g_free (self->blocks);
  g_free (self->path);
  g_free (self->name);
  g_free (self);
}

const GbConfig *
gb_model_get_config (GbModel *self)
{
  return self->config;
}

GbTokenizer *
gb_model_get_tokenizer (GbModel *self)
{
  return self->tokenizer;
}

const char *
gb_model_get_path (GbModel *self)
{
  return self->path;
}

const char *
gb_model_get_name (GbModel *self)
{
  return self->name;
}

guint64
gb_model_get_n_params (GbModel *self)
{
  return self->n_params;
}
