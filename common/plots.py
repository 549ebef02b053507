"""Figures shared by the papers: filters, image grids, manifolds, traversals, interpolations, curves.

Every function takes the data it draws (never a notebook global), returns the
matplotlib figure, and saves it to ``path`` when one is given (PNG, 150 dpi), so the
notebook and the PDF report show the same file. Images are float tensors in [0, 1]
shaped (N, C, H, W) with C = 1 (grey), 3 (RGB) or 4 (RGBA, shown over white).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import norm
from torchvision.utils import make_grid

Decode = Callable[[torch.Tensor], torch.Tensor]


def save(fig: plt.Figure, path: Path | str | None) -> plt.Figure:
    """Save ``fig`` as PNG at ``path`` (creating its folder) and return it."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return fig


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] to (N, 3, H, W) or (N, 1, H, W); RGBA is composited over white."""
    images = images.detach().float().cpu().clamp(0, 1)
    if images.shape[1] == 4:
        rgb, alpha = images[:, :3], images[:, 3:]
        return rgb * alpha + (1 - alpha)
    return images


def _grid_array(images: torch.Tensor, nrow: int, pad: int = 1) -> np.ndarray:
    grid = make_grid(to_rgb(images), nrow=nrow, padding=pad, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


def filter_grid(weights: torch.Tensor, image_shape: tuple[int, int], path: Path | str | None = None,
                title: str = "filters", n: int = 100, ax: plt.Axes | None = None) -> plt.Figure:
    """Show the first ``n`` rows of ``weights`` (units x pixels) as images.

    Each filter is scaled to its own [min, max], as in the papers' filter figures,
    so the shape of the receptive field shows whatever its norm.
    """
    w = weights.detach().float().cpu()[:n].reshape(-1, 1, *image_shape)
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    w = (w - lo) / (hi - lo).clamp_min(1e-12)
    nrow = int(np.ceil(np.sqrt(len(w))))
    fig = ax.figure if ax is not None else plt.figure(figsize=(5, 5))
    ax = ax or fig.add_subplot(1, 1, 1)
    ax.imshow(_grid_array(w, nrow)[..., 0], cmap="gray", interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel(f"{len(w)} units, each shown as a {image_shape[0]}x{image_shape[1]} image")
    ax.set_xticks([])
    ax.set_yticks([])
    return save(fig, path)


def filter_panels(panels: Mapping[str, torch.Tensor], image_shape: tuple[int, int],
                  path: Path | str | None = None, title: str = "", n: int = 100) -> plt.Figure:
    """Filter grids side by side, one per setting (noise level, k, ...)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6), squeeze=False)
    for ax, (label, w) in zip(axes[0], panels.items()):
        filter_grid(w, image_shape, title=label, n=n, ax=ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def image_grid(rows: Mapping[str, torch.Tensor], path: Path | str | None = None, title: str = "",
               ncols: int | None = None) -> plt.Figure:
    """One labelled row of images per entry, e.g. inputs over reconstructions."""
    ncols = ncols or max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(ncols * 0.6 + 1.5, 0.75 * len(rows) * 1.0 + 0.6), squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], rows.items()):
        arr = _grid_array(imgs[:ncols], nrow=ncols)
        ax.imshow(arr if arr.shape[-1] == 3 and imgs.shape[1] != 1 else arr[..., 0],
                  cmap=None if imgs.shape[1] != 1 else "gray", interpolation="nearest")
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        axes[0, 0].set_title(title)
    return save(fig, path)


