"""Monte Carlo EM with Hamiltonian Monte Carlo: the second baseline of Kingma & Welling (2014), Fig. 3.

MCEM has no recognition model. It keeps one latent z_i per training point and alternates:

- **E step**: move each z_i by Hamiltonian (hybrid) Monte Carlo on the posterior
  p_theta(z|x_i) ∝ p_theta(x_i|z) p(z), continuing the chain where it stopped;
- **M step**: raise log p_theta(x_i|z_i) with a few gradient steps on theta using those samples.

The paper's settings (Sec. 5, as we read it): 10 leapfrog steps a transition, a step size tuned
automatically so that about 90% of proposals are accepted, then 5 weight updates per sample.
``hmc_step`` is one transition for a batch of independent chains, each with its own step size;
``tune_step_size`` nudges those step sizes towards the target acceptance rate.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from common.data import Batches, Chunks
from common.gaussian import log_standard_normal

LogDensity = Callable[[torch.Tensor], torch.Tensor]

#: The paper's HMC: 10 leapfrog steps, step size tuned for a 90% acceptance rate, 5 weight updates per sample.
LEAPFROG_STEPS, TARGET_ACCEPTANCE, UPDATES_PER_SAMPLE = 10, 0.9, 5


def _value_and_grad(log_density: LogDensity, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        value = log_density(z)
        (grad,) = torch.autograd.grad(value.sum(), z)
    return value.detach(), grad


def hmc_step(log_density: LogDensity, z: torch.Tensor, step_size: torch.Tensor | float,
             n_leapfrog: int = LEAPFROG_STEPS, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """One HMC transition of each chain (rows of ``z``); returns (new z, acceptance probability per chain).

    ``log_density(z)`` is the unnormalised log target per row, shape (N,); ``step_size`` a float
    or one per chain, shape (N, 1). Momenta are standard normal, the leapfrog integrator is
    volume-preserving and reversible, and the Metropolis test on the total energy makes the
    transition leave the target invariant for any step size.
    """
    z = z.detach()
    eps = torch.as_tensor(step_size, dtype=z.dtype, device=z.device)
    p0 = torch.randn(z.shape, generator=generator, dtype=z.dtype, device="cpu").to(z.device)
    log_p0, grad = _value_and_grad(log_density, z)
    zq, p = z, p0 + 0.5 * eps * grad
    for i in range(n_leapfrog):
        zq = zq + eps * p
        log_pq, grad = _value_and_grad(log_density, zq)
        if i < n_leapfrog - 1:
            p = p + eps * grad
    p = p + 0.5 * eps * grad
    log_ratio = (log_pq - 0.5 * p.pow(2).sum(-1)) - (log_p0 - 0.5 * p0.pow(2).sum(-1))
    log_ratio = torch.nan_to_num(log_ratio, nan=-torch.inf)          # a diverged trajectory is rejected
    u = torch.rand(log_ratio.shape, generator=generator, dtype=z.dtype, device="cpu").to(z.device)
    accept = u.log() < log_ratio
    return torch.where(accept.unsqueeze(-1), zq, z), log_ratio.clamp(max=0.0).exp()


def tune_step_size(step_size: torch.Tensor, acceptance: torch.Tensor, target: float = TARGET_ACCEPTANCE,
                   rate: float = 0.5) -> torch.Tensor:
    """Each chain's step size times exp(rate * (acceptance - target)): larger when it accepts more than the target."""
    return step_size * torch.exp(rate * (acceptance - target)).unsqueeze(-1)


def posterior_log_density(decoder: nn.Module, x: torch.Tensor) -> LogDensity:
    """z -> log p_theta(x|z) + log p(z) for the rows of ``x`` (one chain per row), the E step's target."""
    return lambda z: decoder.log_prob(x, z) + log_standard_normal(z)


class MCEM(nn.Module):
    """A generative model trained by MCEM: ``decoder`` (p_theta(x|z)) and one persistent HMC chain per training point.

    The chains' states ``z`` and their step sizes are buffers, so a checkpoint of the model resumes
    the E step where it stopped. ``mcem_loss`` trains it through ``fit`` on :class:`RepeatedBatches`,
    whose labels are the training points' indices.
    """

    def __init__(self, decoder: nn.Module, n_train: int, z_dim: int, step_size: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        self.decoder, self.z_dim = decoder, z_dim
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("z", torch.randn(n_train, z_dim, generator=g))       # chains start at prior draws
        self.register_buffer("step_size", torch.full((n_train, 1), step_size))
        self.last_index: torch.Tensor | None = None     # the batch whose E step was run last
        self.last_acceptance = torch.tensor(float("nan"))


def mcem_loss(model: MCEM, x: torch.Tensor, index: torch.Tensor) -> dict[str, torch.Tensor]:
    """``fit`` loss of MCEM: when a new batch arrives (not a repeat of the last one), one HMC transition of its
    chains (E step); then ``loss`` = -mean log p_theta(x|z) at the chains' states (the M step's objective; the
    prior has no parameters). ``acceptance`` is the mean acceptance probability of the batch's transition.

    Training only: MCEM has no recognition model, so a held-out batch has no chains to read (its
    likelihood is estimated apart); in eval mode this raises.
    """
    if not model.training:
        raise ValueError("mcem_loss trains only: held-out points have no chains (estimate their likelihood apart)")
    if index is None or index.dim() != 1 or len(index) != len(x):
        raise ValueError("mcem_loss needs each row's training index as its label (use RepeatedBatches)")
    x = x.reshape(len(x), -1)
    if model.last_index is None or not torch.equal(index, model.last_index):
        z, acceptance = hmc_step(posterior_log_density(model.decoder, x), model.z[index], model.step_size[index])
        model.z[index] = z
        model.step_size[index] = tune_step_size(model.step_size[index], acceptance)
        model.last_index, model.last_acceptance = index, acceptance.mean()
    return {"loss": -model.decoder.log_prob(x, model.z[index]).mean(), "acceptance": model.last_acceptance}


class RepeatedBatches:
    """Each minibatch of ``batches`` presented ``times`` times in a row: the M step's several weight updates on
    one E step's samples. Its labels become the rows' indices (what ``mcem_loss`` needs), so build the
    :class:`~common.data.Batches` (or the :class:`~common.data.Chunks` of them) for it alone. Every presentation counts as training samples seen (``n``
    is ``times`` x the data), as every weight update evaluates its batch.
    """

    def __init__(self, batches: Batches | Chunks, times: int = UPDATES_PER_SAMPLE) -> None:
        base = batches.batches if isinstance(batches, Chunks) else batches   # Chunks: "epochs" of a few batches
        if not isinstance(base, Batches):
            raise TypeError(f"RepeatedBatches wraps common.data.Batches or Chunks, got {type(batches).__name__}")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        self.batches, self.times = batches, times
        base.y = torch.arange(base.n, device=base.device)

    @property
    def n(self) -> int:
        return self.batches.n * self.times

    @property
    def batch_size(self) -> int:
        return self.batches.batch_size

    @property
    def device(self) -> torch.device:
        return self.batches.device

    def __len__(self) -> int:
        return len(self.batches) * self.times

    def __iter__(self):
        for batch in self.batches:
            for _ in range(self.times):
                yield batch

    def state_dict(self) -> dict:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state)
