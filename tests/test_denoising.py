"""Tests for DenoisingAE: masking noise and the tied dA (denoising), stacking, model selection and the
derived data (experiment), and the notebooks' configurations (config)."""
import dataclasses
import math

import pytest
import torch

from common.data import Batches, ImageSet
from common.run import Run
from DenoisingAE.config import (CONFIGS, REGULARIZED_CONFIGS, DenoisingAEConfig, RegularizedAEConfig, config_for,
                                regularized_config_for)
from DenoisingAE.denoising import StackedClassifier, TiedAutoencoder, dae_loss, masking_noise, n_masked
from DenoisingAE.experiment import (Benchmark, StackRun, error_rate, fine_tune, pretrain_stack, random_background,
                                    rotate_digits, run_stack, select_by_validation, stack_on, stack_summary)


def _run(tmp_path, monkeypatch) -> Run:
    """A smoke Run whose checkpoints go to ``tmp_path``: every model trains through ``run.train``."""
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    return Run("DenoisingAE", "smoke", 0, "cpu", progress=False)


@pytest.mark.parametrize("nu", [0.1, 0.25, 0.5, 0.9])
def test_masking_noise_zeroes_exactly_round_nu_d_per_row(nu):
    torch.manual_seed(0)
    x = torch.rand(64, 784) * 0.9 + 0.1  # no zeros before corruption
    x_tilde = masking_noise(x, nu)
    k = n_masked(nu, 784)
    assert k == math.floor(nu * 784 + 0.5)
    assert torch.equal((x_tilde == 0).sum(1), torch.full((64,), k))


def test_masking_noise_leaves_survivors_untouched_and_keeps_shape():
    torch.manual_seed(1)
    x = torch.rand(16, 1, 28, 28) + 0.5
    x_tilde, mask = masking_noise(x, 0.3, return_mask=True)
    assert x_tilde.shape == x.shape and mask.shape == x.shape
    assert torch.equal(x_tilde[~mask], x[~mask])  # no 1/(1-nu) rescaling
    assert bool((x_tilde[mask] == 0).all())
    assert not torch.equal(x_tilde, torch.nn.functional.dropout(x, 0.3))


def test_masking_noise_counts_zeros_added_on_images_with_zeros():
    torch.manual_seed(2)
    x = (torch.rand(32, 100) > 0.5).float()  # half the components already 0
    _, mask = masking_noise(x, 0.2, return_mask=True)
    assert torch.equal(mask.sum(1), torch.full((32,), 20))


def test_masking_noise_draws_a_different_mask_per_row_and_per_call():
    torch.manual_seed(3)
    x = torch.ones(50, 784)
    _, m1 = masking_noise(x, 0.25, return_mask=True)
    _, m2 = masking_noise(x, 0.25, return_mask=True)
    assert len({tuple(r.nonzero().squeeze(1).tolist()) for r in m1}) == 50
    assert not torch.equal(m1, m2)
    # every position is hit about nu of the time over many rows (uniform choice of positions)
    _, big = masking_noise(torch.ones(4000, 40), 0.25, return_mask=True)
    freq = big.float().mean(0)
    assert float((freq - 0.25).abs().max()) < 0.04


def test_masking_noise_edge_cases_and_generator():
    x = torch.rand(4, 10) + 0.1
    assert torch.equal(masking_noise(x, 0.0), x)
    assert bool((masking_noise(x, 1.0) == 0).all())
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(masking_noise(x, 0.5, generator=g1), masking_noise(x, 0.5, generator=g2))
    with pytest.raises(ValueError):
        masking_noise(x, 1.5)


def test_tied_autoencoder_shapes_and_tied_weights():
    m = TiedAutoencoder(784, 50, generator=torch.Generator().manual_seed(0))
    x = torch.rand(8, 1, 28, 28)
    y = m.encode(x)
    assert y.shape == (8, 50) and bool(((y > 0) & (y < 1)).all())
    assert m(x).shape == (8, 784)
    assert sum(p.numel() for p in m.parameters()) == 784 * 50 + 50 + 784
    a = 4 * math.sqrt(6 / (784 + 50))
    assert float(m.W.detach().abs().max()) <= a


