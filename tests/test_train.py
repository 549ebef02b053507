"""fit(): seeding, resume, the NaN guard, atomic checkpoints, device and optimizer choice."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from common import train
from common.data import ImageSet


def _data(n: int = 300) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    return ImageSet(torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8), torch.arange(n) % 3)


def _noisy_loss(model: nn.Module, x: torch.Tensor, y) -> dict[str, torch.Tensor]:
    """Squared error of a noisy autoencoder: uses the global RNG, as VAEs and DAEs do."""
    x = x.flatten(1)
    rec = ((model(x + 0.1 * torch.randn_like(x)) - x) ** 2).sum(1).mean()
    l2 = sum((p ** 2).sum() for p in model.parameters()) * 1e-4
    return {"loss": rec + l2, "rec": rec, "l2": l2}


def _run(epochs: int, checkpoint: Path | None = None, seed: int = 0) -> train.History:
    train.seed_everything(seed)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
    opt = train.make_optimizer("adam", model.parameters(), 1e-2)
    data = _data()
    return train.fit(model, _noisy_loss, data.batches(32, seed=seed), opt, epochs,
                     val=data.batches(100, shuffle=False), checkpoint=checkpoint, progress=False)


def test_history_records_terms_per_example():
    h = _run(3)
    assert set(h.records) == {f"{s}/{k}" for s in ("train", "val") for k in ("loss", "rec", "l2")}
    assert h.samples == [300, 600, 900] and h.epochs == 3
    assert h["train/loss"][-1] < h["train/loss"][0]
    # the total is the sum of its terms, as recorded
    assert h.last("train/loss") == pytest.approx(h.last("train/rec") + h.last("train/l2"), rel=1e-5)


def test_drop_last_counts_only_the_examples_seen():
    model = nn.Sequential(nn.Linear(64, 64))
    h = train.fit(model, _noisy_loss, _data(300).batches(32, drop_last=True),
                  train.make_optimizer("adam", model.parameters(), 1e-3), 2, progress=False)
    assert h.samples == [288, 576]  # 9 full batches of 32 per epoch


def test_after_epoch_sees_each_recorded_epoch():
    seen = []
    model = nn.Sequential(nn.Linear(64, 64))
    data = _data()
    train.fit(model, _noisy_loss, data.batches(32), train.make_optimizer("adam", model.parameters(), 1e-3), 3,
              val=data.batches(100, shuffle=False), progress=False,
              after_epoch=lambda m, h: seen.append((m is model, h.epochs, len(h["val/loss"]))))
    assert seen == [(True, 1, 1), (True, 2, 2), (True, 3, 3)]


def test_same_seed_same_history_other_seed_differs():
    assert _run(2, seed=1).records == _run(2, seed=1).records
    assert _run(2, seed=1).records != _run(2, seed=2).records


def test_resume_equals_uninterrupted(tmp_path):
    full = _run(4)
    ckpt = tmp_path / "ck.pt"
    _run(2, checkpoint=ckpt)
    assert train.load_checkpoint(ckpt)["epoch"] == 2
    resumed = _run(4, checkpoint=ckpt)  # a fresh model and optimizer, restored from the file
    assert resumed.records == full.records and resumed.samples == full.samples
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary files left


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    train.save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    def broken_save(obj, f):
        Path(f).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train.save_checkpoint(path, {"epoch": 2})
    assert train.load_checkpoint(path)["epoch"] == 1  # the last good checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_nan_guard_names_step_and_term(tmp_path):
    calls = {"n": 0}

    def loss_with_bad_kl(model, x, y):
        terms = _noisy_loss(model, x, y)
        calls["n"] += 1
        kl = torch.tensor(float("nan")) if calls["n"] == 13 else torch.tensor(0.0)
        return {"loss": terms["loss"] + 0 * kl.nan_to_num(), "rec": terms["rec"], "kl": kl}

    model = nn.Sequential(nn.Linear(64, 64))
    opt = train.make_optimizer("adam", model.parameters(), 1e-3)
    ckpt = tmp_path / "ck.pt"
    with pytest.raises(train.NonFiniteLossError) as e:
        train.fit(model, loss_with_bad_kl, _data().batches(32), opt, 5, checkpoint=ckpt, progress=False,
                  check_every=4)
    # step 12 is the 13th call: epoch 1 (10 batches per epoch), batch 2
    assert "'kl'" in str(e.value) and "step 12 " in str(e.value) and "epoch 1, batch 2" in str(e.value)
    assert train.load_checkpoint(ckpt)["epoch"] == 1  # the epoch before the NaN is kept


def test_nan_in_the_minimised_loss_is_caught():
    model = nn.Sequential(nn.Linear(64, 64))

    def inf_loss(model, x, y):
        return {"loss": (model(x.flatten(1)) * float("inf")).sum()}

    with pytest.raises(train.NonFiniteLossError, match="'loss' became NaN or infinite at step 0 "):
        train.fit(model, inf_loss, _data().batches(32), train.make_optimizer("sgd", model.parameters(), 0.1), 1,
                  progress=False)


def test_pick_device_and_optimizer_errors():
    assert train.pick_device("cpu") == torch.device("cpu")
    assert train.pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        train.make_optimizer("adamax", [nn.Parameter(torch.zeros(1))], 0.1)
    assert isinstance(train.make_optimizer("adagrad", [nn.Parameter(torch.zeros(1))], 0.1), torch.optim.Adagrad)


def test_bf16_option_trains():
    train.seed_everything(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
    h = train.fit(model, _noisy_loss, _data().batches(32), train.make_optimizer("adam", model.parameters(), 1e-2),
                  3, bf16=True, progress=False)
    assert h["train/loss"][-1] < h["train/loss"][0]
    assert next(model.parameters()).dtype == torch.float32  # weights stay float32 under autocast
