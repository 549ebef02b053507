"""Tests of the CelebA (convolutional) part of BetaVAE.betavae: the net, its likelihood, the metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from BetaVAE.betavae import (CELEBA_PIXELS, AutoencoderLoss, BetaVAELoss, ConvBetaVAE, attribute_auc, auc_standard_error,
                             beta_norm,
                             celeba_attributes, frechet_distance, gaussian_code_samples, gaussian_pixel_log_likelihood,
                             laplacian_energy, pca_frechet_distance, predicted_active_directions,
                             principal_components)


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


def test_beta_norm():
    assert beta_norm(250, 32, CELEBA_PIXELS) == pytest.approx(0.651, abs=1e-3)
    assert beta_norm(4, 10, 64 * 64) == pytest.approx(0.0098, abs=1e-4)
    with pytest.raises(ValueError):
        beta_norm(1, 0, 10)


def test_predicted_active_directions():
    ev = torch.tensor([300.0, 100.0, 10.0, 1.0])
    assert predicted_active_directions(ev, 250, 1.0) == 1
    assert predicted_active_directions(ev, 250, 0.5 ** 0.5) == 1   # threshold 125
    assert predicted_active_directions(ev, 1, 1.0) == 3            # 1.0 is not > 1
    assert predicted_active_directions(ev, 250, 1 / 255) == 4      # [0, 255] scale: no pressure


def test_attribute_auc_perfect_inverted_random_and_constant():
    g = torch.Generator().manual_seed(0)
    attr = torch.rand(400, 3, generator=g) < 0.4
    attr[:, 2] = False  # one class only: no AUC
    noise = torch.randn(400, generator=g)
    codes = torch.stack([attr[:, 0].float() + 0.1 * noise, -attr[:, 0].float(), noise], dim=1)
    auc = attribute_auc(codes, attr)
    assert auc.shape == (3, 3)
    assert auc[0, 0] == pytest.approx(1.0) and auc[1, 0] == pytest.approx(0.0)
    assert abs(auc[2, 0] - 0.5) < 0.1 and abs(auc[2, 1] - 0.5) < 0.1
    assert np.isnan(auc[:, 2]).all()
    # The rank (Mann-Whitney) form of the AUC, by hand, for the random latent.
    s, y = noise.numpy(), attr[:, 1].numpy()
    pos, neg = s[y], s[~y]
    by_hand = ((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    assert auc[2, 1] == pytest.approx(by_hand)


def test_auc_standard_error_against_a_simulation():
    g = np.random.default_rng(0)
    n_pos, n_neg = 60, 140
    aucs = []
    from sklearn.metrics import roc_auc_score
    for _ in range(400):
        s = np.concatenate([g.normal(1.0, 1, n_pos), g.normal(0, 1, n_neg)])
        aucs.append(roc_auc_score(np.r_[np.ones(n_pos), np.zeros(n_neg)], s))
    se = float(auc_standard_error(np.mean(aucs), n_pos, n_neg))
    assert se == pytest.approx(np.std(aucs), rel=0.2)
    assert float(auc_standard_error(1.0, 10, 10)) == 0.0


def test_celeba_attributes_lookup(tmp_path):
    folder = tmp_path / "CelebA"
    folder.mkdir()
    (folder / "list_attr_celeba_rows000001-020000.txt").write_text(
        "202599\nSmiling Bangs\n000001.jpg  1 -1\n000002.jpg -1  1\n000003.jpg  1  1\n")
    names, table = celeba_attributes(torch.tensor([3, 1]), root=tmp_path)
    assert names == ["Smiling", "Bangs"]
    assert table.tolist() == [[True, True], [True, False]]
    with pytest.raises(Exception, match="outside"):
        celeba_attributes(torch.tensor([4]), root=tmp_path)


def test_frechet_distance_closed_form_and_pca_version():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 2, generator=g)
    b = 2 * torch.randn(20000, 2, generator=g) + torch.tensor([3.0, 0.0])
    # N(0, I) vs N((3, 0), 4 I): |dm|^2 + tr(I + 4I - 2 * 2I) = 9 + 2
    assert frechet_distance(a, b) == pytest.approx(11.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        frechet_distance(a, b[:, :1])
    x = _faces(200)
    mean, comps, var = principal_components(x, 5)
    assert comps.shape == (5, CELEBA_PIXELS) and torch.all(var[:-1] >= var[1:])
    torch.testing.assert_close(comps @ comps.T, torch.eye(5), atol=1e-4, rtol=0)
    same = pca_frechet_distance(x, x, mean, comps)
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    assert same == pytest.approx(0.0, abs=1e-6) and pca_frechet_distance(blurred, x, mean, comps) > 1.0


def test_laplacian_energy_drops_with_blur_and_code_samples_match_moments():
    x = _faces(4)
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    assert torch.all(laplacian_energy(blurred) < 0.5 * laplacian_energy(x))
    assert torch.all(laplacian_energy(torch.full((2, 3, 8, 8), 0.3)) == 0)
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(5000, 3, generator=g) @ torch.tensor([[2.0, 0, 0], [1, 1, 0], [0, 0, 0.5]]) + 4
    s = gaussian_code_samples(codes, 20000, generator=g)
    torch.testing.assert_close(s.mean(0), codes.mean(0), atol=0.1, rtol=0)
    torch.testing.assert_close(torch.cov(s.T), torch.cov(codes.T), atol=0.15, rtol=0.05)
