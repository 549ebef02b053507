"""Auto-Encoding Variational Bayes (Kingma & Welling, ICLR 2014): the paper's models and bound.

Names follow the paper. The recognition model q_phi(z|x) is a Gaussian MLP (Appendix
C.2 with x and z swapped); the generative model p_theta(x|z) is a Bernoulli MLP for
binary data (Appendix C.1) or a Gaussian MLP for real-valued data (Appendix C.2); the
prior is p(z) = N(0, I). Training maximises the SGVB estimator B of eq. (10), with the
KL term in closed form (Appendix B) and L samples of z = mu + sigma * eps (Sec. 2.4).

Every log-density here is a sum over pixels (or latents) per example, in nats, so
``elbo_loss`` reads in nats per datapoint, as the paper's Figure 2 does.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from common.data import Chunks  # the chunked minibatch stream moved to common.data (issue 12)
from common.gaussian import gaussian_kl, log_normal, log_standard_normal, reparameterize


#: Soft lower bound on the Gaussian decoder's per-pixel log-variance: sigma >= ~0.01.
#: Without it the Gaussian likelihood is unbounded above (sigma -> 0 on a pixel the
#: decoder gets right), so the bound could run off to +inf; the paper does not say
#: how it avoided this (its Frey Face bound stays near 1,600 nats).
GAUSSIAN_LOGVAR_MIN = 2 * math.log(0.01)


# ---------------------------------------------------------------------------
# The MLPs of Appendix C
# ---------------------------------------------------------------------------
class GaussianEncoder(nn.Module):
    """q_phi(z|x) = N(z; mu, sigma^2 I) (Appendix C.2, with x as input and z as output).

    h = tanh(W3 x + b3), mu = W4 h + b4, log sigma^2 = W5 h + b5.
    """

    def __init__(self, x_dim: int, hidden: int, z_dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(x_dim, hidden)   # W3, b3
        self.mu = nn.Linear(hidden, z_dim)       # W4, b4
        self.logvar = nn.Linear(hidden, z_dim)   # W5, b5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.hidden(x))
        return self.mu(h), self.logvar(h)


class BernoulliDecoder(nn.Module):
    """p_theta(x|z) Bernoulli MLP (Appendix C.1).

    y = f_sigma(W2 tanh(W1 z + b1) + b2);  log p(x|z) = sum_i x_i log y_i + (1 - x_i) log(1 - y_i).
    The sum is computed from the logits (binary_cross_entropy_with_logits) for stability.
    """

    def __init__(self, z_dim: int, hidden: int, x_dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(z_dim, hidden)   # W1, b1
        self.out = nn.Linear(hidden, x_dim)      # W2, b2

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(z)))

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example; ``z`` may carry extra leading sample dimensions."""
        logits = self.logits(z)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] = y, the pixel probabilities."""
        return torch.sigmoid(self.logits(z))


class GaussianDecoder(nn.Module):
    """p_theta(x|z) Gaussian MLP (Appendix C.2) with sigmoid means, as the paper uses for Frey Face.

    h = tanh(W3 z + b3), mu = sigmoid(W4 h + b4), log sigma^2 = W5 h + b5, and
    log p(x|z) = log N(x; mu, sigma^2 I): a true Gaussian log-density per pixel, including
    the log-variance and log(2 pi) terms (not a squared error). The per-pixel
    log-variance is bounded softly from below at ``GAUSSIAN_LOGVAR_MIN`` (a softplus
    floor) so the density stays finite.
    """

    def __init__(self, z_dim: int, hidden: int, x_dim: int, logvar_min: float = GAUSSIAN_LOGVAR_MIN) -> None:
        super().__init__()
        self.hidden = nn.Linear(z_dim, hidden)   # W3, b3
        self.mu = nn.Linear(hidden, x_dim)       # W4, b4
        self.logvar = nn.Linear(hidden, x_dim)   # W5, b5
        self.logvar_min = logvar_min

    def params(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.hidden(z))
        raw = self.logvar(h)
        logvar = self.logvar_min + F.softplus(raw - self.logvar_min)
        return torch.sigmoid(self.mu(h)), logvar

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.params(z)
        return log_normal(x, mean, logvar)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return self.params(z)[0]


class VAE(nn.Module):
    """A Gaussian encoder, a Bernoulli or Gaussian decoder and the prior N(0, I).

    ``image_shape`` is (C, H, W); images are flattened to x of length C*H*W.
    """

    def __init__(self, image_shape: tuple[int, ...], hidden: int, z_dim: int, likelihood: str = "bernoulli") -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.x_dim = math.prod(self.image_shape)
        self.z_dim = z_dim
        self.likelihood = likelihood
        self.encoder = GaussianEncoder(self.x_dim, hidden, z_dim)
        if likelihood == "bernoulli":
            self.decoder: nn.Module = BernoulliDecoder(z_dim, hidden, self.x_dim)
        elif likelihood == "gaussian":
            self.decoder = GaussianDecoder(z_dim, hidden, self.x_dim)
        else:
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), self.x_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean mu(x) (used for reconstructions and interpolation)."""
        return self.encoder(self.flat(x))[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean E[x|z] as images (N, C, H, W)."""
        return self.decoder.mean(z).reshape(len(z), *self.image_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means at n draws z ~ p(z) (the paper's Figure 5 shows such means)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.z_dim, generator=generator, device="cpu").to(device)
        return self.decode(z)


# ---------------------------------------------------------------------------
# The bound and the importance weights
# ---------------------------------------------------------------------------
def elbo_terms(model: VAE, x: torch.Tensor, n_samples: int = 1) -> dict[str, torch.Tensor]:
    """Per-example SGVB estimator B (eq. 10): -KL(q||p) + 1/L sum_l log p(x|z_l), and its parts.

    Returns ``elbo``, ``rec`` (-1/L sum_l log p(x|z_l)) and ``kl``, each of shape (N,).
    """
    x = model.flat(x)
    mu, logvar = model.encoder(x)
    eps = torch.randn((n_samples, *mu.shape), device=mu.device, dtype=mu.dtype)
    z = reparameterize(mu, logvar, eps)                       # (L, N, z_dim)
    rec = -model.decoder.log_prob(x, z).mean(0)               # (N,)
    kl = gaussian_kl(mu, logvar)
    return {"elbo": -(rec + kl), "rec": rec, "kl": kl}


def elbo_loss(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, n_samples: int = 1) -> dict[str, torch.Tensor]:
    """``fit`` loss: the negative bound -B (eq. 10) per datapoint, averaged over the minibatch.

    With M = 100 and L = 1 this is the paper's estimator (eq. 8 divided by N).
    Keys: ``loss`` (= -bound), ``rec``, ``kl`` (nats per example).
    """
    t = elbo_terms(model, x, n_samples)
    return {"loss": -t["elbo"].mean(), "rec": t["rec"].mean(), "kl": t["kl"].mean()}


GaussianPosterior = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
LogLikelihood = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def log_importance_weights(x: torch.Tensor, k: int, posterior: GaussianPosterior,
                           log_likelihood: LogLikelihood) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x), shape (k, N).

    ``posterior(x) -> (mu, logvar)`` is q's Gaussian; ``log_likelihood(x, z)`` is log p(x|z)
    broadcast over z's leading sample dimension; the prior is N(0, I). Then
    logsumexp_i(log w_i) - log k estimates log p(x) (used by
    ``common.evaluate.importance_sampled_log_likelihood``); E[log w] is the bound of eq. (3).
    """
    mu, logvar = posterior(x)
    z = reparameterize(mu, logvar, torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype))
    return log_likelihood(x, z) + log_standard_normal(z) - log_normal(z, mu, logvar)


