/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "glassbox-engine"

#include "gb-error.h"

G_DEFINE_QUARK (gb-error-quark, gb_error)