def sample_grid(images: torch.Tensor, path: Path | str | None = None, title: str = "", nrow: int = 10,
                ax: plt.Axes | None = None) -> plt.Figure:
    """A square grid of images (samples from a model)."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5, 5))
    ax = ax or fig.add_subplot(1, 1, 1)
    arr = _grid_array(images, nrow)
    ax.imshow(arr if images.shape[1] != 1 else arr[..., 0], cmap="gray" if images.shape[1] == 1 else None,
              interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return save(fig, path)


def manifold_grid(n: int, quantile: float = 0.05) -> torch.Tensor:
    """(n*n, 2) latent points: a linear grid on [q, 1-q]^2 through the Gaussian inverse CDF.

    Kingma & Welling (Fig. 4) map a grid on the unit square through the inverse CDF of
    the prior. Its endpoints 0 and 1 map to -inf and +inf, so only interior
    quantiles are used. Rows go from high z2 (top) to low, columns from low z1 to high.
    """
    if not 0 < quantile < 0.5:
        raise ValueError(f"quantile must be in (0, 0.5), got {quantile}")
    q = np.linspace(quantile, 1 - quantile, n)
    z = norm.ppf(q)
    z1, z2 = np.meshgrid(z, z[::-1])
    return torch.tensor(np.stack([z1.ravel(), z2.ravel()], axis=1), dtype=torch.float32)


def manifold_2d(decode: Decode, image_shape: tuple[int, ...], path: Path | str | None = None, n: int = 20,
                quantile: float = 0.05, title: str = "learned 2-D manifold", device: str | torch.device = "cpu",
                ax: plt.Axes | None = None) -> plt.Figure:
    """Decode a :func:`manifold_grid` and show it with the quantiles on the axes."""
    z = manifold_grid(n, quantile).to(device)
    with torch.no_grad():
        imgs = decode(z).reshape(n * n, *image_shape)
    fig = ax.figure if ax is not None else plt.figure(figsize=(6, 6 * image_shape[-2] / image_shape[-1]))
    ax = ax or fig.add_subplot(1, 1, 1)
    arr = _grid_array(imgs, n, pad=0)
    ax.imshow(arr if image_shape[0] != 1 else arr[..., 0], cmap="gray" if image_shape[0] == 1 else None,
              extent=(quantile, 1 - quantile, quantile, 1 - quantile), interpolation="nearest")
    ax.set_xlabel(r"$\Phi(z_1)$ (prior quantile)")
    ax.set_ylabel(r"$\Phi(z_2)$ (prior quantile)")
    ax.set_title(title)
    return save(fig, path)


def latent_traversal(decode: Decode, z0: torch.Tensor, dims: Sequence[int], values: Sequence[float],
                     image_shape: tuple[int, ...], path: Path | str | None = None,
                     title: str = "latent traversal", row_labels: Sequence[str] | None = None) -> plt.Figure:
    """Vary one latent at a time around ``z0``: a row per dimension, a column per value."""
    zs = z0.detach().reshape(1, -1).repeat(len(dims) * len(values), 1)
    for r, d in enumerate(dims):
        zs[r * len(values):(r + 1) * len(values), d] = torch.as_tensor(values, dtype=zs.dtype, device=zs.device)
    with torch.no_grad():
        imgs = decode(zs).reshape(len(zs), *image_shape)
    fig, ax = plt.subplots(figsize=(0.7 * len(values) + 1.5, 0.7 * len(dims) + 0.8))
    arr = _grid_array(imgs, len(values))
    ax.imshow(arr if image_shape[0] != 1 else arr[..., 0], cmap="gray" if image_shape[0] == 1 else None)
    step = arr.shape[0] / len(dims)
    ax.set_yticks([step * (i + 0.5) for i in range(len(dims))])
    ax.set_yticklabels(row_labels or [f"z{d}" for d in dims])
    colstep = arr.shape[1] / len(values)
    ax.set_xticks([colstep * (i + 0.5) for i in range(len(values))])
    ax.set_xticklabels([f"{v:+.1f}" for v in values], fontsize=7)
    ax.set_xlabel("value of the traversed latent")
    ax.set_title(title)
    return save(fig, path)


def interpolation(decode: Decode, z_a: torch.Tensor, z_b: torch.Tensor, x_a: torch.Tensor, x_b: torch.Tensor,
                  image_shape: tuple[int, ...], steps: int = 10, path: Path | str | None = None,
                  title: str = "interpolation") -> tuple[plt.Figure, torch.Tensor, torch.Tensor]:
    """Latent-space path from ``z_a`` to ``z_b`` (decoded) against a pixel blend of ``x_a``, ``x_b``.

    Returns the figure and both rows of frames, (steps, C, H, W) each, for a GIF.
    """
    t = torch.linspace(0, 1, steps, device=z_a.device).unsqueeze(1)
    with torch.no_grad():
        latent = decode((1 - t) * z_a.reshape(1, -1) + t * z_b.reshape(1, -1)).reshape(steps, *image_shape)
    tc = t.cpu().reshape(-1, 1, 1, 1)
    blend = (1 - tc) * x_a.cpu().reshape(1, *image_shape) + tc * x_b.cpu().reshape(1, *image_shape)
    fig = image_grid({"latent path": latent, "pixel blend": blend}, title=title)
    fig.axes[-1].set_xlabel(r"interpolation weight t from 0 to 1")
    save(fig, path)
    return fig, latent.cpu(), blend


def gif(frames: torch.Tensor, path: Path | str, scale: int = 4, duration_ms: int = 120) -> Path:
    """Write frames (T, C, H, W) in [0, 1] as a looping GIF with Pillow; return the path."""
    from PIL import Image

    arr = (to_rgb(frames).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    images = [Image.fromarray(a).resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST) for a in arr]
    # Go there and back so the loop has no jump.
    images = images + images[-2:0:-1]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: Path | str | None = None,
           title: str = "", xlabel: str = "training samples seen", ylabel: str = "", logx: bool = False,
           styles: Mapping[str, str] | None = None, ax: plt.Axes | None = None) -> plt.Figure:
    """Line plot of named (x, y) series; the axes fit whatever length the run had."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(6, 4))
    ax = ax or fig.add_subplot(1, 1, 1)
    for label, (x, y) in series.items():
        ax.plot(x, y, (styles or {}).get(label, "-"), label=label)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def learning_curves(histories: Mapping[str, Any], metric: str, path: Path | str | None = None, title: str = "",
                    ylabel: str = "", references: Mapping[str, float] | None = None,
                    ax: plt.Axes | None = None) -> plt.Figure:
    """The claim's metric against training samples seen, one line per model (``History`` objects), on a log axis.

    ``references`` (model name -> reference budget in examples, e.g. from ``Run.model_records()``)
    draws each model's reference budget as a dotted line in its colour, so a reader sees how much of
    the paper's training a curve covers and whether it had flattened (rule R9). Models whose history
    lacks ``metric`` are left out; the legend says so.
    """
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.4, 4.2))
    ax = ax or fig.add_subplot(1, 1, 1)
    missing = []
    for i, (name, h) in enumerate(histories.items()):
        values = h.records.get(metric)
        if not values:
            missing.append(name)
            continue
        n = min(len(values), len(h.samples))
        line, = ax.plot(h.samples[:n], values[:n], "-", marker="." if n < 30 else None, label=name)
        ref = (references or {}).get(name)
        if ref:
            ax.axvline(ref, color=line.get_color(), ls=":", lw=1.2)
    if references and any(references.get(n) for n in histories):
        ax.plot([], [], "k:", lw=1.2, label="reference budget (dotted)")
    ax.set_xscale("log")
    ax.set_xlabel("training samples seen (log scale)")
    ax.set_ylabel(ylabel or metric)
    ax.set_title(title + (f"\n(no {metric} recorded: {', '.join(missing)})" if missing else ""), fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save(fig, path)


def heatmap(matrix: torch.Tensor | np.ndarray, path: Path | str | None = None, title: str = "",
            xlabel: str = "", ylabel: str = "", cmap: str = "RdBu_r", symmetric: bool = True) -> plt.Figure:
    """A matrix as a colour map with a colour bar (e.g. W2·W1 against the identity)."""
    m = matrix.detach().cpu().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(5, 4.4))
    lim = float(np.abs(m).max()) if symmetric else None
    im = ax.imshow(m, cmap=cmap, vmin=-lim if symmetric else None, vmax=lim, interpolation="nearest")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return save(fig, path)


def bars(values: Mapping[str, float], path: Path | str | None = None, title: str = "", ylabel: str = "",
         reference: Mapping[str, float] | None = None) -> plt.Figure:
    """Bar chart of named values, with the paper's values beside them when given."""
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(values)), 3.6))
    x = np.arange(len(values))
    width = 0.4 if reference else 0.7
    ax.bar(x - (width / 2 if reference else 0), list(values.values()), width, label="ours")
    if reference:
        ax.bar(x + width / 2, [reference.get(k, np.nan) for k in values], width, label="paper")
        ax.legend()
    ax.set_xticks(x)
    ax.set_xticklabels(list(values), rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save(fig, path)
