"""Semi-supervised deep generative models (Nalisnick & Smyth 2017, Sec. 7.2 and Table 2): SB-DGM against M2.

Kingma et al. (2014)'s M2 has a classifier q(y|x), an encoder q(z|x, y) and a decoder p(x|y, z)
with p(y) uniform. For a labelled point the negative bound is

    -L(x, y) = -E_q(z|x,y)[log p(x|y, z)] + KL(q(z|x, y) || p(z)) - log p(y),

and for an unlabelled one y is summed out under the classifier:

    -U(x) = sum_y q(y|x) (-L(x, y)) - H(q(y|x)).

The objective (their eq. 9) adds alpha times the classifier's mean cross-entropy on the labelled
points, so that q(y|x) also learns from labels directly; they set alpha = 0.1 N. The SB-DGM is the same model with the SB-VAE's
stick-breaking latent (Kumaraswamy fractions, Beta(1, alpha0) prior) in place of the Gaussian.
``unlabelled_neg_bound`` evaluates every class at once, as one batch of C x N rows, not a loop.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from common.bernoulli import BernoulliDecoder, bernoulli_log_prob
from common.gaussian import gaussian_kl, reparameterize
from SB_VAE.kumaraswamy import kumaraswamy_kl, kumaraswamy_log_v_fused
from SB_VAE.sbvae import KUMARASWAMY_FLOOR, U_RANGE, init_authors_, stick_breaking_log_weights


class GaussianLatent(nn.Module):
    """q(z|h) = N(mu, sigma^2) against N(0, I); ``noise`` is eps ~ N(0, I)."""

    def __init__(self, hidden: int, z_dim: int) -> None:
        super().__init__()
        self.z_dim, self.mu, self.logvar = z_dim, nn.Linear(hidden, z_dim), nn.Linear(hidden, z_dim)

    def noise(self, n: int, device=None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=device)

    def forward(self, h: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, KL per example)."""
        mu, logvar = self.mu(h), self.logvar(h)
        return reparameterize(mu, logvar, noise), gaussian_kl(mu, logvar)


class StickBreakingLatent(nn.Module):
    """K - 1 Kumaraswamy fractions and the stick weights pi (K) against Beta(1, alpha0); ``noise`` is log u."""

    def __init__(self, hidden: int, truncation: int, alpha0: float = 5.0, kl_terms: int | None = 10) -> None:
        super().__init__()
        self.z_dim, self.alpha0, self.kl_terms = truncation, alpha0, kl_terms
        self.a = nn.Linear(hidden, truncation - 1, bias=False)
        self.b = nn.Linear(hidden, truncation - 1, bias=False)

    def noise(self, n: int, device=None) -> torch.Tensor:
        low, high = U_RANGE
        return torch.log(low + (high - low) * torch.rand(n, self.z_dim - 1, device=device))

    def forward(self, h: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.softplus(self.a(h)) + KUMARASWAMY_FLOOR
        b = F.softplus(self.b(h)) + KUMARASWAMY_FLOOR
        log_v, log_1mv = kumaraswamy_log_v_fused(noise, a, b)
        pi = stick_breaking_log_weights(log_v, log_1mv).exp()
        return pi, kumaraswamy_kl(a, b, 1.0, self.alpha0, self.kl_terms).sum(-1)


class DeepGenerativeModel(nn.Module):
    """M2 (``latent="gauss"``) or the SB-DGM (``latent="sb"``): one hidden ReLU layer in each network."""

    def __init__(self, latent: str = "sb", x_dim: int = 784, hidden: int = 500, z_dim: int = 50,
                 n_classes: int = 10, alpha0: float = 5.0, kl_terms: int | None = 10) -> None:
        super().__init__()
        if latent not in ("gauss", "sb"):
            raise ValueError(f"latent must be 'gauss' or 'sb', got {latent!r}")
        self.x_dim, self.n_classes = x_dim, n_classes
        self.classifier = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
        self.encoder = nn.Linear(x_dim + n_classes, hidden)
        self.latent = GaussianLatent(hidden, z_dim) if latent == "gauss" else \
            StickBreakingLatent(hidden, z_dim, alpha0, kl_terms)
        self.decoder = BernoulliDecoder(self.latent.z_dim + n_classes, hidden, x_dim, activation="relu")
        init_authors_(self)

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """log q(y|x) up to a constant, (N, C)."""
        return self.classifier(x.reshape(len(x), -1))

    def labelled_neg_bound(self, x: torch.Tensor, y_onehot: torch.Tensor,
                           noise: torch.Tensor | None = None) -> torch.Tensor:
        """-L(x, y) per example (N,): reconstruction at one latent draw + KL - log p(y), p(y) uniform."""
        x = x.reshape(len(x), -1)
        if noise is None:
            noise = self.latent.noise(len(x), x.device)
        h = F.relu(self.encoder(torch.cat([x, y_onehot], -1)))
        z, kl = self.latent(h, noise)
        rec = -bernoulli_log_prob(x, self.decoder.logits(torch.cat([z, y_onehot], -1)))
        return rec + kl + math.log(self.n_classes)

    def unlabelled_neg_bound(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """-U(x) per example (N,): sum_y q(y|x) (-L(x, y)) - H(q(y|x)), every class in one batch.

        ``noise`` (C, N, ...) fixes the latent draw of each (class, example) pair (for tests).
        """
        x = x.reshape(len(x), -1)
        n, c = len(x), self.n_classes
        if noise is not None:
            noise = noise.reshape(c * n, *noise.shape[2:])
        y = torch.eye(c, device=x.device, dtype=x.dtype).repeat_interleave(n, 0)     # class 0 for all, then 1...
        neg_l = self.labelled_neg_bound(x.repeat(c, 1), y, noise).reshape(c, n)
        log_q = F.log_softmax(self.class_logits(x), -1)                               # (N, C)
        q = log_q.exp()
        return (q * neg_l.T).sum(-1) + (q * log_q).sum(-1)


def semi_supervised_loss(model: DeepGenerativeModel, x_labelled: torch.Tensor, y: torch.Tensor,
                         x_unlabelled: torch.Tensor, n_labelled: int, n_unlabelled: int,
                         alpha: float) -> dict[str, torch.Tensor]:
    """Kingma et al. (2014)'s objective (eq. 9) per training point, estimated on a labelled and an unlabelled batch.

    J = sum_labelled -L(x, y) + sum_unlabelled -U(x) + alpha * E_labelled[-log q(y|x)], over data sets
    of ``n_labelled`` and ``n_unlabelled`` points (the paper: alpha = 0.1 N). ``loss`` is J / N with
    N = n_labelled + n_unlabelled, each sum estimated from its batch's mean; the parts are returned as
    batch means.
    """
    onehot = F.one_hot(y, model.n_classes).to(x_labelled.dtype)
    labelled = model.labelled_neg_bound(x_labelled, onehot).mean()
    unlabelled = model.unlabelled_neg_bound(x_unlabelled).mean()
    ce = F.cross_entropy(model.class_logits(x_labelled), y)
    n = n_labelled + n_unlabelled
    loss = (n_labelled * labelled + n_unlabelled * unlabelled + alpha * ce) / n
    return {"loss": loss, "labelled": labelled, "unlabelled": unlabelled, "ce": ce}
