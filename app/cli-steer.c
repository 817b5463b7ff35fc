/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gb-cli.h"

/* glassbox-cli steer train | export | import | show */

gboolean
gb_cli_parse_layers (const char *spec,
                     guint64    *mask,
                     GError    **error)
{
  g_auto (GStrv) parts = g_strsplit (spec, ",", -1);

  *mask = 0;
  if (g_strcmp0 (g_strstrip ((char *) spec), "all") == 0)
    return TRUE;
  for (guint i = 0; parts[i] != NULL; i++)
    {
      guint64 a, b;
      char *part = g_strstrip (parts[i]);
      char *dash = strchr (part, '-');
      if (dash != NULL)
        *dash = '\0';
      if (!g_ascii_string_to_unsigned (part, 10, 0, 63, &a, NULL) ||
          (dash != NULL && !g_ascii_string_to_unsigned (dash + 1, 10, 0, 63, &b, NULL)))
        return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT,
                            "--layers: “%s” is not a block number 0-63 or a range A-B (e.g. 2, 1-4 or 1,3,5)", spec),
               FALSE;
      if (dash == NULL)
        b = a;
      if (b < a)
        return g_set_error (error, GB_ERROR, GB_ERROR_ARGUMENT, "--layers: the range %s-%s runs backwards", part,
                            dash + 1),
               FALSE;
      for (guint64 l = a; l <= b; l++)
        *mask |= G_GUINT64_CONSTANT (1) << l;
    }
  return TRUE;
}

static void
print_fixed (double x,
             int    width,
             int    prec)
{
  if (isnan (x))
    printf ("%*s", width, "-");
  else
    printf ("%*.*f", width, prec, x);
}

static void
print_table (const GbSteerVector *vec)
{
  printf ("block  hook                       norm   held-out acc   gap      effect\n");
  for (guint i = 0; i < vec->n_layers; i++)
    {
      const GbSteerLayer *l = &vec->layers[i];
      double norm = 0;
      for (guint j = 0; j < vec->n_embd; j++)
        norm += (double) l->vector[j] * l->vector[j];
      g_autofree char *hook = g_strdup_printf ("blocks.%u.hook_resid_post", l->layer);
      printf ("%5u  %-25s %6.2f   ", l->layer, hook, sqrt (norm));
      print_fixed (l->accuracy, 12, 3);
      print_fixed (l->gap, 8, 2);
      print_fixed (l->effect, 10, 2);
      printf ("\n");
    }
}

static void
print_summary (const GbSteerVector *vec)
{
  printf ("model %s (%s), n_embd %u, method %s, read at token %d%s\n", vec->model_name ? vec->model_name : "?",
          vec->model_type ? vec->model_type : "?", vec->n_embd,
          vec->method_known ? gb_steer_method_name (vec->method) : "unknown", vec->read_pos,
          vec->read_pos == -1 ? " (the last)" : "");
  if (vec->pairs_hash != NULL)
    printf ("pairs %s (%s): %u trained on, %u held out\n", vec->pairs_name ? vec->pairs_name : "?", vec->pairs_hash,
            vec->n_train, vec->n_heldout);
  print_table (vec);
}

