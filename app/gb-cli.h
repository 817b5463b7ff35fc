/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glassbox-engine.h>

G_BEGIN_DECLS

/* Exit codes of the command-line contract (DESIGN.md). */
enum
{
  GB_CLI_OK = 0,
  GB_CLI_RUNTIME_ERROR = 1,
  GB_CLI_USAGE_ERROR = 2,
};

/* The bundled demo model, or $GLASSBOX_MODEL when set. */
const char *gb_cli_default_model_dir (void);

/* Prints "glassbox-cli: error: MESSAGE" and returns GB_CLI_RUNTIME_ERROR. */
int gb_cli_fail (const GError *error);
/* Prints "glassbox-cli: error: MESSAGE" and returns GB_CLI_USAGE_ERROR. */
int gb_cli_usage (const char *format, ...) G_GNUC_PRINTF (1, 2);
/* Parses @entries; on a usage error prints it and returns FALSE with
 * *exit_code set (0 for --help). */
gboolean gb_cli_parse (GOptionContext *context,
                       int            *argc,
                       char         ***argv,
                       int            *exit_code);

/* Saves never replace files unasked: when @dir already holds one of @names
 * (NULL-terminated) and @force is FALSE, prints a usage error naming it and
 * returns GB_CLI_USAGE_ERROR; else 0. */
int gb_cli_check_outputs (const char        *dir,
                          const char *const *names,
                          gboolean           force);

/* "1,2,3" -> gint32 ids (an ARGUMENT error names the bad item). */
GArray *gb_cli_parse_token_list (const char *list,
                                 GError    **error);

int gb_cli_tokenize (int argc, char **argv);
int gb_cli_run (int argc, char **argv);
int gb_cli_generate (int argc, char **argv);
int gb_cli_init_model (int argc, char **argv);
int gb_cli_grad (int argc, char **argv);
int gb_cli_train (int argc, char **argv);
int gb_cli_eval (int argc, char **argv);
int gb_cli_train_tokenizer (int argc, char **argv);
int gb_cli_heads (int argc, char **argv);
int gb_cli_attention (int argc, char **argv);
int gb_cli_steer (int argc, char **argv);

/* "3", "1-4", "1,3,5" or "all" (mask 0) -> bit mask of blocks. */
gboolean gb_cli_parse_layers (const char *spec,
                              guint64    *mask,
                              GError    **error);
int gb_cli_sae (int argc, char **argv);
int gb_cli_explain (int argc, char **argv);

G_END_DECLS
