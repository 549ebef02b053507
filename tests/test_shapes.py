"""Table 1's synthetic benchmarks (DenoisingAE/shapes.py) follow their definitions."""
from __future__ import annotations

import numpy as np
import torch

from DenoisingAE.shapes import convex, is_convex, rectangles, rectangles_image


def _box(region: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(region)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_rect_draws_one_outline_labelled_by_its_shape():
    data = rectangles(200, seed=0)
    assert data.x.shape == (200, 1, 28, 28) and data.x.dtype == torch.uint8
    assert set(data.x.unique().tolist()) <= {0, 255}
    for img, label in zip(data.x[:, 0].numpy() > 0, data.y.tolist()):
        h, w = _box(img)
        assert abs(h - w) >= 3 and label == int(h > w)
        # an outline: the pixel count is the box's perimeter, not its area
        assert img.sum() == (h * w if min(h, w) <= 2 else 2 * (h + w) - 4)
    assert 0.3 < data.y.float().mean() < 0.7


def test_rect_img_fills_the_rectangle_and_background_with_photograph_patches():
    photos = [torch.full((40, 40), 100, dtype=torch.uint8), torch.full((40, 40), 200, dtype=torch.uint8)]
    data = rectangles_image(200, seed=1, photos=photos)
    checked = 0
    for img, label in zip(data.x[:, 0].numpy(), data.y.tolist()):
        values = np.unique(img).tolist()
        assert set(values) <= {100, 200}
        if len(values) < 2:      # rectangle and background cut from the same photograph
            continue
        # the rectangle is the one region that fills its own bounding box
        rect = next(region for region in (img == v for v in values) if region.sum() == np.prod(_box(region)))
        h, w = _box(rect)
        assert h >= 10 and w >= 10 and abs(h - w) >= 5 and label == int(h > w)
        assert 0.25 <= h * w / 28 ** 2 <= 0.75
        checked += 1
    assert checked > 50


def test_convexity_test_and_convex_labels():
    square = np.zeros((28, 28), dtype=bool)
    square[5:15, 5:15] = True
    two = square.copy()
    two[20:25, 20:25] = True
    dent = square.copy()
    dent[8:12, 10:15] = False
    assert is_convex(square) and not is_convex(two) and not is_convex(dent)
    data = convex(120, seed=2)
    assert torch.bincount(data.y).tolist() == [60, 60]
    for img, label in zip(data.x[:, 0].numpy() > 0, data.y.tolist()):
        assert is_convex(img) == bool(label)
        assert img.sum() >= (19 if label else 10)
