"""Stick-Breaking Variational Autoencoders (Nalisnick & Smyth, ICLR 2017): the latent, the models, the loss.

The SB-VAE's latent is a vector of stick-breaking weights (Sec. 3, eq. 2)
    pi_k = v_k * prod_{j<k} (1 - v_j),   k = 1..K,   v_K = 1 (truncation, so sum_k pi_k = 1),
with a Kumaraswamy(a, b) posterior on each fraction v_k (Sec. 3.3 / 4; its sampler, density and
KL against the Beta are in ``SB_VAE/kumaraswamy.py``) and a Beta(1, alpha0) prior (the GEM
prior of a Dirichlet process). The Gaussian VAE baseline has the same networks with a diagonal
Gaussian latent (``common.gaussian``); both decode with ``common.bernoulli`` (ReLU, as the
authors' code). Log-densities are summed over their last dimension, in nats per example.
Evaluation and training recipes are in ``SB_VAE/experiment.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from common.bernoulli import BernoulliDecoder, bernoulli_log_prob
from common.gaussian import gaussian_kl, gaussian_kl_per_latent, log_normal, log_standard_normal, reparameterize
from SB_VAE.kumaraswamy import (beta_log_prob, kumaraswamy_kl, kumaraswamy_log_prob, kumaraswamy_log_v_fused,
                                kumaraswamy_mean)

#: a, b = softplus(.) + floor. The authors' code has no floor. Ours keeps 1/a and 1/b below
#: 1/floor, so a collapsing encoder (a, b -> 0) cannot turn the KL into inf - inf = NaN (the
#: failure of an earlier reimplementation); 0.01 is far below any a, b the trained models use.
KUMARASWAMY_FLOOR = 0.01
#: The authors' sampler draws u ~ U(0.01, 0.99) for the inverse CDF; we do so in training.
U_RANGE = (0.01, 0.99)


def sample_uniform(shape: tuple[int, ...], low: float = U_RANGE[0], high: float = U_RANGE[1],
                   device=None, dtype=torch.float32) -> torch.Tensor:
    """u ~ U(low, high). The paper's training uses (0.01, 0.99), as in the authors' code; (0, 1) gives
    the exact Kumaraswamy (we use it for importance sampling, whose weights need q's true density)."""
    return low + (high - low) * torch.rand(shape, device=device, dtype=dtype).clamp_min(1e-12)


def stick_breaking_log_weights(log_v: torch.Tensor, log_1mv: torch.Tensor) -> torch.Tensor:
    """log pi for K - 1 fractions v_1..v_{K-1} and v_K = 1 (eq. 2): shape (..., K).

    log pi_k = log v_k + sum_{j<k} log(1 - v_j);  log pi_K = sum_{j<K} log(1 - v_j).
    One cumulative sum, no loop over K.
    """
    remaining = torch.cumsum(log_1mv, dim=-1)                               # log prod_{j<=k} (1 - v_j)
    before = torch.cat([torch.zeros_like(remaining[..., :1]), remaining[..., :-1]], dim=-1)
    return torch.cat([log_v + before, remaining[..., -1:]], dim=-1)


def stick_breaking_weights(v: torch.Tensor) -> torch.Tensor:
    """pi from fractions v (..., K - 1) with v_K = 1 (eq. 2); for prior draws and tests."""
    log_v = torch.log(v)
    return stick_breaking_log_weights(log_v, torch.log1p(-v)).exp()


# The networks (Sec. 6): one hidden layer of ReLUs, as in the authors' code.
def init_authors_(model: nn.Module, std: float = 0.01) -> nn.Module:
    """Weights from std * N(0, 1), biases zero (the authors' code initialises with 0.01 N(0, 1))."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, std)
    return model


class GaussVAE(nn.Module):
    """The Gauss-VAE baseline: x -> hidden ReLU -> (mu, log sigma^2), N(0, I) prior, same decoder."""

    def __init__(self, x_dim: int = 784, hidden: int = 500, z_dim: int = 50) -> None:
        super().__init__()
        self.x_dim, self.z_dim = x_dim, z_dim
        self.hidden = nn.Linear(x_dim, hidden)
        self.mu = nn.Linear(hidden, z_dim)
        self.logvar = nn.Linear(hidden, z_dim)
        self.decoder = BernoulliDecoder(z_dim, hidden, x_dim, activation="relu")
        init_authors_(self)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.hidden(x.reshape(len(x), -1)))
        return self.mu(h), self.logvar(h)

    def latents(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """One draw z ~ q(z|x) (``sample``) or the posterior mean mu(x)."""
        mu, logvar = self.posterior(x)
        return reparameterize(mu, logvar) if sample else mu

    def kl_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """KL(q(z_k|x) || N(0, 1)) per example and dimension, (N, z_dim)."""
        mu, logvar = self.posterior(x)
        return gaussian_kl_per_latent(mu, logvar)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator)

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example negative bound -L = rec + KL (Kingma & Welling eq. 10, one sample)."""
        x = x.reshape(len(x), -1)
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar)
        logits = self.decoder.logits(z)
        return {"rec": -bernoulli_log_prob(x, logits), "kl": gaussian_kl(mu, logvar), "z": z, "logits": logits}

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i|x) for k draws z_i ~ q, shape (k, N)."""
        x = x.reshape(len(x), -1)
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar, torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype))
        return self.decoder.log_prob(x, z) + log_standard_normal(z) - log_normal(z, mu, logvar)


class StickBreakingVAE(nn.Module):
    """The SB-VAE (Sec. 4): x -> hidden ReLU -> softplus (a, b) for K - 1 Kumaraswamy fractions.

    As in the authors' code, a and b are bias-free linear maps of the hidden layer, then softplus
    (plus our ``floor``); the decoder reads pi. ``kl_terms``: 10 (the paper's series) or None (accurate).
    """

    def __init__(self, x_dim: int = 784, hidden: int = 500, truncation: int = 50, alpha0: float = 5.0,
                 kl_terms: int | None = 10, floor: float = KUMARASWAMY_FLOOR) -> None:
        super().__init__()
        if truncation < 2:
            raise ValueError("truncation K must be >= 2")
        self.x_dim, self.z_dim, self.alpha0, self.kl_terms, self.floor = x_dim, truncation, alpha0, kl_terms, floor
        self.hidden = nn.Linear(x_dim, hidden)
        self.a = nn.Linear(hidden, truncation - 1, bias=False)
        self.b = nn.Linear(hidden, truncation - 1, bias=False)
        self.decoder = BernoulliDecoder(truncation, hidden, x_dim, activation="relu")
        init_authors_(self)

    def extra_repr(self) -> str:
        return f"alpha0={self.alpha0}, kl_terms={self.kl_terms}, floor={self.floor}"

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Kumaraswamy parameters (a, b), each (N, K - 1)."""
        h = F.relu(self.hidden(x.reshape(len(x), -1)))
        return F.softplus(self.a(h)) + self.floor, F.softplus(self.b(h)) + self.floor

    def _sample(self, a: torch.Tensor, b: torch.Tensor, shape: tuple[int, ...], u_range=U_RANGE):
        log_u = torch.log(sample_uniform(shape, *u_range, device=a.device, dtype=a.dtype))
        log_v, log_1mv = kumaraswamy_log_v_fused(log_u, a, b)
        return log_u, log_v, log_1mv

    def latents(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """Stick weights pi (N, K) at one draw of v ~ q (``sample``, u ~ U(0.01, 0.99)) or at v = E_q[v]."""
        a, b = self.posterior(x)
        if sample:
            _, log_v, log_1mv = self._sample(a, b, a.shape)
        else:
            v = kumaraswamy_mean(a, b).clamp(1e-7, 1 - 1e-7)
            log_v, log_1mv = torch.log(v), torch.log1p(-v)
        return stick_breaking_log_weights(log_v, log_1mv).exp()

    def kl_per_dim(self, x: torch.Tensor, terms: int | None | str = "model") -> torch.Tensor:
        """KL(q(v_k|x) || Beta(1, alpha0)) per example and fraction, (N, K - 1)."""
        a, b = self.posterior(x)
        return kumaraswamy_kl(a, b, 1.0, self.alpha0, self.kl_terms if terms == "model" else terms)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """pi from v_k ~ Beta(1, alpha0), k < K: the stick-breaking prior (GEM(alpha0), truncated)."""
        u = torch.rand(n, self.z_dim - 1, generator=generator, dtype=torch.float64)
        # Beta(1, alpha0) by inverse CDF: v = 1 - (1 - u)^(1/alpha0)
        v = -torch.expm1(torch.log1p(-u) / self.alpha0)
        return stick_breaking_weights(v.clamp(1e-12, 1 - 1e-12)).float()

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example negative bound: -log p(x|pi) at one draw plus the KL summed over fractions (eq. 7)."""
        x = x.reshape(len(x), -1)
        a, b = self.posterior(x)
        _, log_v, log_1mv = self._sample(a, b, a.shape)
        pi = stick_breaking_log_weights(log_v, log_1mv).exp()
        logits = self.decoder.logits(pi)
        kl = kumaraswamy_kl(a, b, 1.0, self.alpha0, self.kl_terms).sum(-1)
        return {"rec": -bernoulli_log_prob(x, logits), "kl": kl, "z": pi, "logits": logits}

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x|pi(v)) + log Beta(v; 1, alpha0) - log Kumaraswamy(v; a, b), v ~ q, shape (k, N) (Table 1).

        v from the exact Kumaraswamy (u ~ U(0, 1)); float64 densities, so v near 0 or 1 keeps its weight.
        """
        x = x.reshape(len(x), -1)
        a, b = (t.double() for t in self.posterior(x))
        log_u, log_v, log_1mv = self._sample(a, b, (k, *a.shape), u_range=(0.0, 1.0))
        log_q = kumaraswamy_log_prob(log_v, log_u / b, a, b).sum(-1)
        log_p = beta_log_prob(log_v, log_1mv, 1.0, self.alpha0).sum(-1)
        pi = stick_breaking_log_weights(log_v, log_1mv).exp().float()
        return self.decoder.log_prob(x, pi).double() + log_p - log_q


VAEModel = GaussVAE | StickBreakingVAE


def negative_bound_loss(model: VAEModel, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``fit`` loss: the negative bound (eq. 7) per example averaged over the batch, with ``rec``, ``kl``
    and ``sq_err``, the squared error of the decoder mean at the sampled latent (Fig. 3a's error)."""
    t = model.terms(x)
    with torch.no_grad():  # the decoder's mean from the logits the bound used, not a second decoder pass
        sq = (torch.sigmoid(t["logits"]) - x.reshape(len(x), -1)).pow(2).sum(-1)
    return {"loss": (t["rec"] + t["kl"]).mean(), "rec": t["rec"].mean(), "kl": t["kl"].mean(), "sq_err": sq.mean()}
