/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <json-glib/json-glib.h>

#include "gb-error.h"
#include "gb-json.h"
#include "gb-model.h"

#define MAX_CONFIG_BYTES (4u * 1024 * 1024)

/* Caps that refuse absurd configs before anything is allocated. GPT-2 XL is
 * 48 layers, 25 heads, 1600 wide; these leave generous room. */
#define MAX_LAYERS    512
#define MAX_HEADS     512
#define MAX_EMBD      65536
#define MAX_POSITIONS (1 << 20)
#define MAX_VOCAB     (1 << 22)
#define MAX_LABELS    4096

void
gb_config_free (GbConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->model_type);
  g_free (config->activation);
  /* Not g_strfreev(): a config refused halfway through id2label has gaps. */
  for (guint i = 0; config->labels != NULL && i < config->n_labels; i++)
    g_free (config->labels[i]);
  g_free (config->labels);
  g_free (config);
}

static gboolean
read_uint (JsonObject *obj,
           const char *member,
           const char *alt,
           guint       fallback,
           guint       max,
           guint      *out,
           const char *path,
           GError    **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  if ((node == NULL || JSON_NODE_HOLDS_NULL (node)) && alt != NULL)
    node = json_object_get_member (obj, alt);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      if (fallback == 0)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: missing “%s”", path, member);
          return FALSE;
        }
      *out = fallback;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: “%s” is not an integer", path, member);
      return FALSE;
    }
  gint64 v = json_node_get_int (node);
  if (v <= 0 || v > max)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: “%s” = %" G_GINT64_FORMAT " is out of range (1 to %u)",
                   path, member, v, max);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

static gboolean
read_labels (GbConfig   *config,
             JsonObject *obj,
             const char *path,
             GError    **error)
{
  JsonNode *node = json_object_get_member (obj, "id2label");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: a sequence classifier needs an “id2label” object", path);
      return FALSE;
    }
  JsonObject *map = json_node_get_object (node);
  guint n = json_object_get_size (map);
  if (n == 0 || n > MAX_LABELS)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: “id2label” has %u labels (1 to %u)", path, n, MAX_LABELS);
      return FALSE;
    }
  config->n_labels = n;
  config->labels = g_new0 (char *, n + 1);
  g_autoptr (GList) members = json_object_get_members (map);
  for (GList *l = members; l; l = l->next)
    {
      char *end = NULL;
      guint64 id = g_ascii_strtoull (l->data, &end, 10);
      JsonNode *v = json_object_get_member (map, l->data);
      if (end == l->data || *end != '\0' || id >= n || config->labels[id] != NULL ||
          !JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT,
                       "%s: “id2label” entry “%s” is not a unique id in 0..%u with a string label",
                       path, (const char *) l->data, n - 1);
          return FALSE;
        }
      config->labels[id] = g_strdup (json_node_get_string (v));
    }
  return TRUE;
}

static gboolean
is_classifier (JsonObject *obj)
{
  JsonNode *node = json_object_get_member (obj, "architectures");
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return FALSE;
  JsonArray *arr = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *e = json_array_get_element (arr, i);
      if (JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING &&
          g_str_equal (json_node_get_string (e), "GPT2ForSequenceClassification"))
        return TRUE;
    }
  return FALSE;
}

static gboolean
read_optional_string (JsonObject  *obj,
                      const char  *member,
                      const char **out)
{
  JsonNode *node = json_object_get_member (obj, member);
  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return FALSE;
  *out = json_node_get_string (node);
  return TRUE;
}

