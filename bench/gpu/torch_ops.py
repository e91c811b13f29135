#!/usr/bin/env python3
"""PyTorch reference timings for the GPU side-by-side (bench/gpu/side_by_side.sh).

Each case has exactly the name `flagos bench ops` gives the same op and shape (bench/cases_*.cpp),
so the two JSON files join on the name. Timing matches bench/bench_ops.cpp for devices: CUDA events
around batches of ~1 ms of runs, the median of the batch means, after a warm-up. Inputs are random
(never zeros). A measurement script only: nothing in the product imports it.

  torch_ops.py --json OUT.json [--filter REGEX]      time the torch cases
  torch_ops.py --merge FLAGOS.json TORCH.json        print the side-by-side table
"""
import argparse
import json
import re
import time
import sys


def torch_cases():
    import torch
    import torch.nn.functional as F

    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(1)

    def rnd(shape, dtype, lo=-1.0, hi=1.0):
        return (torch.rand(shape, device=dev, generator=g, dtype=torch.float32) * (hi - lo) + lo).to(dtype)

    f32, bf16, f16 = torch.float32, torch.bfloat16, torch.float16
    cases = {}

    def case(name):
        def deco(make):
            cases[name] = make
            return make
        return deco

    # copy: the bandwidth reference
    @case("copy [16384,8192] f32")
    def _():
        x, y = rnd((16384, 8192), f32), torch.empty(16384, 8192, device=dev)
        return lambda: y.copy_(x)

    # linear / GEMM on Qwen2-7B MLP shapes (TF32 stays off, as in flagos)
    def linear(M, xt, wt):
        x, w = rnd((M, 3584), xt), rnd((18944, 3584), wt)
        return lambda: F.linear(x, w)

    for M in (1, 16, 4096):
        cases[f"linear [{M}x3584]x[18944x3584]^T bf16 x bf16"] = (lambda M=M: linear(M, bf16, bf16))
    for M in (1, 16):
        cases[f"linear [{M}x3584]x[18944x3584]^T f32"] = (lambda M=M: linear(M, f32, f32))

    @case("matmul [4096x3584x18944] bf16")
    def _():
        a, b = rnd((4096, 3584), bf16), rnd((3584, 18944), bf16)
        return lambda: a @ b

    # norms
    for rows, dt, tag in ((4096, f32, "f32"), (4096, bf16, "bf16"), (1, f32, "f32"), (16, f32, "f32"),
                          (1, bf16, "bf16"), (16, bf16, "bf16"), (4096, f16, "f16")):
        def mk(rows=rows, dt=dt):
            x, w = rnd((rows, 3584), dt), rnd((3584,), dt, 0.5, 1.5)
            return lambda: F.rms_norm(x, (3584,), w, 1e-6)
        cases[f"rms_norm [{rows},3584] {tag}"] = mk
    for rows, dt, tag in ((4096, f32, "f32"), (4096, bf16, "bf16"), (16, bf16, "bf16"), (4096, f16, "f16")):
        def mk(rows=rows, dt=dt):
            x, r, w = rnd((rows, 3584), dt), rnd((rows, 3584), dt), rnd((3584,), dt, 0.5, 1.5)

            def run():
                r.add_(x)
                return F.rms_norm(r, (3584,), w, 1e-6)
            return run
        cases[f"add_rms_norm [{rows},3584] {tag}"] = mk

    for dt, tag in ((f32, "f32"), (bf16, "bf16")):
        def mk(dt=dt):
            x, w, b = rnd((4096, 3584), dt), rnd((3584,), dt, 0.5, 1.5), rnd((3584,), dt, -0.5, 0.5)
            return lambda: F.layer_norm(x, (3584,), w, b, 1e-5)
        cases[f"layer_norm [4096,3584] {tag}"] = mk

    # gated activation (unfused in torch)
    for rows, dt, tag in ((16, f32, "f32"), (4096, f32, "f32"), (4096, bf16, "bf16")):
        def mk(rows=rows, dt=dt):
            x = rnd((rows, 2 * 18944), dt, -3, 3)
            return lambda: F.silu(x[:, :18944]) * x[:, 18944:]
        cases[f"silu_and_mul [{rows},37888] {tag}"] = mk

    # softmax
    for shape, dt, tag, op in (((4096, 32000), f32, "f32", "softmax"), ((64, 152064), f32, "f32", "softmax"),
                               ((1, 152064), f32, "f32", "softmax"), ((64, 152064), bf16, "bf16", "softmax"),
                               ((64, 152064), f32, "f32", "log_softmax")):
        def mk(shape=shape, dt=dt, op=op):
            x = rnd(shape, dt, -8, 8)
            fn = torch.softmax if op == "softmax" else torch.log_softmax
            return lambda: fn(x, -1)
        cases[f"{op} [{shape[0]},{shape[1]}] {tag}"] = mk

    # rope (HF style, cos/sin tables precomputed outside the timing)
    for T, dt, tag in ((1, f32, "f32"), (4096, f32, "f32"), (4096, bf16, "bf16")):
        def mk(T=T, dt=dt):
            x = rnd((T, 28, 128), dt)
            inv = 1.0 / (1e6 ** (torch.arange(0, 128, 2, device=dev, dtype=torch.float64) / 128))
            ang = torch.arange(T, device=dev, dtype=torch.float64)[:, None] * inv[None, :]
            ang = torch.cat([ang, ang], -1)
            cos, sin = ang.cos().to(dt)[:, None, :], ang.sin().to(dt)[:, None, :]

            def run():
                rot = torch.cat([-x[..., 64:], x[..., :64]], -1)
                return x * cos + rot * sin
            return run
        cases[f"rope [{T},28,128] {tag}"] = mk

    # attention (SDPA; decode sees every key, so no causal flag there)
    def attn(Tq, Tk, dt, causal):
        q, k, v = rnd((1, 28, Tq, 128), dt), rnd((1, 4, Tk, 128), dt), rnd((1, 4, Tk, 128), dt)
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal and Tq > 1, enable_gqa=True)

    for Tq, Tk, dt, tag, causal in ((1, 4096, f32, "f32", True), (1, 4096, bf16, "bf16", True),
                                    (512, 512, f32, "f32", True), (512, 512, bf16, "bf16", True),
                                    (4096, 4096, bf16, "bf16", True), (4096, 4096, bf16, "bf16", False),
                                    (4096, 4096, f16, "f16", True), (1024, 1024, bf16, "bf16", True),
                                    (512, 512, f32, "f32", False), (4096, 4096, f32, "f32", True)):
        kind = "decode" if Tq == 1 else "prefill"
        cases[f"attention {kind} [B1,Hq28,Hkv4,Tq{Tq},Tk{Tk},D128] {'causal ' if causal else ''}{tag}"] = (
            lambda Tq=Tq, Tk=Tk, dt=dt, causal=causal: attn(Tq, Tk, dt, causal))

    # paged_attention cases: the same bytes as dense SDPA over contiguous K/V (torch has no paged
    # attention); chunked prefill uses a lower-right causal mask (queries are the last Tq positions)
    def dense(B, Tq, Tk, dt):
        q, k, v = rnd((B, 28, Tq, 128), dt), rnd((B, 4, Tk, 128), dt), rnd((B, 4, Tk, 128), dt)
        if Tq == 1:
            return lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        from torch.nn.attention.bias import causal_lower_right
        mask = causal_lower_right(Tq, Tk)
        return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)

    for B in (1, 16):
        cases[f"paged_attention decode [B{B},Hq28,Hkv4,Tk4096,D128,bs16] bf16"] = lambda B=B: dense(B, 1, 4096, bf16)
    cases["paged_attention prefill [B4,Hq28,Hkv4,Tq512,Tk4096,D128,bs16] bf16"] = lambda: dense(4, 512, 4096, bf16)

    # fused sampler: temperature, top-k, top-p, draw (torch ops, no fusion)
    for B in (1, 16):
        def mk(B=B):
            logits = rnd((B, 152064), f32, -10, 10)

            def run():
                v, i = torch.topk(logits / 0.7, 40, -1)
                p = torch.softmax(v, -1)
                c = torch.cumsum(p, -1)
                p = torch.where(c - p >= 0.9, torch.zeros_like(p), p)
                return torch.gather(i, -1, torch.multinomial(p, 1))
            return run
        cases[f"sample [{B},152064] f32 top-k 40 top-p 0.9"] = mk

    @case("sample [1,152064] f32 greedy")
    def _():
        logits = rnd((1, 152064), f32, -10, 10)
        return lambda: torch.argmax(logits, -1)

    @case("embedding [152064x3584] bf16 ids[64]")
    def _():
        table = rnd((152064, 3584), bf16)
        ids = torch.randint(0, 152064, (64,), device=dev, generator=g)
        return lambda: F.embedding(ids, table)

    return cases


