"""BetaVAE/reparam.py: three readings of the encoder's scale give the same posterior where they agree, and each
trains the CelebA net."""
from __future__ import annotations

import pytest
import torch

from BetaVAE.betavae import BetaVAELoss, ConvBetaVAE
from BetaVAE.reparam import SCALES, SIGMA_FLOOR, ReparamConvVAE, scale_to_log_var


def test_each_reading_maps_its_own_sigma_to_the_same_log_variance():
    sigma = torch.tensor([0.05, 0.3, 1.0, 2.5])
    raw = {"log_var": 2 * sigma.log(), "sigma": sigma, "softplus": torch.log(torch.expm1(sigma - SIGMA_FLOOR))}
    for scale in SCALES:
        assert torch.allclose(scale_to_log_var(raw[scale], scale), 2 * sigma.log(), atol=1e-3), scale
    s = torch.tensor([-0.7, 0.7])
    assert torch.equal(scale_to_log_var(s, "sigma")[0], scale_to_log_var(s, "sigma")[1])   # the sign is irrelevant
    assert torch.isfinite(scale_to_log_var(torch.zeros(3), "sigma")).all()                  # sigma = 0 is floored
    with pytest.raises(ValueError, match="scale must be one of"):
        scale_to_log_var(s, "exp")


def test_the_default_reading_is_the_plain_net_and_every_reading_trains():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 64, 64)
    plain = ConvBetaVAE(z_dim=4, hidden=32)
    same = ReparamConvVAE(z_dim=4, hidden=32, scale="log_var")
    same.load_state_dict(plain.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(plain.posterior(x), same.posterior(x)))
    assert "scale=softplus" in repr(ReparamConvVAE(z_dim=4, hidden=32, scale="softplus"))   # keys tell them apart
    for scale in SCALES:
        torch.manual_seed(0)
        model = ReparamConvVAE(z_dim=4, hidden=32, scale=scale)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(15):
            loss = BetaVAELoss(1.0)(model, x)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0] and all(map(torch.isfinite, map(torch.tensor, losses))), scale
