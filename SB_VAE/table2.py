"""Table 2 of Nalisnick & Smyth (2017, Sec. 7.2): semi-supervised MNIST, the SB-DGM against M2 (the Gauss-DGM).

The models and Kingma et al. (2014)'s objective are in ``SB_VAE/semisupervised.py``; this module
draws the labelled subsets, pairs labelled with unlabelled minibatches for ``fit``, trains the two
models and scores their classifiers q(y|x) by test error.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from common.data import Batches, Chunks, ImageSet
from common.run import Run
from common.train import History, make_optimizer
from SB_VAE import kumaraswamy, sbvae, semisupervised
from SB_VAE.semisupervised import DeepGenerativeModel, semi_supervised_loss


def labelled_split(data: ImageSet, fraction: float, seed: int, n_classes: int = 10) -> tuple[ImageSet, ImageSet]:
    """(labelled, unlabelled): ``fraction`` of ``data`` keeps its labels, the same number from each class
    (as Kingma et al. draw theirs), picked with ``seed``; the rest is unlabelled (its labels dropped)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    per_class = round(fraction * len(data) / n_classes)
    if per_class < 1:
        raise ValueError(f"{fraction:.2%} of {len(data)} digits leaves no label per class")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    y = data.y[order]
    chosen = torch.cat([order[y == c][:per_class] for c in range(n_classes)])
    if len(chosen) < per_class * n_classes:
        raise ValueError(f"some class has fewer than {per_class} digits")
    keep = torch.ones(len(data), dtype=torch.bool)
    keep[chosen] = False
    labelled = data.subset(chosen.sort().values, name=f"{data.name}-labelled-{fraction:g}")
    unlabelled = ImageSet(data.x[keep], None, f"{data.name}-unlabelled-{fraction:g}")
    return labelled, unlabelled


class PairedBatches:
    """For ``fit``: each step yields an unlabelled minibatch as x and a labelled one as y = (x_l, y_l).

    An epoch is one pass over the unlabelled digits; the labelled stream (:class:`~common.data.Chunks`)
    cycles through the few labels as often as needed, reshuffled on every pass. Both positions
    are in :meth:`state_dict`, so a resumed run sees the same pairs.
    """

    def __init__(self, unlabelled: Batches, labelled: Batches) -> None:
        self.unlabelled = unlabelled
        self.labelled = Chunks(labelled, len(unlabelled))

    @property
    def n(self) -> int:
        return self.unlabelled.n

    @property
    def batch_size(self) -> int:
        return self.unlabelled.batch_size

    @property
    def device(self) -> torch.device:
        return self.unlabelled.device

    def __len__(self) -> int:
        return len(self.unlabelled)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]]:
        for (xu, _), (xl, yl) in zip(self.unlabelled, self.labelled):
            yield xu, (xl, yl)

    def state_dict(self) -> dict:
        return {"unlabelled": self.unlabelled.state_dict(), "labelled": self.labelled.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.unlabelled.load_state_dict(state["unlabelled"])
        self.labelled.load_state_dict(state["labelled"])


def dgm_loss(n_labelled: int, n_unlabelled: int, alpha: float) -> Callable:
    """``fit`` loss: Kingma et al.'s objective on a :class:`PairedBatches` step (y = (x_l, y_l)); on labelled
    validation batches (y = labels) the classifier's cross-entropy as ``loss`` and its error rate as ``err``."""

    def semi_supervised(model: DeepGenerativeModel, x: torch.Tensor, y) -> dict[str, torch.Tensor]:
        if isinstance(y, tuple):
            return semi_supervised_loss(model, y[0], y[1], x, n_labelled, n_unlabelled, alpha)
        logits = model.class_logits(x)
        return {"loss": F.cross_entropy(logits, y), "err": (logits.argmax(1) != y).float().mean()}

    return semi_supervised


def train_dgm(run: Run, name: str, latent: str, labelled: ImageSet, unlabelled: ImageSet, val_set: ImageSet,
              epochs: int, patience: int | None, alpha_factor: float, hidden: int, K: int, alpha0: float,
              kl_terms: int, lr: float, betas: tuple[float, float], batch_size: int,
              device: torch.device | str) -> tuple[DeepGenerativeModel, History]:
    """Train (or reload) the ``latent`` ("sb" or "gauss") deep generative model called ``name``.

    alpha = ``alpha_factor`` x N (Kingma et al.: 0.1 N, N all training digits); the epoch of least
    validation error of q(y|x) is kept, with early stopping after ``patience`` epochs (None: every
    epoch runs). The optimiser and batch size are the SB-VAE's. The model is left in eval mode.
    """
    model = DeepGenerativeModel(latent, 784, hidden, K, alpha0=alpha0, kl_terms=kl_terms).to(device)
    n_l, n_u = len(labelled), len(unlabelled)
    alpha = alpha_factor * (n_l + n_u)
    stream = PairedBatches(unlabelled.batches(batch_size, device, seed=run.seed),
                           labelled.batches(batch_size, device, seed=run.seed + 1))
    opt = make_optimizer("adam", model.parameters(), lr=lr, betas=betas)
    hist = run.train(name, model, dgm_loss(n_l, n_u, alpha), stream, epochs, optimizer=opt,
                     sources=(semisupervised, sbvae, kumaraswamy),
                     config=dict(data=labelled.name, n_labelled=n_l, n_unlabelled=n_u, alpha=alpha, lr=lr,
                                 betas=betas, n_val=len(val_set)),
                     val=val_set.batches(1000, device, shuffle=False), best_on="val/err", patience=patience)
    return model.eval(), hist