def time_cuda(fn):
    import torch
    fn()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def batch(n):
        e0.record()
        for _ in range(n):
            fn()
        e1.record()
        e1.synchronize()
        return e0.elapsed_time(e1) * 1e-3

    one = batch(1)
    per = int(min(500, max(4, 4e-3 / max(one, 1e-7))))  # as bench/bench_ops.cpp: ~4 ms, >= 4 runs
    t = []
    t0 = time.monotonic()
    while len(t) < 5 or (time.monotonic() - t0 < 0.6 and len(t) < 500):
        t.append(batch(per) / per)
    t.sort()
    return t[len(t) // 2]


def run_torch(args):
    import torch
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}", flush=True)
    rx = re.compile(args.filter) if args.filter else None
    res = {}
    for name, make in torch_cases().items():
        if rx and not rx.search(name):
            continue
        try:
            s = time_cuda(make())
        except Exception as e:  # noqa: BLE001 - report and continue with the other cases
            print(f"{name:60s} error: {e}", flush=True)
            continue
        res[name] = s * 1e6
        print(f"{name:60s} {s * 1e6:10.2f} us", flush=True)
        torch.cuda.empty_cache()
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)


def merge(args):
    ours = json.load(open(args.merge[0]))
    theirs = json.load(open(args.merge[1]))
    bw, peak = ours.get("bandwidth_gbps", 0) * 1e9, ours.get("peak_gflops", 0) * 1e9
    print(f"\n{ours.get('device_name', '?')}: floors {bw / 1e12:.2f} TB/s copy, {peak / 1e12:.0f} TFLOP/s bf16 matmul")
    hdr = f"{'op x shape':58s} {'ours us':>10s} {'torch us':>10s} {'speedup':>8s} {'achieved':>14s} {'%floor':>7s}"
    print(hdr)
    print("-" * len(hdr))
    for c in ours["cases"]:
        name, us = c["name"], c["time_us"]
        t = theirs.get(name)
        sp = f"{t / us:7.2f}x" if t else "       -"
        compute = c["flops"] / max(c["bytes"], 1) > 50  # arithmetic-bound cases report TFLOP/s
        ach = f"{c['flops'] / us / 1e6:8.1f} TFLOP/s" if compute else f"{c['bytes'] / us / 1e6:8.2f} TB/s"
        ts = f"{t:10.1f}" if t else f"{'-':>10s}"
        print(f"{name:58s} {us:10.1f} {ts} {sp} {ach:>14s} {c['pct_of_floor']:6.1f}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--filter")
    ap.add_argument("--merge", nargs=2, metavar=("FLAGOS_JSON", "TORCH_JSON"))
    args = ap.parse_args()
    if args.merge:
        merge(args)
    elif args.json:
        run_torch(args)
    else:
        ap.error("--json or --merge is required")


if __name__ == "__main__":
    sys.exit(main())
