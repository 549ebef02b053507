"""The `paper` dry run: capped training, its timing log, where it writes, and what refuses it."""
from __future__ import annotations

import json

import nbformat
import pytest
import torch
from torch import nn

from common import dryrun, reproduce, train
from common.data import ImageSet
from common.paths import REPO_ROOT, output_root, select_profile
from common.run import Run
from common.report import Claim, Results, build_scorecard


def _fit(epochs: int, checkpoint=None, n: int = 320) -> train.History:
    train.seed_everything(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
    data = ImageSet(torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(0),
                                  dtype=torch.uint8))
    loss = lambda m, x, y: {"loss": ((m(x.flatten(1)) - x.flatten(1)) ** 2).sum(1).mean()}  # noqa: E731
    return train.fit(model, loss, data.batches(16), train.make_optimizer("adam", model.parameters(), 1e-2), epochs,
                     val=data.batches(160, shuffle=False), checkpoint=checkpoint, progress=False, desc="tiny")


@pytest.fixture()
def capped(monkeypatch):
    monkeypatch.setenv(dryrun.MAX_STEPS_ENV, "9")
    monkeypatch.setattr(dryrun, "LOG", dryrun.Log())
    return dryrun.LOG


def test_a_capped_fit_takes_at_most_max_steps_over_three_epochs_and_logs_its_rate(capped, tmp_path):
    h = _fit(50, checkpoint=tmp_path / "m.pt")            # 20 steps an epoch uncapped
    assert h.epochs == 3 and h.samples == [48, 96, 144]    # 3 steps of 16 per epoch: 9 steps in all
    assert len(h["val/loss"]) == 3                          # validation still runs every epoch
    (t,) = capped.training
    assert (t.name, t.steps, t.epochs_run, t.planned_steps, t.planned_epochs) == ("tiny", 9, 3, 1000, 50)
    assert t.seconds_per_step > 0 and t.val_seconds_per_epoch > 0
    assert t.estimate_s == pytest.approx(1000 * t.seconds_per_step + 50 * t.val_seconds_per_epoch)
    # the capped checkpoint is finished and stopped: a second call loads it and trains nothing more
    again = _fit(50, checkpoint=tmp_path / "m.pt")
    assert again.samples == h.samples and len(capped.training) == 1


def test_without_a_cap_fit_trains_every_step_and_logs_nothing(monkeypatch):
    monkeypatch.delenv(dryrun.MAX_STEPS_ENV, raising=False)
    monkeypatch.setattr(dryrun, "LOG", dryrun.Log())
    h = _fit(2)
    assert h.samples == [320, 640] and not dryrun.LOG.training
    assert not dryrun.active() and dryrun.summary() is None and dryrun.banner() == ""


@pytest.mark.parametrize("cap, epochs, samples", [(10, 50, [48, 96, 144]), (1, 50, [16]), (4, 2, [32, 64])])
def test_the_cap_is_never_exceeded(capped, monkeypatch, cap, epochs, samples):
    """At most max_steps steps in all, over at most 3 epochs, however the cap divides."""
    monkeypatch.setenv(dryrun.MAX_STEPS_ENV, str(cap))
    assert _fit(epochs).samples == samples                # 16 examples a step
    assert capped.training[0].steps == samples[-1] // 16 <= cap


def test_bad_caps_are_refused_with_the_variable_named(monkeypatch):
    for bad in ("abc", "0", "-3"):
        monkeypatch.setenv(dryrun.MAX_STEPS_ENV, bad)
        with pytest.raises(ValueError, match=r"\$AE_MAX_STEPS=.* is not a positive whole number"):
            dryrun.max_steps()


