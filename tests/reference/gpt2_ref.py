# SPDX-License-Identifier: GPL-3.0-or-later
"""An independent float64 GPT-2, written from the math, plus a writer of
random checkpoints in the Hugging Face layout.

Nothing here shares code with the C engine: the forward pass follows
Radford et al. (2019) with Hugging Face's GPT2Model conventions, and the
safetensors files are written byte by byte from the format's description
(8-byte little-endian header length, JSON header, raw data).

Parameter names are canonical, without the "transformer." prefix:
  wte.weight [V, D]    wpe.weight [P, D]
  h.N.ln_1.weight/bias [D]
  h.N.attn.c_attn.weight [D, 3D]  .bias [3D]   (Conv1D: y = x @ W + b)
  h.N.attn.c_proj.weight [D, D]   .bias [D]
  h.N.ln_2.weight/bias [D]
  h.N.mlp.c_fc.weight [D, I]      .bias [I]
  h.N.mlp.c_proj.weight [I, D]    .bias [D]
  ln_f.weight/bias [D]
  lm_head.weight [V, D]   (optional; tied to wte.weight when absent)
  score.weight [n_labels, D]  (GPT2ForSequenceClassification, no bias)
"""

import json
import math
import os
import shutil
import struct

import numpy as np

# ---------------------------------------------------------------------------
# Configuration


def make_config(n_layer=2, n_head=4, n_embd=64, n_positions=128,
                vocab_size=50257, n_inner=None, layer_norm_epsilon=1e-5,
                id2label=None, dtype="f32", untied=False):
    """A config.json dict as GPT2Config.to_dict() writes it."""
    torch_dtype = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype]
    config = {
        "_name_or_path": "glassbox-reference",
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": layer_norm_epsilon,
        "model_type": "gpt2",
        "n_ctx": n_positions,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_inner": n_inner,
        "n_layer": n_layer,
        "n_positions": n_positions,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": torch_dtype,
        "transformers_version": "4.40.0",
        "use_cache": True,
        "vocab_size": vocab_size,
    }
    if untied:
        config["tie_word_embeddings"] = False
    if id2label:
        config["architectures"] = ["GPT2ForSequenceClassification"]
        config["id2label"] = {str(k): v for k, v in id2label.items()}
        config["label2id"] = {v: int(k) for k, v in id2label.items()}
        config["pad_token_id"] = 50256
    return config


def config_n_inner(config):
    n_inner = config.get("n_inner")
    return 4 * config["n_embd"] if n_inner is None else int(n_inner)


def config_n_labels(config):
    """Labels of a GPT2ForSequenceClassification config, 0 otherwise."""
    if "GPT2ForSequenceClassification" not in (config.get("architectures") or []):
        return 0
    return len(config.get("id2label") or {})


# ---------------------------------------------------------------------------
# Forward pass (float64)


def layer_norm(x, weight, bias, eps):
    """torch.nn.LayerNorm over the last axis: biased variance, eps inside
    the square root."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu_new(x):
    """GELU, tanh approximation (Hendrycks & Gimpel), as HF's NewGELU."""
    c = x.dtype.type(math.sqrt(2.0 / math.pi))
    return 0.5 * x * (1.0 + np.tanh(c * (x + x.dtype.type(0.044715) * x ** 3)))


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def check_config(config):
    """Refuses what this reference does not model, rather than computing
    something else silently."""
    act = config.get("activation_function", "gelu_new")
    if act != "gelu_new":
        raise ValueError("reference supports gelu_new only, not %r" % act)
    if config.get("scale_attn_by_inverse_layer_idx"):
        raise ValueError("scale_attn_by_inverse_layer_idx is not modelled")
    if config.get("scale_attn_weights", True) is not True:
        raise ValueError("scale_attn_weights=false is not modelled")
    if config["n_embd"] % config["n_head"]:
        raise ValueError("n_embd must be a multiple of n_head")


