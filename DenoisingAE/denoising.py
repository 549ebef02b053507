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
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.data import Batches, ImageSet
from common.evaluate import classifier_error
from common.train import fit, make_optimizer


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
              init: TiedAutoencoder | None = None, progress: bool = False, desc: str = "dA"):
    """Train one tied dA on the float rows ``x`` (N, d) in [0, 1]; return (model, History).

    ``init`` (copied, never modified) fixes the initial weights, so that several noise
    levels start from the same point (Figure 3 compares filters "from the same
    initialisation"). Adam (``common.train.make_optimizer``) replaces the paper's SGD.
    """
    g = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(init) if init is not None else TiedAutoencoder(x.shape[1], h, generator=g)
    model = model.to(x.device)
    torch.manual_seed(seed)  # the masking positions
    opt = make_optimizer("adam", model.parameters(), lr=lr)
    hist = fit(model, dae_loss(nu), Batches(x, None, batch_size, seed=seed), opt, epochs,
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
                   seed: int, progress: bool = False) -> list[TiedAutoencoder]:
    """Greedy layer-wise pretraining (sec. 3.4): layer k is a dA on the clean code of layer k-1.

    The corruption is applied only to the input of the layer being trained; the
    codes passed up are computed from clean inputs. ``nu = 0`` gives the SAA.
    """
    layers, h = [], x
    for k, size in enumerate(sizes):
        layer, _ = train_dae(h, size, nu, epochs, lr, batch_size, seed + 1000 * k, progress=progress,
                             desc=f"pretrain layer {k + 1} (nu={nu:g})")
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


def fine_tune(encoders: Sequence[TiedAutoencoder], train: Batches, x_val: torch.Tensor, y_val: torch.Tensor,
              epochs: int, lr: float, seed: int) -> FineTuneResult:
    """Supervised fine-tuning of the whole stack plus softmax; the epoch is chosen on validation.

    After every epoch the validation error is measured; the returned model is the one
    of the epoch with the lowest validation error (early stopping, as the paper
    chooses the number of epochs on the validation set).
    """
    torch.manual_seed(seed)
    model = StackedClassifier([copy.deepcopy(e) for e in encoders]).to(x_val.device)
    opt = make_optimizer("adam", model.parameters(), lr=lr)
    best = {"err": math.inf, "state": None}

    def keep_best(model: nn.Module, history) -> None:
        if history.last("val/err") < best["err"]:
            best.update(err=history.last("val/err"), state=copy.deepcopy(model.state_dict()))

    hist = fit(model, classification_loss, train, opt, epochs, val=Batches(x_val, y_val, 5000, shuffle=False),
               progress=False, after_epoch=keep_best)
    model.load_state_dict(best["state"])
    curve = [100.0 * e for e in hist["val/err"]]
    return FineTuneResult(model, int(np.argmin(curve)) + 1, min(curve), curve, hist["train/loss"])


@dataclass
class StackRun:
    """One (nu, pretrain, fine-tune) run of the stacked network."""

    nu: float
    best_epoch: int
    val_error: float
    val_curve: list[float]
    model: nn.Module


def select_by_validation(runs: Sequence[StackRun]) -> StackRun:
    """The run with the lowest validation error (ties: the first, i.e. the smaller nu in grid order)."""
    return min(runs, key=lambda r: r.val_error)


def run_stack(x_train: torch.Tensor, train_batches: Batches, x_val: torch.Tensor, y_val: torch.Tensor,
              sizes: Sequence[int], nu: float, pre_epochs: int, pre_lr: float, ft_epochs: int, ft_lr: float,
              batch_size: int, seed: int) -> StackRun:
    """Pretrain a stack at noise ``nu`` (SAA when 0), fine-tune it, pick the epoch on validation."""
    layers = pretrain_stack(x_train, sizes, nu, pre_epochs, pre_lr, batch_size, seed)
    ft = fine_tune(layers, train_batches, x_val, y_val, ft_epochs, ft_lr, seed)
    return StackRun(nu, ft.best_epoch, ft.val_error, ft.val_curve, ft.model)


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
