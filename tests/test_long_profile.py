"""The `long` profile (issue 22): where it exists, where its runs go, and that it differs from standard in budget."""
from __future__ import annotations

import dataclasses

import pytest

from common.paths import PROFILES, REPO_ROOT, output_root
from common.reproduce import PROFILE_NOTEBOOKS, find_notebooks


def test_long_is_a_profile_whose_runs_sit_beside_the_standard_ones(monkeypatch):
    monkeypatch.delenv("AE_OUTPUT_DIR", raising=False)
    assert "long" in PROFILES
    assert output_root("VariationalAE", "long") == REPO_ROOT / "VariationalAE" / "long"
    assert output_root("VariationalAE", "standard") == REPO_ROOT / "VariationalAE"


def test_long_runs_only_the_notebooks_that_define_it():
    every = find_notebooks()
    assert len(every) == 7
    long = find_notebooks("long")
    assert [f"{nb.parent.name}/{nb.name}" for nb in long] == list(PROFILE_NOTEBOOKS["long"])
    assert set(long) < set(every)


def test_the_vae_long_profile_trains_each_mnist_model_on_1e7_samples_and_measures_like_standard():
    from VariationalAE.config import config_for

    long, standard = config_for("long"), config_for("standard")
    m = long.mnist
    assert m.chunk * m.chunks * m.batch_size == 10_000_000
    assert (m.optimizer, m.lr) == (standard.mnist.optimizer, standard.mnist.lr)
    # Figs. 4, 5: the 2-D model trains 9e5 samples, standard's budget when long was run (standard has since been cut)
    assert long.mnist_training(20) is m and long.mnist_training(2) is long.manifold
    assert long.manifold.chunk * long.manifold.chunks * long.manifold.batch_size == 900_000
    assert all(standard.mnist_training(nz) is standard.mnist for nz in (2, 3, 200))
    trained = {"mnist", "frey", "punks", "manifold", "wake_sleep_mnist_nz", "wake_sleep_frey_nz", "fig3"}
    differs = {f.name for f in dataclasses.fields(long) if getattr(long, f.name) != getattr(standard, f.name)}
    assert differs <= trained, f"long must differ from standard in training alone, not in {differs - trained}"


@pytest.mark.parametrize("module, function", [("BetaVAE.config", "celeba_config_for"),
                                              ("DenoisingAE.config", "config_for"),
                                              ("DenoisingAE.config", "regularized_config_for")])
def test_a_notebook_without_a_long_setting_says_so_in_its_first_cell(module, function):
    import importlib

    config_for = getattr(importlib.import_module(module), function)
    with pytest.raises(ValueError, match="unknown profile 'long'.*standard"):
        config_for("long")


def test_the_sb_vae_long_profile_trains_longer_with_the_authors_look_aheads_and_measures_like_standard():
    from SB_VAE.config import config_for

    long, standard = config_for("long"), config_for("standard")
    assert [long.training_for(k).patience for k in ("Gauss VAE", "SB-VAE", "SB-VAE, accurate KL")] == [30, 100, 100]
    assert long.training_for("SB-VAE").epochs > long.training_for("SB-VAE, accurate KL").epochs > standard.sb.epochs
    assert all(standard.training_for(k) is standard.sb for k in ("SB-VAE", "SB-VAE, accurate KL"))
    with pytest.raises(ValueError, match="no MNIST model"):
        long.training_for("VAE")
    differs = {f.name for f in dataclasses.fields(long) if getattr(long, f.name) != getattr(standard, f.name)}
    assert differs <= {"gauss", "sb", "sb_accurate", "table2"}, differs


def test_the_dsprites_long_profile_trains_longer_and_records_the_metric_during_training():
    from BetaVAE.config import dsprites_config_for

    long, standard = dsprites_config_for("long"), dsprites_config_for("standard")
    assert long.epochs * long.chunk_batches * long.batch_size >= 15 * standard.epochs * standard.chunk_batches * 64
    assert standard.metric_curve_every is None and long.metric_curve_every and long.metric_curve_every < long.epochs
    differs = {f.name for f in dataclasses.fields(long) if getattr(long, f.name) != getattr(standard, f.name)}
    assert differs == {"epochs", "metric_curve_every", "sweep"}, differs
    assert long.sweep.chunks > standard.sweep.chunks and long.sweep.z_dims == standard.sweep.z_dims


def test_the_ksparse_long_profile_stops_each_autoencoder_at_its_validation_optimum_on_the_papers_split():
    from KsparseAE.config import config_for
    from KsparseAE.experiment import early_stopping, first_epoch_at_target

    long, standard = config_for("long"), config_for("standard")
    assert standard.patience is None and early_stopping(standard, None) == {}
    assert long.patience and long.n_train - long.n_val == 50_000      # sec. 5: 50k train / 10k validation
    assert long.epochs >= 20 * standard.epochs and long.dae_epochs == long.epochs
    with pytest.raises(ValueError, match="validation batches"):
        early_stopping(long, None)
    # a scheduled model is judged from its first epoch at the target k, within the cap
    assert 0 < first_epoch_at_target(25, long.epochs) <= long.epochs // 2 < long.epochs - long.patience
    differs = {f.name for f in dataclasses.fields(long) if getattr(long, f.name) != getattr(standard, f.name)}
    assert differs <= {"epochs", "dae_epochs", "clf_iter", "patience", "finetune_epochs"}, differs


def test_every_notebook_whose_config_defines_long_is_one_that_long_runs():
    from BetaVAE.config import CELEBA_CONFIGS, DSPRITES_CONFIGS
    from DenoisingAE.config import CONFIGS as DAE, REGULARIZED_CONFIGS
    from KsparseAE.config import CONFIGS as KSPARSE
    from SB_VAE.config import CONFIGS as SB
    from VariationalAE.config import CONFIGS as VAE

    tables = {"BetaVAE/BetaVAE_CelebA.ipynb": CELEBA_CONFIGS, "BetaVAE/BetaVAE_dSprites.ipynb": DSPRITES_CONFIGS,
              "DenoisingAE/DenoisingAE.ipynb": DAE, "DenoisingAE/RegularizedAE.ipynb": REGULARIZED_CONFIGS,
              "KsparseAE/KsparseAE.ipynb": KSPARSE, "SB_VAE/SB_VAE.ipynb": SB, "VariationalAE/VariationalAE.ipynb": VAE}
    assert {nb for nb, table in tables.items() if "long" in table} == set(PROFILE_NOTEBOOKS["long"])
