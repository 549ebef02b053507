"""beta-VAE (Higgins et al., ICLR 2017): F = E_q(z|x)[log p(x|z)] - beta KL(q(z|x) || N(0, I)) (eq. 4).

beta = 1 is the VAE; beta > 1 pushes the diagonal-Gaussian posterior towards the factorised prior and,
the paper claims, makes each latent follow one generative factor (Sec. 2, Figs. 6, 7). The models are
the Appendix's (Table 1): fully connected with a Bernoulli decoder for 2D shapes, convolutional with a
Gaussian decoder for CelebA. Log-densities are sums over pixels: losses are in nats per image. Fig. 7's
KL per latent is ``common.gaussian.gaussian_kl_per_latent``; the Sec. 3 metric is ``metric.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from common.gaussian import LOG_2PI, gaussian_kl, reparameterize

CELEBA_PIXELS = 3 * 64 * 64  # the values of a 64x64 RGB face: the N of beta_norm


class GaussianLatentModel(Protocol):
    """What eq. 4 needs from a model: q(z|x) as (mu, log sigma^2), and log p(x|z)."""
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...
    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


def beta_vae_terms(model: GaussianLatentModel, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """Per-example terms of eq. 4 with one reparameterised z ~ q(z|x), each (N,): ``rec`` = -log p(x|z),
    ``kl`` = KL(q(z|x) || N(0, I)) in closed form, ``objective`` = -(rec + beta kl), the F of eq. 4."""
    mu, logvar = model.posterior(x)
    rec = -model.log_likelihood(x, reparameterize(mu, logvar))
    kl = gaussian_kl(mu, logvar)
    return {"objective": -(rec + beta * kl), "rec": rec, "kl": kl}


@dataclass(frozen=True)
class BetaVAELoss:
    """``fit`` loss for eq. 4: -F averaged over the minibatch, in nats per image. Keys: ``loss`` (-F),
    ``rec``, ``kl`` and ``elbo`` (the beta = 1 bound, comparable across betas). A dataclass, so that its
    repr ``BetaVAELoss(beta=4.0)`` names beta in the checkpoint key of ``run.train``."""

    beta: float

    def __call__(self, model: GaussianLatentModel, x: torch.Tensor, y=None) -> dict[str, torch.Tensor]:
        t = beta_vae_terms(model, x, self.beta)
        rec, kl = t["rec"].mean(), t["kl"].mean()
        return {"loss": -t["objective"].mean(), "rec": rec, "kl": kl, "elbo": -(rec + kl)}


@dataclass(frozen=True)
class AutoencoderLoss:
    """``fit`` loss of the plain autoencoder the figures set beside the VAEs: -log p(x | z = mu(x)), no
    noise, no KL (with the Gaussian decoder: SSE / (2 std^2) plus a constant)."""

    def __call__(self, model: GaussianLatentModel, x: torch.Tensor, y=None) -> dict[str, torch.Tensor]:
        rec = -model.log_likelihood(x, model.posterior(x)[0]).mean()
        return {"loss": rec, "rec": rec}


def beta_norm(beta: float, latents: int, pixels: int) -> float:
    """The normalised beta of Sec. 4, beta M / N (M latents, N input values): beta per latent against one
    per pixel. beta = 250 on 64x64x3 faces with 32 latents is 0.65; beta = 4 on dSprites 0.0098."""
    if latents < 1 or pixels < 1:
        raise ValueError(f"latents and pixels must be >= 1, got {latents}, {pixels}")
    return beta * latents / pixels


class FCBetaVAE(nn.Module):
    """The 2D-shapes net (Appendix, Table 1): encoder 4096-1200-1200 (ReLU) to mu and logvar of 10 latents;
    decoder 10-1200-1200-1200-4096 (tanh) to Bernoulli logits. Images (N, 1, 64, 64) in [0, 1]."""

    def __init__(self, z_dim: int = 10, hidden: int = 1200, image_shape=(1, 64, 64)) -> None:
        super().__init__()
        self.image_shape, self.z_dim = tuple(image_shape), z_dim
        self.x_dim = image_shape[0] * image_shape[1] * image_shape[2]
        self.encoder = nn.Sequential(nn.Linear(self.x_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                     nn.ReLU(), nn.Linear(hidden, 2 * z_dim))  # mean and log-variance
        self.decoder = nn.Sequential(nn.Linear(z_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                                     nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                     nn.Linear(hidden, self.x_dim))  # Bernoulli logits

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2) of q(z|x), each (N, z_dim)."""
        return self.encoder(x.reshape(len(x), self.x_dim)).chunk(2, dim=-1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the representation the disentanglement metric scores."""
        return self.posterior(x)[0]

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) of the Bernoulli decoder, summed over pixels, shape (N,)."""
        return -F.binary_cross_entropy_with_logits(self.decoder(z), x.reshape(len(x), self.x_dim),
                                                   reduction="none").sum(-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities E[x|z] as images (N, C, H, W)."""
        return torch.sigmoid(self.decoder(z)).reshape(len(z), *self.image_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def gaussian_pixel_log_likelihood(x: torch.Tensor, mean: torch.Tensor,
                                  std: float | torch.Tensor) -> torch.Tensor:
    """log N(x; mean, std^2 I) summed over each image's pixel values, constant included, shape (N,):
    -SSE / (2 std^2) - N/2 log(2 pi std^2), one ``std`` (a float or a scalar tensor) for all pixels.
    Only beta std^2 matters to eq. 4 (see the CelebA notebook's likelihood table)."""
    if not isinstance(std, torch.Tensor) and not std > 0:  # a tensor std is not checked: no host sync
        raise ValueError(f"decoder std must be > 0, got {std}")
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    sse = (x - mean).pow(2).flatten(1).sum(-1)
    return -0.5 * sse / std ** 2 - 0.5 * x[0].numel() * (LOG_2PI + 2 * torch.log(std))


class ConvEncoder(nn.Module):
    """q(z|x) of the CelebA net (Table 1): 4x4 stride-2 convs (32, 32, 64, 64), FC 256, mu and logvar."""

    def __init__(self, channels: int = 3, z_dim: int = 32, hidden: int = 256) -> None:
        super().__init__()
        down = [nn.Conv2d(a, b, 4, 2, 1) for a, b in ((channels, 32), (32, 32), (32, 64), (64, 64))]
        self.convs = nn.Sequential(*(m for conv in down for m in (conv, nn.ReLU())))  # 64 -> 4 pixels
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, hidden), nn.ReLU(),
                                nn.Linear(hidden, 2 * z_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(self.convs(x)).chunk(2, dim=-1)


class ConvDecoder(nn.Module):
    """p(x|z) of the CelebA net, the encoder mirrored (transposed convs), a sigmoid: means in [0, 1]."""

    def __init__(self, channels: int = 3, z_dim: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, 64 * 4 * 4), nn.ReLU(),
                                nn.Unflatten(1, (64, 4, 4)))
        up = [nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in ((64, 64), (64, 32), (32, 32), (32, channels))]
        self.deconvs = nn.Sequential(up[0], nn.ReLU(), up[1], nn.ReLU(), up[2], nn.ReLU(), up[3])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.deconvs(self.fc(z)))


class ConvBetaVAE(nn.Module):
    """The CelebA model: :class:`ConvEncoder`, :class:`ConvDecoder` and a Gaussian likelihood summed over
    the 64x64x3 values with one std for all pixels: ``decoder_std``, or with ``decoder_std=None``
    *calibrated*, at each step its maximum-likelihood value sigma^2 = the batch's MSE (floored at 1e-6),
    a learned sigma's optimum in closed form (Rybkin et al.'s "sigma-VAE", 2021): the loss becomes
    N/2 log(MSE) + beta KL + const. ``channels_last`` (NHWC, faster on CPU) is the same function."""

    def __init__(self, z_dim: int = 32, channels: int = 3, hidden: int = 256, decoder_std: float | None = 1.0,
                 channels_last: bool = False) -> None:
        super().__init__()
        if decoder_std is not None and decoder_std <= 0:
            raise ValueError(f"decoder_std must be > 0 (or None: learned), got {decoder_std}")
        self.z_dim, self.channels_last = z_dim, channels_last
        self.decoder_std = None if decoder_std is None else float(decoder_std)
        self.encoder = ConvEncoder(channels, z_dim, hidden)
        self.decoder = ConvDecoder(channels, z_dim, hidden)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, decoder_std={self.decoder_std}, channels_last={self.channels_last}"

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma^2) of q(z|x), each (N, z_dim); ``x`` is (N, C, 64, 64) in [0, 1]."""
        if x.dim() != 4 or x.shape[-2:] != (64, 64):
            raise ValueError(f"ConvBetaVAE wants (N, C, 64, 64) images, got {tuple(x.shape)}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean, used for reconstructions, traversals and the attribute AUCs."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The Gaussian means E[x|z] as images (N, C, 64, 64) in [0, 1]."""
        return self.decoder(z).contiguous()

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z), summed over pixels, shape (N,) (:func:`gaussian_pixel_log_likelihood`)."""
        mean = self.decoder(z).float()
        return gaussian_pixel_log_likelihood(x, mean, self.pixel_std(x, mean))

    def pixel_std(self, x: torch.Tensor, mean: torch.Tensor) -> float | torch.Tensor:
        """The decoder's std: fixed, or calibrated on this batch (see the class)."""
        if self.decoder_std is not None:
            return self.decoder_std
        return (x - mean).pow(2).mean().clamp_min(1e-6).sqrt()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means at n draws z ~ p(z) = N(0, I)."""
        return self.decode(torch.randn(n, self.z_dim, generator=generator).to(next(self.parameters()).device))
