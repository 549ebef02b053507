"""A training loss under ``torch.compile``, drawing the same random numbers as the eager loss.

Why: on a CPU, eager PyTorch runs every elementwise operation of a loss (a sampler, a KL, a
likelihood) as its own kernel, forward and backward, each with a few microseconds of dispatch.
For the small MLPs of these papers that is a large share of a step. Inductor fuses the forward's
and the backward's elementwise work into a few C++ loops and leaves the matrix products to the
same BLAS calls. ``benchmarks/step_floor.py --compile`` measures the gain per model against the
eager step in one run (benchmarks/README.md): it differs by model and can be nil, and the first
steps pay for compiling, so :func:`common.train.fit` compiles only when asked (``compile=True``).

What is computed stays the eager loss's, up to float rounding (fused loops may reorder sums, so
a long run is not bitwise the eager one):

- ``fallback_random``: ``torch.rand``/``randn`` inside the loss stay calls into torch's own
  generator, so a seeded compiled run draws the very numbers an eager run draws (inductor's
  default would use its own generator: the same law, other numbers). Tests check one step's
  loss, gradients and the generator's next draw against eager.
- ``dynamic=False``: one graph per batch shape (an epoch's short last batch adds a second),
  not a shape-generic one, which fails on a ``torch.rand`` of a symbolic size.

Compiling needs a C++ compiler on a CPU (Triton on a GPU). Where compiling fails, for that or
any other reason, the step is re-run eagerly from the same random state, one warning names the
cause, and that loss runs eagerly from then on: a run never stops because compilation did. The
backward graph is compiled with the forward (not lazily at the first ``backward()``), so its
failure is caught here too. Limits: the restored random state is torch's global CPU generator
and the batch's CUDA device's, not an explicit ``torch.Generator``; and dynamo itself goes
eager, without an error, for a loss it had to recompile more than ``recompile_limit`` times
(8 by default; every model class and batch shape is one compilation).
"""
from __future__ import annotations

import warnings
import weakref
from typing import Callable

import torch
import torch._functorch.config as functorch_config
from torch import nn

#: ``loss_fn(model, x, y) -> dict[str, Tensor]``, as :func:`common.train.fit` takes it.
LossFn = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None"], dict[str, torch.Tensor]]

#: Inductor settings for a training loss (see the module's docstring).
COMPILE_OPTIONS = {"fallback_random": True}


class CompiledLoss:
    """``loss_fn`` compiled on first use; eager from its first failed compilation on (with one warning).

    ``failure`` is None until a compilation fails, then that error in one line.
    """

    def __init__(self, loss_fn: LossFn) -> None:
        self.loss_fn = loss_fn
        self._compiled_fn = torch.compile(loss_fn, dynamic=False, options=COMPILE_OPTIONS)
        self.failure: str | None = None

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.failure is not None:
            return self.loss_fn(model, x, y)
        # Every step pays for this snapshot, so it is the generators a loss draws from (1 us), not
        # common.train's checkpoint snapshot of every generator (numpy's and Python's too: about 50 us).
        cpu_state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state(x.device) if x.device.type == "cuda" else None
        try:
            with functorch_config.patch(force_non_lazy_backward_lowering=True):
                return self._compiled_fn(model, x, y)
        except Exception as e:  # compilation (no compiler, an unsupported op) or the loss itself: see below
            torch.set_rng_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, x.device)
            out = self.loss_fn(model, x, y)  # a real error in the loss raises here, eagerly, as it would unasked
            message = str(e).strip()
            self.failure = f"{type(e).__name__}: {message.splitlines()[0] if message else ''}"
            warnings.warn(f"torch.compile of the training loss failed ({self.failure[:300]}); "
                          "training goes on in eager mode, which computes the same", stacklevel=3)
            return out


#: One wrapper per loss, so that a loss whose compilation failed is not tried again at every fit() call.
_WRAPPERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compile_loss(loss_fn: LossFn) -> CompiledLoss:
    """``loss_fn`` for training steps under ``torch.compile``, with the eager RNG stream and an eager fallback."""
    if isinstance(loss_fn, CompiledLoss):
        return loss_fn
    try:
        wrapper = _WRAPPERS.get(loss_fn)
        if wrapper is None:
            wrapper = _WRAPPERS[loss_fn] = CompiledLoss(loss_fn)
    except TypeError:  # not weakly referable or not hashable (an eq-only dataclass): one wrapper per call
        wrapper = CompiledLoss(loss_fn)
    return wrapper
