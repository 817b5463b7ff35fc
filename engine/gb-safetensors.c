/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-npy.h"
#include "gb-safetensors.h"

/* The format stores little-endian data; we read it in place. */
G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);

/* The reference implementation refuses headers over 100 MB; so do we. */
#define MAX_HEADER_BYTES (100u * 1024 * 1024)

struct _GbSafetensors
{
  char         *path;
  GMappedFile  *mapped;
  GbTensorView *tensors;
  guint         n_tensors;
  GHashTable   *by_name;   /* name -> GbTensorView*, borrowed */
  GHashTable   *metadata;  /* string -> string */
  GStringChunk *names;
};

static const struct
{
  const char *name;
  gsize       size;
} dtypes[] = {
  [GB_DTYPE_F32] = { "F32", 4 },   [GB_DTYPE_F16] = { "F16", 2 }, [GB_DTYPE_BF16] = { "BF16", 2 },
  [GB_DTYPE_F64] = { "F64", 8 },   [GB_DTYPE_I64] = { "I64", 8 }, [GB_DTYPE_I32] = { "I32", 4 },
  [GB_DTYPE_I16] = { "I16", 2 },   [GB_DTYPE_I8] = { "I8", 1 },   [GB_DTYPE_U8] = { "U8", 1 },
  [GB_DTYPE_BOOL] = { "BOOL", 1 },
};

gsize
gb_dtype_size (GbDtype dtype)
{
  g_return_val_if_fail (dtype < G_N_ELEMENTS (dtypes), 0);
  return dtypes[dtype].size;
}

const char *
gb_dtype_name (GbDtype dtype)
{
  g_return_val_if_fail (dtype < G_N_ELEMENTS (dtypes), "?");
  return dtypes[dtype].name;
}

static gboolean
dtype_from_name (const char *name,
                 GbDtype    *dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (g_strcmp0 (dtypes[i].name, name) == 0)
      {
        *dtype = i;
        return TRUE;
      }
  return FALSE;
}

float
gb_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 mant = h & 0x3ff;
  union { guint32 u; float f; } v;

  if (exp == 0x1f)
    v.u = sign | 0x7f800000 | (mant << 13);
  else if (exp != 0)
    v.u = sign | ((exp + 112) << 23) | (mant << 13);
  else
    {
      /* Zero or subnormal: mant * 2^-24, exact in float32. */
      v.f = ldexpf ((float) mant, -24);
      v.u |= sign;
    }
  return v.f;
}

float
gb_bf16_to_f32 (guint16 h)
{
  union { guint32 u; float f; } v = { .u = (guint32) h << 16 };
  return v.f;
}

guint16
gb_f32_to_bf16 (float f)
{
  union { float f; guint32 u; } v = { .f = f };

  if (isnan (f))
    return (guint16) ((v.u >> 16) | 0x40);
  v.u += 0x7fff + ((v.u >> 16) & 1);
  return (guint16) (v.u >> 16);
}

guint16
gb_f32_to_f16 (float f)
{
  union { float f; guint32 u; } v = { .f = f };
  guint32 sign = (v.u >> 16) & 0x8000;
  guint32 abs = v.u & 0x7fffffff;

  if (abs >= 0x7f800000)
    return (guint16) (sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0));
  if (abs >= 0x477ff000)  /* rounds to >= 65520: overflow to infinity */
    return (guint16) (sign | 0x7c00);
  if (abs < 0x38800000)
    {
      /* Subnormal half: scale so the result's unit is 2^-24, round to even. */
      float a = fabsf (f) * 16777216.0f;
      return (guint16) (sign | (guint32) lrintf (a));
    }
  guint32 mant = abs & 0x7fffff;
  guint32 exp = (abs >> 23) - 112;
  guint32 h = (exp << 10) | (mant >> 13);
  guint32 rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    h++;
  return (guint16) (sign | h);
}

void
gb_safetensors_free (GbSafetensors *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->by_name, g_hash_table_unref);
  g_clear_pointer (&self->metadata, g_hash_table_unref);
  g_clear_pointer (&self->mapped, g_mapped_file_unref);
  g_clear_pointer (&self->names, g_string_chunk_free);
  g_free (self->tensors);
  g_free (self->path);
  g_free (self);
}

static gboolean
fail (GError    **error,
      GbErrorCode code,
      const char *path,
      const char *tensor,
      const char *format,
      ...) G_GNUC_PRINTF (5, 6);

