"""Tests of the stick-breaking VAE: the Kumaraswamy sampler and KL (SB_VAE/kumaraswamy.py), the
latent, the models and importance weights (SB_VAE/sbvae.py), the KL checks, kNN and training
recipes (SB_VAE/experiment.py) and the configurations (SB_VAE/config.py)."""
import math

import numpy as np
import pytest
import torch

from common.bernoulli import BernoulliDecoder
from common.data import ImageSet
from common.evaluate import importance_sampled_log_likelihood
from common.gaussian import gaussian_kl, gaussian_kl_per_latent
from common.run import Run
from SB_VAE.config import CONFIGS, Training, config_for
from SB_VAE.experiment import (collapsed_dims, errors_text, kl_error_grid, knn_errors, kumaraswamy_kl_monte_carlo,
                               largest_gap, mean_kl_per_dim, train_frey, train_mnist, weakest_k)
from SB_VAE.kumaraswamy import kumaraswamy_kl, kumaraswamy_log_v, kumaraswamy_mean_log_1mv
from SB_VAE.sbvae import KUMARASWAMY_FLOOR, GaussVAE, StickBreakingVAE, negative_bound_loss, stick_breaking_log_weights

GRID = [0.3, 1.0, 3.0, 10.0]
D = torch.float64


def t(x):
    return torch.tensor(x, dtype=D)


@pytest.mark.parametrize("b", [0.3, 0.5, 1.0, 2.5, 10.0])
def test_quadrature_exact_when_a_is_one(b):
    # a = 1: v ~ Beta(1, b), E[log(1 - v)] = psi(b) - psi(b + 1) = -1/b (the b < 1 cases are the singular ones)
    assert float(kumaraswamy_mean_log_1mv(t(1.0), t(b))) == pytest.approx(-1.0 / b, abs=1e-9)


@pytest.mark.parametrize("a", [0.3, 0.7, 2.0, 10.0])
def test_quadrature_exact_when_b_is_one(a):
    # b = 1: v = U^(1/a), E[log(1 - v)] = -(psi(1 + a) + gamma)
    expected = -(float(torch.digamma(t(1.0 + a))) + 0.5772156649015329)
    assert float(kumaraswamy_mean_log_1mv(t(a), t(1.0))) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (1.0, 5.0)])
def test_accurate_kl_matches_monte_carlo_on_grid(alpha, beta):
    for a in GRID:
        for b in GRID:
            mc, se = kumaraswamy_kl_monte_carlo(a, b, alpha, beta, n=100_000, seed=1)
            acc = float(kumaraswamy_kl(t(a), t(b), alpha, beta, terms=None))
            assert abs(acc - mc) < 4 * se + 1e-3, (a, b, acc, mc, se)


def test_series_kl_exact_for_uniform_prior_and_drifts_for_beta_1_5():
    a, b = torch.meshgrid(t(GRID), t(GRID), indexing="ij")
    # Beta(1, 1): the series term is multiplied by beta - 1 = 0, so the paper's formula is exact
    assert torch.allclose(kumaraswamy_kl(a, b, 1.0, 1.0, 10), kumaraswamy_kl(a, b, 1.0, 1.0, None), atol=1e-9)
    mc, se = kumaraswamy_kl_monte_carlo(10.0, 0.3, 1.0, 5.0, n=100_000)
    cut = float(kumaraswamy_kl(t(10.0), t(0.3), 1.0, 5.0, 10))
    assert mc - cut > 5.0 and se < 0.2          # about 12 against 23 nats: the cut undershoots
    err = kl_error_grid(np.array(GRID), np.array(GRID), 1.0, 5.0)
    assert (err <= 1e-9).all()                  # a truncated sum of positive terms can only undershoot
    assert err[0, -1] > -0.05                   # small a, large b: the series converges fast


def test_series_converges_to_accurate_with_many_terms():
    a, b = t([2.0, 0.5]), t([3.0, 2.0])
    assert torch.allclose(kumaraswamy_kl(a, b, 1.0, 5.0, 20000), kumaraswamy_kl(a, b, 1.0, 5.0, None), atol=2e-3)


def test_kumaraswamy_sampler_has_the_right_cdf():
    a, b = t(2.0), t(0.5)
    u = torch.rand(100_000, generator=torch.Generator().manual_seed(0), dtype=D)
    log_v, log_1mv = kumaraswamy_log_v(torch.log(u), a, b)
    v = log_v.exp()
    assert torch.allclose(log_1mv, torch.log1p(-v), atol=1e-6)
    grid = torch.linspace(0.05, 0.95, 19, dtype=D)
    empirical = (v[:, None] <= grid).double().mean(0)
    exact = 1 - (1 - grid ** a) ** b
    assert (empirical - exact).abs().max() < 0.01


