"""The SB_VAE notebook's settings, one frozen configuration per profile.

The networks and the optimiser are the paper's in every profile (the authors' code: Adam,
step 3e-4, beta1 = 0.95, batches of 100); the profiles differ in data size, the epoch cap,
the early-stopping patience and the size of the evaluations. ``finish(config=cfg)`` stores
the chosen one in ``results.json``.
"""
from __future__ import annotations

from dataclasses import dataclass

from common.run import Reference


@dataclass(frozen=True)
class Training:
    """How one model is trained: at most ``epochs`` epochs, early stopping after ``patience``.

    ``patience=None`` runs every epoch (on MNIST the best validation epoch's weights are still kept).
    ``compile`` trains through ``fit(compile=True)`` (:mod:`common.compiled`): the same draws and math up to
    float rounding, in fewer kernels; the gain per model is in benchmarks/README.md. It costs seconds of
    compiling, which only a long run pays back.
    """

    epochs: int
    patience: int | None = None
    optimizer: str = "adam"
    lr: float = 3e-4
    betas: tuple[float, float] = (0.95, 0.999)
    batch_size: int = 100
    compile: bool = False


@dataclass(frozen=True)
class Table2Config:
    """Table 2 (Sec. 7.2): the SB-DGM and the Gauss-DGM (M2) with ``fractions`` of the training labels.

    Each model trains at most ``epochs`` passes over the unlabelled digits (early stopping on the
    validation error after ``patience``; None: every epoch runs); alpha = ``alpha_factor`` x N.
    """

    fractions: tuple[float, ...]
    epochs: int
    patience: int | None = None
    alpha_factor: float = 0.1


@dataclass(frozen=True)
class SBVAEConfig:
    """Everything the notebook trains and measures, for one profile."""

    n_train: int
    n_val: int
    n_test: int
    gauss: Training             # the MNIST Gauss VAE
    sb: Training                # both MNIST SB-VAEs (the paper's 10-term KL, and the accurate KL)
    frey: Training              # both Frey Face models: a fixed number of epochs, no early stopping
    is_n: int                   # test digits for the importance-sampled -log p(x) (Table 1)
    knn_test: int               # test digits classified by kNN (Fig. 3f)
    tsne_n: int                 # test digits in the t-SNE (Fig. 3d, e)
    mc_n: int                   # Monte Carlo draws per point of the KL check
    grid_n: int                 # the 10-term KL's error map is grid_n x grid_n
    hidden: int = 500
    K: int = 50                 # truncation; also the Gauss VAE's number of latents
    alpha0: float = 5.0         # the prior Beta(1, alpha0)
    kl_terms: int = 10          # the paper's series, cut after M = 10 terms
    S: int = 100                # importance samples (Table 1)
    frey_hidden: int = 200
    frey_K: int = 25
    frey_alpha0: float = 1.0
    frey_test: int = 200
    ks: tuple[int, ...] = (3, 5, 10)
    collapse_nats: float = 0.01  # a latent dimension with less mean KL counts as collapsed (Fig. 2)
    sb_accurate: Training | None = None   # the accurate-KL SB-VAE, when not trained like ``sb``
    #: Table 2: in standard (and long) the most and the fewest labels, a few epochs each (each step scores all
    #: 10 classes of every unlabelled digit, 10x a VAE's work); all three fractions and long training in paper.
    table2: Table2Config = Table2Config(fractions=(0.1, 0.01), epochs=3)

    def training_for(self, model: str) -> Training:
        """How the MNIST model called ``model`` trains: "Gauss VAE", "SB-VAE" or "SB-VAE, accurate KL"."""
        if model == "Gauss VAE":
            return self.gauss
        if model == "SB-VAE, accurate KL" and self.sb_accurate is not None:
            return self.sb_accurate
        if model in ("SB-VAE", "SB-VAE, accurate KL"):
            return self.sb
        raise ValueError(f"no MNIST model called {model!r}")


