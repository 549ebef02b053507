"""benchmarks/step_floor.py: its output format and what its floor counts. Its timings are never asserted."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import step_floor  # noqa: E402  (a script beside the tests' package path)


def test_a_transposed_convolutions_forward_time_lands_in_the_floor():
    """A transposed convolution's forward runs inside aten::_convolution, with no child op (found on CelebA):
    most of its profiled self time must be in GEMM_KERNELS (counted without it: none; the rest is a copy of
    the output into the contiguous layout)."""
    conv = nn.ConvTranspose2d(16, 16, 4, 2, 1)
    x = torch.randn(32, 16, 16, 16)
    with torch.no_grad():
        conv(x)
        with torch.profiler.profile() as prof:
            for _ in range(3):
                conv(x)
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages() if e.key.startswith("aten::")}
    in_floor = sum(t for k, t in self_us.items() if k in step_floor.GEMM_KERNELS)
    assert in_floor > 0.4 * sum(self_us.values()), self_us


def test_step_floor_prints_its_three_lines_per_model_and_the_cpu(capsys):
    step_floor.main(["--only", "VAE Frey", "--steps", "3", "--repeats", "1", "--compile"])
    out = capsys.readouterr().out
    number = r"\d+\.\d+"
    assert re.search(rf"^step VAE Frey [^:]+: {number} ms/step, floor {number} ms, {number}x floor", out, re.M)
    assert re.search(rf"^  other kernels {number} ms: floor \+ kernels {number}x floor \(largest: .*\); "
                     rf"the rest \(dispatch, Python\) -?{number} ms$", out, re.M)
    assert re.search(rf"^step VAE Frey .*\[compiled\]: {number} ms/step, .*x the eager step in this run", out, re.M)
    assert re.search(r"^cpu: .*threads; float32 matmul peak at 2048\^2: \d+ GFLOP/s", out, re.M)


def test_a_filter_that_matches_no_model_says_so(capsys):
    assert step_floor.main(["--only", "no such model"]) == 2
    assert "no model matches" in capsys.readouterr().err
