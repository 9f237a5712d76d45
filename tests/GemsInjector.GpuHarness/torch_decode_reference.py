"""PyTorch figures for the harness cases torch_reference_bench.py does not time: decode GEMVs, small-M products and
scaled-dot-product attention (prefill and decode), on the same card in the same run as the harness.

Writes $OUT/torch-extra.csv with the harness's own labels (op, dtype, shape as M x N x K for mm / mm_tb: [M, K] times
a [K, N] weight; batch x q/kv heads x Lq x Lk x d for sdpa) so compare.py can put them beside our rows. Timed with
triton.testing.do_bench (median of device events, L2 cleared between runs), like the anchor script.
"""
import csv
import os

import torch
import torch.nn.functional as F
import triton

dev = "cuda"
torch.manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = False
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def bench(fn):
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def products(name, dt):
    rows = []
    esz = torch.tensor([], dtype=dt).element_size()
    # (M, N, K) in the harness's order and label: 16 x 11008 x 4096 is [16, 4096] times a [4096, 11008] weight (an up
    # projection), 16 x 4096 x 11008 the down projection.
    for m, n, k in ((1, 4096, 4096), (2, 4096, 4096), (4, 4096, 4096), (8, 4096, 4096), (12, 11008, 4096), (12, 4096, 11008),
                    (16, 11008, 4096), (16, 4096, 11008), (64, 4096, 4096), (256, 4096, 4096), (4096, 4096, 4096)):
        a = torch.randn(m, k, device=dev, dtype=dt)
        b_kn = torch.randn(k, n, device=dev, dtype=dt)
        b_nk = torch.randn(n, k, device=dev, dtype=dt)
        work = (m * k + k * n + m * n) * esz
        flops = 2.0 * m * k * n
        rows.append(("mm", name, f"{m}x{n}x{k}", bench(lambda: torch.mm(a, b_kn)), work, flops))
        rows.append(("mm_tb", name, f"{m}x{n}x{k}", bench(lambda: F.linear(a, b_nk)), work, flops))
    return rows


def attention(name, dt):
    rows = []
    esz = torch.tensor([], dtype=dt).element_size()
    h, kh = 32, 8
    for batch, lq, lk, causal, d in ((1, 4096, 4096, True, 128), (16, 1, 4096, False, 128), (1, 1, 4096, False, 128), (1, 4, 4096, False, 128),
                                     (1, 16, 4096, False, 128), (1, 64, 4096, False, 128), (1, 4096, 4096, True, 64), (1, 256, 4096, False, 128), (1, 256, 4096, False, 64),
                                     (1, 16, 4096, False, 64), (1, 64, 4096, False, 64)):
        q = torch.randn(batch, h, lq, d, device=dev, dtype=dt)
        k = torch.randn(batch, kh, lk, d, device=dev, dtype=dt)
        v = torch.randn(batch, kh, lk, d, device=dev, dtype=dt)
        try:
            fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
            fn()
            how = "enable_gqa"
        except Exception:
            ke, ve = k.repeat_interleave(h // kh, 1), v.repeat_interleave(h // kh, 1)
            fn = lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=causal)
            how = "expanded kv"
        pairs = lq * lk / 2 if causal else lq * lk
        flops = 4.0 * batch * h * pairs * d
        work = (2 * batch * kh * lk * d + 2 * batch * h * lq * d) * esz
        op = "sdpa_causal" if causal else "sdpa"
        rows.append((op, name, f"{batch}x{h}/{kh}x{lq}x{lk}x{d}", bench(fn), work, flops, how))
    return rows


def main():
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__, flush=True)
    table = []
    for name, dt in DTYPES.items():
        for r in products(name, dt) + attention(name, dt):
            op, dtype, shape, ms, work, flops = r[:6]
            note = r[6] if len(r) > 6 else ""
            row = dict(op=op, dtype=dtype, shape=shape, torch_ms=ms, gbps=work / ms / 1e6, tflops=flops / ms / 1e9, note=note)
            table.append(row)
            print(f"{op:12s} {dtype:9s} {shape:22s} {ms:9.4f} ms {row['gbps']:8.1f} GB/s {row['tflops']:8.2f} TFLOP/s {note}",
                  flush=True)
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "torch-extra.csv"), "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(table[0].keys()))
            w.writeheader()
            w.writerows(table)


if __name__ == "__main__":
    main()
