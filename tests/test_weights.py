"""Published weights (common.weights): a published model loads instead of training, with the same weights,
history and random draws after it; a changed key trains; a damaged file stops with a clear error; and every
file committed in the repository matches its manifest and the run that made it."""
from __future__ import annotations

import json

import pytest
import torch

from common.paths import REPO_ROOT
from common.weights import MANIFEST, PublishedWeightsError, check_all, publish, read_manifest, verify, weights_dir
from common.run import Run
from test_train import _data, _model_and_opt, _noisy_loss


def _named(tmp_path, monkeypatch, lr=1e-2, retrain=False, name="ae"):
    """A long-profile run of one small model (published weights belong to committed long or paper runs)."""
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    run = Run("TestPaper", "long", 0, "cpu", retrain=retrain)
    model, opt = _model_and_opt(lr=lr)
    batches = _data().batches(32, seed=0)
    h = run.train(name, model, _noisy_loss, batches, 4, optimizer=opt, config={"data": "random8x8", "n": 300},
                  progress=False)
    after = torch.rand(3)  # what the notebook draws next must not depend on published vs trained
    run.batches_after = batches.state_dict()["generator"]
    return run, model, h, after


def _publish_one(tmp_path, monkeypatch):
    run, model, history, after = _named(tmp_path, monkeypatch)
    folder = publish("TestPaper", "long")
    # a fresh clone has no checkpoints, only the published files
    for ckpt in (run.out / "checkpoints").rglob("*.pt"):
        ckpt.unlink()
    return run, model, history, after, folder


def test_a_published_model_loads_with_its_history_and_the_draws_that_followed_training(tmp_path, monkeypatch,
                                                                                         capsys):
    run, model, history, after, folder = _publish_one(tmp_path, monkeypatch)
    assert folder == weights_dir("TestPaper", "long") and (folder / MANIFEST).is_file()
    state = torch.load(folder / "ae.pt", weights_only=True)   # a plain state_dict, nothing else
    assert set(state) == set(model.state_dict())
    run2, model2, history2, after2 = _named(tmp_path, monkeypatch)
    assert run2.status == {"ae": "published"} and "ae: published" in capsys.readouterr().out
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    assert history2.to_dict() == history.to_dict() and torch.equal(after, after2)
    assert torch.equal(run2.batches_after, run.batches_after)      # the batch stream is where training left it
    assert run2.models["ae"]["key"] == read_manifest(folder)["ae"]["key"]


def test_retrain_or_a_changed_key_ignores_published_weights(tmp_path, monkeypatch):
    _publish_one(tmp_path, monkeypatch)
    run, _, _, _ = _named(tmp_path, monkeypatch, retrain=True)
    assert run.status == {"ae": "trained"}
    for ckpt in (run.out / "checkpoints").rglob("*.pt"):
        ckpt.unlink()
    run, _, _, _ = _named(tmp_path, monkeypatch, lr=2e-2)        # other settings, other key: it trains
    assert run.status == {"ae": "trained"}


def test_a_damaged_or_missing_published_file_names_the_file_and_the_expected_checksum(tmp_path, monkeypatch):
    _, _, _, _, folder = _publish_one(tmp_path, monkeypatch)
    expected = read_manifest(folder)["ae"]["sha256"]
    blob = bytearray((folder / "ae.pt").read_bytes())
    blob[-20] ^= 0xFF
    (folder / "ae.pt").write_bytes(bytes(blob))
    with pytest.raises(PublishedWeightsError, match=rf"ae\.pt has SHA-256 [0-9a-f]{{64}}, the manifest expects {expected}"):
        _named(tmp_path, monkeypatch)
    (folder / "ae.pt").unlink()
    with pytest.raises(PublishedWeightsError, match=rf"ae\.pt is missing \(expected SHA-256 {expected}\)"):
        verify(folder, "ae", read_manifest(folder)["ae"])


def test_an_unfinished_checkpoint_or_a_standard_run_is_never_published(tmp_path, monkeypatch):
    run, _, _, _ = _named(tmp_path, monkeypatch)
    path = run.checkpoint("ae")
    state = torch.load(path, weights_only=True)
    torch.save({**state, "finished": False}, path)
    with pytest.raises(ValueError, match="not finished"):
        publish("TestPaper", "long")
    with pytest.raises(ValueError, match="only the committed runs of long, paper publish"):
        publish("TestPaper", "standard")


def test_publishing_one_model_keeps_the_others_and_an_oversized_publish_writes_nothing(tmp_path, monkeypatch):
    _named(tmp_path, monkeypatch, name="ae")
    _named(tmp_path, monkeypatch, name="other", lr=2e-2)
    folder = publish("TestPaper", "long", names=["ae"])
    publish("TestPaper", "long", names=["other"])
    assert set(read_manifest(folder)) == {"ae", "other"}
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(ValueError, match="over the 0 MiB limit"):
        publish("TestPaper", "long", names=["ae"], limit_bytes=100)
    assert sorted(p.name for p in folder.iterdir()) == before


_COMMITTED = sorted(REPO_ROOT.glob(f"*/*/weights/{MANIFEST}"))


@pytest.mark.parametrize("manifest", _COMMITTED, ids=[str(m.parent.relative_to(REPO_ROOT)) for m in _COMMITTED])
def test_every_committed_weight_matches_its_checksum_loads_plainly_and_is_the_committed_runs_model(manifest):
    folder = manifest.parent
    paper, profile = folder.parent.parent.name, folder.parent.name
    results = sorted(folder.parent.glob("results*.json"))
    assert results, f"{folder}: published weights without the committed {profile} run that made them"
    keys = {name: m.get("key") for r in results for name, m in json.loads(r.read_text())["models"].items()}
    total = 0
    for name, entry in read_manifest(folder).items():
        verify(folder, name, entry)
        state = torch.load(folder / entry["file"], weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        assert keys.get(name) == entry["key"], f"{paper} {profile} {name}: not the key of the committed run's model"
        total += entry["bytes"]
    assert total <= 50 * 2**20


def test_check_all_walks_every_manifest(tmp_path, monkeypatch):
    _publish_one(tmp_path / "one", monkeypatch)     # under AE_OUTPUT_DIR: <tmp>/one/TestPaper/weights/
    assert check_all(tmp_path) == ["one/TestPaper/weights/ae"]
    assert check_all(REPO_ROOT) == [f"{m.parent.relative_to(REPO_ROOT)}/{n}" for m in _COMMITTED
                                    for n in read_manifest(m.parent)]
