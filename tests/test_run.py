"""Run and its named models: Run.train keys, trains, resumes or reloads each model and records its size."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from common import train
from common.data import Chunks
from common.run import Run, config_key, model_sources
# The small model, data and noisy loss that fit's tests train (tests/ is on sys.path under pytest).
from test_train import _data, _model_and_opt, _noisy_loss, _same


def _named(tmp_path, monkeypatch, epochs=4, lr=1e-2, retrain=False, name="ae"):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    run = Run("TestPaper", "smoke", 0, "cpu", retrain=retrain)
    model, opt = _model_and_opt(lr=lr)
    data = _data()
    h = run.train(name, model, _noisy_loss, data.batches(32, seed=0), epochs, optimizer=opt,
                  config={"data": "random8x8", "n": 300}, val=data.batches(100, shuffle=False), progress=False)
    after = torch.rand(3)  # what the notebook draws next must not depend on loaded vs trained
    return run, model, h, after


def test_run_train_loads_a_finished_model_and_retrains_on_change(tmp_path, monkeypatch):
    run, m1, h1, r1 = _named(tmp_path, monkeypatch)
    assert run.status == {"ae": "trained"}
    run, m2, h2, r2 = _named(tmp_path, monkeypatch)
    assert run.status == {"ae": "loaded"}
    assert _same(h2, h1) and torch.equal(r1, r2)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    run, _, h3, _ = _named(tmp_path, monkeypatch, lr=2e-2)  # a changed hyperparameter retrains
    assert run.status == {"ae": "trained"} and h3["train/loss"] != h1["train/loss"]
    run, _, _, _ = _named(tmp_path, monkeypatch, lr=2e-2, retrain=True)
    assert run.status == {"ae": "trained"}


def test_run_train_resumes_an_unfinished_model_to_the_same_history(tmp_path, monkeypatch):
    _, _, full, _ = _named(tmp_path / "a", monkeypatch)
    # stop after 2 of 4 epochs, as a kill would: the 2-epoch checkpoint is unfinished for a 4-epoch key
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path / "b"))
    run = Run("TestPaper", "smoke", 0, "cpu")
    model, opt = _model_and_opt()
    data = _data()
    key = config_key({"data": "random8x8", "n": 300, "seed": 0, "profile": "smoke", "train_examples": 300,
                      "batch_size": 32}, model, opt, _noisy_loss, 4, model_sources(model, _noisy_loss))

    def kill_after_two(m, h):
        if h.epochs == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.fit(model, _noisy_loss, data.batches(32, seed=0), opt, 4, val=data.batches(100, shuffle=False),
                  checkpoint=run.checkpoint("ae"), checkpoint_meta={"key": key}, progress=False,
                  after_epoch=kill_after_two)
    # the hook raised before epoch 2 was saved: the checkpoint holds epoch 1
    assert train.load_checkpoint(run.checkpoint("ae"))["epoch"] == 1
    run, _, resumed, _ = _named(tmp_path / "b", monkeypatch)
    assert run.status == {"ae": "resumed"}
    assert _same(resumed, full)


def test_a_truncated_checkpoint_is_set_aside_and_retrained(tmp_path, monkeypatch):
    run, _, h1, _ = _named(tmp_path, monkeypatch)
    path = run.checkpoint("ae")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="could not be used"):
        run, _, h2, _ = _named(tmp_path, monkeypatch)
    assert run.status == {"ae": "trained"} and _same(h2, h1)
    assert len(list(path.parent.glob("ae.pt.*.bad"))) == 1


def test_a_name_used_twice_in_one_run_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    run = Run("TestPaper", "smoke", 0, "cpu")
    data = _data()
    for i in range(2):
        model, opt = _model_and_opt()
        if i:
            with pytest.raises(ValueError, match="used twice"):
                run.train("ae", model, _noisy_loss, data.batches(32), 1, optimizer=opt, config={}, progress=False)
        else:
            run.train("ae", model, _noisy_loss, data.batches(32), 1, optimizer=opt, config={}, progress=False)


def test_run_train_keys_a_chunked_stream_by_the_data_behind_it(tmp_path, monkeypatch):
    """Chunks report one chunk as n; the key must still change with the training set's size."""
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    statuses = []
    for n in (200, 200, 300):
        run = Run("TestPaper", "smoke", 0, "cpu")
        model, opt = _model_and_opt()
        run.train("ae", model, _noisy_loss, Chunks(_data(n).batches(32, seed=0), 2), 2, optimizer=opt,
                  config={}, progress=False)
        statuses.append(run.status["ae"])
    assert statuses == ["trained", "loaded", "trained"]


