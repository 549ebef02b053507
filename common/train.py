"""The training loop: seeding, device choice, ``fit()`` with checkpoints and a NaN guard.

A loss function here has the signature ``loss_fn(model, x, y) -> dict[str, Tensor]``.
Every value is a scalar: a per-example sum (over pixels, latents, ...) averaged over
the batch, so the history reads in nats (or squared error) per example. The key
``"loss"`` is the one minimised; any other keys (``"rec"``, ``"kl"``, ...) are
recorded beside it.
"""
from __future__ import annotations

import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from common import dryrun
from common.compiled import LossFn, compile_loss
from common.data import Batches
from common.paths import atomic_write



def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else the CPU.

    A name torch does not know, or CUDA asked for where there is none, raises a
    one-line ValueError that names the valid choices, at the notebook's first cell
    rather than deep inside training.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for, but CUDA is not available on this machine "
                             f"(torch {torch.__version__}); choose 'auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist; this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s): cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was asked for, but MPS is not available on this machine; "
                         "choose 'auto' or 'cpu'")
    elif dev.type not in ("cpu", "mps"):
        raise ValueError(f"device {device!r} is not supported here; choose one of {', '.join(DEVICES)}")
    return dev


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float, **kwargs) -> torch.optim.Optimizer:
    """Adam or Adagrad, using the fused kernel where this torch build has one for the parameters' device.

    The fused Adam is several times faster per step than the default on this CPU
    (see ``benchmarks/``). Build the optimizer once: re-creating it resets Adagrad's
    accumulators and Adam's moments.
    """
    params = list(params)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad,
           "sgd": torch.optim.SGD}.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; use adam, adamw, adagrad or sgd")
    options = ({"fused": True}, {"foreach": True}, {})
    # Adagrad's fused kernel exists for the CPU only: on CUDA it is accepted when built and fails at the
    # first step (found by the paper dry run on an H200), so it is not offered there.
    devices = {p.device.type for p in params}
    if cls is torch.optim.Adagrad and not devices <= {"cpu"}:
        options = options[1:]
    for option in options:
        try:
            return cls(params, lr=lr, **kwargs, **option)
        except (RuntimeError, TypeError, ValueError):
            continue
    raise AssertionError("unreachable")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a GPU that supports it, or a CPU with avx512_bf16 or AMX.

    Without them (an AVX2-only CPU) bfloat16 autocast is emulated and runs 2-10x slower
    than float32, so :func:`fit` falls back to float32 there.
    """
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "").split()
    except OSError:  # not Linux: ask torch what its CPU kernels were built for
        return "AVX512" in torch.backends.cpu.get_cpu_capability()
    return "avx512_bf16" in flags or "amx_bf16" in flags


#: Set to "1" by ``common.reproduce`` for the notebooks it runs headless: progress bars are then text.
TEXT_PROGRESS_ENV = "AE_TEXT_PROGRESS"


def progress_bar(**kwargs):
    """A tqdm bar: a widget in an interactive notebook, text in a headless run (``$AE_TEXT_PROGRESS=1``).

    A widget's final state is not saved by papermill, so a committed notebook would show
    every bar frozen at "0/N"; a text bar's last line is the final one. Headless text bars
    redraw at most every 10 s, to keep the saved output small.
    """
    if os.environ.get(TEXT_PROGRESS_ENV) == "1":
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 10.0)
    else:
        from tqdm.auto import tqdm
    return tqdm(**kwargs)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message says at which step and which term."""


