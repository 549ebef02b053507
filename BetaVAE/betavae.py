"""beta-VAE (Higgins et al., ICLR 2017): the beta objective and the paper's models.

The objective (eq. 4 of the paper) is the VAE's bound with the KL term weighted by beta:

    F(theta, phi; x, z, beta) = E_{q_phi(z|x)}[log p_theta(x|z)] - beta * KL(q_phi(z|x) || p(z)),

with q_phi(z|x) a diagonal Gaussian and p(z) = N(0, I). beta = 1 is the VAE of Kingma &
Welling; beta > 1 pushes the posterior towards the factorised prior and, the paper
claims, makes each latent follow one generative factor (Sec. 2, Figs. 6 and 7).

Sections of this file:
- the beta objective and the KL per latent, shared by every model here;
- the 2D-shapes (dSprites) model: the fully connected net of the paper's Appendix
  (Table 1), with a Bernoulli decoder;
- the CelebA model (a convolutional net), added by the CelebA notebook's author.

Every log-density is a sum over pixels (or latents) per example, so the losses read
in nats per image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from common.gaussian import gaussian_kl, reparameterize


# ---------------------------------------------------------------------------
# The beta objective (eq. 4), for any Gaussian-latent model
# ---------------------------------------------------------------------------
class GaussianLatentModel(Protocol):
    """What the objective needs from a model: q(z|x) and log p(x|z)."""

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


def kl_per_latent(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_j|x) || N(0, 1)) for each latent j separately, shape (N, d).

    The sum over j is the KL term of eq. 4 (``common.gaussian.gaussian_kl``). Averaged
    over the data it says how much information each latent carries: the paper's claim
    that unused latents have about 0 KL (Fig. 7) is read off it.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def beta_vae_terms(model: GaussianLatentModel, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """Per-example terms of eq. 4 with one sample z ~ q(z|x) (reparameterised), each of shape (N,).

    ``rec`` = -log p(x|z), ``kl`` = KL(q(z|x) || N(0, I)) in closed form, and
    ``objective`` = -(rec + beta * kl), the F of eq. 4 (to be maximised).
    """
    mu, logvar = model.posterior(x)
    z = reparameterize(mu, logvar)
    rec = -model.log_likelihood(x, z)
    kl = gaussian_kl(mu, logvar)
    return {"objective": -(rec + beta * kl), "rec": rec, "kl": kl}


@dataclass(frozen=True)
class BetaVAELoss:
    """``fit`` loss for eq. 4: -F averaged over the minibatch, in nats per image.

    A dataclass (not a closure) so that its repr, ``BetaVAELoss(beta=4.0)``, names
    beta in the key that ``run.train`` gives each trained model. Keys: ``loss`` (= -F),
    ``rec`` (-log p(x|z)), ``kl`` and ``elbo`` (the beta = 1 bound, comparable across
    betas).
    """

    beta: float

    def __call__(self, model: GaussianLatentModel, x: torch.Tensor, y: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
        t = beta_vae_terms(model, x, self.beta)
        rec, kl = t["rec"].mean(), t["kl"].mean()
        return {"loss": -t["objective"].mean(), "rec": rec, "kl": kl, "elbo": -(rec + kl)}


@torch.no_grad()
def mean_kl_per_latent(model: GaussianLatentModel, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """KL per latent averaged over the images ``x``, shape (d,), in nats."""
    total, n = 0.0, 0
    for xb in x.split(batch_size):
        mu, logvar = model.posterior(xb)
        total = total + kl_per_latent(mu, logvar).sum(0)
        n += len(xb)
    return total / n


# ---------------------------------------------------------------------------
# 2D shapes (dSprites): the fully connected model (Appendix, Table 1)
# ---------------------------------------------------------------------------
class FCBetaVAE(nn.Module):
    """The paper's 2D-shapes net: encoder 4096-1200-1200 (ReLU) to the mean and log-variance
    of 10 Gaussian latents; decoder 10-1200-1200-1200-4096 (tanh) to Bernoulli logits.

    Images are (N, 1, 64, 64) with values in [0, 1] (binary for dSprites).
    """

    def __init__(self, z_dim: int = 10, hidden: int = 1200, image_shape: tuple[int, int, int] = (1, 64, 64)) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.x_dim = image_shape[0] * image_shape[1] * image_shape[2]
        self.z_dim = z_dim
        self.encoder = nn.Sequential(
            nn.Linear(self.x_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * z_dim))           # mean and log-variance
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, self.x_dim))          # Bernoulli logits

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2) of q(z|x), each (N, z_dim)."""
        mu, logvar = self.encoder(x.reshape(len(x), self.x_dim)).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the representation the disentanglement metric scores."""
        return self.posterior(x)[0]

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) of the Bernoulli decoder, summed over pixels, shape (N,)."""
        logits = self.decoder(z)
        return -F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), self.x_dim),
                                                   reduction="none").sum(-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities E[x|z] as images (N, C, H, W)."""
        return torch.sigmoid(self.decoder(z)).reshape(len(z), *self.image_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
