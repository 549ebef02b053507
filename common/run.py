"""A notebook's run and its named models: train once, resume after a kill, reload when finished.

:class:`Run` is created in a notebook's second cell: its paper, profile, seed and device,
its output folders, and the clock the report's run time comes from. ``Run.train`` is the
one way a notebook trains a model: it keys the checkpoint on everything that changes
the result (:func:`config_key`), then trains, resumes or reloads it (:func:`train_named`).
"""
from __future__ import annotations

import fnmatch
import hashlib
import inspect
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from common import dryrun
from common.data import Batches
from common.paths import PROFILES, REPO_ROOT, TENSORBOARD_ENV, output_root
from common.train import History, LossFn, fit, load_checkpoint
from common.weights import load_published, weights_dir


def model_sources(model: nn.Module, loss_fn: Callable) -> list[Any]:
    """The project's modules that define ``model``'s layers and ``loss_fn``: the code a trained model depends on.

    Found from the objects themselves (each submodule's class, the loss's class or function),
    so a shared piece such as ``common.bernoulli.BernoulliDecoder`` is hashed without the
    caller naming it. Only the repository's modules count: torch's are left out (their version
    is in the results), and so is code defined in a notebook or a script (``__main__``).
    """
    found: dict[str, Any] = {}
    for obj in [type(m) for m in model.modules()] + [loss_fn if inspect.isfunction(loss_fn) else type(loss_fn)]:
        module = inspect.getmodule(obj)
        path = getattr(module, "__file__", None)
        # the project's own modules only: not torch's, and not a notebook's or a script's __main__
        if (module is not None and module.__name__ != "__main__" and path and Path(path).resolve().is_relative_to(REPO_ROOT)
                and not {"site-packages", "dist-packages"} & set(Path(path).parts)):   # a .venv inside the checkout
            found.setdefault(module.__name__, module)
    return [found[k] for k in sorted(found)]


