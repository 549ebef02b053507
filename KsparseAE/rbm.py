"""A binary restricted Boltzmann machine trained by contrastive divergence: Table 1's RBM row (Makhzani & Frey 2014).

The paper compares its k-sparse features with an RBM's (1.81% test error under the same
logistic regression) without describing that RBM; Hinton (2002) defines the training. Energy
E(v, h) = -b.v - c.h - h.W v for binary v (pixels) and h (hidden units), so

    p(h_j = 1 | v) = sigmoid(c_j + W_j v),   p(v_i = 1 | h) = sigmoid(b_i + W_:i . h),
    free energy F(v) = -b.v - sum_j softplus(c_j + W_j v),   p(v) = exp(-F(v)) / Z.

CD-k approximates the log-likelihood gradient by running k steps of block Gibbs sampling from
the data: ``cd_loss`` is F(v_data) - F(v_model) averaged over the batch, whose gradient (with the
chain's end held fixed) is CD-k's. The features for the classifier are p(h = 1 | v).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RBM(nn.Module):
    """Binary-binary RBM: ``visible`` pixels, ``hidden`` units, weights from N(0, init_std^2), zero biases."""

    def __init__(self, visible: int = 784, hidden: int = 1000, init_std: float = 0.01) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden, visible) * init_std)   # W, (hidden, visible)
        self.visible_bias = nn.Parameter(torch.zeros(visible))                # b
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))                  # c

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v), also the features Table 1's classifier reads."""
        return torch.sigmoid(F.linear(v, self.weight, self.hidden_bias))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(h, self.weight.t(), self.visible_bias))

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per example: -b.v - sum_j softplus(c_j + W_j v)."""
        return -(v @ self.visible_bias) - F.softplus(F.linear(v, self.weight, self.hidden_bias)).sum(-1)

    @torch.no_grad()
    def gibbs(self, v: torch.Tensor, steps: int) -> torch.Tensor:
        """v after ``steps`` rounds of h ~ p(h|v), v ~ p(v|h)."""
        for _ in range(steps):
            h = torch.bernoulli(self.hidden_probs(v))
            v = torch.bernoulli(self.visible_probs(h))
        return v

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden_probs(x.reshape(len(x), -1))


def cd_loss(model: RBM, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 1) -> dict[str, torch.Tensor]:
    """``fit`` loss of CD-k: ``loss`` = mean F(v_data) - mean F(v_k), v_k after k Gibbs steps from the data (held
    fixed, so the gradient is CD-k's); ``rec`` = squared error of the one-step mean reconstruction, for watching."""
    v = x.reshape(len(x), -1)
    v_model = model.gibbs(v, k)
    loss = model.free_energy(v).mean() - model.free_energy(v_model).mean()
    with torch.no_grad():
        rec = (model.visible_probs(model.hidden_probs(v)) - v).pow(2).sum(-1).mean()
    return {"loss": loss, "rec": rec}
