"""Evaluation shared by several papers: likelihood estimates, feature probes, error bars.

Paper-specific quantities (a model's log-weights, its features) are passed in as
functions or arrays; nothing here knows any one paper's model.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from common import dryrun


@torch.no_grad()
def importance_sampled_log_likelihood(log_weights: Callable[[torch.Tensor, int], torch.Tensor],
                                      x: torch.Tensor, k: int, batch_size: int = 500,
                                      chunk: int | None = None) -> torch.Tensor:
    """Importance-sampled estimate of log p(x) per example, in nats.

    ``log_weights(x, k)`` returns a (k, N) tensor of log p(x, z_i) - log q(z_i | x) for
    k samples z_i ~ q(z | x). Then log p(x) ~= logsumexp_i(log w_i) - log k, a
    stochastic lower bound that tightens as k grows (Burda et al. 2016, eq. 8) and
    equals the ELBO's expectation at k = 1. ``chunk`` splits the k samples to bound
    memory. In a dry run (:mod:`common.dryrun`) k is cut to ``$AE_MAX_EVAL``.
    """
    k = dryrun.eval_size("importance samples per point", k)
    out = []
    chunk = min(chunk or k, k)
    for xb in x.split(batch_size):
        lw = torch.cat([log_weights(xb, min(chunk, k - s)) for s in range(0, k, chunk)], dim=0)
        out.append(torch.logsumexp(lw.double(), dim=0) - math.log(k))
    return torch.cat(out).float()


def features(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """Apply ``encode`` in batches without gradients and return a NumPy array."""
    with torch.no_grad():
        return torch.cat([encode(xb).float().cpu() for xb in x.split(batch_size)]).numpy()


def linear_probe_error(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                       c: float = 1.0, max_iter: int = 200, seed: int = 0) -> float:
    """Test error (%) of a multinomial logistic regression fitted on ``train_x``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=seed))
    clf.fit(train_x, train_y)
    return 100.0 * float(np.mean(clf.predict(test_x) != test_y))


def softmax_regression_error(train_x: np.ndarray | torch.Tensor, train_y: np.ndarray | torch.Tensor,
                             test_x: np.ndarray | torch.Tensor, test_y: np.ndarray | torch.Tensor,
                             weight_decay: float = 1e-4, max_iter: int = 100, device: torch.device | str | None = None,
                             standardize: bool = True) -> dict[str, float]:
    """Multinomial logistic (softmax) regression fitted by full-batch L-BFGS in torch; test and train error (%).

    For large feature sets (e.g. 60,000 x 1,000) where scikit-learn's solver is too slow
    on a few CPU cores. Minimises the mean cross-entropy plus ``weight_decay / 2 * ||W||^2``
    (the bias is not penalised) on features standardised with the training mean and
    standard deviation (constant features stay 0). Inputs are NumPy arrays or tensors;
    the fit runs on ``device`` (default: that of ``train_x`` if a tensor, else the CPU)
    in float32. The weights start at 0 and the problem is convex, so the fit is
    deterministic. Returns ``test_error`` and ``train_error`` (%) and the L-BFGS
    ``iterations`` used.
    """
    def as_tensor(a, dtype):
        return (a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))).to(device, dtype)

    if device is None:
        device = train_x.device if isinstance(train_x, torch.Tensor) else torch.device("cpu")
    max_iter = dryrun.eval_size("L-BFGS iterations of the softmax regression", max_iter)  # cut only in a dry run
    xtr, xte = as_tensor(train_x, torch.float32), as_tensor(test_x, torch.float32)
    ytr, yte = as_tensor(train_y, torch.long), as_tensor(test_y, torch.long)
    if xtr.dim() != 2 or xte.dim() != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"features must be 2-D with equal widths, got {tuple(xtr.shape)} and {tuple(xte.shape)}")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("one label per example is needed")
    if standardize:
        mean, std = xtr.mean(0), xtr.std(0)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        xtr, xte = (xtr - mean) / std, (xte - mean) / std
    n_classes = int(max(ytr.max(), yte.max())) + 1
    w = torch.zeros(xtr.shape[1], n_classes, device=device, requires_grad=True)
    b = torch.zeros(n_classes, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-7, tolerance_change=1e-10)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ w + b, ytr) + 0.5 * weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        err = lambda x, y: 100.0 * float(((x @ w + b).argmax(1) != y).float().mean())  # noqa: E731
        return {"test_error": err(xte, yte), "train_error": err(xtr, ytr),
                "iterations": int(opt.state[w]["n_iter"])}


def knn_error(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
              ks: tuple[int, ...] = (3, 5, 10)) -> dict[int, float]:
    """Test error (%) of a k-nearest-neighbour classifier for each k."""
    from sklearn.neighbors import KNeighborsClassifier

    out = {}
    for k in ks:
        clf = KNeighborsClassifier(n_neighbors=k).fit(train_x, train_y)
        out[k] = 100.0 * float(np.mean(clf.predict(test_x) != test_y))
    return out


