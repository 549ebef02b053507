"""Table 1's softmax regression (``common.evaluate.softmax_regression_error``) against the plain layout, in one process.

Run from the repository root with nothing else on the machine::

    .venv/bin/python benchmarks/classifier_speed.py        # part of: make bench

The k-sparse notebook fits the classifier some 40 times on 50,000-60,000 x 1,000 features. Its
cost is two skinny products per L-BFGS evaluation: the logits (N x d times d x C) and the weight
gradient. With W stored as (d, C) and logits X @ W, that gradient is X.T @ G, a product BLAS runs
far below its peak; with W as (C, d) through ``F.linear`` it is G.T @ X. The script times, at the
notebook's shapes, one evaluation (loss and gradient) in each layout, interleaved, and one whole fit
each, and prints the ratios measured in this run, then the CPU and thread count. It asserts nothing.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from common.evaluate import softmax_regression_error, softmax_regression_reference


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown cpu"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=50_000, help="training points (the notebook: 50,000 and 60,000)")
    p.add_argument("--d", type=int, default=1_000, help="features (k-sparse hidden units)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-iter", type=int, default=100, help="L-BFGS iterations of each whole fit")
    args = p.parse_args()
    g = torch.Generator().manual_seed(0)
    # k-sparse-like features: most activities zero, the rest positive
    x = torch.relu(torch.randn(args.n, args.d, generator=g) - 1.5)
    y = torch.randint(0, 10, (args.n,), generator=g)
    w_dc = torch.zeros(args.d, 10, requires_grad=True)
    w_cd = torch.zeros(10, args.d, requires_grad=True)

    def plain():
        F.cross_entropy(x @ w_dc, y).backward()

    def fast():
        F.cross_entropy(F.linear(x, w_cd), y).backward()

    times = {"plain": [], "fast": []}
    for f in (plain, fast):
        f()                                          # warm-up
    for _ in range(args.repeats):                    # interleaved, so noise hits both alike
        for name, f in (("plain", plain), ("fast", fast)):
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"evaluation (loss + gradient) at {args.n} x {args.d}, 10 classes: plain X @ W {med['plain']:.1f} ms, "
          f"F.linear {med['fast']:.1f} ms, ratio {med['plain'] / med['fast']:.1f}x")
    softmax_regression_reference(x, y, x[:1000], y[:1000], max_iter=2)      # warm-up of both whole fits
    softmax_regression_error(x, y, x[:1000], y[:1000], max_iter=2)
    t = time.perf_counter()
    plain_error = softmax_regression_reference(x, y, x[:1000], y[:1000], weight_decay=1e-3, max_iter=args.max_iter)
    plain_s = time.perf_counter() - t
    t = time.perf_counter()
    r = softmax_regression_error(x, y, x[:1000], y[:1000], weight_decay=1e-3, max_iter=args.max_iter)
    fast_s = time.perf_counter() - t
    print(f"whole fit, at most {args.max_iter} L-BFGS iterations: softmax_regression_reference {plain_s:.1f} s, "
          f"softmax_regression_error {fast_s:.1f} s, ratio {plain_s / fast_s:.1f}x (errors on 1,000 training "
          f"points: {plain_error:.1f}% and {r['test_error']:.1f}%)")
    print(f"cpu: {_cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")


if __name__ == "__main__":
    main()
