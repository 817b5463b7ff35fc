/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "gb-init.h"
#include "gb-model.h"

G_BEGIN_DECLS

/* A GPT-2 that can be differentiated: the training and attribution side of
 * the engine. Its parameters live in one float32 buffer (owned, for
 * training) or are borrowed from a loaded GbModel (read-only, for gradients
 * with respect to inputs and activations). Forward and backward run B
 * sequences of T tokens at positions 0..T-1, OpenBLAS for every matmul. */
typedef struct _GbNet GbNet;

/* One parameter tensor, named as Hugging Face's GPT2Model names it. */
typedef struct
{
  const char *name;
  guint       n_dims;
  gint64      shape[2];
  gsize       offset;  /* into gb_net_get_params() / gb_net_get_grads() */
  gsize       n;
  gboolean    decay;   /* a weight matrix (AdamW decays only these by default) */
  gboolean    embedding;
} GbParamInfo;

/* GPT-2's random initialisation, identical to gb_model_write_random() for
 * the same shape and seed. Activation gelu_new, epsilon 1e-5. */
GbNet *gb_net_new_random (const GbModelShape *shape,
                          guint64             seed);
/* A trainable copy of @model's weights (@copy TRUE) or a read-only view of
 * them (@copy FALSE: gradients with respect to inputs only). Classification
 * heads are not supported here. */
GbNet *gb_net_new_from_model (GbModel  *model,
                              gboolean  copy,
                              GError  **error);
void   gb_net_free (GbNet *self);

const GbModelShape *gb_net_get_shape (GbNet *self);
gsize               gb_net_get_n_params (GbNet *self);
/* NULL for a borrowed net. */
float              *gb_net_get_params (GbNet *self);
/* Allocated (zeroed) on first use. */
float              *gb_net_get_grads (GbNet *self);
void                gb_net_zero_grads (GbNet *self);
const GbParamInfo  *gb_net_get_param_info (GbNet *self,
                                           guint *n_info);

/* Writes config.json and model.safetensors (Hugging Face layout, tied
 * lm_head) atomically. The vocabulary files are the caller's. */
gboolean gb_net_save (GbNet      *self,
                      const char *dir,
                      GbDtype     dtype,
                      GError    **error);

/* Forward over @B sequences of @T tokens ([B*T] ids) and the cross-entropy
 * of the next-token predictions against @targets ([B*T], -1 = no loss
 * there), each position weighted by @weights ([B*T]; NULL = 1). Returns the
 * weighted mean loss (sum w * nll / sum w), and with @backward adds its
 * gradient to the grads buffer. Returns NaN and sets @error on bad input
 * (token out of range, T over the context). */
double gb_net_loss (GbNet        *self,
                    const gint32 *tokens,
                    const gint32 *targets,
                    const float  *weights,
                    guint         B,
                    guint         T,
                    gboolean      backward,
                    GError      **error);

/* The same for part of a batch: the gradient is that of
 * sum(w * nll) / @total_w (the whole batch's weight), and *@nll_sum
 * receives sum(w * nll) over this part. For data-parallel training. */
gboolean gb_net_loss_partial (GbNet        *self,
                              const gint32 *tokens,
                              const gint32 *targets,
                              const float  *weights,
                              guint         B,
                              guint         T,
                              double        total_w,
                              gboolean      backward,
                              double       *nll_sum,
                              GError      **error);

/* A net that shares @src's parameters (read through, never freed) with its
 * own gradients and activations: one per worker thread. @src must outlive
 * it. */
GbNet *gb_net_new_replica (GbNet *src);

/* Bytes of activations and scratch one forward/backward over B x T keeps
 * (a double, so absurd sizes do not wrap). */
double gb_net_activation_bytes (const GbModelShape *shape,
                                guint               B,
                                guint               T);

/* Attribution: the gradient of logits[@pos][@tok_a] - logits[@pos][@tok_b]
 * (@tok_b < 0: of logits[@pos][@tok_a] alone) for one sequence, with
 * respect to the input embeddings (wte[tok] + wpe[pos]; @d_embed [T, D]) and
 * to the residual stream before each block (@d_resid_pre [L, T, D]; may be
 * NULL). @input_embed ([T, D], may be NULL) replaces the input embeddings
 * (integrated gradients scale them). @value (may be NULL) receives the
 * differentiated quantity. The parameter gradients are left alone. */
gboolean gb_net_grad_logit_diff (GbNet        *self,
                                 const gint32 *tokens,
                                 const float  *input_embed,
                                 guint         T,
                                 guint         pos,
                                 gint32        tok_a,
                                 gint32        tok_b,
                                 float        *d_embed,
                                 float        *d_resid_pre,
                                 float        *value,
                                 GError      **error);

/* After gb_net_loss: the loss's gradient with respect to the logits
 * [B*T, V]; valid until the next call. */
const float *gb_net_get_dlogits (GbNet *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbNet, gb_net_free)

G_END_DECLS
