"""Each speed optimisation against the plain computation it replaces: same losses, same gradients.

Speed itself is measured by ``benchmarks/step_floor.py`` (ratios printed from one run), never here.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from common import train
from common.data import ImageSet


def _loss(model: nn.Module, x: torch.Tensor, y) -> dict[str, torch.Tensor]:
    x = x.flatten(1)
    rec = ((model(x + 0.1 * torch.randn_like(x)) - x) ** 2).sum(1).mean()
    l2 = sum((p ** 2).sum() for p in model.parameters()) * 1e-4
    return {"loss": rec + l2, "rec": rec, "l2": l2}


def test_fit_epoch_means_equal_a_plain_loop_that_reads_every_step():
    """fit keeps the terms on the device and sums them once per window; a plain loop reads each step's .item()."""
    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (250, 1, 8, 8), generator=g, dtype=torch.uint8), None)

    def model_and_opt():
        train.seed_everything(0)
        m = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
        return m, train.make_optimizer("adam", m.parameters(), 1e-2)

    m, opt = model_and_opt()
    hist = train.fit(m, _loss, data.batches(32, seed=1), opt, 2, progress=False, check_every=3)

    m2, opt2 = model_and_opt()
    batches = data.batches(32, seed=1)
    plain = []
    for _ in range(2):
        sums, seen = {}, 0
        for x, y in batches:
            terms = _loss(m2, x, y)
            opt2.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt2.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.item() * len(x)
            seen += len(x)
        plain.append({k: v / seen for k, v in sums.items()})
    for epoch, means in enumerate(plain):
        for k, v in means.items():
            assert hist[f"train/{k}"][epoch] == pytest.approx(v, rel=1e-5)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), m2.parameters()))


@pytest.mark.parametrize("bad_step", [0, 2, 3, 7])
def test_the_nan_guard_names_the_first_bad_step_wherever_it_falls_in_the_window(bad_step):
    data = ImageSet(torch.zeros(320, 1, 8, 8, dtype=torch.uint8), None)
    model = nn.Linear(64, 64)
    calls = {"n": 0}

    def loss(m, x, y):
        calls["n"] += 1
        rec = (m(x.flatten(1)) ** 2).mean()
        kl = torch.tensor(float("inf") if calls["n"] - 1 >= bad_step else 0.0)
        return {"loss": rec, "kl": kl}

    with pytest.raises(train.NonFiniteLossError, match=f"'kl' became NaN or infinite at step {bad_step} "):
        train.fit(model, loss, data.batches(32), train.make_optimizer("sgd", model.parameters(), 0.1), 2,
                  progress=False, check_every=3)


def test_batches_slice_the_same_rows_as_fancy_indexing():
    """Batches gathers each minibatch with index_select; x[idx] is the plain form."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (103, 1, 5, 5), generator=g, dtype=torch.uint8)
    y = torch.arange(103)
    batches = ImageSet(x, y).batches(10, seed=3)
    order = torch.randperm(103, generator=torch.Generator().manual_seed(3))
    for b, (xb, yb) in enumerate(batches):
        idx = order[b * 10:(b + 1) * 10]
        assert torch.equal(xb, x[idx].float() / 255) and torch.equal(yb, y[idx])
