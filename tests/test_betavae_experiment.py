"""BetaVAE/experiment.py: the training recipes, CelebA's attributes and the measurements behind the claims."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from BetaVAE.betavae import CELEBA_PIXELS, AutoencoderLoss, BetaVAELoss, ConvBetaVAE, FCBetaVAE
from BetaVAE.config import CELEBA_CONFIGS, BetaSweep, DSPRITES_CONFIGS, celeba_config_for, dsprites_config_for
from BetaVAE.experiment import (BLOW_UP_FACTOR, attribute_auc, auc_standard_error, best_latent, blew_up,
                                celeba_attributes, code_statistics, dsprites_model_name, frechet_distance,
                                gaussian_code_samples, kl_gap, laplacian_energy, pca_frechet_distance,
                                posterior_means, predicted_active_directions, principal_components,
                                sweep_summary, train_beta_sweep, train_celeba_model, train_dsprites_models)
from common.data import ImageSet
from BetaVAE.dsprites import DSprites
from BetaVAE.reparam import ReparamConvVAE
from common.gaussian import gaussian_kl_per_latent
from common.run import Run
from common.train import History, make_optimizer


def _faces(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


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


def test_best_latent_picks_the_active_latent_that_separates_best():
    g = torch.Generator().manual_seed(0)
    attrs = torch.rand(300, 2, generator=g) < 0.5
    top = [7, 2, 5]                                   # latent indices, by KL
    sep = np.array([[0.60, 0.55], [0.95, 0.52], [0.70, 0.90]])
    kl = torch.zeros(8)
    kl[[7, 5]] = 1.0                                  # latent 2 is collapsed (KL 0)
    d, s, se, k = best_latent(sep, top, kl, attrs, 0)
    assert (d, s, k) == (5, 0.70, 2)                  # latent 2 separates better but is inactive
    n_pos = int(attrs[:, 0].sum())
    assert se == pytest.approx(float(auc_standard_error(0.70, n_pos, 300 - n_pos))) and se > 0
    assert best_latent(sep, top, kl, attrs, 0, active_only=False)[0] == 2
    assert best_latent(sep, top, kl, attrs, 1)[0] == 5
    assert best_latent(sep, top, torch.zeros(8), attrs, 1) == (None, 0.5, 0.0, None)


def test_kl_gap_rule():
    assert kl_gap(np.array([3.0, 0.8, 0.01, 0.0]))
    assert not kl_gap(np.array([3.0, 0.3, 0.01, 0.0]))   # a latent in between
    assert not kl_gap(np.array([3.0, 0.01, 0.0]))        # one informative latent only
    assert not kl_gap(np.array([3.0, 2.0, 1.0]))         # no unused latent
    assert isinstance(kl_gap(np.zeros(3)), bool)


def test_code_statistics_and_posterior_means_match_the_model_and_keep_its_mode():
    torch.manual_seed(0)
    model, x = ConvBetaVAE(z_dim=4), _faces(6)
    model.train()
    stats = code_statistics(model, x, batch_size=4)
    assert model.training
    with torch.no_grad():
        mu, logvar = model.posterior(x)
        rec = model.decode(mu)
    torch.testing.assert_close(stats["mu"], mu)
    torch.testing.assert_close(stats["kl"], gaussian_kl_per_latent(mu, logvar))
    torch.testing.assert_close(stats["sse"], (rec - x).pow(2).flatten(1).sum(-1))
    torch.testing.assert_close(stats["sharpness"], laplacian_energy(rec) / laplacian_energy(x))

    class Shapes:   # renders factor rows as uint8 images, as BetaVAE.dsprites.DSprites does
        def observations(self, factors, device="cpu"):
            g = torch.Generator().manual_seed(int(factors.sum()))
            return (torch.rand(len(factors), 1, 64, 64, generator=g) < 0.3).to(torch.uint8) * 255

    fc = FCBetaVAE(z_dim=3, hidden=16)
    factors = np.arange(10).reshape(5, 2)
    means = posterior_means(fc, Shapes(), factors, batch_size=2)
    assert means.shape == (5, 3) and fc.training
    chunks = np.array_split(factors, 3)
    with torch.no_grad():
        ref = torch.cat([fc.encode(Shapes().observations(f).float() / 255) for f in chunks]).numpy()
    np.testing.assert_allclose(means, ref, rtol=1e-5, atol=1e-6)


def test_configs_hold_todays_settings_and_reject_an_unknown_profile():
    assert set(DSPRITES_CONFIGS) == {"smoke", "standard", "long", "paper"}
    assert set(CELEBA_CONFIGS) == {"smoke", "standard", "paper"}
    d = dsprites_config_for("standard")
    assert (d.optimizer, d.lr, d.batch_size, d.epochs, d.chunk_batches, d.betas) == ("adagrad", 1e-2, 64, 5, 500,
                                                                                      (4.0, 1.0))
    assert dsprites_config_for("paper").epochs * dsprites_config_for("paper").chunk_batches == 300_000
    c = celeba_config_for("standard")
    assert (c.optimizer, c.lr, c.batch_size, c.epochs, c.betas, c.decoder_std) == ("adam", 5e-4, 64, 4, (1, 16, 250),
                                                                                   None)
    assert celeba_config_for("paper").lr == 1e-4
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.lr = 1.0
    for pick in (dsprites_config_for, celeba_config_for):
        with pytest.raises(ValueError, match="unknown profile 'fast'; choose one of smoke, standard, "):
            pick("fast")


def test_dsprites_recipe_shares_the_initial_weights_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    cfg = dataclasses.replace(DSPRITES_CONFIGS["smoke"], epochs=1, chunk_batches=2, batch_size=4, hidden=16, z_dim=3)
    data = DSprites(source="render")
    outcomes = []
    for _ in range(2):
        run = Run("BetaVAE", "smoke", 0, "cpu", progress=False)
        models, hists, init = train_dsprites_models(run, data, cfg, [0], "cpu")
        outcomes.append((dict(run.status), {k: m.state_dict() for k, m in models.items()}))
    status, weights = outcomes[0]
    assert set(models) == {(4.0, 0), (1.0, 0)} and set(init) == {0}
    assert status == {dsprites_model_name(4.0, 0): "trained", dsprites_model_name(1.0, 0): "trained"}
    assert set(outcomes[1][0].values()) == {"loaded"}
    assert all(torch.equal(weights[k][p], outcomes[1][1][k][p]) for k in weights for p in weights[k])
    torch.manual_seed(0)
    fresh = FCBetaVAE(3, 16).state_dict()
    assert all(torch.equal(init[0][p], fresh[p]) for p in fresh)            # seed_everything(seed) first
    assert all(not m.training for m in models.values()) and hists[4.0, 0].epochs == 1
    assert not torch.equal(weights[4.0, 0]["encoder.0.weight"], weights[1.0, 0]["encoder.0.weight"])


def test_celeba_recipe_is_seeded_and_names_its_model(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    cfg = dataclasses.replace(CELEBA_CONFIGS["smoke"], epochs=1, batch_size=8, z_dim=4)
    faces = (_faces(16) * 255).to(torch.uint8)
    train = ImageSet(faces, torch.arange(1, 17), "celeba")
    run = Run("BetaVAE", "smoke", 0, "cpu", progress=False)
    a, ha = train_celeba_model(run, "AE", AutoencoderLoss(), None, None, train, cfg, "cpu", seed=0)
    b, hb = train_celeba_model(run, "beta=250", BetaVAELoss(250.0), 250, 1.0, train, cfg, "cpu", seed=0)
    c, _ = train_celeba_model(run, "AE again", AutoencoderLoss(), None, None, train, cfg, "cpu", seed=0)
    assert run.status == {"AE": "trained", "beta=250": "trained", "AE again": "trained"}
    assert not a.training and a.decoder_std is None and b.decoder_std == 1.0 and a.channels_last
    assert ha.epochs == 1 and ha.samples[-1] == 16 and set(ha.records) >= {"train/loss", "train/rec"}
    assert all(torch.equal(a.state_dict()[p], c.state_dict()[p]) for p in a.state_dict())   # same seed, same model
    assert run.models["AE"]["train_seconds"] >= 0
    # the seed project's scale readings: same seed and batches, another net class and key; log_var is the plain net
    keys = {}
    for scale in ("log_var", "sigma", "softplus"):   # the same loss, seed and batches: only the reading differs
        m, _ = train_celeba_model(run, f"beta=1_{scale}", BetaVAELoss(1.0), 1, None, train, cfg, "cpu", seed=0,
                                  scale=scale)
        assert isinstance(m, ReparamConvVAE if scale != "log_var" else ConvBetaVAE)
        assert getattr(m, "scale", "log_var") == scale and run.status[f"beta=1_{scale}"] == "trained"
        keys[scale] = run.models[f"beta=1_{scale}"]["key"]
    assert len(set(keys.values())) == 3             # each reading has a checkpoint of its own
    with pytest.raises(ValueError, match="scale must be one of"):
        train_celeba_model(run, "bad", BetaVAELoss(1.0), 1, None, train, cfg, "cpu", seed=0, scale="exp")


def test_shared_sigma_loss_puts_every_model_under_one_decoder_variance():
    from BetaVAE.experiment import shared_sigma_loss

    sse = torch.tensor([[10.0, 30.0], [20.0, 20.0]])
    kl = torch.tensor([[[1.0, 2.0], [0.5, 0.5]], [[0.0, 0.0], [4.0, 0.0]]])
    stats = {"a": {"sse": sse[0], "kl": kl[0]}, "b": {"sse": sse[1], "kl": kl[1]}}
    loss = shared_sigma_loss(stats, n_values=10)
    sigma2 = (20.0 + 20.0) / (2 * 10)                  # the mean of the two models' MSE per value
    assert torch.allclose(loss["a"], torch.tensor([10 / (2 * sigma2) + 3, 30 / (2 * sigma2) + 1]))
    assert torch.allclose(loss["b"], torch.tensor([20 / (2 * sigma2), 20 / (2 * sigma2) + 4]))
    twins = shared_sigma_loss({"a": stats["a"], "c": stats["a"]}, 10)   # identical models: identical losses
    alone = shared_sigma_loss({"a": stats["a"]}, 10)
    assert torch.equal(twins["a"], twins["c"]) and torch.equal(twins["a"], alone["a"])
    with pytest.raises(ValueError, match="at least one model"):
        shared_sigma_loss({}, 10)


def test_the_beta_sweep_turns_normalised_betas_into_betas_and_shares_each_latent_sizes_init(tmp_path, monkeypatch):
    from BetaVAE.config import BetaSweep
    from BetaVAE.experiment import sweep_model_name, train_beta_sweep

    sweep = BetaSweep(z_dims=(2, 4), beta_norms=(0.001, 0.01), chunks=1)
    assert sweep.beta(0.0098, 10) == pytest.approx(4.01, abs=0.01)   # the paper's beta = 4 at 10 latents
    assert sweep.beta(0.01, 4) == pytest.approx(0.01 * 4096 / 4)
    from BetaVAE.betavae import beta_norm
    assert beta_norm(sweep.beta(0.0024, 5), 5, 4096) == pytest.approx(0.0024)   # the paper's normalisation, inverted
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    cfg = dataclasses.replace(DSPRITES_CONFIGS["smoke"], chunk_batches=2, batch_size=4, hidden=16)
    run = Run("BetaVAE", "smoke", 0, "cpu", progress=False)
    at_start = {}
    real_train = Run.train

    def spy(self, name, model, *args, **kwargs):       # each model's weights as training begins
        at_start[name] = {k: v.clone() for k, v in model.state_dict().items()}
        return real_train(self, name, model, *args, **kwargs)

    monkeypatch.setattr(Run, "train", spy)
    models, hists = train_beta_sweep(run, DSprites(source="render"), cfg, sweep, 0, "cpu")
    assert set(models) == {(z, b) for z in (2, 4) for b in (0.001, 0.01)}
    assert set(run.status) == {sweep_model_name(z, b) for z, b in models} and set(run.status.values()) == {"trained"}
    assert models[2, 0.001].z_dim == 2 and hists[4, 0.01].epochs == 1
    torch.manual_seed(0)
    fresh = FCBetaVAE(4, 16).state_dict()
    for z in (2, 4):    # the betas of one latent size start from the same (seeded) weights, then differ
        a, b = (at_start[sweep_model_name(z, bn)] for bn in (0.001, 0.01))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(at_start[sweep_model_name(4, 0.01)][k], fresh[k]) for k in fresh)
    assert not torch.equal(models[4, 0.001].state_dict()["encoder.0.weight"],
                           models[4, 0.01].state_dict()["encoder.0.weight"])


def test_blew_up_marks_a_chunk_mean_above_the_ceiling_only():
    ceiling = BLOW_UP_FACTOR * 4096 * np.log(2)
    calm, spiked = History(), History()
    for loss in (2840.0, 400.0, 300.0):   # the untrained loss (about 4096 ln 2), then learning
        calm.add("train", {"loss": loss})
    for loss in (9.8e20, 300.0):
        spiked.add("train", {"loss": loss})
    assert not blew_up(calm) and blew_up(spiked)
    edge = History()
    edge.add("train", {"loss": 0.99 * ceiling})
    assert not blew_up(edge)
    assert blew_up(edge, n_pixels=100)   # the ceiling scales with the image size


def test_adagrad_first_step_is_a_sign_step():
    """The premise of ``blew_up``'s explanation: with accumulators starting at 0, Adagrad's first
    update moves every weight by lr in the direction of -sign(gradient), whatever the gradient's size."""
    w = torch.nn.Parameter(torch.zeros(5))
    opt = make_optimizer("adagrad", [w], lr=1e-2)
    w.grad = torch.tensor([1e-4, -3.0, 250.0, -1e6, 0.5])
    opt.step()
    torch.testing.assert_close(w.detach(), -1e-2 * torch.sign(w.grad), rtol=1e-5, atol=1e-8)


