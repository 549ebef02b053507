"""Speed of the CelebA beta-VAE conv net on this CPU: channels-last and bfloat16 autocast.

Times one training step (forward, beta-VAE loss, backward, fused Adam) of
``BetaVAE.betavae.ConvBetaVAE`` on a batch of 64x64x3 images, in four variants:

- fp32, NCHW (PyTorch's default layout) -- the reference;
- fp32, channels-last (NHWC weights and inputs);
- bf16 autocast, NCHW;
- bf16 autocast, channels-last.

The variants run interleaved, ``--repeats`` rounds of ``--steps`` steps each after an
untimed warm-up, so machine noise hits them alike; each ratio to the reference is the
median of its per-round ratios, all measured in this one run. It asserts nothing about
speed. Run it with nothing else training (under the CPU lock):

    flock /tmp/ae-cpu.lock .venv/bin/python benchmarks/conv_speed.py
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from BetaVAE.betavae import BetaVAELoss, ConvBetaVAE  # noqa: E402
from common.report import cpu_model  # noqa: E402
from common.train import make_optimizer  # noqa: E402

VARIANTS = {"fp32 NCHW": (False, False), "fp32 channels-last": (True, False),
            "bf16 NCHW": (False, True), "bf16 channels-last": (True, True)}


def make_step(channels_last: bool, bf16: bool, images: torch.Tensor, batch: int, beta: float, seed: int):
    """A closure that runs one training step on the next batch; every variant starts from the same weights."""
    torch.manual_seed(seed)
    model = ConvBetaVAE(channels_last=channels_last)
    opt = make_optimizer("adam", model.parameters(), lr=1e-4)
    loss_fn = BetaVAELoss(beta)
    state = {"i": 0, "loss": float("nan")}

    def step() -> None:
        start = (state["i"] * batch) % (len(images) - batch + 1)
        x = images[start:start + batch].float().div_(255)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            terms = loss_fn(model, x)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        state["i"] += 1
        state["loss"] = terms["loss"].item()

    return step, state


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant per round")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    p.add_argument("--beta", type=float, default=250.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    g = torch.Generator().manual_seed(args.seed)
    images = torch.randint(0, 256, (16 * args.batch, 3, 64, 64), dtype=torch.uint8, generator=g)
    steps = {name: make_step(cl, bf, images, args.batch, args.beta, args.seed) for name, (cl, bf) in VARIANTS.items()}
    for step, _ in steps.values():  # warm-up: oneDNN picks and caches its kernels
        for _ in range(3):
            step()
    per_step: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, (step, _) in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            per_step[name].append((time.perf_counter() - t0) / args.steps)

    ref = "fp32 NCHW"
    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"ConvBetaVAE (32-32-64-64 convs, FC 256, 32 latents), batch {args.batch}, beta {args.beta:g}, "
          f"{args.repeats} rounds x {args.steps} steps")
    for name, times in per_step.items():
        ratios = [r / t for r, t in zip(per_step[ref], times)]
        med = statistics.median(times)
        print(f"{name:20s} {1000 * med:7.1f} ms/step  {args.batch / med:7.0f} images/s  "
              f"speedup over fp32 NCHW {statistics.median(ratios):.2f}x  (last loss {steps[name][1]['loss']:.1f})")
    best = min(per_step, key=lambda n: statistics.median(per_step[n]))
    print(f"fastest: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
