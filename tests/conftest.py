"""Shared fixtures. The data folder comes from $AE_DATA_DIR (CI: ../shared/data)."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # tests draw figures without a display

import pytest

from common.data import DataError, verify


@pytest.fixture(scope="session")
def mnist_available() -> None:
    """Fail (not skip) when MNIST is absent: every CI run must exercise the loaders."""
    try:
        verify("mnist")
    except DataError as e:
        pytest.fail(f"MNIST is needed for the tests; set AE_DATA_DIR (now {os.environ.get('AE_DATA_DIR')!r}).\n{e}")


@pytest.fixture()
def out_dir(tmp_path, monkeypatch):
    """Send every Run's outputs to a temporary folder."""
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path / "out"))
    return tmp_path / "out"