def test_dae_loss_targets_the_clean_input_and_training_lowers_it():
    torch.manual_seed(0)
    x = (torch.rand(256, 64) > 0.7).float()
    m = TiedAutoencoder(64, 32, generator=torch.Generator().manual_seed(0))
    loss = dae_loss(0.25)
    m.eval()
    clean = loss(m, x)["rec"]
    ref = torch.nn.functional.binary_cross_entropy(m(x), x, reduction="sum") / len(x)
    assert torch.allclose(clean, ref, rtol=1e-4)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = loss(m, x)["loss"].item()
    for _ in range(200):
        opt.zero_grad()
        loss(m, x)["loss"].backward()
        opt.step()
    assert loss(m, x)["loss"].item() < 0.8 * first


def test_pretrain_stack_feeds_clean_codes_and_classifier_copies_encoders(tmp_path, monkeypatch):
    torch.manual_seed(0)
    x = torch.rand(200, 30)
    run = _run(tmp_path, monkeypatch)
    layers = pretrain_stack(run, "toy", x, [20, 10], nu=0.25, epochs=1, lr=1e-3, batch_size=50, seed=0)
    assert set(run.status) == {"toy_layer1", "toy_layer2"}
    assert [(l.d, l.h) for l in layers] == [(30, 20), (20, 10)]
    net = StackedClassifier(layers, n_classes=4)
    with torch.no_grad():
        h = layers[1].encode(layers[0].encode(x))
        assert torch.allclose(torch.sigmoid(net.hidden[1](torch.sigmoid(net.hidden[0](x)))), h, atol=1e-6)
    assert net(x).shape == (200, 4)


def test_select_by_validation_picks_lowest_error():
    runs = [StackRun(0.1, 3, 2.5, [], None), StackRun(0.25, 5, 2.1, [], None), StackRun(0.4, 4, 2.1, [], None)]
    assert select_by_validation(runs).nu == 0.25


def test_derived_variants():
    x = torch.zeros(6, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 4:24, 13:15] = 255  # a vertical bar
    data = ImageSet(x, torch.arange(6))
    bg = random_background(data, seed=0)
    assert bg.x.dtype == torch.uint8 and bool((bg.x >= data.x).all())
    assert bool((bg.x[:, :, 4:24, 13:15] == 255).all())
    assert float(bg.x[:, :, :4].float().mean()) == pytest.approx(127.5, abs=12)
    assert torch.equal(random_background(data, seed=0).x, bg.x)
    rot = rotate_digits(data, seed=0)
    assert rot.x.shape == x.shape and torch.equal(rot.y, data.y)
    assert not torch.equal(rot.x[0], rot.x[1])  # different angles per image
    # rotation about the centre keeps the ink roughly (bilinear interpolation loses a little)
    ratio = rot.x.float().sum((1, 2, 3)) / x.float().sum((1, 2, 3))
    assert bool(((ratio > 0.8) & (ratio < 1.2)).all())


def _toy_classification(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(300, 16, generator=g)
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).long()
    return x, y


def test_fine_tune_keeps_the_best_validation_epoch_and_stops_early(tmp_path, monkeypatch):
    x, y = _toy_classification()
    run = _run(tmp_path, monkeypatch)
    layers = pretrain_stack(run, "toy", x[:200], [12], nu=0.0, epochs=1, lr=1e-2, batch_size=50, seed=0)
    ft = fine_tune(run, "toy_finetune", layers, Batches(x[:200], y[:200], 50, seed=0), x[200:], y[200:], epochs=40,
                   lr=3e-2, seed=0, patience=3)
    assert ft.val_error == min(ft.val_curve)
    assert ft.val_curve[ft.best_epoch - 1] == ft.val_error
    # early stopping: at most `patience` epochs after the best one, and the model holds the best epoch's weights
    assert len(ft.val_curve) <= ft.best_epoch + 3
    assert ft.cap_binds == (len(ft.val_curve) == 40)
    err = error_rate(ft.model, x[200:], y[200:])
    assert abs(err - ft.val_error) < 1e-4


