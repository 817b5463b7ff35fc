/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-npy.h"
#include "gb-steer.h"

/* Steering-vector files: our JSON, and llama.cpp's control-vector GGUF. */

#define FORMAT_NAME "glassbox-steering-vector"
#define FORMAT_VERSION 1
#define MAX_EMBD (1u << 16)
#define MAX_LAYER 63

/* ---- JSON ---- */

static void
add_number_or_null (JsonBuilder *b,
                    const char  *name,
                    double       x)
{
  json_builder_set_member_name (b, name);
  if (isfinite (x))
    json_builder_add_double_value (b, x);
  else
    json_builder_add_null_value (b);
}

static void
add_layer (JsonBuilder        *b,
           const GbSteerLayer *l,
           guint               n_embd)
{
  g_autofree char *hook = g_strdup_printf ("blocks.%u.hook_resid_post", l->layer);
  double norm = 0;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "layer");
  json_builder_add_int_value (b, l->layer);
  json_builder_set_member_name (b, "hook");
  json_builder_add_string_value (b, hook);
  for (guint j = 0; j < n_embd; j++)
    norm += (double) l->vector[j] * l->vector[j];
  add_number_or_null (b, "norm", sqrt (norm));
  add_number_or_null (b, "heldout_accuracy", l->accuracy);
  add_number_or_null (b, "heldout_gap", l->gap);
  add_number_or_null (b, "heldout_effect", l->effect);
  add_number_or_null (b, "train_projection_mean", l->proj_mean);
  add_number_or_null (b, "train_projection_sd", l->proj_sd);
  json_builder_set_member_name (b, "vector");
  json_builder_begin_array (b);
  for (guint j = 0; j < n_embd; j++)
    json_builder_add_double_value (b, l->vector[j]);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static void
add_string (JsonBuilder *b,
            const char  *name,
            const char  *value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

gboolean
gb_steer_vector_save (const GbSteerVector *self,
                      const char          *path,
                      GError             **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  g_return_val_if_fail (self != NULL && path != NULL, FALSE);

  json_builder_begin_object (b);
  add_string (b, "format", FORMAT_NAME);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, FORMAT_VERSION);
  add_string (b, "model", self->model_name);
  add_string (b, "model_type", self->model_type);
  json_builder_set_member_name (b, "n_embd");
  json_builder_add_int_value (b, self->n_embd);
  add_string (b, "method", self->method_known ? gb_steer_method_name (self->method) : NULL);
  json_builder_set_member_name (b, "read_position");
  json_builder_add_int_value (b, self->read_pos);
  json_builder_set_member_name (b, "pairs");
  json_builder_begin_object (b);
  add_string (b, "name", self->pairs_name);
  add_string (b, "hash", self->pairs_hash);
  json_builder_set_member_name (b, "n_train");
  json_builder_add_int_value (b, self->n_train);
  json_builder_set_member_name (b, "n_heldout");
  json_builder_add_int_value (b, self->n_heldout);
  json_builder_set_member_name (b, "holdout_every");
  json_builder_add_int_value (b, self->holdout_every);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "layers");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->n_layers; i++)
    add_layer (b, &self->layers[i], self->n_embd);
  json_builder_end_array (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autofree char *json = json_generator_to_data (gen, NULL);
  g_autofree char *text = g_strconcat (json, "\n", NULL);
  return gb_file_write_atomic (path, text, strlen (text), TRUE, error);
}

/* Typed member access that names the file and the member in errors. */
typedef struct
{
  const char *path;
  GError    **error;
} Ctx;

static gboolean
fail (Ctx        *ctx,
      const char *format,
      ...) G_GNUC_PRINTF (2, 3);

static gboolean
fail (Ctx        *ctx,
      const char *format,
      ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (ctx->error, GB_ERROR, GB_ERROR_FORMAT, "%s: %s", ctx->path, msg);
  return FALSE;
}

