"""Tests of VariationalAE: the densities and the bound (vae.py), the importance-sampled log p(x),
the training recipe and figure checks (experiment.py) and the configurations (config.py)."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from common.data import Chunks, ImageSet
from common.evaluate import importance_sampled_log_likelihood
from common.gaussian import log_normal
from common.run import Run
from common.train import make_optimizer
from VariationalAE.config import CONFIGS, Training, VAEConfig, config_for
from VariationalAE.experiment import (adjacent_tile_ratio, importance_bound, manifold_variation,
                                      sample_statistics, train_vae)
from VariationalAE.vae import (GAUSSIAN_LOGVAR_MIN, VAE, BernoulliDecoder, GaussianDecoder, elbo_loss,
                               elbo_terms, init_normal_, log_importance_weights, vae_log_weights)


def test_bernoulli_decoder_is_a_bernoulli_likelihood():
    torch.manual_seed(0)
    dec = BernoulliDecoder(3, 8, 10)
    z = torch.randn(5, 3)
    x = (torch.rand(5, 10) < 0.5).float()
    ref = Bernoulli(logits=dec.logits(z)).log_prob(x).sum(-1)
    torch.testing.assert_close(dec.log_prob(x, z), ref)
    # Extra leading sample dimension broadcasts against x.
    assert dec.log_prob(x, z.expand(4, 5, 3)).shape == (4, 5)


def test_gaussian_decoder_is_a_gaussian_likelihood():
    torch.manual_seed(0)
    dec = GaussianDecoder(3, 8, 10)
    z = torch.randn(5, 3) * 3
    x = torch.rand(5, 10)
    mean, logvar = dec.params(z)
    ref = Normal(mean, (0.5 * logvar).exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(dec.log_prob(x, z), ref)
    assert torch.all((mean > 0) & (mean < 1))
    # The soft floor: however negative the raw output, log sigma^2 stays above the floor.
    with torch.no_grad():
        dec.logvar.bias.fill_(-1e4)
    assert torch.all(dec.params(z)[1] >= GAUSSIAN_LOGVAR_MIN)
    assert torch.isfinite(dec.log_prob(x, z)).all()


def test_elbo_loss_terms_add_up():
    torch.manual_seed(0)
    model = VAE((1, 4, 4), 16, 3, "bernoulli")
    x = (torch.rand(8, 1, 4, 4) < 0.3).float()
    out = elbo_loss(model, x)
    assert set(out) == {"loss", "rec", "kl"}
    torch.testing.assert_close(out["loss"], out["rec"] + out["kl"])
    assert out["kl"] >= 0 and out["rec"] > 0


def test_log_weights_average_to_the_analytic_bound():
    """E_q[log w] (eq. 3, sampled KL) equals eq. 10's bound (analytic KL) in expectation."""
    torch.manual_seed(0)
    model = VAE((1, 4, 4), 16, 3, "gaussian")
    x = torch.rand(6, 1, 4, 4)
    with torch.no_grad():
        sampled = vae_log_weights(model)(x, 20000).mean(0)
        analytic = elbo_terms(model, x, n_samples=20000)["elbo"]
    torch.testing.assert_close(sampled, analytic, atol=0.1, rtol=0)


