/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "gb-error.h"
#include "gb-safetensors.h"
#include "gb-tokenizer.h"
#include "gb-model.h"
#include "gb-generate.h"
#include "gb-npy.h"
#include "gb-hub.h"
#include "gb-vocab.h"
#include "gb-init.h"
#include "gb-net.h"
#include "gb-trainer.h"
#include "gb-bpe-train.h"
#include "gb-heads.h"
#include "gb-paths.h"
