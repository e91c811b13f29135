#!/usr/bin/env python3
"""HF transformers on the same shapes as `flagos bench model --random CONFIG`: random bf16 weights
from a config.json; ppP (P random tokens per sequence from an empty cache) and tgN (N single-token
forward steps with a KV cache from an empty cache) at batch sizes B; forward passes only (no
sampling), timed with CUDA synchronization. Prints a table
and writes JSON (list of {test, batch, avg_ts, samples_ts}).

usage: hf_engine.py CONFIG.json [-p 512] [-n 128] [-b 1,16] [-r 3] [--json OUT]
"""
import argparse
import json
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-b", default="1,16")
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    cfg = AutoConfig.from_pretrained(a.config)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.eval()
    vocab = cfg.vocab_size
    rows = []

    def timed(fn):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            fn()
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    # As flagos bench model: ppP = one sequence of P tokens per batch entry from an empty cache;
    # tgN = N single-token steps from an empty cache.
    def pp(batch, n):
        ids = torch.randint(0, vocab, (batch, n), device="cuda")
        return batch * n / timed(lambda: model(input_ids=ids, past_key_values=DynamicCache(), use_cache=True))

    def tg(batch, n):
        cache = DynamicCache()
        toks = torch.randint(0, vocab, (n, batch, 1), device="cuda")

        def steps():
            for i in range(n):
                model(input_ids=toks[i], past_key_values=cache, use_cache=True)
        return batch * n / timed(steps)

    pp(1, 16)  # warm-up
    tg(1, 4)
    for b in [int(x) for x in a.b.split(",")]:
        for test, fn, n in ((f"pp{a.p}", pp, a.p), (f"tg{a.n}", tg, a.n)):
            fn(b, n)  # one untimed run per test, as flagos bench model does
            v = [fn(b, n) for _ in range(a.r)]
            rows.append({"test": test, "batch": b, "avg_ts": sum(v) / len(v), "samples_ts": v})
    print(f"| {'HF transformers ' + torch.__version__:<36} | {'batch':>5} | {'test':>8} | {'t/s':>12} |")
    for r in rows:
        print(f"| {cfg.model_type:<36} | {r['batch']:>5} | {r['test']:>8} | {r['avg_ts']:>12.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
