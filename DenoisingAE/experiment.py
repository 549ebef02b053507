"""The experiments of the DenoisingAE notebooks: training recipes, model selection, data and measurements.

The paper's model and loss are in :mod:`DenoisingAE.denoising` (and the regularised family
in :mod:`DenoisingAE.regularized`); this module trains them the way the notebooks do.
Every model is a named checkpoint of a :class:`common.run.Run` (``run.train``): reloaded
when finished, resumed when interrupted, keyed by the ``config`` a caller passes (what
the key cannot see: the data, the initial weights) together with the source of
``denoising`` and of this module's recipes and data builders (:func:`_sources`).

- DenoisingAE.ipynb, Fig. 3: :func:`train_dae`. Table 1 (sec. 3.4): :func:`pretrain_stack`
  (greedy, on clean codes), :func:`fine_tune` (epoch chosen on validation), :func:`run_stack`,
  and the selection protocol (:class:`Benchmark`, :func:`stack_on`,
  :func:`select_by_validation`, :func:`stack_summary`) on MNIST-basic and the variants
  derived here (:func:`rotate_digits`, :func:`random_background`, and ``backgrounds.image_background``) or
  generated (``shapes``), each built by :func:`make_benchmark`.
- RegularizedAE.ipynb: the measurements :func:`distance_from_identity`, :func:`pca_basis`,
  :func:`principal_angles_deg` and :func:`autoencoder_metrics`.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from common.data import Batches, ImageSet
from common.evaluate import classifier_error, error_interval
from common.run import Run
from common.train import History, make_optimizer
from DenoisingAE import backgrounds, denoising, shapes
from DenoisingAE.backgrounds import image_background
from DenoisingAE.config import SYNTHETIC_SPLITS, StackConfig
from DenoisingAE.denoising import StackedClassifier, TiedAutoencoder, classification_loss, cross_entropy, dae_loss
from DenoisingAE.regularized import contractive_penalty


def _sources() -> tuple:
    """The code a trained model's key hashes beyond its layers' and loss's modules (``denoising``, found by Run).

    The recipes and the data they build: editing how a stack is pretrained, what a layer
    trains on or how a dataset variant is drawn retrains. Not the whole of this module: it
    also holds measurements, and editing one must not throw away an hour of training.
    """
    return (train_dae, encode_all, pretrain_stack, fine_tune, rotate_digits, random_background)


def _benchmark_sources() -> tuple:
    """What builds Table 1's benchmarks beyond rot and bg-rand (in :func:`_sources`): keyed into the stacks'
    models only, so that editing a generator retrains the stacks it feeds and not Fig. 3's filters."""
    return (make_benchmark, backgrounds, shapes)


# ---------------------------------------------------------------------------
# One denoising autoencoder (Fig. 3, and each layer of a stack)
# ---------------------------------------------------------------------------
def train_dae(run: Run, name: str, x: torch.Tensor, h: int, nu: float, epochs: int, lr: float, batch_size: int,
              seed: int, *, init: TiedAutoencoder | None = None, optimizer: str = "adam",
              config: Mapping[str, Any] | None = None, data_sources: tuple = ()) -> tuple[TiedAutoencoder, History]:
    """Train the tied dA ``name`` on the float rows ``x`` (N, d) in [0, 1]; return (model, History).

    ``init`` (copied, never modified) fixes the initial weights, so that several noise
    levels start from the same point (Figure 3 compares filters "from the same
    initialisation"). ``optimizer`` is Adam in every profile, in place of the paper's SGD.
    ``config`` must describe ``x`` (and ``init``), which the checkpoint key cannot see; ``data_sources``
    adds the code that built ``x`` to the key.
    """
    g = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(init) if init is not None else TiedAutoencoder(x.shape[1], h, generator=g)
    model = model.to(x.device)
    torch.manual_seed(seed)  # the masking positions
    opt = make_optimizer(optimizer, model.parameters(), lr=lr)
    key = {**(config or {}), "h": h, "nu": nu, "lr": lr, "seed": seed, "init": init is not None}
    hist = run.train(name, model, dae_loss(nu), Batches(x, None, batch_size, seed=seed), epochs, optimizer=opt,
                     config=key, sources=_sources() + tuple(data_sources))
    return model, hist


