/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "gb-cli.h"

static void
add_head (JsonBuilder        *b,
          const GbHeadScores *s,
          guint               l,
          guint               h)
{
  GbHeadRole role = gb_head_scores_dominant (s, l, h);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "layer");
  json_builder_add_int_value (b, l);
  json_builder_set_member_name (b, "head");
  json_builder_add_int_value (b, h);
  json_builder_set_member_name (b, "role");
  if (role < GB_N_HEAD_ROLES)
    json_builder_add_string_value (b, gb_head_role_name (role));
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "scores");
  json_builder_begin_object (b);
  for (guint r = 0; r < GB_N_HEAD_ROLES; r++)
    {
      json_builder_set_member_name (b, gb_head_role_name (r));
      json_builder_add_double_value (b, gb_head_scores_get (s, l, h, r));
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
}

static void
print_json (GbModel            *model,
            const GbHeadScores *s)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, gb_model_get_name (model));
  json_builder_set_member_name (b, "probe_tokens");
  json_builder_add_int_value (b, s->n_tokens);
  json_builder_set_member_name (b, "repeated_length");
  json_builder_add_int_value (b, s->seq_len);
  json_builder_set_member_name (b, "thresholds");
  json_builder_begin_object (b);
  for (guint r = 0; r < GB_N_HEAD_ROLES; r++)
    {
      json_builder_set_member_name (b, gb_head_role_name (r));
      json_builder_add_double_value (b, gb_head_role_threshold (r));
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "heads");
  json_builder_begin_array (b);
  for (guint l = 0; l < s->n_layer; l++)
    for (guint h = 0; h < s->n_head; h++)
      add_head (b, s, l, h);
  json_builder_end_array (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

static void
print_table (const GbHeadScores *s)
{
  printf ("layer head");
  for (guint r = 0; r < GB_N_HEAD_ROLES; r++)
    printf (" %14s", gb_head_role_name (r));
  printf ("  role\n");
  for (guint l = 0; l < s->n_layer; l++)
    for (guint h = 0; h < s->n_head; h++)
      {
        GbHeadRole role = gb_head_scores_dominant (s, l, h);
        printf ("%5u %4u", l, h);
        for (guint r = 0; r < GB_N_HEAD_ROLES; r++)
          printf (" %14.4f", gb_head_scores_get (s, l, h, r));
        printf ("  %s\n", role < GB_N_HEAD_ROLES ? gb_head_role_name (role) : "-");
      }
}

int
gb_cli_heads (int    argc,
              char **argv)
{
  g_autofree char *model_dir = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON instead of a table", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- score every head's role (previous-token, first-token, self, induction, diffuse)");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (argc > 1)
    return gb_cli_usage ("unexpected argument “%s”", argv[1]);

  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL)
    return gb_cli_fail (error);
  g_autoptr (GbHeadScores) scores = gb_head_scores_compute (model, 0, 0, NULL, &error);
  if (scores == NULL)
    return gb_cli_fail (error);
  if (json)
    print_json (model, scores);
  else
    print_table (scores);
  return GB_CLI_OK;
}
