"""Auto-Encoding Variational Bayes (Kingma & Welling, ICLR 2014): the paper's models and bound.

Names follow the paper. The recognition model q_phi(z|x) is a Gaussian MLP (Appendix
C.2 with x and z swapped); the generative model p_theta(x|z) is a Bernoulli MLP for
binary data (Appendix C.1, ``common.bernoulli``) or a Gaussian MLP for real-valued data
(Appendix C.2); the prior is p(z) = N(0, I). Training maximises the SGVB estimator B of
eq. (10), with the KL term in closed form (Appendix B) and L samples of
z = mu + sigma * eps (Sec. 2.4).

Every log-density here is a sum over pixels (or latents) per example, in nats, so
``elbo_loss`` reads in nats per datapoint, as the paper's Figure 2 does. Training,
evaluation and the figure checks are in ``VariationalAE/experiment.py``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from common.bernoulli import BernoulliDecoder
from common.gaussian import gaussian_kl, log_normal, log_standard_normal, reparameterize

#: Soft lower bound on the Gaussian decoder's per-pixel log-variance: sigma >= ~0.01.
#: Without it the Gaussian likelihood is unbounded above (sigma -> 0 on a pixel the
#: decoder gets right), so the bound could run off to +inf; the paper does not say
#: how it avoided this (its Frey Face bound stays near 1,600 nats).
GAUSSIAN_LOGVAR_MIN = 2 * math.log(0.01)


# ---------------------------------------------------------------------------
# The MLPs of Appendix C
# ---------------------------------------------------------------------------
class GaussianEncoder(nn.Module):
    """q_phi(z|x) = N(z; mu, sigma^2 I) (Appendix C.2, with x as input and z as output).

    h = tanh(W3 x + b3), mu = W4 h + b4, log sigma^2 = W5 h + b5.
    """

    def __init__(self, x_dim: int, hidden: int, z_dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(x_dim, hidden)   # W3, b3
        self.mu = nn.Linear(hidden, z_dim)       # W4, b4
        self.logvar = nn.Linear(hidden, z_dim)   # W5, b5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.hidden(x))
        return self.mu(h), self.logvar(h)


class GaussianDecoder(nn.Module):
    """p_theta(x|z) Gaussian MLP (Appendix C.2) with sigmoid means, as the paper uses for Frey Face.

    h = tanh(W3 z + b3), mu = sigmoid(W4 h + b4), log sigma^2 = W5 h + b5, and
    log p(x|z) = log N(x; mu, sigma^2 I): a true Gaussian log-density per pixel, including
    the log-variance and log(2 pi) terms (not a squared error). The per-pixel
    log-variance has a softplus floor at ``GAUSSIAN_LOGVAR_MIN`` so the density stays finite.
    """

    def __init__(self, z_dim: int, hidden: int, x_dim: int, logvar_min: float = GAUSSIAN_LOGVAR_MIN) -> None:
        super().__init__()
        self.hidden = nn.Linear(z_dim, hidden)   # W3, b3
        self.mu = nn.Linear(hidden, x_dim)       # W4, b4
        self.logvar = nn.Linear(hidden, x_dim)   # W5, b5
        self.logvar_min = logvar_min

    def params(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.hidden(z))
        raw = self.logvar(h)
        logvar = self.logvar_min + F.softplus(raw - self.logvar_min)
        return torch.sigmoid(self.mu(h)), logvar

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.params(z)
        return log_normal(x, mean, logvar)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.params(z)[0]


class VAE(nn.Module):
    """A Gaussian encoder, a Bernoulli (tanh MLP, Appendix C.1) or Gaussian decoder and the prior N(0, I).

    ``image_shape`` is (C, H, W); images are flattened to x of length C*H*W.
    """

    def __init__(self, image_shape: tuple[int, ...], hidden: int, z_dim: int, likelihood: str = "bernoulli") -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.x_dim = math.prod(self.image_shape)
        self.z_dim = z_dim
        self.likelihood = likelihood
        self.encoder = GaussianEncoder(self.x_dim, hidden, z_dim)
        if likelihood == "bernoulli":
            self.decoder: nn.Module = BernoulliDecoder(z_dim, hidden, self.x_dim, activation="tanh")
        elif likelihood == "gaussian":
            self.decoder = GaussianDecoder(z_dim, hidden, self.x_dim)
        else:
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), self.x_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean mu(x) (used for reconstructions and interpolation)."""
        return self.encoder(self.flat(x))[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean E[x|z] as images (N, C, H, W)."""
        return self.decoder.mean(z).reshape(len(z), *self.image_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means at n draws z ~ p(z) (the paper's Figure 5 shows such means)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.z_dim, generator=generator, device="cpu").to(device)
        return self.decode(z)


# ---------------------------------------------------------------------------
# The bound (eq. 10) and the importance weights (eq. 3)
# ---------------------------------------------------------------------------
def elbo_terms(model: VAE, x: torch.Tensor, n_samples: int = 1) -> dict[str, torch.Tensor]:
    """Per-example SGVB estimator B (eq. 10): -KL(q||p) + 1/L sum_l log p(x|z_l), and its parts.

    Returns ``elbo``, ``rec`` (-1/L sum_l log p(x|z_l)) and ``kl``, each of shape (N,).
    """
    x = model.flat(x)
    mu, logvar = model.encoder(x)
    eps = torch.randn((n_samples, *mu.shape), device=mu.device, dtype=mu.dtype)
    z = reparameterize(mu, logvar, eps)                       # (L, N, z_dim)
    rec = -model.decoder.log_prob(x, z).mean(0)               # (N,)
    kl = gaussian_kl(mu, logvar)
    return {"elbo": -(rec + kl), "rec": rec, "kl": kl}


def elbo_loss(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None,
              n_samples: int = 1) -> dict[str, torch.Tensor]:
    """``fit`` loss: the negative bound -B (eq. 10) per datapoint, averaged over the minibatch.

    With M = 100 and L = 1 this is the paper's estimator (eq. 8 divided by N).
    Keys: ``loss`` (= -bound), ``rec``, ``kl`` (nats per example).
    """
    t = elbo_terms(model, x, n_samples)
    return {"loss": -t["elbo"].mean(), "rec": t["rec"].mean(), "kl": t["kl"].mean()}


GaussianPosterior = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
LogLikelihood = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def log_importance_weights(x: torch.Tensor, k: int, posterior: GaussianPosterior,
                           log_likelihood: LogLikelihood) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x), shape (k, N).

    ``posterior(x) -> (mu, logvar)`` is q's Gaussian; ``log_likelihood(x, z)`` is log p(x|z)
    broadcast over z's leading sample dimension; the prior is N(0, I). Then
    logsumexp_i(log w_i) - log k estimates log p(x) (used by
    ``common.evaluate.importance_sampled_log_likelihood``); E[log w] is the bound of eq. (3).
    """
    mu, logvar = posterior(x)
    z = reparameterize(mu, logvar, torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype))
    return log_likelihood(x, z) + log_standard_normal(z) - log_normal(z, mu, logvar)


def vae_log_weights(model: VAE) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """``log_weights(x, k)`` of a trained VAE, for ``importance_sampled_log_likelihood``."""
    def log_weights(x: torch.Tensor, k: int) -> torch.Tensor:
        xf = model.flat(x)
        return log_importance_weights(xf, k, model.encoder, model.decoder.log_prob)
    return log_weights


# ---------------------------------------------------------------------------
# The paper's training details (Sec. 5)
# ---------------------------------------------------------------------------
def init_normal_(model: nn.Module, std: float) -> nn.Module:
    """Initialise every weight and bias from N(0, std^2) (Sec. 5: "N(0, 0.01)").

    The paper's "N(0, 0.01)" is read as variance 0.01, i.e. std = 0.1; pass 0.01 for
    the other reading.
    """
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    return model


def parameter_prior_weight_decay(n_train: int) -> float:
    """Weight decay equal to the N(0, I) prior on the parameters (Sec. 5).

    The objective is sum_i L(theta; x_i) + log p(theta) with log p(theta) = -|theta|^2 / 2.
    Per datapoint (what ``elbo_loss`` minimises) that adds |theta|^2 / (2 N), whose
    gradient is theta / N: torch's ``weight_decay`` of 1 / N.
    """
    return 1.0 / n_train
