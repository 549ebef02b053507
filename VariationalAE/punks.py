"""CryptoPunks studies from the Delille VAE seed project, not in the paper: depth against width, and two recipes.

The seed project trains VAEs on the 24x24 RGBA punks and compares a deeper encoder with a wider
one for a 2-D latent, and ReLU units with Adam against the paper's tanh units with Adagrad, by
their training curves. :class:`MLPVAE` is the paper's VAE (Gaussian encoder; Gaussian decoder with
sigmoid means and a floored per-pixel variance, as ``VariationalAE.vae.GaussianDecoder``; the bound
of eq. 10 through ``VariationalAE.vae.elbo_loss``) with any stack of hidden layers and either
activation. It lives here, apart from ``vae.py``, so that the paper's own models keep their
checkpoint keys.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from common import gaussian
from common.data import ImageSet
from common.gaussian import log_normal
from common.run import Run
from common.train import History, make_optimizer, seed_everything
from VariationalAE import vae
from VariationalAE.config import PunkVariant
from VariationalAE.vae import VAE, GAUSSIAN_LOGVAR_MIN, elbo_loss, init_normal_, parameter_prior_weight_decay

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def _stack(sizes: list[int], activation: str) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class MLPGaussianEncoder(nn.Module):
    """q(z|x) = N(mu, sigma^2 I) from a stack of hidden layers."""

    def __init__(self, x_dim: int, hidden: tuple[int, ...], z_dim: int, activation: str) -> None:
        super().__init__()
        self.body = _stack([x_dim, *hidden], activation)
        self.mu, self.logvar = nn.Linear(hidden[-1], z_dim), nn.Linear(hidden[-1], z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class MLPGaussianDecoder(nn.Module):
    """p(x|z) = N(sigmoid(W h + b), sigma^2 I), log sigma^2 softly floored at ``logvar_min``, h from a hidden stack."""

    def __init__(self, z_dim: int, hidden: tuple[int, ...], x_dim: int, activation: str,
                 logvar_min: float = GAUSSIAN_LOGVAR_MIN) -> None:
        super().__init__()
        self.body = _stack([z_dim, *hidden], activation)
        self.mu, self.logvar = nn.Linear(hidden[-1], x_dim), nn.Linear(hidden[-1], x_dim)
        self.logvar_min = logvar_min

    def params(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(z)
        return torch.sigmoid(self.mu(h)), self.logvar_min + F.softplus(self.logvar(h) - self.logvar_min)

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.params(z)
        return log_normal(x, mean, logvar)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.params(z)[0]


class MLPVAE(VAE):
    """The paper's Gaussian VAE with ``hidden`` layer sizes (the decoder mirrors them) and ``activation``.

    ``hidden=(500,)`` with tanh is ``VariationalAE.vae.VAE(..., likelihood="gaussian")`` up to the
    layers' names (tested). It keeps VAE's interface (``flat``, ``encode``, ``decode``,
    ``reconstruct``, ``sample``) for ``elbo_loss`` and the notebook's plots, and builds its own
    networks in place of VAE's one-layer ones (so ``VAE.__init__`` is not called).
    """

    def __init__(self, image_shape: tuple[int, ...], hidden: tuple[int, ...], z_dim: int,
                 activation: str = "tanh") -> None:
        nn.Module.__init__(self)
        if not hidden:
            raise ValueError("an MLPVAE needs at least one hidden layer")
        self.image_shape, self.z_dim, self.likelihood = tuple(image_shape), z_dim, "gaussian"
        self.x_dim = math.prod(self.image_shape)
        self.encoder = MLPGaussianEncoder(self.x_dim, hidden, z_dim, activation)
        self.decoder = MLPGaussianDecoder(z_dim, tuple(reversed(hidden)), self.x_dim, activation)


def record_seconds(model: nn.Module, history: History) -> None:
    """``fit``'s after_epoch hook: the training seconds so far, per epoch, as ``time/seconds`` (speed curves)."""
    history.record_epoch("time/seconds", history.seconds)


def train_punk_variant(run: Run, variant: PunkVariant, train_set: ImageSet, val_set: ImageSet, z_dim: int,
                       epochs: int, batch_size: int, init_std: float,
                       device: torch.device | str) -> tuple[MLPVAE, History]:
    """Train (or reload) ``variant`` on ``train_set`` for ``epochs`` epochs, validating on ``val_set`` each epoch,
    and keep the weights of its best validation epoch.

    Initialisation N(0, init_std^2) and the N(0, I) parameter prior (weight decay 1/N) as for the
    paper's models; the seed is the run's, so every variant sees the same batches. The best epoch, not
    the last, because a 2-D CryptoPunks model can lose hundreds of nats in one unstable epoch (the
    2 x 500 net did at its 15th in the 2026-12-05 standard run), and a comparison of variants should
    not hang on where that falls.
    """
    seed_everything(run.seed)
    model = init_normal_(MLPVAE((4, 24, 24), variant.hidden, z_dim, variant.activation), init_std).to(device)
    opt = make_optimizer(variant.optimizer, model.parameters(), variant.lr,
                         weight_decay=parameter_prior_weight_decay(len(train_set)))
    hist = run.train(f"punks_{variant.name}", model, elbo_loss, train_set.batches(batch_size, device, seed=run.seed),
                     epochs, optimizer=opt, sources=(vae, gaussian),
                     config={"data": getattr(train_set, "name", "?"), "n_train": len(train_set),
                             "n_val": len(val_set), "init_std": init_std},
                     val=val_set.batches(1000, device, shuffle=False), best_on="val/loss",
                     after_epoch=record_seconds)
    return model.eval(), hist
