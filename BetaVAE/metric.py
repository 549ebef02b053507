"""The disentanglement metric of Higgins et al. (ICLR 2017, Sec. 3), and the mutual information between
each latent and each ground-truth factor (the MIG of Chen et al. 2018) that reads Fig. 7's traversals.

The metric (Fig. 6, left) asks how well a linear classifier can tell, from the mean |r(x1) - r(x2)| over
pairs of images that share one generative factor and differ in the others, which factor they share.
``data`` is any ground-truth dataset with ``factor_sizes``, ``sample_factors(n, rng)`` and
``observations(factors)`` (``BetaVAE.dsprites.DSprites``, or a toy one in the tests).

Two protocols differ in which factors a point may fix: disentanglement_lib's ``beta_vae_sklearn``
draws it from all of them (on dSprites five, shape included, chance 20%); the paper most likely left
shape out (four factors, chance 25%; unconfirmed, as are the paper's classifier details: a linear
softmax trained by Adagrad). :func:`beta_vae_scores` measures several protocols on shared points.
"""
from __future__ import annotations

import warnings
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from common import dryrun

#: The classifier's iteration cap. disentanglement_lib keeps scikit-learn's default of 100, at which
#: lbfgs stops short of the optimum on these features; the same objective (L2, C = 1) is solved to
#: convergence here, which took at most about 550 iterations on dSprites' representations.
MAX_ITER = 10_000

Represent = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]


def beta_vae_score(data, represent: Represent, batch_size: int = 64, num_train: int = 10_000,
                   num_eval: int = 5_000, seed: int = 0, encode_batch: int = 8192,
                   factors: Sequence[int] | None = None, max_iter: int = MAX_ITER) -> dict:
    """The disentanglement metric of Higgins et al. (ICLR 2017, Sec. 3), by one protocol.

    ``data`` has ``factor_sizes``, ``sample_factors(n, rng)`` (``rng`` a NumPy Generator)
    and ``observations(factors)``; ``represent(x)`` maps a batch of observations to (n, d)
    representations (for a VAE: the encoder *mean*). For each point a factor k is drawn
    uniformly from ``factors`` (None: all of them, disentanglement_lib's protocol);
    ``batch_size`` pairs of factor vectors are drawn that share factor k and are independent
    otherwise; the point's feature is the mean over the pairs of |r(x1) - r(x2)| and its label
    is k. scikit-learn's ``LogisticRegression`` (the reference's defaults, L2 with C = 1, on
    raw features, but up to ``max_iter`` lbfgs iterations) is fitted on ``num_train`` points
    and scored on ``num_eval`` fresh points.

    Returns the fractions ``train_accuracy`` and ``eval_accuracy`` (report the latter, never
    the best of several runs), ``chance`` = 1 / number of factors, the ``factors``, the sizes,
    and ``converged`` / ``n_iter`` (whether lbfgs converged, and in how many iterations).
    Observations are encoded in batches of ``encode_batch`` images without gradients.
    """
    return beta_vae_scores(data, represent, {"score": factors}, batch_size, num_train, num_eval, seed,
                           encode_batch, max_iter)["score"]


def beta_vae_scores(data, represent: Represent, protocols: Mapping[str, Sequence[int] | None],
                    batch_size: int = 64, num_train: int = 10_000, num_eval: int = 5_000, seed: int = 0,
                    encode_batch: int = 8192, max_iter: int = MAX_ITER) -> dict[str, dict]:
    """:func:`beta_vae_score` by several protocols at once, on shared points: ``{name: result}``.

    ``protocols`` maps a name to the factors a point may fix (None: all), e.g.
    ``{"dlib": None, "paper": (1, 2, 3, 4)}``; each must lie within the first one's. The first
    protocol's ``num_train`` + ``num_eval`` points are drawn as :func:`beta_vae_score` draws them.
    A narrower protocol keeps those of its points whose fixed factor is among its own (given that,
    their labels are uniform over its factors, as its own draw would make them) and tops them up
    with fresh points to the same sizes, so it costs only the extra points' encoding. Each
    protocol has its own classifier.
    """
    if batch_size < 1 or num_train < 1 or num_eval < 1:
        raise ValueError("batch_size, num_train and num_eval must be >= 1")
    if not protocols:
        raise ValueError("no protocol given")
    n_all = len(data.factor_sizes)
    sets = {name: tuple(range(n_all)) if f is None else tuple(sorted({int(k) for k in f}))
            for name, f in protocols.items()}
    first = next(iter(sets.values()))
    for name, fs in sets.items():
        if not fs or not set(fs) <= set(first) or not set(fs) <= set(range(n_all)):
            raise ValueError(f"protocol {name!r}: factors {fs} must be a non-empty subset of the first "
                             f"protocol's {first} (of {n_all} factors)")
    num_train = dryrun.eval_size("beta-VAE metric training points", num_train)  # cut only in a dry run
    num_eval = dryrun.eval_size("beta-VAE metric evaluation points", num_eval)
    rng = np.random.default_rng(seed)
    base = {"train": _beta_vae_points(data, represent, batch_size, num_train, rng, encode_batch, first),
            "eval": _beta_vae_points(data, represent, batch_size, num_eval, rng, encode_batch, first)}
    out = {}
    for name, fs in sets.items():
        split = {}
        for part, (x, y) in base.items():
            keep = np.isin(y, fs)
            x, y = x[keep], y[keep]
            short = len(keep) - len(y)
            if short:
                x2, y2 = _beta_vae_points(data, represent, batch_size, short, rng, encode_batch, fs)
                x, y = np.concatenate([x, x2]), np.concatenate([y, y2])
            split[part] = (x, y, int(keep.sum()))
        out[name] = _fit_and_score(split["train"][:2], split["eval"][:2], seed, max_iter)
        out[name].update(chance=1.0 / len(fs), factors=list(fs), num_train=num_train, num_eval=num_eval,
                         batch_size=batch_size, shared_points=split["train"][2] + split["eval"][2])
    return out


def _fit_and_score(train: tuple[np.ndarray, np.ndarray], evaluation: tuple[np.ndarray, np.ndarray],
                   seed: int, max_iter: int) -> dict:
    """Fit the linear classifier on ``train`` and score it on ``evaluation``, recording convergence."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(random_state=seed, max_iter=max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(*train)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {"train_accuracy": float(np.mean(model.predict(train[0]) == train[1])),
            "eval_accuracy": float(np.mean(model.predict(evaluation[0]) == evaluation[1])),
            "converged": converged, "n_iter": int(np.max(model.n_iter_)), "max_iter": max_iter}


def _beta_vae_points(data, represent, batch_size: int, n_points: int, rng: np.random.Generator,
                     encode_batch: int, factors: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``n_points`` (feature, fixed factor) pairs of the beta-VAE metric, the fixed factor drawn
    uniformly from ``factors``, encoded in large batches."""
    labels = np.asarray(factors, dtype=np.int64)[rng.integers(0, len(factors), size=n_points)]
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
    if isinstance(r, torch.Tensor):
        return r.detach().float().cpu().numpy()
    return np.asarray(r, dtype=np.float64)


def factor_mutual_information(codes: np.ndarray, factors: np.ndarray, factor_sizes,
                              bins: int = 20) -> np.ndarray:
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


def mutual_information_gap(mi: np.ndarray) -> float:
    """The MIG of a (d, K) normalised mutual-information table (:func:`factor_mutual_information`): for
    each factor, the gap between the two latents that say most about it, averaged over the factors."""
    return float(np.mean(-np.diff(np.sort(mi, 0)[::-1][:2], axis=0)))
