"""Tests of common.gaussian: the closed-form KL (per latent and summed), the densities, the
reparameterisation and the per-latent KL averaged over data."""
from __future__ import annotations

import math

import torch
from torch.distributions import Normal, kl_divergence

from common.gaussian import (gaussian_kl, gaussian_kl_per_latent, log_normal, log_standard_normal,
                             mean_kl_per_latent, reparameterize)


def test_gaussian_kl_matches_torch():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), ref)
    assert torch.all(gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2)) == 0)


def test_per_latent_kl_sums_to_the_kl():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g)
    per_latent = gaussian_kl_per_latent(mu, logvar)
    assert per_latent.shape == mu.shape and torch.all(per_latent >= 0)
    torch.testing.assert_close(per_latent.sum(-1), gaussian_kl(mu, logvar))


def test_per_latent_kl_matches_monte_carlo():
    """E_q[log q(z_j) - log p(z_j)] by sampling, per latent, within 4 standard errors of the closed form."""
    g = torch.Generator().manual_seed(2)
    mu = torch.tensor([0.0, 1.5, -0.7, 0.2], dtype=torch.float64)
    logvar = torch.tensor([0.0, -1.0, 0.8, -3.0], dtype=torch.float64)
    n = 200_000
    eps = torch.randn(n, 4, generator=g, dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * eps
    # per-latent log-densities: the last dimension of log_normal is summed, so give it size 1
    log_q = log_normal(z[..., None], mu[:, None], logvar[:, None])
    log_p = log_standard_normal(z[..., None])
    d = log_q - log_p
    mc, se = d.mean(0), d.std(0) / math.sqrt(n)
    exact = gaussian_kl_per_latent(mu, logvar)
    assert torch.all((mc - exact).abs() < 4 * se + 1e-4), (mc, exact, se)


def test_log_densities_match_torch():
    g = torch.Generator().manual_seed(3)
    x, mean, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    ref = Normal(mean, (0.5 * logvar).exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(log_normal(x, mean, logvar), ref)
    torch.testing.assert_close(log_standard_normal(x), Normal(0.0, 1.0).log_prob(x).sum(-1))


def test_reparameterize_is_mu_plus_sigma_eps():
    mu, logvar, eps = torch.tensor([1.0, -2.0]), torch.tensor([0.0, math.log(4.0)]), torch.tensor([0.5, 0.5])
    torch.testing.assert_close(reparameterize(mu, logvar, eps), torch.tensor([1.5, -1.0]))
    torch.manual_seed(0)
    z = reparameterize(torch.zeros(100_000, 1), torch.full((100_000, 1), math.log(9.0)))
    assert abs(z.std().item() - 3.0) < 0.05


def test_mean_kl_per_latent_averages_over_the_data_in_batches():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(250, 3, generator=g)
    posterior = lambda xb: (xb, 0.5 * xb)  # noqa: E731
    got = mean_kl_per_latent(posterior, x, batch_size=64)
    torch.testing.assert_close(got, gaussian_kl_per_latent(x, 0.5 * x).mean(0))
    assert got.shape == (3,)
