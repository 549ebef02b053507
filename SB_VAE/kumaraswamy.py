"""The Kumaraswamy posterior of the SB-VAE (Nalisnick & Smyth, ICLR 2017, Sec. 3.3 and 4).

A Kumaraswamy(a, b) on each stick fraction v_k stands in for the Beta: it has a closed-form
inverse CDF (eq. 6), so v is a differentiable function of a uniform draw, and a closed-form
KL against the Beta(alpha, beta) prior up to the series E_q[log(1 - v)] (the paper's
appendix). Here are its log-space sampler, its density, the Beta density and that KL, with
the paper's 10-term series and an accurate quadrature. ``SB_VAE/sbvae.py`` builds the
stick-breaking latent and the models from them.

Numerics: with x = log(u) / b = log(1 - v^a), log v = log(1 - e^x) / a, and log(1 - v)
follows from log(-log v) without ever forming 1 - v, so neither v -> 1 (b small) nor
v -> 0 (a small) makes a log of zero. Every density is elementwise, in nats.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

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


class _KumaraswamyLogV(torch.autograd.Function):
    """``kumaraswamy_log_v`` with its derivative written out (the same forward values, bit for bit).

    Autograd would trace both branches of every ``log1mexp`` and the clamps: some 60 small
    kernels per step. Here the backward is one short chain: with L = log(-log v) = f(x) - log a,
    f(x) = log(-log(1 - e^x)), x = log(u) / b,
    dL/da = -1/a, dL/db = f'(x) (-x / b), dL/dlog u = f'(x) / b, f'(x) = -e^x / ((1 - e^x) log(1 - e^x))
    (1 where the sampler uses the x < -30 asymptote), d log v / dL = log v, and
    d log(1 - v) / dL = -log v * v / (1 - v) (1 + log v / 2 on the series branch).
    """

    @staticmethod
    def forward(ctx, log_u, a, b):
        log_v, log_1mv = kumaraswamy_log_v(log_u, a, b)
        ctx.save_for_backward(log_u, a, b, log_v, log_1mv)
        return log_v, log_1mv

    @staticmethod
    @once_differentiable  # the written-out formula has no second derivative
    def backward(ctx, g_v, g_1mv):
        log_u, a, b, log_v, log_1mv = ctx.saved_tensors
        x = log_u / b
        l1x = log1mexp(x.clamp(min=-30.0))
        df = torch.where(x < -30.0, 1.0, -torch.exp(x - l1x) / l1x)
        d1mv = torch.where(log_v > -1e-4, 1.0 + 0.5 * log_v, -torch.exp(log_v - log_1mv) * log_v)
        g = g_v * log_v + g_1mv * d1mv                      # d/dL
        g_x = g * df / b
        return (g_x.sum_to_size(log_u.shape) if ctx.needs_input_grad[0] else None,
                (-g / a).sum_to_size(a.shape) if ctx.needs_input_grad[1] else None,
                (-g_x * x).sum_to_size(b.shape) if ctx.needs_input_grad[2] else None)


def kumaraswamy_log_v_fused(log_u: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``kumaraswamy_log_v`` with a hand-written backward: what training uses (tests: same values and gradients)."""
    return _KumaraswamyLogV.apply(log_u, a, b)


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


#: Tanh-sinh rules by precision, as (n_half, t_max): 2 n_half + 1 nodes on t in [-t_max, t_max].
#: float64 keeps 41 nodes (1e-11 nats, for checks and evaluation). float32, which training uses,
#: needs fewer: against an 81-node float64 reference, 25 nodes at t_max 3.0 are within 4.5e-7
#: nats (1.5e-6 relative) over a in [0.5, 30], b in [2, 2000] (trained SB-VAEs use a in
#: [0.51, 26], b in [2, 1457]) and within 2e-6 for all a, b >= 0.2, the rounding level of
#: float32 itself, as the 41-node rule is; only the endpoint layers of a, b < 0.2 lose digits
#: (3e-5 nats at 0.1, 3e-4 at 0.05, 4e-3 at the 0.01 floor). 25 nodes cost 25/41 of the work.
QUADRATURE_RULES = {torch.float64: (20, 3.4), torch.float32: (12, 3.0)}
_NODES: dict = {}


def kumaraswamy_mean_log_1mv(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E_q[log(1 - v)] under Kumaraswamy(a, b), differentiable in a and b, in the precision of ``a``.

    With r ~ U(0, 1), v = (1 - r^(1/b))^(1/a) is Kumaraswamy(a, b), so
    E[log(1 - v)] = int_0^1 log(1 - v(r)) dr. The integrand has a log singularity at r = 0
    (there log(1 - v) ~ log(r) / b - log a, worst for b < 1) and a power singularity at
    r = 1; a tanh-sinh rule integrates both. In float64 (41 nodes), against 30-digit
    adaptive quadrature (mpmath) on a, b in {0.3, ..., 10} the largest error was 1e-11 nats.
    Training runs it in float32 with 25 nodes (``QUADRATURE_RULES``: the error by range),
    25/41 of the 41-node rule's work; tests/test_fast_paths.py checks the float32 rule against
    the float64 one, tests/test_sbvae.py the closed forms at a = 1 or b = 1 and Monte Carlo.
    """
    dtype = torch.promote_types(a.dtype, torch.float32)
    key = (a.device, dtype)
    if key not in _NODES:
        log_r, w = _tanh_sinh_nodes(*QUADRATURE_RULES[dtype])  # built in float64, then rounded once
        _NODES[key] = (log_r.to(a.device, dtype), w.to(a.device, dtype))
    log_r, w = _NODES[key]
    _, log_1mv = kumaraswamy_log_v_fused(log_r, a.to(dtype).unsqueeze(-1), b.to(dtype).unsqueeze(-1))
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
