/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "gb-cli.h"
#include "gb-json.h"

/* A batch file is a flat array of strings; past this it is not one. */
#define MAX_BATCH_BYTES (256u * 1024 * 1024)
#define MAX_BATCH_DEPTH 4

typedef struct
{
  gboolean json;
  gboolean special;
} Options;

/* One line per token must stay one line: control characters and the
 * backslash are escaped, C style. */
static void
print_escaped (GString    *out,
               const char *string)
{
  for (const guchar *p = (const guchar *) string; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        default:
          if (*p < 0x20 || *p == 0x7F)
            g_string_append_printf (out, "\\x%02X", *p);
          else
            g_string_append_c (out, (char) *p);
        }
    }
}

/* json-glib 1.6 escapes control characters below U+001F but writes U+001F
 * itself raw, which is not JSON. A raw 0x1F byte can only be inside a
 * string, so escaping every one afterwards is exact. */
static void
print_line (JsonBuilder *builder)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autofree char *data = NULL;
  g_autoptr (GString) line = NULL;

  json_generator_set_root (generator, root);
  data = json_generator_to_data (generator, NULL);
  line = g_string_new (data);
  g_string_replace (line, "\x1f", "\\u001f", 0);
  printf ("%s\n", line->str);
}

static void
add_ids (JsonBuilder *builder,
         GArray      *ids)
{
  json_builder_set_member_name (builder, "ids");
  json_builder_begin_array (builder);
  for (guint i = 0; i < ids->len; i++)
    json_builder_add_int_value (builder, g_array_index (ids, gint32, i));
  json_builder_end_array (builder);
}

static void
print_tokens (GbTokenizer   *tokenizer,
              GArray        *ids,
              const Options *options)
{
  if (options->json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();

      json_builder_begin_object (builder);
      add_ids (builder, ids);
      json_builder_set_member_name (builder, "tokens");
      json_builder_begin_array (builder);
      for (guint i = 0; i < ids->len; i++)
        json_builder_add_string_value (builder,
                                       gb_tokenizer_token_string (tokenizer, g_array_index (ids, gint32, i)));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      print_line (builder);
      return;
    }

  for (guint i = 0; i < ids->len; i++)
    {
      gint32 id = g_array_index (ids, gint32, i);
      g_autoptr (GString) line = g_string_new (NULL);

      g_string_append_printf (line, "%d\t", id);
      print_escaped (line, gb_tokenizer_token_string (tokenizer, id));
      printf ("%s\n", line->str);
    }
}

static JsonArray *
load_batch (const char *path,
            GError    **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GMappedFile) mapped = NULL;
  g_autoptr (GError) local_error = NULL;
  const char *data;
  JsonNode *root;
  gsize len;

  mapped = g_mapped_file_new (path, FALSE, &local_error);
  if (mapped == NULL)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_IO, "%s", local_error->message);
      return NULL;
    }
  data = g_mapped_file_get_contents (mapped);
  len = g_mapped_file_get_length (mapped);
  if (len > MAX_BATCH_BYTES)
    {
      g_set_error (error, GB_ERROR, GB_ERROR_LIMIT, "%s: larger than %u MiB", path,
                   MAX_BATCH_BYTES >> 20);
      return NULL;
    }
  if (len == 0 || !gb_json_plain_and_shallow (data, len, MAX_BATCH_DEPTH))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: expected a JSON array of strings", path);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: %s", path, local_error->message);
      return NULL;
    }

  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: expected a JSON array of strings", path);
      return NULL;
    }
  for (guint i = 0; i < json_array_get_length (json_node_get_array (root)); i++)
    {
      JsonNode *item = json_array_get_element (json_node_get_array (root), i);

      if (!JSON_NODE_HOLDS_VALUE (item) || json_node_get_value_type (item) != G_TYPE_STRING)
        {
          g_set_error (error, GB_ERROR, GB_ERROR_FORMAT, "%s: element %u is not a string", path, i);
          return NULL;
        }
    }
  return json_array_ref (json_node_get_array (root));
}

/* One {"ids":[...],"decoded":"..."} line per string, for tests that compare
 * many strings against a reference in one process. */