def test_eval_size_cuts_only_when_capped_and_says_so(monkeypatch):
    monkeypatch.setattr(dryrun, "LOG", dryrun.Log())
    monkeypatch.delenv(dryrun.MAX_EVAL_ENV, raising=False)
    assert dryrun.eval_size("test digits", 10_000) == 10_000 and not dryrun.LOG.evaluations
    monkeypatch.setenv(dryrun.MAX_EVAL_ENV, "500")
    assert dryrun.eval_size("test digits", 10_000) == 500 and dryrun.eval_size("pairs", 64) == 64
    assert dryrun.eval_size("test digits", 10_000) == 500   # the same cut again is listed once
    assert [(e.what, e.full, e.used) for e in dryrun.LOG.evaluations] == [("test digits", 10_000, 500)]


def test_a_dry_run_writes_under_build(monkeypatch):
    monkeypatch.delenv("AE_OUTPUT_DIR", raising=False)
    assert output_root("SB_VAE", "paper") == REPO_ROOT / "SB_VAE" / "paper"   # beside the standard run
    assert output_root("SB_VAE", "standard") == REPO_ROOT / "SB_VAE"
    monkeypatch.setenv(dryrun.MAX_STEPS_ENV, "5")
    assert output_root("SB_VAE", "paper") == REPO_ROOT / "build" / "paper-check" / "SB_VAE"
    assert output_root("SB_VAE", "standard").is_relative_to(REPO_ROOT / "build")


def test_the_scorecard_refuses_dry_run_results(tmp_path):
    r = Results("SB_VAE", "t", "c", "s", "paper", "cpu", 0, 1.0, claims=[Claim("c1", "s", "p", "o", "k", "reproduced")],
                notebook="SB_VAE.ipynb", dry_run={"max_steps": 20, "max_eval": 500, "training": [], "evaluations": []})
    with pytest.raises(ValueError, match="dry run.*cannot be scored: SB_VAE/SB_VAE.ipynb"):
        build_scorecard([r], tmp_path / "SCORECARD.md")
    assert not (tmp_path / "SCORECARD.md").exists()


def test_estimate_is_paper_steps_times_the_measured_rate_plus_the_rest():
    record = {"training": [
        {"name": "a", "planned_steps": 1000, "planned_epochs": 10, "steps": 20, "epochs_run": 3,
         "seconds_per_step": 0.01, "val_seconds_per_epoch": 0.5},
        {"name": "b", "planned_steps": 500, "planned_epochs": 5, "steps": 20, "epochs_run": 3,
         "seconds_per_step": 0.02, "val_seconds_per_epoch": 0.0}], "evaluations": [{"what": "x", "full": 10, "used": 5}]}
    e = dryrun.estimate(record, runtime_s=100.0)
    assert e["models"] == 2 and e["paper_steps"] == 1500 and e["evaluations_cut"] == 1
    assert e["training_s"] == pytest.approx(1000 * 0.01 + 10 * 0.5 + 500 * 0.02)
    assert e["rest_s"] == pytest.approx(100.0 - (20 * 0.01 + 3 * 0.5 + 20 * 0.02))


def test_bad_device_and_profile_names_give_one_line_errors_with_the_choices():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available on this machine.*choose 'auto' or 'cpu'"):
            train.pick_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu'; choose one of auto, cpu, cuda, cuda:N"):
        train.pick_device("gpu")
    assert train.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"unknown profile 'papr'; choose one of \['paper', 'standard'\]"):
        select_profile("papr", {"standard": {}, "paper": {}})
    with pytest.raises(ValueError, match="unknown profile 'fast'; choose one of smoke, standard, long, paper"):
        Run("SB_VAE", "fast", 0, "cpu")
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "fast"])


_DRY_NOTEBOOK = """\
import torch
from torch import nn
from common import dryrun
from common.data import ImageSet
from common.run import Run
from common.report import Claim, finish, verdict
from common.train import make_optimizer
run = Run("SB_VAE", profile, 0, "cpu")
model = nn.Linear(4, 4)
data = ImageSet(torch.zeros(64, 1, 2, 2, dtype=torch.uint8))
loss = lambda m, x, y: {"loss": m(x.flatten(1)).pow(2).mean()}
run.train("m", model, loss, data.batches(8), 100, optimizer=make_optimizer("adam", model.parameters(), 1e-3),
          config={}, progress=False)
n = dryrun.eval_size("test points", 10000)
finish(run, "T", "c", "s", [Claim("c1", "s", "p", str(n), "k", verdict(n > 0))], [], {}, [], name="dry")
"""


