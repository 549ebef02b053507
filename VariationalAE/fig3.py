"""Fig. 3 of Kingma & Welling (2014): the marginal likelihood of AEVB, wake-sleep and Monte Carlo EM.

The paper (Sec. 5) trains small models (N_z = 3, 100 hidden units) by the three methods on 1,000
and on 50,000 MNIST digits, and plots the estimated marginal likelihood of training and test data
against training samples evaluated. MCEM has no recognition model, so its likelihood cannot be
estimated with an encoder as the proposal. Our estimator (a deviation: the paper used its own
HMC-based one) is the same for all three models and reads the decoder alone:

1. run HMC chains on p_theta(z|x) for each point (``posterior_fit``: step sizes tuned during a
   burn-in, then the chain's mean and spread);
2. importance sampling with a defensive mixture, q(z|x) = (1 - w) N(mean, (s * sd)^2) + w N(0, I)
   (``decoder_log_weights``): the prior component bounds every weight by p(x|z) / w, so a
   too-narrow fit cannot blow the estimate up; with N_z = 3 a few hundred samples suffice.

``LikelihoodCurve`` records that estimate on fixed training and test points during training
(``fit``'s after_epoch hook), as Fig. 3's curves. Training itself is ``train_vae`` (AEVB,
wake-sleep) and ``train_mcem`` here (``VariationalAE/mcem.py``).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from common.data import Chunks, ImageSet
from common.evaluate import importance_sampled_log_likelihood
from common.gaussian import log_normal, log_standard_normal
from common.run import Run
from common.train import History, make_optimizer, seed_everything
from VariationalAE import mcem as mcem_module
from VariationalAE.config import Training
from VariationalAE.mcem import MCEM, RepeatedBatches, hmc_step, mcem_loss, posterior_log_density, tune_step_size
from VariationalAE.vae import VAE, init_normal_, parameter_prior_weight_decay


def posterior_fit(decoder: nn.Module, x: torch.Tensor, z_dim: int, burn_in: int = 40, samples: int = 40,
                  step_size: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, sd) of p_theta(z|x) per row of ``x``, from one HMC chain each started at a prior draw.

    The first ``burn_in`` transitions tune each chain's step size (``tune_step_size``); the next
    ``samples`` are averaged. Draws from the global generator (callers fork it).
    """
    log_density = posterior_log_density(decoder, x)
    z = torch.randn(len(x), z_dim, device=x.device)
    step = torch.full((len(x), 1), step_size, device=x.device)
    total, total_sq = torch.zeros_like(z), torch.zeros_like(z)
    for t in range(burn_in + samples):
        z, acceptance = hmc_step(log_density, z, step)
        if t < burn_in:
            step = tune_step_size(step, acceptance)
        else:
            total, total_sq = total + z, total_sq + z * z
    mean = total / samples
    return mean, (total_sq / samples - mean * mean).clamp_min(1e-6).sqrt()


def decoder_log_weights(decoder: nn.Module, z_dim: int, spread: float = 1.5, prior_share: float = 0.2,
                        **fit_kwargs) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """``log_weights(x, k)`` for ``importance_sampled_log_likelihood`` from the decoder alone (see the module).

    log w = log p(x|z) + log p(z) - log q(z|x), z ~ q = (1 - prior_share) N(mean, (spread sd)^2)
    + prior_share N(0, I), with (mean, sd) from :func:`posterior_fit` on the same x.
    """
    if not 0 < prior_share < 1:
        raise ValueError(f"prior_share must be in (0, 1), got {prior_share}")

    def log_weights(x: torch.Tensor, k: int) -> torch.Tensor:
        x = x.reshape(len(x), -1)
        mean, sd = posterior_fit(decoder, x, z_dim, **fit_kwargs)
        sd = spread * sd
        with torch.no_grad():
            eps = torch.randn(k, *mean.shape, device=x.device)
            from_prior = torch.rand(k, len(x), 1, device=x.device) < prior_share
            z = torch.where(from_prior, eps, mean + sd * eps)
            log_q = torch.logaddexp(math.log1p(-prior_share) + log_normal(z, mean, 2 * sd.log()),
                                    math.log(prior_share) + log_standard_normal(z))
            return decoder.log_prob(x, z) + log_standard_normal(z) - log_q

    return log_weights


