"""Training speed: the PyTorch examples VAE pipeline against ``common``'s fast path.

Run from the repository root, with nothing else training on the machine::

    .venv/bin/python benchmarks/train_speed.py        # or: make bench

It trains one 784-400-20 VAE (batch 128, Adam lr 1e-3, same seed) through three paths,
interleaved in one process so machine noise hits all three alike:

(a) the standard pipeline, written as the PyTorch examples VAE does it: torchvision MNIST
    with a per-item ``ToTensor`` through a ``DataLoader``, the default ``torch.optim.Adam``
    and a ``loss.item()`` every batch;
(b) ``common``: ``load_mnist`` + device-resident ``ImageSet.batches`` + ``fit()`` +
    ``make_optimizer("adam")`` (fused Adam), float32;
(c) the same as (b) with ``fit(..., bf16=True)`` (bfloat16 autocast).

It prints samples per second, each path's ratio to (a) (medians over ``--repeats``
interleaved repeats), the achieved GFLOP/s against a matmul peak measured in this run,
and each path's final loss, then the dSprites-sized beta-VAE case (time per 1,000
samples and peak memory). The last line is::

    speedup fp32 X.Xx, bf16 Y.Yx, loss gap Z nats

This is a script, not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.data import load_mnist, verify
from common.train import evaluate_terms, fit, make_optimizer, native_bf16, seed_everything

BATCH = 128
LR = 1e-3


# ---------------------------------------------------------------------------
# The model and loss, shared by all three paths so they compute the same thing
# ---------------------------------------------------------------------------
class VAE(nn.Module):
    """The PyTorch examples VAE: 784-400-(20, 20) encoder, 20-400-784 sigmoid decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def vae_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Negative ELBO in nats per example: BCE summed over pixels plus the analytic KL
    (Kingma & Welling 2014, appendix B), averaged over the batch."""
    recon, mu, logvar = model(x)
    n = len(x)
    # binary_cross_entropy runs in float32 under CPU autocast (it is on autocast's fp32 list)
    rec = F.binary_cross_entropy(recon.float(), x.view(-1, 784).float(), reduction="sum") / n
    kl = -0.5 * torch.sum(1 + logvar.float() - mu.float().pow(2) - logvar.float().exp()) / n
    return {"loss": rec + kl, "rec": rec, "kl": kl}


def train_flops_per_sample(layers: list[tuple[int, int]]) -> float:
    """FLOPs of one forward+backward pass through dense layers, per sample.

    Each layer costs 2*in*out for the forward matmul, 2*in*out for the weight gradient
    and 2*in*out for the input gradient: 3 x 2 x (sum of in*out). The first layer's input
    gradient is not computed (the data needs no gradient), so we subtract it. For the
    784-400-20 VAE this is 3.28 MFLOP per sample, 197 GFLOP per MNIST epoch (the plain
    3 x 2 x sum convention would say 234). Biases and element-wise work are ignored.
    """
    total = 3 * 2 * sum(i * o for i, o in layers)
    return float(total - 2 * layers[0][0] * layers[0][1])


MNIST_LAYERS = [(784, 400), (400, 20), (400, 20), (20, 400), (400, 784)]


# ---------------------------------------------------------------------------
# Matmul peak, measured in this run
# ---------------------------------------------------------------------------
def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0, rounds: int = 3) -> float:
    """GFLOP/s of back-to-back n x n matmuls in ``dtype``: the best of ``rounds`` bursts
    of ``seconds / rounds`` each (a peak, so the best burst, not the median)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(3):
        a @ b  # warm-up: thread pool, oneDNN kernel selection and JIT
    best = 0.0
    for _ in range(rounds):
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / rounds:
            a @ b
            count += 1
        best = max(best, count * 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


# ---------------------------------------------------------------------------
# Path (a): the PyTorch examples pipeline
# ---------------------------------------------------------------------------
def torchvision_mnist(n: int | None):
    """torchvision's MNIST over a temp copy of the raw files, gunzipped from ``$AE_DATA_DIR``.

    torchvision reads only uncompressed IDX files and must not download, so we give it
    a folder ``<tmp>/MNIST/raw/`` holding the four files unpacked from the verified .gz.
    """
    from torchvision import datasets, transforms

    tmp = Path(tempfile.mkdtemp(prefix="ae_bench_mnist_"))
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, path in verify("mnist").items():
        with gzip.open(path, "rb") as src, open(raw / name.removesuffix(".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    ds = datasets.MNIST(str(tmp), train=True, download=False, transform=transforms.ToTensor())
    shutil.rmtree(tmp, ignore_errors=True)  # torchvision keeps the data in memory once loaded
    if n is not None and n < len(ds):
        ds = torch.utils.data.Subset(ds, range(n))
    return ds


def train_standard(dataset, epochs: int, seed: int) -> tuple[nn.Module, float, float]:
    """Path (a), as the PyTorch examples VAE trains: returns model, seconds, last-epoch loss."""
    seed_everything(seed)
    model = VAE()
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        train_loss = 0.0
        for data, _ in loader:
            optimizer.zero_grad()
            loss = vae_loss(model, data)["loss"]
            loss.backward()
            train_loss += loss.item() * len(data)  # the example's per-batch host read
            optimizer.step()
    seconds = time.perf_counter() - t0
    return model, seconds, train_loss / len(dataset)


# ---------------------------------------------------------------------------
# Paths (b) and (c): common's device-resident batches and fit()
# ---------------------------------------------------------------------------
def train_common(images, epochs: int, seed: int, bf16: bool) -> tuple[nn.Module, float, float]:
    seed_everything(seed)
    model = VAE()
    batches = images.batches(BATCH, "cpu", seed=seed)
    optimizer = make_optimizer("adam", model.parameters(), lr=LR)
    t0 = time.perf_counter()
    history = fit(model, vae_loss, batches, optimizer, epochs, progress=False, bf16=bf16)
    seconds = time.perf_counter() - t0
    return model, seconds, history.last("train/loss")


def heldout_loss(model: nn.Module, test_batches, seed: int) -> float:
    """Negative ELBO on the 10,000 test images, evaluated in float32 for every path."""
    seed_everything(seed + 1)
    return evaluate_terms(model, vae_loss, test_batches)["loss"]


# ---------------------------------------------------------------------------
# The dSprites-sized case: the beta-VAE fully connected model (Higgins et al. 2017)
# ---------------------------------------------------------------------------
DSPRITES_LAYERS = [(4096, 1200), (1200, 1200), (1200, 20), (10, 1200), (1200, 1200), (1200, 1200), (1200, 4096)]
DSPRITES_BATCH = 64
BETA = 4.0


class BetaVAEFC(nn.Module):
    """Encoder 4096-1200-1200-(10 means, 10 log-variances); decoder 10-1200-1200-1200-4096 logits."""

    def __init__(self, latents: int = 10) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(4096, 1200), nn.ReLU(), nn.Linear(1200, 1200), nn.ReLU(),
                                 nn.Linear(1200, 2 * latents))
        self.dec = nn.Sequential(nn.Linear(latents, 1200), nn.Tanh(), nn.Linear(1200, 1200), nn.Tanh(),
                                 nn.Linear(1200, 1200), nn.Tanh(), nn.Linear(1200, 4096))

    def forward(self, x: torch.Tensor):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


def beta_vae_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    logits, mu, logvar = model(x)
    n = len(x)
    rec = F.binary_cross_entropy_with_logits(logits.float(), x.flatten(1).float(), reduction="sum") / n
    kl = -0.5 * torch.sum(1 + logvar.float() - mu.float().pow(2) - logvar.float().exp()) / n
    return {"loss": rec + BETA * kl, "rec": rec, "kl": kl}


def current_rss() -> int:
    """This process's resident memory in bytes now (psutil if installed, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def dsprites_worker(path: str, n: int, seed: int) -> dict:
    """Train the beta-VAE FC model on ``n`` random binary 64x64 images through one path.

    Runs in its own process so that its peak resident memory (ru_maxrss) is its own.
    Random binary inputs are fine for timing: the cost does not depend on the pixels.
    """
    torch.manual_seed(seed)
    images = (torch.rand(n + 8 * DSPRITES_BATCH, 1, 64, 64) < 0.2).to(torch.uint8) * 255
    from common.data import ImageSet

    data = ImageSet(images[:n])
    warm = ImageSet(images[n:])
    base_rss = current_rss()
    seed_everything(seed)
    model = BetaVAEFC()
    if path == "plain":
        floats = data.floats()
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(floats), batch_size=DSPRITES_BATCH,
                                             shuffle=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def epoch(loader_=loader) -> None:
            for (x,) in loader_:
                optimizer.zero_grad()
                loss = beta_vae_loss(model, x)["loss"]
                loss.backward()
                loss.item()
                optimizer.step()

        warm_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(warm.floats()),
                                                  batch_size=DSPRITES_BATCH)
        epoch(warm_loader)
        t0 = time.perf_counter()
        epoch()
        seconds = time.perf_counter() - t0
    else:
        bf16 = path == "bf16"
        optimizer = make_optimizer("adam", model.parameters(), lr=1e-4)
        fit(model, beta_vae_loss, warm.batches(DSPRITES_BATCH), optimizer, 1, progress=False, bf16=bf16)
        t0 = time.perf_counter()
        fit(model, beta_vae_loss, data.batches(DSPRITES_BATCH, seed=seed), optimizer, 1, progress=False, bf16=bf16)
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return {"path": path, "n": n, "seconds": seconds, "peak_rss": peak, "base_rss": base_rss}


def run_dsprites(n: int, seed: int) -> list[dict]:
    out = []
    for path in ("plain", "fp32", "bf16"):
        cmd = [sys.executable, __file__, "--_dsprites-worker", path, "--_n", str(n), "--seed", str(seed)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=1, help="epochs per path per repeat (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; ratios are medians (default 3)")
    p.add_argument("--quick", action="store_true", help="10,000 training images, 1 repeat, small dSprites case")
    p.add_argument("--dsprites", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the dSprites-sized beta-VAE (default on)")
    p.add_argument("--compile", action="store_true",
                   help="also time (b) with torch.compile(loss_fn): first epoch (with compile) and second epoch")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--_dsprites-worker", dest="worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_n", dest="worker_n", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(dsprites_worker(args.worker, args.worker_n, args.seed)))
        return 0

    n_train = 10_000 if args.quick else None
    repeats = 1 if args.quick else args.repeats
    t_start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")

    # fp32 and bf16 measured in turn, twice; the best 0.5 s burst of each dtype is its peak
    peak32 = peak16 = 0.0
    for _ in range(2):
        peak32 = max(peak32, matmul_peak(torch.float32, seconds=1.0, rounds=2))
        peak16 = max(peak16, matmul_peak(torch.bfloat16, seconds=1.0, rounds=2))
    print(f"matmul peak (2048x2048, best of 4 bursts of 0.5 s): fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")

    tv_data = torchvision_mnist(n_train)
    images = load_mnist("train")
    if n_train is not None:
        images = images.subset(slice(0, n_train))
    test_batches = load_mnist("test").batches(1000, shuffle=False)
    n = len(images)
    assert len(tv_data) == n

    # Warm-up (untimed): thread pool, oneDNN bf16 kernels, allocator. A few hundred images each.
    train_standard(torch.utils.data.Subset(tv_data, range(1024)), 1, args.seed)
    train_common(images.subset(slice(0, 1024)), 1, args.seed, bf16=False)
    train_common(images.subset(slice(0, 1024)), 1, args.seed, bf16=True)

    paths = {"a": "standard (DataLoader, Adam)", "b": "common fit() fp32", "c": "common fit() bf16"}
    secs: dict[str, list[float]] = {k: [] for k in paths}
    train_loss: dict[str, list[float]] = {k: [] for k in paths}
    tst_loss: dict[str, list[float]] = {k: [] for k in paths}
    for r in range(repeats):
        for key in paths:
            if key == "a":
                model, s, loss = train_standard(tv_data, args.epochs, args.seed)
            else:
                model, s, loss = train_common(images, args.epochs, args.seed, bf16=(key == "c"))
            secs[key].append(s)
            train_loss[key].append(loss)
            tst_loss[key].append(heldout_loss(model, test_batches, args.seed))
            print(f"  repeat {r + 1}/{repeats} ({key}) {s:6.2f} s  train {loss:7.2f}  test {tst_loss[key][-1]:7.2f}",
                  flush=True)

    samples = n * args.epochs
    flops = train_flops_per_sample(MNIST_LAYERS)
    med = {k: statistics.median(v) for k, v in secs.items()}
    # ratio of each path to (a): median over repeats of the per-repeat ratio
    ratio = {k: statistics.median(sa / sk for sa, sk in zip(secs["a"], secs[k])) for k in paths}
    print(f"\nVAE 784-400-20, batch {BATCH}, {n:,} images x {args.epochs} epoch(s), seed {args.seed}, "
          f"median of {repeats} interleaved repeat(s)")
    print(f"FLOPs per sample (fwd+bwd, dense layers) {flops / 1e6:.2f} M, per epoch {flops * n / 1e9:.0f} GFLOP")
    print(f"{'path':30s} {'s/epoch':>8s} {'samples/s':>10s} {'vs (a)':>7s} {'GFLOP/s':>8s} {'% peak':>7s} "
          f"{'train loss':>11s} {'test loss':>10s}")
    for key, name in paths.items():
        sps = samples / med[key]
        gf = sps * flops / 1e9
        peak = peak16 if key == "c" else peak32
        print(f"({key}) {name:26s} {med[key] / args.epochs:8.2f} {sps:10.0f} {ratio[key]:6.2f}x {gf:8.1f} "
              f"{100 * gf / peak:6.1f}% {statistics.median(train_loss[key]):11.2f} "
              f"{statistics.median(tst_loss[key]):10.2f}")
    print("(% peak is against the fp32 matmul peak for (a) and (b), the bf16 peak for (c); "
          "losses are nats per example, test loss evaluated in fp32)")

    # The gap of bf16 to fp32: the larger of the train-loss and test-loss gaps, median over repeats.
    gap_train = statistics.median(abs(c - b) for b, c in zip(train_loss["b"], train_loss["c"]))
    gap_test = statistics.median(abs(c - b) for b, c in zip(tst_loss["b"], tst_loss["c"]))
    gap = max(gap_train, gap_test)
    ab_train = statistics.median(abs(b - a) for a, b in zip(train_loss["a"], train_loss["b"]))
    ab_test = statistics.median(abs(b - a) for a, b in zip(tst_loss["a"], tst_loss["b"]))
    print(f"loss gap (c) bf16 vs (b) fp32: train {gap_train:.2f}, test {gap_test:.2f} nats per example")
    print(f"loss gap (b) vs (a): train {ab_train:.2f}, test {ab_test:.2f} nats per example "
          f"(same init; the batch orders differ: DataLoader's sampler vs Batches' own generator)")

    if args.compile:
        # Does torch.compile pay for its compile time? Time its first epoch (compile included) and a second one.
        seed_everything(args.seed)
        model = VAE()
        batches = images.batches(BATCH, "cpu", seed=args.seed)
        optimizer = make_optimizer("adam", model.parameters(), lr=LR)
        compiled = torch.compile(vae_loss, dynamic=False)
        t0 = time.perf_counter()
        fit(model, compiled, batches, optimizer, 1, progress=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit(model, compiled, batches, optimizer, 1, progress=False)
        second = time.perf_counter() - t0
        plain = med["b"] / args.epochs
        verdict = (f"pays back after {(first - second) / (plain - second):.0f} epochs" if second < plain
                   else "never pays back")
        print(f"torch.compile(loss_fn) on (b): first epoch {first:.1f} s (compile included), second {second:.2f} s, "
              f"uncompiled {plain:.2f} s: {verdict}")

    if args.dsprites:
        n_ds = 512 if args.quick else 2048
        print(f"\ndSprites-sized beta-VAE FC (4096-1200-1200-20 / 10-1200-1200-1200-4096), batch {DSPRITES_BATCH}, "
              f"{n_ds} random binary 64x64 images (timing only), one process per path")
        ds_flops = train_flops_per_sample(DSPRITES_LAYERS)
        print(f"FLOPs per sample {ds_flops / 1e6:.1f} M; an epoch of 737,280 images is "
              f"{ds_flops * 737_280 / 1e12:.1f} TFLOP")
        print(f"{'path':36s} {'s/1000':>7s} {'vs plain':>8s} {'GFLOP/s':>8s} {'min/epoch':>9s} "
              f"{'peak RSS':>9s} {'+training':>9s}")
        results = run_dsprites(n_ds, args.seed)
        names = {"plain": "plain loop, DataLoader, default Adam", "fp32": "common fit() fp32, fused Adam",
                 "bf16": "common fit() bf16, fused Adam"}
        base = results[0]["seconds"] / results[0]["n"]
        for res in results:
            per = res["seconds"] / res["n"]
            print(f"{names[res['path']]:36s} {1000 * per:7.2f} {base / per:7.2f}x {ds_flops / per / 1e9:8.1f} "
                  f"{per * 737_280 / 60:9.1f} {res['peak_rss'] / 2**20:7.0f} MB "
                  f"{(res['peak_rss'] - res['base_rss']) / 2**20:6.0f} MB")
        print("(peak RSS: the worker process's ru_maxrss; +training: above its RSS just before the model was built)")

    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    bf16_used = "bf16 native" if native_bf16(torch.device("cpu")) else "bf16 NOT native: path (c) ran in float32"
    print(f"speedup fp32 {ratio['b']:.1f}x, bf16 {ratio['c']:.1f}x, loss gap {gap:.2f} nats ({bf16_used})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