def _linear_gaussian(seed: int = 0):
    """p(z) = N(0, I2), p(x|z) = N(W z + b, s2 I3) with orthogonal columns of W, so the exact
    posterior is diagonal: Sigma = (I + W^T W / s2)^-1, mu = Sigma W^T (x - b) / s2; and
    p(x) = N(b, W W^T + s2 I) in closed form."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(3, 2, generator=g, dtype=torch.float64))
    w = q * torch.tensor([1.5, 0.7], dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    s2 = 0.3
    post_var = 1.0 / (1.0 + (w * w).sum(0) / s2)                      # diagonal of Sigma

    def posterior(x, shift=0.0, var_scale=1.0):
        mu = ((x - b) @ w) * post_var / s2
        return mu + shift, torch.log(post_var * var_scale).expand_as(mu)

    def log_likelihood(x, z):
        return log_normal(x, z @ w.T + b, torch.full_like(x, math.log(s2)))

    def log_px(x):
        cov = w @ w.T + s2 * torch.eye(3, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(b, cov).log_prob(x)

    x = torch.randn(8, 3, generator=g, dtype=torch.float64) * 1.5 + b
    return x, posterior, log_likelihood, log_px


def test_importance_sampling_is_exact_with_the_true_posterior():
    torch.manual_seed(0)
    x, posterior, log_likelihood, log_px = _linear_gaussian()
    lw = lambda xb, k: log_importance_weights(xb, k, posterior, log_likelihood)  # noqa: E731
    est = importance_sampled_log_likelihood(lw, x, 5).double()
    torch.testing.assert_close(est, log_px(x), atol=1e-4, rtol=0)


def test_importance_sampling_agrees_with_closed_form_within_mc_error_and_beats_the_bound():
    torch.manual_seed(1)
    x, posterior, log_likelihood, log_px = _linear_gaussian()
    wrong_q = lambda xb: posterior(xb, shift=0.4, var_scale=1.8)  # noqa: E731
    k = 20000
    lw_fn = lambda xb, kk: log_importance_weights(xb, kk, wrong_q, log_likelihood)  # noqa: E731
    est = importance_sampled_log_likelihood(lw_fn, x, k).double()
    truth = log_px(x)
    # Monte Carlo standard error of log(mean w), by the delta method, from a fresh batch of weights.
    lw = lw_fn(x, k)
    w = torch.exp(lw - lw.max(0).values)
    se = w.std(0) / (w.mean(0) * math.sqrt(k))
    assert torch.all((est - truth).abs() < 4 * se + 1e-3), (est - truth, se)
    bound = lw.mean(0)
    assert torch.all(est > bound + 0.05), (est, bound)          # log p(x) >= L, strictly for a wrong q
    assert torch.all(bound < truth)
    # And the estimate tightens with K: K = 1 is the (noisy) bound, far below K = 20000 on average.
    est1 = importance_sampled_log_likelihood(lw_fn, x, 1).double()
    assert (est - est1).mean() > 0.05


def test_importance_sampled_log_likelihood_of_a_vae_lies_above_its_bound():
    torch.manual_seed(0)
    model = init_normal_(VAE((1, 4, 4), 16, 2, "bernoulli"), 0.3)
    x = (torch.rand(50, 1, 4, 4) < 0.4).float()
    ll = importance_sampled_log_likelihood(vae_log_weights(model), x, 500, batch_size=25, chunk=100)
    bound = importance_bound(model, x, k=500)
    assert ll.shape == (50,) and torch.isfinite(ll).all()
    assert ll.mean() > bound.mean()


def test_init_normal_sets_every_parameter():
    torch.manual_seed(0)
    model = init_normal_(VAE((1, 28, 28), 500, 20), 0.1)
    flat = torch.cat([p.flatten() for p in model.parameters()])
    assert abs(flat.std().item() - 0.1) < 0.002 and abs(flat.mean().item()) < 0.002


def test_chunks_feed_fit_a_fixed_number_of_minibatches_and_cycle_through_the_data():
    x = torch.arange(30, dtype=torch.uint8).reshape(30, 1, 1, 1)
    batches = ImageSet(x).batches(4, seed=0)
    chunks = Chunks(batches, 5)
    assert chunks.n == 20 and len(chunks) == 5
    seen = torch.cat([xb.flatten() for xb, _ in chunks] + [xb.flatten() for xb, _ in chunks])
    assert len(seen) == 40
    # The first pass of the data is one randperm with the short last batch dropped: 7 batches, 28 distinct.
    assert len(torch.unique(seen[:28])) == 28
    with pytest.raises(ValueError):
        Chunks(ImageSet(x[:3]).batches(4), 2)


def test_training_raises_the_bound_and_history_counts_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(4, 64, generator=g) < 0.5)
    idx = torch.randint(0, 4, (400,), generator=g)
    flips = torch.rand(400, 64, generator=g) < 0.05
    data = ImageSet(((protos[idx] ^ flips).to(torch.uint8) * 255).reshape(400, 1, 8, 8))
    model = init_normal_(VAE((1, 8, 8), 32, 2, "bernoulli"), 0.1)
    opt = make_optimizer("adam", model.parameters(), 3e-3)
    run = Run("VariationalAE", "smoke", 0, "cpu", progress=False)
    hist = run.train("toy", model, elbo_loss, Chunks(data.batches(50, seed=0), 8), 6, optimizer=opt, config={})
    assert hist.samples == [400 * i for i in range(1, 7)]
    assert hist["train/loss"][-1] < hist["train/loss"][0] - 10


def test_adjacent_tile_ratio_separates_smooth_from_shuffled_grids():
    n = 8
    u = torch.linspace(0, 1, n)
    tiles = torch.stack([torch.full((4, 4), float(a + b) / 2) for a in u for b in u])
    smooth = adjacent_tile_ratio(tiles, n)
    shuffled = adjacent_tile_ratio(tiles[torch.randperm(n * n, generator=torch.Generator().manual_seed(0))], n)
    assert smooth < 0.1 < 0.5 < shuffled


def test_sample_statistics():
    g = torch.Generator().manual_seed(0)
    data = torch.rand(200, 1, 5, 5, generator=g)
    corr, spread = sample_statistics(data, data)
    assert corr == pytest.approx(1.0) and spread == pytest.approx(1.0)
    _, collapsed = sample_statistics(data[:1].repeat(50, 1, 1, 1), data)
    assert collapsed == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("likelihood, lr", [("gaussian", 0.01), ("bernoulli", 0.02)])
def test_paper_profile_adagrad_trains_on_the_real_data(likelihood, lr, tmp_path, monkeypatch):
    """The paper profile's settings (Adagrad, step 0.01 / 0.02, N(0, 0.01) init, weight decay 1/N) make progress."""
    from common.data import binarize, load_frey_face, load_mnist

    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    if likelihood == "gaussian":
        data, shape, hidden = load_frey_face(), (1, 28, 20), 200
    else:
        data, shape, hidden = binarize(load_mnist("test"), "stochastic", 1).subset(slice(0, 2000)), (1, 28, 28), 500
    train, test = data.subset(slice(0, len(data) - 200)), data.subset(slice(len(data) - 200, len(data)))
    run = Run("VariationalAE", "smoke", 0, "cpu", progress=False)
    training = Training("adagrad", lr, chunk=10, chunks=10, batch_size=100, init_std=0.1)
    _, hist = train_vae(run, f"paper_{likelihood}", train, test, shape, hidden, 5, likelihood, training, "cpu")
    bound = [-v for v in hist["val/loss"]]
    assert all(math.isfinite(v) for v in bound)
    assert bound[-1] > bound[0] + 20, bound


