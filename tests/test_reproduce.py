"""The batch runner goes on past a failing notebook and reports it."""
from __future__ import annotations

import nbformat

from common import reproduce


def _notebook(path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "standard"')
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
