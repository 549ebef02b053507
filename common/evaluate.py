"""Evaluation shared by several papers: likelihood estimates, feature probes, error bars.

Paper-specific quantities (a model's log-weights, its features) are passed in as
functions or arrays; nothing here knows any one paper's model.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

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
    # W is (classes, features), applied by F.linear: its weight gradient is then G.T @ X, which BLAS runs many
    # times faster than the X.T @ G of a (features, classes) W (benchmarks/classifier_speed.py measures both)
    w = torch.zeros(n_classes, xtr.shape[1], device=device, requires_grad=True)
    b = torch.zeros(n_classes, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-7, tolerance_change=1e-10)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(F.linear(xtr, w, b), ytr) + 0.5 * weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        err = lambda x, y: 100.0 * float((F.linear(x, w, b).argmax(1) != y).float().mean())  # noqa: E731
        return {"test_error": err(xte, yte), "train_error": err(xtr, ytr),
                "iterations": int(opt.state[w]["n_iter"])}


def softmax_regression_reference(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                                 test_y: torch.Tensor, weight_decay: float = 1e-4, max_iter: int = 100) -> float:
    """:func:`softmax_regression_error`'s test error (%) in the textbook layout, W (features, classes) and
    logits X @ W + b: the plain path that the fast one is tested (tests/test_ksparse.py) and timed
    (benchmarks/classifier_speed.py) against. The same function; much slower on large sets."""
    mean, std = train_x.mean(0), train_x.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    xtr, xte = (train_x - mean) / std, (test_x - mean) / std
    w = torch.zeros(xtr.shape[1], int(max(train_y.max(), test_y.max())) + 1, requires_grad=True)
    b = torch.zeros(w.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-7, tolerance_change=1e-10)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, train_y) + 0.5 * weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return 100.0 * float(((xte @ w + b).argmax(1) != test_y).float().mean())


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
