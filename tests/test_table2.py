"""Table 2's data and training plumbing (SB_VAE/table2.py): balanced labelled subsets, paired minibatches that resume
exactly, and the loss's two modes."""
from __future__ import annotations

import pytest
import torch

from common.data import Batches, ImageSet
from SB_VAE.semisupervised import DeepGenerativeModel
from SB_VAE.table2 import PairedBatches, dgm_loss, labelled_split


def _digits(n: int = 1000) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    return ImageSet(torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8),
                    torch.arange(n) % 10, "toy")


def test_the_labelled_share_is_class_balanced_and_disjoint_from_the_unlabelled_rest():
    data = _digits()
    labelled, unlabelled = labelled_split(data, 0.05, seed=3)
    assert len(labelled) == 50 and len(unlabelled) == 950 and unlabelled.y is None
    assert torch.bincount(labelled.y, minlength=10).tolist() == [5] * 10
    rows = {tuple(r.flatten()[:16].tolist()) for r in labelled.x}
    assert not rows & {tuple(r.flatten()[:16].tolist()) for r in unlabelled.x}
    again, _ = labelled_split(data, 0.05, seed=3)
    assert torch.equal(again.x, labelled.x)
    with pytest.raises(ValueError, match="no label per class"):
        labelled_split(data, 0.001, seed=0)


def test_paired_batches_resume_to_the_same_pairs():
    data = _digits(400)
    labelled, unlabelled = labelled_split(data, 0.25, seed=0)

    def stream():
        return PairedBatches(unlabelled.batches(50, seed=1), labelled.batches(40, seed=2))

    whole = stream()
    first = [(xu.sum().item(), yl.tolist()) for xu, (xl, yl) in whole]
    second = [(xu.sum().item(), yl.tolist()) for xu, (xl, yl) in whole]
    resumed = stream()
    list(resumed)
    state = resumed.state_dict()
    fresh = stream()
    fresh.load_state_dict(state)
    assert [(xu.sum().item(), yl.tolist()) for xu, (xl, yl) in fresh] == second != first
    assert len(whole) == 6 and all(len(yl) == 40 for _, yl in second)   # 300 unlabelled / 50; labels cycle


def test_the_loss_trains_on_pairs_and_scores_the_classifier_on_labelled_batches():
    torch.manual_seed(0)
    model = DeepGenerativeModel("gauss", 784, 32, 4)
    loss = dgm_loss(100, 900, 0.1 * 1000)
    x = torch.rand(8, 1, 28, 28)
    y = torch.arange(8) % 10
    train = loss(model, x, (x, y))
    assert set(train) == {"loss", "labelled", "unlabelled", "ce"}
    val = loss(model, x, y)
    assert set(val) == {"loss", "err"} and 0 <= float(val["err"]) <= 1
