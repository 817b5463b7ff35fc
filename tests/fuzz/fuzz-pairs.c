/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A hostile contrastive pair set (JSON or JSONL): a refusal names the file;
 * an accepted set holds only pairs that pass validation. */
#include <string.h>

#include "fuzz-util.h"

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GbPairSet) set = gb_pair_set_parse ((const char *) data, (gssize) size, "pairs.json", &error);

  if (set == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == GB_ERROR, "a refusal is a GB_ERROR");
      FUZZ_CHECK (g_str_has_prefix (error->message, "pairs.json"), "the error names the file");
      return 0;
    }
  FUZZ_CHECK (gb_pair_set_get_n_pairs (set) > 0, "at least one pair");
  for (guint i = 0; i < gb_pair_set_get_n_pairs (set); i++)
    {
      const GbPair *p = gb_pair_set_get (set, i);
      FUZZ_CHECK (p->positive != NULL && p->negative != NULL, "both texts");
      FUZZ_CHECK (g_utf8_validate (p->positive, -1, NULL) && g_utf8_validate (p->negative, -1, NULL), "UTF-8");
      FUZZ_CHECK (*p->positive && *p->negative, "non-empty");
      FUZZ_CHECK (strlen (p->positive) <= GB_PAIR_MAX_BYTES && strlen (p->negative) <= GB_PAIR_MAX_BYTES, "bounded");
    }
  /* What was accepted saves and parses back to the same pairs. */
  gsize len = 0;
  g_autofree char *json = gb_pair_set_to_json (set, &len);
  g_autoptr (GbPairSet) again = gb_pair_set_parse (json, (gssize) len, "round-trip", &error);
  FUZZ_CHECK (again != NULL && gb_pair_set_get_n_pairs (again) == gb_pair_set_get_n_pairs (set), "round trip");
  return 0;
}
