"""Denoising autoencoders and their stacking (Vincent, Larochelle, Bengio & Manzagol, ICML 2008).

The paper's names are kept:

- ``x`` the clean input in [0, 1]^d, ``x~`` its corrupted copy, drawn from q_D(x~ | x);
- ``y = f_theta(x~) = s(W x~ + b)`` the code (sec. 2.3), ``z = g_theta'(y) = s(W' y + b')``
  the reconstruction, with tied weights ``W' = W^T``;
- the loss is the reconstruction cross-entropy L_H(x, z) against the *clean* ``x`` (eq. 2 / sec. 2.3).

Corruption is the paper's *masking noise* (sec. 2.3): "for each input x, a fixed number
nu*d of components are chosen at random, and their value is forced to 0, while the
others are left untouched". It is not dropout: the count is fixed, not binomial, and the
survivors are not rescaled by 1/(1-nu).

Stacking (sec. 3.4, "stacked denoising autoencoders", SdA): layer k is a dA trained on
the *clean* code of layer k-1 (corruption is applied only to the input of the layer
being trained), then the encoders are stacked under a softmax layer and the whole
network is fine-tuned on the labels. With nu = 0 this is the stacked plain autoencoder
(SAA) of Table 1.

This module also holds the MNIST-derived benchmark variants (``rotate_digits``,
``random_background``). The filter statistics that put numbers on Figure 3 live in
``common.filters`` (the k-sparse paper uses them too) and are re-exported here.

Every training function takes an optional ``run`` (:class:`common.run.Run`) and a
``name``: with them the model is trained through ``run.train`` (a named checkpoint that
is reloaded when finished and resumed when interrupted, keyed by ``config``); without
them it is trained by plain :func:`common.train.fit` (tests, quick experiments).
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from common.data import Batches, ImageSet
from common.evaluate import classifier_error
from common.train import History, fit, make_optimizer


def train_model(run, name: str | None, model: nn.Module, loss_fn: Callable, batches, epochs: int,
                optimizer: torch.optim.Optimizer, config: Mapping[str, Any], **fit_kwargs) -> History:
    """Train ``model`` through ``run.train(name, ...)`` when a run is given, else with plain ``fit``.

    ``config`` is what keys the checkpoint besides the model, optimizer and epochs (data,
    noise level, layer, ...); this module's source is hashed into the key too, so a
    change to the paper's code never reuses an old checkpoint.
    """
    if run is None:
        return fit(model, loss_fn, batches, optimizer, epochs, **fit_kwargs)
    if not name:
        raise ValueError("training through a run needs a model name")
    return run.train(name, model, loss_fn, batches, epochs, optimizer=optimizer, config=dict(config),
                     sources=(sys.modules[__name__],), **fit_kwargs)


# ---------------------------------------------------------------------------
# Corruption
# ---------------------------------------------------------------------------
def n_masked(nu: float, d: int) -> int:
    """round(nu * d), rounding halves up (Python's ``round`` rounds them to even)."""
    if not 0.0 <= nu <= 1.0:
        raise ValueError(f"destruction fraction nu must be in [0, 1], got {nu}")
    return int(math.floor(nu * d + 0.5))


def masking_noise(x: torch.Tensor, nu: float, generator: torch.Generator | None = None,
                  return_mask: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Masking noise q_D(x~ | x) of sec. 2.3: in each row, exactly round(nu*d) components set to 0.

    ``x`` is (N, d) (or (N, ...), flattened per row). The positions are drawn
    independently per row, uniformly among all d-subsets of size k = round(nu*d): the
    k smallest of d i.i.d. uniforms. Everything stays on ``x``'s device and is one
    vectorised call (no Python loop over rows). Survivors keep their exact value: no
    1/(1-nu) rescaling, unlike ``F.dropout``. With ``return_mask`` the boolean mask of
    destroyed positions (True = forced to 0) is returned as well.
    """
    shape = x.shape
    flat = x.reshape(shape[0], -1)
    n, d = flat.shape
    k = n_masked(nu, d)
    mask = torch.zeros(n, d, dtype=torch.bool, device=x.device)
    if k > 0:
        scores = torch.rand(n, d, device=x.device, generator=generator)
        idx = scores.topk(k, dim=1, largest=False, sorted=False).indices
        mask.scatter_(1, idx, True)
    out = flat.masked_fill(mask, 0.0).reshape(shape)
    return (out, mask.reshape(shape)) if return_mask else out


# ---------------------------------------------------------------------------
# The denoising autoencoder (one layer, tied weights)
# ---------------------------------------------------------------------------
class TiedAutoencoder(nn.Module):
    """y = s(W x + b), z = s(W^T y + b') (sec. 2.3, tied weights W' = W^T).

    Initialisation as in the authors' lab tutorial: W ~ U(-a, a) with
    a = 4 * sqrt(6 / (d + h)) (the sigmoid version of Glorot's range), biases 0.
    """

    def __init__(self, d: int, h: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        a = 4.0 * math.sqrt(6.0 / (d + h))
        self.W = nn.Parameter((torch.rand(h, d, generator=generator) * 2 - 1) * a)
        self.b = nn.Parameter(torch.zeros(h))
        self.b_prime = nn.Parameter(torch.zeros(d))

    @property
    def d(self) -> int:
        return self.W.shape[1]

    @property
    def h(self) -> int:
        return self.W.shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code y = f_theta(x) = s(W x + b)."""
        return torch.sigmoid(F.linear(x.reshape(len(x), -1), self.W, self.b))

    def decode_logits(self, y: torch.Tensor) -> torch.Tensor:
        """W^T y + b' (the reconstruction before the sigmoid)."""
        return F.linear(y, self.W.t(), self.b_prime)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """z = g_theta'(y) = s(W^T y + b')."""
        return torch.sigmoid(self.decode_logits(y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def cross_entropy(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L_H(x, z) = -sum_k [x_k log z_k + (1 - x_k) log(1 - z_k)] per example, z = s(logits), in nats."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)


def dae_loss(nu: float) -> Callable:
    """Loss for ``common.train.fit``: L_H(x, g(f(x~))) with x~ = masking_noise(x, nu), averaged over the batch.

    The target is the clean x (sec. 2.3): the net must fill in the destroyed
    components from the others. ``nu = 0`` is the plain autoencoder. In eval mode
    (``fit``'s validation pass) the loss is the clean reconstruction error.
    """

    def loss_fn(model: TiedAutoencoder, x: torch.Tensor, y=None) -> dict[str, torch.Tensor]:
        x = x.reshape(len(x), -1)
        x_tilde = masking_noise(x, nu) if (model.training and nu > 0) else x
        rec = cross_entropy(model.decode_logits(model.encode(x_tilde)), x).mean()
        return {"loss": rec, "rec": rec}

    return loss_fn


def train_dae(x: torch.Tensor, h: int, nu: float, epochs: int, lr: float, batch_size: int, seed: int,
              init: TiedAutoencoder | None = None, progress: bool = False, desc: str = "dA",
              run=None, name: str | None = None, config: Mapping[str, Any] | None = None):
    """Train one tied dA on the float rows ``x`` (N, d) in [0, 1]; return (model, History).

    ``init`` (copied, never modified) fixes the initial weights, so that several noise
    levels start from the same point (Figure 3 compares filters "from the same
    initialisation"). Adam (``common.train.make_optimizer``) replaces the paper's SGD.
    With ``run`` and ``name`` the model is a named, resumable checkpoint; ``config``
    must then describe ``x`` (and ``init``), which the key cannot see.
    """
    g = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(init) if init is not None else TiedAutoencoder(x.shape[1], h, generator=g)
    model = model.to(x.device)
    torch.manual_seed(seed)  # the masking positions
    opt = make_optimizer("adam", model.parameters(), lr=lr)
    key = {**(config or {}), "h": h, "nu": nu, "lr": lr, "seed": seed, "init": init is not None}
    hist = train_model(run, name, model, dae_loss(nu), Batches(x, None, batch_size, seed=seed), epochs, opt, key,
                       progress=progress, desc=desc)
    return model, hist


# ---------------------------------------------------------------------------
# Stacking: greedy layer-wise pretraining, then supervised fine-tuning
# ---------------------------------------------------------------------------
@torch.no_grad()
def encode_all(model: TiedAutoencoder, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    model.eval()
    return torch.cat([model.encode(xb) for xb in x.split(batch_size)])


def pretrain_stack(x: torch.Tensor, sizes: Sequence[int], nu: float, epochs: int, lr: float, batch_size: int,
                   seed: int, progress: bool = False, run=None, name: str | None = None,
                   config: Mapping[str, Any] | None = None) -> list[TiedAutoencoder]:
    """Greedy layer-wise pretraining (sec. 3.4): layer k is a dA on the clean code of layer k-1.

    The corruption is applied only to the input of the layer being trained; the
    codes passed up are computed from clean inputs. ``nu = 0`` gives the SAA. With
    ``run``, layer k is the named model ``{name}_layer{k + 1}``, keyed by ``config``
    (which describes ``x``) and every setting of the layers below it.
    """
    layers, h = [], x
    for k, size in enumerate(sizes):
        key = {**(config or {}), "sizes_below": list(sizes[:k]), "pre_epochs": epochs, "batch_size": batch_size}
        layer, _ = train_dae(h, size, nu, epochs, lr, batch_size, seed + 1000 * k, progress=progress,
                             desc=f"pretrain layer {k + 1} (nu={nu:g})", run=run,
                             name=f"{name}_layer{k + 1}" if name else None, config=key)
        layers.append(layer)
        h = encode_all(layer, h)
    return layers


class StackedClassifier(nn.Module):
    """The fine-tuned network: the stacked encoders y_k = s(W_k y_{k-1} + b_k), then a softmax layer."""

    def __init__(self, encoders: Sequence[TiedAutoencoder], n_classes: int = 10) -> None:
        super().__init__()
        self.hidden = nn.ModuleList()
        for enc in encoders:
            lin = nn.Linear(enc.d, enc.h)
            with torch.no_grad():
                lin.weight.copy_(enc.W)
                lin.bias.copy_(enc.b)
            self.hidden.append(lin)
        self.out = nn.Linear(encoders[-1].h, n_classes)
        nn.init.zeros_(self.out.weight)  # as in the authors' logistic layer
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), -1)
        for lin in self.hidden:
            h = torch.sigmoid(lin(h))
        return self.out(h)


def classification_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Negative log-likelihood of the softmax output (nats per example), with the error rate recorded."""
    logits = model(x)
    return {"loss": F.cross_entropy(logits, y), "err": (logits.argmax(1) != y).float().mean()}


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


def fine_tune(encoders: Sequence[TiedAutoencoder], train: Batches, x_val: torch.Tensor, y_val: torch.Tensor,
              epochs: int, lr: float, seed: int, patience: int | None = None, run=None, name: str | None = None,
              config: Mapping[str, Any] | None = None) -> FineTuneResult:
    """Supervised fine-tuning of the whole stack plus softmax; the epoch is chosen on validation.

    After every epoch the validation error is measured; the returned model is the one
    of the epoch with the lowest validation error (``fit(best_on="val/err")``: the
    paper chooses the number of epochs on the validation set), and with ``patience``
    training stops after that many epochs without improvement (early stopping).
    ``config`` (with ``run``) must describe the encoders and the data.
    """
    torch.manual_seed(seed)
    model = StackedClassifier([copy.deepcopy(e) for e in encoders]).to(x_val.device)
    opt = make_optimizer("adam", model.parameters(), lr=lr)
    key = {**(config or {}), "ft_lr": lr, "ft_seed": seed, "patience": patience, "n_val": len(x_val)}
    hist = train_model(run, name, model, classification_loss, train, epochs, opt, key,
                       val=Batches(x_val, y_val, 5000, shuffle=False), progress=False,
                       best_on="val/err", patience=patience)
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

    @property
    def cap_binds(self) -> bool:
        """True when fine-tuning ran to its epoch cap without stopping early."""
        return len(self.val_curve) >= self.max_epochs


def select_by_validation(runs: Sequence[StackRun]) -> StackRun:
    """The run with the lowest validation error (ties: the first, i.e. the smaller nu in grid order)."""
    return min(runs, key=lambda r: r.val_error)


def run_stack(x_train: torch.Tensor, train_batches: Batches, x_val: torch.Tensor, y_val: torch.Tensor,
              sizes: Sequence[int], nu: float, pre_epochs: int, pre_lr: float, ft_epochs: int, ft_lr: float,
              batch_size: int, seed: int, patience: int | None = None, run=None, name: str | None = None,
              config: Mapping[str, Any] | None = None) -> StackRun:
    """Pretrain a stack at noise ``nu`` (SAA when 0), fine-tune it, pick the epoch on validation.

    With ``run``, the layers are the named models ``{name}_layer{k}`` and the
    fine-tuned network ``{name}_finetune``; ``config`` describes the data.
    """
    base = {**(config or {}), "sizes": list(sizes), "nu": nu, "pre_lr": pre_lr, "seed": seed}
    layers = pretrain_stack(x_train, sizes, nu, pre_epochs, pre_lr, batch_size, seed, run=run, name=name, config=base)
    ft = fine_tune(layers, train_batches, x_val, y_val, ft_epochs, ft_lr, seed, patience=patience, run=run,
                   name=f"{name}_finetune" if name else None, config={**base, "pre_epochs": pre_epochs})
    return StackRun(nu, ft.best_epoch, ft.val_error, ft.val_curve, ft.model, seed, ft_epochs)


# ---------------------------------------------------------------------------
# Benchmarks: MNIST-basic and the derived variants (Larochelle et al., ICML 2007)
# ---------------------------------------------------------------------------
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
