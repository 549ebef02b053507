"""Where things live: the repository root, profiles, and each run's output folder.

Notebooks run with their own folder as the working directory (nbval) or with the
caller's (papermill without ``--cwd``), so every path is resolved from the
repository root here rather than from the working directory.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Environment variable that picks the profile when no parameter is injected (nbval).
PROFILE_ENV = "AE_PROFILE"
#: Environment variable that redirects every run's outputs (optional).
OUTPUT_ENV = "AE_OUTPUT_DIR"
PROFILES = ("smoke", "standard", "paper")


def profile_from_env(default: str = "standard") -> str:
    """The profile named by ``$AE_PROFILE``, or ``default``."""
    return os.environ.get(PROFILE_ENV, default)


def select_profile(profile: str, table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Return the settings of ``profile`` from a notebook's profile table.

    Raises a ValueError that lists the valid names, so a typo in ``-p profile``
    fails at the first cell instead of silently running the default.
    """
    if profile not in table:
        raise ValueError(
            f"unknown profile {profile!r}; choose one of {sorted(table)} "
            f"(set it with papermill '-p profile NAME' or ${PROFILE_ENV})"
        )
    return dict(table[profile])


def output_root(paper: str, profile: str) -> Path:
    """Folder for a paper's plots, results.json, report and checkpoints.

    ``standard`` and ``paper`` runs write into the paper's own folder (these are the
    committed artefacts). ``smoke`` runs, which CI makes, write under the ignored
    ``build/smoke/`` so that running the tests never changes a tracked file.
    ``$AE_OUTPUT_DIR`` overrides both.
    """
    override = os.environ.get(OUTPUT_ENV)
    if override:
        return Path(override).resolve() / paper
    if profile == "smoke":
        return REPO_ROOT / "build" / "smoke" / paper
    return REPO_ROOT / paper


@dataclass
class Run:
    """One notebook run: its paper, profile, seed, device and output folders.

    Create it in the notebook's second cell; it starts the clock that the report's
    run time comes from.
    """

    paper: str
    profile: str
    seed: int
    device: str
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {PROFILES}")
        self.out.mkdir(parents=True, exist_ok=True)
        self.plots.mkdir(parents=True, exist_ok=True)

    @property
    def out(self) -> Path:
        return output_root(self.paper, self.profile)

    @property
    def plots(self) -> Path:
        return self.out / "plots"

    def checkpoint(self, name: str) -> Path:
        """Path of a named checkpoint (ignored by git), one per profile."""
        d = self.out / "checkpoints" / self.profile
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{name}.pt"

    @property
    def elapsed_s(self) -> float:
        return time.time() - self.started