def test_run_stack_through_a_run_reloads_every_named_model(tmp_path, monkeypatch):
    x, y = _toy_classification()
    outcomes = []
    for _ in range(2):
        run = _run(tmp_path, monkeypatch)
        torch.manual_seed(0)
        r = run_stack(run, "toy", x[:200], Batches(x[:200], y[:200], 50, seed=0),
                      x[200:], y[200:], [12, 8], nu=0.25, pre_epochs=1, pre_lr=1e-2, ft_epochs=3, ft_lr=1e-2,
                      batch_size=50, seed=0, config={"data": "toy"})
        outcomes.append((dict(run.status), r.val_curve, r.best_epoch, error_rate(r.model, x[200:], y[200:])))
    assert set(outcomes[0][0]) == {"toy_layer1", "toy_layer2", "toy_finetune"}
    assert set(outcomes[0][0].values()) == {"trained"} and set(outcomes[1][0].values()) == {"loaded"}
    assert outcomes[0][1:] == outcomes[1][1:]


def test_stack_on_names_its_models_tests_them_and_the_summary_selects_on_validation(tmp_path, monkeypatch):
    run = _run(tmp_path, monkeypatch)
    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (140, 1, 4, 4), generator=g, dtype=torch.uint8), torch.arange(140) % 2)
    splits = (data.subset(slice(0, 80)), data.subset(slice(80, 100)), data.subset(slice(100, 140)))
    bench = Benchmark.on_device("rot", splits, "cpu", draw_seed=0)
    assert bench.key == {"data": "mnist-rot", "split": [80, 20, 40], "draw_seed": 0}
    cfg = dataclasses.replace(CONFIGS["smoke"].stack, sizes=(6,), batch_size=20)
    assert cfg.epochs_for("rot") == (1, 2) and cfg.epochs_for("basic") == (1, 3)
    saa = [stack_on(run, bench, cfg, 0.0, s) for s in (0, 1)]
    sda = [stack_on(run, bench, cfg, 0.25, 0)]
    assert {"stack_rot_nu00_s0_finetune", "stack_rot_nu00_s1_layer1", "stack_rot_nu25_s0_finetune"} <= set(run.status)
    assert all(0 <= r.test_error <= 100 and len(r.val_curve) <= 2 for r in saa + sda)
    out = stack_summary(saa, sda, sda, len(bench.y_test), *cfg.epochs_for("rot"))
    best = select_by_validation(saa)
    assert out["SAA-3"]["seed"] == best.seed and out["SAA-3"]["test_error"] == best.test_error
    lo, hi = out["SdA-3"]["ci95"]
    assert lo <= out["SdA-3"]["test_error"] <= hi
    assert out["seeds"]["SAA-3"] == [r.test_error for r in saa] and (out["pre_epochs"], out["ft_epochs"]) == (1, 2)
    assert set(out["val_by_run"]) == {"SAA seed 0", "SAA seed 1", "SdA nu=0.25"}


