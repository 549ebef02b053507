"""Stick-Breaking Variational Autoencoders (Nalisnick & Smyth, ICLR 2017): the latent, the KL, the models.

The SB-VAE's latent is a vector of stick-breaking weights (Sec. 3, eq. 2)

    pi_k = v_k * prod_{j<k} (1 - v_j),   k = 1..K,   v_K = 1 (truncation, so sum_k pi_k = 1),

with a Kumaraswamy(a, b) posterior on each fraction v_k (Sec. 3.3 / 4) and a Beta(1, alpha0)
prior (the GEM prior of a Dirichlet process). The encoder emits a and b for the K - 1 free
fractions; the decoder reads pi. The Gaussian VAE baseline has the same networks with a
diagonal Gaussian latent (its pieces come from ``common.gaussian``).

Numerics: every sample is built in log space from the uniform draw u. With
x = log(u) / b = log(1 - v^a), log v = log(1 - e^x) / a, and log(1 - v) follows from
log(-log v) without ever forming 1 - v, so neither v -> 1 (b small) nor v -> 0 (a small)
makes a log of zero. The stick weights are a cumulative sum of log(1 - v) (no loop over K).

Every log-density is summed over its last dimension, in nats per example.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.gaussian import gaussian_kl, log_normal, log_standard_normal, reparameterize

#: Floor added to softplus for the Kumaraswamy parameters: a, b = softplus(.) + floor.
#: The authors' code has no floor. Ours keeps 1/a and 1/b below 1/floor, which bounds the
#: terms (a - alpha)/a, 1/b and the exponent 1/b of the inverse CDF, so a collapsing
#: encoder (a, b -> 0) cannot turn the KL into inf - inf = NaN (the failure of an earlier
#: reimplementation). 0.01 is far below any a, b the trained models use (see the notebook).
KUMARASWAMY_FLOOR = 0.01
#: The authors' sampler draws u ~ U(0.01, 0.99) for the inverse CDF; we do so in training.
U_RANGE = (0.01, 0.99)
EULER_GAMMA = 0.5772156649015329


# ---------------------------------------------------------------------------
# Stable log-space helpers
# ---------------------------------------------------------------------------
def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - e^x) for x < 0, accurate at both ends (Maechler 2012: expm1 near 0, log1p far away)."""
    cut = -math.log(2.0)
    # each branch sees only its own range, so the unused one has no inf whose gradient times 0 is NaN
    return torch.where(x > cut, torch.log(-torch.expm1(x.clamp(min=cut))), torch.log1p(-torch.exp(x.clamp(max=cut))))


def _log_neg_log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(-log(1 - e^x)) for x < 0. For x < -30, -log(1 - e^x) = e^x to float64 precision, so it is x."""
    xc = x.clamp(min=-30.0)
    return torch.where(x < -30.0, x, torch.log(-log1mexp(xc)))


def kumaraswamy_log_v(log_u: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log v, log(1 - v)) for v = (1 - u^(1/b))^(1/a), the Kumaraswamy inverse CDF (Sec. 3.3, eq. 6).

    ``log_u`` is log of a draw u ~ U(0, 1) (1 - u has the same law, so this is the inverse CDF
    up to that reflection). Both outputs are finite for every u in (0, 1) and a, b > 0.
    """
    x = log_u / b                                    # log(1 - v^a)
    log_neg_log_v = _log_neg_log1mexp(x) - torch.log(a)   # log(-log v)
    log_v = -torch.exp(log_neg_log_v)
    # log(1 - v) = log(1 - e^{log v}): when -log v < 1e-4, use log(-log v) + log v / 2 (series),
    # so v rounding to 1 never gives log(0)
    small = log_neg_log_v < math.log(1e-4)
    log_1mv = torch.where(small, log_neg_log_v + 0.5 * log_v, log1mexp(log_v.clamp(max=-1e-4)))
    return log_v, log_1mv


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


# ---------------------------------------------------------------------------
# Densities and the KL
# ---------------------------------------------------------------------------
def log_beta_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)


def kumaraswamy_log_prob(log_v: torch.Tensor, log_u_over_b: torch.Tensor, a: torch.Tensor,
                         b: torch.Tensor) -> torch.Tensor:
    """log Kumaraswamy(v; a, b) = log(ab) + (a - 1) log v + (b - 1) log(1 - v^a), elementwise.

    Takes log(1 - v^a) = log(u) / b from the sampler, which is exact where 1 - v^a rounds to 0.
    """
    return torch.log(a) + torch.log(b) + (a - 1) * log_v + (b - 1) * log_u_over_b


