"""Published weights stay loadable: today's notebook code computes the very keys the committed long run published.

A published model is loaded only when the key its notebook computes now matches the manifest's
(``common.weights``). An edit to a paper's math, to how its notebook configures a model, or to the
key itself would silently turn "load in seconds" into "train for hours". This builds the VAE
long run's models exactly as the notebook does and asks ``Run.train`` for them: each must come
back as "published", and nothing may train.
"""
from __future__ import annotations

import pytest

import common.run
from common.data import binarize, load_frey_face, load_mnist, split
from common.paths import REPO_ROOT
from common.weights import MANIFEST, read_manifest

VAE_LONG_WEIGHTS = REPO_ROOT / "VariationalAE" / "long" / "weights"


def published_only(tmp_path, monkeypatch, paper: str, weights) -> None:
    """Checkpoints go to ``tmp_path``, ``paper``'s published ``weights`` are read in place, and any training fails."""
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    (tmp_path / paper).mkdir()
    (tmp_path / paper / "weights").symlink_to(weights)

    def no_training(*args, **kwargs):
        pytest.fail("the key computed now differs from the published one: this model would train")

    monkeypatch.setattr(common.run, "train_named", no_training)


@pytest.mark.skipif(not (VAE_LONG_WEIGHTS / MANIFEST).is_file(), reason="no VariationalAE long weights committed")
def test_the_vae_long_notebook_code_finds_every_published_model(tmp_path, monkeypatch):
    from VariationalAE.config import config_for
    from VariationalAE.experiment import train_vae

    published_only(tmp_path, monkeypatch, "VariationalAE", VAE_LONG_WEIGHTS)
    cfg = config_for("long")
    # the notebook's data cells
    mnist_train = binarize(load_mnist("train"), cfg.binarisation, seed=0).subset(slice(0, cfg.mnist_train))
    mnist_test = binarize(load_mnist("test"), cfg.binarisation, seed=1).subset(slice(0, cfg.mnist_test))
    frey = load_frey_face()
    frey_train, frey_test = split(frey, [len(frey) - cfg.frey_test, cfg.frey_test], seed=0)
    run = common.run.Run("VariationalAE", "long", 0, "cpu", progress=False)
    for name in sorted(read_manifest(VAE_LONG_WEIGHTS)):
        data, nz = name.split("_nz")
        if data == "mnist":
            train_vae(run, name, mnist_train, mnist_test, (1, 28, 28), cfg.mnist_hidden, int(nz), "bernoulli",
                      cfg.mnist_training(int(nz)), "cpu")
        else:
            train_vae(run, name, frey_train, frey_test, (1, 28, 20), cfg.frey_hidden, int(nz), "gaussian",
                      cfg.frey, "cpu")
        assert run.status[name] == "published", name


KSPARSE_LONG_WEIGHTS = REPO_ROOT / "KsparseAE" / "long" / "weights"


@pytest.mark.skipif(not (KSPARSE_LONG_WEIGHTS / MANIFEST).is_file(), reason="no KsparseAE long weights committed")
def test_the_ksparse_long_notebook_code_finds_its_published_autoencoders(tmp_path, monkeypatch):
    import torch

    from KsparseAE.config import config_for
    from KsparseAE.experiment import train_ksparse
    from KsparseAE.ksparse import KSparseAutoencoder

    published_only(tmp_path, monkeypatch, "KsparseAE", KSPARSE_LONG_WEIGHTS)
    cfg = config_for("long")
    # the notebook's data and initialisation cells (the autoencoders' 50k / 10k split)
    train_set = load_mnist("train").subset(slice(0, cfg.n_train))
    n_ae = cfg.n_train - cfg.n_val
    ae_train = train_set.subset(slice(0, n_ae))
    ae_val = train_set.subset(slice(n_ae, cfg.n_train)).batches(cfg.batch_size, "cpu", shuffle=False)
    init = KSparseAutoencoder(784, cfg.hidden, k=max(cfg.ks), init_std=cfg.init_std,
                              generator=torch.Generator().manual_seed(0))
    run = common.run.Run("KsparseAE", "long", 0, "cpu", progress=False)
    published = [k for k in cfg.ks if f"ksparse_k{k}" in read_manifest(KSPARSE_LONG_WEIGHTS)]
    assert published, "the Table 1 k-sparse models are the ones published"
    for k in published:
        train_ksparse(run, init, k, True, ae_train.batches(cfg.batch_size, "cpu", seed=0), cfg, ae_val)
        assert run.status[f"ksparse_k{k}"] == "published", k


SB_LONG_WEIGHTS = REPO_ROOT / "SB_VAE" / "long" / "weights"


@pytest.mark.skipif(not (SB_LONG_WEIGHTS / MANIFEST).is_file(), reason="no SB_VAE long weights committed")
def test_the_sb_vae_long_notebook_code_finds_its_published_mnist_models(tmp_path, monkeypatch):
    from common.data import concat
    from SB_VAE.config import config_for
    from SB_VAE.experiment import train_mnist
    from SB_VAE.sbvae import GaussVAE, StickBreakingVAE

    published_only(tmp_path, monkeypatch, "SB_VAE", SB_LONG_WEIGHTS)
    cfg = config_for("long")
    # the notebook's data and model cells
    mnist_all = concat(load_mnist("train"), load_mnist("test"), name="mnist-70k")
    train_full, val_full, _ = split(mnist_all, [45000, 5000, 10000], seed=0)
    train_set, val_set = train_full.subset(slice(0, cfg.n_train)), val_full.subset(slice(0, cfg.n_val))
    models = {"gauss": ("Gauss VAE", GaussVAE(784, cfg.hidden, cfg.K)),
              "sb": ("SB-VAE", StickBreakingVAE(784, cfg.hidden, cfg.K, cfg.alpha0, kl_terms=cfg.kl_terms)),
              "sb_accurate_kl": ("SB-VAE, accurate KL",
                                 StickBreakingVAE(784, cfg.hidden, cfg.K, cfg.alpha0, kl_terms=None))}
    run = common.run.Run("SB_VAE", "long", 0, "cpu", progress=False)
    published = [name for name in models if name in read_manifest(SB_LONG_WEIGHTS)]
    assert "sb" in published, "the paper's SB-VAE is the model published first"
    for name in published:
        label, model = models[name]
        train_mnist(run, name, model, train_set, val_set, cfg.training_for(label), "cpu")
        assert run.status[name] == "published", name
