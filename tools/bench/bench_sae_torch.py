#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench_sae_torch.py: the PyTorch (CPU) side of the SAE training benchmark.

The same SAE and data as bench-sae.c: the classic L1 SAE (d_in 768, 4x
width, batch 512), x' = x - b_dec, z = ReLU(x' W_enc + b_enc),
x^ = z W_dec + b_dec, loss = mean_b ||x^ - x||^2 + l1 * mean_b sum_j z,
torch.optim.Adam, decoder rows renormalised after every step; synthetic
activations made of 16 random unit directions per token. Prints JSON lines
like bench-sae. Run with OMP_WAIT_POLICY=PASSIVE (tools/bench/run.sh sae).
"""
import argparse
import json
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-in", type=int, default=768)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--l1", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    d, ds, B = a.d_in, a.d_in * a.width, a.batch
    rng = np.random.default_rng(42)
    dirs = rng.random((ds, d), dtype=np.float32) - 0.5
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    n = 64 * B
    data = (0.05 * (rng.random((n, d), dtype=np.float32) - 0.5))
    for _ in range(16):
        j = rng.integers(0, ds, n)
        c = (1 + 2 * rng.random(n)).astype(np.float32)
        data += c[:, None] * dirs[j]
    data = torch.from_numpy(data)

    g = torch.Generator().manual_seed(1)
    W_dec = torch.randn(ds, d, generator=g)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    W_dec = W_dec.requires_grad_()
    W_enc = W_dec.detach().t().clone().requires_grad_()
    b_enc = torch.zeros(ds, requires_grad=True)
    b_dec = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([W_enc, W_dec, b_enc, b_dec], lr=a.lr)
    pos = 0
    for phase, steps in (("warmup", a.warmup), ("measured", a.steps)):
        t0 = time.perf_counter()
        for _ in range(steps):
            x = data[pos:pos + B]
            pos = (pos + B) % n
            z = torch.relu((x - b_dec) @ W_enc + b_enc)
            xh = z @ W_dec + b_dec
            mse = ((xh - x) ** 2).sum(-1).mean()
            loss = mse + a.l1 * z.sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                W_dec /= W_dec.norm(dim=1, keepdim=True)
        el = time.perf_counter() - t0
        with torch.no_grad():
            l0 = (z > 0).float().sum(-1).mean().item()
            var = ((x - x.mean(0)) ** 2).sum(-1).mean().item()
        print(json.dumps({"impl": "pytorch", "phase": phase, "steps": steps, "seconds": round(el, 3),
                          "acts_per_s": round(steps * B / max(el, 1e-9)), "l0": round(l0, 1),
                          "ev": round(1 - mse.item() / var, 3), "mse": round(mse.item(), 4),
                          "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
