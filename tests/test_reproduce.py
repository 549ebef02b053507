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
    assert reproduce.main([str(nb_path), "--profile", "standard"]) == 0
    assert (folder / "profile.txt").read_text() == "standard"
    nb = nbformat.read(nb_path, as_version=4)
    assert len(nb.cells) == 2 and nb.cells[1].execution_count == 2
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert "AE_PROFILE" not in __import__("os").environ  # the runner restores the environment
