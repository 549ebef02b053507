"""The batch runner goes on past a failing notebook and reports it."""
from __future__ import annotations

import nbformat

from common import reproduce


def _notebook(path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('import os\nprofile = os.environ.get("AE_PROFILE", "standard")')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runner_injects_profile_continues_and_fails(tmp_path, out_dir, capsys):
    folder = tmp_path / "DenoisingAE"
    folder.mkdir()
    good, bad = folder / "good.ipynb", folder / "bad.ipynb"
    _notebook(good, "import os\nopen('profile.txt', 'w').write(profile + ' ' + os.path.basename(os.getcwd()))")
    _notebook(bad, "raise RuntimeError('boom')")
    status = reproduce.main([str(bad), str(good), "--profile", "smoke"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAILED" in out and "1 failed of 2" in out
    # the notebook ran in its own folder with the injected profile, and the smoke copy went to the build folder
    assert (folder / "profile.txt").read_text() == "smoke DenoisingAE"
    assert (out_dir / "DenoisingAE" / "good.ipynb").is_file()
    assert (out_dir / "SCORECARD.md").is_file()
    assert reproduce.main([str(tmp_path / "missing.ipynb")]) == 2


def test_in_place_run_leaves_no_injected_profile(tmp_path, out_dir, monkeypatch):
    """A standard run saved in place must still obey $AE_PROFILE when nbval runs it later."""
    monkeypatch.delenv("AE_PROFILE", raising=False)
    folder = tmp_path / "VariationalAE"
    folder.mkdir()
    nb_path = folder / "nb.ipynb"
    _notebook(nb_path, "open('profile.txt', 'w').write(profile)")
    stale = nbformat.read(nb_path, as_version=4)   # widget state an interactive session saved (a bar at 99%)
    stale.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {"value": "99%"}}}}
    nbformat.write(stale, nb_path)
    assert reproduce.main([str(nb_path), "--profile", "standard"]) == 0
    assert (folder / "profile.txt").read_text() == "standard"
    nb = nbformat.read(nb_path, as_version=4)
    assert len(nb.cells) == 2 and nb.cells[1].execution_count == 2
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert "widgets" not in nb.metadata
    assert "AE_PROFILE" not in __import__("os").environ  # the runner restores the environment


_CLAIM_NOTEBOOK = """\
import os
from common.run import Run
from common.report import Claim, finish, verdict
run = Run("DenoisingAE", profile, 0, "cpu")
measured = 0.3  # stands for a number the run measured
if os.path.exists("break-{name}"):
    raise RuntimeError("broken before finish")
claims = [Claim("c1", "the value exceeds 0.5", "> 0.5", f"{{measured}}", "> 0.5", verdict(measured > {bar})),
          Claim("s1", "a property true by construction", "holds", "holds", "definition", "reproduced", kind="sanity")]
finish(run, "T", "cite", "summary", claims, [], {{}}, [], name="{name}")
"""


def _card_totals(card: str) -> str:
    line = next(x for x in card.splitlines() if x.startswith("**Totals"))
    return line.split(":**")[1].strip().rstrip(".")


def test_a_failing_claim_is_reported_and_a_failed_or_skipped_notebook_leaves_the_totals(tmp_path, out_dir):
    """Through papermill: a claim that fails is 'not reproduced' in results.json (the notebook does not crash);
    a later failed run of that notebook marks its rows and takes them out of the totals, and so does not running one."""
    import json

    folder = tmp_path / "DenoisingAE"
    folder.mkdir()
    failing, passing = folder / "failing.ipynb", folder / "passing.ipynb"
    _notebook(failing, _CLAIM_NOTEBOOK.format(name="failing", bar=0.5))
    _notebook(passing, _CLAIM_NOTEBOOK.format(name="passing", bar=0.1))
    assert reproduce.main([str(failing), str(passing), "--profile", "smoke"]) == 0
    results = json.loads((out_dir / "DenoisingAE" / "results_failing.json").read_text())
    assert [c["verdict"] for c in results["claims"]] == ["not reproduced", "reproduced"]
    card = (out_dir / "SCORECARD.md").read_text()
    assert _card_totals(card) == "1 reproduced, 0 partly, 1 not reproduced, 0 not run"  # the sanity checks apart
    assert "Sanity checks (true by construction; shown, not in the totals): 2" in card and "Not counted" not in card
    runs = json.loads((out_dir / "runs.json").read_text())
    assert runs["DenoisingAE/failing.ipynb"]["ok"] and runs["DenoisingAE/passing.ipynb"]["ok"]

    (folder / "break-passing").touch()  # the next run of passing.ipynb fails before it writes results
    assert reproduce.main([str(passing), "--profile", "smoke"]) == 1
    card = (out_dir / "SCORECARD.md").read_text()
    assert _card_totals(card) == "0 reproduced, 0 partly, 0 not reproduced, 0 not run"
    assert "> **Not counted: run failed" in card and "RuntimeError: broken before finish" in card
    assert "| c1 | paper | the value exceeds 0.5 | > 0.5 [R] | 0.3 | reproduced, not counted (run failed" in card
    assert "> **Not counted: not run in this batch: results of" in card  # failing.ipynb was not in this batch
    assert "not reproduced, not counted (not run in this batch) |" in card
    assert not json.loads((out_dir / "runs.json").read_text())["DenoisingAE/passing.ipynb"]["ok"]

    # Notebooks run one per call count together when the later calls join the batch of the first.
    assert reproduce.main([str(failing), "--profile", "smoke", "--continue-batch"]) == 0
    card = (out_dir / "SCORECARD.md").read_text()
    assert _card_totals(card) == "0 reproduced, 0 partly, 1 not reproduced, 0 not run"  # passing.ipynb still failed
    assert "Not counted: not run in this batch" not in card and "> **Not counted: run failed" in card


_PROGRESS_NOTEBOOK = """\
import torch
from torch import nn
from common.data import ImageSet
from common.train import fit, make_optimizer
model = nn.Linear(4, 4)
data = ImageSet(torch.zeros(32, 1, 2, 2, dtype=torch.uint8))
fit(model, lambda m, x, y: {"loss": m(x.flatten(1)).pow(2).mean()}, data.batches(8),
    make_optimizer("adam", model.parameters(), 1e-3), 3, desc="tiny")
"""


def test_headless_runs_save_the_final_state_of_text_progress_bars(tmp_path, out_dir):
    """A widget bar is saved as its first state ("0/3"); the runner makes bars text, whose last state is kept."""
    folder = tmp_path / "SB_VAE"
    folder.mkdir()
    _notebook(folder / "bar.ipynb", _PROGRESS_NOTEBOOK)
    assert reproduce.main([str(folder / "bar.ipynb"), "--profile", "smoke"]) == 0
    outputs = nbformat.read(out_dir / "SB_VAE" / "bar.ipynb", as_version=4).cells[1].outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "tiny: 100%" in text and "3/3" in text.split("\r")[-1]
    assert "AE_TEXT_PROGRESS" not in __import__("os").environ
