"""Where things live: the repository root, profiles, and each run's output folder.

Notebooks run with their own folder as the working directory (nbval) or with the
caller's (papermill without ``--cwd``), so every path is resolved from the
repository root here rather than from the working directory.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from common import dryrun  # imports nothing of common: no circle

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Environment variable that picks the profile when no parameter is injected (nbval).
PROFILE_ENV = "AE_PROFILE"
#: Environment variable that redirects every run's outputs (optional).
OUTPUT_ENV = "AE_OUTPUT_DIR"
#: Environment variable that switches TensorBoard logging on for every Run ("1"), e.g. for `make lab`.
TENSORBOARD_ENV = "AE_TENSORBOARD"
#: smoke (CI), standard (the default, the committed run), long (CPU, hours: the budget-bound claims), paper (GPU).
PROFILES = ("smoke", "standard", "long", "paper")


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Make ``path`` by calling ``write(tmp)`` on a temporary file beside it, then renaming it over.

    The rename is atomic (same folder, same file system), so a kill at any moment leaves
    either the old file or the new one, never half of one. The temporary file is
    removed if ``write`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; give the mode a plain open() would
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def dry_run_root() -> Path:
    """Where dry runs write: ``$AE_OUTPUT_DIR`` if set, else the ignored ``build/paper-check/``."""
    override = os.environ.get(OUTPUT_ENV)
    return Path(override).resolve() if override else REPO_ROOT / "build" / "paper-check"


def output_root(paper: str, profile: str) -> Path:
    """Folder for a paper's plots, results.json, report and checkpoints.

    ``standard`` runs write into the paper's own folder: the committed notebook, its
    results and its report are the default profile's. Every other committed profile
    (``long``, ``paper``) writes into ``<paper>/<profile>/``, executed
    notebook included, so that its run and the standard one stay readable side by side. ``smoke`` runs,
    which CI makes, write under the ignored ``build/smoke/`` so that running the tests
    never changes a tracked file. A dry run (training or evaluation capped,
    :mod:`common.dryrun`) writes under the ignored ``build/paper-check/``, so it can never
    overwrite committed results. ``$AE_OUTPUT_DIR`` overrides all of these.
    """
    if dryrun.active():
        return dry_run_root() / paper
    override = os.environ.get(OUTPUT_ENV)
    if override:
        return Path(override).resolve() / paper
    if profile == "smoke":
        return REPO_ROOT / "build" / "smoke" / paper
    if profile == "standard":
        return REPO_ROOT / paper
    return REPO_ROOT / paper / profile
