"""fit(): seeding, resume, the NaN guard, atomic checkpoints, device and optimizer choice."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from common import train
from common.data import ImageSet



def _same(a: train.History, b: train.History) -> bool:
    """Equal histories: every recorded term, sample count, best epoch and stop; wall-clock seconds aside."""
    da, db = a.to_dict(), b.to_dict()
    return {k: v for k, v in da.items() if k != "seconds"} == {k: v for k, v in db.items() if k != "seconds"}

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


def test_bf16_option_trains(monkeypatch):
    monkeypatch.setattr(train, "native_bf16", lambda device: True)  # autocast runs, even where it is emulated
    train.seed_everything(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
    h = train.fit(model, _noisy_loss, _data().batches(32), train.make_optimizer("adam", model.parameters(), 1e-2),
                  3, bf16=True, progress=False)
    assert h["train/loss"][-1] < h["train/loss"][0]
    assert next(model.parameters()).dtype == torch.float32  # weights stay float32 under autocast


def test_bf16_without_native_support_warns_and_trains_in_float32(monkeypatch):
    seen = []
    real = torch.autocast

    def spy(device_type, dtype=None, enabled=True, **kw):
        seen.append(enabled)
        return real(device_type, dtype=dtype, enabled=enabled, **kw)

    monkeypatch.setattr(train, "native_bf16", lambda device: False)
    monkeypatch.setattr(train.torch, "autocast", spy)
    model = nn.Sequential(nn.Linear(64, 64))
    with pytest.warns(UserWarning, match="no native bfloat16.*training in float32"):
        train.fit(model, _noisy_loss, _data().batches(100), train.make_optimizer("adam", model.parameters(), 1e-3),
                  1, bf16=True, progress=False)
    assert seen and not any(seen)  # autocast was never enabled


# ---------------------------------------------------------------------------
# best_on / patience (named models through Run.train: tests/test_run.py)
# ---------------------------------------------------------------------------
def _model_and_opt(seed: int = 0, lr: float = 1e-2):
    train.seed_everything(seed)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
    return model, train.make_optimizer("adam", model.parameters(), lr)


def test_best_on_restores_the_best_epoch_and_patience_stops_early():
    model, opt = _model_and_opt(lr=0.5)  # a step size this large makes validation jump about
    data = _data()
    h = train.fit(model, _noisy_loss, data.batches(32), opt, 12, val=data.batches(100, shuffle=False),
                  progress=False, best_on="val/rec", patience=3)
    best = min(range(h.epochs), key=lambda i: h["val/rec"][i])
    assert h.best_epoch == best
    assert h.epochs == 12 or h.epochs - 1 - best == 3  # stopped 3 epochs after the best one
    again = train.evaluate_terms(model, _noisy_loss, data.batches(100, shuffle=False))
    assert again["rec"] == pytest.approx(h["val/rec"][best], rel=0.05)  # noisy loss: same weights, new noise


def test_patience_without_best_on_is_an_error():
    model, opt = _model_and_opt()
    with pytest.raises(ValueError, match="best_on"):
        train.fit(model, _noisy_loss, _data().batches(32), opt, 2, patience=1, progress=False)


def _scheduled_loss(model: nn.Module, x: torch.Tensor, y) -> dict[str, torch.Tensor]:
    """``_noisy_loss`` shifted by the model's ``offset``: a schedule that makes early epochs look best."""
    terms = _noisy_loss(model, x, y)
    return {**terms, "rec": terms["rec"] + model.offset}


def _offset_until(epoch_done: int):
    def before(model: nn.Module, epoch: int) -> None:
        model.offset = -1e3 if epoch < epoch_done else 0.0
    return before