def test_sweep_summary_picks_the_best_beta_per_latent_size_and_survives_empty_groups():
    score = {(5, 0.1): 60.0, (5, 1.0): 70.0, (10, 0.1): 80.0, (10, 1.0): 50.0}
    rec = {(5, 0.1): 1.0, (5, 1.0): 2.0, (10, 0.1): 3.0, (10, 1.0): 4.0}
    best, rho = sweep_summary(score, rec, list(score))
    assert best == {5: 1.0, 10: 0.1}
    assert rho == pytest.approx(-0.2)   # ranks (2, 3, 4, 1) against (1, 2, 3, 4): 1 - 6 x 12 / 60
    best, rho = sweep_summary(score, rec, [(10, 0.1), (10, 1.0)])
    assert best == {5: None, 10: 0.1} and np.isnan(rho)   # fewer than three models: no correlation


def test_the_sweep_trains_its_own_chunk_size(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    cfg = dataclasses.replace(DSPRITES_CONFIGS["smoke"], chunk_batches=3, batch_size=4, hidden=16)
    sweep = BetaSweep(z_dims=(3,), beta_norms=(0.001, 0.01), chunks=1, chunk_batches=2)
    run = Run("BetaVAE", "smoke", 0, "cpu", progress=False)
    models, hists = train_beta_sweep(run, DSprites(source="render"), cfg, sweep, 0, "cpu")
    assert set(models) == {(3, 0.001), (3, 0.01)}
    assert all(h.samples == [2 * 4] for h in hists.values())   # 2 batches of 4, not the notebook's 3
    default = dataclasses.replace(sweep, chunk_batches=None, beta_norms=(0.001,))
    _, hists = train_beta_sweep(Run("BetaVAE", "smoke", 0, "cpu", progress=False), DSprites(source="render"),
                                cfg, default, 0, "cpu")
    assert hists[3, 0.001].samples == [3 * 4]
