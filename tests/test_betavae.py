"""BetaVAE/betavae.py: the beta objective (eq. 4), the FC 2D-shapes net and the conv CelebA net."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from BetaVAE.betavae import (CELEBA_PIXELS, AutoencoderLoss, BetaVAELoss, ConvBetaVAE, FCBetaVAE, beta_norm,
                             beta_vae_terms, gaussian_pixel_log_likelihood)
from common.gaussian import gaussian_kl_per_latent, mean_kl_per_latent


def test_beta_norm():
    assert beta_norm(250, 32, CELEBA_PIXELS) == pytest.approx(0.651, abs=1e-3)
    assert beta_norm(4, 10, 64 * 64) == pytest.approx(0.0098, abs=1e-4)
    with pytest.raises(ValueError):
        beta_norm(1, 0, 10)

# ---------------------------------------------------------------------------
# The 2D-shapes (FC) model
# ---------------------------------------------------------------------------
def _shapes(n: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, 1, 64, 64, generator=torch.Generator().manual_seed(seed)) < 0.2).float()


def test_fc_architecture_is_the_papers():
    torch.manual_seed(0)
    model = FCBetaVAE()
    linear = lambda seq: [(m.in_features, m.out_features) for m in seq if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert linear(model.encoder) == [(4096, 1200), (1200, 1200), (1200, 20)]          # mean and log-variance
    assert linear(model.decoder) == [(10, 1200), (1200, 1200), (1200, 1200), (1200, 4096)]
    assert [type(m) for m in model.encoder if not isinstance(m, torch.nn.Linear)] == [torch.nn.ReLU] * 2
    assert [type(m) for m in model.decoder if not isinstance(m, torch.nn.Linear)] == [torch.nn.Tanh] * 3
    x = _shapes(5)
    mu, logvar = model.posterior(x)
    assert mu.shape == logvar.shape == (5, 10)
    torch.testing.assert_close(model.encode(x), mu)
    out = model.reconstruct(x)
    assert out.shape == (5, 1, 64, 64) and out.min() >= 0 and out.max() <= 1


def test_fc_likelihood_is_the_bernoulli_density_summed_over_pixels():
    torch.manual_seed(0)
    model, x = FCBetaVAE(z_dim=3, hidden=16), _shapes(4)
    z = torch.randn(4, 3)
    with torch.no_grad():
        p = model.decode(z).flatten(1)
        ref = torch.distributions.Bernoulli(probs=p).log_prob(x.flatten(1)).sum(-1)
        torch.testing.assert_close(model.log_likelihood(x, z), ref, rtol=1e-4, atol=1e-3)


def test_fc_beta_objective_terms():
    torch.manual_seed(0)
    model, x = FCBetaVAE(z_dim=4, hidden=32), _shapes(6)
    torch.manual_seed(3)
    t = beta_vae_terms(model, x, 4.0)
    assert all(v.shape == (6,) for v in t.values())
    torch.testing.assert_close(t["objective"], -(t["rec"] + 4.0 * t["kl"]))
    mu, logvar = model.posterior(x)
    torch.testing.assert_close(t["kl"], gaussian_kl_per_latent(mu, logvar).sum(-1))  # eq. 4's KL, in closed form
    torch.manual_seed(3)
    loss = BetaVAELoss(4.0)(model, x)   # the same z draw
    assert set(loss) == {"loss", "rec", "kl", "elbo"} and repr(BetaVAELoss(4.0)) == "BetaVAELoss(beta=4.0)"
    torch.testing.assert_close(loss["loss"], -t["objective"].mean())
    torch.testing.assert_close(loss["elbo"], -(loss["rec"] + loss["kl"]))
    # the per-latent KL averaged over the data sums to the loss's KL term
    torch.testing.assert_close(mean_kl_per_latent(model.posterior, x, batch_size=4).sum(), loss["kl"])


def test_fc_a_few_adagrad_steps_raise_the_objective():
    torch.manual_seed(0)
    model, x = FCBetaVAE(z_dim=4, hidden=64), _shapes(16)
    opt = torch.optim.Adagrad(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = BetaVAELoss(4.0)(model, x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


# ---------------------------------------------------------------------------
# The CelebA (conv) model and its Gaussian likelihood
# ---------------------------------------------------------------------------
def _faces(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_architecture_shapes_and_range():
    torch.manual_seed(0)
    model = ConvBetaVAE()
    x = _faces(5)
    mu, logvar = model.posterior(x)
    assert mu.shape == logvar.shape == (5, 32)
    convs = [m for m in model.encoder.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert model.encoder.convs(x).shape == (5, 64, 4, 4)  # 64 -> 32 -> 16 -> 8 -> 4
    out = model.decode(mu)
    assert out.shape == (5, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="64, 64"):
        model.posterior(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="decoder_std"):
        ConvBetaVAE(decoder_std=0)


def test_gaussian_likelihood_is_the_full_density_summed_over_pixels():
    g = torch.Generator().manual_seed(1)
    x, mean = torch.rand(4, 3, 8, 8, generator=g), torch.rand(4, 3, 8, 8, generator=g)
    for std in (1.0, 0.3):
        ref = Normal(mean, std).log_prob(x).flatten(1).sum(-1)
        torch.testing.assert_close(gaussian_pixel_log_likelihood(x, mean, std), ref)
    with pytest.raises(ValueError):
        gaussian_pixel_log_likelihood(x, mean, 0.0)


def test_calibrated_decoder_uses_the_maximum_likelihood_sigma():
    torch.manual_seed(0)
    model, x = ConvBetaVAE(decoder_std=None), _faces(4)
    z = model.encode(x)
    with torch.no_grad():
        mean = model.decode(z)
        mse = (x - mean).pow(2).mean()
        got = model.log_likelihood(x, z)
        torch.testing.assert_close(got, gaussian_pixel_log_likelihood(x, mean, mse.sqrt()))
        # sigma^2 = MSE maximises the batch's total log-likelihood over sigma
        for f in (0.8, 1.25):
            assert gaussian_pixel_log_likelihood(x, mean, f * mse.sqrt()).sum() < got.sum()
    assert not any("std" in k for k in model.state_dict())  # nothing learned for it


def test_channels_last_computes_the_same_function():
    torch.manual_seed(0)
    a = ConvBetaVAE()
    b = ConvBetaVAE(channels_last=True)
    b.load_state_dict(a.state_dict())
    x = _faces(3)
    with torch.no_grad():
        torch.testing.assert_close(a.posterior(x), b.posterior(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.reconstruct(x), b.reconstruct(x), rtol=1e-4, atol=1e-5)
    assert b.encoder.convs[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_beta_objective_on_the_conv_net_and_the_plain_autoencoder():
    torch.manual_seed(0)
    model, x = ConvBetaVAE(), _faces(6)
    torch.manual_seed(3)
    t250 = BetaVAELoss(250.0)(model, x)
    torch.manual_seed(3)
    t1 = BetaVAELoss(1.0)(model, x)  # same z draw: only the KL weight differs
    torch.testing.assert_close(t250["loss"], t250["rec"] + 250 * t250["kl"])
    # both losses hold the ~11,290-nat constant of the density: compare at float32 resolution of that scale
    torch.testing.assert_close(t250["loss"] - t1["loss"], 249 * t1["kl"], atol=1e-2, rtol=1e-4)
    # The AE decodes the posterior mean: deterministic, and no KL term.
    ae = AutoencoderLoss()
    l1, l2 = ae(model, x), ae(model, x)
    assert set(l1) == {"loss", "rec"} and torch.equal(l1["loss"], l2["loss"])
    sse = (model.reconstruct(x) - x).pow(2).flatten(1).sum(-1)
    torch.testing.assert_close(l1["rec"], (0.5 * sse + 0.5 * CELEBA_PIXELS * math.log(2 * math.pi)).mean())


def test_a_few_steps_fit_a_small_batch():
    torch.manual_seed(0)
    model, x = ConvBetaVAE(channels_last=True), _faces(8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = AutoencoderLoss()(model, x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