def test_a_run_with_tensorboard_on_logs_each_named_model_apart(out_dir, monkeypatch):
    monkeypatch.setenv("AE_TENSORBOARD", "1")
    run = Run("SB_VAE", "smoke", 0, "cpu")
    assert run.tensorboard and not Run("SB_VAE", "smoke", 0, "cpu", tensorboard=False).tensorboard
    model = nn.Sequential(nn.Linear(64, 64))
    run.train("tiny", model, _noisy_loss, _data().batches(32), 2,
              optimizer=train.make_optimizer("adam", model.parameters(), 1e-3), config={}, progress=False)
    assert list((out_dir / "SB_VAE" / "tensorboard" / "smoke" / "tiny").glob("events.out.tfevents.*"))


def _plain_loss(model: nn.Module, x: torch.Tensor, y) -> dict[str, torch.Tensor]:
    """Squared error without noise: with a zero step size every validation score is the same."""
    x = x.flatten(1)
    return {"loss": ((model(x) - x) ** 2).sum(1).mean()}


def test_run_train_records_each_models_epochs_examples_seen_and_early_stop(tmp_path, monkeypatch):
    run, _, h, _ = _named(tmp_path, monkeypatch)
    ae = run.models["ae"]
    assert {k: ae[k] for k in ("epochs", "examples_seen", "best_epoch", "stopped_early", "train_seconds", "status")} \
        == {"epochs": 4, "examples_seen": 1200, "best_epoch": None, "stopped_early": False,
            "train_seconds": round(h.seconds, 1), "status": "trained"}
    assert ae["convergence"] == "too short to tell" and ae["watched"] == "val/loss"  # 4 epochs show no trend
    model, _ = _model_and_opt()
    data = _data()
    # lr 0: validation never improves on epoch 0, so patience 1 stops after epoch 1
    run.train("still", model, _plain_loss, data.batches(32, seed=0), 10,
              optimizer=train.make_optimizer("sgd", model.parameters(), 0.0), config={},
              val=data.batches(100, shuffle=False), best_on="val/loss", patience=1, progress=False)
    still = run.models["still"]
    assert {k: still[k] for k in ("epochs", "examples_seen", "best_epoch", "stopped_early", "status")} \
        == {"epochs": 2, "examples_seen": 600, "best_epoch": 0, "stopped_early": True, "status": "trained"}
    assert still["convergence"] == "converged" and still["why"] == "early stopping fired"
    again, _, _, _ = _named(tmp_path, monkeypatch)  # a loaded model reports the training it had
    assert again.models["ae"] == {**ae, "status": "loaded"}


def test_convergence_reads_early_stopping_and_the_tail_of_the_watched_metric():
    from common.run import convergence
    from common.train import History

    stopped = History({"val/loss": [5.0, 4.0, 4.1, 4.2]}, [1, 2, 3, 4], best_epoch=1, stopped_early=True)
    assert convergence(stopped, "val/loss")["convergence"] == "converged"
    falling = History({"val/loss": [10.0 - i for i in range(10)]}, list(range(10)))
    c = convergence(falling, "val/loss")
    assert c["convergence"] == "still improving" and c["tail_improvement"] == pytest.approx(2.0 / 3.0, abs=1e-4)
    flat = History({"val/loss": [10.0, 5.0, 4.0] + [3.0] * 7 + [2.999]}, list(range(11)))
    assert convergence(flat, "val/loss")["convergence"] == "converged"
    short = History({"train/loss": [3.0, 2.0]}, [1, 2])
    assert convergence(short, "train/loss")["convergence"] == "too short to tell"


def test_the_key_hashes_the_modules_of_the_models_layers_and_loss_and_the_fit_settings(tmp_path, monkeypatch):
    """A shared layer (common.bernoulli's decoder) is in the key without the caller naming it; so is patience."""
    from common import bernoulli
    from common.run import model_sources
    from SB_VAE import sbvae

    found = {m.__name__ for m in model_sources(sbvae.GaussVAE(784, 20, 5), sbvae.negative_bound_loss)}
    assert found == {"SB_VAE.sbvae", "common.bernoulli"}
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    keys = []
    for patience in (1, 2):
        run = Run("KeyTest", "smoke", 0, "cpu")
        model, opt = _model_and_opt()
        data = _data()
        run.train("m", model, _plain_loss, data.batches(32), 1, optimizer=opt, config={},
                  val=data.batches(100, shuffle=False), best_on="val/loss", patience=patience, progress=False)
        keys.append(train.load_checkpoint(run.checkpoint("m"))["key"])
    assert keys[0] != keys[1]
    assert bernoulli.BernoulliDecoder.__module__ == "common.bernoulli"
