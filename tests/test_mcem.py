"""MCEM's pieces (VariationalAE/mcem.py): HMC leaves its target invariant, its chains find a known posterior,
the step size tuning moves towards the target acceptance, and an MCEM model trains through fit."""
from __future__ import annotations

import math

import pytest
import torch

from common.data import Batches
from common.train import fit
from VariationalAE.mcem import (MCEM, RepeatedBatches, hmc_step, mcem_loss, posterior_log_density,
                                tune_step_size)
from test_wake_sleep import KnownModel


def test_hmc_leaves_a_gaussian_target_invariant():
    g = torch.Generator().manual_seed(0)
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.5, 2.0, 1.0])
    log_density = lambda z: -0.5 * (((z - mean) / std) ** 2).sum(-1)      # noqa: E731
    z = mean + std * torch.randn(4000, 3, generator=g)                     # start in the target
    for _ in range(20):
        z, acceptance = hmc_step(log_density, z, 0.4, n_leapfrog=5, generator=g)
    se = std / math.sqrt(len(z))
    assert ((z.mean(0) - mean).abs() < 4 * se).all()
    assert ((z.std(0) / std - 1).abs() < 0.05).all()
    assert 0.3 < acceptance.mean() < 1.0


def test_hmc_from_a_bad_start_reaches_the_target_and_a_huge_step_is_rejected_not_accepted():
    g = torch.Generator().manual_seed(1)
    log_density = lambda z: -0.5 * z.pow(2).sum(-1)                        # noqa: E731
    z = torch.full((2000, 2), 6.0)
    for _ in range(60):     # a trajectory of 10 x 0.15 = 1.5, not near pi (which maps z to -z on this target)
        z, _ = hmc_step(log_density, z, 0.15, generator=g)
    assert (z.mean(0).abs() < 0.15).all() and ((z.std(0) - 1).abs() < 0.1).all()
    start = torch.zeros(100, 2)
    moved, acceptance = hmc_step(log_density, start, 1e6, generator=g)
    assert torch.equal(moved, start) and acceptance.max() < 1e-6


def test_the_e_step_chains_sample_a_known_posterior():
    torch.manual_seed(0)
    model = KnownModel()
    x = model.decoder.params(torch.randn(1, 2))[0].expand(3000, -1)      # one data point, 3,000 chains
    mean, var = model.posterior(x[:1])
    z = torch.randn(3000, 2)
    step = torch.full((3000, 1), 0.1)
    for _ in range(40):
        z, acceptance = hmc_step(posterior_log_density(model.decoder, x), z, step)
        step = tune_step_size(step, acceptance)
    assert ((z.mean(0) - mean[0]).abs() < 4 * var.sqrt() / math.sqrt(3000)).all()
    assert ((z.var(0) / var - 1).abs() < 0.1).all()
    assert abs(acceptance.mean() - 0.9) < 0.1                             # the tuning reached its target


def test_an_mcem_model_trains_through_fit_with_one_e_step_per_batch_and_its_chains_move():
    torch.manual_seed(0)
    from VariationalAE.vae import VAE
    from VariationalAE import mcem

    data = torch.bernoulli(torch.full((200, 1, 4, 4), 0.3)).to(torch.uint8) * 255
    decoder = VAE((1, 4, 4), 8, 2, "bernoulli").decoder
    model = MCEM(decoder, len(data), 2)
    start = model.z.clone()
    batches = RepeatedBatches(Batches(data, None, 50, seed=0))
    assert batches.n == 1000 and len(batches) == 20
    transitions = []
    real_step = mcem.hmc_step
    mcem.hmc_step = lambda *a, **k: transitions.append(1) or real_step(*a, **k)
    try:
        opt = torch.optim.Adam(model.decoder.parameters(), lr=1e-2)
        h = fit(model, mcem_loss, batches, opt, 3, progress=False)
    finally:
        mcem.hmc_step = real_step
    assert len(transitions) == 3 * 4                    # one E step per batch: 4 batches an epoch, 3 epochs
    assert h["train/loss"][-1] < h["train/loss"][0] and not torch.equal(model.z, start)
    assert 0.0 < h["train/acceptance"][-1] <= 1.0
    model.eval()
    with pytest.raises(ValueError, match="trains only"):
        mcem_loss(model, torch.zeros(2, 16), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="wraps common.data.Batches"):
        RepeatedBatches([1, 2])
