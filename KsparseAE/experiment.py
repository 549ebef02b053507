"""The experiments of KsparseAE.ipynb: training a k-sparse autoencoder, and encoding data for Table 1.

The paper's model, loss and schedule are in :mod:`KsparseAE.ksparse`. Each model is a
named checkpoint of a :class:`common.run.Run` (``run.train``), keyed by the configuration
and by the source of ``ksparse`` (the model, its loss and the schedule hook).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from common.data import Batches
from common.evaluate import features
from common.evaluate import softmax_regression_error
from common.run import Run, convergence
from common.train import History, make_optimizer
from KsparseAE import ksparse
from KsparseAE.config import KsparseConfig
from KsparseAE.ksparse import KSparseAutoencoder, scheduled_k, sparsity_schedule, squared_error, with_k


def model_name(k: int, schedule: bool = True) -> str:
    """The run's name of the k-sparse model at target ``k``: ``ksparse_k{k}``, with ``_nosched`` without the schedule."""
    return f"ksparse_k{k}" + ("" if schedule else "_nosched")


def early_stopping(cfg: KsparseConfig, val: Batches | None, best_from: int = 0, watch: str = "val/loss") -> dict:
    """``fit``'s early-stopping settings under ``cfg`` (none without ``cfg.patience``): keep the epoch of least
    ``watch`` from ``best_from`` on, and stop ``cfg.patience`` epochs after it."""
    if cfg.patience is None:
        return {}
    if val is None:
        raise ValueError("early stopping (cfg.patience) needs validation batches")
    return {"val": val, "best_on": watch, "patience": cfg.patience, "best_from": best_from}


def train_ksparse(run: Run, init: KSparseAutoencoder, k: int, schedule: bool, train: Batches,
                  cfg: KsparseConfig, val: Batches | None = None, name: str | None = None,
                  config: dict | None = None) -> tuple[KSparseAutoencoder, History]:
    """Train a copy of ``init`` at target sparsity ``k``, with or without the sec. 4 schedule; (model, History).

    Every k starts from the same weights (``with_k``: Fig. 1 compares k "from the same
    initialisation"). The model is named ``ksparse_k{k}``, with ``_nosched`` when
    ``schedule`` is off; ``train`` should be built with the same seed for every k, so
    that all see the same batch order. With ``cfg.patience`` the model stops at its
    validation optimum on ``val`` (:func:`early_stopping`), judged from the first epoch at
    the target k when scheduled. ``name`` and ``config`` serve a model trained on other data
    (the deep network's second layer): ``config`` must then name that data and what made it.
    """
    name = name or model_name(k, schedule)
    model = with_k(init, k)
    extra = {} if cfg.momentum is None else {"momentum": cfg.momentum}
    opt = make_optimizer(cfg.optimizer, model.parameters(), lr=cfg.lr, **extra)
    target_from = first_epoch_at_target(k, cfg.epochs) if schedule else 0
    hist = run.train(name, model, squared_error, train, cfg.epochs, optimizer=opt,
                     sources=(ksparse,),  # the math; settings are keyed via config
                     config={"data": "mnist", **(config or {}), "k": k, "schedule": schedule,
                             "init_std": cfg.init_std},
                     before_step=sparsity_schedule(cfg.epochs) if schedule else None,
                     **early_stopping(cfg, val, target_from))
    assert all(math.isfinite(v) for v in hist["train/loss"]), name
    if schedule:
        judge_at_target_k(run, name, hist, k, cfg.epochs)
    return model, hist


def first_epoch_at_target(k: int, epochs: int) -> int:
    """The first 0-based epoch at which the sec. 4 schedule (over ``epochs``) has lowered k to ``k``."""
    return next((e for e in range(epochs) if scheduled_k(e, epochs, k) == k), 0)


def judge_at_target_k(run: Run, name: str, hist: History, k: int, epochs: int) -> dict:
    """Rule R9's convergence status of a scheduled model, read off the epochs trained at its target ``k`` only.

    While the schedule lowers k, the squared error rises with every step of k (fewer units
    reconstruct each digit), so a comparison across the schedule would call the model
    converged because its last epochs are worse than its first: that says nothing about
    whether training at the target k had settled. The rule of :func:`common.run.convergence`
    is applied to the epochs from the first one at the target k (epochs // 2 on); with fewer
    than its minimum of epochs there, the status is "too short to tell". ``run.models[name]``
    is updated in place and returned.
    """
    start = first_epoch_at_target(k, epochs)
    held = History({key: v[start:] for key, v in hist.records.items()}, hist.samples[start:],
                   None, hist.stopped_early, hist.seconds)
    record = run.models[name]
    status = convergence(held, record["watched"])
    status["why"] = (f"{status['why']} at the target k = {k} (epochs {start + 1}-{epochs}; the schedule "
                     f"lowers k before, which raises the loss)")
    record.update(status)
    return record


def select_weight_decay(features: torch.Tensor, labels: torch.Tensor, n_fit: int, grid: Sequence[float],
                        max_iter: int) -> tuple[float, dict[float, float]]:
    """The weight decay of ``grid`` with the lowest validation error for one representation; (it, errors by decay).

    The classifier is fitted on the first ``n_fit`` rows and scored on the rest (the
    validation split); every representation of Table 1 calls this with the same grid and
    split, so each gets the same selection budget (rule R3). Ties go to the first in ``grid``;
    a grid of one value needs no selection and fits nothing (its errors are empty).
    """
    if len(grid) == 1:
        return grid[0], {}
    errors = {wd: softmax_regression_error(features[:n_fit], labels[:n_fit], features[n_fit:], labels[n_fit:],
                                           weight_decay=wd, max_iter=max_iter)["test_error"] for wd in grid}
    return min(errors, key=errors.get), errors


def encoded(encode: Callable[[torch.Tensor], torch.Tensor], x_train: torch.Tensor,
            x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) features ``encode(x)`` for the Table 1 classifier, computed in batches without gradients."""
    return torch.as_tensor(features(encode, x_train)), torch.as_tensor(features(encode, x_test))
