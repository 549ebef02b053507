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
network is fine-tuned on the labels (:class:`StackedClassifier`, :func:`classification_loss`).
With nu = 0 this is the stacked plain autoencoder (SAA) of Table 1.

The training recipes (greedy pretraining, fine-tuning, model selection) and the derived
benchmarks are in :mod:`DenoisingAE.experiment`.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


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


# ---------------------------------------------------------------------------
# Stacking (sec. 3.4): the pretrained encoders under a softmax layer, fine-tuned on the labels
# ---------------------------------------------------------------------------
class StackedClassifier(nn.Module):
    """The fine-tuned network of sec. 3.4: the stacked encoders y_k = s(W_k y_{k-1} + b_k), then a softmax layer.

    Each hidden layer starts from a pretrained dA's encoder (W_k, b_k); its decoder is dropped.
    """

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
