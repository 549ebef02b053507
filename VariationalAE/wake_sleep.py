"""Wake-sleep (Hinton, Dayan, Frey & Neal 1995): the baseline of Kingma & Welling's Fig. 2, on AEVB's own networks.

The paper compares AEVB with wake-sleep "with the same encoder (recognition model)" (Sec. 5).
Wake-sleep trains the two halves of the model on two different objectives:

- **wake phase**: draw z ~ q_phi(z|x) for a data point x and raise log p_theta(x|z) (the
  generative model learns from the recognition model's explanations; no gradient reaches phi);
- **sleep phase**: dream z ~ p(z), x ~ p_theta(x|z) and raise log q_phi(z|x) (the recognition
  model learns to invert the generative model's own fantasies; no gradient reaches theta).

Neither phase follows the gradient of one objective, which is why the paper can plot wake-sleep's
variational lower bound (eq. 3, evaluated with q_phi) against AEVB's. The prior p(z) = N(0, I) is
fixed, as in AEVB. ``wake_sleep_loss`` is a ``fit`` loss: its ``loss`` is the sum of both phases'
negative log-densities, whose gradient updates theta by the wake term and phi by the sleep term in
one optimizer step; ``neg_bound`` is the negative lower bound, recorded (not trained on) so that
the history's ``val/neg_bound`` is Fig. 2's test curve. The bound reuses the wake phase's draw
z ~ q(z|x): -B = -log p(x|z) + KL(q||p) (eq. 10, L = 1) is then the wake term plus the closed-form KL,
the same estimator as ``elbo_terms`` at no extra pass through the networks.
"""
from __future__ import annotations

import torch
from torch import nn

from common.gaussian import gaussian_kl, log_normal, reparameterize


def dream(model: nn.Module, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, z): n fantasies of the generative model, z ~ N(0, I) and x ~ p_theta(x|z), with no gradient.

    A Bernoulli decoder (one with ``logits``) gives binary pixels; a Gaussian one (one with
    ``params`` -> mean, log-variance) gives mean + sigma * noise.
    """
    device = next(model.parameters()).device
    with torch.no_grad():
        z = torch.randn(n, model.z_dim, device=device)
        if hasattr(model.decoder, "logits"):
            x = torch.bernoulli(torch.sigmoid(model.decoder.logits(z)))
        elif hasattr(model.decoder, "params"):
            mean, logvar = model.decoder.params(z)
            x = reparameterize(mean, logvar)
        else:
            raise TypeError(f"cannot sample from a {type(model.decoder).__name__}: it needs logits() or params()")
    return x, z


def wake_sleep_terms(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example negative log-densities of both phases: ``wake`` = -log p(x|z), z ~ q(z|x) held fixed,
    and ``sleep`` = -log q(z_d|x_d) on a dream (x_d, z_d) of the same size as the batch; ``kl`` =
    KL(q(z|x) || p(z)) of the wake phase's posterior, without gradient (for the bound)."""
    x = model.flat(x)
    with torch.no_grad():
        mu, logvar = model.encoder(x)
        z = reparameterize(mu, logvar)
        kl = gaussian_kl(mu, logvar)
    wake = -model.decoder.log_prob(x, z)                 # gradient to theta only
    x_dream, z_dream = dream(model, len(x))
    mu_d, logvar_d = model.encoder(x_dream)
    sleep = -log_normal(z_dream, mu_d, logvar_d)         # gradient to phi only
    return {"wake": wake, "sleep": sleep, "kl": kl}


def wake_sleep_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``fit`` loss of wake-sleep: ``loss`` = mean wake + mean sleep; ``neg_bound`` = -B (eq. 10, L = 1),
    the variational lower bound that Fig. 2 plots, without gradient (nats per example), from the wake
    phase's own draw of z."""
    t = wake_sleep_terms(model, x)
    neg_bound = (t["wake"].detach() + t["kl"]).mean()
    return {"loss": t["wake"].mean() + t["sleep"].mean(), "wake": t["wake"].mean(), "sleep": t["sleep"].mean(),
            "neg_bound": neg_bound}
