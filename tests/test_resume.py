"""Issue 12: a script that trains through run.train is killed with SIGKILL mid-training, run again,
and ends with the same history and results as an uninterrupted run; a run after that trains nothing.

Only the run that is killed needs its own process; the others call the script's ``main`` here
(it sets one torch thread, as in its own process, so the arithmetic is the same).
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from common.train import load_checkpoint

SCRIPT = Path(__file__).with_name("resume_script.py")


@pytest.fixture()
def script(monkeypatch):
    """The script's main(out_dir) run in this process; torch's thread count is put back afterwards."""
    spec = importlib.util.spec_from_file_location("resume_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()

    def run(out: Path) -> dict:
        monkeypatch.setenv("AE_OUTPUT_DIR", str(out))
        module.main([])
        return json.loads((out / "ResumeTest" / "results.json").read_text())

    yield run
    torch.set_num_threads(threads)


def _kill_during(out: Path, model: str, epochs_done: int) -> None:
    """Run the script in a subprocess and SIGKILL it once ``model`` has finished ``epochs_done`` epochs."""
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--epoch-delay", "0.3"],
                            env={**os.environ, "AE_OUTPUT_DIR": str(out)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress = out / "ResumeTest" / "progress.txt"
    deadline = time.time() + 120
    try:
        while f"{model} {epochs_done}\n" not in (progress.read_text() if progress.is_file() else ""):
            if proc.poll() is not None:
                pytest.fail(f"the script ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
            assert time.time() < deadline, "the script made no progress in 120 s"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()


def test_a_killed_run_resumes_to_the_uninterrupted_results_and_a_finished_one_reloads(tmp_path, script):
    reference = script(tmp_path / "reference")
    assert reference["training"] == {"chunked": "trained", "early": "trained"}

    out = tmp_path / "killed"
    checkpoints = out / "ResumeTest" / "checkpoints" / "smoke"
    _kill_during(out, "chunked", 4)  # 4 of 8 epochs: in the middle of the second pass over the data
    state = load_checkpoint(checkpoints / "chunked.pt")
    assert not state["finished"] and 3 <= state["epoch"] <= 5, state["epoch"]
    assert not (out / "ResumeTest" / "results.json").exists() and not (checkpoints / "early.pt").exists()

    resumed = script(out)
    assert resumed["training"] == {"chunked": "resumed", "early": "trained"}
    # Compared, for equality: every per-epoch history (train and validation terms, samples seen, best
    # epoch), the validation loss and random draws made after training, and the claims.
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["claims"] == reference["claims"]

    again = script(out)
    assert again["training"] == {"chunked": "loaded", "early": "loaded"}  # a finished run trains nothing
    assert again["metrics"] == reference["metrics"] and again["claims"] == reference["claims"]
    for name in ("chunked", "early"):
        ours, ref = (load_checkpoint(d / "ResumeTest" / "checkpoints" / "smoke" / f"{name}.pt")["model"]
                     for d in (out, tmp_path / "reference"))
        assert all(torch.equal(ours[k], ref[k]) for k in ref)
