"""The SB_VAE notebook's experiment: training recipes, the KL checks, kNN and dimension usage.

The latent, the KL and the models are in ``SB_VAE/sbvae.py`` and ``SB_VAE/kumaraswamy.py``;
this module trains the models through :meth:`common.run.Run.train` and measures what the
notebook's claims are judged on.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from common import gaussian
from common.data import ImageSet
from common.evaluate import error_difference_se, error_se
from common.report import VERDICTS, LevelCheck, level_check
from common.run import Run
from common.train import History, make_optimizer
from SB_VAE import kumaraswamy, sbvae
from SB_VAE.config import Training
from SB_VAE.kumaraswamy import beta_log_prob, kumaraswamy_kl, kumaraswamy_log_prob, kumaraswamy_log_v
from SB_VAE.sbvae import VAEModel, negative_bound_loss

#: The modules whose code a trained model's checkpoint key hashes: the paper's math. Not this module,
#: which also holds measurements whose edits must not retrain; a recipe's settings are keyed via config.
SOURCES = (sbvae, kumaraswamy, gaussian)


# ---------------------------------------------------------------------------
# Training (the authors' optimiser; early stopping on the validation bound for MNIST)
# ---------------------------------------------------------------------------
def train_mnist(run: Run, name: str, model: VAEModel, train_set: ImageSet, val_set: ImageSet,
                training: Training, device: torch.device | str) -> History:
    """Train (or reload, or resume) an MNIST model on the negative bound; keep the best validation epoch.

    Early stopping after ``training.patience`` epochs without a better validation loss
    (``None``: every epoch runs). The model is left in eval mode.
    """
    opt = make_optimizer(training.optimizer, model.parameters(), lr=training.lr, betas=training.betas)
    hist = run.train(name, model.to(device), negative_bound_loss,
                     train_set.batches(training.batch_size, device, seed=run.seed), training.epochs,
                     optimizer=opt, sources=SOURCES,
                     config=dict(data="mnist-70k-split-45k/5k/10k", n_val=len(val_set), lr=training.lr,
                                 betas=training.betas),
                     val=val_set.batches(1000, device, shuffle=False), best_on="val/loss",
                     patience=training.patience, compile=training.compile)
    model.eval()
    return hist


def train_frey(run: Run, name: str, model: VAEModel, train_set: ImageSet, test_set: ImageSet,
               training: Training, device: torch.device | str) -> History:
    """Train (or reload, or resume) a Frey Face model for ``training.epochs`` epochs (Fig. 3a).

    The test faces serve only for the per-epoch reconstruction-error curve (``val/sq_err``).
    """
    opt = make_optimizer(training.optimizer, model.parameters(), lr=training.lr, betas=training.betas)
    return run.train(name, model.to(device), negative_bound_loss,
                     train_set.batches(training.batch_size, device, seed=run.seed), training.epochs,
                     optimizer=opt, sources=SOURCES, config=dict(data="freyface-1765/200"),
                     val=test_set.batches(200, device, shuffle=False))


# ---------------------------------------------------------------------------
# The KL: a Monte Carlo check and the 10-term series' error map
# ---------------------------------------------------------------------------
def kumaraswamy_kl_monte_carlo(a: float, b: float, alpha: float, beta: float, n: int = 200_000,
                               seed: int = 0) -> tuple[float, float]:
    """Monte Carlo estimate of E_q[log q(v) - log p(v)] and its standard error (float64, u ~ U(0, 1))."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g, dtype=torch.float64).clamp_min(1e-300)
    at, bt = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    log_u = torch.log(u)
    log_v, log_1mv = kumaraswamy_log_v(log_u, at, bt)
    d = kumaraswamy_log_prob(log_v, log_u / bt, at, bt) - beta_log_prob(log_v, log_1mv, alpha, beta)
    return float(d.mean()), float(d.std() / math.sqrt(n))


def kl_error_grid(a_values: np.ndarray, b_values: np.ndarray, alpha: float, beta: float,
                  terms: int = 10) -> np.ndarray:
    """(terms-cut KL) - (accurate KL) on the grid a x b, in nats: rows a, columns b."""
    a = torch.tensor(a_values, dtype=torch.float64)[:, None].expand(len(a_values), len(b_values))
    b = torch.tensor(b_values, dtype=torch.float64)[None, :].expand(len(a_values), len(b_values))
    return (kumaraswamy_kl(a, b, alpha, beta, terms) - kumaraswamy_kl(a, b, alpha, beta, None)).numpy()


# ---------------------------------------------------------------------------
# Latents: codes, kNN errors (Fig. 3f) and dimension usage (Fig. 2)
# ---------------------------------------------------------------------------
@torch.no_grad()
def encode(model: VAEModel, x: torch.Tensor, sample: bool, batch_size: int = 2000) -> torch.Tensor:
    """Latents of ``x`` (one posterior draw or the mean-based code), in eval mode, batched."""
    model.eval()
    return torch.cat([model.latents(xb, sample=sample) for xb in x.split(batch_size)])


@torch.no_grad()
def mean_kl_per_dim(model: VAEModel, x: torch.Tensor, batch_size: int = 2000, **kw) -> torch.Tensor:
    """Mean over ``x`` of the KL of each latent dimension (Fig. 2), in nats."""
    model.eval()
    return torch.cat([model.kl_per_dim(xb, **kw) for xb in x.split(batch_size)]).mean(0)