def beta_log_prob(log_v: torch.Tensor, log_1mv: torch.Tensor, alpha, beta) -> torch.Tensor:
    """log Beta(v; alpha, beta), elementwise, from log v and log(1 - v)."""
    alpha = torch.as_tensor(alpha, dtype=log_v.dtype, device=log_v.device)
    beta = torch.as_tensor(beta, dtype=log_v.dtype, device=log_v.device)
    return (alpha - 1) * log_v + (beta - 1) * log_1mv - log_beta_fn(alpha, beta)


def kumaraswamy_mean_log_v(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E_q[log v] = (psi(1) - psi(b + 1)) / a = (-gamma - psi(b) - 1/b) / a (v^a ~ Beta(1, b))."""
    return (-EULER_GAMMA - torch.digamma(b) - 1.0 / b) / a


def kumaraswamy_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E_q[v] = b B(1 + 1/a, b)."""
    return b * torch.exp(log_beta_fn(1.0 + 1.0 / a, b))


def _tanh_sinh_nodes(n_half: int = 20, t_max: float = 3.4, dtype=torch.float64):
    """Nodes of the tanh-sinh (double exponential) rule on (0, 1), as t, log r, log(1 - r) and weights.

    r = sigmoid(pi sinh t) maps t in R onto (0, 1); the weights dr/dt * h fall off double
    exponentially, so integrable endpoint singularities (log r at r = 0, powers of 1 - r at
    r = 1) cost nothing. log r and log(1 - r) come from logsigmoid, exact near both ends.
    """
    h = t_max / n_half
    t = torch.arange(-n_half, n_half + 1, dtype=dtype) * h
    s = math.pi * torch.sinh(t)
    log_r, log_1mr = F.logsigmoid(s), F.logsigmoid(-s)
    w = h * math.pi * torch.cosh(t) * torch.exp(log_r + log_1mr)
    return log_r, w


_NODES: dict = {}


def kumaraswamy_mean_log_1mv(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E_q[log(1 - v)] under Kumaraswamy(a, b), to ~1e-10 nats, differentiable in a and b.

    With r ~ U(0, 1), v = (1 - r^(1/b))^(1/a) is Kumaraswamy(a, b), so
    E[log(1 - v)] = int_0^1 log(1 - v(r)) dr. The integrand has a log singularity at r = 0
    (there log(1 - v) ~ log(r) / b - log a, worst for b < 1) and a power singularity at
    r = 1; a tanh-sinh rule in float64 integrates both with 41 nodes. Against 30-digit
    adaptive quadrature (mpmath) on a, b in {0.3, ..., 10} the largest error was 1e-11
    nats; tests/test_sbvae.py checks it against closed forms (a = 1 or b = 1) and Monte Carlo.
    """
    key = (a.device,)
    if key not in _NODES:
        log_r, w = _tanh_sinh_nodes()
        _NODES[key] = (log_r.to(a.device), w.to(a.device))
    log_r, w = _NODES[key]
    a64, b64 = a.double().unsqueeze(-1), b.double().unsqueeze(-1)
    _, log_1mv = kumaraswamy_log_v(log_r, a64, b64)
    return (log_1mv * w).sum(-1).to(a.dtype)


def kumaraswamy_kl(a: torch.Tensor, b: torch.Tensor, alpha: float | torch.Tensor, beta: float | torch.Tensor,
                   terms: int | None = 10) -> torch.Tensor:
    """KL(Kumaraswamy(a, b) || Beta(alpha, beta)), elementwise (Sec. 4 / Appendix of the paper).

    KL = (a - alpha)/a (-gamma - psi(b) - 1/b) + log(ab) + log B(alpha, beta) - (b - 1)/b
         - (beta - 1) E_q[log(1 - v)].

    ``terms=M`` (the paper uses M = 10): E_q[log(1 - v)] = -b sum_{m>=1} B(m/a, b) / (m + ab),
    cut after M terms. The series converges like m^(-b), so the cut undershoots when b <~ 1
    or a is large (with beta > 1 the KL is then too small: not a bound any more).
    ``terms=None``: E_q[log(1 - v)] by quadrature (``kumaraswamy_mean_log_1mv``), accurate.
    With beta = 1 the series term vanishes and both agree exactly.
    """
    alpha = torch.as_tensor(alpha, dtype=a.dtype, device=a.device)
    beta = torch.as_tensor(beta, dtype=a.dtype, device=a.device)
    common_part = ((a - alpha) / a * (-EULER_GAMMA - torch.digamma(b) - 1.0 / b)
                   + torch.log(a * b) + log_beta_fn(alpha, beta) - (b - 1) / b)
    if terms is None:
        mean_log_1mv = kumaraswamy_mean_log_1mv(a, b)
    else:
        if terms < 1:
            raise ValueError(f"terms must be >= 1 or None, got {terms}")
        m = torch.arange(1, terms + 1, dtype=a.dtype, device=a.device)
        am, bm = a.unsqueeze(-1), b.unsqueeze(-1)
        series = (torch.exp(log_beta_fn(m / am, bm)) / (m + am * bm)).sum(-1)
        mean_log_1mv = -b * series
    return common_part - (beta - 1) * mean_log_1mv


def kumaraswamy_kl_monte_carlo(a: float, b: float, alpha: float, beta: float, n: int = 200_000,
                               seed: int = 0) -> tuple[float, float]:
    """Monte Carlo estimate of E_q[log q(v) - log p(v)] and its standard error (float64, u ~ U(0, 1))."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g, dtype=torch.float64).clamp_min(1e-300)
    at, bt = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    log_u = torch.log(u)
    log_v, log_1mv = kumaraswamy_log_v(log_u, at, bt)
    d = kumaraswamy_log_prob(log_v, log_u / bt, at, bt) - beta_log_prob(log_v, log_1mv, alpha, beta)
    return float(d.mean()), float(d.std() / math.sqrt(n))


# ---------------------------------------------------------------------------
# The networks (Sec. 6: one hidden layer, ReLU; the authors' code)
# ---------------------------------------------------------------------------
class BernoulliDecoder(nn.Module):
    """p(x | latent): latent -> hidden ReLU -> pixel logits; Bernoulli log-likelihood on grey levels.

    Like the authors' code, the targets are MNIST's grey levels in [0, 1] (not binarised),
    so log p(x|.) = sum_i x_i log y_i + (1 - x_i) log(1 - y_i) is a cross-entropy.
    """

    def __init__(self, z_dim: int, hidden: int, x_dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(z_dim, hidden)
        self.out = nn.Linear(hidden, x_dim)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(z)))

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits = self.logits(z)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))

    def latent_weight_norms(self) -> torch.Tensor:
        """Norm of each latent's outgoing weights into the hidden layer (Fig. 2's decoder-weight panel)."""
        return self.hidden.weight.detach().norm(dim=0)


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
        self.decoder = BernoulliDecoder(z_dim, hidden, x_dim)
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
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator)

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example negative bound -L = rec + KL (Kingma & Welling eq. 10, one sample)."""
        x = x.reshape(len(x), -1)
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar)
        rec = -self.decoder.log_prob(x, z)
        kl = gaussian_kl(mu, logvar)
        return {"rec": rec, "kl": kl, "z": z}

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i|x) for k draws z_i ~ q, shape (k, N)."""
        x = x.reshape(len(x), -1)
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar, torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype))
        return self.decoder.log_prob(x, z) + log_standard_normal(z) - log_normal(z, mu, logvar)


