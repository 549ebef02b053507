"""The Bernoulli MLP decoder p(x|z) that the VAE and the SB-VAE share (Kingma & Welling 2014, Appendix C.1).

y = sigmoid(W2 act(W1 z + b1) + b2) and log p(x|z) = sum_i x_i log y_i + (1 - x_i) log(1 - y_i),
computed from the logits for stability. The VAE paper uses tanh hidden units; the SB-VAE
authors' code uses ReLU, so the activation is a parameter. Targets may be grey levels in
[0, 1] (then the log-likelihood is a cross-entropy, as in the SB-VAE authors' code).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"tanh": torch.tanh, "relu": F.relu}


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum_i x_i log y_i + (1 - x_i) log(1 - y_i) with y = sigmoid(logits), per example (last dim summed)."""
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


class BernoulliDecoder(nn.Module):
    """p(x | z): z -> hidden (tanh or ReLU) -> pixel logits; a Bernoulli log-likelihood per example."""

    def __init__(self, z_dim: int, hidden: int, x_dim: int, activation: str = "tanh") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.hidden = nn.Linear(z_dim, hidden)   # W1, b1
        self.out = nn.Linear(hidden, x_dim)      # W2, b2

    def extra_repr(self) -> str:
        return f"activation={self.activation}"

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(ACTIVATIONS[self.activation](self.hidden(z)))

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example; ``z`` may carry extra leading sample dimensions."""
        return bernoulli_log_prob(x, self.logits(z))

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] = y, the pixel probabilities."""
        return torch.sigmoid(self.logits(z))

    def latent_weight_norms(self) -> torch.Tensor:
        """Norm of each latent's outgoing weights into the hidden layer (a collapsed latent's go to 0)."""
        return self.hidden.weight.detach().norm(dim=0)