static gboolean
fail (GError    **error,
      GbErrorCode code,
      const char *path,
      const char *tensor,
      const char *format,
      ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *msg = g_strdup_vprintf (format, args);
  va_end (args);
  if (tensor != NULL)
    g_set_error (error, GB_ERROR, code, "%s: tensor “%s”: %s", path, tensor, msg);
  else
    g_set_error (error, GB_ERROR, code, "%s: %s", path, msg);
  return FALSE;
}

/* A JSON number that is an integer in [0, 2^53]. */
static gboolean
get_uint (JsonNode *node,
          gint64   *out)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  GType t = json_node_get_value_type (node);
  if (t == G_TYPE_INT64)
    *out = json_node_get_int (node);
  else if (t == G_TYPE_DOUBLE)
    {
      double d = json_node_get_double (node);
      if (!(d >= 0 && d <= 9007199254740992.0) || d != floor (d))
        return FALSE;
      *out = (gint64) d;
    }
  else
    return FALSE;
  return *out >= 0 && *out <= ((gint64) 1 << 53);
}

static gboolean
parse_tensor (GbSafetensors *self,
              const char    *name,
              JsonNode      *node,
              gsize          data_size,
              GbTensorView  *view,
              GError       **error)
{
  const char *path = self->path;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (error, GB_ERROR_FORMAT, path, name, "header entry is not an object");
  JsonObject *obj = json_node_get_object (node);

  JsonNode *dtype_node = json_object_get_member (obj, "dtype");
  const char *dtype = dtype_node && JSON_NODE_HOLDS_VALUE (dtype_node) &&
                          json_node_get_value_type (dtype_node) == G_TYPE_STRING
                        ? json_node_get_string (dtype_node) : NULL;
  if (dtype == NULL)
    return fail (error, GB_ERROR_FORMAT, path, name, "missing or non-string “dtype”");
  if (!dtype_from_name (dtype, &view->dtype))
    return fail (error, GB_ERROR_UNSUPPORTED, path, name, "unknown dtype “%s”", dtype);

  JsonNode *shape_node = json_object_get_member (obj, "shape");
  if (shape_node == NULL || !JSON_NODE_HOLDS_ARRAY (shape_node))
    return fail (error, GB_ERROR_FORMAT, path, name, "missing or non-array “shape”");
  JsonArray *shape = json_node_get_array (shape_node);
  guint n_dims = json_array_get_length (shape);
  if (n_dims > GB_MAX_DIMS)
    return fail (error, GB_ERROR_UNSUPPORTED, path, name, "%u dimensions (at most %d)", n_dims,
                 GB_MAX_DIMS);
  view->n_dims = n_dims;
  guint64 n_elements = 1;
  for (guint i = 0; i < n_dims; i++)
    {
      gint64 dim;
      if (!get_uint (json_array_get_element (shape, i), &dim))
        return fail (error, GB_ERROR_FORMAT, path, name, "shape entry %u is not a non-negative integer", i);
      view->shape[i] = dim;
      if (dim != 0 && n_elements > G_MAXINT64 / (guint64) dim / 8)
        return fail (error, GB_ERROR_LIMIT, path, name, "shape is too large");
      n_elements *= (guint64) dim;
    }
  view->n_elements = (gint64) n_elements;

  JsonNode *offs_node = json_object_get_member (obj, "data_offsets");
  JsonArray *offs = offs_node && JSON_NODE_HOLDS_ARRAY (offs_node) ? json_node_get_array (offs_node) : NULL;
  gint64 begin, end;
  if (offs == NULL || json_array_get_length (offs) != 2 ||
      !get_uint (json_array_get_element (offs, 0), &begin) ||
      !get_uint (json_array_get_element (offs, 1), &end))
    return fail (error, GB_ERROR_FORMAT, path, name, "“data_offsets” is not a pair of non-negative integers");
  if (end < begin)
    return fail (error, GB_ERROR_FORMAT, path, name, "data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] end before they begin", begin, end);
  if ((guint64) end > data_size)
    return fail (error, GB_ERROR_FORMAT, path, name,
                 "data_offsets end at byte %" G_GINT64_FORMAT " past the data section (%" G_GSIZE_FORMAT " bytes; file truncated?)",
                 end, data_size);
  guint64 expect = n_elements * gb_dtype_size (view->dtype);
  if ((guint64) (end - begin) != expect)
    return fail (error, GB_ERROR_SHAPE, path, name,
                 "shape and dtype give %" G_GUINT64_FORMAT " bytes but data_offsets span %" G_GINT64_FORMAT,
                 expect, end - begin);
  view->n_bytes = (gsize) (end - begin);
  view->data = (const guint8 *) g_mapped_file_get_contents (self->mapped) + (gsize) begin;  /* rebased by caller */
  return TRUE;
}