def test_log_space_sampler_stays_finite_at_the_floor():
    tiny = t(KUMARASWAMY_FLOOR)
    log_u = torch.log(t([1e-8, 0.01, 0.5, 0.99, 1 - 1e-8]))
    for a, b in [(tiny, tiny), (tiny, t(10.0)), (t(10.0), tiny)]:
        log_v, log_1mv = kumaraswamy_log_v(log_u, a, b)
        assert torch.isfinite(log_v).all() and torch.isfinite(log_1mv).all()
        assert (log_v <= 0).all() and (log_1mv <= 0).all()


def test_kl_and_gradients_finite_at_the_floor():
    a = torch.full((3,), KUMARASWAMY_FLOOR, requires_grad=True)
    b = torch.tensor([KUMARASWAMY_FLOOR, 1.0, 50.0], requires_grad=True)
    for terms in (10, None):
        kl = kumaraswamy_kl(a, b, 1.0, 5.0, terms)
        assert torch.isfinite(kl).all() and (kl > 0).all()
        ga, gb = torch.autograd.grad(kl.sum(), (a, b))
        assert torch.isfinite(ga).all() and torch.isfinite(gb).all()


def test_stick_weights_sum_to_one_and_match_the_product_formula():
    v = torch.rand(4, 6, generator=torch.Generator().manual_seed(0), dtype=D)
    pi = stick_breaking_log_weights(torch.log(v), torch.log1p(-v)).exp()
    assert pi.shape == (4, 7)
    assert torch.allclose(pi.sum(-1), torch.ones(4, dtype=D))
    k = 3
    assert torch.allclose(pi[:, k], v[:, k] * (1 - v[:, :k]).prod(-1))
    assert torch.allclose(pi[:, -1], (1 - v).prod(-1))


def test_importance_weights_are_normalised():
    # a decoder that ignores the latent makes p(x) = p(x | .) exactly; the IS estimate must
    # find it, which holds only if the Kumaraswamy and Beta densities are normalised and
    # q's density matches the sampler. q = Kumaraswamy(1, 3) = Beta(1, 3) keeps p/q bounded.
    torch.manual_seed(0)
    model = StickBreakingVAE(x_dim=6, hidden=4, truncation=3, alpha0=5.0)
    with torch.no_grad():
        model.decoder.hidden.weight.zero_()
    model.posterior = lambda x: (torch.ones(len(x), 2), torch.full((len(x), 2), 3.0))
    x = torch.rand(5, 6)
    exact = model.decoder.log_prob(x, torch.zeros(5, 3))
    est = importance_sampled_log_likelihood(model.log_weights, x, k=4000)
    assert torch.allclose(est, exact, atol=0.02)


@pytest.mark.parametrize("make", [lambda: StickBreakingVAE(x_dim=12, hidden=8, truncation=5),
                                  lambda: StickBreakingVAE(x_dim=12, hidden=8, truncation=5, kl_terms=None),
                                  lambda: GaussVAE(x_dim=12, hidden=8, z_dim=5)])
def test_loss_is_finite_and_trains(make):
    torch.manual_seed(0)
    model, x = make(), torch.rand(16, 12)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        terms = negative_bound_loss(model, x)
        assert all(torch.isfinite(v) for v in terms.values())
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        first = first if first is not None else terms["loss"].item()
    assert terms["loss"].item() < first
    assert model.latents(x).shape == (16, 5) and model.prior_sample(3).shape == (3, 5)
    assert importance_sampled_log_likelihood(model.log_weights, x, k=7).shape == (16,)


def test_sb_latents_are_on_the_simplex():
    model = StickBreakingVAE(x_dim=12, hidden=8, truncation=5)
    for sample in (True, False):
        pi = model.latents(torch.rand(4, 12), sample=sample)
        assert (pi >= 0).all() and torch.allclose(pi.sum(-1), torch.ones(4), atol=1e-5)


def test_knn_errors_perfect_on_separated_clusters_and_chance_on_random_labels():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 5, generator=g) * 20
    y = torch.arange(2000) % 10
    x = centres[y] + torch.randn(2000, 5, generator=g)
    err = knn_errors(x[:1500], y[:1500], x[1500:], y[1500:])
    assert set(err) == {3, 5, 10} and max(err.values()) == 0.0
    y_rand = torch.randint(0, 10, (2000,), generator=g)
    err = knn_errors(x[:1500], y_rand[:1500], x[1500:], y_rand[1500:], ks=(5,))
    assert 80 < err[5] < 97