def forward(params, config, tokens, dtype=np.float64):
    """Runs GPT-2 on a list of token ids.

    params: canonical name -> float array. @dtype is float64 for the
    reference; float32 estimates the rounding error a float32 engine makes.
    Returns a dict of float64 arrays:
      logits [T, V], attention [L, H, T, T],
      resid_pre, resid_mid, resid_post [L, T, D], attn_out, mlp_out [L, T, D],
      mlp_post [L, T, I], ln_f [T, D], and class_logits [T, n_labels] when
      params has score.weight.
    """
    check_config(config)
    p = {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
    tokens = np.asarray(tokens, dtype=np.int64)
    n_layer = config["n_layer"]
    n_head = config["n_head"]
    d = config["n_embd"]
    hd = d // n_head
    eps = dtype(config.get("layer_norm_epsilon", 1e-5))
    t = len(tokens)
    if t < 1 or t > config["n_positions"]:
        raise ValueError("need 1..n_positions tokens, got %d" % t)

    h = p["wte.weight"][tokens] + p["wpe.weight"][np.arange(t)]

    causal = np.tril(np.ones((t, t), dtype=bool))
    out = {k: [] for k in ("resid_pre", "resid_mid", "resid_post",
                           "attention", "attn_out", "mlp_post", "mlp_out")}
    for layer in range(n_layer):
        pre = "h.%d." % layer
        out["resid_pre"].append(h.copy())

        a = layer_norm(h, p[pre + "ln_1.weight"], p[pre + "ln_1.bias"], eps)
        qkv = a @ p[pre + "attn.c_attn.weight"] + p[pre + "attn.c_attn.bias"]
        q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
        # [T, D] -> [H, T, hd]
        q = q.reshape(t, n_head, hd).transpose(1, 0, 2)
        k = k.reshape(t, n_head, hd).transpose(1, 0, 2)
        v = v.reshape(t, n_head, hd).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / dtype(math.sqrt(hd))  # [H, T, T]
        scores = np.where(causal[None], scores, -np.inf)
        pattern = softmax(scores, axis=-1)
        out["attention"].append(pattern)
        z = (pattern @ v).transpose(1, 0, 2).reshape(t, d)   # merge heads
        attn_out = z @ p[pre + "attn.c_proj.weight"] + p[pre + "attn.c_proj.bias"]
        out["attn_out"].append(attn_out)
        h = h + attn_out
        out["resid_mid"].append(h.copy())

        m = layer_norm(h, p[pre + "ln_2.weight"], p[pre + "ln_2.bias"], eps)
        fc = m @ p[pre + "mlp.c_fc.weight"] + p[pre + "mlp.c_fc.bias"]
        post = gelu_new(fc)
        out["mlp_post"].append(post)
        mlp_out = post @ p[pre + "mlp.c_proj.weight"] + p[pre + "mlp.c_proj.bias"]
        out["mlp_out"].append(mlp_out)
        h = h + mlp_out
        out["resid_post"].append(h.copy())

    result = {k: np.stack(v) for k, v in out.items()}
    hf = layer_norm(h, p["ln_f.weight"], p["ln_f.bias"], eps)
    result["ln_f"] = hf
    # transformers ties the head to wte unless the config unties it, whatever
    # copy of lm_head.weight the file carries.
    tied = config.get("tie_word_embeddings", True)
    head = p["wte.weight"] if tied else p["lm_head.weight"]
    result["logits"] = hf @ head.T
    if "score.weight" in p:
        result["class_logits"] = hf @ p["score.weight"].T
    return result


# ---------------------------------------------------------------------------
# Random checkpoints


def random_checkpoint(config, seed=0, std=0.02, attn_std=None, fc_std=None,
                      n_labels=0, untied=False):
    """Random float64 parameters (canonical names) for @config.

    std is the initializer range for embeddings and projections; attn_std
    and fc_std override it for c_attn and c_fc, so that tests can make
    attention patterns peaked and GELU non-linear (with 0.02 everywhere a
    64-wide model attends almost uniformly and GELU is almost linear).
    LayerNorm weights lie around 1; every bias is small and non-zero.
    """
    rng = np.random.default_rng(seed)
    d = config["n_embd"]
    n_inner = config_n_inner(config)
    v = config["vocab_size"]
    attn_std = std if attn_std is None else attn_std
    fc_std = std if fc_std is None else fc_std

    def normal(shape, s):
        return rng.normal(0.0, s, size=shape)

    def ln(name):
        params[name + ".weight"] = 1.0 + normal((d,), 0.1)
        params[name + ".bias"] = normal((d,), 0.02)

    params = {
        "wte.weight": normal((v, d), std),
        "wpe.weight": normal((config["n_positions"], d), std / 2),
    }
    for layer in range(config["n_layer"]):
        pre = "h.%d." % layer
        ln(pre + "ln_1")
        params[pre + "attn.c_attn.weight"] = normal((d, 3 * d), attn_std)
        params[pre + "attn.c_attn.bias"] = normal((3 * d,), 0.02)
        params[pre + "attn.c_proj.weight"] = normal((d, d), std)
        params[pre + "attn.c_proj.bias"] = normal((d,), 0.01)
        ln(pre + "ln_2")
        params[pre + "mlp.c_fc.weight"] = normal((d, n_inner), fc_std)
        params[pre + "mlp.c_fc.bias"] = normal((n_inner,), 0.02)
        params[pre + "mlp.c_proj.weight"] = normal((n_inner, d), std)
        params[pre + "mlp.c_proj.bias"] = normal((d,), 0.01)
    ln("ln_f")
    if untied:
        params["lm_head.weight"] = normal((v, d), std)
    if n_labels:
        params["score.weight"] = normal((n_labels, d), std * 5)
    return params


# ---------------------------------------------------------------------------
# Dtypes


def f32_to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns, round to nearest, ties to even
    (NaN stays a quiet NaN)."""
    u = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    bits = np.where(nan, (u >> 16) | 0x40, rounded)
    return bits.astype("<u2")


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint32) << 16).astype("<u4").view("<f4")


def quantize(x, dtype):
    """The float64 values that @x becomes once stored as @dtype: first
    float32 (as a checkpoint made in float32), then f16/bf16 with
    round-to-nearest-even."""
    x32 = np.asarray(x, dtype=np.float64).astype(np.float32)
    if dtype == "f32":
        return x32.astype(np.float64)
    if dtype == "f16":
        return x32.astype(np.float16).astype(np.float64)
    if dtype == "bf16":
        return bf16_bits_to_f32(f32_to_bf16_bits(x32)).astype(np.float64)
    raise ValueError("unknown dtype %r" % dtype)


ST_DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4,
            "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def encode(x, dtype):
    """(safetensors dtype, little-endian bytes) for float values @x."""
    x32 = np.asarray(x, dtype=np.float64).astype(np.float32)
    if dtype == "f32":
        return "F32", x32.astype("<f4").tobytes()
    if dtype == "f16":
        return "F16", x32.astype("<f2").tobytes()
    if dtype == "bf16":
        return "BF16", f32_to_bf16_bits(x32).tobytes()
    raise ValueError("unknown dtype %r" % dtype)


# ---------------------------------------------------------------------------
# safetensors


def write_safetensors(path, tensors, metadata=None):
    """Writes @tensors, a dict name -> (st_dtype, shape, bytes), as
    safetensors. Like the Rust implementation, tensors are laid out by
    decreasing element size then name, so every tensor is aligned to its
    element size, and the header is padded with spaces to a multiple of 8."""
    order = sorted(tensors, key=lambda n: (-ST_SIZES[tensors[n][0]], n))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name in order:
        st_dtype, shape, data = tensors[name]
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        assert n * ST_SIZES[st_dtype] == len(data), name
        header[name] = {"dtype": st_dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(tensors[name][2])
    os.replace(tmp, path)
    return offset


def read_safetensors(path):
    """name -> float64 array (float dtypes), bool/int arrays as stored;
    and the metadata dict."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    np_dtypes = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8",
                 "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1",
                 "BOOL": "?"}
    for name, info in header.items():
        start, end = info["data_offsets"]
        raw = blob[base + start:base + end]
        shape = tuple(info["shape"])
        if info["dtype"] == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
        else:
            arr = np.frombuffer(raw, dtype=np_dtypes[info["dtype"]])
        arr = arr.reshape(shape)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
        out[name] = arr
    return out, metadata