def test_reproduce_dry_run_writes_apart_prints_an_estimate_and_leaves_no_scorecard(tmp_path, out_dir, monkeypatch,
                                                                                    capsys):
    build = out_dir  # $AE_OUTPUT_DIR stands in for build/paper-check/, which the real dry run uses
    folder = tmp_path / "SB_VAE"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('import os\nprofile = os.environ.get("AE_PROFILE", "standard")')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(_DRY_NOTEBOOK)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "dry.ipynb")
    before = (folder / "dry.ipynb").read_text()
    assert reproduce.main([str(folder / "dry.ipynb"), "--profile", "paper", "--dry-run", "--max-steps", "6",
                           "--max-eval", "50"]) == 0
    out = capsys.readouterr().out
    assert (folder / "dry.ipynb").read_text() == before                 # the notebook itself is untouched
    assert (build / "SB_VAE" / "dry.ipynb").is_file()
    results = json.loads((build / "SB_VAE" / "results_dry.json").read_text())
    assert results["dry_run"]["max_steps"] == 6 and results["claims"][0]["ours"] == "50"
    assert [t["steps"] for t in results["dry_run"]["training"]] == [6]
    assert results["dry_run"]["training"][0]["planned_steps"] == 800
    assert results["dry_run"]["evaluations"] == [{"what": "test points", "full": 10000, "used": 50}]
    assert "DRY RUN" in (build / "SB_VAE" / "dry.ipynb").read_text()
    assert "dry run: no scorecard" in out and "| SB_VAE/dry.ipynb | 1 | 800 |" in out
    assert not (build / "SCORECARD.md").exists()
    assert (build / "ESTIMATE.md").is_file()
    assert not dryrun.active()                                           # the runner restores the environment


def test_the_paper_profile_of_a_real_notebook_runs_to_its_end_under_the_dry_run(mnist_available, out_dir, capsys):
    """CI's share of `make paper-check`: one notebook at its paper shapes, training capped (all seven: by hand)."""
    notebook = REPO_ROOT / "DenoisingAE" / "RegularizedAE.ipynb"
    before = notebook.read_bytes()
    assert reproduce.main([str(notebook), "--profile", "paper", "--dry-run"]) == 0, capsys.readouterr().out
    assert notebook.read_bytes() == before
    results = json.loads((out_dir / "DenoisingAE" / "results_RegularizedAE.json").read_text())
    assert results["profile"] == "paper" and results["dry_run"]["max_steps"] == 60
    models = results["dry_run"]["training"]
    assert len(models) >= 5 and all(m["steps"] <= 60 for m in models)
    assert all(m["planned_steps"] > m["steps"] for m in models)        # the paper's runs are far longer
    assert "| DenoisingAE/RegularizedAE.ipynb |" in capsys.readouterr().out


def test_under_the_dry_run_a_named_model_trains_afresh_every_time(capped, out_dir):
    """A loaded checkpoint trains nothing and would drop out of the estimate; its key also names the cap."""
    data = ImageSet(torch.zeros(64, 1, 2, 2, dtype=torch.uint8))
    for _ in range(2):
        run = Run("SB_VAE", "paper", 0, "cpu")
        model = nn.Linear(4, 4)
        run.train("m", model, lambda m, x, y: {"loss": m(x.flatten(1)).pow(2).mean()},
                  data.batches(8), 10, optimizer=train.make_optimizer("adam", model.parameters(), 1e-3), config={},
                  progress=False)
        assert run.status == {"m": "trained"}
    assert len(capped.training) == 2
    state = torch.load(out_dir / "SB_VAE" / "checkpoints" / "paper" / "m.pt", weights_only=True)
    assert state["stopped"] and state["epoch"] == 3
