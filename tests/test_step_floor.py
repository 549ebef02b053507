"""benchmarks/step_floor.py: its output format and what its floor counts. Its timings are never asserted."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import step_floor  # noqa: E402  (a script beside the tests' package path)


def test_a_transposed_convolution_is_counted_in_the_floor_not_in_the_overhead():
    """A transposed convolution's forward runs inside aten::_convolution, with no child op (found on CelebA)."""
    def build():
        model = nn.Sequential(nn.Flatten(), nn.Unflatten(1, (1, 16, 16)), nn.Conv2d(1, 16, 4, 2, 1),
                              nn.ConvTranspose2d(16, 1, 4, 2, 1))
        return model, lambda m, x, y: {"loss": (m(x) - x).pow(2).mean()}, torch.optim.SGD(model.parameters(), 0.1)

    case = step_floor.Case("toy conv AE", build, (1, 16, 16), 32)
    prof = step_floor.step_profile(case, steps=4, seed=0, top=50)
    names = [k for k, _ in prof.top]
    assert prof.floor > 0 and "_convolution" not in names and "convolution_backward" not in names


def test_make_bench_prints_a_step_line_and_a_compiled_line_per_model(capsys):
    step_floor.main(["--only", "VAE Frey", "--steps", "3", "--repeats", "1", "--compile"])
    out = capsys.readouterr().out
    number = r"\d+\.\d+"
    assert re.search(rf"^step VAE Frey [^:]+: {number} ms/step, floor {number} ms, {number}x floor", out, re.M)
    assert re.search(rf"^  other kernels {number} ms: floor \+ kernels {number}x floor \(largest: ", out, re.M)
    assert re.search(rf"^step VAE Frey .*\[compiled\]: {number} ms/step, .*x the eager step in this run", out, re.M)
    assert re.search(r"^cpu: .*threads; float32 matmul peak at 2048\^2: \d+ GFLOP/s", out, re.M)


@pytest.mark.parametrize("bad", [["--only", "no such model"]])
def test_a_filter_that_matches_no_model_says_so(bad, capsys):
    assert step_floor.main(bad) == 2
    assert "no model matches" in capsys.readouterr().err