@dataclass
class History:
    """Per-epoch means of each loss term, for train and (optionally) validation.

    ``records["train/kl"][i]`` is the mean KL per example over epoch ``i``;
    ``samples[i]`` is the number of training examples seen by the end of it.
    """

    records: dict[str, list[float]] = field(default_factory=dict)
    samples: list[int] = field(default_factory=list)
    #: With ``fit(best_on=...)``: the 0-based epoch whose weights the model holds at the end.
    best_epoch: int | None = None
    #: Whether ``patience`` stopped training before the epoch cap (early stopping fired).
    stopped_early: bool = False
    #: Wall-clock seconds of training and validation, summed over every call that trained it (resumes add up).
    seconds: float = 0.0

    def add(self, prefix: str, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            self.records.setdefault(f"{prefix}/{k}", []).append(float(v))

    def record_epoch(self, key: str, value: float) -> None:
        """Set ``key``'s value for the epoch just recorded, for an ``after_epoch`` hook's own measurement.

        A record begun later than the losses' (a hook added to a resumed run) is padded with NaN up
        to that epoch, so every record keeps one value per epoch.
        """
        record = self.records.setdefault(key, [])
        record.extend([float("nan")] * (self.epochs - 1 - len(record)))
        record.append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.records[key]

    def last(self, key: str) -> float:
        return self.records[key][-1]

    @property
    def epochs(self) -> int:
        return len(self.samples)

    def to_dict(self) -> dict:
        return {"records": self.records, "samples": self.samples, "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls({k: list(v) for k, v in d["records"].items()}, list(d["samples"]), d.get("best_epoch"),
                   bool(d.get("stopped_early", False)), float(d.get("seconds", 0.0)))


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to a temporary file beside ``path``, then rename it over.

    The rename is atomic, so an interrupted save never leaves a half-written
    checkpoint in place of the last good one.
    """
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain data only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(obj):
    """numpy/python RNG states hold tuples and arrays; make them weights_only-loadable."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.astype(np.int64))
    if isinstance(obj, (tuple, list)):
        return [_to_plain(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _from_plain_rng(state: dict) -> dict:
    np_state = state["numpy"]
    py_state = state["python"]
    out = dict(state)
    out["numpy"] = (np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:])
    out["python"] = (py_state[0], tuple(py_state[1]), py_state[2])
    return out


@torch.no_grad()
def evaluate_terms(model: nn.Module, loss_fn: LossFn, batches: Batches) -> dict[str, float]:
    """Mean of each loss term per example over ``batches``, in eval mode."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    seen = 0
    for x, y in batches:
        for k, v in loss_fn(model, x, y).items():
            sums[k] = sums.get(k, 0) + v.detach().float() * len(x)
        seen += len(x)
    model.train(was_training)
    return {k: (v / seen).item() for k, v in sums.items()}


def fit(model: nn.Module, loss_fn: LossFn, train: Batches, optimizer: torch.optim.Optimizer, epochs: int,
        val: Batches | None = None, checkpoint: Path | None = None, progress: bool = True,
        bf16: bool = False, check_every: int = 50, desc: str = "train",
        before_step: Callable[[nn.Module, int], None] | None = None,
        after_step: Callable[[nn.Module], None] | None = None,
        after_epoch: Callable[[nn.Module, History], None] | None = None,
        best_on: str | None = None, patience: int | None = None, best_from: int = 0,
        checkpoint_meta: dict | None = None, log_dir: Path | None = None, compile: bool = False) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    - Losses stay on the device during an epoch and are read once at its end, so no
      step waits on the host (the NaN check reads one flag every ``check_every`` steps).
    - With ``checkpoint``, the model, optimizer, history, batch order and RNG states are
      saved atomically after every epoch, and a later call with the same path resumes
      from it: the resumed history equals that of an uninterrupted run.
    - A NaN or infinite loss term stops training with :class:`NonFiniteLossError`
      naming the step, the epoch and the term; the last checkpoint is kept.
    - ``bf16`` runs the forward pass and loss under bfloat16 autocast (opt-in; see
      ``benchmarks/`` for its speed and accuracy), where the device has native bfloat16
      (:func:`native_bf16`); elsewhere it warns and trains in float32.
    - ``before_step(model, epoch)`` runs before each epoch (e.g. a sparsity schedule);
      ``after_step(model)`` after every optimizer step (e.g. a weight constraint);
      ``after_epoch(model, history)`` once the epoch's history is recorded (e.g. to keep
      the weights of the epoch with the best validation score).
    - ``best_on`` names a history key to minimise (e.g. ``"val/loss"``): the weights of
      the best epoch are kept and restored at the end, and ``history.best_epoch`` says
      which. ``patience`` stops early after that many epochs without improvement
      (early stopping). Both survive a resume, since the best weights are checkpointed.
      ``best_from`` (0-based epoch) leaves the epochs before it out of both: a model whose
      schedule changes the task while it trains (k-sparse's falling k raises the loss) is
      judged only once the schedule is done, and its patience counts from there.
    - A checkpoint that has reached ``epochs`` or stopped early is loaded as it is:
      nothing trains, and the RNG state is that of the end of training, so
      what the caller draws next is the same as after an uninterrupted run.
      ``checkpoint_meta`` is stored in every checkpoint (``run.train`` keeps its
      configuration key there).
    - ``log_dir`` (off by default) writes every history term as a TensorBoard scalar once
      per epoch, against training examples seen (``tensorboard --logdir <log_dir>``); a
      resumed run appends the epochs it adds.
    - ``compile`` runs the training steps' loss under ``torch.compile`` (:mod:`common.compiled`:
      the same random draws and math up to float rounding, an eager fallback where compiling
      fails); validation stays eager. Opt-in: the gain differs by model and the first steps pay
      for the compilation. A run resumed in the other mode goes on from the same state, but is
      not bitwise the uninterrupted run.
    - Under ``$AE_MAX_STEPS`` (the ``paper`` dry run, :mod:`common.dryrun`) training stops
      after at most that many steps in all, spread over at most three short epochs (so
      per-epoch hooks, validation and early stopping still run), and the measured step
      rate and the uncapped step count are logged for the time estimate.
    """
    if patience is not None and best_on is None:
        raise ValueError("patience needs best_on: the history key that early stopping watches")
    if best_from and best_on is None:
        raise ValueError("best_from needs best_on: it says from which epoch best_on is watched")
    if not 0 <= best_from < max(epochs, 1):
        raise ValueError(f"best_from must be an epoch in [0, {epochs}), got {best_from}")
    history, start = History(), 0
    best: dict = {"value": float("inf"), "epoch": start - 1, "model": None}
    if checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint)
        best["epoch"] = int(state["epoch"]) - 1
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        train.load_state_dict(state["batches"])
        _set_rng_state(_from_plain_rng(state["rng"]))
        history, start = History.from_dict(state["history"]), int(state["epoch"])
        best = state.get("best") or best
        if state.get("stopped") or start >= epochs:
            return history  # finished: nothing to train, the RNG is where training left it

    def save(epoch: int, finished: bool, stopped: bool = False) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "history": history.to_dict(), "batches": train.state_dict(), "rng": _to_plain(_rng_state()),
                "best": best, "finished": finished, "stopped": stopped, **(checkpoint_meta or {})})

    device = train.device
    if bf16 and not native_bf16(device):
        warnings.warn(f"bf16 asked for, but this {device.type} has no native bfloat16 (no avx512_bf16 or AMX), "
                      "where autocast is slower than float32: training in float32", stacklevel=2)
        bf16 = False
    step_loss = compile_loss(loss_fn) if compile else loss_fn
    step = start * len(train)
    max_steps = dryrun.max_steps()
    steps_run, capped = 0, False
    if max_steps is not None:  # a dry run: at most max_steps steps in all, over at most MAX_EPOCHS epochs
        capped_epochs = max(1, min(epochs, dryrun.MAX_EPOCHS, max_steps))
        steps_per_epoch = max_steps // capped_epochs
    train_s = first_step_s = val_s = 0.0
    writer = None
    if log_dir is not None and start < epochs:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(log_dir))
    bar = progress_bar(desc=desc, disable=not progress, initial=start, total=epochs)
    for epoch in range(start, epochs):
        if before_step is not None:
            before_step(model, epoch)
        model.train()
        log: _TermLog | None = None
        seen = 0  # examples this epoch (fewer than train.n with drop_last)
        t_epoch, steps_before = time.perf_counter(), steps_run
        for x, y in train:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                terms = step_loss(model, x, y)
            if log is None:
                log = _TermLog(list(terms), check_every, device, len(train))
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            if after_step is not None:
                after_step(model)
            log.add(terms, len(x), step)
            seen += len(x)
            step += 1
            steps_run += 1
            if steps_run == 1:  # the first step pays for warm-up: timed apart, with one sync per fit
                _synchronize(device)
                first_step_s = time.perf_counter() - t_epoch
            if max_steps is not None and steps_run - steps_before >= steps_per_epoch:
                break
        history.add("train", log.means(seen) if log is not None else {})  # waits for the device once per epoch
        train_s += time.perf_counter() - t_epoch
        if val is not None:
            t_val = time.perf_counter()
            history.add("val", evaluate_terms(model, loss_fn, val))
            val_s += time.perf_counter() - t_val
        history.samples.append((history.samples[-1] if history.samples else 0) + seen)
        history.seconds += time.perf_counter() - t_epoch  # training and validation, checkpointed each epoch
        bar.set_postfix({k.split("/")[1]: f"{v[-1]:.4g}" for k, v in history.records.items()
                         if k.startswith("train/")}, refresh=False)
        bar.update(1)  # counted by hand: the loop may break before a tqdm iterator would count the epoch
        if after_epoch is not None:
            after_epoch(model, history)
        if writer is not None:  # after the hook, so that what it records is logged at this epoch
            for k, v in history.records.items():
                if v and v[-1] == v[-1]:   # a hook's NaN (nothing measured this epoch) is left out
                    writer.add_scalar(k, v[-1], global_step=history.samples[-1])
            writer.flush()
        stop = False
        if best_on is not None:
            if best_on not in history.records:
                raise KeyError(f"best_on={best_on!r} is not in the history; it has {sorted(history.records)}")
            value = history.records[best_on][-1]
            if epoch >= best_from and value < best["value"]:
                best = {"value": value, "epoch": epoch,
                        "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            # patience counts from the last best epoch, or from best_from while none is found yet
            stop = patience is not None and epoch - max(best["epoch"], best_from - 1) >= patience
        capped = max_steps is not None and epoch + 1 >= capped_epochs
        if stop or capped or epoch + 1 == epochs:
            break
        save(epoch + 1, finished=False)
    else:
        epoch, stop = start - 1, False  # no epoch ran (epochs <= start)
    bar.close()
    if writer is not None:
        writer.close()
    if max_steps is not None and steps_run:
        epochs_run = epoch + 1 - start
        dryrun.record_training(dryrun.TrainingTime(
            name=desc, planned_steps=epochs * len(train), planned_epochs=epochs, steps=steps_run,
            epochs_run=epochs_run,
            seconds_per_step=(train_s - first_step_s) / (steps_run - 1) if steps_run > 1 else train_s,
            val_seconds_per_epoch=val_s / epochs_run if val is not None else 0.0))
    if best_on is not None and best["model"] is not None:
        model.load_state_dict(best["model"])
        history.best_epoch = int(best["epoch"])
    history.stopped_early = bool(stop)
    save(epoch + 1, finished=True, stopped=stop or capped)
    return history


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _TermLog:
    """Each step's loss terms, kept on the device and checked and summed once every ``window`` steps.

    A step only copies its terms into a row of a preallocated (window, terms) buffer: two
    small kernels instead of a dozen, and no wait for the device. Every ``window`` steps (and
    at the end of an epoch) the rows are checked for NaN or inf, which reads one flag on the
    host, and added to the epoch's sums weighted by batch size. The first bad row names the
    step, the first bad column the term.
    """

    def __init__(self, names: list[str], window: int, device: torch.device, steps_per_epoch: int) -> None:
        self.names, self.steps_per_epoch = names, steps_per_epoch
        self.rows = torch.empty(max(1, window), len(names), dtype=torch.float32, device=device)
        self.sizes: list[int] = []
        self.first_step = 0
        self.total = torch.zeros(len(names), dtype=torch.float32, device=device)

    def add(self, terms: dict[str, torch.Tensor], batch: int, step: int) -> None:
        if not self.sizes:
            self.first_step = step
        self.rows[len(self.sizes)].copy_(torch.stack([terms[k].detach() for k in self.names]))
        self.sizes.append(batch)
        if len(self.sizes) == len(self.rows):
            self.flush()

    def flush(self) -> None:
        """Check the rows filled since the last flush and add them to the sums; raise on a non-finite term."""
        if not self.sizes:
            return
        rows = self.rows[:len(self.sizes)]
        bad = ~torch.isfinite(rows)
        if bool(bad.any()):
            r, c = (int(i) for i in bad.nonzero()[0])  # row-major: the earliest step, then its first bad term
            s = self.first_step + r
            raise NonFiniteLossError(
                f"loss term {self.names[c]!r} became NaN or infinite at step {s} "
                f"(epoch {s // self.steps_per_epoch}, batch {s % self.steps_per_epoch}); training stopped. "
                f"Lower the learning rate, clip the term, or check the inputs; the last checkpoint is kept.")
        sizes = torch.tensor(self.sizes, dtype=rows.dtype, device=rows.device)
        self.total += sizes @ rows
        self.sizes = []

    def means(self, seen: int) -> dict[str, float]:
        """Per-example mean of each term over the epoch so far (reads the device)."""
        self.flush()
        return dict(zip(self.names, (self.total / seen).tolist()))
