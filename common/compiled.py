"""A training loss under ``torch.compile``, drawing the same random numbers as the eager loss.

Why: on a CPU, eager PyTorch runs every elementwise operation of a loss (a sampler, a KL, a
likelihood) as its own kernel, forward and backward, each with a few microseconds of dispatch.
For the small MLPs of these papers that is a large share of a step. Inductor fuses the forward's
and the backward's elementwise work into a few C++ loops and leaves the matrix products to the
same BLAS calls. ``benchmarks/step_floor.py --compile`` measures the gain per model, against
the eager step, in one run: it is not the same for every model (it can be negative), so
:func:`common.train.fit` compiles only when asked (``fit(compile=True)``).

Two settings keep the compiled step the eager step's computation:

- ``fallback_random``: ``torch.rand``/``randn`` inside the loss stay calls into torch's own
  generator, so a seeded compiled run draws the very numbers an eager run draws (inductor's
  default would use its own generator: the same law, other numbers). Tests check that one step
  gives the eager loss and gradients.
- ``dynamic=False``: one graph per batch shape (an epoch's short last batch adds a second),
  not a shape-generic one, which would fail on a ``torch.rand`` of a symbolic size.

Compiling needs a C++ compiler on a CPU (and Triton on a GPU). Where it fails, for that or any
other reason, the step is re-run eagerly from the same random state, a warning names the cause,
and training goes on eagerly: a run never stops because compilation did.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch import nn

LossFn = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None"], dict[str, torch.Tensor]]

#: Inductor settings for a training loss (see the module's docstring).
COMPILE_OPTIONS = {"fallback_random": True}


class CompiledLoss:
    """``loss_fn`` compiled on first use; eager from the first failure on (with one warning).

    ``compiled`` says which one the last call ran: True, False, or None before any call.
    """

    def __init__(self, loss_fn: LossFn) -> None:
        self.loss_fn = loss_fn
        self._compiled = torch.compile(loss_fn, dynamic=False, options=COMPILE_OPTIONS)
        self.compiled: bool | None = None
        self.failure: str | None = None

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.failure is not None:
            return self.loss_fn(model, x, y)
        cpu_state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state(x.device) if x.device.type == "cuda" else None
        try:
            out = self._compiled(model, x, y)
        except Exception as e:  # compilation (no compiler, an unsupported op) or the loss itself: see below
            torch.set_rng_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, x.device)
            out = self.loss_fn(model, x, y)  # a real error in the loss raises here, eagerly, as it would unasked
            self.failure = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            warnings.warn(f"torch.compile of the training loss failed ({self.failure[:300]}); "
                          "training goes on in eager mode, which computes the same", stacklevel=2)
            self.compiled = False
            return out
        self.compiled = True
        return out


def compile_loss(loss_fn: LossFn) -> CompiledLoss:
    """``loss_fn`` for training steps under ``torch.compile``, with the eager RNG stream and an eager fallback."""
    return loss_fn if isinstance(loss_fn, CompiledLoss) else CompiledLoss(loss_fn)