# ---------------------------------------------------------------------------
# Stacking (sec. 3.4): greedy layer-wise pretraining, then supervised fine-tuning
# ---------------------------------------------------------------------------
@torch.no_grad()
def encode_all(model: TiedAutoencoder, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """The clean code y = f_theta(x) of every row of ``x``, in eval mode."""
    model.eval()
    return torch.cat([model.encode(xb) for xb in x.split(batch_size)])


def pretrain_stack(run: Run, name: str, x: torch.Tensor, sizes: Sequence[int], nu: float, epochs: int, lr: float,
                   batch_size: int, seed: int, *, optimizer: str = "adam",
                   config: Mapping[str, Any] | None = None) -> list[TiedAutoencoder]:
    """Greedy layer-wise pretraining (sec. 3.4): layer k is a dA on the clean code of layer k-1.

    The corruption is applied only to the input of the layer being trained; the codes
    passed up are computed from clean inputs. ``nu = 0`` gives the SAA. Layer k is the
    named model ``{name}_layer{k + 1}``, keyed by ``config`` (which describes ``x``) and
    every setting of the layers below it.
    """
    layers, h = [], x
    for k, size in enumerate(sizes):
        key = {**(config or {}), "sizes_below": list(sizes[:k]), "pre_epochs": epochs, "batch_size": batch_size}
        layer, _ = train_dae(run, f"{name}_layer{k + 1}", h, size, nu, epochs, lr, batch_size, seed + 1000 * k,
                             optimizer=optimizer, config=key, data_sources=_benchmark_sources())
        layers.append(layer)
        h = encode_all(layer, h)
    return layers


def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 5000) -> float:
    """Classification error (%) of ``model`` on float inputs ``x``, in eval mode."""
    model.eval()
    return classifier_error(model, x, y, batch_size)


@dataclass
class FineTuneResult:
    model: nn.Module
    best_epoch: int                      # 1-based epoch with the lowest validation error
    val_error: float                     # % at best_epoch
    val_curve: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    max_epochs: int = 0                  # the epoch cap

    @property
    def cap_binds(self) -> bool:
        """True when training ran to the cap without stopping early: validation was still improving."""
        return len(self.val_curve) >= self.max_epochs


def fine_tune(run: Run, name: str, encoders: Sequence[TiedAutoencoder], train: Batches, x_val: torch.Tensor,
              y_val: torch.Tensor, epochs: int, lr: float, seed: int, *, patience: int | None = None,
              optimizer: str = "adam", config: Mapping[str, Any] | None = None, n_classes: int = 10) -> FineTuneResult:
    """Supervised fine-tuning of the whole stack plus softmax; the epoch is chosen on validation.

    After every epoch the validation error is measured; the returned model is the one
    of the epoch with the lowest validation error (``fit(best_on="val/err")``: the
    paper chooses the number of epochs on the validation set), and with ``patience``
    training stops after that many epochs without improvement (early stopping).
    ``config`` must describe the encoders and the data; ``n_classes`` is the softmax's size.
    """
    torch.manual_seed(seed)
    model = StackedClassifier([copy.deepcopy(e) for e in encoders], n_classes).to(x_val.device)
    opt = make_optimizer(optimizer, model.parameters(), lr=lr)
    key = {**(config or {}), "ft_lr": lr, "ft_seed": seed, "patience": patience, "n_val": len(x_val),
           **({} if n_classes == 10 else {"n_classes": n_classes})}
    hist = run.train(name, model, classification_loss, train, epochs, optimizer=opt, config=key,
                     sources=_sources() + _benchmark_sources(), val=Batches(x_val, y_val, 5000, shuffle=False),
                     best_on="val/err",
                     patience=patience)
    curve = [100.0 * e for e in hist["val/err"]]
    return FineTuneResult(model, hist.best_epoch + 1, curve[hist.best_epoch], curve, hist["train/loss"], epochs)


