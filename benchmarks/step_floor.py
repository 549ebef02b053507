"""Each paper model's training step against its own matrix-multiply floor, measured in one process.

Run from the repository root with nothing else on the machine::

    .venv/bin/python benchmarks/step_floor.py --compile    # part of: make bench

For every model the notebooks train it builds the model, loss and optimizer as the
notebook does, at the notebook's batch size, on device-resident random uint8 data of
the right shape, and measures:

- **step**: milliseconds per optimizer step of :func:`common.train.fit` itself (the
  median over ``--repeats`` timed epochs of ``--steps`` steps, after one warm-up epoch);
- **floor**: the time the step spends in its own matrix products (``aten::mm``,
  ``addmm``, ``bmm``, ``linear`` and convolutions, forward and backward), summed from
  ``torch.profiler``'s self times over profiled steps; everything above it is overhead
  (elementwise kernels, the optimizer, Python);
- **other kernels**: from the same profile, the self time of every other aten kernel
  (elementwise, random draws, top-k, the optimizer), leaving out views and composite ops that
  only dispatch (``DISPATCH_ONLY``), with the largest named: the floor plus these is about
  what the step would take without dispatch and Python; "the rest" is the timed step minus
  both, from different epochs, so machine drift can make it negative;
- **update**: ``optimizer.step()`` alone, at the model's parameter count; where it is a
  large share of the step (the dSprites net's 14M parameters) the line also gives the
  floor plus the update.

For each model it prints ``step <model>: <ms> ms/step, floor <ms> ms, <ratio>x floor``, then
an indented line with its other kernels, and with ``--compile`` (as ``make bench`` runs it)
``step <model> [compiled]: ...``: ``fit(compile=True)``'s step (:mod:`common.compiled`),
timed in epochs alternating with the eager one's, and their ratio. Last come the CPU, the
thread count and the float32 matmul peak at 2048^2. It measures and prints; it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

from contextlib import contextmanager

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from common.data import Batches
from common.report import cpu_model
from common.train import fit, make_optimizer, native_bf16, seed_everything
from train_speed import matmul_peak  # beside this script (run as benchmarks/step_floor.py)

#: Kernels counted in the floor: matrix products and convolutions, forward and backward.
#: (``aten::linear``, ``matmul`` and ``convolution`` only dispatch to these, so they are not counted.)
#: ``aten::_convolution`` is counted: a transposed convolution's forward runs oneDNN from inside it, with no
#: child op, so its self time is that convolution (an ordinary convolution's is a few microseconds of
#: dispatch). Left out, it put the CelebA decoders' forward in the overhead (benchmarks/README.md).
GEMM_KERNELS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::convolution_backward",
                "aten::mkldnn_convolution", "aten::mkldnn_convolution_backward", "aten::_slow_conv2d_forward",
                "aten::_slow_conv2d_backward", "aten::_convolution")

#: Ops whose self time is dispatch, not arithmetic: views, allocation, and composites whose work is in
#: their children (counted there). Left out of "other kernels".
DISPATCH_ONLY = frozenset(f"aten::{name}" for name in (
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "expand_as", "as_strided",
    "slice", "select", "unsqueeze", "squeeze", "flatten", "unflatten", "detach", "alias", "lift_fresh",
    "empty", "empty_like", "empty_strided", "linear", "matmul", "convolution", "conv2d", "conv_transpose2d",
    "to", "contiguous", "resolve_conj", "resolve_neg", "numpy_T", "split", "chunk", "unbind", "narrow"))


@dataclass
class Case:
    name: str
    build: Callable[[], tuple[nn.Module, Callable, torch.optim.Optimizer]]
    shape: tuple[int, ...]
    batch: int
    #: Binary images with this share of ones (dSprites-like), instead of uniform grey levels.
    ones: float | None = None


def _cases() -> list[Case]:
    from BetaVAE.betavae import AutoencoderLoss, BetaVAELoss, ConvBetaVAE, FCBetaVAE
    from DenoisingAE.denoising import TiedAutoencoder, dae_loss
    from KsparseAE.ksparse import KSparseAutoencoder, squared_error
    from SB_VAE.sbvae import GaussVAE, StickBreakingVAE, negative_bound_loss
    from VariationalAE.vae import VAE, elbo_loss

    def adam(model, lr=1e-3, **kw):
        return make_optimizer("adam", model.parameters(), lr, **kw)

    def sb(kl_terms):
        m = StickBreakingVAE(784, 500, 50, alpha0=5.0, kl_terms=kl_terms)
        return m, negative_bound_loss, adam(m, 3e-4, betas=(0.95, 0.999))

    def gauss():
        m = GaussVAE(784, 500, 50)
        return m, negative_bound_loss, adam(m, 3e-4, betas=(0.95, 0.999))

    def dae(h):
        m = TiedAutoencoder(784, h, generator=torch.Generator().manual_seed(0))
        return m, dae_loss(0.25), adam(m, 3e-3)

    def ksparse():
        m = KSparseAutoencoder(784, 1000, k=25)
        return m, squared_error, adam(m)

    def vae(shape, hidden, nz, likelihood):
        m = VAE(shape, hidden, nz, likelihood=likelihood)
        return m, elbo_loss, make_optimizer("adagrad", m.parameters(), 0.02)

    def dsprites():
        m = FCBetaVAE(10, 1200)
        return m, BetaVAELoss(4.0), make_optimizer("adagrad", m.parameters(), 1e-2)

    def celeba(loss):
        m = ConvBetaVAE(32, decoder_std=None, channels_last=True)  # as the CelebA notebook builds it
        return m, loss, adam(m, 5e-4)

    return [
        Case("dA 784-500 (DenoisingAE filters)", lambda: dae(500), (1, 28, 28), 100),
        Case("dA 784-1000 (SdA layer, paper)", lambda: dae(1000), (1, 28, 28), 20),
        Case("k-sparse 784-1000 k=25", ksparse, (1, 28, 28), 100),
        Case("VAE MNIST 784-500-20", lambda: vae((1, 28, 28), 500, 20, "bernoulli"), (1, 28, 28), 100),
        Case("VAE Frey 560-200-20 (Gaussian)", lambda: vae((1, 28, 20), 200, 20, "gaussian"), (1, 28, 20), 100),
        Case("Gauss VAE 784-500-50 (SB_VAE)", gauss, (1, 28, 28), 100),
        Case("SB-VAE 784-500-50, 10-term KL", lambda: sb(10), (1, 28, 28), 100),
        Case("SB-VAE 784-500-50, accurate KL", lambda: sb(None), (1, 28, 28), 100),
        Case("dSprites FC beta-VAE 4096-1200x2/1200x3", dsprites, (1, 64, 64), 64, ones=0.05),
        Case("CelebA conv beta-VAE 64x64", lambda: celeba(BetaVAELoss(250.0)), (3, 64, 64), 64),
        Case("CelebA conv AE 64x64", lambda: celeba(AutoencoderLoss()), (3, 64, 64), 64),
    ]


def _batches(case: Case, steps: int, seed: int) -> Batches:
    g = torch.Generator().manual_seed(seed)
    shape = (steps * case.batch, *case.shape)
    if case.ones is None:
        x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    else:
        x = (torch.rand(shape, generator=g) < case.ones).to(torch.uint8) * 255
    return Batches(x, None, case.batch, seed=seed)


class StepTimes(NamedTuple):
    ms: dict[str, float]                  # median ms per step: "eager", and "compiled" when timed
    model: nn.Module                      # the eager copy, trained
    optimizer: torch.optim.Optimizer
    first_compiled_s: float               # the compiled copy's first epoch, compilation included (0: not timed)


def step_ms(case: Case, steps: int, repeats: int, seed: int, compile: bool = False) -> StepTimes:
    """Median ms per step of fit() over ``repeats`` epochs of ``steps`` steps, after a warm-up epoch.

    With ``compile`` a second copy trains with ``fit(compile=True)``, its timed epochs alternating
    with the eager one's, so that both medians see the same machine.
    """
    paths = {}
    first_s = 0.0
    for mode in ("eager", "compiled") if compile else ("eager",):
        seed_everything(seed)
        model, loss_fn, opt = case.build()
        data = _batches(case, steps, seed)
        t0 = time.perf_counter()
        # warm-up: allocations, lazy init, the fused kernels (and the compilation)
        fit(model, loss_fn, data, opt, 1, progress=False, compile=mode == "compiled")
        if mode == "compiled":
            first_s = time.perf_counter() - t0
        paths[mode] = (model, loss_fn, opt, data)
    times: dict[str, list[float]] = {mode: [] for mode in paths}
    for _ in range(repeats):
        for mode, (model, loss_fn, opt, data) in paths.items():
            t0 = time.perf_counter()
            fit(model, loss_fn, data, opt, 1, progress=False, compile=mode == "compiled")
            times[mode].append((time.perf_counter() - t0) / len(data) * 1e3)
    model, _, opt, _ = paths["eager"]
    return StepTimes({mode: statistics.median(t) for mode, t in times.items()}, model, opt, first_s)


@contextmanager
def _quiet_stderr():
    """The profiler's C++ side prints a start and a stop line to stderr; keep them off the report."""
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@dataclass
class StepProfile:
    """Where a profiled step's time goes, in ms per step, by ``torch.profiler``'s self times."""

    floor: float                          # matrix products and convolutions (GEMM_KERNELS)
    kernels: float                        # other aten kernels: elementwise, RNG, top-k, the optimizer
    top: list[tuple[str, float]]          # the largest of those, by name