def error_interval(error_pct: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (in %) of an error rate measured on ``n`` examples."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = error_pct / 100.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def error_se(error_pct: float, n: int) -> float:
    """Binomial standard error (in percentage points) of an error rate measured on ``n`` examples."""
    if n <= 0:
        raise ValueError("n must be positive")
    return math.sqrt(error_pct * (100.0 - error_pct) / n)


def error_difference_se(a_pct: float, b_pct: float, n: int) -> float:
    """Standard error of the difference of two error rates, each measured on ``n`` examples.

    Treats the two as independent. On the same test examples the errors of two models are
    positively correlated, so this overstates the uncertainty: a ranking that clears it is safe.
    """
    return math.hypot(error_se(a_pct, n), error_se(b_pct, n))


def classifier_error(logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                     batch_size: int = 2000) -> float:
    """Test error (%) of a torch classifier given as a function returning logits."""
    with torch.no_grad():
        pred = torch.cat([logits_fn(xb).argmax(1) for xb in x.split(batch_size)])
    return 100.0 * float((pred != y.to(pred.device)).float().mean())


def beta_vae_score(data, represent: Callable[[torch.Tensor], torch.Tensor | np.ndarray], batch_size: int = 64,
                   num_train: int = 10_000, num_eval: int = 5_000, seed: int = 0,
                   encode_batch: int = 8192) -> dict[str, float]:
    """The disentanglement metric of Higgins et al. (ICLR 2017, Sec. 3), by the reference
    protocol (disentanglement_lib's ``beta_vae_sklearn``).

    ``data`` has ``factor_sizes``, ``sample_factors(n, rng)`` (``rng`` a NumPy Generator)
    and ``observations(factors)``; ``represent(x)`` maps a batch of observations to (n, d)
    representations (for a VAE: the encoder *mean*). For each point a factor k is drawn
    uniformly from all factors; ``batch_size`` pairs of factor vectors are drawn that
    share factor k and are independent otherwise; the point's feature is the mean over
    the pairs of |r(x1) - r(x2)| and its label is k. scikit-learn's
    ``LogisticRegression`` with its defaults is fitted on ``num_train`` points (raw
    features, as the reference does) and scored on ``num_eval`` fresh points.

    Returns the fractions ``train_accuracy`` and ``eval_accuracy`` (report the latter,
    never the best of several runs), plus ``chance`` = 1 / number of factors and
    ``converged`` (whether lbfgs converged within the default 100 iterations).
    Observations are encoded in batches of ``encode_batch`` images without gradients.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if batch_size < 1 or num_train < 1 or num_eval < 1:
        raise ValueError("batch_size, num_train and num_eval must be >= 1")
    num_train = dryrun.eval_size("beta-VAE metric training points", num_train)  # cut only in a dry run
    num_eval = dryrun.eval_size("beta-VAE metric evaluation points", num_eval)
    rng = np.random.default_rng(seed)
    train_x, train_y = _beta_vae_points(data, represent, batch_size, num_train, rng, encode_batch)
    eval_x, eval_y = _beta_vae_points(data, represent, batch_size, num_eval, rng, encode_batch)
    model = LogisticRegression(random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(train_x, train_y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {"train_accuracy": float(np.mean(model.predict(train_x) == train_y)),
            "eval_accuracy": float(np.mean(model.predict(eval_x) == eval_y)),
            "chance": 1.0 / len(data.factor_sizes), "num_train": num_train, "num_eval": num_eval,
            "batch_size": batch_size, "converged": converged}


def _beta_vae_points(data, represent, batch_size: int, n_points: int, rng: np.random.Generator,
                     encode_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_points`` (feature, fixed factor) pairs of the beta-VAE metric, encoded in large batches."""
    n_factors = len(data.factor_sizes)
    labels = rng.integers(0, n_factors, size=n_points)
    feats = []
    # points per chunk so that one chunk encodes about 2 * encode_batch images
    per_chunk = max(1, encode_batch // batch_size)
    for start in range(0, n_points, per_chunk):
        k = labels[start:start + per_chunk]
        m = len(k) * batch_size
        f1 = data.sample_factors(m, rng)
        f2 = data.sample_factors(m, rng)
        fixed = np.repeat(k, batch_size)
        f2[np.arange(m), fixed] = f1[np.arange(m), fixed]   # the pair shares factor k
        with torch.no_grad():
            r1 = _as_numpy(represent(data.observations(f1)))
            r2 = _as_numpy(represent(data.observations(f2)))
        feats.append(np.abs(r1 - r2).reshape(len(k), batch_size, -1).mean(1))
    return np.concatenate(feats), labels


def _as_numpy(r: torch.Tensor | np.ndarray) -> np.ndarray:
    return r.detach().float().cpu().numpy() if isinstance(r, torch.Tensor) else np.asarray(r, dtype=np.float64)


def factor_mutual_information(codes: np.ndarray, factors: np.ndarray, factor_sizes, bins: int = 20) -> np.ndarray:
    """Mutual information between each code dimension and each ground-truth factor, (d, K).

    Each code dimension is cut into ``bins`` equal-width bins over its range (as the MIG
    of Chen et al. 2018 does); the MI with factor k (in nats, from the joint histogram)
    is divided by the factor's entropy, so 1 means the dimension determines the factor
    and 0 that it says nothing about it.
    """
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors, dtype=np.int64)
    n, d = codes.shape
    lo, hi = codes.min(0), codes.max(0)
    binned = np.clip(((codes - lo) / np.maximum(hi - lo, 1e-12) * bins).astype(np.int64), 0, bins - 1)
    out = np.zeros((d, len(factor_sizes)))
    for k, size in enumerate(factor_sizes):
        cell = (np.arange(d) * bins + binned) * size + factors[:, k:k + 1]         # (n, d) joint cells
        joint = np.bincount(cell.ravel(), minlength=d * bins * size).reshape(d, bins, size) / n
        p_code, p_factor = joint.sum(2, keepdims=True), joint.sum(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            mi = np.where(joint > 0, joint * np.log(joint / (p_code * p_factor)), 0.0).sum((1, 2))
        pf = p_factor[0, 0]
        entropy = -(pf[pf > 0] * np.log(pf[pf > 0])).sum()
        out[:, k] = mi / entropy
    return out