def config_key(config: dict, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable,
               epochs: int, sources: Sequence[Any] = ()) -> str:
    """A hash of everything that changes a trained model.

    The caller's ``config`` (hyperparameters, data name and size, seed, profile), the
    architecture (``repr(model)``), the optimizer's class and hyper-parameters, the
    loss function's name, the number of epochs, and the source text of ``sources``
    (the paper modules), so that editing the paper's code never silently reuses a
    checkpoint trained by the old code.
    """
    hyper = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    src = [hashlib.sha256((inspect.getsource(m) if not isinstance(m, str) else m).encode()).hexdigest()
           for m in sources]
    blob = json.dumps({"config": config, "model": repr(model), "optimizer": type(optimizer).__name__,
                       "hyper": hyper, "loss": getattr(loss_fn, "__qualname__", repr(loss_fn)),
                       "epochs": epochs, "sources": src}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def set_aside(path: Path, why: str) -> Path:
    """Rename an unusable checkpoint out of the way (never delete it) and warn, naming the file."""
    aside = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bad")
    os.replace(path, aside)
    warnings.warn(f"checkpoint {path} could not be used ({why}); moved it to {aside.name} and training afresh",
                  stacklevel=3)
    return aside


def train_named(checkpoint: Path, key: str, model: nn.Module, loss_fn: LossFn, train: Batches,
                optimizer: torch.optim.Optimizer, epochs: int, retrain: bool = False,
                **fit_kwargs) -> tuple[History, str]:
    """Train with :func:`fit` through ``checkpoint``, keyed by ``key``; return (history, status).

    status is ``"loaded"`` when a finished checkpoint of this key existed (nothing
    trains), ``"resumed"`` when an unfinished one did (training continues from its last
    epoch), else ``"trained"``. A checkpoint of another key (stale: the configuration or
    the code changed) is replaced; one that cannot be read (truncated, corrupt) is set
    aside with a warning. ``retrain`` ignores any checkpoint. Use it through
    :meth:`common.run.Run.train`, which builds the key and the path.
    """
    checkpoint = Path(checkpoint)
    status = "trained"
    if checkpoint.is_file():
        if retrain:
            checkpoint.unlink()
        else:
            try:
                state = load_checkpoint(checkpoint)
                finished, stored = bool(state.get("finished")), state.get("key")
                del state
            except Exception as e:  # torch raises many kinds on a damaged zip/pickle
                set_aside(checkpoint, f"{type(e).__name__}: {e}")
            else:
                if stored != key:
                    checkpoint.unlink()  # trained under another configuration or older code
                else:
                    status = "loaded" if finished else "resumed"
    history = fit(model, loss_fn, train, optimizer, epochs, checkpoint=checkpoint,
                  checkpoint_meta={"key": key}, **fit_kwargs)
    return history, status


#: The convergence rule: converged when early stopping fired, or when the last ``TAIL`` of the
#: epochs improved the watched metric's best value by less than ``SETTLED`` of it (relative).
CONVERGENCE_TAIL, CONVERGENCE_SETTLED, CONVERGENCE_MIN_EPOCHS = 0.2, 0.005, 5


def convergence(history: History, watched: str) -> dict[str, Any]:
    """Whether training had converged, read off the history of the metric ``watched`` (minimised).

    *converged*: early stopping fired, or the best value over the last 20% of the epochs
    improves on the best before them by less than 0.5% of it. *still improving*: it improved
    by more (the relative improvement is returned, so a reader sees how much). Fewer than 5
    epochs cannot show a trend: *too short to tell*. Budget-bound verdicts are marked by it.
    """
    values = history.records.get(watched, [])
    out: dict[str, Any] = {"watched": watched, "tail_improvement": None}
    if history.stopped_early:
        return {**out, "convergence": "converged", "why": "early stopping fired"}
    if len(values) < CONVERGENCE_MIN_EPOCHS:
        return {**out, "convergence": "too short to tell", "why": f"{len(values)} epochs of {watched}"}
    cut = len(values) - max(1, round(CONVERGENCE_TAIL * len(values)))
    before, tail = min(values[:cut]), min(values[cut:])
    gain = (before - tail) / max(abs(before), 1e-12)
    state = "converged" if gain < CONVERGENCE_SETTLED else "still improving"
    return {**out, "convergence": state, "tail_improvement": round(gain, 5),
            "why": f"best {watched} improved {100 * gain:.2f}% over the last {len(values) - cut} of {len(values)} epochs"}


@dataclass(frozen=True)
class Reference:
    """The training budget the paper, or its authors' code, gave a model: examples seen, and where that is stated.

    ``examples`` counts training examples presented (epochs x training-set size, or steps x batch
    size); ``source`` says where the number comes from, e.g. "authors' code: 2,000 epochs x 50k".
    Rule R9 of ``common.report`` shows each model's share of it beside every verdict.
    """

    examples: float
    source: str

    def __post_init__(self) -> None:
        if not self.examples > 0:
            raise ValueError(f"a reference budget must be > 0 examples, got {self.examples}")
        if not self.source.strip():
            raise ValueError("a reference budget needs its source (the paper's section or the authors' code)")


def budget_fields(examples_seen: int, reference: Reference | None) -> dict[str, Any]:
    """The budget columns of one model's record: the reference, its source and the share used (None if unknown)."""
    if reference is None:
        return {"reference_examples": None, "reference_source": "", "budget_share": None}
    return {"reference_examples": reference.examples, "reference_source": reference.source,
            "budget_share": round(examples_seen / reference.examples, 6)}


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
    #: Ignore finished and unfinished checkpoints and published weights, and train every model afresh.
    retrain: bool = False
    started: float = field(default_factory=time.time)
    #: How each named model of this run was obtained: "loaded", "resumed", "trained" or "published".
    status: dict[str, str] = field(default_factory=dict)
    #: Write TensorBoard scalars of every model this run trains to ``<out>/tensorboard/<profile>/<name>``
    #: (True or False; None, the default, leaves it to ``$AE_TENSORBOARD=1``, so a notebook's parameter
    #: can pass None through).
    tensorboard: bool | None = None
    #: Progress bars for every model this run trains (``Run.train`` passes it to ``fit``).
    progress: bool = True
    #: What each named model's training amounted to, for the report's budget table:
    #: epochs, examples seen, best epoch, whether early stopping fired, and seconds of training.
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Reference budgets by model-name pattern (``fnmatch``, e.g. ``"sb_*"``), the first match wins:
    #: each model's record gets its share of it (rule R9). Set it before training; ``finish`` re-reads it.
    references: dict[str, Reference] = field(default_factory=dict)

    def reference_for(self, name: str) -> Reference | None:
        """The reference budget of the model called ``name``: the first pattern of ``references`` it matches."""
        return next((ref for pattern, ref in self.references.items() if fnmatch.fnmatchcase(name, pattern)), None)

    def model_records(self) -> dict[str, dict[str, Any]]:
        """``models`` with each model's reference budget and share as ``references`` now gives them."""
        return {name: {**rec, **budget_fields(rec.get("examples_seen", 0), self.reference_for(name))}
                for name, rec in self.models.items()}

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if self.tensorboard is None:
            self.tensorboard = os.environ.get(TENSORBOARD_ENV, "") == "1"
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

    @property
    def weights(self) -> Path:
        """Where this run's published weights are looked up (:mod:`common.weights`)."""
        return weights_dir(self.paper, self.profile)

    def checkpoint(self, name: str) -> Path:
        """Path of a named checkpoint (ignored by git), one per profile."""
        d = self.out / "checkpoints" / self.profile
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{name}.pt"

    def train(self, name: str, model, loss_fn, train, epochs: int, *, optimizer, config: Mapping[str, Any],
              sources: Sequence[Any] = (), watched: str | None = None, **fit_kwargs):
        """Train the model called ``name``, or reload or resume it; return its ``History``.

        ``config`` holds every setting that changes the result and is not visible in the
        model, the optimizer or ``epochs`` (data name and size, noise level, beta, ...);
        the run's seed and profile are added, and so are the ``fit`` settings that change
        training (``best_on``, ``patience``, ``best_from``, ``bf16`` and the hooks' names). ``sources`` are
        the code the model depends on beyond the modules that define its layers and its
        loss (found by :func:`model_sources`): e.g. the functions that build its data.
        If weights of exactly this key are published (:mod:`common.weights`), or a finished
        checkpoint of it exists, the model and its history are loaded and nothing trains; an
        unfinished checkpoint is resumed; otherwise training starts. ``fit_kwargs`` go to
        :func:`common.train.fit` (``val``, ``best_on``, ``patience``, hooks, ...); the
        progress bar and its label default to the run's ``progress`` and ``name``.
        The outcome is printed and kept in ``self.status[name]``, and the training's size
        in ``self.models[name]``, for the report, with rule R9's convergence read off ``watched``
        (default: ``best_on``, else ``val/loss`` when validated, else ``train/loss``): a model
        whose loss is not the claim's metric (wake-sleep's) names the one to watch.
        """
        if name in self.status:
            raise ValueError(f"model name {name!r} is used twice in this run; names key the checkpoints")
        full = {**config, "seed": self.seed, "profile": self.profile,
                "train_examples": getattr(train, "n", None), "batch_size": getattr(train, "batch_size", None)}
        if hasattr(train, "n_batches"):  # Chunks: n is one chunk; key the data behind it and the chunk size
            full.update(train_examples=train.batches.n, chunk_batches=train.n_batches)
        for k in ("best_on", "patience", "best_from", "bf16"):  # a stop rule or precision changes what training leaves
            if fit_kwargs.get(k) is not None and not (k == "best_from" and fit_kwargs[k] == 0):  # 0: the default
                full[f"fit_{k}"] = fit_kwargs[k]
        for k in ("before_step", "after_step"):
            if fit_kwargs.get(k) is not None:
                full[f"fit_{k}"] = getattr(fit_kwargs[k], "__qualname__", repr(fit_kwargs[k]))
        if dryrun.max_steps() is not None:  # a capped model is never taken for a trained one
            full["dry_run_max_steps"] = dryrun.max_steps()
        key = config_key(full, model, optimizer, loss_fn, epochs, [*model_sources(model, loss_fn), *sources])
        path = self.checkpoint(name)
        fit_kwargs.setdefault("progress", self.progress)
        fit_kwargs.setdefault("desc", name)
        if self.tensorboard:
            fit_kwargs.setdefault("log_dir", self.out / "tensorboard" / self.profile / name)
        # A dry run trains every model afresh, so that each one's step rate is measured (a loaded one trains nothing).
        fresh = self.retrain or dryrun.active()
        history = None if fresh else load_published(self.weights, name, key, model, train)
        if history is not None:
            status = "published"
        else:
            history, status = train_named(path, key, model, loss_fn, train, optimizer, epochs, retrain=fresh,
                                          **fit_kwargs)
        self.status[name] = status
        watched = (watched or fit_kwargs.get("best_on")
                   or ("val/loss" if "val/loss" in history.records else "train/loss"))
        self.models[name] = {"epochs": history.epochs, "examples_seen": history.samples[-1] if history.samples else 0,
                             "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
                             "train_seconds": round(history.seconds, 1), "status": status, "key": key,
                             **convergence(history, watched)}
        self.models[name].update(budget_fields(self.models[name]["examples_seen"], self.reference_for(name)))
        where = self.weights if status == "published" else path
        print(f"{name}: {status} ({where.relative_to(self.out) if where.is_relative_to(self.out) else where})")
        return history

    @property
    def elapsed_s(self) -> float:
        return time.time() - self.started