def test_knn_errors_agree_with_sklearn():
    # two classes and odd k: no tied votes, so the two must agree exactly
    from sklearn.neighbors import KNeighborsClassifier
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(600, 4, generator=g), torch.randint(0, 2, (600,), generator=g)
    ours = knn_errors(x[:400], y[:400], x[400:], y[400:], ks=(3, 5))
    for k in (3, 5):
        pred = KNeighborsClassifier(k).fit(x[:400].numpy(), y[:400].numpy()).predict(x[400:].numpy())
        assert ours[k] == pytest.approx(100 * float(np.mean(pred != y[400:].numpy())))


def test_collapsed_dims_counts_below_threshold():
    assert collapsed_dims(torch.tensor([0.0, 0.005, 0.02, 3.0])) == 2


def test_terms_must_be_positive():
    with pytest.raises(ValueError):
        kumaraswamy_kl(t(1.0), t(1.0), 1.0, 5.0, terms=0)


def test_models_use_the_shared_relu_bernoulli_decoder_and_the_shared_gaussian_kl():
    torch.manual_seed(0)
    x = torch.rand(6, 12)
    for model in (GaussVAE(x_dim=12, hidden=8, z_dim=5), StickBreakingVAE(x_dim=12, hidden=8, truncation=5)):
        assert isinstance(model.decoder, BernoulliDecoder) and model.decoder.activation == "relu"
    gauss = GaussVAE(x_dim=12, hidden=8, z_dim=5)
    mu, logvar = gauss.posterior(x)
    torch.testing.assert_close(gauss.kl_per_dim(x), gaussian_kl_per_latent(mu, logvar))
    torch.testing.assert_close(gauss.kl_per_dim(x).sum(-1), gaussian_kl(mu, logvar))
    torch.testing.assert_close(mean_kl_per_dim(gauss, x, batch_size=4), gaussian_kl_per_latent(mu, logvar).mean(0))


def test_knn_claim_helpers():
    ours, other = {3: 9.0, 5: 8.0, 10: 7.5}, {3: 30.0, 5: 9.0, 10: 20.0}
    assert errors_text(ours, (3, 5, 10)) == "9.00 / 8.00 / 7.50"
    assert weakest_k(other, ours, (3, 5, 10), 10000) == 5          # the smallest margin
    assert largest_gap(ours, (9.34, 8.65, 8.90), (3, 5, 10)) == pytest.approx(1.4)


def test_training_recipes_go_through_a_run_and_reload(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (300, 1, 4, 3), generator=g, dtype=torch.uint8), torch.arange(300) % 3, "toy")
    train, val = data.subset(slice(0, 200)), data.subset(slice(200, 300))
    out = []
    for _ in range(2):
        run = Run("SB_VAE", "smoke", 0, "cpu", progress=False)
        torch.manual_seed(0)
        sb, gauss = StickBreakingVAE(12, 8, 4), GaussVAE(12, 8, 4)
        h_sb = train_mnist(run, "sb", sb, train, val, Training(epochs=3, patience=1), "cpu")
        h_g = train_frey(run, "gauss", gauss, train, val, Training(epochs=2), "cpu")
        assert not sb.training
        out.append((dict(run.status), h_sb.to_dict()["records"], h_g.epochs, sb.decoder.out.weight.detach().clone()))
    assert out[0][0] == {"sb": "trained", "gauss": "trained"} and out[1][0] == {"sb": "loaded", "gauss": "loaded"}
    assert out[0][1] == out[1][1] and out[0][2] == out[1][2] == 2 and torch.equal(out[0][3], out[1][3])
    assert "val/sq_err" in out[0][1]


def test_configs_hold_every_profile_and_reject_an_unknown_one():
    assert set(CONFIGS) == {"smoke", "standard", "long", "paper"}
    for name, cfg in CONFIGS.items():
        assert config_for(name) is cfg
        for t in (cfg.gauss, cfg.sb, cfg.frey) + ((cfg.sb_accurate,) if cfg.sb_accurate else ()):
            assert (t.optimizer, t.lr, t.betas, t.batch_size) == ("adam", 3e-4, (0.95, 0.999), 100)
        assert cfg.frey.patience is None
    assert (config_for("paper").sb.patience, config_for("paper").gauss.patience) == (100, 30)
    with pytest.raises(ValueError, match="smoke, standard, long, paper"):
        config_for("fast")
