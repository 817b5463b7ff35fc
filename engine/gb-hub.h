/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  char *repo_id;  /* "openai-community/gpt2" */
  char *path;     /* the snapshot folder */
} GbHubModel;

void       gb_hub_model_free (GbHubModel *model);
/* The Hugging Face hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub. */
char      *gb_hub_cache_dir (void);
/* GPT-2-family snapshots in the cache (config.json model_type "gpt2" and
 * weights present), sorted by repo id; a GPtrArray of GbHubModel. */
GPtrArray *gb_hub_scan (const char *cache_dir);

G_END_DECLS
