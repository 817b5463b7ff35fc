/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  GB_DTYPE_F32,
  GB_DTYPE_F16,
  GB_DTYPE_BF16,
  GB_DTYPE_F64,
  GB_DTYPE_I64,
  GB_DTYPE_I32,
  GB_DTYPE_I16,
  GB_DTYPE_I8,
  GB_DTYPE_U8,
  GB_DTYPE_BOOL,
} GbDtype;

#define GB_MAX_DIMS 8

typedef struct
{
  const char   *name;  /* borrowed from the file */
  GbDtype       dtype;
  guint         n_dims;
  gint64        shape[GB_MAX_DIMS];
  gint64        n_elements;
  const guint8 *data;  /* points into the mapping */
  gsize         n_bytes;
} GbTensorView;

/* A memory-mapped safetensors file, validated on open: header length within
 * the file and under a cap, JSON well-formed, every dtype known, shape
 * product x dtype size equal to the byte span, spans inside the data
 * section, sorted spans non-overlapping, names unique. */
typedef struct _GbSafetensors GbSafetensors;

GbSafetensors      *gb_safetensors_open (const char *path,
                                         GError    **error);
void                gb_safetensors_free (GbSafetensors *self);
const char         *gb_safetensors_get_path (GbSafetensors *self);
guint               gb_safetensors_get_n_tensors (GbSafetensors *self);
const GbTensorView *gb_safetensors_get_nth (GbSafetensors *self,
                                            guint          index);
const GbTensorView *gb_safetensors_lookup (GbSafetensors *self,
                                           const char    *name);
/* The "__metadata__" string map (borrowed; may be empty). */
GHashTable         *gb_safetensors_get_metadata (GbSafetensors *self);

gsize               gb_dtype_size (GbDtype dtype);
const char         *gb_dtype_name (GbDtype dtype);

/* Writes tensors to @path atomically (temporary file, fsync, rename). Each
 * tensor is F32 unless @dtype says otherwise; @data are float32 values that
 * are converted (F16/BF16 with round-to-nearest-even). */
typedef struct
{
  const char   *name;
  guint         n_dims;
  gint64        shape[GB_MAX_DIMS];
  const float  *data;
} GbTensorOut;

gboolean gb_safetensors_write (const char        *path,
                               const GbTensorOut *tensors,
                               guint              n_tensors,
                               GbDtype            dtype,
                               GHashTable        *metadata,
                               GError           **error);

/* Element conversions. */
float  gb_f16_to_f32 (guint16 h);
float  gb_bf16_to_f32 (guint16 h);
guint16 gb_f32_to_f16 (float f);
guint16 gb_f32_to_bf16 (float f);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GbSafetensors, gb_safetensors_free)

G_END_DECLS
