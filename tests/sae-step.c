/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* The SAE trainer's arithmetic, for tests/reference/test_sae.py:
 *
 *   sae-step SAE_DIR INPUT.safetensors OUT_DIR L1 LR SPARSE_BELOW N_STEPS
 *
 * reads the SAE (SAELens layout) and x [B, d_in] (tensor "x"), writes
 * OUT_DIR/result.safetensors with z = encode (x), xhat = decode (z) and the
 * gradients of the loss (g_W_enc, g_W_dec, g_b_enc, g_b_dec; metadata loss,
 * mse, l1, l0), then runs N_STEPS Adam steps on x from the same start and
 * writes the SAE to OUT_DIR/after. */

#include <stdlib.h>

#include <glassbox-engine.h>

static int
fail (GError *error)
{
  g_printerr ("sae-step: %s\n", error->message);
  return 1;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr (GError) error = NULL;

  if (argc != 8)
    {
      g_printerr ("usage: sae-step SAE_DIR INPUT.safetensors OUT_DIR L1 LR SPARSE_BELOW N_STEPS\n");
      return 2;
    }
  g_autoptr (GbSae) sae = gb_sae_load (argv[1], &error);
  if (sae == NULL)
    return fail (error);
  g_autoptr (GbSafetensors) in = gb_safetensors_open (argv[2], &error);
  if (in == NULL)
    return fail (error);
  const GbTensorView *xv = gb_safetensors_lookup (in, "x");
  if (xv == NULL || xv->dtype != GB_DTYPE_F32 || xv->n_dims != 2 || xv->shape[1] != sae->d_in)
    {
      g_printerr ("sae-step: x must be F32 [B, d_in]\n");
      return 1;
    }
  const guint B = (guint) xv->shape[0], di = sae->d_in, ds = sae->d_sae;
  g_autofree float *x = g_memdup2 (xv->data, xv->n_bytes);

  GbSaeTrainOptions o;
  gb_sae_train_options_init (&o);
  o.l1 = g_ascii_strtod (argv[4], NULL);
  o.lr = g_ascii_strtod (argv[5], NULL);
  o.sparse_below = g_ascii_strtod (argv[6], NULL);
  o.resample_every = 0;
  o.batch_size = B;
  const int n_steps = atoi (argv[7]);

  g_autofree float *z = g_new (float, (gsize) B * ds), *xhat = g_new (float, (gsize) B * di);
  gb_sae_encode (sae, z, x, B);
  gb_sae_decode (sae, xhat, z, B);
  g_autofree float *gWe = g_new (float, (gsize) di * ds), *gWd = g_new (float, (gsize) ds * di);
  g_autofree float *gbe = g_new (float, ds), *gbd = g_new (float, di);
  GbSaeStepStats st;
  {
    g_autoptr (GbSaeTrainer) tr = gb_sae_trainer_new (gb_sae_copy (sae), &o);
    gb_sae_trainer_gradients (tr, x, B, &st, gWe, gWd, gbe, gbd);
  }
  GbTensorOut t[6] = {
    { "z", 2, { B, ds }, z }, { "xhat", 2, { B, di }, xhat },
    { "g_W_enc", 2, { di, ds }, gWe }, { "g_W_dec", 2, { ds, di }, gWd },
    { "g_b_enc", 1, { ds }, gbe }, { "g_b_dec", 1, { di }, gbd },
  };
  g_autoptr (GHashTable) meta = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert (meta, "loss", g_strdup_printf ("%.17g", st.loss));
  g_hash_table_insert (meta, "mse", g_strdup_printf ("%.17g", st.mse));
  g_hash_table_insert (meta, "l1", g_strdup_printf ("%.17g", st.l1));
  g_hash_table_insert (meta, "l0", g_strdup_printf ("%.17g", st.l0));
  g_mkdir_with_parents (argv[3], 0755);
  g_autofree char *res = g_build_filename (argv[3], "result.safetensors", NULL);
  if (!gb_safetensors_write (res, t, G_N_ELEMENTS (t), GB_DTYPE_F32, meta, &error))
    return fail (error);

  g_autoptr (GbSaeTrainer) tr = gb_sae_trainer_new (gb_sae_copy (sae), &o);
  for (int s = 0; s < n_steps; s++)
    gb_sae_trainer_step (tr, x, B, &st);
  g_autofree char *after = g_build_filename (argv[3], "after", NULL);
  if (!gb_sae_save (gb_sae_trainer_get_sae (tr), after, &error))
    return fail (error);
  return 0;
}
