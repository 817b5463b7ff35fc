#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench_torch.py: the PyTorch (CPU) side of tools/bench.

A plain GPT-2 written for the benchmark (no `transformers`): it reads the
same Hugging Face folder Glassbox reads (config.json, model.safetensors,
parsed by hand: 8-byte header length, JSON header, raw little-endian data),
runs GPT-2's forward pass (Conv1D weights [in, out], gelu tanh, causal
attention, lm_head tied to wte) with a KV cache for decoding, and measures
what bench-engine measures, under torch.inference_mode():

  prefill128, prefill128_attn, prefill512, prefill512_attn  (ms)
  decode     (ms/token; 64 greedy tokens after a 16-token prompt, one token
              at a time through the KV cache; products through F.linear /
              addmm, as a plain nn.Module does)
  decode_mv  (the same, with the one-row products through torch.addmv /
              torch.mv: OpenBLAS's matrix-vector path)
  peak RSS of each (each scenario runs in its own process)

It runs every scenario under two thread settings, both with
torch.set_num_threads(N) and OPENBLAS_NUM_THREADS=N (Debian's torch calls
the system OpenBLAS for its matrix products): OMP_WAIT_POLICY=PASSIVE, and
libgomp's default wait policy. It reports both and, per metric, the better.

--check runs `glassbox-cli run --dump` on a text first and compares its
logits with this module's (relative error = max |a - b| / max |b|).

Output: JSON lines on stdout (starting with '{'), then a table ('#').
Run with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
"""

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

SCENARIOS = ["load", "prefill128", "prefill128-attn", "prefill512", "prefill512-attn", "decode", "decode-mv"]
POLICIES = {"passive": "PASSIVE", "default": None}


# --------------------------------------------------------------- the model

def load_safetensors(path):
    """{name: float32 tensor} from a safetensors file (F32, F16, BF16)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        # One copy of the data, in a writable buffer (torch.frombuffer warns
        # on read-only ones); the tensors below are views of it.
        data = bytearray(os.fstat(f.fileno()).st_size - 8 - n)
        got = f.readinto(memoryview(data))
        assert got == len(data), path
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        shape = info["shape"]
        dtype = info["dtype"]
        count = int(np.prod(shape)) if shape else 1
        if dtype == "F32":
            t = torch.frombuffer(data, dtype=torch.float32, count=count, offset=begin)
        elif dtype == "F16":
            t = torch.frombuffer(data, dtype=torch.float16, count=count, offset=begin).float()
        elif dtype == "BF16":
            t = torch.frombuffer(data, dtype=torch.bfloat16, count=count, offset=begin).float()
        else:
            continue  # e.g. the bool/uint8 attn.bias buffers of old checkpoints
        assert (end - begin) == count * {"F32": 4, "F16": 2, "BF16": 2}[dtype], name
        out[name] = t.reshape(shape)
    return out


class GPT2:
    """GPT-2 as Hugging Face's GPT2LMHeadModel computes it, float32."""

    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        self.L = cfg["n_layer"]
        self.H = cfg["n_head"]
        self.D = cfg["n_embd"]
        self.P = cfg.get("n_positions", cfg.get("n_ctx", 1024))
        self.V = cfg["vocab_size"]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        act = cfg.get("activation_function", "gelu_new")
        self.gelu_approx = "none" if act == "gelu" else "tanh"
        raw = load_safetensors(os.path.join(folder, "model.safetensors"))
        w = {}
        for k, v in raw.items():
            w[k[len("transformer."):] if k.startswith("transformer.") else k] = v
        self.w = w
        self.wte = w["wte.weight"]
        self.wpe = w["wpe.weight"]
        self.lm_head = w.get("lm_head.weight", self.wte)  # tied when absent
        self.blocks = []
        for i in range(self.L):
            p = "h.%d." % i
            b = {k: w[p + n] for k, n in [
                ("ln1_w", "ln_1.weight"), ("ln1_b", "ln_1.bias"),
                ("qkv_w", "attn.c_attn.weight"), ("qkv_b", "attn.c_attn.bias"),
                ("proj_w", "attn.c_proj.weight"), ("proj_b", "attn.c_proj.bias"),
                ("ln2_w", "ln_2.weight"), ("ln2_b", "ln_2.bias"),
                ("fc_w", "mlp.c_fc.weight"), ("fc_b", "mlp.c_fc.bias"),
                ("out_w", "mlp.c_proj.weight"), ("out_b", "mlp.c_proj.bias")]}
            # Conv1D keeps [in, out]; the [out, in] views (no copy) are what
            # F.linear and torch.addmv take.
            for n in ("qkv", "proj", "fc", "out"):
                b[n + "_wt"] = b[n + "_w"].t()
            self.blocks.append(b)
        self.lnf_w = w["ln_f.weight"]
        self.lnf_b = w["ln_f.bias"]
        self.n_params = sum(t.numel() for k, t in w.items())

    def new_cache(self, n):
        hd = self.D // self.H
        return {"n": 0, "k": [torch.empty(self.H, n, hd) for _ in range(self.L)],
                "v": [torch.empty(self.H, n, hd) for _ in range(self.L)]}

    @staticmethod
    def _linear(x, w_t, b, mv):
        # x [T, in], w_t [out, in] (a transposed view of Conv1D's [in, out])
        if mv and x.shape[0] == 1:
            return torch.addmv(b, w_t, x[0]).unsqueeze(0)
        return F.linear(x, w_t, b)

    def forward(self, tokens, cache=None, logits="last", record_attn=False, mv=False):
        """tokens: LongTensor [T]. Returns (logits [T or 1, V], patterns)."""
        T = tokens.shape[0]
        D, H = self.D, self.H
        hd = D // H
        pos0 = cache["n"] if cache is not None else 0
        N = pos0 + T
        x = self.wte[tokens] + self.wpe[pos0:N]
        scale = 1.0 / (hd ** 0.5)
        mask = None
        if T > 1:
            mask = torch.ones(T, N, dtype=torch.bool).triu_(pos0 + 1)  # True above the causal diagonal
        patterns = []
        for li, b in enumerate(self.blocks):
            h = F.layer_norm(x, (D,), b["ln1_w"], b["ln1_b"], self.eps)
            qkv = self._linear(h, b["qkv_wt"], b["qkv_b"], mv)
            q, k, v = qkv.split(D, dim=1)
            q = q.view(T, H, hd).transpose(0, 1)  # [H, T, hd]
            k = k.view(T, H, hd).transpose(0, 1)
            v = v.view(T, H, hd).transpose(0, 1)
            if cache is not None:
                cache["k"][li][:, pos0:N] = k
                cache["v"][li][:, pos0:N] = v
                k = cache["k"][li][:, :N]
                v = cache["v"][li][:, :N]
            s = torch.matmul(q, k.transpose(1, 2)).mul_(scale)  # [H, T, N]
            if mask is not None:
                s.masked_fill_(mask, float("-inf"))
            pr = torch.softmax(s, dim=-1)
            if record_attn:
                patterns.append(pr)
            z = torch.matmul(pr, v).transpose(0, 1).reshape(T, D)
            x = x + self._linear(z, b["proj_wt"], b["proj_b"], mv)
            h = F.layer_norm(x, (D,), b["ln2_w"], b["ln2_b"], self.eps)
            f = F.gelu(self._linear(h, b["fc_wt"], b["fc_b"], mv), approximate=self.gelu_approx)
            x = x + self._linear(f, b["out_wt"], b["out_b"], mv)
        if cache is not None:
            cache["n"] = N
        if logits == "none":
            return None, patterns
        if logits == "last":
            x = x[-1:]
        h = F.layer_norm(x, (D,), self.lnf_w, self.lnf_b, self.eps)
        if mv and h.shape[0] == 1:
            out = torch.mv(self.lm_head, h[0]).unsqueeze(0)
        else:
            out = F.linear(h, self.lm_head)
        return out, patterns


# ---------------------------------------------------------------- helpers

def make_tokens(n, n_vocab):
    """The ids bench-engine uses (same 64-bit LCG)."""
    s = 0x9E3779B97F4A7C15
    out = []
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out.append((s >> 33) % n_vocab)
    return torch.tensor(out, dtype=torch.long)


def proc_mb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    if key == "VmHWM:":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return None


def emit(name, **fields):
    obj = {"suite": "pytorch", "name": name}
    obj.update(fields)
    print(json.dumps(obj), flush=True)


def best_of(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times), float(np.median(times))


def prefill_flops(m, T):
    D, F_, L = m.D, 4 * m.D, m.L
    return L * (2.0 * T * D * (3 * D + D + 2 * F_) + 4.0 * T * T * D) + 2.0 * D * m.V


# --------------------------------------------------------------- scenarios

def run_scenario(args, name):
    common = {"threads": torch.get_num_threads(), "policy": args.policy_name,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
              "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "")}
    t0 = time.perf_counter()
    m = GPT2(args.model)
    load_ms = (time.perf_counter() - t0) * 1e3
    rss_load = proc_mb("VmRSS:")
    if name == "load":
        times = [load_ms]
        for _ in range(args.repeats - 1):
            del m
            t0 = time.perf_counter()
            m = GPT2(args.model)
            times.append((time.perf_counter() - t0) * 1e3)
        emit("load", unit="ms", value=min(times), median=float(np.median(times)), rss_after_load_mb=rss_load,
             n_params=m.n_params,
             torch=torch.__version__, **common)
        return
    with torch.inference_mode():
        if name.startswith("prefill"):
            T = int(name[len("prefill"):].split("-")[0])
            attn = name.endswith("-attn")
            toks = make_tokens(T, m.V)
            best, med = best_of(lambda: m.forward(toks, logits="last", record_attn=attn), args.repeats)
            gf = prefill_flops(m, T) * 1e-9
            emit(name.replace("-", "_"), unit="ms", value=best, median=med, repeats=args.repeats, tokens=T,
                 gflop=gf, gflops_achieved=gf / (best * 1e-3), peak_rss_mb=proc_mb("VmHWM:"),
                 rss_after_load_mb=rss_load, **common)
            return
        if name.startswith("decode"):
            mv = name == "decode-mv"
            P, N = args.prompt_tokens, args.new_tokens
            prompt = make_tokens(P, m.V)
            per_tok, pre, last = [], [], None
            for r in range(args.repeats + 1):
                cache = m.new_cache(P + N)
                t0 = time.perf_counter()
                logits, _ = m.forward(prompt, cache=cache, logits="last", mv=mv)
                t1 = time.perf_counter()
                for _ in range(N):
                    nxt = int(torch.argmax(logits[0]))
                    last = nxt
                    logits, _ = m.forward(torch.tensor([nxt]), cache=cache, logits="last", mv=mv)
                t2 = time.perf_counter()
                if r > 0:
                    pre.append((t1 - t0) * 1e3)
                    per_tok.append((t2 - t1) * 1e3 / N)
            best = min(per_tok)
            wbytes = 4.0 * (m.L * (12 * m.D * m.D + 13 * m.D) + 2 * m.D + m.V * m.D)
            emit(name.replace("-", "_"), unit="ms/token", value=best, median=float(np.median(per_tok)),
                 repeats=args.repeats, prompt_tokens=P, new_tokens=N, prompt_ms=min(pre),
                 tokens_per_s=1e3 / best, weight_gb_per_s=wbytes / (best * 1e6), last_token=last,
                 peak_rss_mb=proc_mb("VmHWM:"), rss_after_load_mb=rss_load, **common)
            return
    sys.exit("bench_torch.py: unknown scenario %r" % name)


def check_logits(args):
    """Compares this module's logits with `glassbox-cli run --dump`'s."""
    tmp = tempfile.mkdtemp(prefix="gb-bench-check-")
    try:
        subprocess.run([args.cli, "run", "--model", args.model, "--text", args.check_text, "--dump", tmp],
                       check=True, stdout=subprocess.DEVNULL)
        gb = np.load(os.path.join(tmp, "logits.npy"))
        with open(os.path.join(tmp, "tokens.json")) as f:
            ids = json.load(f)["tokens"]
        gb_attn = np.load(os.path.join(tmp, "attention.npy"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    m = GPT2(args.model)
    with torch.inference_mode():
        toks = torch.tensor(ids, dtype=torch.long)
        ref, pats = m.forward(toks, logits="all", record_attn=True)
        ref = ref.numpy().astype(np.float64)
        attn = torch.stack(pats).numpy()
        # KV-cached decoding must give the same last-row logits as one pass.
        cache = m.new_cache(len(ids))
        m.forward(toks[:-1], cache=cache, logits="none")
        step, _ = m.forward(toks[-1:], cache=cache, logits="last", mv=True)
        step = step.numpy()[0]
    rel = float(np.max(np.abs(gb - ref)) / np.max(np.abs(ref)))
    attn_err = float(np.max(np.abs(gb_attn - attn)))
    kv_rel = float(np.max(np.abs(step - ref[-1])) / np.max(np.abs(ref[-1])))
    same_argmax = bool(np.all(gb.argmax(axis=1) == ref.argmax(axis=1)))
    ok = rel < args.check_tol and attn_err < args.check_tol
    emit("check", tokens=len(ids), logits_max_rel_err=rel, attention_max_abs_err=attn_err,
         kv_decode_rel_err=kv_rel, same_argmax=same_argmax, tol=args.check_tol, ok=ok)
    return ok


# ------------------------------------------------------------------- main

def run_child(args, scenario, policy, threads):
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    env.pop("OMP_WAIT_POLICY", None)
    if POLICIES[policy]:
        env["OMP_WAIT_POLICY"] = POLICIES[policy]
    cmd = [sys.executable, os.path.abspath(__file__), "--model", args.model, "--only", scenario,
           "--policy-name", policy, "--threads", str(threads), "--repeats", str(args.repeats),
           "--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens)]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    objs = []
    for line in out.splitlines():
        if line.startswith("{"):
            print(line, flush=True)
            objs.append(json.loads(line))
    return objs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="GPT-2 folder (Hugging Face layout)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--only", choices=SCENARIOS, help="one scenario, in this process")
    ap.add_argument("--policies", default="passive,default",
                    help="OMP wait policies to try: passive, default (comma-separated)")
    ap.add_argument("--policy-name", default="", help=argparse.SUPPRESS)
    ap.add_argument("--check", action="store_true", help="compare logits with glassbox-cli first")
    ap.add_argument("--check-only", action="store_true", help="only the logits comparison")
    ap.add_argument("--check-text", default="The quick brown fox jumps over the lazy dog, and then the "
                    "compliance officer asked why the loan application was rejected.")
    ap.add_argument("--check-tol", type=float, default=1e-4)
    ap.add_argument("--cli", default=None, help="glassbox-cli (default: build/app/glassbox-cli)")
    ap.add_argument("--json", action="store_true", help="JSON lines only, no table")
    args = ap.parse_args()

    if args.only:
        torch.set_num_threads(args.threads)
        run_scenario(args, args.only)
        return 0

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args.cli = args.cli or os.path.join(root, "build", "app", "glassbox-cli")
    emit("env", torch=torch.__version__, numpy=np.__version__, threads=args.threads,
         policies=args.policies, blas=torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0],
         cpus=os.cpu_count(), repeats=args.repeats)
    if args.check or args.check_only:
        ok = check_logits(args)
        if args.check_only:
            return 0 if ok else 1
        if not ok:
            print("bench_torch.py: warning: logits differ from Glassbox's beyond %g" % args.check_tol,
                  file=sys.stderr)

    results = {}  # (name, policy) -> obj
    for scenario in SCENARIOS:
        for policy in args.policies.split(","):
            for o in run_child(args, scenario, policy, args.threads):
                results[(o["name"], policy)] = o
    # Per metric, the better policy.
    names = []
    for (n, _p) in results:
        if n not in names:
            names.append(n)
    for n in names:
        cands = [o for (k, _p), o in results.items() if k == n]
        b = min(cands, key=lambda o: o["value"])
        emit(n + "@best", **{k: v for k, v in b.items() if k not in ("suite", "name")})
    if not args.json:
        pols = args.policies.split(",")
        print("# PyTorch %s, OpenBLAS via libblas, torch.set_num_threads(%d), OPENBLAS_NUM_THREADS=%d, best of %d"
              % (torch.__version__, args.threads, args.threads, args.repeats))
        print("# %-22s %s" % ("metric", "".join("%16s" % ("OMP " + p) for p in pols)) + "   peak RSS MiB")
        for n in names:
            row = "# %-22s" % n
            for p in pols:
                o = results.get((n, p))
                row += "%16s" % ("%.2f %s" % (o["value"], o["unit"]) if o else "-")
            rss = [results[(n, p)].get("peak_rss_mb") for p in pols if (n, p) in results]
            rss = [r for r in rss if r]
            print(row + ("   %.0f" % min(rss) if rss else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
