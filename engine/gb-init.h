/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "gb-safetensors.h"

G_BEGIN_DECLS

typedef struct
{
  guint n_layer;
  guint n_head;
  guint n_embd;
  guint n_positions;
  guint n_vocab;
} GbModelShape;

/* Writes config.json and model.safetensors of a GPT-2 with GPT-2's random
 * initialisation (N(0, 0.02), residual projections scaled by 1/sqrt(2 L),
 * LayerNorm 1 and 0, biases 0), the same for the same seed everywhere. The
 * vocabulary files are the caller's (see gb-vocab.h). */
gboolean gb_model_write_random (const char         *dir,
                                const GbModelShape *shape,
                                GbDtype             dtype,
                                guint64             seed,
                                GError            **error);

/* Standard normal deviates times @std (Box-Muller, pairs from @rng), the
 * initialiser's generator. */
void gb_fill_normal (GRand *rng,
                     float *out,
                     gsize  n,
                     double std);

G_END_DECLS
