#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes a random GPT-2 checkpoint in the Hugging Face layout, for tests
and for debugging the loader by hand.

  /usr/bin/python3 tests/reference/make_checkpoint.py --out /tmp/tiny \\
      --dtype bf16 --layers 2 --embd 64 --heads 4 --prefix

  # the float64 reference's activations for some tokens, as .npy files
  # named like glassbox-cli's dump (logits, attention, resid_*, mlp_post,
  # class_logits), to compare with `glassbox-cli run --dump`:
  /usr/bin/python3 tests/reference/make_checkpoint.py --out /tmp/tiny \\
      --tokens 464,2068,7586 --reference-dump /tmp/tiny-ref
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import numpy as np
except ImportError as e:
    sys.exit("make_checkpoint: error: numpy is missing for %s (%s)"
             % (sys.executable, e))

import gpt2_ref as ref  # noqa: E402

# The tensor that --nan poisons.
NAN_TENSOR = "h.0.mlp.c_fc.weight"


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="make_checkpoint",
        description="Random GPT-2 checkpoint in the Hugging Face layout.")
    ap.add_argument("--out", required=True, help="folder to write")
    ap.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embd", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--positions", type=int, default=128)
    ap.add_argument("--vocab-size", type=int, default=50257)
    ap.add_argument("--inner", type=int, default=None,
                    help="n_inner (default: null, i.e. 4 * embd)")
    ap.add_argument("--eps", type=float, default=1e-5,
                    help="layer_norm_epsilon")
    ap.add_argument("--vocab-dir", default=os.environ.get("GLASSBOX_GPT2_VOCAB"),
                    help="folder with encoder.json + vocab.bpe (or vocab.json "
                    "+ merges.txt); default $GLASSBOX_GPT2_VOCAB")
    ap.add_argument("--no-vocab", action="store_true",
                    help="write no tokenizer files")
    ap.add_argument("--prefix", action="store_true",
                    help="names under transformer. (save_pretrained style)")
    ap.add_argument("--classifier", action="store_true",
                    help="GPT2ForSequenceClassification with score.weight")
    ap.add_argument("--labels", default="approved,rejected",
                    help="comma-separated id2label for --classifier")
    ap.add_argument("--untied", action="store_true",
                    help="store lm_head.weight (tie_word_embeddings false)")
    ap.add_argument("--buffers", choices=("bool", "float"), default=None,
                    help="store h.N.attn.bias causal masks")
    ap.add_argument("--masked-bias", action="store_true",
                    help="store h.N.attn.masked_bias")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--nan", action="store_true",
                    help="put a NaN into %s[0, 0]" % NAN_TENSOR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.02)
    ap.add_argument("--attn-std", type=float, default=None,
                    help="c_attn init std (default --std)")
    ap.add_argument("--fc-std", type=float, default=None,
                    help="c_fc init std (default --std)")
    ap.add_argument("--tokens", default=None,
                    help="comma-separated ids for --reference-dump")
    ap.add_argument("--reference-dump", default=None,
                    help="write the float64 reference's activations here")
    args = ap.parse_args(argv)
    if args.embd % args.heads:
        ap.error("--embd must be a multiple of --heads")
    if not args.no_vocab and not args.vocab_dir:
        ap.error("--vocab-dir or $GLASSBOX_GPT2_VOCAB is needed "
                 "(or --no-vocab)")
    if bool(args.tokens) != bool(args.reference_dump):
        ap.error("--tokens and --reference-dump go together")
    return args


def main(argv):
    args = parse_args(argv)
    labels = args.labels.split(",") if args.classifier else []
    id2label = {i: name for i, name in enumerate(labels)}
    config = ref.make_config(
        n_layer=args.layers, n_head=args.heads, n_embd=args.embd,
        n_positions=args.positions, vocab_size=args.vocab_size,
        n_inner=args.inner, layer_norm_epsilon=args.eps,
        id2label=id2label or None, dtype=args.dtype, untied=args.untied)
    params = ref.random_checkpoint(
        config, seed=args.seed, std=args.std, attn_std=args.attn_std,
        fc_std=args.fc_std, n_labels=len(labels), untied=args.untied)
    if args.nan:
        params[NAN_TENSOR][0, 0] = np.nan
    stored = ref.write_hf_checkpoint(
        args.out, config, params, dtype=args.dtype, prefix=args.prefix,
        buffers=args.buffers, masked_bias=args.masked_bias,
        n_shards=args.shards,
        vocab_dir=None if args.no_vocab else args.vocab_dir)
    n_params = sum(v.size for v in stored.values())
    print("wrote %s: %d layers, %d heads, n_embd %d, %s, %d parameters"
          % (args.out, args.layers, args.heads, args.embd, args.dtype,
             n_params))

    if args.reference_dump:
        tokens = [int(t) for t in args.tokens.split(",")]
        out = ref.forward(stored, config, tokens)
        os.makedirs(args.reference_dump, exist_ok=True)
        for name in ("logits", "attention", "resid_pre", "resid_mid",
                     "resid_post", "attn_out", "mlp_post", "mlp_out",
                     "class_logits"):
            if name in out:
                np.save(os.path.join(args.reference_dump, name + ".npy"),
                        out[name])
        with open(os.path.join(args.reference_dump, "tokens.json"), "w") as f:
            json.dump({"tokens": tokens}, f)
            f.write("\n")
        print("wrote float64 reference activations to %s"
              % args.reference_dump)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