@dataclass
class StackRun:
    """One (nu, seed, pretrain, fine-tune) run of the stacked network."""

    nu: float
    best_epoch: int
    val_error: float
    val_curve: list[float]
    model: nn.Module
    seed: int = 0
    max_epochs: int = 0
    test_error: float = math.nan         # % on the test set, once measured (:func:`stack_on`)

    @property
    def cap_binds(self) -> bool:
        """True when fine-tuning ran to its epoch cap without stopping early."""
        return len(self.val_curve) >= self.max_epochs


def select_by_validation(runs: Sequence[StackRun]) -> StackRun:
    """The run with the lowest validation error (ties: the first, i.e. the smaller nu in grid order)."""
    return min(runs, key=lambda r: r.val_error)


def run_stack(run: Run, name: str, x_train: torch.Tensor, train_batches: Batches, x_val: torch.Tensor,
              y_val: torch.Tensor, sizes: Sequence[int], nu: float, pre_epochs: int, pre_lr: float, ft_epochs: int,
              ft_lr: float, batch_size: int, seed: int, *, patience: int | None = None, optimizer: str = "adam",
              config: Mapping[str, Any] | None = None, n_classes: int = 10) -> StackRun:
    """Pretrain a stack at noise ``nu`` (SAA when 0), fine-tune it, pick the epoch on validation.

    The layers are the named models ``{name}_layer{k}`` and the fine-tuned network
    ``{name}_finetune``; ``config`` describes the data.
    """
    base = {**(config or {}), "sizes": list(sizes), "nu": nu, "pre_lr": pre_lr, "seed": seed}
    layers = pretrain_stack(run, name, x_train, sizes, nu, pre_epochs, pre_lr, batch_size, seed,
                            optimizer=optimizer, config=base)
    ft = fine_tune(run, f"{name}_finetune", layers, train_batches, x_val, y_val, ft_epochs, ft_lr, seed,
                   patience=patience, optimizer=optimizer, config={**base, "pre_epochs": pre_epochs},
                   n_classes=n_classes)
    return StackRun(nu, ft.best_epoch, ft.val_error, ft.val_curve, ft.model, seed, ft_epochs)


# ---------------------------------------------------------------------------
# Table 1's protocol: both sides choose the best of the same number of runs on validation
# ---------------------------------------------------------------------------
@dataclass
class Benchmark:
    """One Table 1 benchmark on the device: its training set (seeded batches per run) and float splits."""

    name: str                            # "basic", "rot", ..., "convex" (``StackConfig.variants``)
    train: ImageSet
    x_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    device: torch.device | str
    key: dict[str, Any]                  # what keys its models' checkpoints: the data, split and draw
    n_classes: int = 10

    @classmethod
    def on_device(cls, name: str, splits: Sequence[ImageSet], device: torch.device | str,
                  draw_seed: int) -> Benchmark:
        tr, va, te = splits
        x_tr, x_va, x_te = (s.floats(device).reshape(len(s), -1) for s in (tr, va, te))
        data = name if name in SYNTHETIC_SPLITS else f"mnist-{name}"
        key = {"data": data, "split": [len(tr), len(va), len(te)], "draw_seed": draw_seed}
        n_classes = int(torch.cat([tr.y, va.y, te.y]).max()) + 1
        return cls(name, tr, x_tr, x_va, va.y.to(device), x_te, te.y.to(device), device, key, n_classes)


def stack_on(run: Run, bench: Benchmark, cfg: StackConfig, nu: float, seed: int) -> StackRun:
    """:func:`run_stack` at noise ``nu`` and ``seed`` on ``bench`` with ``cfg``'s recipe, then its test error.

    The models are named ``stack_{benchmark}_nu{100 nu}_s{seed}``; a line with the
    validation and test error is printed.
    """
    pre_epochs, ft_epochs = cfg.epochs_for(bench.name)
    r = run_stack(run, f"stack_{bench.name}_nu{round(100 * nu):02d}_s{seed}", bench.x_train,
                  bench.train.batches(cfg.batch_size, bench.device, seed=seed), bench.x_val, bench.y_val,
                  cfg.sizes, nu, pre_epochs, cfg.pre_lr, ft_epochs, cfg.ft_lr, cfg.batch_size, seed,
                  patience=cfg.ft_patience, optimizer=cfg.optimizer, config=bench.key, n_classes=bench.n_classes)
    r.test_error = error_rate(r.model, bench.x_test, bench.y_test)
    print(f"{bench.name:8s} nu={nu:.2f} seed {seed}: validation error {r.val_error:.2f}% at fine-tuning epoch "
          f"{r.best_epoch} of {len(r.val_curve)} run (cap {ft_epochs}{', binds' if r.cap_binds else ''}); "
          f"test {r.test_error:.2f}%")
    return r