@pytest.mark.parametrize("best_from", [0, 4])
def test_best_from_leaves_the_scheduled_epochs_out_of_the_best_and_of_patience(best_from):
    model, opt = _model_and_opt()
    data = _data()
    h = train.fit(model, _scheduled_loss, data.batches(32), opt, 12, val=data.batches(100, shuffle=False),
                  progress=False, best_on="val/rec", patience=2, best_from=best_from,
                  before_step=_offset_until(4))
    if best_from == 0:      # the schedule's low values win, and patience runs out during the schedule
        assert h.best_epoch < 4 and h.stopped_early and h.epochs == h.best_epoch + 1 + 2
    else:                   # judged from epoch 4 on: the best is a real one and patience counts from there
        assert h.best_epoch >= 4 and h.epochs >= 4 + 2
        assert h.best_epoch == min(range(4, h.epochs), key=lambda i: h["val/rec"][i])
        assert h.stopped_early == (h.epochs < 12)


def test_best_from_needs_best_on_and_an_epoch_in_range():
    model, opt = _model_and_opt()
    with pytest.raises(ValueError, match="best_from needs best_on"):
        train.fit(model, _noisy_loss, _data().batches(32), opt, 2, best_from=1, progress=False)
    with pytest.raises(ValueError, match=r"best_from must be an epoch in \[0, 2\)"):
        train.fit(model, _noisy_loss, _data().batches(32), opt, 2, best_on="train/loss", best_from=2,
                  progress=False)


@pytest.mark.parametrize("stop_after", [1, 2, 4])
def test_fit_on_chunks_resumes_to_the_same_history(tmp_path, stop_after):
    """Chunks checkpoint their position: a run stopped after any epoch resumes to the uninterrupted history."""
    from common.data import Chunks

    def run(checkpoint=None, after_epoch=None):
        model, opt = _model_and_opt()
        h = train.fit(model, _noisy_loss, Chunks(_data(100).batches(16, seed=1), 4), opt, 5, checkpoint=checkpoint,
                      progress=False, after_epoch=after_epoch)  # 6 batches per pass: epochs straddle passes
        return h, model

    full, m_full = run()

    def stop(m, h):
        if h.epochs == stop_after + 1:
            raise KeyboardInterrupt  # before epoch stop_after + 1 is saved, as a kill would

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "c.pt", stop)
    assert train.load_checkpoint(tmp_path / "c.pt")["epoch"] == stop_after
    resumed, m_resumed = run(tmp_path / "c.pt")
    assert _same(resumed, full)
    assert all(torch.equal(a, b) for a, b in zip(m_full.state_dict().values(), m_resumed.state_dict().values()))


def test_log_dir_writes_every_history_term_per_epoch_that_tensorboard_reads_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train.seed_everything(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
    data = _data()
    h = train.fit(model, _noisy_loss, data.batches(32), train.make_optimizer("adam", model.parameters(), 1e-2), 3,
                  val=data.batches(100, shuffle=False), progress=False, log_dir=tmp_path / "tb")
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert set(events.Tags()["scalars"]) == set(h.records)
    for key, values in h.records.items():
        logged = events.Scalars(key)
        assert [e.step for e in logged] == h.samples
        assert [e.value for e in logged] == pytest.approx(values, rel=1e-6)


def test_without_log_dir_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = nn.Sequential(nn.Linear(64, 64))
    train.fit(model, _noisy_loss, _data().batches(32), train.make_optimizer("adam", model.parameters(), 1e-3), 1,
              progress=False)
    assert not any(tmp_path.iterdir())  # no runs/ folder: TensorBoard is off by default


def test_adagrad_is_fused_on_the_cpu_only():
    """The fused Adagrad kernel is CPU-only: on another device it was accepted when built and failed at the first
    step (a CUDA paper dry run). The meta device stands in for a GPU here; Adam keeps its fused kernel."""
    from common.train import make_optimizer
    cpu = torch.nn.Parameter(torch.zeros(3))
    other = torch.nn.Parameter(torch.zeros(3, device="meta"))
    assert make_optimizer("adagrad", [cpu], 0.1).defaults["fused"] is True
    off_cpu = make_optimizer("adagrad", [other], 0.1).defaults
    assert not off_cpu.get("fused") and off_cpu.get("foreach") is True
