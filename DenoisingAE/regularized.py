"""The regularised-autoencoder family, set beside the denoising autoencoder.

- Linear autoencoder (Baldi & Hornik 1989): x^ = W2 W1 x with squared error. With as
  many code units as inputs and no bias it can learn W2 W1 = I; with k < d units the
  optimum spans the top-k principal subspace of the (centred) data.
- L1-sparse autoencoder: reconstruction + lambda * |y|_1 on the code.
- Contractive autoencoder (Rifai et al., ICML 2011, eq. 2-3): reconstruction +
  lambda * ||J_f(x)||_F^2, which for a sigmoid layer y = s(W x + b) is in closed form
  sum_j (y_j (1 - y_j))^2 * sum_i W_ji^2.
- Dropout noise: x~ = dropout(x, p), i.e. each component zeroed independently with
  probability p *and the survivors multiplied by 1/(1-p)*: the corruption some earlier
  projects used in place of the paper's masking noise (``denoising.masking_noise``).

The nonlinear variants all use :class:`DenoisingAE.denoising.TiedAutoencoder` with the
cross-entropy against the clean input, so that only the regulariser differs. What
RegularizedAE.ipynb measures on them (distance from the identity, principal angles to
PCA, reconstruction and code statistics) is in :mod:`DenoisingAE.experiment`.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from DenoisingAE.denoising import TiedAutoencoder, cross_entropy, masking_noise


# ---------------------------------------------------------------------------
# Linear autoencoders
# ---------------------------------------------------------------------------
class LinearAutoencoder(nn.Module):
    """x^ = W2 (W1 x + b1) + b2 with ``bias``, else x^ = W2 W1 x; d -> k -> d, no nonlinearity."""

    def __init__(self, d: int, k: int, bias: bool = False) -> None:
        super().__init__()
        self.encoder = nn.Linear(d, k, bias=bias)
        self.decoder = nn.Linear(k, d, bias=bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(len(x), -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))

    def product(self) -> torch.Tensor:
        """W2 W1 (d x d): the linear map the autoencoder applies (bias aside)."""
        return (self.decoder.weight @ self.encoder.weight).detach()


def squared_error_loss(model: nn.Module, x: torch.Tensor, y=None) -> dict[str, torch.Tensor]:
    """||x - x^||^2 summed over pixels, averaged over the batch."""
    x = x.reshape(len(x), -1)
    sq = (model(x) - x).pow(2).sum(1).mean()
    return {"loss": sq, "sq_err": sq}


# ---------------------------------------------------------------------------
# Regularisers on the tied sigmoid autoencoder
# ---------------------------------------------------------------------------
def contractive_penalty(model: TiedAutoencoder, y: torch.Tensor) -> torch.Tensor:
    """||J_f(x)||_F^2 per example, closed form for y = s(W x + b) (Rifai et al. 2011, eq. 3).

    dy_j/dx_i = y_j (1 - y_j) W_ji, so ||J||_F^2 = sum_j (y_j (1 - y_j))^2 * sum_i W_ji^2.
    """
    return (y * (1 - y)).pow(2) @ model.W.pow(2).sum(1)


def jacobian_frobenius_autograd(model: TiedAutoencoder, x: torch.Tensor) -> torch.Tensor:
    """||df/dx||_F^2 per example by automatic differentiation (the reference for the closed form)."""
    from torch.func import jacrev, vmap

    def f(xi: torch.Tensor) -> torch.Tensor:
        return model.encode(xi[None])[0]

    J = vmap(jacrev(f))(x.reshape(len(x), -1))  # (N, h, d)
    return J.pow(2).sum((1, 2))


def dropout_noise(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout as corruption: each component zeroed with probability p, survivors scaled by 1/(1-p).

    Shown only to compare with the paper's masking noise; the number of zeros varies
    per row (binomial) and the survivors are changed.
    """
    return F.dropout(x, p, training=True)


def regularized_loss(kind: str, strength: float) -> Callable:
    """Loss for ``common.train.fit`` on a :class:`TiedAutoencoder`; cross-entropy against the clean x.

    ``kind``: "plain" (strength ignored), "l1" (+ strength * |y|_1), "contractive"
    (+ strength * ||J||_F^2), "masking" (masking noise, nu = strength), "dropout"
    (dropout noise, p = strength). Terms recorded: "rec" (clean-target cross-entropy
    of the training pass) and "penalty" (the regulariser before its weight; 0 for
    the noise variants). In eval mode no noise is applied.
    """
    if kind not in ("plain", "l1", "contractive", "masking", "dropout"):
        raise ValueError(f"unknown kind {kind!r}")

    def loss_fn(model: TiedAutoencoder, x: torch.Tensor, y=None) -> dict[str, torch.Tensor]:
        x = x.reshape(len(x), -1)
        x_in = x
        if model.training and kind == "masking":
            x_in = masking_noise(x, strength)
        elif model.training and kind == "dropout":
            x_in = dropout_noise(x, strength)
        code = model.encode(x_in)
        rec = cross_entropy(model.decode_logits(code), x).mean()
        if kind == "l1":
            penalty = code.abs().sum(1).mean()
        elif kind == "contractive":
            penalty = contractive_penalty(model, code).mean()
        else:
            penalty = torch.zeros((), device=x.device)
        weight = strength if kind in ("l1", "contractive") else 0.0
        return {"loss": rec + weight * penalty, "rec": rec, "penalty": penalty}

    return loss_fn