def active_dims(codes: torch.Tensor, prior_var: torch.Tensor, share: float = 0.01) -> torch.Tensor:
    """Which dimensions are in use: the variance over inputs of the mean-based code ``codes`` (N, D) above
    ``share`` of the prior's variance of that dimension. This is the active-unit statistic of Burda et al.
    (2016), whose bar of 0.01 assumes a unit-variance prior; dividing by the prior's variance lets the
    same bar serve stick weights, whose prior variance falls with k. A KL above zero is not use: an
    untrained encoder's posterior differs from the prior without encoding anything."""
    return codes.var(0) > share * prior_var.to(codes)


@torch.no_grad()
def mean_codes(model: VAEModel, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Per input, the posterior mean of each latent coordinate: mu for the Gauss VAE, E[v_k] of each stick
    fraction for the SB-VAE. Fractions, not the weights pi_k: pi_k = v_k prod_{j<k}(1 - v_j) varies over
    inputs whenever an earlier fraction does, so a late component would look used through its elders."""
    model.eval()
    out = []
    for xb in x.split(batch_size):
        first, second = model.posterior(xb.reshape(len(xb), -1))
        out.append(kumaraswamy.kumaraswamy_mean(first, second) if isinstance(model, sbvae.StickBreakingVAE)
                   else first)
    return torch.cat(out)


def beta_1_alpha_variance(alpha0: float) -> float:
    """Variance of a Beta(1, alpha0) stick fraction, the prior of every v_k."""
    return alpha0 / ((1 + alpha0) ** 2 * (2 + alpha0))


def collapsed_dims(kl_per_dim: torch.Tensor, threshold: float = 0.01) -> int:
    """How many latent dimensions carry less than ``threshold`` nats of KL on average."""
    return int((kl_per_dim < threshold).sum())


@torch.no_grad()
def knn_errors(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
               ks: tuple[int, ...] = (3, 5, 10), chunk: int = 1000) -> dict[int, float]:
    """Test error (%) of Euclidean k-nearest-neighbour majority votes for every k in ``ks``.

    One search for the max(ks) nearest training points serves all k. A tied vote goes to
    the class whose members are nearer (each vote is weighted 1 + 1e-3 / rank, so the
    nearest neighbour breaks ties). Runs as matrix products on the device.
    """
    kmax = max(ks)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    train_x, test_x = train_x.float(), test_x.float()
    sq_train = train_x.pow(2).sum(1)
    wrong = {k: 0 for k in ks}
    for xs, ys in zip(test_x.split(chunk), test_y.split(chunk)):
        d = sq_train[None, :] - 2 * xs @ train_x.T       # + |x|^2, constant per row
        idx = d.topk(kmax, dim=1, largest=False).indices
        labels = train_y[idx]                            # (n, kmax), nearest first
        rank_weight = 1.0 + 1e-3 / torch.arange(1, kmax + 1, dtype=torch.float32, device=labels.device)
        for k in ks:
            votes = torch.zeros(len(xs), n_classes, device=labels.device)
            votes.scatter_add_(1, labels[:, :k], rank_weight[:k].expand(len(xs), k).contiguous())
            wrong[k] += int((votes.argmax(1) != ys).sum())
    return {k: 100.0 * wrong[k] / len(test_x) for k in ks}


def errors_text(errors: dict[int, float], ks: tuple[int, ...]) -> str:
    """Errors at each k, as 'a / b / c'."""
    return " / ".join(f"{errors[k]:.2f}" for k in ks)


def weakest_k(worse: dict[int, float], better: dict[int, float], ks: tuple[int, ...], n: int) -> int:
    """The k at which better's margin over worse is smallest in standard errors (``n`` test examples)."""
    return min(ks, key=lambda k: (worse[k] - better[k]) / max(error_difference_se(worse[k], better[k], n), 1e-9))


def largest_gap(ours: dict[int, float], paper: tuple[float, ...], ks: tuple[int, ...]) -> float:
    """Largest |ours - paper| over k (``paper`` lists the paper's errors in the order of ``ks``)."""
    return max(abs(ours[k] - p) for k, p in zip(ks, paper))


def order_correlation(values: torch.Tensor) -> float:
    """Correlation of the index k with the rank of ``values[k]`` (largest first): 1 when they fall in order."""
    v = values.detach().cpu().numpy()
    return float(np.corrcoef(np.arange(len(v)), np.argsort(np.argsort(-v)))[0, 1])


def knn_level(ours: dict[int, float], paper: tuple[float, ...], ks: tuple[int, ...], n: int,
              confidence: str = "P") -> tuple[int, LevelCheck]:
    """Rule R4 at each k for kNN errors (%) measured on ``n`` test digits (binomial se of ours; the paper
    gives none): the k whose check is weakest (then the largest gap in tolerances) and its check."""
    checks = {k: level_check(ours[k], p, error_se(ours[k], n), confidence=confidence, unit=" points")
              for k, p in zip(ks, paper)}
    k = max(ks, key=lambda k: (VERDICTS.index(checks[k].verdict), checks[k].gap / checks[k].tol))
    return k, checks[k]


@torch.no_grad()
def squared_errors(model: VAEModel, x: torch.Tensor, draws: int = 10, seed: int = 0) -> torch.Tensor:
    """Squared error per example (N,) of the decoder mean at a posterior draw, averaged over ``draws``
    draws: the measure of Fig. 3(a)'s curve (``val/sq_err`` is its mean at one draw)."""
    model.eval()
    torch.manual_seed(seed)
    x = x.reshape(len(x), -1)
    return torch.stack([(torch.sigmoid(model.terms(x)["logits"]) - x).pow(2).sum(-1)
                        for _ in range(draws)]).mean(0)
