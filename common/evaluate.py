"""Evaluation shared by several papers: likelihood estimates, feature probes, error bars.

Paper-specific quantities (a model's log-weights, its features) are passed in as
functions or arrays; nothing here knows any one paper's model.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch


@torch.no_grad()
def importance_sampled_log_likelihood(log_weights: Callable[[torch.Tensor, int], torch.Tensor],
                                      x: torch.Tensor, k: int, batch_size: int = 500,
                                      chunk: int | None = None) -> torch.Tensor:
    """Importance-sampled estimate of log p(x) per example, in nats.

    ``log_weights(x, k)`` returns a (k, N) tensor of log p(x, z_i) - log q(z_i | x) for
    k samples z_i ~ q(z | x). Then log p(x) ~= logsumexp_i(log w_i) - log k, a
    stochastic lower bound that tightens as k grows (Burda et al. 2016, eq. 8) and
    equals the ELBO's expectation at k = 1. ``chunk`` splits the k samples to bound
    memory.
    """
    out = []
    chunk = chunk or k
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


def classifier_error(logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                     batch_size: int = 2000) -> float:
    """Test error (%) of a torch classifier given as a function returning logits."""
    with torch.no_grad():
        pred = torch.cat([logits_fn(xb).argmax(1) for xb in x.split(batch_size)])
    return 100.0 * float((pred != y.to(pred.device)).float().mean())