static void
object_member_cb (JsonParser *parser,
                  JsonObject *object,
                  const char *member_name,
                  gpointer    user_data)
{
  GHashTable *seen = user_data;
  char *key = g_strdup_printf ("%p/%s", (void *) object, member_name);

  if (!g_hash_table_add (seen, key))
    g_object_set_data_full (G_OBJECT (parser), "gb-duplicate", g_strdup (member_name), g_free);
}

static int
compare_by_offset (gconstpointer a,
                   gconstpointer b)
{
  const GbTensorView *const *x = a, *const *y = b;
  return ((*x)->data > (*y)->data) - ((*x)->data < (*y)->data);
}

static gboolean
check_overlaps (GbSafetensors *self,
                GError       **error)
{
  g_autofree GbTensorView **order = g_new (GbTensorView *, self->n_tensors + 1);

  for (guint i = 0; i < self->n_tensors; i++)
    order[i] = &self->tensors[i];
  qsort (order, self->n_tensors, sizeof *order, compare_by_offset);
  for (guint i = 1; i < self->n_tensors; i++)
    if (order[i - 1]->data + order[i - 1]->n_bytes > order[i]->data)
      return fail (error, GB_ERROR_FORMAT, self->path, order[i]->name,
                   "data overlaps tensor “%s”", order[i - 1]->name);
  return TRUE;
}

static gboolean
parse_metadata (GbSafetensors *self,
                JsonNode      *node,
                GError       **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (error, GB_ERROR_FORMAT, self->path, NULL, "“__metadata__” is not an object");
  JsonObject *obj = json_node_get_object (node);
  g_autoptr (GList) members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next)
    {
      JsonNode *v = json_object_get_member (obj, l->data);
      if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
        return fail (error, GB_ERROR_FORMAT, self->path, NULL, "metadata “%s” is not a string",
                     (const char *) l->data);
      g_hash_table_insert (self->metadata, g_strdup (l->data), g_strdup (json_node_get_string (v)));
    }
  return TRUE;
}

static gboolean
parse_header (GbSafetensors *self,
              const char    *header,
              gsize          header_len,
              gsize          data_offset,
              gsize          data_size,
              GError       **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GError) json_error = NULL;

  if (memchr (header, '\0', header_len) != NULL || !g_utf8_validate (header, header_len, NULL))
    return fail (error, GB_ERROR_FORMAT, self->path, NULL, "header is not valid UTF-8 JSON");
  /* The header is a flat object of small objects; see gb-json.h. */
  if (!gb_json_plain_and_shallow (header, header_len, GB_JSON_MAX_DEPTH))
    return fail (error, GB_ERROR_FORMAT, self->path, NULL, "header is not valid JSON (a character JSON does not allow, a number with a leading zero), or nested deeper than %d levels",
                 GB_JSON_MAX_DEPTH);
  g_signal_connect (parser, "object-member", G_CALLBACK (object_member_cb), seen);
  if (!json_parser_load_from_data (parser, header, header_len, &json_error))
    return fail (error, GB_ERROR_FORMAT, self->path, NULL, "header is not valid JSON: %s", json_error->message);
  const char *dup = g_object_get_data (G_OBJECT (parser), "gb-duplicate");
  if (dup != NULL)
    return fail (error, GB_ERROR_FORMAT, self->path, dup, "name appears twice in the header");

  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return fail (error, GB_ERROR_FORMAT, self->path, NULL, "header is not a JSON object");
  JsonObject *obj = json_node_get_object (root);
  g_autoptr (GList) members = json_object_get_members (obj);

  self->tensors = g_new0 (GbTensorView, g_list_length (members) + 1);
  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (obj, name);
      if (g_str_equal (name, "__metadata__"))
        {
          if (!parse_metadata (self, node, error))
            return FALSE;
          continue;
        }
      GbTensorView *view = &self->tensors[self->n_tensors];
      view->name = g_string_chunk_insert (self->names, name);
      if (!parse_tensor (self, view->name, node, data_size, view, error))
        return FALSE;
      view->data += data_offset;
      g_hash_table_insert (self->by_name, (gpointer) view->name, view);
      self->n_tensors++;
    }
  return check_overlaps (self, error);
}