static int
tokenize_batch (GbTokenizer   *tokenizer,
                const char    *path,
                const Options *options)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonArray) batch = load_batch (path, &error);

  if (batch == NULL)
    return gb_cli_fail (error);

  for (guint i = 0; i < json_array_get_length (batch); i++)
    {
      const char *text = json_array_get_string_element (batch, i);
      g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();
      g_autoptr (GArray) ids = NULL;
      g_autofree char *decoded = NULL;

      ids = gb_tokenizer_encode (tokenizer, text, -1, options->special, &error);
      if (ids == NULL)
        {
          g_prefix_error (&error, "%s: element %u: ", path, i);
          return gb_cli_fail (error);
        }
      decoded = gb_tokenizer_decode (tokenizer, (const gint32 *) (gpointer) ids->data, ids->len, &error);
      if (decoded == NULL)
        return gb_cli_fail (error);

      json_builder_begin_object (builder);
      add_ids (builder, ids);
      json_builder_set_member_name (builder, "decoded");
      json_builder_add_string_value (builder, decoded);
      json_builder_end_object (builder);
      print_line (builder);
    }
  return GB_CLI_OK;
}

static int
finish_output (int code)
{
  if (fflush (stdout) != 0 || ferror (stdout))
    {
      g_printerr ("glassbox-cli: error: could not write the output: %s\n", g_strerror (errno));
      return GB_CLI_RUNTIME_ERROR;
    }
  return code;
}

int
gb_cli_tokenize (int    argc,
                 char **argv)
{
  g_autofree char *model_dir = NULL, *batch = NULL;
  Options options = { FALSE, FALSE };
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir,
      "Model folder holding vocab.json and merges.txt (default: the bundled demo model)", "DIR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &options.json,
      "Print {\"ids\":[...],\"tokens\":[...]} on one line", NULL },
    { "special", 0, 0, G_OPTION_ARG_NONE, &options.special,
      "Read a literal <|endoftext|> as the special token, not as text", NULL },
    { "batch", 0, 0, G_OPTION_ARG_FILENAME, &batch,
      "Tokenize each string of a JSON array instead of TEXT; prints {\"ids\":[...],\"decoded\":\"...\"} "
      "per string, one per line", "FILE" },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("TEXT");
  g_autoptr (GbTokenizer) tokenizer = NULL;
  g_autoptr (GArray) ids = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *vocab_path = NULL, *merges_path = NULL;
  const char *dir;
  int code;

  g_option_context_set_summary (context,
                                "Splits TEXT into the model's tokens and prints one line per token:\n"
                                "the id, a tab, and the token as vocab.json spells it (Ġ for a leading\n"
                                "space), with control characters escaped. Needs only vocab.json and\n"
                                "merges.txt, not the weights.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!gb_cli_parse (context, &argc, &argv, &code))
    return code;
  /* GOption leaves the "--" that lets TEXT start with a dash. */
  if (argc >= 2 && g_str_equal (argv[1], "--"))
    {
      argv[1] = argv[0];
      argv++;
      argc--;
    }

  if (batch != NULL && argc != 1)
    return gb_cli_usage ("give either TEXT or --batch FILE, not both (see --help)");
  if (batch == NULL && argc != 2)
    return gb_cli_usage ("expected one TEXT argument, got %d (see --help)", argc - 1);

  dir = model_dir != NULL ? model_dir : gb_cli_default_model_dir ();
  vocab_path = g_build_filename (dir, "vocab.json", NULL);
  merges_path = g_build_filename (dir, "merges.txt", NULL);
  tokenizer = gb_tokenizer_new_from_files (vocab_path, merges_path, &error);
  if (tokenizer == NULL)
    return gb_cli_fail (error);

  if (batch != NULL)
    return finish_output (tokenize_batch (tokenizer, batch, &options));

  ids = gb_tokenizer_encode (tokenizer, argv[1], -1, options.special, &error);
  if (ids == NULL)
    return gb_cli_fail (error);
  print_tokens (tokenizer, ids, &options);
  return finish_output (GB_CLI_OK);
}
