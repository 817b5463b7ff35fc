/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-test"

/* Head-role scores and attention aggregations on hand-made patterns whose
 * expected scores are known exactly, then on a tiny random model. */

#include <math.h>
#include <string.h>

#include "gb-test-util.h"

#define T 6

/* Builds a causal [T, T] pattern in which every row i puts all its weight
 * on column col(i). */
static void
one_hot (float *A,
         guint  n,
         guint (*col) (guint i))
{
  memset (A, 0, (gsize) n * n * sizeof (float));
  for (guint i = 0; i < n; i++)
    A[(gsize) i * n + col (i)] = 1.f;
}

static guint col_prev (guint i) { return i ? i - 1 : 0; }
static guint col_first (guint i) { return 0; }
static guint col_self (guint i) { return i; }

static void
uniform (float *A,
         guint  n)
{
  memset (A, 0, (gsize) n * n * sizeof (float));
  for (guint i = 0; i < n; i++)
    for (guint j = 0; j <= i; j++)
      A[(gsize) i * n + j] = 1.f / (i + 1);
}

typedef struct
{
  const char *name;
  guint (*col) (guint i);
  double prev, first, self;
} OneHotCase;

static void
test_one_hot_scores (void)
{
  /* Row 0 is excluded everywhere, so row 1 of "prev" counts as both previous
   * and first: prev = 1, first = 1/5, self = 0. */
  const OneHotCase cases[] = {
    { "previous", col_prev, 1.0, 1.0 / 5, 0.0 },
    { "first", col_first, 1.0 / 5, 1.0, 0.0 },
    { "self", col_self, 0.0, 0.0, 1.0 },
  };
  float A[T * T];

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      one_hot (A, T, cases[c].col);
      g_test_message ("%s", cases[c].name);
      g_assert_cmpfloat_with_epsilon (gb_pattern_previous_score (A, T), cases[c].prev, 1e-9);
      g_assert_cmpfloat_with_epsilon (gb_pattern_first_score (A, T), cases[c].first, 1e-9);
      g_assert_cmpfloat_with_epsilon (gb_pattern_self_score (A, T), cases[c].self, 1e-9);
      /* One-hot rows have zero entropy. */
      g_assert_cmpfloat_with_epsilon (gb_pattern_diffuse_score (A, T), 0.0, 1e-9);
    }
}

static void
test_uniform_scores (void)
{
  float A[T * T];
  double expect = 0;

  uniform (A, T);
  /* A uniform row has the maximum entropy ln(i + 1): normalised, exactly 1. */
  g_assert_cmpfloat_with_epsilon (gb_pattern_diffuse_score (A, T), 1.0, 1e-6);
  for (guint i = 1; i < T; i++)
    expect += 1.0 / (i + 1);
  expect /= T - 1;
  g_assert_cmpfloat_with_epsilon (gb_pattern_previous_score (A, T), expect, 1e-6);
  g_assert_cmpfloat_with_epsilon (gb_pattern_first_score (A, T), expect, 1e-6);
  g_assert_cmpfloat_with_epsilon (gb_pattern_self_score (A, T), expect, 1e-6);
  /* Degenerate sizes score 0 instead of dividing by zero. */
  g_assert_cmpfloat (gb_pattern_diffuse_score (A, 1), ==, 0.0);
  g_assert_cmpfloat (gb_pattern_previous_score (A, 1), ==, 0.0);
}

static void
test_induction_score (void)
{
  /* BOS + 2 copies of 4 tokens: T = 9. A perfect induction head in the
   * second copy (rows 5..8) attends from offset+n+k to offset+k+1. */
  enum { OFF = 1, N = 4, TT = OFF + 2 * N };
  float A[TT * TT];

  memset (A, 0, sizeof A);
  for (guint i = 0; i < TT; i++)
    A[i * TT + i] = 1.f;
  for (guint k = 0; k + 1 < N; k++)
    {
      guint q = OFF + N + k;
      A[q * TT + q] = 0.f;
      A[q * TT + OFF + k + 1] = 1.f;
    }
  g_assert_cmpfloat_with_epsilon (gb_pattern_induction_score (A, TT, OFF, N), 1.0, 1e-9);
  /* Half the weight on the induction target: 0.5. */
  for (guint k = 0; k + 1 < N; k++)
    {
      guint q = OFF + N + k;
      A[q * TT + OFF + k + 1] = 0.5f;
      A[q * TT + q] = 0.5f;
    }
  g_assert_cmpfloat_with_epsilon (gb_pattern_induction_score (A, TT, OFF, N), 0.5, 1e-9);
  /* A previous-token head is not an induction head. */
  one_hot (A, TT, col_prev);
  g_assert_cmpfloat_with_epsilon (gb_pattern_induction_score (A, TT, OFF, N), 0.0, 1e-9);
}

static void
test_mean_heads (void)
{
  float P[2 * T * T], out[T * T];

  one_hot (P, T, col_self);
  one_hot (P + T * T, T, col_first);
  gb_attention_mean_heads (out, P, 2, T);
  g_assert_cmpfloat (out[0], ==, 1.f);            /* both heads: row 0 -> 0 */
  g_assert_cmpfloat (out[3 * T + 3], ==, 0.5f);   /* self head only */
  g_assert_cmpfloat (out[3 * T + 0], ==, 0.5f);   /* first head only */
  g_assert_cmpfloat (out[3 * T + 1], ==, 0.f);
}

