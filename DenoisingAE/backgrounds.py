"""Natural-image backgrounds for Table 1's mnist-bg-img and mnist-rot-bg-img (Larochelle et al., ICML 2007).

Larochelle et al. cut each background from one of 20 black-and-white photographs they downloaded;
those photographs are not available offline. We cut ours from the natural photographs that ship
inside scikit-image (``skimage.data``, named in ``PHOTOS``), made grey and scaled to [0, 255]: a
deviation the reports state. Each digit gets a random 28 x 28 patch of a random photograph, and a
pixel keeps the brighter of digit and background (``max``), as ``random_background`` does for
bg-rand: the strokes stay as they were and only the black background is filled.
"""
from __future__ import annotations

import numpy as np
import torch

from common.data import ImageSet

#: Natural photographs bundled with scikit-image 0.25 (no download): people, animals, objects,
#: textures and sky. Left out: drawings, text pages, masks and microscope slides.
PHOTOS = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
          "moon", "rocket")


def grey_photographs(names: tuple[str, ...] = PHOTOS) -> list[torch.Tensor]:
    """Each photograph of ``names`` as a uint8 grey image (H, W), from ``skimage.data`` (bundled, offline)."""
    import skimage.color
    import skimage.data
    import skimage.util

    out = []
    for name in names:
        image = getattr(skimage.data, name)()
        if image.ndim == 3:
            image = skimage.color.rgb2gray(image[..., :3])
        out.append(torch.from_numpy(skimage.util.img_as_ubyte(image)))
    return out


def background_patches(n: int, size: int, seed: int, photos: list[torch.Tensor] | None = None) -> torch.Tensor:
    """n random size x size uint8 patches, (n, 1, size, size): a random photograph each, at a random place."""
    photos = grey_photographs() if photos is None else photos
    rng = np.random.default_rng(seed)
    which = rng.integers(len(photos), size=n)
    patches = torch.empty(n, 1, size, size, dtype=torch.uint8)
    for i, k in enumerate(which):
        h, w = photos[k].shape
        top, left = rng.integers(h - size + 1), rng.integers(w - size + 1)
        patches[i, 0] = photos[k][top:top + size, left:left + size]
    return patches


def image_background(data: ImageSet, seed: int, photos: list[torch.Tensor] | None = None) -> ImageSet:
    """"bg-img": each digit over a patch of a natural photograph, x = max(digit, patch) per pixel (uint8)."""
    patches = background_patches(len(data), data.x.shape[-1], seed, photos).to(data.x.device)
    return ImageSet(torch.maximum(data.x, patches), data.y, f"{data.name}-bg-img")
