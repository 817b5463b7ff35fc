#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/ (committed;
run again only to change them). The seeds are the well-formed and broken
inputs the unit tests use, small enough for the fuzzer to mutate quickly.

usage: /usr/bin/python3 tests/fuzz/make-seeds.py build/app/glassbox-cli"""
import json, os, struct, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
cli = sys.argv[1]


def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(header, data=b"", pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


# --- safetensors: valid files of every dtype, metadata, and broken ones
f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
put("safetensors", "f32-2x3", safetensors({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, f32))
put("safetensors", "f16-bf16-meta", safetensors({
    "__metadata__": {"format": "pt"},
    "a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
    "b": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [4, 8]},
    "c": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]},
    "d": {"dtype": "BOOL", "shape": [0, 4], "data_offsets": [16, 16]},
}, bytes(range(16))))
put("safetensors", "empty-header", safetensors({}))
put("safetensors", "overlap", safetensors({
    "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
    "b": {"dtype": "I8", "shape": [4], "data_offsets": [2, 6]}}, bytes(8)))
put("safetensors", "truncated", safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8)))
put("safetensors", "bad-dtype", safetensors({"w": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)))
put("safetensors", "short", b"\x08\x00\x00")
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([cli, "init-model", "--preset", "tiny", "--seed", "1", "--dtype", "f16", "--output", tmp + "/m"], check=True)
    blob = open(tmp + "/m/model.safetensors", "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    # The tiny model's real header over a data section cut to nothing: keeps
    # the seed small, and the loader's names and shapes are in it.
    put("safetensors", "tiny-model-header", blob[:8 + n])
    names = [k for k in header if k != "__metadata__"]
    tiny_config = open(tmp + "/m/config.json").read()

# --- config.json
put("config", "tiny", tiny_config)
put("config", "loan-officer", open(os.path.join(root, "data/models/loan-officer/config.json")).read())
put("config", "gpt2-hub", json.dumps({
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
    "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": None,
    "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
    "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257}, indent=2))
put("config", "classifier", json.dumps({
    "model_type": "gpt2", "architectures": ["GPT2ForSequenceClassification"], "n_layer": 1, "n_head": 2,
    "n_embd": 8, "n_positions": 16, "vocab_size": 257, "id2label": {"0": "approve", "1": "reject"},
    "pad_token_id": 256, "tie_word_embeddings": False, "n_inner": 12, "activation_function": "gelu"}))
put("config", "not-gpt2", '{"model_type": "llama", "n_layer": 1}')
put("config", "huge", '{"model_type": "gpt2", "n_layer": 1000000, "n_head": 1, "n_embd": 1, "n_positions": 1, "vocab_size": 1}')

# --- vocab.json NUL merges.txt
with tempfile.TemporaryDirectory() as tmp:
    corpus = tmp + "/c.txt"
    open(corpus, "w").write("the bank approved the loan. the applicant's zip code is 90210. " * 20
                            + "<|endoftext|>Ünïcödé 🙂 text\n\n  spaces ")
    subprocess.run([cli, "train-tokenizer", "--corpus", corpus, "--vocab-size", "300", "--output", tmp + "/bpe", "-q"],
                   check=True)
    put("tokenizer", "trained-300", open(tmp + "/bpe/vocab.json", "rb").read() + b"\0" + open(tmp + "/bpe/merges.txt", "rb").read())
    subprocess.run([cli, "train-tokenizer", "--corpus", corpus, "--vocab-size", "257", "--output", tmp + "/b", "-q"],
                   check=True)
    put("tokenizer", "bytes-only", open(tmp + "/b/vocab.json", "rb").read() + b"\0" + open(tmp + "/b/merges.txt", "rb").read())

# --- text through the demo tokenizer (first byte: bit 0 specials, bit 1 byte tokenizer)
texts = [
    "The bank rejected the loan application because the applicant",
    "Applicant: Maria, 34, zip 90210, income $52,000; requested €12,500.\n\nDecision:",
    "I'm sure they've done it, 'twas what we'd've said. <|endoftext|>Next",
    "日本語のテキスト and Ελληνικά, עברית, العربية 🙂👍🏽 e\u0301",
    "   leading and trailing    \t\r\n  ",
    "x" * 600 + " " + "1234567890" * 20,
]
for i, t in enumerate(texts):
    put("tokenize", "text-%d" % i, bytes([i % 4]) + t.encode())
put("tokenize", "invalid-utf8", b"\x00abc\xff\xfe\xc3(\xed\xa0\x80")
put("tokenize", "ids", b"\x02" + struct.pack("<6i", 0, 255, 256, 4095, -1, 1 << 30))

# --- model.safetensors.index.json for the one-shard tiny model
shard = "model-00001-of-00001.safetensors"
put("model-index", "valid", json.dumps({"metadata": {"total_size": 1},
                                        "weight_map": {k: shard for k in names}}, indent=2))
put("model-index", "escape", json.dumps({"weight_map": {"wte.weight": "../model.safetensors"}}))
put("model-index", "missing-shard", json.dumps({"weight_map": {"wte.weight": "model-00002-of-00002.safetensors"}}))

# --- BPE training text (first byte: vocabulary size - 257, mod 64)
put("bpe-train", "english", b"\x20" + ("the cat sat on the mat; the bat sat. " * 8).encode())
put("bpe-train", "eot", b"\x05" + "a<|endoftext|>aa<|endoftext|>aaa bbb aaa".encode())
put("bpe-train", "unicode", b"\x3f" + "ééé ééé 🙂🙂 🙂 日本 日本語 12 123 1234 ''' 've 've".encode())

# --- trainer_state.json of the target's checkpoint (1 layer, 2 heads, width 8,
# context 16, 257 ids; batch 2 x 8, 50 steps), as gb_trainer_save_checkpoint
# writes it, and the ways it can go wrong
state = {"step": 0, "n_params": 3072,
         "options": "shape 1/2/8/16/257 batch 2 seq 8 steps 50 lr 0.001 min_lr 0.0001 warmup 100 wd 0.1 "
                    "decay_emb 0 betas 0.9 0.99 eps 1e-08 clip 1 seed 1 workers 1", "data": ""}
put("trainer-state", "saved", json.dumps(state))
put("trainer-state", "step-7", json.dumps(dict(state, step=7, data="0123456789abcdef")))
put("trainer-state", "past-the-run", json.dumps(dict(state, step=51)))
put("trainer-state", "other-model", json.dumps(dict(state, n_params=3073)))
put("trainer-state", "other-options", json.dumps(dict(state, options=state["options"].replace("lr 0.001", "lr 0.002"))))
put("trainer-state", "string-step", json.dumps(dict(state, step="7")))
put("trainer-state", "not-object", '[1, 2, {"step": 0}]')