def vae_log_weights(model: VAE) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """``log_weights(x, k)`` of a trained VAE, for ``importance_sampled_log_likelihood``."""
    def log_weights(x: torch.Tensor, k: int) -> torch.Tensor:
        xf = model.flat(x)
        return log_importance_weights(xf, k, model.encoder, model.decoder.log_prob)
    return log_weights


@torch.no_grad()
def test_bound(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Per-example bound (one z sample each, eq. 10 with L = 1) on ``x``, in eval mode."""
    model.eval()
    return torch.cat([elbo_terms(model, xb)["elbo"] for xb in x.split(batch_size)])


# ---------------------------------------------------------------------------
# The paper's training details (Sec. 5)
# ---------------------------------------------------------------------------
def init_normal_(model: nn.Module, std: float) -> nn.Module:
    """Initialise every weight and bias from N(0, std^2) (Sec. 5: "N(0, 0.01)").

    The paper's "N(0, 0.01)" is read as variance 0.01, i.e. std = 0.1; pass 0.01 for
    the other reading.
    """
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    return model


def parameter_prior_weight_decay(n_train: int) -> float:
    """Weight decay equal to the N(0, I) prior on the parameters (Sec. 5).

    The objective is sum_i L(theta; x_i) + log p(theta) with log p(theta) = -|theta|^2 / 2.
    Per datapoint (what ``elbo_loss`` minimises) that adds |theta|^2 / (2 N), whose
    gradient is theta / N: torch's ``weight_decay`` of 1 / N.
    """
    return 1.0 / n_train


# ---------------------------------------------------------------------------
# Checks on figures (Figures 4 and 5 are qualitative in the paper)
# ---------------------------------------------------------------------------
@torch.no_grad()
def importance_bound(model: VAE, x: torch.Tensor, k: int = 100, batch_size: int = 500) -> torch.Tensor:
    """Per-example bound E_q[log w] (eq. 3) averaged over k samples of z; a low-variance companion to the IS estimate."""
    log_weights = vae_log_weights(model)
    return torch.cat([log_weights(xb, k).mean(0) for xb in x.split(batch_size)])


@torch.no_grad()
def adjacent_tile_ratio(images: torch.Tensor, n: int) -> float:
    """Smoothness of a decoded n x n manifold grid (row-major tiles, as ``manifold_grid`` orders them).

    Mean squared distance between horizontally or vertically adjacent tiles, divided by
    the mean squared distance between two tiles drawn at random from the grid (twice the
    summed per-pixel variance). Near 0: neighbours look alike (a smooth manifold); near 1:
    no more alike than any two tiles.
    """
    t = images.reshape(n, n, -1).float()
    adjacent = torch.cat([(t[:, 1:] - t[:, :-1]).pow(2).sum(-1).flatten(),
                          (t[1:] - t[:-1]).pow(2).sum(-1).flatten()]).mean()
    random_pair = 2 * t.reshape(n * n, -1).var(0, unbiased=False).sum()
    return float(adjacent / random_pair.clamp_min(1e-12))


@torch.no_grad()
def manifold_variation(images: torch.Tensor, data: torch.Tensor) -> float:
    """How much a decoded grid varies: summed per-pixel variance over its tiles / that over ``data``.

    The companion of :func:`adjacent_tile_ratio` (Figure 4): a collapsed decoder that draws
    one image everywhere has a perfectly "smooth" grid (ratio 0) but no variation (0 here);
    a manifold that covers the data's variety reaches a sizeable fraction of the data's variance.
    """
    t = images.reshape(len(images), -1).float()
    d = data.reshape(len(data), -1).float().to(t.device)
    return float(t.var(0, unbiased=False).sum() / d.var(0, unbiased=False).sum().clamp_min(1e-12))


@torch.no_grad()
def sample_statistics(samples: torch.Tensor, data: torch.Tensor) -> tuple[float, float]:
    """(correlation of the mean sample with the mean data image, per-pixel spread of samples / of data).

    A model whose samples look like the data has a mean image close to the data's
    (correlation near 1) and spread comparable to the data's (ratio near 1; a collapsed
    model that draws one image gives 0).
    """
    s = samples.reshape(len(samples), -1).float().cpu()
    d = data.reshape(len(data), -1).float().cpu()
    corr = torch.corrcoef(torch.stack([s.mean(0), d.mean(0)]))[0, 1]
    spread = s.std(0).mean() / d.std(0).mean().clamp_min(1e-12)
    return float(corr), float(spread)


# ---------------------------------------------------------------------------
# Training one model for Figure 2, and its final bounds
# ---------------------------------------------------------------------------
class TrainingClock:
    """``fit``'s ``after_epoch`` hook that records the cumulative training seconds as ``time/s``.

    Kept in the history, so it is saved with every checkpoint: a model reloaded from a
    finished checkpoint still reports how long it took to train, and a resumed one adds
    the time of this session to that of the interrupted one.
    """

    def __init__(self) -> None:
        import time

        self._clock = time.time
        self.start = time.time()
        self.base: float | None = None

    def __call__(self, model: nn.Module, history) -> None:
        if self.base is None:  # first epoch of this session: continue from the checkpoint's total, if any
            self.base = history.records["time/s"][-1] if history.records.get("time/s") else 0.0
        history.add("time", {"s": self.base + self._clock() - self.start})


def train_vae(train_set, test_set, image_shape: tuple[int, ...], hidden: int, z_dim: int, likelihood: str, *,
              optimizer: str, lr: float, init_std: float, batch_size: int, chunk: int, chunks: int,
              device: torch.device | str, seed: int, progress: bool = True, desc: str = "train",
              run=None, name: str | None = None):
    """Train a fresh VAE with the SGVB estimator (eq. 10, L = 1) and return (model, history, seconds).

    ``train_set`` and ``test_set`` are :class:`common.data.ImageSet`. The model starts from
    N(0, init_std^2) (Sec. 5) and the optimizer carries the N(0, I) parameter prior as weight
    decay. ``fit`` sees ``chunks`` "epochs" of ``chunk`` minibatches of ``batch_size``, and
    evaluates the bound on ``test_set`` after each, so ``history.samples`` is Figure 2's
    horizontal axis and ``-history["val/loss"]`` its test curve.

    With ``run`` (:class:`common.run.Run`) and ``name`` the model is trained through
    ``run.train``: a finished checkpoint of the same configuration is reloaded, an
    unfinished one resumed (the chunked stream restores its position). The seconds are
    the training time recorded in the history (``time/s``), so they survive a reload.
    """
    import sys

    from common.train import fit, make_optimizer, seed_everything

    seed_everything(seed)
    model = init_normal_(VAE(image_shape, hidden, z_dim, likelihood), init_std).to(device)
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay=parameter_prior_weight_decay(len(train_set)))
    stream = Chunks(train_set.batches(batch_size, device, seed=seed), chunk)
    kwargs = dict(val=test_set.batches(1000, device, shuffle=False), progress=progress, desc=desc,
                  after_epoch=TrainingClock())
    if run is None:
        hist = fit(model, elbo_loss, stream, opt, chunks, **kwargs)
    else:
        if not name:
            raise ValueError("training through a run needs a model name")
        config = {"train_data": getattr(train_set, "name", "?"), "n_train": len(train_set),
                  "test_data": getattr(test_set, "name", "?"), "n_test": len(test_set), "init_std": init_std,
                  "chunk": chunk, "likelihood": likelihood, "seed": seed}
        hist = run.train(name, model, elbo_loss, stream, chunks, optimizer=opt, config=config,
                         sources=(sys.modules[__name__],), **kwargs)
    return model.eval(), hist, hist["time/s"][-1] if hist.records.get("time/s") else 0.0


def train_test_bounds(models: dict, x_train: torch.Tensor, x_test: torch.Tensor, seed: int) -> dict:
    """Final bound per model on a training subset and the test set (one z each), and the gap, in nats."""
    out = {}
    for key, m in models.items():
        torch.manual_seed(seed)
        tr, te = test_bound(m, x_train).mean().item(), test_bound(m, x_test).mean().item()
        out[key] = {"train": tr, "test": te, "gap": tr - te}
    return out