static gboolean
check_supported (JsonObject *obj,
                 char      **activation,
                 const char *path,
                 GError    **error)
{
  const char *act;
  if (!read_optional_string (obj, "activation_function", &act))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: “activation_function” is not a string", path);
      return FALSE;
    }
  if (act != NULL && !g_str_equal (act, "gelu_new") && !g_str_equal (act, "gelu_pytorch_tanh") &&
      !g_str_equal (act, "gelu"))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "%s: activation “%s” is not supported (gelu_new, gelu)", path, act);
      return FALSE;
    }
  *activation = g_strdup (act != NULL && g_str_equal (act, "gelu") ? "gelu" : "gelu_new");
  /* reorder_and_upcast_attn only changes precision, and we compute in float32 anyway. */
  JsonNode *inv = json_object_get_member (obj, "scale_attn_by_inverse_layer_idx");
  if (inv != NULL && JSON_NODE_HOLDS_VALUE (inv) && json_node_get_value_type (inv) == G_TYPE_BOOLEAN &&
      json_node_get_boolean (inv))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "%s: “scale_attn_by_inverse_layer_idx” is not supported", path);
      return FALSE;
    }
  JsonNode *scale = json_object_get_member (obj, "scale_attn_weights");
  if (scale != NULL && JSON_NODE_HOLDS_VALUE (scale) && json_node_get_value_type (scale) == G_TYPE_BOOLEAN &&
      !json_node_get_boolean (scale))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED, "%s: “scale_attn_weights”: false is not supported", path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_epsilon (JsonObject *obj,
              double     *eps,
              const char *path,
              GError    **error)
{
  JsonNode *node = json_object_get_member (obj, "layer_norm_epsilon");
  *eps = 1e-5;
  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) &&
      (json_node_get_value_type (node) == G_TYPE_DOUBLE || json_node_get_value_type (node) == G_TYPE_INT64))
    *eps = json_node_get_double (node);
  if (!(*eps > 0 && *eps < 1))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: “layer_norm_epsilon” must be a number in (0, 1)", path);
      return FALSE;
    }
  return TRUE;
}

static GbConfig *
config_from_object (JsonObject *obj,
                    const char *path,
                    GError    **error)
{
  g_autoptr (GbConfig) c = g_new0 (GbConfig, 1);
  const char *model_type;

  if (!read_optional_string (obj, "model_type", &model_type) || model_type == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: missing “model_type”", path);
      return NULL;
    }
  if (!g_str_equal (model_type, "gpt2"))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_UNSUPPORTED,
                   "%s: model_type “%s” is not supported (only the GPT-2 family, “gpt2”)", path, model_type);
      return NULL;
    }
  c->model_type = g_strdup (model_type);
  c->pad_token_id = -1;

  if (!read_uint (obj, "n_layer", "num_hidden_layers", 0, MAX_LAYERS, &c->n_layer, path, error) ||
      !read_uint (obj, "n_head", "num_attention_heads", 0, MAX_HEADS, &c->n_head, path, error) ||
      !read_uint (obj, "n_embd", "hidden_size", 0, MAX_EMBD, &c->n_embd, path, error) ||
      !read_uint (obj, "n_positions", "n_ctx", 0, MAX_POSITIONS, &c->n_positions, path, error) ||
      !read_uint (obj, "vocab_size", NULL, 0, MAX_VOCAB, &c->n_vocab, path, error) ||
      !read_uint (obj, "n_inner", NULL, 4 * c->n_embd, 4 * MAX_EMBD, &c->n_inner, path, error) ||
      !read_epsilon (obj, &c->layer_norm_epsilon, path, error) || !check_supported (obj, &c->activation, path, error))
    return NULL;
  if (c->n_embd % c->n_head != 0)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: n_embd (%u) is not a multiple of n_head (%u)", path,
                   c->n_embd, c->n_head);
      return NULL;
    }
  JsonNode *tie = json_object_get_member (obj, "tie_word_embeddings");
  c->tie_word_embeddings = TRUE;
  if (tie != NULL && JSON_NODE_HOLDS_VALUE (tie) && json_node_get_value_type (tie) == G_TYPE_BOOLEAN)
    c->tie_word_embeddings = json_node_get_boolean (tie);
  JsonNode *pad = json_object_get_member (obj, "pad_token_id");
  if (pad != NULL && JSON_NODE_HOLDS_VALUE (pad) && json_node_get_value_type (pad) == G_TYPE_INT64 &&
      json_node_get_int (pad) >= 0 && json_node_get_int (pad) < c->n_vocab)
    c->pad_token_id = (gint32) json_node_get_int (pad);
  if (is_classifier (obj) && !read_labels (c, obj, path, error))
    return NULL;
  return g_steal_pointer (&c);
}

GbConfig *
gb_config_load (const char *path,
                GError    **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s: no such file (a model folder needs config.json)", path);
      return NULL;
    }
  g_autoptr (JsonNode) root = gb_json_load_file (path, MAX_CONFIG_BYTES, GB_JSON_MAX_DEPTH, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: not a JSON object", path);
      return NULL;
    }
  return config_from_object (json_node_get_object (root), path, error);
}