def test_configs_hold_every_profile_frozen_and_name_the_choices_on_a_typo():
    assert set(CONFIGS) == set(REGULARIZED_CONFIGS) == {"smoke", "standard", "paper"}
    assert isinstance(config_for("standard"), DenoisingAEConfig)
    assert isinstance(regularized_config_for("paper"), RegularizedAEConfig)
    standard = config_for("standard")
    assert (standard.filters.n_images, standard.filters.epochs, standard.filters.lr) == (20000, 20, 3e-3)
    assert standard.stack.sizes == (500, 500, 500) and standard.stack.nu_grid == (0.1, 0.25, 0.4)
    assert (standard.stack.pre_lr, standard.stack.ft_lr, standard.stack.ft_patience) == (3e-3, 1e-3, 8)
    assert config_for("paper").stack.batch_size == 20 and regularized_config_for("smoke").epochs == 1
    assert all(c.filters.optimizer == c.stack.optimizer == "adam" for c in CONFIGS.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        standard.stack.ft_lr = 1.0
    for pick in (config_for, regularized_config_for):
        with pytest.raises(ValueError, match="smoke, standard, paper"):
            pick("standrad")


def test_make_benchmark_cuts_every_benchmark_at_its_sizes_and_keeps_the_labels():
    from DenoisingAE.config import SYNTHETIC_SPLITS
    from DenoisingAE.experiment import make_benchmark

    cfg = dataclasses.replace(CONFIGS["smoke"].stack, n_train=300, n_val=100, n_test=200)
    g = torch.Generator().manual_seed(0)
    basic = ImageSet(torch.randint(0, 256, (600, 1, 28, 28), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (600,), generator=g), "mnist-basic")
    for name in cfg.variants:
        tr, va, te = make_benchmark(name, basic, cfg, seed=0)
        if name in SYNTHETIC_SPLITS:
            assert (len(tr), len(va), len(te)) == cfg.synthetic_splits(name)
            assert set(torch.cat([tr.y, va.y, te.y]).tolist()) == {0, 1}
            again = make_benchmark(name, basic, cfg, seed=0)[0]
            assert torch.equal(again.x, tr.x)                           # generated from the seed alone
        else:
            assert (len(tr), len(va), len(te)) == (300, 100, 200)
            assert torch.equal(torch.cat([tr.y, va.y, te.y]), basic.y)  # derived image by image
        assert tr.x.dtype == torch.uint8 and tr.x.shape[1:] == (1, 28, 28)
    # Larochelle et al.'s sizes where the profile allows them; the test set as the profile sets it
    standard = CONFIGS["standard"].stack
    assert standard.synthetic_splits("rect") == (1000, 200, standard.synthetic_test)
    assert standard.synthetic_splits("convex")[:2] == (6000, 2000)
    with pytest.raises(ValueError, match="unknown benchmark 'mnist-rect'.*convex"):
        make_benchmark("mnist-rect", basic, cfg, seed=0)
    with pytest.raises(ValueError, match="MNIST-basic has 600 images"):
        make_benchmark("rot", basic, dataclasses.replace(cfg, n_test=100), seed=0)


def test_a_two_class_benchmark_fine_tunes_a_two_way_softmax_under_its_own_key(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (140, 1, 4, 4), generator=g, dtype=torch.uint8), torch.arange(140) % 2)
    splits = (data.subset(slice(0, 80)), data.subset(slice(80, 100)), data.subset(slice(100, 140)))
    bench = Benchmark.on_device("convex", splits, "cpu", draw_seed=0)
    assert bench.n_classes == 2 and bench.key["data"] == "convex"
    run = _run(tmp_path, monkeypatch)
    cfg = dataclasses.replace(CONFIGS["smoke"].stack, sizes=(6,), batch_size=20)
    r = stack_on(run, bench, cfg, 0.25, 0)
    assert r.model.out.out_features == 2 and 0 <= r.test_error <= 100


def test_every_benchmark_but_basic_may_have_a_smaller_selection_budget():
    standard = CONFIGS["standard"].stack
    assert standard.nu_grid_for("basic") == standard.nu_grid
    assert all(standard.nu_grid_for(v) == standard.derived_nu_grid for v in standard.variants if v != "basic")
    smoke = CONFIGS["smoke"].stack
    assert smoke.derived_nu_grid is None and smoke.nu_grid_for("convex") == smoke.nu_grid
