/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "gb-model.h"

G_BEGIN_DECLS

/* A KV-cached decoding session over one model: its own cache and scratch,
 * so several sessions may run on one model from different threads. */
typedef struct _GbSession GbSession;

GbSession *gb_session_new (GbModel *model);
void       gb_session_free (GbSession *self);
guint      gb_session_get_n_past (GbSession *self);
void       gb_session_reset (GbSession *self);
/* Appends @n_tokens at positions n_past.. and returns the logits of the last
 * one (borrowed, [n_vocab], valid until the next call). */
const float *gb_session_feed (GbSession            *self,
                              const gint32         *tokens,
                              guint                 n_tokens,
                              const GbIntervention *interventions,
                              guint                 n_interventions,
                              GCancellable         *cancellable,
                              GError              **error);

typedef struct
{
  guint    max_new_tokens;
  float    temperature;     /* 0 = greedy */
  guint    top_k;           /* 0 = off */
  float    top_p;           /* 1 = off */
  guint64  seed;
  gboolean stop_at_eot;
  /* A prompt longer than the context: error (FALSE) or keep its last tokens (TRUE). */
  gboolean truncate_left;
} GbGenerateParams;

void gb_generate_params_init (GbGenerateParams *params);

/* Called once per new token with the text it completes (may be "", never
 * invalid UTF-8). Return FALSE to stop. */
typedef gboolean (*GbTokenFunc) (gint32      token,
                                 const char *text_piece,
                                 gpointer    user_data);

/* Generates from @prompt_tokens. Returns the new tokens (gint32). If the
 * prompt was truncated, *n_truncated says by how many tokens. Cancellation is
 * checked between tokens. */
GArray *gb_generate (GbModel                *model,
                     const gint32           *prompt_tokens,
                     guint                   n_prompt,
                     const GbGenerateParams *params,
                     const GbIntervention   *interventions,
                     guint                   n_interventions,
                     GbTokenFunc             on_token,
                     gpointer                user_data,
                     guint                  *n_truncated,
                     GCancellable           *cancellable,
                     GError                **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbSession, gb_session_free)

G_END_DECLS