def test_manifold_variation_fails_a_collapsed_decoder():
    g = torch.Generator().manual_seed(0)
    data = torch.rand(100, 1, 4, 4, generator=g)
    assert manifold_variation(data, data) == pytest.approx(1.0)
    collapsed = data[:1].repeat(64, 1, 1, 1)            # a constant decoder: perfectly "smooth" ...
    assert adjacent_tile_ratio(collapsed, 8) < 1e-6
    assert manifold_variation(collapsed, data) == pytest.approx(0.0, abs=1e-9)   # ... but it does not vary


def test_train_vae_through_a_run_reloads_the_finished_model_and_its_training_time(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    data = ImageSet((torch.rand(260, 1, 4, 4, generator=g) > 0.5).to(torch.uint8) * 255, None, "toy")
    train, test = data.subset(slice(0, 200)), data.subset(slice(200, 260))
    out = []
    for _ in range(2):
        run = Run("VariationalAE", "smoke", 0, "cpu", progress=False)
        training = Training("adam", 1e-2, chunk=3, chunks=5, batch_size=50, init_std=0.1)
        model, hist = train_vae(run, "toy_vae", train, test, (1, 4, 4), 8, 2, "bernoulli", training, "cpu")
        out.append((run.status["toy_vae"], hist.to_dict(), hist.seconds, model.decoder.out.weight.detach().clone()))
    assert [o[0] for o in out] == ["trained", "loaded"]
    assert out[0][1] == out[1][1] and out[0][2] == out[1][2] > 0      # same history, training time kept
    assert torch.equal(out[0][3], out[1][3])
    assert len(out[0][1]["samples"]) == 5                              # one record per chunk
    assert run.models["toy_vae"]["train_seconds"] == round(out[0][2], 1)


def test_vae_uses_the_shared_tanh_bernoulli_decoder():
    model = VAE((1, 4, 4), 8, 2, "bernoulli")
    assert isinstance(model.decoder, BernoulliDecoder) and model.decoder.activation == "tanh"
    assert [n for n, _ in model.decoder.named_parameters()] == ["hidden.weight", "hidden.bias", "out.weight",
                                                                "out.bias"]


def test_configs_hold_every_profile_and_reject_an_unknown_one():
    assert set(CONFIGS) == {"smoke", "standard", "long", "paper"}
    for name, cfg in CONFIGS.items():
        assert config_for(name) is cfg
        for t in (cfg.mnist, cfg.frey, cfg.punks):
            assert t.batch_size == 100 and t.init_std == 0.1 and t.lr > 0 and t.chunks > 0
        assert cfg.punks.chunk * cfg.punks.batch_size == cfg.punks_train   # one chunk is one epoch
    assert config_for("paper").mnist.optimizer == "adagrad" and config_for("standard").mnist.optimizer == "adam"
    with pytest.raises(ValueError, match="smoke, standard, long, paper"):
        config_for("fast")
    with pytest.raises(ValueError, match="one epoch"):
        VAEConfig(mnist=CONFIGS["smoke"].mnist, frey=CONFIGS["smoke"].frey, punks=Training("adam", 1e-3, 5, 3),
                  mnist_train=1, mnist_test=1, punks_train=600, is_n=1, is_ks=(1,), bound_repeats=1, manifold_n=2)
