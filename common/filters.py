"""Statistics of a bank of filters (the rows of a weight matrix seen as images).

Two papers need numbers for "what do the learned filters look like": the denoising
autoencoder (Vincent et al. 2008, Fig. 3: uninformative at 0% noise, stroke
detectors with noise) and the k-sparse autoencoder (Makhzani & Frey 2014, Fig. 1:
local at large k, global at small k). These functions turn a filter bank into those
numbers: how smooth each filter is (:func:`smoothness`), how much of the bank is
near-uniform, and how far each filter's energy spreads from its peak
(:func:`spatial_spread`, small = local).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def smoothness(W: torch.Tensor, image_shape: tuple[int, int] = (28, 28),
               pixels: torch.Tensor | None = None) -> torch.Tensor:
    """Per filter, the correlation rho_j between the weights of horizontally and vertically adjacent pixels.

    rho_j = corr over all neighbouring pixel pairs (i, i') with both pixels in
    ``pixels`` (all when None) of (W_ji, W_ji'). White noise, such as the uniform
    initialisation, gives rho = 0 (within +-0.05 for 500 pixels); a stroke or blob
    detector, whose weights change smoothly over the image, gives a value near 1.
    """
    h, w = image_shape
    Wg = W.detach().float().cpu().reshape(-1, h, w)
    keep = (torch.ones(h * w, dtype=torch.bool) if pixels is None
            else torch.zeros(h * w, dtype=torch.bool).index_fill_(0, pixels.cpu(), True)).reshape(h, w)
    horiz, vert = keep[:, :-1] & keep[:, 1:], keep[:-1, :] & keep[1:, :]
    a = torch.cat([Wg[:, :, :-1][:, horiz], Wg[:, :-1, :][:, vert]], 1)
    b = torch.cat([Wg[:, :, 1:][:, horiz], Wg[:, 1:, :][:, vert]], 1)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)


def near_uniform_share(W: torch.Tensor, pixels: torch.Tensor | None = None, rho_max: float = 0.4,
                       image_shape: tuple[int, int] = (28, 28)) -> float:
    """Share of filters that are *near-uniform* (uninformative): no structure at the scale of a stroke.

    Definition: filter j is near-uniform when its neighbour correlation
    :func:`smoothness` rho_j < ``rho_max`` (default 0.4). Such a filter is mostly
    pixel-level noise around a constant level: blurred over a few pixels (the width
    of a pen stroke) it is a flat grey patch, which is how the paper describes the
    0%-noise filters ("undistinctive almost uniform grey patches"). The
    initialisation has rho ~ 0; stroke and blob detectors have rho > 0.5. The
    notebook also shows the whole distribution of rho, so no conclusion hangs on the
    threshold alone. Returns a fraction in [0, 1].
    """
    return float((smoothness(W, image_shape, pixels) < rho_max).float().mean())


def gaussian_blur(W: torch.Tensor, image_shape: tuple[int, int] = (28, 28), sigma: float = 1.0) -> torch.Tensor:
    """Each row of ``W`` seen as an image, blurred by a 5x5 Gaussian of width ``sigma`` pixels (zero padding)."""
    r = torch.arange(-2, 3, dtype=torch.float32)
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :])[None, None]
    x = W.detach().float().cpu().reshape(-1, 1, *image_shape)
    return F.conv2d(x, k, padding=2).reshape(len(W), -1)


def spatial_spread(W: torch.Tensor, image_shape: tuple[int, int] = (28, 28),
                   pixels: torch.Tensor | None = None, frac: float = 0.5) -> torch.Tensor:
    """Per filter, the radius r50 (pixels) of the disc around its peak that holds half its contrast energy.

    Definition: u_j = W_j - median_i(W_ji) is the filter against its own background
    level; v_j = Gaussian blur of u_j (sigma = 1 px, so pixel noise does not count
    as spread); e_ji = v_ji^2 / sum_i v_ji^2 over the pixels ``pixels`` (all when
    None). The peak is the pixel of largest e_ji; r50 is the smallest distance from
    the peak such that the pixels within it hold ``frac`` (1/2) of the energy. A
    local blob or short stroke has r50 of 1-4 px; energy spread evenly over the
    ~500 pixels that vary in MNIST gives about 9-13 px. Small r50 = local filter.
    """
    h, w = image_shape
    rr, cc = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    pos = torch.stack([rr.reshape(-1), cc.reshape(-1)], 1)
    Wc = W.detach().float().cpu()
    v = gaussian_blur(Wc - Wc.median(dim=1, keepdim=True).values, image_shape)
    if pixels is not None:
        pos, v = pos[pixels.cpu()], v[:, pixels.cpu()]
    e = v.pow(2)
    e = e / e.sum(1, keepdim=True).clamp_min(1e-30)
    dist = torch.cdist(pos[e.argmax(1)], pos)
    dist_sorted, order = dist.sort(1)
    inside = (e.gather(1, order).cumsum(1) < frac).sum(1).clamp_max(pos.shape[0] - 1)
    return dist_sorted.gather(1, inside[:, None]).squeeze(1)


def active_pixels(x: torch.Tensor, min_std: float = 0.05) -> torch.Tensor:
    """Indices of the pixels whose standard deviation over the data ``x`` (N, d) exceeds ``min_std``.

    Pixels that are always 0 in MNIST (the border) receive no input-side gradient;
    the filter statistics are computed over the pixels that vary.
    """
    return torch.nonzero(x.reshape(len(x), -1).float().std(0) > min_std).squeeze(1).cpu()


def filter_statistics(W: torch.Tensor, pixels: torch.Tensor, image_shape: tuple[int, int] = (28, 28),
                      rho_max: float = 0.4) -> dict[str, float]:
    """Summary numbers for one filter bank.

    ``near_uniform_share`` (:func:`near_uniform_share`), the median neighbour
    correlation ``median_smoothness``, the median :func:`spatial_spread` r50 over all
    filters (``median_r50_px``) and over the informative ones only
    (``median_r50_informative_px``, NaN when there are none), and the mean and
    standard error of r50 over the informative filters.
    """
    rho = smoothness(W, image_shape, pixels)
    r50 = spatial_spread(W, image_shape, pixels)
    informative = rho >= rho_max
    r_inf = r50[informative]
    n_inf = int(informative.sum())
    return {"near_uniform_share": float((~informative).float().mean()),
            "median_smoothness": float(rho.median()),
            "median_r50_px": float(r50.median()),
            "median_r50_informative_px": float(r_inf.median()) if n_inf else math.nan,
            # r50 lives on the pixel grid, so medians tie often: the mean and its standard error compare better
            "mean_r50_informative_px": float(r_inf.mean()) if n_inf else math.nan,
            "sem_r50_informative_px": float(r_inf.std() / math.sqrt(n_inf)) if n_inf > 1 else math.nan}