class StickBreakingVAE(nn.Module):
    """The SB-VAE (Sec. 4): x -> hidden ReLU -> softplus (a, b) for K - 1 Kumaraswamy fractions.

    Like the authors' code, a and b are linear maps of the hidden layer without bias, then
    softplus; we add ``KUMARASWAMY_FLOOR``. The decoder reads the K stick weights pi.
    ``kl_terms`` picks the KL: 10 (the paper's series) or None (accurate, by quadrature).
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
        self.decoder = BernoulliDecoder(truncation, hidden, x_dim)
        init_authors_(self)

    def extra_repr(self) -> str:
        return f"alpha0={self.alpha0}, kl_terms={self.kl_terms}, floor={self.floor}"

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Kumaraswamy parameters (a, b), each (N, K - 1)."""
        h = F.relu(self.hidden(x.reshape(len(x), -1)))
        return F.softplus(self.a(h)) + self.floor, F.softplus(self.b(h)) + self.floor

    def _sample(self, a: torch.Tensor, b: torch.Tensor, shape: tuple[int, ...], u_range=U_RANGE):
        log_u = torch.log(sample_uniform(shape, *u_range, device=a.device, dtype=a.dtype))
        log_v, log_1mv = kumaraswamy_log_v(log_u, a, b)
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
        rec = -self.decoder.log_prob(x, pi)
        kl = kumaraswamy_kl(a, b, 1.0, self.alpha0, self.kl_terms).sum(-1)
        return {"rec": rec, "kl": kl, "z": pi}

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x|pi(v)) + log Beta(v; 1, alpha0) - log Kumaraswamy(v; a, b), v ~ q, shape (k, N).

        Importance sampling in v-space with the exact Kumaraswamy (u ~ U(0, 1)); the densities
        are in float64 so that v near 0 or 1 keeps its weight.
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
    """``fit`` loss: -ELBO per example averaged over the batch, with ``rec``, ``kl`` and ``sq_err``.

    ``sq_err`` is the squared error of the decoder mean at the sampled latent, summed over
    pixels (the reconstruction error of Fig. 3a).
    """
    t = model.terms(x)
    with torch.no_grad():
        sq = (model.decoder.mean(t["z"]) - x.reshape(len(x), -1)).pow(2).sum(-1)
    return {"loss": (t["rec"] + t["kl"]).mean(), "rec": t["rec"].mean(), "kl": t["kl"].mean(), "sq_err": sq.mean()}


