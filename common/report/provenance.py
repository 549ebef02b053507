"""Provenance: when results were written, by which code, on which machine and libraries.

Every results file records when it was written (:func:`utc_now`) and at which git commit
(:func:`git_commit`), so the scorecard never shows a stale run as if it were current, and
machines differ from run to run, so the device and CPU are named (:func:`device_name`).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from common.paths import REPO_ROOT


def utc_now() -> str:
    """The time now, ISO 8601 in UTC with milliseconds (sortable, and parsed by ``parse_time``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def parse_time(stamp: str) -> datetime | None:
    """A timestamp written by :func:`utc_now`, or None when empty or unreadable."""
    try:
        t = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def show_time(stamp: str) -> str:
    """``2026-11-22 18:40 UTC`` for a stored timestamp, "unknown date" when there is none."""
    t = parse_time(stamp)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if t else "unknown date"


#: Names the commit of a copy of the repository that has no .git (e.g. a tree copied to a GPU machine);
#: read only when git cannot say, and reported with "(copy)" so a reader knows it was not checked.
COMMIT_ENV = "AE_GIT_COMMIT"


def git_commit(root: Path = REPO_ROOT) -> str:
    """Short hash of HEAD, with "+dirty" when tracked Python files differ from it; "" outside git.

    Outside git, ``$AE_GIT_COMMIT`` (set by whoever copied the tree) is used, marked "(copy)".
    """
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                  "*.py"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        given = os.environ.get(COMMIT_ENV, "").strip()
        return f"{given} (copy)" if given else ""
    return head + ("+dirty" if changed else "")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on.

    A module already imported gives its ``__version__`` (torch's names its build, e.g.
    ``+cu130``); the others are read from the installed metadata rather than imported,
    which would cost seconds (scikit-learn) in a run that never used them.
    """
    out = {"python": platform.python_version()}
    for name, module in (("torch", "torch"), ("torchvision", "torchvision"), ("numpy", "numpy"),
                         ("scikit-learn", "sklearn"), ("matplotlib", "matplotlib")):
        try:
            out[name] = getattr(sys.modules.get(module), "__version__", None) or version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    out["machine"] = f"{platform.machine()} ({cpu_model()})"
    return out


def device_name(device: str) -> str:
    """The device a run used, named: the GPU's model, or the CPU's with its cores and torch threads."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu: {cpu_model()} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), since machines differ from run to run."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"