static gboolean
get_int (Ctx        *ctx,
         JsonObject *o,
         const char *key,
         gint64      min,
         gint64      max,
         gint64     *out)
{
  JsonNode *m = json_object_get_member (o, key);
  if (m == NULL || !JSON_NODE_HOLDS_VALUE (m) || json_node_get_value_type (m) != G_TYPE_INT64)
    return fail (ctx, "\"%s\" is missing or not an integer", key);
  *out = json_node_get_int (m);
  if (*out < min || *out > max)
    return fail (ctx, "\"%s\" is %" G_GINT64_FORMAT ", outside %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT, key, *out,
                 min, max);
  return TRUE;
}

static char *
dup_string (JsonObject *o,
            const char *key)
{
  JsonNode *m = o ? json_object_get_member (o, key) : NULL;
  if (m == NULL || !JSON_NODE_HOLDS_VALUE (m) || json_node_get_value_type (m) != G_TYPE_STRING)
    return NULL;
  return g_strdup (json_node_get_string (m));
}

static gboolean
get_number (JsonNode *m,
            double   *out)
{
  if (m == NULL || !JSON_NODE_HOLDS_VALUE (m))
    return FALSE;
  GType t = json_node_get_value_type (m);
  if (t == G_TYPE_DOUBLE)
    *out = json_node_get_double (m);
  else if (t == G_TYPE_INT64)
    *out = (double) json_node_get_int (m);
  else
    return FALSE;
  return TRUE;
}

static double
optional_number (JsonObject *o,
                 const char *key)
{
  double x;
  return get_number (json_object_get_member (o, key), &x) ? x : NAN;
}

static gboolean
read_layer (Ctx          *ctx,
            JsonNode     *node,
            guint         index,
            guint         n_embd,
            GbSteerLayer *out)
{
  gint64 layer = 0;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (ctx, "layers[%u] is not an object", index);
  JsonObject *o = json_node_get_object (node);
  if (!get_int (ctx, o, "layer", 0, MAX_LAYER, &layer))
    return FALSE;
  JsonNode *m = json_object_get_member (o, "vector");
  if (m == NULL || !JSON_NODE_HOLDS_ARRAY (m))
    return fail (ctx, "block %" G_GINT64_FORMAT ": \"vector\" is missing or not an array", layer);
  JsonArray *a = json_node_get_array (m);
  if (json_array_get_length (a) != n_embd)
    return fail (ctx, "block %" G_GINT64_FORMAT ": the vector has %u numbers, n_embd is %u", layer,
                 json_array_get_length (a), n_embd);
  out->layer = (guint) layer;
  out->vector = g_new (float, n_embd);
  for (guint j = 0; j < n_embd; j++)
    {
      double x;
      if (!get_number (json_array_get_element (a, j), &x) || !isfinite (x) || fabs (x) > G_MAXFLOAT)
        return fail (ctx, "block %" G_GINT64_FORMAT ": vector[%u] is not a finite float32", layer, j);
      out->vector[j] = (float) x;
    }
  out->accuracy = optional_number (o, "heldout_accuracy");
  out->gap = optional_number (o, "heldout_gap");
  out->effect = optional_number (o, "heldout_effect");
  out->proj_mean = optional_number (o, "train_projection_mean");
  out->proj_sd = optional_number (o, "train_projection_sd");
  return TRUE;
}

static int
by_layer (gconstpointer a,
          gconstpointer b)
{
  const GbSteerLayer *x = a, *y = b;
  return (int) x->layer - (int) y->layer;
}

static gboolean
sort_layers (Ctx           *ctx,
             GbSteerVector *vec)
{
  qsort (vec->layers, vec->n_layers, sizeof (GbSteerLayer), by_layer);
  for (guint i = 1; i < vec->n_layers; i++)
    if (vec->layers[i].layer == vec->layers[i - 1].layer)
      return fail (ctx, "block %u appears twice", vec->layers[i].layer);
  return TRUE;
}