/* A big file whose blocks are mostly holes is an interrupted download (some
 * downloaders create the whole file first) or a file pretending to be a
 * model: refuse it once its header is read but before any weight is (reading
 * holes would page in gigabytes of zeros, and converting them allocate as
 * much again). Filesystems that report no blocks at all are trusted. */
#define SPARSE_CHECK_BYTES (64u * 1024 * 1024)

static gboolean
check_not_sparse (const char *path,
                  GError    **error)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0 || st.st_size < (goffset) SPARSE_CHECK_BYTES || st.st_blocks <= 0)
    return TRUE;
  guint64 stored = (guint64) st.st_blocks * 512;
  if (stored < (guint64) st.st_size / 4)
    {
      g_autofree char *size = g_format_size ((guint64) st.st_size);
      g_autofree char *on_disk = g_format_size (stored);
      return fail (error, GB_ERROR_FORMAT, path, NULL,
                   "%s long but only %s of it is stored on disk: a sparse or incomplete file (interrupted download?)",
                   size, on_disk);
    }
  return TRUE;
}

GbSafetensors *
gb_safetensors_open (const char *path,
                     GError    **error)
{
  g_autoptr (GError) map_error = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  GbSafetensors *self = g_new0 (GbSafetensors, 1);
  g_autoptr (GbSafetensors) owned = self;
  self->path = g_strdup (path);
  self->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->names = g_string_chunk_new (1024);

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      fail (error, GB_ERROR_IO, path, NULL, "is a folder, not a safetensors file");
      return NULL;
    }
  /* Mapping opens the file, which would wait forever on a FIFO. */
  GStatBuf st;
  if (g_stat (path, &st) == 0 && !S_ISREG (st.st_mode))
    {
      fail (error, GB_ERROR_IO, path, NULL, "not a regular file");
      return NULL;
    }
  self->mapped = g_mapped_file_new (path, FALSE, &map_error);
  if (self->mapped == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s", map_error->message);
      return NULL;
    }

  gsize size = g_mapped_file_get_length (self->mapped);
  const guint8 *bytes = (const guint8 *) g_mapped_file_get_contents (self->mapped);
  if (size < 8)
    {
      fail (error, GB_ERROR_FORMAT, path, NULL,
            "truncated: %" G_GSIZE_FORMAT " bytes, too short for the 8-byte header length", size);
      return NULL;
    }
  guint64 header_len;
  memcpy (&header_len, bytes, 8);
  header_len = GUINT64_FROM_LE (header_len);
  if (header_len > MAX_HEADER_BYTES)
    {
      fail (error, GB_ERROR_LIMIT, path, NULL,
            "header length %" G_GUINT64_FORMAT " is over the %u-byte limit (corrupt file?)",
            header_len, MAX_HEADER_BYTES);
      return NULL;
    }
  if (header_len > size - 8)
    {
      fail (error, GB_ERROR_FORMAT, path, NULL,
            "truncated: header length %" G_GUINT64_FORMAT " runs past the end of the file (%" G_GSIZE_FORMAT " bytes)",
            header_len, size);
      return NULL;
    }
  if (header_len < 2)
    {
      fail (error, GB_ERROR_FORMAT, path, NULL, "header is empty");
      return NULL;
    }

  gsize data_offset = 8 + (gsize) header_len;
  if (!parse_header (self, (const char *) bytes + 8, (gsize) header_len, data_offset,
                     size - data_offset, error) ||
      !check_not_sparse (path, error))
    return NULL;

  return g_steal_pointer (&owned);
}

const char *
gb_safetensors_get_path (GbSafetensors *self)
{
  return self->path;
}

guint
gb_safetensors_get_n_tensors (GbSafetensors *self)
{
  return self->n_tensors;
}

const GbTensorView *
gb_safetensors_get_nth (GbSafetensors *self,
                        guint          index)
{
  g_return_val_if_fail (index < self->n_tensors, NULL);
  return &self->tensors[index];
}

