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


def report(name, variant, median, minimum, unit, work, roofline=None):
    if args.filter and args.filter not in name:
        return
    figure = f"{median / work * 1e9:.3g} ns/op" if unit == "ns/op" else f"{work / minimum / 1e9:.3g} {unit}"
    if roofline:
        figure += f"  = {round(work / minimum / 1e9 / roofline * 100)}% of a*x+y ({roofline:.3g} GB/s)"
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

# SGEMM: gradkit-bench's shapes (squares, an odd one, the skinny products of MLP training).
GEMM_SHAPES = [(f"{n}x{n}x{n}", False, False, n, n, n) for n in (32, 64, 128, 256, 512, 1024, 2048)] + [
    ("257x129x301", False, False, 257, 129, 301),
    ("mlp 32x128x64 NT", False, True, 32, 128, 64), ("mlp 32x64x128 NN", False, False, 32, 64, 128),
    ("mlp 128x64x32 TN", True, False, 128, 64, 32),
    ("mlp 64x64x64 NT", False, True, 64, 64, 64), ("mlp 64x64x64 TN", True, False, 64, 64, 64),
    ("mlp 128x256x784 NT", False, True, 128, 256, 784), ("mlp 128x784x256 NN", False, False, 128, 784, 256),
    ("mlp 256x784x128 TN", True, False, 256, 784, 128),
    ("mlp 256x1024x1024 NT", False, True, 256, 1024, 1024), ("mlp 256x1024x1024 NN", False, False, 256, 1024, 1024),
    ("mlp 1024x1024x256 TN", True, False, 1024, 1024, 256),
]
for label, ta, tb, m, n, k in GEMM_SHAPES:
    name = "sgemm " + label
    if args.filter and args.filter not in name:
        continue
    a = torch.randn(k, m) if ta else torch.randn(m, k)
    b = torch.randn(n, k) if tb else torch.randn(k, n)
    opa, opb = (a.t() if ta else a), (b.t() if tb else b)
    report(name, "torch", *timed(lambda: torch.mm(opa, opb)), "GFLOP/s", 2 * m * n * k)

# Streaming kernels at 1e4 ... 1e7 elements, bytes read + written, against torch's own a*x+y.
for count, size in ((10_000, "1e4"), (100_000, "1e5"), (1_000_000, "1e6"), (10_000_000, "1e7")):
    x, yv, dy, out = torch.randn(count), torch.randn(count).tanh(), torch.randn(count) * 0.1, torch.zeros(count)
    rows, columns = count // 1000, 1000
    x2, bias = x.view(rows, columns), dy[:columns]

    def axpy_rate():
        _, minimum = timed(lambda: out.add_(x, alpha=1e-7))
        return 12 * count / minimum / 1e9

    cases = [
        ("axpy", 12, lambda: out.add_(x, alpha=1e-7)),
        ("scale", 8, lambda: torch.mul(x, 0.5, out=out)),
        ("relu", 8, lambda: torch.relu(x)),
        ("sigmoid", 8, lambda: torch.sigmoid(x)),
        ("tanh", 8, lambda: torch.tanh(x)),
        ("gelu", 8, lambda: torch.nn.functional.gelu(x)),
        ("relu backward", 12, lambda: torch.ops.aten.threshold_backward(dy, x, 0)),
        ("tanh backward", 12, lambda: torch.ops.aten.tanh_backward(dy, yv)),
        ("bias add", 8, lambda: torch.add(x2, bias)),
        ("column sums", 4, lambda: x2.sum(0)),
        ("sum", 4, lambda: x.sum()),
        ("sum of squares", 4, lambda: torch.linalg.vector_norm(x)),
        ("p-norm (p=3)", 4, lambda: torch.linalg.vector_norm(x, 3)),
    ]
    for label, bytes_per, body in cases:
        name = f"{label} {size}"
        if args.filter and args.filter not in name:
            continue
        roofline = axpy_rate()
        report(name, "torch", *timed(body), "GB/s", bytes_per * count, roofline)

# Optimizer steps over 10 M parameters in 20 tensors, every one with a gradient;
# bytes per element as gradkit-bench counts them.
TENSORS, PER_TENSOR = 20, 500_000
TOTAL = TENSORS * PER_TENSOR
y10, x10 = torch.zeros(TOTAL), torch.ones(TOTAL)


def axpy_bandwidth():
    """torch's own a*x+y right now (this machine's bandwidth drifts between runs)."""
    _, minimum = timed(lambda: y10.add_(x10, alpha=1e-7))
    return 12 * TOTAL / minimum / 1e9


report("axpy 10M (read 2, write 1)", "torch", *timed(lambda: y10.add_(x10, alpha=1e-7)), "GB/s", 12 * TOTAL)


def make_parameters():
    g = torch.Generator().manual_seed(3)
    params = []
    for _ in range(TENSORS):
        p = torch.randn(PER_TENSOR, generator=g).requires_grad_()
        p.grad = torch.randn(PER_TENSOR, generator=g) * 1e-3
        params.append(p)
    return params


OPTIMIZERS = [
    ("sgd momentum", 20, lambda ps, **k: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, **k), ("foreach", "fused")),
    ("adagrad", 20, lambda ps, **k: torch.optim.Adagrad(ps, **k), ("foreach", "fused")),
    ("rmsprop", 20, lambda ps, **k: torch.optim.RMSprop(ps, **k), ("foreach",)),
    ("adam", 28, lambda ps, **k: torch.optim.Adam(ps, **k), ("foreach", "fused")),
    ("adamw", 28, lambda ps, **k: torch.optim.AdamW(ps, **k), ("foreach", "fused")),
]
for label, bytes_per, make, modes in OPTIMIZERS:
    name = f"optimizer {label} 10M/20"
    if args.filter and args.filter not in name:
        continue
    for mode in modes:
        ps = make_parameters()
        opt = make(ps, **{mode: True})
        roofline = axpy_bandwidth()
        report(name, mode, *timed(opt.step), "GB/s", bytes_per * TOTAL, roofline)

if not args.filter or args.filter in "clipGradientNorm 10M/20":
    ps = make_parameters()

    # clip_grad_norm_ computes the norm and always multiplies (by 1 below the
    # threshold): the same two passes gradkit-bench times.
    roofline = axpy_bandwidth()
    report("clipGradientNorm 10M/20", "torch", *timed(lambda: torch.nn.utils.clip_grad_norm_(ps, max_norm=1e-3)), "GB/s", 12 * TOTAL, roofline)


# End-to-end training steps (gradkit-bench's "step ..."): zero grads, forward, cross-entropy on
# fixed random data, backward, clip_grad_norm_(max_norm=1), Adam step (PyTorch's defaults).
WORKLOADS = [
    ("digits MLP 64-128-64-10 b32", [64, 128, 64, 10], 32),
    ("MNIST MLP 784-256-128-10 b128", [784, 256, 128, 10], 128),
    ("deep MLP 20x64 b64", [64] + [64] * 20 + [10], 64),
    ("wide MLP 1024x4-10 b256", [1024, 1024, 1024, 1024, 10], 256),
]
for label, sizes, batch in WORKLOADS:
    name = "step " + label
    if args.filter and args.filter not in name:
        continue
    torch.manual_seed(1)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, sizes[0]), torch.randint(0, 10, (batch,))

    def train_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1)
        opt.step()

    report(name, "torch", *timed(train_step), "ns/op", 1)
