"""Tests for DenoisingAE.regularized (the contractive penalty against autograd, linear AEs, the losses) and
the RegularizedAE notebook's measurements in DenoisingAE.experiment."""
import math

import numpy as np
import pytest
import torch

from DenoisingAE.denoising import TiedAutoencoder
from DenoisingAE.experiment import autoencoder_metrics, distance_from_identity, pca_basis, principal_angles_deg
from DenoisingAE.regularized import (LinearAutoencoder, contractive_penalty, dropout_noise,
                                     jacobian_frobenius_autograd, regularized_loss, squared_error_loss)


@pytest.mark.parametrize("d,h", [(784, 50), (30, 60)])
def test_contractive_closed_form_matches_autograd(d, h):
    torch.manual_seed(0)
    m = TiedAutoencoder(d, h, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        m.b.normal_()
    x = torch.rand(7, d, dtype=torch.float64)
    closed = contractive_penalty(m, m.encode(x))
    auto = jacobian_frobenius_autograd(m, x)
    assert closed.shape == (7,)
    assert torch.allclose(closed, auto, rtol=1e-10, atol=1e-12)


def test_contractive_penalty_gradient_matches_autograd_penalty_gradient():
    torch.manual_seed(0)
    m = TiedAutoencoder(20, 10, generator=torch.Generator().manual_seed(2)).double()
    x = torch.rand(5, 20, dtype=torch.float64)
    g_closed = torch.autograd.grad(contractive_penalty(m, m.encode(x)).sum(), m.W)[0]
    # reference: build the Jacobian with autograd (create_graph) and differentiate its norm
    def jac_norm(W):
        f = lambda xi: torch.sigmoid(W @ xi + m.b.detach())  # noqa: E731
        return sum(torch.autograd.functional.jacobian(f, xi, create_graph=True).pow(2).sum() for xi in x)

    W = m.W.detach().clone().requires_grad_(True)
    g_ref = torch.autograd.grad(jac_norm(W), W)[0]
    assert torch.allclose(g_closed, g_ref, rtol=1e-10)


def test_linear_autoencoder_product_and_identity_distance():
    m = LinearAutoencoder(5, 5)
    with torch.no_grad():
        m.encoder.weight.copy_(torch.eye(5) * 2)
        m.decoder.weight.copy_(torch.eye(5) * 0.5)
    assert distance_from_identity(m.product()) == pytest.approx(0.0, abs=1e-7)
    assert distance_from_identity(torch.zeros(4, 4)) == pytest.approx(1.0)
    M = torch.eye(6)
    M[0, 0] = 0.0
    assert distance_from_identity(M, pixels=torch.arange(1, 6)) == pytest.approx(0.0)
    assert distance_from_identity(M) == pytest.approx(1 / math.sqrt(6))
    x = torch.rand(3, 5)
    assert torch.allclose(m(x), x, atol=1e-6)
    assert squared_error_loss(m, x)["loss"].item() < 1e-10


def test_principal_angles_and_pca_basis():
    rng = np.random.default_rng(0)
    # data with a clear 2-D principal subspace spanned by e0, e1
    x = rng.normal(size=(2000, 6)) * np.array([5.0, 3.0, 0.1, 0.1, 0.1, 0.1])
    B = pca_basis(x, 2)
    assert principal_angles_deg(B, np.eye(6)[:, :2]).max() < 1.0
    assert principal_angles_deg(np.eye(6)[:, :2], np.eye(6)[:, 2:4]) == pytest.approx([90, 90])
    A = np.eye(6)[:, :2] @ np.array([[2.0, 1.0], [0.5, 3.0]])  # a different basis of the same span
    assert principal_angles_deg(A, np.eye(6)[:, :2]).max() < 1e-5


@pytest.mark.parametrize("kind,strength", [("plain", 0.0), ("l1", 0.1), ("contractive", 0.1),
                                           ("masking", 0.25), ("dropout", 0.25)])
def test_regularized_losses_are_finite_and_decrease(kind, strength):
    torch.manual_seed(0)
    x = (torch.rand(128, 49) > 0.6).float()
    m = TiedAutoencoder(49, 30, generator=torch.Generator().manual_seed(0))
    loss = regularized_loss(kind, strength)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = loss(m, x)["loss"].item()
    for _ in range(150):
        opt.zero_grad()
        terms = loss(m, x)
        terms["loss"].backward()
        opt.step()
    assert all(torch.isfinite(v) for v in terms.values())
    assert loss(m, x)["loss"].item() < first
    if kind in ("l1", "contractive"):
        assert terms["penalty"].item() > 0


def test_l1_penalty_makes_codes_sparser():
    torch.manual_seed(0)
    x = (torch.rand(256, 49) > 0.6).float()
    codes = {}
    for lam in (0.0, 0.5):
        m = TiedAutoencoder(49, 30, generator=torch.Generator().manual_seed(0))
        loss = regularized_loss("l1", lam)
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        for _ in range(300):
            opt.zero_grad()
            loss(m, x)["loss"].backward()
            opt.step()
        codes[lam] = autoencoder_metrics(m, x)["mean_code"]
    assert codes[0.5] < 0.75 * codes[0.0]


def test_dropout_noise_rescales_survivors_unlike_masking():
    torch.manual_seed(0)
    x = torch.ones(100, 50)
    xd = dropout_noise(x, 0.5)
    assert set(torch.unique(xd).tolist()) == {0.0, 2.0}
    assert len(set((xd == 0).sum(1).tolist())) > 1  # binomial count of zeros, not fixed


def test_autoencoder_metrics_ranges():
    m = TiedAutoencoder(49, 20, generator=torch.Generator().manual_seed(0))
    x = torch.rand(30, 49)
    out = autoencoder_metrics(m, x)
    assert out["rec_ce"] > 0 and out["rec_mse"] > 0
    assert 0 < out["mean_code"] < 1 and 0 <= out["near_zero_share"] <= 1
    assert out["jacobian_fro2"] == pytest.approx(contractive_penalty(m, m.encode(x)).mean().item(), rel=1e-5)