static GbSteerVector *
from_json (Ctx      *ctx,
           JsonNode *root)
{
  gint64 n_embd = 0, read_pos = 0, v = 0;

  if (!JSON_NODE_HOLDS_OBJECT (root))
    return fail (ctx, "not a steering vector (expected a JSON object)"), NULL;
  JsonObject *o = json_node_get_object (root);
  g_autofree char *format = dup_string (o, "format");
  if (g_strcmp0 (format, FORMAT_NAME) != 0)
    return fail (ctx, "not a steering vector (\"format\" is not \"%s\")", FORMAT_NAME), NULL;
  if (!get_int (ctx, o, "version", FORMAT_VERSION, FORMAT_VERSION, &v) ||
      !get_int (ctx, o, "n_embd", 1, MAX_EMBD, &n_embd) ||
      !get_int (ctx, o, "read_position", G_MININT32, G_MAXINT32, &read_pos))
    return NULL;

  g_autoptr (GbSteerVector) vec = g_new0 (GbSteerVector, 1);
  vec->n_embd = (guint) n_embd;
  vec->read_pos = (gint) read_pos;
  vec->model_name = dup_string (o, "model");
  vec->model_type = dup_string (o, "model_type");
  g_autofree char *method = dup_string (o, "method");
  vec->method_known = method != NULL;
  if (method != NULL && !gb_steer_method_parse (method, &vec->method))
    return fail (ctx, "unknown method \"%s\" (expected mean or pca)", method), NULL;

  JsonNode *pm = json_object_get_member (o, "pairs");
  JsonObject *po = pm && JSON_NODE_HOLDS_OBJECT (pm) ? json_node_get_object (pm) : NULL;
  vec->pairs_name = dup_string (po, "name");
  vec->pairs_hash = dup_string (po, "hash");
  if (po != NULL)
    {
      vec->n_train = (guint) MAX (0, json_object_get_int_member_with_default (po, "n_train", 0));
      vec->n_heldout = (guint) MAX (0, json_object_get_int_member_with_default (po, "n_heldout", 0));
      vec->holdout_every = (guint) MAX (0, json_object_get_int_member_with_default (po, "holdout_every", 0));
    }

  JsonNode *lm = json_object_get_member (o, "layers");
  if (lm == NULL || !JSON_NODE_HOLDS_ARRAY (lm))
    return fail (ctx, "\"layers\" is missing or not an array"), NULL;
  JsonArray *layers = json_node_get_array (lm);
  if (json_array_get_length (layers) == 0 || json_array_get_length (layers) > MAX_LAYER + 1)
    return fail (ctx, "\"layers\" must hold 1 to %u blocks, it holds %u", MAX_LAYER + 1,
                 json_array_get_length (layers)),
           NULL;
  vec->layers = g_new0 (GbSteerLayer, json_array_get_length (layers));
  for (guint i = 0; i < json_array_get_length (layers); i++)
    {
      vec->n_layers++;
      if (!read_layer (ctx, json_array_get_element (layers, i), i, vec->n_embd, &vec->layers[i]))
        return NULL;
    }
  return sort_layers (ctx, vec) ? g_steal_pointer (&vec) : NULL;
}

static GbSteerVector *
load_json (const char *path,
           const char *data,
           gsize       len,
           GError    **error)
{
  Ctx ctx = { path, error };
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  const char *bad;

  if (len == 0)
    return fail (&ctx, "the file is empty"), NULL;
  if (memchr (data, '\0', len) != NULL || !g_utf8_validate (data, (gssize) len, &bad))
    return fail (&ctx, "not a steering vector (neither JSON text nor GGUF)"), NULL;
  if (!gb_json_parser_load (parser, data, (gssize) len, &local))
    return fail (&ctx, "not valid JSON: %s", local->message), NULL;
  return from_json (&ctx, json_parser_get_root (parser));
}

/* ---- GGUF ---- */

