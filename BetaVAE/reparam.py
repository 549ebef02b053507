"""Three ways to let the encoder give q(z|x)'s scale (the VAE-for-faces seed project compares them).

The encoder's second head outputs a raw vector s per face; the posterior's variance is read from it as

- ``"log_var"``: log sigma^2 = s (what every model here uses, Kingma & Welling's Appendix C.2);
- ``"sigma"``: sigma = s itself, unconstrained (only sigma^2 enters the KL and the sample's spread,
  so its sign does not matter, but sigma near 0 makes log sigma^2 and its gradient blow up);
- ``"softplus"``: sigma = softplus(s) + 1e-4, positive and smooth, linear for large s.

The same z = mu + sigma * eps and the same closed-form KL follow in each case; the three differ
only in how the optimiser sees the scale. They also start apart: with the head's outputs near 0 at
initialisation, sigma is about 1 (log sigma^2), 0 (sigma) or 0.69 (softplus), a difference a
comparison must report beside the training curves. :class:`ReparamConvVAE` is the CelebA net with that choice.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from BetaVAE.betavae import ConvBetaVAE

SCALES = ("log_var", "sigma", "softplus")
#: sigma's floor in the "sigma" and "softplus" readings: log sigma^2 stays above about -18.4.
SIGMA_FLOOR = 1e-4


def scale_to_log_var(s: torch.Tensor, scale: str) -> torch.Tensor:
    """log sigma^2 from the encoder's raw scale output ``s`` under the reading ``scale`` (one of ``SCALES``)."""
    if scale == "log_var":
        return s
    if scale == "sigma":
        return torch.log(s.pow(2) + SIGMA_FLOOR ** 2)
    if scale == "softplus":
        return 2 * torch.log(F.softplus(s) + SIGMA_FLOOR)
    raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")


class ReparamConvVAE(ConvBetaVAE):
    """:class:`BetaVAE.betavae.ConvBetaVAE` whose encoder's scale head is read as ``scale`` says."""

    def __init__(self, *args, scale: str = "log_var", **kwargs) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
        super().__init__(*args, **kwargs)
        self.scale = scale

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale}"

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, s = super().posterior(x)
        return mu, scale_to_log_var(s, self.scale)