const GbTensorView *
gb_safetensors_lookup (GbSafetensors *self,
                       const char    *name)
{
  return g_hash_table_lookup (self->by_name, name);
}

GHashTable *
gb_safetensors_get_metadata (GbSafetensors *self)
{
  return self->metadata;
}

static void
convert_row (const float *src,
             guint8      *dst,
             gsize        n,
             GbDtype      dtype)
{
  for (gsize i = 0; i < n; i++)
    {
      guint16 h = dtype == GB_DTYPE_F16 ? gb_f32_to_f16 (src[i]) : gb_f32_to_bf16 (src[i]);
      memcpy (dst + 2 * i, &h, 2);
    }
}

static gboolean
write_tensor_data (GbAtomicFile      *file,
                   const GbTensorOut *t,
                   gsize              n,
                   GbDtype            dtype,
                   GError           **error)
{
  if (dtype == GB_DTYPE_F32)
    return gb_atomic_file_write (file, t->data, n * 4, error);

  enum { CHUNK = 16384 };
  g_autofree guint8 *buf = g_malloc (CHUNK * 2);
  for (gsize i = 0; i < n; i += CHUNK)
    {
      gsize m = MIN ((gsize) CHUNK, n - i);
      convert_row (t->data + i, buf, m, dtype);
      if (!gb_atomic_file_write (file, buf, m * 2, error))
        return FALSE;
    }
  return TRUE;
}

static gsize
tensor_out_elements (const GbTensorOut *t)
{
  gsize n = 1;
  for (guint d = 0; d < t->n_dims; d++)
    n *= (gsize) t->shape[d];
  return n;
}

static char *
build_header (const GbTensorOut *tensors,
              guint              n_tensors,
              GbDtype            dtype,
              GHashTable        *metadata)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gsize offset = 0;

  json_builder_begin_object (b);
  if (metadata != NULL && g_hash_table_size (metadata) > 0)
    {
      GHashTableIter iter;
      gpointer k, v;
      json_builder_set_member_name (b, "__metadata__");
      json_builder_begin_object (b);
      g_hash_table_iter_init (&iter, metadata);
      while (g_hash_table_iter_next (&iter, &k, &v))
        {
          json_builder_set_member_name (b, k);
          json_builder_add_string_value (b, v);
        }
      json_builder_end_object (b);
    }
  for (guint i = 0; i < n_tensors; i++)
    {
      gsize nbytes = tensor_out_elements (&tensors[i]) * gb_dtype_size (dtype);
      json_builder_set_member_name (b, tensors[i].name);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, gb_dtype_name (dtype));
      json_builder_set_member_name (b, "shape");
      json_builder_begin_array (b);
      for (guint d = 0; d < tensors[i].n_dims; d++)
        json_builder_add_int_value (b, tensors[i].shape[d]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "data_offsets");
      json_builder_begin_array (b);
      json_builder_add_int_value (b, (gint64) offset);
      json_builder_add_int_value (b, (gint64) (offset + nbytes));
      json_builder_end_array (b);
      json_builder_end_object (b);
      offset += nbytes;
    }
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

gboolean
gb_safetensors_write (const char        *path,
                      const GbTensorOut *tensors,
                      guint              n_tensors,
                      GbDtype            dtype,
                      GHashTable        *metadata,
                      GError           **error)
{
  g_return_val_if_fail (dtype == GB_DTYPE_F32 || dtype == GB_DTYPE_F16 || dtype == GB_DTYPE_BF16, FALSE);

  g_autoptr (GString) header = g_string_new (NULL);
  g_autofree char *json = build_header (tensors, n_tensors, dtype, metadata);
  g_string_append (header, json);
  /* Pad so the data section starts 8-byte aligned, as the reference writer does. */
  while ((8 + header->len) % 8 != 0)
    g_string_append_c (header, ' ');
  guint64 len = GUINT64_TO_LE ((guint64) header->len);

  g_autoptr (GbAtomicFile) file = gb_atomic_file_new (path, TRUE, error);
  if (file == NULL || !gb_atomic_file_write (file, &len, 8, error) ||
      !gb_atomic_file_write (file, header->str, header->len, error))
    return FALSE;
  for (guint i = 0; i < n_tensors; i++)
    if (!write_tensor_data (file, &tensors[i], tensor_out_elements (&tensors[i]), dtype, error))
      return FALSE;
  return gb_atomic_file_commit (file, error);
}
