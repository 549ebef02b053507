"""nbval_sanitize.cfg: what varies between runs is masked, and the numbers a checked cell exists for are not."""
from __future__ import annotations

import configparser
import re

import pytest

from common.paths import REPO_ROOT


def _sanitize(text: str) -> str:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "nbval_sanitize.cfg")
    for section in cfg.sections():
        text = re.sub(cfg[section]["regex"], cfg[section]["replace"], text)
    return text


@pytest.mark.parametrize("text", [
    "MNIST train (60000, 1, 28, 28) test (10000, 1, 28, 28) fraction of ones 0.1325",
    "1,765 / 200 faces; 6000 punks; lr 1e-3, 5 seeds, 2.5e-4 s2",
    "wrote VariationalAE/plots/fig2_bound_curves.png on 2026/12/04",
    "parameters: 785,784; hidden 500; N_z = 20",
])
def test_numbers_shapes_and_relative_paths_are_kept(text):
    assert _sanitize(text) == text


def test_times_absolute_paths_addresses_and_devices_are_masked():
    assert _sanitize("trained in 12.5 s, then 3 min (2 h)") == "trained in TIME, then TIME (TIME)"
    assert _sanitize("saved /tmp/pytest-1/out/plots/x.png") == "saved PATH/x.png"
    assert _sanitize("<object at 0x7f3a2b>") == "<object at 0xADDRESS>"
    assert _sanitize("standard cuda:0 and standard cpu") == "standard DEVICE and standard DEVICE"
