"""The VariationalAE notebook's experiment: training one Fig. 2 model, its bounds, the figure checks.

The paper's models and bound are in ``VariationalAE/vae.py``; this module trains them
through :meth:`common.run.Run.train` and measures what the notebook's claims are judged on.
"""
from __future__ import annotations


import torch

from common import gaussian
from common.data import Chunks, ImageSet
from common.run import Run
from common.train import History, make_optimizer, seed_everything
from VariationalAE import vae, wake_sleep
from VariationalAE.config import Training
from VariationalAE.vae import VAE, elbo_loss, elbo_terms, init_normal_, parameter_prior_weight_decay, vae_log_weights
from VariationalAE.wake_sleep import wake_sleep_loss


# ---------------------------------------------------------------------------
# Training one model for Figure 2
# ---------------------------------------------------------------------------
def train_vae(run: Run, name: str, train_set: ImageSet, test_set: ImageSet, image_shape: tuple[int, ...],
              hidden: int, z_dim: int, likelihood: str, training: Training,
              device: torch.device | str, method: str = "aevb", **fit_kwargs) -> tuple[VAE, History]:
    """Train (or reload, or resume) the VAE called ``name`` with the SGVB estimator (eq. 10, L = 1).

    ``method="wake-sleep"`` trains the same networks, from the same initialisation and on the
    same batches, by wake-sleep instead (``VariationalAE/wake_sleep.py``, Fig. 2's baseline);
    its history then records the bound as ``neg_bound`` (``loss`` is the two phases' sum), and
    rule R9 watches ``val/neg_bound``.

    The model starts from N(0, init_std^2) (Sec. 5) and the optimizer carries the N(0, I)
    parameter prior as weight decay 1/N. ``fit`` sees ``training.chunks`` "epochs" of
    ``training.chunk`` minibatches and evaluates the bound on ``test_set`` after each, so
    ``history.samples`` is Figure 2's horizontal axis and ``-history["val/loss"]`` its test
    curve; ``history.seconds`` is the training time, kept in the checkpoint. Returns the
    model in eval mode and its history.
    """
    seed_everything(run.seed)
    model = init_normal_(VAE(image_shape, hidden, z_dim, likelihood), training.init_std).to(device)
    opt = make_optimizer(training.optimizer, model.parameters(), training.lr,
                         weight_decay=parameter_prior_weight_decay(len(train_set)))
    stream = Chunks(train_set.batches(training.batch_size, device, seed=run.seed), training.chunk)
    config = {"train_data": getattr(train_set, "name", "?"), "n_train": len(train_set),
              "test_data": getattr(test_set, "name", "?"), "n_test": len(test_set),
              "init_std": training.init_std, "chunk": training.chunk, "likelihood": likelihood}
    if method not in ("aevb", "wake-sleep"):
        raise ValueError(f"method must be 'aevb' or 'wake-sleep', got {method!r}")
    if method == "aevb":    # the AEVB key stays what it was before wake-sleep existed (published weights hold)
        loss, sources, watched = elbo_loss, (vae, gaussian), None
    else:
        loss, sources, watched = wake_sleep_loss, (vae, gaussian, wake_sleep), "val/neg_bound"
        config["method"] = method
    hist = run.train(name, model, loss, stream, training.chunks, optimizer=opt, config=config,
                     sources=sources, val=test_set.batches(1000, device, shuffle=False), watched=watched,
                     **fit_kwargs)
    return model.eval(), hist


# ---------------------------------------------------------------------------
# Final bounds (Fig. 2) and the bound beside the importance-sampled log p(x) (eq. 3)
# ---------------------------------------------------------------------------
@torch.no_grad()
def test_bound(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Per-example bound (one z sample each, eq. 10 with L = 1) on ``x``, in eval mode."""
    model.eval()
    return torch.cat([elbo_terms(model, xb)["elbo"] for xb in x.split(batch_size)])


# not a test, though its name says so: a test module that imports it must not collect it
test_bound.__test__ = False  # type: ignore[attr-defined]


def train_test_bounds(models: dict[int, VAE], x_train: torch.Tensor, x_test: torch.Tensor,
                      seed: int) -> dict[int, dict[str, float]]:
    """Final bound per model on a training subset and the test set (one z each), and the gap, in nats.

    ``test_se`` is the standard error of the test-set average: the spread of the per-example
    bounds (each with its own draw of z) over the square root of their number, the sampling
    error of a Monte Carlo estimate of a likelihood (rule R4's se for a level claim).
    """
    out = {}
    for key, m in models.items():
        torch.manual_seed(seed)
        tr, te = test_bound(m, x_train), test_bound(m, x_test)
        out[key] = {"train": tr.mean().item(), "test": te.mean().item(), "gap": (tr.mean() - te.mean()).item(),
                    "test_se": (te.std() / len(te) ** 0.5).item()}
    return out


@torch.no_grad()
def importance_bound(model: VAE, x: torch.Tensor, k: int = 100, batch_size: int = 500) -> torch.Tensor:
    """Per-example bound E_q[log w] (eq. 3) averaged over k samples of z.

    A low-variance companion to the importance-sampled estimate of log p(x).
    """
    log_weights = vae_log_weights(model)
    return torch.cat([log_weights(xb, k).mean(0) for xb in x.split(batch_size)])


# ---------------------------------------------------------------------------
# Checks on figures (Figures 4 and 5 are qualitative in the paper)
# ---------------------------------------------------------------------------
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