def stack_summary(saa_runs: Sequence[StackRun], sda_runs: Sequence[StackRun], sda_seeds: Sequence[StackRun],
                  n_test: int, pre_epochs: int, ft_epochs: int) -> dict[str, Any]:
    """Table 1's numbers for one benchmark: the SAA-3 and SdA-3 chosen on validation, and every run.

    ``sda_seeds`` are the selected SdA-3 and its extra seeds (the seed spread). Each
    selected model gets its test error with a 95% Wilson interval over ``n_test`` images.
    """
    saa, sda = select_by_validation(saa_runs), select_by_validation(sda_runs)
    out: dict[str, Any] = {}
    for label, r in (("SAA-3", saa), ("SdA-3", sda)):
        lo, hi = error_interval(r.test_error, n_test)
        out[label] = dict(test_error=r.test_error, ci95=[lo, hi], nu=r.nu, seed=r.seed, val_error=r.val_error,
                          epochs=r.best_epoch, epochs_run=len(r.val_curve), cap_binds=r.cap_binds,
                          val_curve=r.val_curve)
    out["seeds"] = {"SAA-3": [r.test_error for r in saa_runs], "SdA-3": [r.test_error for r in sda_seeds]}
    out["val_by_run"] = {**{f"SAA seed {r.seed}": r.val_error for r in saa_runs},
                         **{f"SdA nu={r.nu:g}": r.val_error for r in sda_runs}}
    out["cap_binds"] = {f"nu={r.nu:g} seed {r.seed}": r.cap_binds for r in [*saa_runs, *sda_runs, *sda_seeds[1:]]}
    out["pre_epochs"], out["ft_epochs"] = pre_epochs, ft_epochs
    return out


