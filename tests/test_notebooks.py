"""The committed notebooks: what nbval and papermill need, and outputs of a real run."""
from __future__ import annotations

import json

import nbformat
import pytest

from common.reproduce import find_notebooks

NOTEBOOKS = find_notebooks()


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_is_runnable_and_committed_from_a_real_run(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    params = [c for c, t in zip(nb.cells, tags) if "parameters" in t]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert 'os.environ.get("AE_PROFILE", "standard")' in params[0].source, "nbval picks the profile by $AE_PROFILE"
    assert not any("injected-parameters" in t for t in tags), "an injected cell would override $AE_PROFILE"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o.output_type != "error" for c in code for o in c.outputs)
    assert sum(bool(c.outputs) for c in code) >= len(code) // 2, "commit the outputs of a run"
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs), "figures are drawn inline"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_report_comes_from_standard_or_paper(path):
    name = path.stem
    results = path.parent / ("results.json" if name == path.parent.name else f"results_{name}.json")
    data = json.loads(results.read_text())
    assert data["profile"] in ("standard", "paper")
    assert (path.parent / f"{name}.pdf").is_file()
    assert data["claims"] and all(c["ours"] for c in data["claims"])
