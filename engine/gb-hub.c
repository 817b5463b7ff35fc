/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gb-hub.h"
#include "gb-model.h"

void
gb_hub_model_free (GbHubModel *model)
{
  if (model == NULL)
    return;
  g_free (model->repo_id);
  g_free (model->path);
  g_free (model);
}

char *
gb_hub_cache_dir (void)
{
  const char *hub = g_getenv ("HF_HUB_CACHE");
  const char *home = g_getenv ("HF_HOME");

  if (hub != NULL && *hub != '\0')
    return g_strdup (hub);
  if (home != NULL && *home != '\0')
    return g_build_filename (home, "hub", NULL);
  return g_build_filename (g_get_home_dir (), ".cache", "huggingface", "hub", NULL);
}

static gboolean
has_weights (const char *dir)
{
  g_autofree char *single = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  return g_file_test (single, G_FILE_TEST_EXISTS) || g_file_test (index, G_FILE_TEST_EXISTS);
}

/* A snapshot is usable when its config says GPT-2 and weights are there. */
static gboolean
is_gpt2_snapshot (const char *dir)
{
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  g_autoptr (GbConfig) config = gb_config_load (config_path, NULL);
  return config != NULL && has_weights (dir);
}

static void
scan_repo (GPtrArray  *out,
           const char *cache_dir,
           const char *entry)
{
  g_autofree char *snapshots = g_build_filename (cache_dir, entry, "snapshots", NULL);
  g_autoptr (GDir) dir = g_dir_open (snapshots, 0, NULL);
  const char *name;

  if (dir == NULL)
    return;
  /* Newest snapshot wins: the one refs/main points at, else any usable one. */
  g_autofree char *ref_path = g_build_filename (cache_dir, entry, "refs", "main", NULL);
  g_autofree char *ref = NULL;
  /* A commit hash: anything but a small regular file is ignored. */
  GStatBuf st;
  if (g_stat (ref_path, &st) == 0 && S_ISREG (st.st_mode) && st.st_size <= 256 &&
      g_file_get_contents (ref_path, &ref, NULL, NULL))
    g_strstrip (ref);

  g_autofree char *chosen = NULL;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (snapshots, name, NULL);
      if (!is_gpt2_snapshot (path))
        continue;
      if (chosen == NULL || g_strcmp0 (name, ref) == 0)
        {
          g_free (chosen);
          chosen = g_steal_pointer (&path);
        }
    }
  if (chosen == NULL)
    return;
  GbHubModel *model = g_new0 (GbHubModel, 1);
  g_auto (GStrv) parts = g_strsplit (entry + strlen ("models--"), "--", -1);
  model->repo_id = g_strjoinv ("/", parts);
  model->path = g_steal_pointer (&chosen);
  g_ptr_array_add (out, model);
}

static int
by_repo_id (gconstpointer a,
            gconstpointer b)
{
  const GbHubModel *x = *(GbHubModel *const *) a, *y = *(GbHubModel *const *) b;
  return g_strcmp0 (x->repo_id, y->repo_id);
}

GPtrArray *
gb_hub_scan (const char *cache_dir)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) gb_hub_model_free);
  g_autofree char *default_dir = cache_dir ? NULL : gb_hub_cache_dir ();
  g_autoptr (GDir) dir = g_dir_open (cache_dir ? cache_dir : default_dir, 0, NULL);
  const char *name;

  if (dir == NULL)
    return out;
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, "models--"))
      scan_repo (out, cache_dir ? cache_dir : default_dir, name);
  g_ptr_array_sort (out, by_repo_id);
  return out;
}
