"""Table 1's synthetic benchmarks (Vincent et al. 2008; Larochelle et al. 2007): rect, rect-img and convex.

Larochelle et al. released these as files that are not available offline; we generate them from
their published definitions (our reading of sec. 4 of their paper), so they are not the same
images and their errors are compared as rankings only:

- **rect**: the white outline (255) of one rectangle on black, 28 x 28; label 1 when it is taller
  than wide. Height and width are uniform and redrawn while they differ by fewer than 3 pixels;
  the top-left corner is uniform among the places where the rectangle fits.
- **rect-img**: the rectangle (border and inside) filled with one natural-image patch and the
  background with another (``DenoisingAE.backgrounds``); its area between 25% and 75% of the
  image, both sides at least 10 and differing by at least 5 pixels.
- **convex**: one white region; label 1 when it is convex. A convex candidate intersects a number
  of random half-planes drawn from a geometric distribution (p = 0.195) and needs at least 19
  pixels; a non-convex one is the union of 2 to 4 such sets (p = 0.07, at least 10 pixels each)
  and is kept only when it fails convexity (``is_convex``: a pixel in its hull is missing).

Each generator returns an ``ImageSet`` of uint8 images (N, 1, 28, 28) and labels, from ``seed``.
"""
from __future__ import annotations

import numpy as np
import torch

from common.data import ImageSet
from DenoisingAE.backgrounds import grey_photographs

SIZE = 28


def _outline(h: int, w: int) -> np.ndarray:
    box = np.zeros((h, w), dtype=bool)
    box[0, :] = box[-1, :] = box[:, 0] = box[:, -1] = True
    return box


def rectangles(n: int, seed: int, size: int = SIZE) -> ImageSet:
    """"rect": n images of one rectangle's white outline; y = 1 if taller than wide, else 0."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, size, size), dtype=np.uint8)
    y = np.zeros(n, dtype=np.int64)
    for i in range(n):
        while True:
            h, w = rng.integers(1, size + 1, size=2)
            if abs(int(h) - int(w)) >= 3:
                break
        top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        x[i, 0, top:top + h, left:left + w][_outline(h, w)] = 255
        y[i] = int(h > w)
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y), "rect")


def _patch(photos: list[torch.Tensor], rng: np.random.Generator, size: int) -> np.ndarray:
    photo = photos[rng.integers(len(photos))]
    top, left = rng.integers(photo.shape[0] - size + 1), rng.integers(photo.shape[1] - size + 1)
    return photo[top:top + size, left:left + size].numpy()


def rectangles_image(n: int, seed: int, size: int = SIZE, photos: list[torch.Tensor] | None = None) -> ImageSet:
    """"rect-img": n images of a rectangle filled with one photograph patch over a background of another."""
    photos = grey_photographs() if photos is None else photos
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, size, size), dtype=np.uint8)
    y = np.zeros(n, dtype=np.int64)
    for i in range(n):
        while True:
            h, w = (int(v) for v in rng.integers(10, size + 1, size=2))
            if abs(h - w) >= 5 and 0.25 <= h * w / size ** 2 <= 0.75:
                break
        top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        image = _patch(photos, rng, size).copy()
        image[top:top + h, left:left + w] = _patch(photos, rng, size)[top:top + h, left:left + w]
        x[i, 0] = image
        y[i] = int(h > w)
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y), "rect-img")


def _pixel_centres(size: int) -> np.ndarray:
    """The (row, column) centres of a size x size image's pixels, (size^2, 2)."""
    centres = np.arange(size) + 0.5
    return np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)


def _convex_set(rng: np.random.Generator, p: float, min_pixels: int, grid: np.ndarray, size: int) -> np.ndarray:
    """A random intersection of half-planes (their number ~ Geometric(p)) with at least ``min_pixels`` pixels
    of ``grid`` (``_pixel_centres(size)``, built once per call of :func:`convex`)."""
    while True:
        inside = np.ones(len(grid), dtype=bool)
        for _ in range(rng.geometric(p)):
            point = rng.uniform(0, size, 2)
            angle = rng.uniform(0, 2 * np.pi)
            inside &= (grid - point) @ np.array([np.cos(angle), np.sin(angle)]) >= 0
        if inside.sum() >= min_pixels:
            return inside.reshape(size, size)


def is_convex(region: np.ndarray) -> bool:
    """Whether the pixel set is digitally convex: every pixel whose centre lies in the convex hull of its
    pixels' centres belongs to it.

    The pixels of a convex region (an intersection of half-planes) always pass, since the hull of
    points inside a convex set stays inside it; a set with a dent or in separate parts fails. It
    decides what Larochelle et al.'s test on every pair of pixels decides, in one hull.
    """
    from skimage.morphology import convex_hull_image

    if region.sum() < 3:
        return True
    return not bool((convex_hull_image(region, offset_coordinates=False) & ~region).any())


def convex(n: int, seed: int, size: int = SIZE) -> ImageSet:
    """"convex": n images of one white region, half convex (y = 1) and half not (y = 0), in random order."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, size, size), dtype=np.uint8)
    y = rng.permutation(np.arange(n) % 2).astype(np.int64)
    grid = _pixel_centres(size)
    for i in range(n):
        if y[i]:
            region = _convex_set(rng, 0.195, 19, grid, size)
        else:
            while True:
                region = np.zeros((size, size), dtype=bool)
                for _ in range(rng.integers(2, 5)):
                    region |= _convex_set(rng, 0.07, 10, grid, size)
                if not is_convex(region):
                    break
        x[i, 0][region] = 255
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y), "convex")