# ---------------------------------------------------------------------------
# Table 1's benchmarks (Larochelle et al., ICML 2007): derived from MNIST-basic, or generated
# ---------------------------------------------------------------------------
def make_benchmark(name: str, basic: ImageSet, cfg: StackConfig, seed: int) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(train, validation, test) of Table 1's benchmark ``name`` under ``cfg``.

    basic, rot, bg-rand, bg-img and rot-bg-img are MNIST-basic (``basic``: n_train + n_val + n_test
    images) or derived from that same draw, each variant with its own seed offset, cut at the
    same bounds. rect, rect-img and convex are generated (``DenoisingAE.shapes``) at Larochelle et
    al.'s sizes (``cfg.synthetic_splits``), the three parts drawn as one set from one seed.
    """
    if name in SYNTHETIC_SPLITS:
        sizes = cfg.synthetic_splits(name)
        make = {"rect": shapes.rectangles, "rect-img": shapes.rectangles_image, "convex": shapes.convex}[name]
        data = make(sum(sizes), seed + 5 + list(SYNTHETIC_SPLITS).index(name))
    else:
        sizes = (cfg.n_train, cfg.n_val, cfg.n_test)
        derive = {"basic": lambda: basic, "rot": lambda: rotate_digits(basic, seed + 1),
                  "bg-rand": lambda: random_background(basic, seed + 2),
                  "bg-img": lambda: image_background(basic, seed + 3),
                  "rot-bg-img": lambda: image_background(rotate_digits(basic, seed + 1), seed + 4)}
        if name not in derive:
            raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join([*derive, *SYNTHETIC_SPLITS])}")
        data = derive[name]()
        if len(data) != sum(sizes):
            raise ValueError(f"MNIST-basic has {len(data)} images; the profile's split needs {sum(sizes)}")
    bounds = np.cumsum([0, *sizes])
    return tuple(data.subset(slice(int(a), int(b))) for a, b in zip(bounds, bounds[1:]))


def rotate_digits(data: ImageSet, seed: int) -> ImageSet:
    """"rot": each digit rotated by an angle drawn uniformly in [0, 2*pi) (Larochelle et al. 2007).

    Derived here from MNIST with ``torchvision.transforms.v2.functional.rotate``
    (bilinear); not the released ``mnist_rotation_new`` files.
    """
    from torchvision.transforms.v2 import functional as TF

    g = torch.Generator().manual_seed(seed)
    angles = torch.rand(len(data), generator=g) * 360.0
    x = torch.stack([TF.rotate(img, float(a), interpolation=TF.InterpolationMode.BILINEAR)
                     for img, a in zip(data.x, angles)])
    return ImageSet(x, data.y, f"{data.name}-rot")


def random_background(data: ImageSet, seed: int) -> ImageSet:
    """"bg-rand": background pixels replaced by uniform noise, x = max(digit, U(0, 1)) per pixel.

    As Larochelle et al. (2007) built ``mnist_background_random``; derived here, not
    their released files. Kept as uint8 (noise uniform on 0..255).
    """
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, data.x.shape, generator=g, dtype=torch.int16).to(torch.uint8)
    return ImageSet(torch.maximum(data.x, noise), data.y, f"{data.name}-bg-rand")


# ---------------------------------------------------------------------------
# RegularizedAE.ipynb's measurements
# ---------------------------------------------------------------------------
def distance_from_identity(M: torch.Tensor, pixels: torch.Tensor | None = None) -> float:
    """Relative Frobenius distance ||M - I||_F / ||I||_F = ||M - I||_F / sqrt(d).

    With ``pixels``, the rows and columns are restricted to those pixels first (the
    sub-matrix M[pixels][:, pixels] against the identity of that size): pixels that
    never vary in the data get no gradient, so the map there stays at its init.
    0 means M = I; a zero matrix gives 1.
    """
    M = M.detach().float().cpu()
    if pixels is not None:
        idx = pixels.cpu()
        M = M[idx][:, idx]
    return float(torch.linalg.matrix_norm(M - torch.eye(len(M))) / math.sqrt(len(M)))


def pca_basis(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(d, k) orthonormal basis of the top-k principal subspace (scikit-learn PCA, centred data)."""
    from sklearn.decomposition import PCA

    return PCA(n_components=k, svd_solver="full", random_state=seed).fit(x).components_.T


def principal_angles_deg(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Principal angles (degrees, largest first) between the column spaces of A and B (scipy)."""
    from scipy.linalg import subspace_angles

    return np.degrees(subspace_angles(np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)))


@torch.no_grad()
def autoencoder_metrics(model: TiedAutoencoder, x: torch.Tensor, near_zero: float = 0.1,
                        batch_size: int = 2000) -> dict[str, float]:
    """Clean-input metrics on ``x`` (N, d): reconstruction error and code sparsity.

    ``rec_ce``: cross-entropy L_H(x, z) in nats per example; ``rec_mse``: squared
    error per example; ``mean_code``: mean activation of y; ``near_zero_share``: share
    of code values y_j below ``near_zero``; ``jacobian_fro2``: mean ||J||_F^2.
    """
    model.eval()
    ce = mse = code_sum = below = jac = 0.0
    n = len(x)
    for xb in x.split(batch_size):
        xb = xb.reshape(len(xb), -1)
        yb = model.encode(xb)
        logits = model.decode_logits(yb)
        ce += float(cross_entropy(logits, xb).sum())
        mse += float((torch.sigmoid(logits) - xb).pow(2).sum())
        code_sum += float(yb.mean(1).sum())
        below += float((yb < near_zero).float().mean(1).sum())
        jac += float(contractive_penalty(model, yb).sum())
    return {"rec_ce": ce / n, "rec_mse": mse / n, "mean_code": code_sum / n, "near_zero_share": below / n,
            "jacobian_fro2": jac / n}