# ---------------------------------------------------------------------------
# Evaluation helpers
# ---------------------------------------------------------------------------
@torch.no_grad()
def encode(model: VAEModel, x: torch.Tensor, sample: bool, batch_size: int = 2000) -> torch.Tensor:
    """Latents of ``x`` (one posterior draw or the mean-based code), in eval mode, batched."""
    model.eval()
    return torch.cat([model.latents(xb, sample=sample) for xb in x.split(batch_size)])


@torch.no_grad()
def mean_kl_per_dim(model: VAEModel, x: torch.Tensor, batch_size: int = 2000, **kw) -> torch.Tensor:
    """Mean over ``x`` of the KL of each latent dimension (Fig. 2), in nats."""
    model.eval()
    return torch.cat([model.kl_per_dim(xb, **kw) for xb in x.split(batch_size)]).mean(0)


@torch.no_grad()
def knn_errors(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
               ks: tuple[int, ...] = (3, 5, 10), chunk: int = 1000) -> dict[int, float]:
    """Test error (%) of Euclidean k-nearest-neighbour majority votes for every k in ``ks``.

    One search for the max(ks) nearest training points serves all k. A tied vote goes to
    the class whose members are nearer (each vote is weighted 1 + 1e-3 / rank, so the
    nearest neighbour breaks ties). Runs as matrix products on the device.
    """
    kmax = max(ks)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    train_x, test_x = train_x.float(), test_x.float()
    sq_train = train_x.pow(2).sum(1)
    wrong = {k: 0 for k in ks}
    for xs, ys in zip(test_x.split(chunk), test_y.split(chunk)):
        d = sq_train[None, :] - 2 * xs @ train_x.T       # + |x|^2, constant per row
        idx = d.topk(kmax, dim=1, largest=False).indices
        labels = train_y[idx]                            # (n, kmax), nearest first
        rank_weight = 1.0 + 1e-3 / torch.arange(1, kmax + 1, dtype=torch.float32, device=labels.device)
        for k in ks:
            votes = torch.zeros(len(xs), n_classes, device=labels.device)
            votes.scatter_add_(1, labels[:, :k], rank_weight[:k].expand(len(xs), k).contiguous())
            wrong[k] += int((votes.argmax(1) != ys).sum())
    return {k: 100.0 * wrong[k] / len(test_x) for k in ks}


def collapsed_dims(kl_per_dim: torch.Tensor, threshold: float = 0.01) -> int:
    """How many latent dimensions carry less than ``threshold`` nats of KL on average."""
    return int((kl_per_dim < threshold).sum())


def kl_error_grid(a_values: np.ndarray, b_values: np.ndarray, alpha: float, beta: float,
                  terms: int = 10) -> np.ndarray:
    """(terms-cut KL) - (accurate KL) on the grid a x b, in nats: rows a, columns b."""
    a = torch.tensor(a_values, dtype=torch.float64)[:, None].expand(len(a_values), len(b_values))
    b = torch.tensor(b_values, dtype=torch.float64)[None, :].expand(len(a_values), len(b_values))
    return (kumaraswamy_kl(a, b, alpha, beta, terms) - kumaraswamy_kl(a, b, alpha, beta, None)).numpy()


LogWeights = Callable[[torch.Tensor, int], torch.Tensor]
