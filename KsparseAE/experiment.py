"""The experiments of KsparseAE.ipynb: training a k-sparse autoencoder, and encoding data for Table 1.

The paper's model, loss and schedule are in :mod:`KsparseAE.ksparse`. Each model is a
named checkpoint of a :class:`common.run.Run` (``run.train``), keyed by the configuration
and by the source of ``ksparse`` (the model, its loss and the schedule hook).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from common.data import Batches
from common.evaluate import features
from common.run import Run
from common.train import History, make_optimizer
from KsparseAE import ksparse
from KsparseAE.config import KsparseConfig
from KsparseAE.ksparse import KSparseAutoencoder, sparsity_schedule, squared_error, with_k


def train_ksparse(run: Run, init: KSparseAutoencoder, k: int, schedule: bool, train: Batches,
                  cfg: KsparseConfig) -> tuple[KSparseAutoencoder, History]:
    """Train a copy of ``init`` at target sparsity ``k``, with or without the sec. 4 schedule; (model, History).

    Every k starts from the same weights (``with_k``: Fig. 1 compares k "from the same
    initialisation"). The model is named ``ksparse_k{k}``, with ``_nosched`` when
    ``schedule`` is off; ``train`` should be built with the same seed for every k, so
    that all see the same batch order.
    """
    name = f"ksparse_k{k}" + ("" if schedule else "_nosched")
    model = with_k(init, k)
    extra = {} if cfg.momentum is None else {"momentum": cfg.momentum}
    opt = make_optimizer(cfg.optimizer, model.parameters(), lr=cfg.lr, **extra)
    hist = run.train(name, model, squared_error, train, cfg.epochs, optimizer=opt,
                     sources=(ksparse,),  # the math; settings are keyed via config
                     config={"data": "mnist", "k": k, "schedule": schedule, "init_std": cfg.init_std},
                     before_step=sparsity_schedule(cfg.epochs) if schedule else None)
    assert all(math.isfinite(v) for v in hist["train/loss"]), name
    return model, hist


def encoded(encode: Callable[[torch.Tensor], torch.Tensor], x_train: torch.Tensor,
            x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) features ``encode(x)`` for the Table 1 classifier, computed in batches without gradients."""
    return torch.as_tensor(features(encode, x_train)), torch.as_tensor(features(encode, x_test))