CONFIGS: dict[str, SBVAEConfig] = {
    "smoke": SBVAEConfig(
        n_train=2000, n_val=500, n_test=1000, gauss=Training(epochs=2), sb=Training(epochs=2),
        frey=Training(epochs=2), is_n=200, knn_test=1000, tsne_n=200, mc_n=20000, grid_n=12,
        table2=Table2Config(fractions=(0.1,), epochs=1)),
    # Trimmed for the standard suite's hour (issue 17): 14 epochs a model (was 18) and Table 2's DGMs 2 epochs
    # (was 3); the last standard run took 11.8 min on a 2-core Zen 4 EPYC (5.5 in the three MNIST models, 5.1 in
    # Table 2). Estimated about 9 min. `long` settles what these budgets cannot.
    "standard": SBVAEConfig(
        n_train=45000, n_val=5000, n_test=10000, gauss=Training(epochs=14, patience=5),
        sb=Training(epochs=14, patience=5), frey=Training(epochs=50), is_n=10000, knn_test=10000,
        tsne_n=1000, mc_n=200000, grid_n=30, table2=Table2Config(fractions=(0.1, 0.01), epochs=2)),
    # Standard's models and evaluations trained longer, within 150 minutes on a 2-core CPU, with the authors'
    # look-aheads (100 SB, 30 Gauss). Sized from the committed standard run of 2026-12-05 on a 2-core Zen 4
    # EPYC: an epoch of 45,000 digits with its validation took 2.1 s (Gauss VAE), 4.4 s (SB-VAE) and 5.2 s
    # (accurate KL). The paper's own model gets the 1,000 epochs its claims need (about 75 min), the Gauss VAE
    # 300 (11 min), our accurate-KL twin (an addition) 300 (26 min, cut from 600 so that the run and its
    # hand-in fit one session); with evaluation and Table 2 about 2 hours. Each stops earlier at its look-ahead.
    # Any other work on the two cores slows training 1.5-2x (the Gauss VAE's epoch took 3.2-4.1 s beside tests).
    # `compile` was added after the committed long run, which trained eagerly. It changes speed, and results only by
    # float rounding, so it is not part of the checkpoint key: the published weights still load.
    "long": SBVAEConfig(
        n_train=45000, n_val=5000, n_test=10000, gauss=Training(epochs=300, patience=30, compile=True),
        sb=Training(epochs=1000, patience=100, compile=True),
        sb_accurate=Training(epochs=300, patience=100, compile=True),
        frey=Training(epochs=50), is_n=10000, knn_test=10000, tsne_n=1000, mc_n=200000, grid_n=30),
    # The paper: a look-ahead of 100 epochs (SB) and 30 (Gauss) in the authors' code; no epoch cap is given.
    "paper": SBVAEConfig(
        n_train=45000, n_val=5000, n_test=10000, gauss=Training(epochs=3000, patience=30),
        sb=Training(epochs=3000, patience=100), frey=Training(epochs=500), is_n=10000, knn_test=10000,
        tsne_n=5000, mc_n=1000000, grid_n=40,
        table2=Table2Config(fractions=(0.1, 0.05, 0.01), epochs=1000, patience=50)),
}


#: Rule R9's reference budgets (``run.references``), by model-name pattern (the first match wins): the
#: authors' code (github.com/enalisnick/stick-breaking_dgms). Its run scripts default to --max-epoch 2000
#: with early stopping after a look-ahead (--lookahead) of 100 epochs for the SB-VAE and 30 for the Gauss
#: VAE, and its train scripts split MNIST 45,000 / 5,000 / 10,000, so a model sees at most 2,000 x 45,000
#: digits. The SB-VAE with the accurate KL is ours; it gets the SB-VAE's budget. The authors' code has no
#: Frey Face script, and Fig. 3(a)'s training length is not known here, so the Frey Face models have no
#: reference (their share shows "-").
REFERENCES: dict[str, Reference] = {
    "sb*": Reference(2000 * 45_000, "authors' code (Nalisnick, stick-breaking_dgms: "
                                    "run_stickBreaking_VAE_experiments.py, train_stickBreaking_VAE.py): up to "
                                    "2,000 epochs x 45,000 digits, look-ahead 100 epochs"),
    "gauss": Reference(2000 * 45_000, "authors' code (Nalisnick, stick-breaking_dgms: "
                                      "run_gauss_VAE_experiments.py, train_gauss_VAE.py): up to 2,000 epochs "
                                      "x 45,000 digits, look-ahead 30 epochs"),
}


def config_for(profile: str) -> SBVAEConfig:
    """The configuration of ``profile``; a ValueError names the choices for an unknown one."""
    if profile not in CONFIGS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(CONFIGS)} "
                         "(set it with papermill '-p profile NAME' or $AE_PROFILE)")
    return CONFIGS[profile]
