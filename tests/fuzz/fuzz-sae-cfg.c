/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A hostile SAE cfg.json (SAELens layout) in a folder with a valid tiny
 * sae_weights.safetensors: a refusal names the file; nothing crashes. */
#include <string.h>

#include "fuzz-util.h"

static void
write_weights (const char *dir)
{
  /* d_in 4, d_sae 8: W_enc [4, 8], W_dec [8, 4], b_enc [8], b_dec [4]. */
  static gboolean done;
  if (done)
    return;
  float w_enc[32] = { 0 }, w_dec[32] = { 0 }, b_enc[8] = { 0 }, b_dec[4] = { 0 };
  for (guint i = 0; i < 8; i++)
    w_dec[i * 4 + i % 4] = 1.f, w_enc[(i % 4) * 8 + i] = 1.f;
  GbTensorOut t[] = {
    { "W_enc", 2, { 4, 8 }, w_enc },
    { "W_dec", 2, { 8, 4 }, w_dec },
    { "b_enc", 1, { 8 }, b_enc },
    { "b_dec", 1, { 4 }, b_dec },
  };
  g_autofree char *path = g_build_filename (dir, "sae_weights.safetensors", NULL);
  g_autoptr (GError) error = NULL;
  if (!gb_safetensors_write (path, t, G_N_ELEMENTS (t), GB_DTYPE_F32, NULL, &error))
    g_error ("%s", error->message);
  done = TRUE;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *dir = fuzz_dir ();
  g_autoptr (GError) error = NULL;

  write_weights (dir);
  fuzz_write ("cfg.json", data, size);
  g_autoptr (GbSae) sae = gb_sae_load (dir, &error);
  if (sae == NULL)
    {
      FUZZ_CHECK (error != NULL && error->domain == GB_ERROR, "a refusal is a GB_ERROR");
      FUZZ_CHECK (strstr (error->message, dir) != NULL || strstr (error->message, "cfg.json") != NULL
                    || strstr (error->message, "sae_weights") != NULL, "the error names the file");
    }
  return 0;
}