enum
{
  GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_BOOL,
  GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64,
};
#define GGUF_ALIGNMENT 32
#define GGML_TYPE_F32 0
#define GGUF_MAX_COUNT (1u << 20)

static void
put_u32 (GByteArray *b,
         guint32     x)
{
  guint32 le = GUINT32_TO_LE (x);
  g_byte_array_append (b, (const guint8 *) &le, 4);
}

static void
put_u64 (GByteArray *b,
         guint64     x)
{
  guint64 le = GUINT64_TO_LE (x);
  g_byte_array_append (b, (const guint8 *) &le, 8);
}

static void
put_str (GByteArray *b,
         const char *s)
{
  put_u64 (b, strlen (s));
  g_byte_array_append (b, (const guint8 *) s, (guint) strlen (s));
}

static void
pad_to (GByteArray *b,
        gsize       alignment)
{
  static const guint8 zeros[GGUF_ALIGNMENT] = { 0 };
  gsize rem = b->len % alignment;
  if (rem != 0)
    g_byte_array_append (b, zeros, (guint) (alignment - rem));
}

gboolean
gb_steer_vector_export_gguf (const GbSteerVector *self,
                             const char          *path,
                             char               **warning,
                             GError             **error)
{
  g_autoptr (GByteArray) b = g_byte_array_new ();
  const gsize nbytes = (gsize) self->n_embd * sizeof (float);
  const gsize stride = (nbytes + GGUF_ALIGNMENT - 1) / GGUF_ALIGNMENT * GGUF_ALIGNMENT;

  g_return_val_if_fail (self != NULL && path != NULL, FALSE);
  if (warning != NULL)
    *warning = NULL;

  /* Header, then the key-value pairs in the order gguf-py's GGUFWriter
   * writes repeng's: architecture first. */
  g_byte_array_append (b, (const guint8 *) "GGUF", 4);
  put_u32 (b, 3);
  put_u64 (b, self->n_layers);
  put_u64 (b, 3);
  put_str (b, "general.architecture");
  put_u32 (b, GGUF_STRING);
  put_str (b, "controlvector");
  put_str (b, "controlvector.model_hint");
  put_u32 (b, GGUF_STRING);
  put_str (b, self->model_type ? self->model_type : "gpt2");
  put_str (b, "controlvector.layer_count");
  put_u32 (b, GGUF_UINT32);
  put_u32 (b, self->n_layers);

  for (guint i = 0; i < self->n_layers; i++)
    {
      g_autofree char *name = g_strdup_printf ("direction.%u", self->layers[i].layer);
      put_str (b, name);
      put_u32 (b, 1);
      put_u64 (b, self->n_embd);
      put_u32 (b, GGML_TYPE_F32);
      put_u64 (b, (guint64) i * stride);
    }
  pad_to (b, GGUF_ALIGNMENT);
  for (guint i = 0; i < self->n_layers; i++)
    {
      for (guint j = 0; j < self->n_embd; j++)
        {
          union { float f; guint32 u; } x = { .f = self->layers[i].vector[j] };
          put_u32 (b, x.u);
        }
      pad_to (b, GGUF_ALIGNMENT);
    }

  if (!gb_file_write_atomic (path, b->data, b->len, TRUE, error))
    return FALSE;
  if (warning != NULL && self->n_layers > 0 && self->layers[0].layer == 0)
    *warning = g_strdup_printf ("%s: direction.0 (block 0) is written, but llama.cpp refuses a control vector for "
                                "layer 0; drop block 0 for llama.cpp",
                                path);
  return TRUE;
}

/* A bounds-checked reader over the file's bytes. */
typedef struct
{
  const guint8 *data;
  gsize         len, pos;
  Ctx          *ctx;
} Reader;

static gboolean
need (Reader     *r,
      gsize       n,
      const char *what)
{
  if (n > r->len - r->pos)
    return fail (r->ctx, "truncated GGUF: %s at byte %zu runs past the end (%zu bytes)", what, r->pos, r->len);
  return TRUE;
}

