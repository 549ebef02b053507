"""Where things live: the repository root, profiles, and each run's output folder.

Notebooks run with their own folder as the working directory (nbval) or with the
caller's (papermill without ``--cwd``), so every path is resolved from the
repository root here rather than from the working directory.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from common import dryrun  # imports nothing of common: no circle

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Environment variable that picks the profile when no parameter is injected (nbval).
PROFILE_ENV = "AE_PROFILE"
#: Environment variable that redirects every run's outputs (optional).
OUTPUT_ENV = "AE_OUTPUT_DIR"
#: Environment variable that switches TensorBoard logging on for every Run ("1"), e.g. for `make lab`.
TENSORBOARD_ENV = "AE_TENSORBOARD"
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

    ``standard`` and ``paper`` runs write into the paper's own folder (these are the
    committed artefacts). ``smoke`` runs, which CI makes, write under the ignored
    ``build/smoke/`` so that running the tests never changes a tracked file.
    A dry run (training or evaluation capped, :mod:`common.dryrun`) writes under the
    ignored ``build/paper-check/``, so it can never overwrite committed results.
    ``$AE_OUTPUT_DIR`` overrides all of these.
    """
    if dryrun.active():
        return dry_run_root() / paper
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
    #: Ignore finished and unfinished checkpoints and train every model afresh.
    retrain: bool = False
    started: float = field(default_factory=time.time)
    #: How each named model of this run was obtained: "loaded", "resumed" or "trained".
    status: dict[str, str] = field(default_factory=dict)
    #: Write TensorBoard scalars of every model this run trains to ``<out>/tensorboard/<profile>/<name>``
    #: (off unless set, or unless ``$AE_TENSORBOARD=1``).
    tensorboard: bool = field(default_factory=lambda: os.environ.get(TENSORBOARD_ENV, "") == "1")

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        self.out.mkdir(parents=True, exist_ok=True)
        self.plots.mkdir(parents=True, exist_ok=True)
        if dryrun.active():
            print(dryrun.banner())

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

    def train(self, name: str, model, loss_fn, train, epochs: int, *, optimizer, config: Mapping[str, Any],
              sources: Sequence[Any] = (), **fit_kwargs):
        """Train the model called ``name``, or reload or resume it; return its ``History``.

        ``config`` holds every setting that changes the result and is not visible in the
        model, the optimizer or ``epochs`` (data name and size, noise level, beta, ...);
        the run's seed and profile are added. ``sources`` are the paper modules whose
        code the model depends on. If a finished checkpoint of exactly this key exists,
        the model and its history are loaded and nothing trains; an unfinished one is
        resumed; otherwise training starts. ``fit_kwargs`` go to
        :func:`common.train.fit` (``val``, ``best_on``, ``patience``, hooks, ...).
        The outcome is printed and kept in ``self.status[name]`` for the report.
        """
        from common.train import config_key, train_named

        if name in self.status:
            raise ValueError(f"model name {name!r} is used twice in this run; names key the checkpoints")
        full = {**config, "seed": self.seed, "profile": self.profile,
                "train_examples": getattr(train, "n", None), "batch_size": getattr(train, "batch_size", None)}
        if hasattr(train, "n_batches"):  # Chunks: n is one chunk; key the data behind it and the chunk size
            full.update(train_examples=train.batches.n, chunk_batches=train.n_batches)
        if dryrun.max_steps() is not None:  # a capped model is never taken for a trained one
            full["dry_run_max_steps"] = dryrun.max_steps()
        key = config_key(full, model, optimizer, loss_fn, epochs, sources)
        path = self.checkpoint(name)
        if self.tensorboard:
            fit_kwargs.setdefault("log_dir", self.out / "tensorboard" / self.profile / name)
        # A dry run trains every model afresh, so that each one's step rate is measured (a loaded one trains nothing).
        history, status = train_named(path, key, model, loss_fn, train, optimizer, epochs,
                                      retrain=self.retrain or dryrun.active(), **fit_kwargs)
        self.status[name] = status
        print(f"{name}: {status} ({path.relative_to(self.out) if path.is_relative_to(self.out) else path})")
        return history

    @property
    def elapsed_s(self) -> float:
        return time.time() - self.started