def step_profile(case: Case, steps: int, seed: int, top: int = 3) -> StepProfile:
    """Profile one epoch of fit(): the floor, the other kernels' time and the largest of them.

    Self times do not double count: a composite op (``aten::linear``) owns only its own
    overhead, its ``addmm`` is counted as a GEMM. Views and composites (``DISPATCH_ONLY``) are
    left out of the kernels: their self time is dispatch, like autograd's bookkeeping and Python.
    """
    seed_everything(seed)
    model, loss_fn, opt = case.build()
    data = _batches(case, steps, seed)
    fit(model, loss_fn, data, opt, 1, progress=False)
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(model, loss_fn, data, opt, 1, progress=False)
    events = prof.key_averages()
    per_step = 1e3 * len(data)  # profiler microseconds -> ms per step
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM_KERNELS) / per_step
    others = sorted(((e.self_cpu_time_total / per_step, e.key.removeprefix("aten::")) for e in events
                     if e.key.startswith("aten::") and e.key not in GEMM_KERNELS and e.key not in DISPATCH_ONLY),
                    reverse=True)
    return StepProfile(gemm, sum(t for t, _ in others), [(k, t) for t, k in others[:top]])


def update_ms(model: nn.Module, opt: torch.optim.Optimizer, repeats: int = 50) -> float:
    """ms of one optimizer.step() with gradients in place (the update alone)."""
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    opt.step()
    t0 = time.perf_counter()
    for _ in range(repeats):
        opt.step()
    return (time.perf_counter() - t0) / repeats * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=40, help="steps per timed epoch (default 40)")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per model (default 5)")
    p.add_argument("--only", default="", help="run only the models whose name contains this text")
    p.add_argument("--compile", action="store_true",
                   help="also time fit(compile=True), alternating with the eager step (adds its compilation)")
    args = p.parse_args(argv)
    cases = [c for c in _cases() if args.only.lower() in c.name.lower()]
    if not cases:
        print(f"no model matches --only {args.only!r}; the models are: "
              + "; ".join(c.name for c in _cases()), file=sys.stderr)
        return 2
    for case in cases:
        times, model, opt, first_s = step_ms(case, args.steps, args.repeats, seed=0, compile=args.compile)
        ms = times["eager"]
        prof = step_profile(case, args.steps, seed=0)
        floor = prof.floor
        upd = update_ms(model, opt)
        n_params = sum(p.numel() for p in model.parameters())
        if upd > 0.1 * ms:
            extra = f" (update alone {upd:.2f} ms, {n_params / 1e6:.1f}M parameters: floor + update " \
                    f"{floor + upd:.2f} ms, {ms / (floor + upd):.2f}x)"
        else:
            extra = f" (update alone {upd:.2f} ms)"
        ratio = f"{ms / floor:.2f}x floor" if floor > 0 else "no matrix product found by the profiler"
        print(f"step {case.name}: {ms:.2f} ms/step, floor {floor:.2f} ms, {ratio}{extra}", flush=True)
        if floor > 0:
            largest = ", ".join(f"{k} {t:.2f}" for k, t in prof.top)
            print(f"  other kernels {prof.kernels:.2f} ms: floor + kernels {(floor + prof.kernels) / floor:.2f}x floor "
                  f"(largest: {largest}); the rest (dispatch, Python) {ms - floor - prof.kernels:.2f} ms", flush=True)
        if "compiled" in times:
            c = times["compiled"]
            print(f"step {case.name} [compiled]: {c:.2f} ms/step, floor {floor:.2f} ms, {c / floor:.2f}x floor "
                  f"({c / ms:.2f}x the eager step in this run; first epoch with compilation {first_s:.1f} s)",
                  flush=True)
    print(f"cpu: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"float32 matmul peak at 2048^2: {matmul_peak(torch.float32):.0f} GFLOP/s; every step above in float32; native bfloat16 "
          f"{'yes' if native_bf16(torch.device('cpu')) else 'no: fit(bf16=True) would warn and train in float32'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
