"""The `paper` profile's dry run: every notebook end to end at paper shapes, training capped.

A researcher should know that ``make reproduce PROFILE=paper`` reaches its last cell,
and what it will cost, before paying for hours of GPU time. ``make paper-check``
(``python -m common.reproduce --profile paper --dry-run``) runs every notebook with

- ``$AE_MAX_STEPS``: every :func:`common.train.fit` stops after at most that many
  optimizer steps per model, spread over at most ``MAX_EPOCHS`` short epochs, so that code which
  compares epochs, validates or stops early still runs, and
- ``$AE_MAX_EVAL``: every evaluation size passed through :func:`eval_size` (test points,
  importance samples, metric points) is cut to at most that many,

and writes under the ignored ``build/paper-check/``, never over committed results
(:func:`common.paths.output_root`), training every model afresh. Each capped run prints :func:`banner`, and its
``results.json`` holds a ``dry_run`` record (the caps, every model's measured step rate
and its paper step count, every evaluation that was cut); the scorecard refuses such
results. :func:`estimate_table` turns those records into the time a full run would take
on the machine that ran the dry run.

The log below belongs to the process (one notebook kernel): ``fit`` and ``eval_size``
append to it and ``finish`` reads it, so no notebook code changes between a real run
and a dry one.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

MAX_STEPS_ENV = "AE_MAX_STEPS"
MAX_EVAL_ENV = "AE_MAX_EVAL"
#: A capped model trains at most this many (short) epochs.
MAX_EPOCHS = 3


def _cap(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${name}={raw!r} is not a positive whole number; unset it, or set e.g. {name}=20")
    return value


def max_steps() -> int | None:
    """The cap on optimizer steps per model (``$AE_MAX_STEPS``), or None for a real run."""
    return _cap(MAX_STEPS_ENV)


def max_eval() -> int | None:
    """The cap on evaluation sizes (``$AE_MAX_EVAL``), or None for a real run."""
    return _cap(MAX_EVAL_ENV)


def active() -> bool:
    """True when either cap is set: results made now are a dry run's, not a measurement."""
    return max_steps() is not None or max_eval() is not None


@dataclass
class TrainingTime:
    """One ``fit`` call: the steps it would take uncapped and the time its steps took."""

    name: str
    planned_steps: int
    planned_epochs: int
    steps: int
    #: Epochs the capped run trained (each with one validation pass, if any).
    epochs_run: int
    #: Mean time of one optimizer step after the first (the first pays for warm-up).
    seconds_per_step: float
    #: Mean time of one validation pass (0 without validation data).
    val_seconds_per_epoch: float

    @property
    def estimate_s(self) -> float:
        """Time of the uncapped training at the measured rates (an upper bound if early stopping fires)."""
        return self.planned_steps * self.seconds_per_step + self.planned_epochs * self.val_seconds_per_epoch


@dataclass
class EvalCut:
    """An evaluation size cut by ``$AE_MAX_EVAL``: what it is, the profile's size, the size used."""

    what: str
    full: int
    used: int


@dataclass
class Log:
    training: list[TrainingTime] = field(default_factory=list)
    evaluations: list[EvalCut] = field(default_factory=list)


LOG = Log()


def record_training(timing: TrainingTime) -> None:
    """Called by ``fit`` for every model it trains under the step cap (a real run logs nothing)."""
    LOG.training.append(timing)


def eval_size(what: str, n: int) -> int:
    """``n``, or ``$AE_MAX_EVAL`` when that is smaller (recorded, so the report says what was cut)."""
    cap = max_eval()
    if cap is None or n <= cap:
        return n
    cut = EvalCut(what, int(n), cap)
    if cut not in LOG.evaluations:  # a loop over models cuts the same size many times: list it once
        LOG.evaluations.append(cut)
    return cap


def banner() -> str:
    """One line that no reader of a dry run's output can miss; "" in a real run."""
    if not active():
        return ""
    return (f"*** DRY RUN: training capped at {max_steps()} steps per model (${MAX_STEPS_ENV}), evaluation sizes at "
            f"{max_eval()} (${MAX_EVAL_ENV}); outputs go to build/, and no number here is a result ***")


def summary() -> dict | None:
    """What ``results.json`` keeps of this process's dry run, or None in a real run."""
    if not active():
        return None
    return {"max_steps": max_steps(), "max_eval": max_eval(),
            "training": [asdict(t) for t in LOG.training], "evaluations": [asdict(e) for e in LOG.evaluations]}


def estimate(dry_run: Mapping, runtime_s: float) -> dict[str, float]:
    """A dry run's record and run time -> models, paper steps and the estimated seconds of a full run.

    Training: each model's paper step count times its measured step rate, plus its
    validation passes. The rest of the notebook (data, evaluation, plots, report) is
    the run time less the capped training; where evaluations were cut it is a lower
    bound, and ``evaluations_cut`` says how many.
    """
    models = [TrainingTime(**t) for t in dry_run.get("training", [])]
    capped_train = sum(t.steps * t.seconds_per_step + t.epochs_run * t.val_seconds_per_epoch for t in models)
    return {"models": len(models), "paper_steps": sum(t.planned_steps for t in models),
            "training_s": sum(t.estimate_s for t in models), "rest_s": max(runtime_s - capped_train, 0.0),
            "evaluations_cut": len(dry_run.get("evaluations", []))}


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def estimate_table(results: Iterable, machine: str, profile: str = "paper") -> str:
    """A Markdown table of the time a full run of ``profile`` would take, notebook by notebook, on ``machine``."""
    lines = [f"Estimated `{profile}` profile times on {machine}, from a dry run "
             f"(each model's {profile} step count x its measured step rate; 'rest' is the dry run's evaluation, "
             "plots and report, a lower bound where evaluations were cut):", "",
             f"| notebook | models | {profile} steps | training | rest | evaluations cut | total |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    total = 0.0
    for r in results:
        e = estimate(r.dry_run or {}, r.runtime_s)
        t = e["training_s"] + e["rest_s"]
        total += t
        cut = f"{e['evaluations_cut']}" + (" (rest is a lower bound)" if e["evaluations_cut"] else "")
        lines.append(f"| {r.paper}/{r.notebook} | {e['models']} | {e['paper_steps']:,} | {_hours(e['training_s'])} "
                     f"| {_hours(e['rest_s'])} | {cut} | {_hours(t)} |")
    lines.append(f"| **all** | | | | | | **{_hours(total)}** |")
    return "\n".join(lines)
