/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <math.h>
#include <string.h>

#include "gb-init.h"
#include "gb-npy.h"

/* Standard normal deviates (Box-Muller) from a seeded GRand, so a seed gives
 * the same checkpoint everywhere. */
void
gb_fill_normal (GRand *rng,
             float *out,
             gsize  n,
             double std)
{
  for (gsize i = 0; i < n; i += 2)
    {
      double u1 = 1.0 - g_rand_double (rng), u2 = g_rand_double (rng);
      double r = sqrt (-2.0 * log (u1)) * std;
      out[i] = (float) (r * cos (2 * G_PI * u2));
      if (i + 1 < n)
        out[i + 1] = (float) (r * sin (2 * G_PI * u2));
    }
}

static void
fill_const (float *out,
            gsize  n,
            float  v)
{
  for (gsize i = 0; i < n; i++)
    out[i] = v;
}

typedef struct
{
  GArray    *tensors; /* GbTensorOut */
  GPtrArray *owned;
  GRand     *rng;
} Builder;

/* kind: 'n' normal(std), 'c' constant(std as value). */
static void
add (Builder    *b,
     const char *name,
     guint       n_dims,
     gint64      d0,
     gint64      d1,
     char        kind,
     double      v)
{
  gsize n = (gsize) d0 * (n_dims == 2 ? (gsize) d1 : 1);
  float *data = g_new (float, n);
  if (kind == 'n')
    gb_fill_normal (b->rng, data, n, v);
  else
    fill_const (data, n, (float) v);
  GbTensorOut t = { g_intern_string (name), n_dims, { d0, d1 }, data };
  g_ptr_array_add (b->owned, data);
  g_array_append_val (b->tensors, t);
}

/* GPT-2's initialisation: N(0, 0.02), residual projections scaled by
 * 1/sqrt(2 n_layer), LayerNorm 1 and 0, biases 0. */
static void
build_weights (Builder            *b,
               const GbModelShape *p)
{
  const gint64 D = p->n_embd, F = 4 * D;
  const double proj_std = 0.02 / sqrt (2.0 * p->n_layer);

  add (b, "wte.weight", 2, p->n_vocab, D, 'n', 0.02);
  add (b, "wpe.weight", 2, p->n_positions, D, 'n', 0.01);
  for (guint l = 0; l < p->n_layer; l++)
    {
      char name[64];
#define ADD(suffix, nd, d0, d1, kind, v)                      \
  (g_snprintf (name, sizeof name, "h.%u." suffix, l), add (b, name, nd, d0, d1, kind, v))
      ADD ("ln_1.weight", 1, D, 0, 'c', 1.0);
      ADD ("ln_1.bias", 1, D, 0, 'c', 0.0);
      ADD ("attn.c_attn.weight", 2, D, 3 * D, 'n', 0.02);
      ADD ("attn.c_attn.bias", 1, 3 * D, 0, 'c', 0.0);
      ADD ("attn.c_proj.weight", 2, D, D, 'n', proj_std);
      ADD ("attn.c_proj.bias", 1, D, 0, 'c', 0.0);
      ADD ("ln_2.weight", 1, D, 0, 'c', 1.0);
      ADD ("ln_2.bias", 1, D, 0, 'c', 0.0);
      ADD ("mlp.c_fc.weight", 2, D, F, 'n', 0.02);
      ADD ("mlp.c_fc.bias", 1, F, 0, 'c', 0.0);
      ADD ("mlp.c_proj.weight", 2, F, D, 'n', proj_std);
      ADD ("mlp.c_proj.bias", 1, D, 0, 'c', 0.0);
#undef ADD
    }
  add (b, "ln_f.weight", 1, D, 0, 'c', 1.0);
  add (b, "ln_f.bias", 1, D, 0, 'c', 0.0);
}

static gboolean
write_config (const char         *dir,
              const GbModelShape *p,
              GError            **error)
{
  g_autofree char *json = g_strdup_printf (
    "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
    "  \"activation_function\": \"gelu_new\",\n  \"n_layer\": %u,\n  \"n_head\": %u,\n  \"n_embd\": %u,\n"
    "  \"n_positions\": %u,\n  \"n_ctx\": %u,\n  \"vocab_size\": %u,\n  \"layer_norm_epsilon\": 1e-05,\n"
    "  \"bos_token_id\": %u,\n  \"eos_token_id\": %u,\n  \"torch_dtype\": \"float32\"\n}\n",
    p->n_layer, p->n_head, p->n_embd, p->n_positions, p->n_positions, p->n_vocab, p->n_vocab - 1,
    p->n_vocab - 1);
  g_autofree char *path = g_build_filename (dir, "config.json", NULL);
  return gb_file_write_atomic (path, json, strlen (json), TRUE, error);
}

gboolean
gb_model_write_random (const char         *dir,
                       const GbModelShape *shape,
                       GbDtype             dtype,
                       guint64             seed,
                       GError            **error)
{
  g_return_val_if_fail (dir != NULL && shape != NULL, FALSE);
  g_return_val_if_fail (shape->n_head > 0 && shape->n_embd % shape->n_head == 0, FALSE);

  g_autoptr (GRand) rng = g_rand_new_with_seed_array ((const guint32[]) { (guint32) seed, (guint32) (seed >> 32) }, 2);
  Builder b = { g_array_new (FALSE, FALSE, sizeof (GbTensorOut)), g_ptr_array_new_with_free_func (g_free), rng };
  build_weights (&b, shape);
  g_autofree char *weights = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, "format", "pt");
  gboolean ok = gb_safetensors_write (weights, (GbTensorOut *) b.tensors->data, b.tensors->len, dtype, meta, error) &&
                write_config (dir, shape, error);
  g_array_unref (b.tensors);
  g_ptr_array_unref (b.owned);
  return ok;
}
