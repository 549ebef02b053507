"""k-sparse autoencoders (Makhzani & Frey, ICLR 2014).

The paper's names are kept (sec. 2, "Algorithm 1"):

- ``x`` an input in [0, 1]^d; ``z = W^T x + b`` the linear hidden activities of a tied
  autoencoder with ``W`` of shape (d, hidden);
- ``Gamma = supp_k(z)``: the k largest hidden activities, **by value** (the paper's
  "k largest hidden units"; some reimplementations keep the k largest by magnitude,
  which also keeps large negative activities: not what the paper does). The others are
  set to zero: ``z_(Gamma^c) = 0``;
- the reconstruction ``x^ = W z + b'`` and the squared error ``||x - x^||^2``. The
  gradient flows only through the support Gamma (the zeroed units are constants).

Sec. 3.2 ("sparse encoding"): at test time the features are ``f(x) = h_(alpha k)(W^T x + b)``,
the alpha*k largest activities, with alpha >= 1 (alpha = 3 for MNIST, chosen on validation).

Sec. 3.3 / 4 ("scheduling of the sparsity level"): starting with a large k (100) and
lowering it linearly to the target k over the first half of the epochs keeps hidden units
from dying: with a small k from the start, units that are never in any example's top k
get no gradient and stay dead.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

#: The schedule's starting k (sec. 4: "we start with a large sparsity level (e.g. k = 100)").
K_START = 100


def top_k_support(h: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the k largest entries of each row of ``h`` (N, H), by value.

    Exactly k entries per row are True, also when values tie (``torch.topk`` returns k
    indices; among equal values it picks some of them). Vectorised, on ``h``'s device.
    """
    if h.dim() != 2:
        raise ValueError(f"top_k wants a 2-D (examples, units) tensor, got shape {tuple(h.shape)}")
    if not 1 <= k <= h.shape[1]:
        raise ValueError(f"k must be in [1, {h.shape[1]}] (the number of units), got {k}")
    idx = h.topk(k, dim=1, sorted=False).indices
    return torch.zeros_like(h, dtype=torch.bool).scatter_(1, idx, True)


def top_k(h: torch.Tensor, k: int) -> torch.Tensor:
    """supp_k (sec. 2): keep the k largest activities of each row by value, set the others to 0.

    The kept values are unchanged; the gradient reaches the kept entries only.
    """
    return torch.where(top_k_support(h, k), h, torch.zeros((), dtype=h.dtype, device=h.device))


class KSparseAutoencoder(nn.Module):
    """The tied linear k-sparse autoencoder of sec. 2: z = supp_k(W^T x + b), x^ = W z + b'.

    ``k`` is the sparsity level used in training now (the schedule changes it between
    epochs); ``k_target`` the level it ends at, which also sets the test-time alpha*k.
    Weights start from N(0, init_std^2) with ``init_std = 0.01`` (the paper's
    initialisation), biases at 0.
    """

    def __init__(self, d: int = 784, hidden: int = 1000, k: int = 25, init_std: float = 0.01,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not 1 <= k <= hidden:
            raise ValueError(f"k must be in [1, hidden={hidden}], got {k}")
        self.W = nn.Parameter(torch.randn(d, hidden, generator=generator) * init_std)
        self.b = nn.Parameter(torch.zeros(hidden))
        self.b_prime = nn.Parameter(torch.zeros(d))
        self.k_target = k
        self.k = k

    def extra_repr(self) -> str:
        # k_target (not the current k) keys run.train's checkpoints: the schedule moves k
        return f"d={self.W.shape[0]}, hidden={self.W.shape[1]}, k_target={self.k_target}"

    @property
    def hidden(self) -> int:
        return self.W.shape[1]

    def activities(self, x: torch.Tensor) -> torch.Tensor:
        """The linear hidden activities z = W^T x + b (before the top-k)."""
        return x.reshape(len(x), -1) @ self.W + self.b

    def encode(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """supp_k(W^T x + b) with the current k (or ``k``)."""
        return top_k(self.activities(x), self.k if k is None else k)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x^ = W z + b'."""
        return z @ self.W.t() + self.b_prime

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def features(self, x: torch.Tensor, alpha: float = 3.0) -> torch.Tensor:
        """The test-time encoding of sec. 3.2: the alpha*k_target largest activities, the rest 0."""
        return top_k(self.activities(x), n_features_kept(alpha, self.k_target, self.hidden))

    def filters(self) -> torch.Tensor:
        """The filters, one row per hidden unit (the columns of W), for plotting."""
        return self.W.detach().t()


def n_features_kept(alpha: float, k: int, hidden: int) -> int:
    """round(alpha * k), at least 1 and at most the number of units."""
    if alpha < 1:
        raise ValueError(f"alpha must be >= 1 (sec. 3.2), got {alpha}")
    return max(1, min(hidden, int(math.floor(alpha * k + 0.5))))


def squared_error(model: KSparseAutoencoder, x: torch.Tensor, y=None) -> dict[str, torch.Tensor]:
    """Loss for ``common.train.fit``: ||x - x^||^2 summed over pixels, averaged over the batch (sec. 2)."""
    x = x.reshape(len(x), -1)
    rec = (model(x) - x).pow(2).sum(1).mean()
    return {"loss": rec, "rec": rec}


def scheduled_k(epoch: int, epochs: int, k_target: int, k_start: int = K_START) -> int:
    """The sparsity level of epoch ``epoch`` (0-based) of ``epochs`` (sec. 4).

    k falls linearly from ``k_start`` at epoch 0 to ``k_target`` at epoch
    ``epochs // 2`` (the first half of training), then holds. A target at or above
    ``k_start`` is used from the start.
    """
    if k_target >= k_start:
        return k_target
    half = max(1, epochs // 2)
    if epoch >= half:
        return k_target
    return int(round(k_start + (k_target - k_start) * epoch / half))


def sparsity_schedule(epochs: int, k_start: int = K_START) -> Callable[[KSparseAutoencoder, int], None]:
    """A ``before_step`` hook for ``common.train.fit`` that sets ``model.k`` to :func:`scheduled_k` each epoch."""

    def set_k(model: KSparseAutoencoder, epoch: int) -> None:
        model.k = scheduled_k(epoch, epochs, model.k_target, k_start)

    return set_k


def with_k(init: KSparseAutoencoder, k: int) -> KSparseAutoencoder:
    """A copy of ``init`` (same weights: "from the same initialisation") with target sparsity ``k``."""
    model = copy.deepcopy(init)
    if not 1 <= k <= model.hidden:
        raise ValueError(f"k must be in [1, {model.hidden}], got {k}")
    model.k_target = model.k = k
    return model


@torch.no_grad()
def win_counts(model: KSparseAutoencoder, x: torch.Tensor, k: int | None = None,
               batch_size: int = 2000) -> torch.Tensor:
    """For each hidden unit, the number of rows of ``x`` whose top k (default: ``k_target``) include it."""
    k = model.k_target if k is None else k
    counts = torch.zeros(model.hidden, dtype=torch.long, device=model.W.device)
    for xb in x.split(batch_size):
        counts += top_k_support(model.activities(xb.float()), k).sum(0)
    return counts


def dead_units(model: KSparseAutoencoder, x: torch.Tensor, k: int | None = None) -> int:
    """Units that are in no example's top k (sec. 4's "dead" units: they never receive gradient)."""
    return int((win_counts(model, x, k) == 0).sum())
