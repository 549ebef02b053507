"""mnist-bg-img's generator (DenoisingAE/backgrounds.py): the digits stay intact, only their background is filled,
from the bundled photographs, reproducibly."""
from __future__ import annotations

import torch

from common.data import ImageSet
from DenoisingAE.backgrounds import PHOTOS, background_patches, grey_photographs, image_background


def test_every_photograph_is_bundled_grey_and_large_enough():
    photos = grey_photographs()
    assert len(photos) == len(PHOTOS)
    for name, p in zip(PHOTOS, photos):
        assert p.dtype == torch.uint8 and p.dim() == 2 and min(p.shape) >= 28, name
        assert p.float().std() > 10, f"{name} is nearly flat"


def test_the_background_is_filled_and_the_digit_left_intact():
    g = torch.Generator().manual_seed(0)
    digits = torch.zeros(50, 1, 28, 28, dtype=torch.uint8)
    digits[:, :, 8:20, 12:16] = 255                                   # a stroke
    digits[:, :, 20:22, 12:16] = torch.randint(1, 255, (50, 1, 2, 4), generator=g).to(torch.uint8)   # its edge
    data = ImageSet(digits, torch.arange(50), "toy")
    out = image_background(data, seed=3)
    patches = background_patches(50, 28, seed=3)
    assert out.name == "toy-bg-img" and torch.equal(out.y, data.y) and out.x.dtype == torch.uint8
    assert (out.x >= digits).all()                                    # nothing of the digit is dimmed
    assert torch.equal(out.x[digits == 255], digits[digits == 255])    # the strokes as they were
    assert torch.equal(out.x[digits == 0], patches[digits == 0])       # the background is the photograph's patch
    assert (out.x[digits == 0] > 0).float().mean() > 0.5              # and it is really filled
    assert torch.equal(image_background(data, seed=3).x, out.x)       # reproducible
    assert not torch.equal(image_background(data, seed=4).x, out.x)
    assert len({tuple(p.flatten()[:20].tolist()) for p in patches}) > 40   # patches differ between digits