def marginal_log_likelihood(decoder: nn.Module, x: torch.Tensor, z_dim: int, k: int = 200, seed: int = 0,
                            **fit_kwargs) -> torch.Tensor:
    """Per-example estimate of log p(x) (nats) by :func:`decoder_log_weights` with ``k`` samples.

    Draws from a forked generator seeded with ``seed``: the caller's random stream is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return importance_sampled_log_likelihood(decoder_log_weights(decoder, z_dim, **fit_kwargs), x, k)


class LikelihoodCurve:
    """``fit``'s after_epoch hook: the estimated log p(x) of fixed training and test points during training.

    Every ``every`` epochs (chunks) and after the last, the mean over ``x_train`` and over
    ``x_test`` of :func:`decoder_log_weights`' estimate with ``k`` samples, as ``ml/train`` and
    ``ml/test`` in nats (:func:`marginal_log_likelihood`); NaN between. Its draws come from a forked
    generator seeded with ``seed``, so measuring never changes what training draws.
    """

    def __init__(self, x_train: torch.Tensor, x_test: torch.Tensor, z_dim: int, every: int, epochs: int,
                 k: int = 200, seed: int = 0, **fit_kwargs) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.x = {"train": x_train, "test": x_test}
        self.z_dim, self.every, self.epochs, self.k, self.seed = z_dim, every, epochs, k, seed
        self.fit_kwargs = fit_kwargs

    def __call__(self, model: nn.Module, history: History) -> None:
        epoch = history.epochs
        due = epoch % self.every == 0 or epoch == self.epochs
        for part, x in self.x.items():
            value = (float(marginal_log_likelihood(model.decoder, x, self.z_dim, self.k, self.seed,
                                                   **self.fit_kwargs).mean()) if due else float("nan"))
            history.record_epoch(f"ml/{part}", value)


def train_mcem(run: Run, name: str, train_set: ImageSet, hidden: int, z_dim: int, training: Training,
               device: torch.device | str, **fit_kwargs) -> tuple[MCEM, History]:
    """Train (or reload) the MCEM model called ``name``: the AEVB MNIST decoder (same init) and one HMC chain per
    training digit, an E step per new minibatch and ``mcem.UPDATES_PER_SAMPLE`` weight updates on it (Sec. 5).

    One "epoch" of ``fit`` is ``training.chunk // UPDATES_PER_SAMPLE`` new minibatches, each presented
    that many times, so ``history.samples`` counts every evaluated sample (Fig. 3's axis) and an
    epoch evaluates as many as AEVB's. The optimiser, step size and
    parameter prior (weight decay 1/N) are AEVB's. ``fit_kwargs`` reach ``fit`` (e.g. ``after_epoch``).
    """
    seed_everything(run.seed)
    vae = init_normal_(VAE((1, 28, 28), hidden, z_dim, "bernoulli"), training.init_std)  # the AEVB decoder's init
    model = MCEM(vae.decoder, len(train_set), z_dim, seed=run.seed).to(device)
    opt = make_optimizer(training.optimizer, model.decoder.parameters(), training.lr,
                         weight_decay=parameter_prior_weight_decay(len(train_set)))
    # chunk // times new minibatches per "epoch", each presented ``times`` times: as many samples evaluated
    # per epoch as AEVB's chunk, so the curves share their horizontal axis
    times = mcem_module.UPDATES_PER_SAMPLE
    stream = RepeatedBatches(Chunks(train_set.batches(training.batch_size, device, seed=run.seed),
                                    max(1, training.chunk // times)), times)
    config = {"train_data": getattr(train_set, "name", "?"), "n_train": len(train_set), "init_std": training.init_std,
              "chunk": training.chunk, "updates_per_sample": stream.times, "method": "mcem"}
    hist = run.train(name, model, mcem_loss, stream, training.chunks, optimizer=opt, config=config,
                     sources=(mcem_module,), watched="train/loss", **fit_kwargs)
    return model.eval(), hist