static int
steer_train (int    argc,
             char **argv)
{
  g_autofree char *model_dir = NULL, *pairs_path = NULL, *layers = NULL, *output = NULL, *method = NULL;
  int read_pos = -1, holdout = 5;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model folder (default: the bundled demo model)", "DIR" },
    { "pairs", 'p', 0, G_OPTION_ARG_FILENAME, &pairs_path, "Contrastive pairs (JSON or JSONL)", "PAIRS.json" },
    { "layers", 'l', 0, G_OPTION_ARG_STRING, &layers, "Blocks whose output to steer: 3, 1-4, 1,3,5 or all", "A[-B|,C...]" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Where to write the vector (JSON)", "VEC.json" },
    { "method", 0, 0, G_OPTION_ARG_STRING, &method, "mean (default) or pca", "mean|pca" },
    { "read-pos", 0, 0, G_OPTION_ARG_INT, &read_pos, "Token to read: -1 = last (default), -2 = second last, 0 = first", "N" },
    { "holdout", 0, 0, G_OPTION_ARG_INT, &holdout, "Hold every Kth pair out to score separation (default 5; 0 = none)", "K" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Print nothing on success", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- learn a steering vector from contrastive pairs");
  g_autoptr (GError) error = NULL;
  GbSteerParams params;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (pairs_path == NULL || layers == NULL || output == NULL)
    return gb_cli_usage ("--pairs, --layers and --output are required");
  gb_steer_params_init (&params);
  if (method != NULL && !gb_steer_method_parse (method, &params.method))
    return gb_cli_usage ("--method must be mean or pca, not “%s”", method);
  if (holdout < 0)
    return gb_cli_usage ("--holdout must not be negative");
  if (!gb_cli_parse_layers (layers, &params.layers, &error))
    return gb_cli_usage ("%s", error->message);
  params.read_pos = read_pos;
  params.holdout_every = (guint) holdout;

  g_autoptr (GbPairSet) pairs = gb_pair_set_load (pairs_path, &error);
  if (pairs == NULL)
    return gb_cli_fail (error);
  g_autoptr (GbModel) model = gb_model_load (model_dir ? model_dir : gb_cli_default_model_dir (), NULL, NULL, NULL, &error);
  if (model == NULL)
    return gb_cli_fail (error);
  g_autoptr (GbSteerVector) vec = gb_steer_train (model, pairs, &params, NULL, NULL, NULL, &error);
  if (vec == NULL)
    {
      g_prefix_error (&error, "%s: ", pairs_path);
      return gb_cli_fail (error);
    }
  if (!gb_steer_vector_save (vec, output, &error))
    return gb_cli_fail (error);
  if (!quiet)
    print_summary (vec);
  return GB_CLI_OK;
}

static int
steer_export (int    argc,
              char **argv)
{
  g_autofree char *input = NULL, *output = NULL;
  GOptionEntry entries[] = {
    { "vector", 'v', 0, G_OPTION_ARG_FILENAME, &input, "Steering vector (our JSON)", "VEC.json" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "llama.cpp control vector to write", "VEC.gguf" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- write a steering vector as a llama.cpp control-vector GGUF");
  g_autoptr (GError) error = NULL;
  g_autofree char *warning = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (input == NULL || output == NULL)
    return gb_cli_usage ("--vector and --output are required");
  g_autoptr (GbSteerVector) vec = gb_steer_vector_load (input, &error);
  if (vec == NULL || !gb_steer_vector_export_gguf (vec, output, &warning, &error))
    return gb_cli_fail (error);
  if (warning != NULL)
    g_printerr ("glassbox-cli: warning: %s\n", warning);
  return GB_CLI_OK;
}

static int
steer_import (int    argc,
              char **argv)
{
  g_autofree char *input = NULL, *output = NULL;
  GOptionEntry entries[] = {
    { "gguf", 'g', 0, G_OPTION_ARG_FILENAME, &input, "llama.cpp control vector", "VEC.gguf" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Steering vector to write (our JSON)", "VEC.json" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- read a llama.cpp control-vector GGUF into our JSON");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (input == NULL || output == NULL)
    return gb_cli_usage ("--gguf and --output are required");
  g_autoptr (GbSteerVector) vec = gb_steer_vector_import_gguf (input, &error);
  if (vec == NULL || !gb_steer_vector_save (vec, output, &error))
    return gb_cli_fail (error);
  return GB_CLI_OK;
}

static int
steer_show (int    argc,
            char **argv)
{
  GOptionEntry entries[] = { { NULL } };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("VEC - describe a steering vector (JSON or GGUF)");
  g_autoptr (GError) error = NULL;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  if (argc != 2)
    return gb_cli_usage ("give one steering vector file");
  g_autoptr (GbSteerVector) vec = gb_steer_vector_load (argv[1], &error);
  if (vec == NULL)
    return gb_cli_fail (error);
  print_summary (vec);
  return GB_CLI_OK;
}

int
gb_cli_steer (int    argc,
              char **argv)
{
  static const struct
  {
    const char *name;
    int (*run) (int, char **);
    const char *summary;
  } sub[] = {
    { "train", steer_train, "Learn a vector from contrastive pairs (one direction per block)" },
    { "export", steer_export, "Write a vector as a llama.cpp control-vector GGUF" },
    { "import", steer_import, "Read a llama.cpp control-vector GGUF into our JSON" },
    { "show", steer_show, "Describe a vector: blocks, read position, held-out separation" },
  };

  if (argc >= 2)
    for (guint i = 0; i < G_N_ELEMENTS (sub); i++)
      if (g_str_equal (argv[1], sub[i].name))
        return sub[i].run (argc - 1, argv + 1);
  if (argc >= 2 && (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")))
    {
      printf ("Usage: glassbox-cli steer SUBCOMMAND [OPTIONS]\n\nSubcommands:\n");
      for (guint i = 0; i < G_N_ELEMENTS (sub); i++)
        printf ("  %-8s %s\n", sub[i].name, sub[i].summary);
      return GB_CLI_OK;
    }
  if (argc < 2)
    return gb_cli_usage ("steer needs a subcommand: train, export, import or show");
  return gb_cli_usage ("unknown steer subcommand “%s” (train, export, import, show)", argv[1]);
}
