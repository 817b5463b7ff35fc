/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define GB_ERROR (gb_error_quark ())

/* Every engine failure is a GError in this domain; the message names the
 * file (when there is one), the object (tensor, token, field) and the problem. */
typedef enum
{
  GB_ERROR_IO,           /* could not open, read, map or write a file */
  GB_ERROR_FORMAT,       /* a file is malformed (bad header, bad JSON, bad line) */
  GB_ERROR_UNSUPPORTED,  /* well-formed but not something we handle (dtype, architecture) */
  GB_ERROR_SHAPE,        /* a tensor or array has the wrong shape */
  GB_ERROR_MISSING,      /* a required file or tensor is absent */
  GB_ERROR_INVALID_DATA, /* NaN/Inf weights, invalid UTF-8, out-of-range token ids */
  GB_ERROR_LIMIT,        /* input past a sane limit (context window, header size) */
  GB_ERROR_ARGUMENT,     /* a caller passed a bad argument */
} GbErrorCode;

GQuark gb_error_quark (void);

G_END_DECLS