static gboolean
get_u32 (Reader     *r,
         guint32    *x,
         const char *what)
{
  if (!need (r, 4, what))
    return FALSE;
  memcpy (x, r->data + r->pos, 4);
  *x = GUINT32_FROM_LE (*x);
  r->pos += 4;
  return TRUE;
}

static gboolean
get_u64 (Reader     *r,
         guint64    *x,
         const char *what)
{
  if (!need (r, 8, what))
    return FALSE;
  memcpy (x, r->data + r->pos, 8);
  *x = GUINT64_FROM_LE (*x);
  r->pos += 8;
  return TRUE;
}

/* A GGUF string; *s is NULL-terminated and owned by the caller. */
static gboolean
get_str (Reader     *r,
         char      **s,
         const char *what)
{
  guint64 n;
  if (!get_u64 (r, &n, what) || !need (r, n, what))
    return FALSE;
  if (!g_utf8_validate_len ((const char *) r->data + r->pos, n, NULL))
    return fail (r->ctx, "%s at byte %zu is not valid UTF-8", what, r->pos);
  *s = g_strndup ((const char *) r->data + r->pos, n);
  r->pos += n;
  return TRUE;
}

static gsize
scalar_size (guint32 type)
{
  switch (type)
    {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Skips a value of @type (arrays of strings and scalars; no nested arrays). */
static gboolean
skip_value (Reader     *r,
            guint32     type,
            const char *key)
{
  if (type == GGUF_STRING)
    {
      g_autofree char *s = NULL;
      return get_str (r, &s, key);
    }
  if (type == GGUF_ARRAY)
    {
      guint32 et;
      guint64 n;
      if (!get_u32 (r, &et, key) || !get_u64 (r, &n, key))
        return FALSE;
      if (et == GGUF_STRING)
        {
          for (guint64 i = 0; i < n; i++)
            if (!skip_value (r, et, key))
              return FALSE;
          return TRUE;
        }
      gsize size = scalar_size (et);
      if (size == 0)
        return fail (r->ctx, "key %s: arrays of value type %u are not supported", key, et);
      if (n > (r->len - r->pos) / size)
        return fail (r->ctx, "truncated GGUF: key %s's array runs past the end", key);
      r->pos += size * n;
      return TRUE;
    }
  gsize n = scalar_size (type);
  if (n == 0)
    return fail (r->ctx, "key %s: unknown value type %u", key, type);
  if (!need (r, n, key))
    return FALSE;
  r->pos += n;
  return TRUE;
}

typedef struct
{
  char    *arch, *hint;
  gint64   layer_count;   /* -1 when absent */
  guint32  alignment;
} Meta;

static gboolean
read_kv (Reader *r,
         Meta   *meta)
{
  g_autofree char *key = NULL;
  guint32 type;

  if (!get_str (r, &key, "a metadata key") || !get_u32 (r, &type, key))
    return FALSE;
  if (g_str_equal (key, "general.architecture") || g_str_equal (key, "controlvector.model_hint"))
    {
      char **slot = g_str_equal (key, "general.architecture") ? &meta->arch : &meta->hint;
      if (type != GGUF_STRING)
        return fail (r->ctx, "%s is not a string", key);
      g_clear_pointer (slot, g_free);
      return get_str (r, slot, key);
    }
  if (g_str_equal (key, "controlvector.layer_count") || g_str_equal (key, "general.alignment"))
    {
      guint32 x;
      if (type != GGUF_UINT32 && type != GGUF_INT32)
        return fail (r->ctx, "%s is not a 32-bit integer", key);
      if (!get_u32 (r, &x, key))
        return FALSE;
      if (g_str_equal (key, "general.alignment"))
        {
          if (x == 0 || (x & (x - 1)) != 0)
            return fail (r->ctx, "general.alignment %u is not a power of two", x);
          meta->alignment = x;
        }
      else
        meta->layer_count = x;
      return TRUE;
    }
  return skip_value (r, type, key);
}

typedef struct
{
  guint   layer;
  guint64 n, offset;
} TensorInfo;

static gboolean
parse_layer_name (const char *name,
                  guint      *layer)
{
  const char *p = name + strlen ("direction.");
  if (*p == '\0' || strlen (p) > 3 || strspn (p, "0123456789") != strlen (p))
    return FALSE;
  *layer = (guint) atoi (p);
  return TRUE;
}

static gboolean
read_tensor_info (Reader     *r,
                  GArray     *infos,
                  guint64    *n_embd)
{
  g_autofree char *name = NULL;
  guint32 n_dims, type;
  guint64 dims[4], offset, n = 1;

  if (!get_str (r, &name, "a tensor name") || !get_u32 (r, &n_dims, name))
    return FALSE;
  if (n_dims == 0 || n_dims > 4)
    return fail (r->ctx, "tensor %s has %u dimensions", name, n_dims);
  for (guint d = 0; d < n_dims; d++)
    {
      if (!get_u64 (r, &dims[d], name))
        return FALSE;
      if (dims[d] == 0 || dims[d] > MAX_EMBD)
        return fail (r->ctx, "tensor %s: dimension %u is %" G_GUINT64_FORMAT, name, d, dims[d]);
      n *= dims[d];
    }
  if (!get_u32 (r, &type, name) || !get_u64 (r, &offset, name))
    return FALSE;
  if (!g_str_has_prefix (name, "direction."))
    return TRUE; /* not ours: ignored, as llama.cpp and repeng do */

  TensorInfo ti = { 0, n, offset };
  if (!parse_layer_name (name, &ti.layer) || ti.layer > MAX_LAYER)
    return fail (r->ctx, "tensor %s: not direction.N with a block number N up to %u", name, MAX_LAYER);
  if (type != GGML_TYPE_F32 || n_dims != 1)
    return fail (r->ctx, "tensor %s must be a 1-D float32 tensor (it is type %u with %u dimensions)", name, type,
                 n_dims);
  if (*n_embd != 0 && *n_embd != n)
    return fail (r->ctx, "tensor %s has %" G_GUINT64_FORMAT " values, the others %" G_GUINT64_FORMAT, name, n, *n_embd);
  *n_embd = n;
  g_array_append_val (infos, ti);
  return TRUE;
}

static gboolean
read_tensors (Reader        *r,
              GArray        *infos,
              guint64        n_embd,
              const Meta    *meta,
              GbSteerVector *vec)
{
  gsize start = (r->pos + meta->alignment - 1) / meta->alignment * meta->alignment;

  vec->n_embd = (guint) n_embd;
  vec->layers = g_new0 (GbSteerLayer, infos->len);
  for (guint i = 0; i < infos->len; i++)
    {
      const TensorInfo *ti = &g_array_index (infos, TensorInfo, i);
      GbSteerLayer *l = &vec->layers[vec->n_layers++];
      l->layer = ti->layer;
      l->accuracy = l->gap = l->effect = l->proj_mean = l->proj_sd = NAN;
      if (ti->offset % meta->alignment != 0)
        return fail (r->ctx, "tensor direction.%u: offset %" G_GUINT64_FORMAT " is not aligned to %u", ti->layer,
                     ti->offset, meta->alignment);
      if (start > r->len || ti->offset > r->len - start || ti->n * 4 > r->len - start - ti->offset)
        return fail (r->ctx, "truncated GGUF: tensor direction.%u's data runs past the end of the file", ti->layer);
      l->vector = g_new (float, n_embd);
      memcpy (l->vector, r->data + start + ti->offset, n_embd * 4);
      for (guint j = 0; j < n_embd; j++)
        {
          union { float f; guint32 u; } x = { .f = l->vector[j] };
          x.u = GUINT32_FROM_LE (x.u);
          l->vector[j] = x.f;
          if (!isfinite (x.f))
            return fail (r->ctx, "tensor direction.%u: value %u is not finite", ti->layer, j);
        }
    }
  return TRUE;
}

static GbSteerVector *
load_gguf (const char *path,
           const char *data,
           gsize       len,
           GError    **error)
{
  Ctx ctx = { path, error };
  Reader r = { (const guint8 *) data, len, 4, &ctx };
  Meta meta = { .layer_count = -1, .alignment = GGUF_ALIGNMENT };
  g_autoptr (GArray) infos = g_array_new (FALSE, FALSE, sizeof (TensorInfo));
  guint32 version;
  guint64 n_tensors, n_kv, n_embd = 0;
  gboolean ok = FALSE;
  g_autoptr (GbSteerVector) vec = g_new0 (GbSteerVector, 1);

  if (!get_u32 (&r, &version, "the version"))
    goto out;
  if (version != 2 && version != 3)
    {
      fail (&ctx, "GGUF version %u is not supported (2 or 3)", version);
      goto out;
    }
  if (!get_u64 (&r, &n_tensors, "the tensor count") || !get_u64 (&r, &n_kv, "the key count"))
    goto out;
  if (n_tensors > GGUF_MAX_COUNT || n_kv > GGUF_MAX_COUNT)
    {
      fail (&ctx, "implausible GGUF header (%" G_GUINT64_FORMAT " tensors, %" G_GUINT64_FORMAT " keys)", n_tensors,
            n_kv);
      goto out;
    }
  for (guint64 i = 0; i < n_kv; i++)
    if (!read_kv (&r, &meta))
      goto out;
  if (g_strcmp0 (meta.arch, "controlvector") != 0)
    {
      fail (&ctx, "not a control vector (general.architecture is %s%s%s)", meta.arch ? "\"" : "",
            meta.arch ? meta.arch : "missing", meta.arch ? "\"" : "");
      goto out;
    }
  if (meta.hint == NULL)
    {
      fail (&ctx, "controlvector.model_hint is missing");
      goto out;
    }
  for (guint64 i = 0; i < n_tensors; i++)
    if (!read_tensor_info (&r, infos, &n_embd))
      goto out;
  if (infos->len == 0)
    {
      fail (&ctx, "no direction.N tensors");
      goto out;
    }
  if (meta.layer_count >= 0 && meta.layer_count != infos->len)
    {
      fail (&ctx, "controlvector.layer_count is %" G_GINT64_FORMAT " but the file holds %u direction tensors",
            meta.layer_count, infos->len);
      goto out;
    }
  if (!read_tensors (&r, infos, n_embd, &meta, vec) || !sort_layers (&ctx, vec))
    goto out;
  vec->model_type = g_strdup (meta.hint);
  vec->model_name = g_strdup (meta.hint);
  vec->method_known = FALSE;
  vec->read_pos = -1;
  ok = TRUE;
out:
  g_free (meta.arch);
  g_free (meta.hint);
  return ok ? g_steal_pointer (&vec) : NULL;
}

static gboolean
read_file (const char *path,
           char      **data,
           gsize      *len,
           GError    **error)
{
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, data, len, &local))
    return g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s", local->message), FALSE;
  return TRUE;
}

GbSteerVector *
gb_steer_vector_import_gguf (const char *path,
                             GError    **error)
{
  g_autofree char *data = NULL;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);
  if (!read_file (path, &data, &len, error))
    return NULL;
  if (len < 4 || memcmp (data, "GGUF", 4) != 0)
    return g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not a GGUF file (no GGUF magic)", path), NULL;
  return load_gguf (path, data, len, error);
}

GbSteerVector *
gb_steer_vector_load (const char *path,
                      GError    **error)
{
  g_autofree char *data = NULL;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);
  if (!read_file (path, &data, &len, error))
    return NULL;
  if (len >= 4 && memcmp (data, "GGUF", 4) == 0)
    return load_gguf (path, data, len, error);
  return load_json (path, data, len, error);
}
