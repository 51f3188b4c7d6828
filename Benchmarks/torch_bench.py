#!/usr/bin/env python3
"""PyTorch's side of gradkit-bench: the same workloads, the same table.

    python3 Benchmarks/torch_bench.py [--threads N] [--filter NAME] [--quick]

Measured with torch 2.15.0 (pip install torch==2.15.0). Run it right after
`swift run -c release gradkit-bench` so both see the same machine state.
"""
import argparse
import platform
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--filter", default=None)
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
torch.set_num_threads(args.threads)
budget = 0.1 if args.quick else 0.5


def timed(body, warmup=3):
    for _ in range(warmup):
        body()
    samples, start = [], time.perf_counter()
    while len(samples) < 5 or (time.perf_counter() - start < budget and len(samples) < 100000):
        t0 = time.perf_counter()
        body()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[len(samples) // 2], samples[0]


def fmt(s):
    for scale, unit in ((1e-6, "ns"), (1e-3, "µs"), (1, "ms")):
        if s < scale:
            return f"{s / scale * 1e3:.3g} {unit}"
    return f"{s:.3g} s"


def report(name, variant, median, minimum, unit, work):
    if args.filter and args.filter not in name:
        return
    figure = f"{median / work * 1e9:.3g} ns/op" if unit == "ns/op" else f"{work / minimum / 1e9:.3g} {unit}"
    print(f"{name:<34} {variant:<10} median {fmt(median):<10} min {fmt(minimum):<10} {figure}")


print(f"torch_bench — torch {torch.__version__}; {torch.get_num_threads()} threads; {platform.processor() or platform.machine()}")
print()

# Autograd bookkeeping: the chain of gradkit-bench's autograd.overhead.
w = torch.randn(4, requires_grad=True)
iterations, ops = 25, 25 * 3 + 2


def step():
    h = w
    for _ in range(iterations):
        h = torch.tanh(h * 0.5 + w)
    h.sum().backward()
    w.grad = None


def forward_only():
    with torch.no_grad():
        h = w
        for _ in range(iterations):
            h = torch.tanh(h * 0.5 + w)
        h.sum()


if not args.filter or args.filter in "autograd.overhead (4 elements)":
    report("autograd.overhead (4 elements)", "fwd+bwd", *timed(step), "ns/op", ops)
    report("autograd.overhead (4 elements)", "untracked", *timed(forward_only), "ns/op", ops)

for n in (64, 256, 1024):
    a, b = torch.randn(n, n), torch.randn(n, n)
    report(f"sgemm {n}x{n}x{n}", "torch", *timed(lambda: torch.mm(a, b)), "GFLOP/s", 2 * n**3)

n = 1 << 22
x, y = torch.randn(n), torch.randn(n)
report("add 4M (read 2, write 1)", "torch", *timed(lambda: x + y), "GB/s", 12 * n)
report("tanh 4M (read 1, write 1)", "torch", *timed(lambda: torch.tanh(x)), "GB/s", 8 * n)
report("sum 4M (read 1)", "torch", *timed(lambda: x.sum()), "GB/s", 4 * n)