static void
test_rollout (void)
{
  /* One layer of a "previous" head: Â = rownorm(0.5 A + 0.5 I). Row 0:
   * A[0,0] = 1 so Â[0,0] = 1; rows i >= 1: 0.5 on i-1 and 0.5 on i. */
  float A[T * T], out[T * T], two[T * T];
  const float *layers[2] = { A, A };

  one_hot (A, T, col_prev);
  gb_attention_rollout (out, layers, 1, T);
  g_assert_cmpfloat_with_epsilon (out[0], 1.f, 1e-6);
  for (guint i = 1; i < T; i++)
    {
      g_assert_cmpfloat_with_epsilon (out[i * T + i], 0.5f, 1e-6);
      g_assert_cmpfloat_with_epsilon (out[i * T + i - 1], 0.5f, 1e-6);
    }
  /* Two layers: Â² gives row i (i >= 2) 1/4, 1/2, 1/4 on i-2, i-1, i. */
  gb_attention_rollout (two, layers, 2, T);
  g_assert_cmpfloat_with_epsilon (two[4 * T + 2], 0.25f, 1e-6);
  g_assert_cmpfloat_with_epsilon (two[4 * T + 3], 0.5f, 1e-6);
  g_assert_cmpfloat_with_epsilon (two[4 * T + 4], 0.25f, 1e-6);
  /* Row 1: Â[1] = (0.5, 0.5); Â[0] = (1) -> (0.75, 0.25). */
  g_assert_cmpfloat_with_epsilon (two[1 * T + 0], 0.75f, 1e-6);
  for (guint i = 0; i < T; i++)
    {
      double sum = 0;
      for (guint j = 0; j < T; j++)
        sum += two[i * T + j];
      g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-5);
    }
}

static void
test_roles_names (void)
{
  g_assert_cmpstr (gb_head_role_name (GB_HEAD_ROLE_INDUCTION), ==, "induction");
  g_assert_cmpstr (gb_head_role_name (GB_HEAD_ROLE_PREVIOUS), ==, "previous-token");
  g_assert_cmpstr (gb_head_role_short (GB_HEAD_ROLE_FIRST), ==, "bos");
}

static char *
tiny_model (void)
{
  char *dir = gb_test_tmpdir ();
  gb_test_write_model (dir, 2, 3, 12, 64, FALSE, 7);
  return dir;
}

static void
test_model_scores (void)
{
  g_autofree char *dir = tiny_model ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_autoptr (GbHeadScores) s = gb_head_scores_compute (model, 0, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (s->n_layer, ==, 2);
  g_assert_cmpuint (s->n_head, ==, 3);
  g_assert_cmpuint (s->seq_len, ==, 31); /* (64 - 1) / 2 */
  g_assert_cmpuint (s->n_tokens, ==, 63);
  for (guint i = 0; i < 2 * 3 * GB_N_HEAD_ROLES; i++)
    g_assert_true (s->scores[i] >= 0.f && s->scores[i] <= 1.f + 1e-5f);
  /* Deterministic: a second run agrees exactly. */
  g_autoptr (GbHeadScores) again = gb_head_scores_compute (model, 0, 0, NULL, &error);
  g_assert_cmpmem (s->scores, 2 * 3 * GB_N_HEAD_ROLES * sizeof (float), again->scores,
                   2 * 3 * GB_N_HEAD_ROLES * sizeof (float));
  /* Too long a probe is an error, not a crash. */
  g_autoptr (GbHeadScores) none = gb_head_scores_compute (model, 40, 0, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, GB_ERROR, GB_ERROR_ARGUMENT);
}

static void
test_maps_match_forward (void)
{
  g_autofree char *dir = tiny_model ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GbModel) model = gb_model_load (dir, NULL, NULL, NULL, &error);
  const gint32 tokens[] = { 256, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100 };
  const guint n = G_N_ELEMENTS (tokens), H = 3;
  GbRecord rec = { .logits = GB_LOGITS_NONE };

  rec.hooks[GB_HOOK_PATTERN] = GB_ALL_LAYERS;
  g_autoptr (GbTrace) trace = gb_model_forward (model, tokens, n, &rec, NULL, 0, NULL, &error);
  g_assert_no_error (error);
  /* Stored layer by layer from the pattern sink: the trace's patterns. */
    {
      g_autoptr (GbAttentionMaps) m = gb_attention_maps_compute (model, tokens, n, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      float head[n * n], mean[n * n];
      for (guint l = 0; l < 2; l++)
        {
          const float *p = gb_trace_get (trace, GB_HOOK_PATTERN, l);
          for (guint h = 0; h < H; h++)
            {
              gb_attention_maps_get_head (m, l, h, head);
              for (guint i = 0; i < n; i++)
                for (guint j = 0; j <= i; j++)
                  {
                    float want = p[((gsize) h * n + i) * n + j];
                    g_assert_cmpfloat_with_epsilon (head[i * n + j], want, 1.0 / 65535);
                    g_assert_cmpfloat (gb_attention_maps_head_at (m, l, h, i, j), ==, head[i * n + j]);
                  }
            }
          gb_attention_mean_heads (mean, p, H, n);
          g_assert_cmpmem (mean, sizeof mean, m->layer_means + (gsize) l * n * n, sizeof mean);
        }
      g_assert_cmpuint (gb_attention_maps_get_size (m), >, (gsize) 2 * H * n * (n + 1) / 2 * 2);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/heads/one-hot", test_one_hot_scores);
  g_test_add_func ("/engine/heads/uniform", test_uniform_scores);
  g_test_add_func ("/engine/heads/induction", test_induction_score);
  g_test_add_func ("/engine/heads/names", test_roles_names);
  g_test_add_func ("/engine/heads/mean", test_mean_heads);
  g_test_add_func ("/engine/heads/rollout", test_rollout);
  g_test_add_func ("/engine/heads/model-scores", test_model_scores);
  g_test_add_func ("/engine/heads/maps", test_maps_match_forward);
  return g_test_run ();
}
