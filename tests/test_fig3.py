"""Fig. 3's estimator and training (VariationalAE/fig3.py): the decoder-only log p(x) against a closed form,
the likelihood curve's schedule, and an MCEM model trained through run.train on Chunks."""
from __future__ import annotations

import math

import pytest
import torch

from common.gaussian import log_normal
from common.train import History
from test_wake_sleep import KnownModel
from VariationalAE.fig3 import LikelihoodCurve, decoder_log_weights, marginal_log_likelihood, posterior_fit


def _exact_log_px(model: KnownModel, x: torch.Tensor) -> torch.Tensor:
    """log N(x; b, W W' + s^2 I): the linear-Gaussian model's marginal in closed form."""
    w, b, s2 = model.decoder.w, model.decoder.b, math.exp(model.decoder.log_s2)
    cov = w @ w.T + s2 * torch.eye(len(b))
    return torch.distributions.MultivariateNormal(b, cov).log_prob(x)


def test_the_hmc_fit_finds_a_known_posterior():
    torch.manual_seed(0)
    model = KnownModel()
    x = model.decoder.params(torch.randn(200, 2))[0]
    mean, sd = posterior_fit(model.decoder, x, 2, burn_in=30, samples=200)
    true_mean, true_var = model.posterior(x)
    # a finite, autocorrelated chain per point: judged over the 200 points, not at the worst one
    assert ((mean - true_mean).abs() / true_var.sqrt()).mean() < 0.3
    assert ((sd / true_var.sqrt()).mean(0) - 1).abs().max() < 0.2


def test_the_decoder_only_estimate_matches_the_closed_form_marginal():
    torch.manual_seed(1)
    model = KnownModel()
    x = model.decoder.params(torch.randn(100, 2))[0] + 0.5 * torch.randn(100, 6)
    error = marginal_log_likelihood(model.decoder, x, 2, k=500, seed=0) - _exact_log_px(model, x)
    # per point the estimate is noisy (a diagonal fit of a correlated posterior); what Fig. 3 reads is the mean
    assert abs(error.mean()) < 0.1 and error.abs().median() < 0.2


def test_the_prior_share_bounds_the_weights_and_is_checked():
    model = KnownModel()
    x = torch.randn(10, 6)
    lw = decoder_log_weights(model.decoder, 2, prior_share=0.2, burn_in=5, samples=5)(x, 50)
    z_free_bound = -0.5 * 6 * math.log(2 * math.pi * 0.25) - math.log(0.2)    # max_z log p(x|z) - log w
    assert lw.shape == (50, 10) and (lw <= z_free_bound + 1e-4).all()
    with pytest.raises(ValueError, match="prior_share"):
        decoder_log_weights(model.decoder, 2, prior_share=0.0)


def test_the_curve_measures_on_its_schedule_and_leaves_the_training_stream_alone():
    model = KnownModel()
    x = torch.randn(20, 6)
    curve = LikelihoodCurve(x, x, 2, every=2, epochs=3, k=10, burn_in=3, samples=3)
    h = History()
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    for epoch in range(3):
        h.add("train", {"loss": 0.0})
        h.samples.append(epoch + 1)
        curve(model, h)
    assert torch.rand(1) == expected_next                      # measuring drew from a forked generator
    measured = [v == v for v in h["ml/test"]]
    assert measured == [False, True, True]                      # every 2 epochs, and the last
    assert h["ml/train"][1] == h["ml/test"][1]                  # the same points, the same draws


def test_an_mcem_model_trains_through_run_train_on_chunks(tmp_path, monkeypatch):
    from common.data import ImageSet
    from common.run import Run
    from VariationalAE.config import Training
    from VariationalAE.fig3 import train_mcem

    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    data = ImageSet((torch.rand(300, 1, 28, 28, generator=g) < 0.2).to(torch.uint8) * 255, None, "toy")
    run = Run("VariationalAE", "smoke", 0, "cpu", progress=False)
    model, h = train_mcem(run, "mcem_toy", data, 16, 3, Training("adam", 1e-2, chunk=10, chunks=3), "cpu")
    assert h.samples == [1000, 2000, 3000]                      # chunk 10 x batch 100 per epoch, as AEVB's
    assert h["train/loss"][-1] < h["train/loss"][0]
    assert 0 < h["train/acceptance"][-1] <= 1
    again = Run("VariationalAE", "smoke", 0, "cpu", progress=False)
    train_mcem(again, "mcem_toy", data, 16, 3, Training("adam", 1e-2, chunk=10, chunks=3), "cpu")
    assert again.status["mcem_toy"] == "loaded"
