"""Gaussian pieces shared by every Gaussian-latent VAE in the collection.

The diagonal-Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))), the standard normal
prior, their closed-form KL and the reparameterisation trick, as in Kingma & Welling
(ICLR 2014, Sec. 2.4 and Appendix B). The VAE, the stick-breaking VAE's Gaussian
baseline and the beta-VAE all use them. Every log-density is summed over its last
dimension (latents or pixels), so results read in nats per example.
"""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl_per_latent(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_j|x) || N(0, 1)) for each latent j separately, same shape as ``mu`` (Appendix B).

    KL_j = 1/2 (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2). Averaged over the data it says how
    much information each latent carries: collapsed (unused) latents have about 0.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per example, summed over latents (Appendix B; the KL part of eq. 10).

    -KL = 1/2 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    return gaussian_kl_per_latent(mu, logvar).sum(-1)


@torch.no_grad()
def mean_kl_per_latent(posterior, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The KL of each latent averaged over ``x``, shape (z_dim,), in nats.

    ``posterior(x) -> (mu, logvar)`` is the encoder's diagonal Gaussian (a model's
    ``posterior`` method); the caller puts the model in eval mode.
    """
    total, n = 0.0, 0
    for xb in x.split(batch_size):
        mu, logvar = posterior(xb)
        total = total + gaussian_kl_per_latent(mu, logvar).sum(0)
        n += len(xb)
    return total / n


def log_normal(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log p(z) for the prior p(z) = N(0, I), summed over the last dimension."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): the reparameterisation trick (Sec. 2.4, eq. 10)."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps
