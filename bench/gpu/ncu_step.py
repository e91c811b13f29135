#!/usr/bin/env python3
"""Per-kernel time of one engine step from an Nsight Compute CSV (ncu --csv --metrics
gpu__time_duration.sum). A step starts at each launch of the embedding kernel (the first kernel
of every forward); the last complete step is broken down in launch order and grouped by kernel.
usage: ncu_step.py NCU_CSV [--marker SUBSTRING]"""
import csv, re, sys
from collections import OrderedDict

path = sys.argv[1]
marker = sys.argv[sys.argv.index("--marker") + 1] if "--marker" in sys.argv else "embed"
rows = []
with open(path, newline="") as f:
    lines = [l for l in f if l.startswith('"')]  # skip ncu's ==PROF== lines
for r in csv.DictReader(lines):
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    v = float(r["Metric Value"].replace(",", ""))
    unit = r.get("Metric Unit", "nsecond")
    us = v / 1000.0 if unit.startswith("n") else (v if unit.startswith("u") else v * 1000.0)
    rows.append((int(r["ID"]), r["Kernel Name"], us))
rows.sort()
starts = [i for i, r in enumerate(rows) if marker in r[1].lower()]
if len(starts) < 2:
    sys.exit(f"fewer than 2 steps found (marker '{marker}' in {len(rows)} kernels)")
step = rows[starts[-2]:starts[-1]]
total = sum(r[2] for r in step)
print(f"kernels in the last complete step: {len(step)}; summed kernel time {total:.1f} us")
groups = OrderedDict()
for _, name, us in step:
    short = re.sub(r"\(.*", "", name)
    short = re.sub(r"<.*", "", short)[:70]
    g = groups.setdefault(short, [0, 0.0])
    g[0] += 1
    g[1] += us
print(f"{'kernel':70s} {'calls':>6s} {'total us':>10s} {'share':>6s}")
for name, (n, us) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
    print(f"{name:70s} {n:6d} {us:10.1f} {100 * us / total:5.1f}%")