# ---------------------------------------------------------------------------
# Hugging Face folder


def copy_vocab(vocab_dir, out_dir):
    """GPT-2's tokenizer files, as Hugging Face names them: vocab.json and
    merges.txt (from OpenAI's encoder.json and vocab.bpe, or already so
    named)."""
    for hf_name, openai_name in (("vocab.json", "encoder.json"),
                                 ("merges.txt", "vocab.bpe")):
        src = os.path.join(vocab_dir, hf_name)
        if not os.path.exists(src):
            src = os.path.join(vocab_dir, openai_name)
        if not os.path.exists(src):
            raise FileNotFoundError("no %s or %s in %s"
                                    % (hf_name, openai_name, vocab_dir))
        shutil.copyfile(src, os.path.join(out_dir, hf_name))


def write_hf_checkpoint(out_dir, config, params, dtype="f32", prefix=True,
                        buffers=None, masked_bias=False, n_shards=1,
                        vocab_dir=None):
    """Writes a Hugging Face GPT-2 folder and returns the float64 values
    actually stored (params rounded through @dtype).

    prefix: names under "transformer." (save_pretrained) or bare (as the
      original "gpt2" hub files); lm_head.weight and score.weight never get
      the prefix.
    buffers: None, "bool" or "float": also store h.N.attn.bias, the causal
      mask [1, 1, P, P] older transformers saved, which a loader must ignore.
    masked_bias: also store h.N.attn.masked_bias (a 0-d -1e4).
    n_shards: > 1 writes model-0000i-of-0000n.safetensors and
      model.safetensors.index.json.
    """
    os.makedirs(out_dir, exist_ok=True)
    stored = {k: quantize(v, dtype) for k, v in params.items()}
    tensors = {}
    for name, value in params.items():
        st_dtype, data = encode(value, dtype)
        full = name
        if prefix and name not in ("lm_head.weight", "score.weight"):
            full = "transformer." + name
        tensors[full] = (st_dtype, tuple(value.shape), data)

    p = config["n_positions"]
    mask = np.tril(np.ones((p, p))).reshape(1, 1, p, p)
    for layer in range(config["n_layer"]):
        base = ("transformer." if prefix else "") + "h.%d.attn." % layer
        if buffers == "bool":
            tensors[base + "bias"] = ("BOOL", mask.shape,
                                      mask.astype(np.bool_).tobytes())
        elif buffers == "float":
            st_dtype, data = encode(mask, dtype)
            tensors[base + "bias"] = (st_dtype, mask.shape, data)
        elif buffers is not None:
            raise ValueError("buffers must be None, 'bool' or 'float'")
        if masked_bias:
            st_dtype, data = encode(np.array(-1e4), dtype)
            tensors[base + "masked_bias"] = (st_dtype, (), data)

    # A folder reused with the other layout would hold both; the loader
    # would then pick one we did not mean.
    for fname in os.listdir(out_dir):
        if fname.startswith("model") and (fname.endswith(".safetensors")
                                          or fname.endswith(".index.json")):
            os.remove(os.path.join(out_dir, fname))

    metadata = {"format": "pt"}
    if n_shards <= 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"),
                          tensors, metadata)
    else:
        names = sorted(tensors)
        total = sum(len(t[2]) for t in tensors.values())
        weight_map = {}
        chunk = -(-len(names) // n_shards)
        for i in range(n_shards):
            fname = "model-%05d-of-%05d.safetensors" % (i + 1, n_shards)
            part = {n: tensors[n] for n in names[i * chunk:(i + 1) * chunk]}
            write_safetensors(os.path.join(out_dir, fname), part, metadata)
            for n in part:
                weight_map[n] = fname
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        with open(os.path.join(out_dir, "model.safetensors.index.json"),
                  "w") as f:
            json.dump(index, f, indent=2, sort_keys=True)
            f.write("\n")

    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    if vocab_dir is not None:
        copy_vocab(vocab_dir, out_dir)
    return stored


def load_hf_checkpoint(model_dir):
    """Reads a folder written above (or by transformers) back into
    (config, canonical float64 params), dropping the attention buffers."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    params = {}
    for fname in files:
        tensors, _ = read_safetensors(os.path.join(model_dir, fname))
        for name, value in tensors.items():
            if name.startswith("transformer."):
                name = name[len("transformer."):]
            if name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
                continue
            if name in params:
                raise ValueError("tensor %s stored twice" % name)
            params[name] = value
    return config, params


# ---------------------------------------------------------------------------
# Backward pass (float64), written from the math
#
# Manual reverse-mode differentiation of the forward above. Every step keeps
# what its backward needs; the backward walks the steps in reverse:
#   LayerNorm   y = xhat * w + b, xhat = (x - mean) * r, r = 1/sqrt(var + eps)
#               dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
#   attention   S = q k^T / sqrt(hd) (causal), P = softmax(S), z = P v
#               dS = P * (dP - sum(dP * P, row))
#   gelu_new    g = x/2 (1 + tanh u), u = c (x + 0.044715 x^3)
#               g' = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3*0.044715 x^2)
#   tied head   logits = ln_f @ wte^T: d wte += dlogits^T @ ln_f


def _ln_fwd(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    r = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)
    xhat = xc * r
    return xhat * w + b, (xhat, r, w)


def _ln_bwd(dy, cache):
    xhat, r, w = cache
    dxhat = dy * w
    dx = r * (dxhat - dxhat.mean(axis=-1, keepdims=True)
              - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def _gelu_grad(x):
    c = math.sqrt(2.0 / math.pi)
    th = np.tanh(c * (x + 0.044715 * x ** 3))
    return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * c * (1.0 + 3 * 0.044715 * x * x)


def _head(p, config):
    if config.get("tie_word_embeddings", True):
        return p["wte.weight"]
    return p["lm_head.weight"]


def forward_cached(params, config, tokens, h_in=None, start_layer=0):
    """Float64 forward keeping what the backward needs.

    h_in: when given, the residual stream [T, D] entering block
    @start_layer (then tokens only fix T); otherwise the input embeddings
    wte[tokens] + wpe[0..T-1]. Returns (logits [T, V], caches).
    """
    check_config(config)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    tokens = np.asarray(tokens, dtype=np.int64)
    t = len(tokens)
    d = config["n_embd"]
    nh = config["n_head"]
    hd = d // nh
    eps = float(config.get("layer_norm_epsilon", 1e-5))
    if h_in is None:
        h = p["wte.weight"][tokens] + p["wpe.weight"][np.arange(t)]
    else:
        h = np.array(h_in, dtype=np.float64)
    causal = np.tril(np.ones((t, t), dtype=bool))
    blocks = []
    for layer in range(start_layer, config["n_layer"]):
        pre = "h.%d." % layer
        c = {"layer": layer}
        a, c["ln_1"] = _ln_fwd(h, p[pre + "ln_1.weight"], p[pre + "ln_1.bias"], eps)
        c["a"] = a
        qkv = a @ p[pre + "attn.c_attn.weight"] + p[pre + "attn.c_attn.bias"]
        q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(t, nh, hd).transpose(1, 0, 2)
                   for i in range(3))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.where(causal[None], s, -np.inf)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        pat = s / s.sum(axis=-1, keepdims=True)
        z = (pat @ v).transpose(1, 0, 2).reshape(t, d)
        c.update(q=q, k=k, v=v, pat=pat, z=z)
        h = h + z @ p[pre + "attn.c_proj.weight"] + p[pre + "attn.c_proj.bias"]
        m, c["ln_2"] = _ln_fwd(h, p[pre + "ln_2.weight"], p[pre + "ln_2.bias"], eps)
        c["m"] = m
        fc = m @ p[pre + "mlp.c_fc.weight"] + p[pre + "mlp.c_fc.bias"]
        post = gelu_new(fc)
        c.update(fc=fc, post=post)
        h = h + post @ p[pre + "mlp.c_proj.weight"] + p[pre + "mlp.c_proj.bias"]
        blocks.append(c)
    hf, ln_f = _ln_fwd(h, p["ln_f.weight"], p["ln_f.bias"], eps)
    logits = hf @ _head(p, config).T
    return logits, {"p": p, "tokens": tokens, "blocks": blocks, "hf": hf,
                    "ln_f": ln_f, "config": config}


def backward(caches, d_logits):
    """Backpropagates d_logits [T, V] through forward_cached's graph.

    Returns (grads, d_resid_pre): grads maps every canonical parameter
    name to d/d(param) (zero for parameters upstream of the start layer
    when the forward started later), d_resid_pre [n_blocks, T, D] the
    gradient w.r.t. the residual stream entering each block run (entry 0 is
    the gradient w.r.t. the input embeddings when the forward began there).
    """
    p, config = caches["p"], caches["config"]
    d = config["n_embd"]
    nh = config["n_head"]
    hd = d // nh
    t = len(caches["tokens"])
    g = {k: np.zeros_like(v) for k, v in p.items()}
    head = _head(p, config)
    head_name = "wte.weight" if head is p["wte.weight"] else "lm_head.weight"
    g[head_name] += d_logits.T @ caches["hf"]
    dhf = d_logits @ head
    dh, g["ln_f.weight"], g["ln_f.bias"] = _ln_bwd(dhf, caches["ln_f"])
    d_pre = []
    for c in reversed(caches["blocks"]):
        pre = "h.%d." % c["layer"]
        # MLP: h_out = h_mid + gelu(m @ Wfc + bfc) @ Wp + bp
        g[pre + "mlp.c_proj.weight"] = c["post"].T @ dh
        g[pre + "mlp.c_proj.bias"] = dh.sum(axis=0)
        dfc = (dh @ p[pre + "mlp.c_proj.weight"].T) * _gelu_grad(c["fc"])
        g[pre + "mlp.c_fc.weight"] = c["m"].T @ dfc
        g[pre + "mlp.c_fc.bias"] = dfc.sum(axis=0)
        dm = dfc @ p[pre + "mlp.c_fc.weight"].T
        dx, g[pre + "ln_2.weight"], g[pre + "ln_2.bias"] = _ln_bwd(dm, c["ln_2"])
        dh = dh + dx
        # attention: h_mid = h_in + z @ Wo + bo
        g[pre + "attn.c_proj.weight"] = c["z"].T @ dh
        g[pre + "attn.c_proj.bias"] = dh.sum(axis=0)
        dz = (dh @ p[pre + "attn.c_proj.weight"].T).reshape(t, nh, hd).transpose(1, 0, 2)
        pat, q, k, v = c["pat"], c["q"], c["k"], c["v"]
        dpat = dz @ v.transpose(0, 2, 1)                  # [H, T, T]
        dv = pat.transpose(0, 2, 1) @ dz                  # [H, T, hd]
        ds = pat * (dpat - (dpat * pat).sum(axis=-1, keepdims=True))
        ds = ds / math.sqrt(hd)                           # masked entries: pat = 0
        dq = ds @ k
        dk = ds.transpose(0, 2, 1) @ q
        dqkv = np.concatenate([x.transpose(1, 0, 2).reshape(t, d)
                               for x in (dq, dk, dv)], axis=1)
        g[pre + "attn.c_attn.weight"] = c["a"].T @ dqkv
        g[pre + "attn.c_attn.bias"] = dqkv.sum(axis=0)
        da = dqkv @ p[pre + "attn.c_attn.weight"].T
        dx, g[pre + "ln_1.weight"], g[pre + "ln_1.bias"] = _ln_bwd(da, c["ln_1"])
        dh = dh + dx
        d_pre.append(dh.copy())
    d_pre.reverse()
    if not caches["blocks"]:
        d_pre = [dh.copy()]
    if caches["blocks"] and caches["blocks"][0]["layer"] == 0:
        tokens = caches["tokens"]
        np.add.at(g["wte.weight"], tokens, dh)
        g["wpe.weight"][:t] += dh
    return g, np.stack(d_pre)


def loss_d_logits(logits, tokens):
    """Mean next-token cross-entropy over positions 0..T-2 (natural log)
    and its gradient w.r.t. the logits."""
    t = len(tokens)
    if t < 2:
        raise ValueError("the loss needs at least two tokens")
    targets = np.asarray(tokens[1:], dtype=np.int64)
    z = logits[:-1]
    m = z.max(axis=-1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=-1))
    loss = float(np.mean(lse - z[np.arange(t - 1), targets]))
    d = np.zeros_like(logits)
    d[:-1] = np.exp(z - lse[:, None])
    d[np.arange(t - 1), targets] -= 1.0
    d[:-1] /= (t - 1)
    return loss, d


def loss_and_grads(params, config, tokens):
    """(loss, grads by canonical parameter name) of the mean next-token
    cross-entropy."""
    logits, caches = forward_cached(params, config, tokens)
    loss, d_logits = loss_d_logits(logits, tokens)
    grads, _ = backward(caches, d_logits)
    return loss, grads


def logit_diff_d_logits(t, vocab, pos, a, b):
    d = np.zeros((t, vocab))
    d[pos, a] += 1.0
    if b >= 0:
        d[pos, b] -= 1.0
    return d


def logit_diff_grads(params, config, tokens, pos, a, b=-1):
    """Gradient of logits[pos][a] - logits[pos][b] (b = -1: logits[pos][a]
    alone) w.r.t. the input embeddings [T, D] and the residual stream
    entering each block [L, T, D]; returns (value, d_embed, d_resid_pre)."""
    logits, caches = forward_cached(params, config, tokens)
    t, v = logits.shape
    value = logits[pos, a] - (logits[pos, b] if b >= 0 else 0.0)
    _, d_pre = backward(caches, logit_diff_d_logits(t, v, pos, a, b))
    return float(value), d_pre[0].copy(), d_pre
