"""Loaders of the datasets as :class:`ImageSet` (uint8 images, optional labels), and ways to split them.

Each loader verifies its files first (:mod:`common.data.registry`): MNIST, Frey Face,
CryptoPunks and CelebA (the full set or the 10,000-image subset).
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from common.data.batches import Batches
from common.data.registry import CELEBA_FULL_SIZE, CELEBA_SUBSET_SIZE, DataError, verify, verify_celeba_images


@dataclass
class ImageSet:
    """Images as a uint8 (N, C, H, W) tensor, with optional integer labels."""

    x: torch.Tensor
    y: torch.Tensor | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise ValueError(f"ImageSet wants uint8 (N, C, H, W) images, got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"{len(self.x)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one image, (C, H, W)."""
        return tuple(self.x.shape[1:])

    def subset(self, index: torch.Tensor | slice, name: str | None = None) -> "ImageSet":
        return ImageSet(self.x[index], None if self.y is None else self.y[index], name or self.name)

    def floats(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """All images as float in [0, 1] (for small evaluation sets)."""
        return self.x.to(device).float().div_(255)

    def batches(self, batch_size: int, device: torch.device | str = "cpu", shuffle: bool = True,
                seed: int = 0, drop_last: bool = False) -> "Batches":
        return Batches(self.x.to(device), None if self.y is None else self.y.to(device),
                       batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)


def split(data: ImageSet, sizes: Sequence[int], seed: int) -> list[ImageSet]:
    """Split into disjoint random subsets of the given sizes, with a fixed seed."""
    if sum(sizes) > len(data):
        raise ValueError(f"split sizes {list(sizes)} add up to {sum(sizes)} > {len(data)} examples")
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    out, start = [], 0
    for n in sizes:
        out.append(data.subset(perm[start:start + n]))
        start += n
    return out


def ratio_splits(data: ImageSet, red_ratio: float = 1.0, test_split: float = 0.1, validation_split: float = 0.1,
                 seed: int = 0) -> dict[str, ImageSet]:
    """Train, validation and test sets given as ratios, as the CelebA autoencoder seed project gives them.

    ``red_ratio`` keeps that share of ``data`` (a seeded random subset); ``test_split`` of what is
    kept is held out for testing, and ``validation_split`` of the rest for validation (Keras's
    meaning of it), the remainder trains. The sets are disjoint and drawn with ``seed``.
    """
    for name, value in (("red_ratio", red_ratio), ("test_split", test_split), ("validation_split", validation_split)):
        if not 0 <= value <= 1 or (name == "red_ratio" and value == 0):
            raise ValueError(f"{name} must be in {'(0, 1]' if name == 'red_ratio' else '[0, 1]'}, got {value}")
    n = round(red_ratio * len(data))
    n_test = round(test_split * n)
    n_valid = round(validation_split * (n - n_test))
    if n - n_test - n_valid < 1:
        raise ValueError(f"the ratios leave no training example of {len(data)} (kept {n}, test {n_test}, "
                         f"validation {n_valid})")
    train, valid, test = split(data, [n - n_test - n_valid, n_valid, n_test], seed)
    return {"train": train, "valid": valid, "test": test}


def concat(*sets: ImageSet, name: str = "") -> ImageSet:
    """The sets one after another; labelled only when every set is."""
    ys = [s.y for s in sets]
    y = None if any(v is None for v in ys) else torch.cat(ys)
    return ImageSet(torch.cat([s.x for s in sets]), y, name)


def binarize(data: ImageSet, mode: str, seed: int = 0) -> ImageSet:
    """Binarise once, so every epoch sees the same binary images.

    ``"stochastic"``: pixel ~ Bernoulli(grey level), drawn once with ``seed`` (the
    fixed stochastic binarisation common for MNIST likelihoods). ``"threshold"``:
    grey level > 0.5. The result is still uint8 (0 or 255).
    """
    if mode == "stochastic":
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(data.x.shape, generator=g)
        xb = (u < data.x.float() / 255)
    elif mode == "threshold":
        xb = data.x > 127
    else:
        raise ValueError(f"binarize mode must be 'stochastic' or 'threshold', got {mode!r}")
    return ImageSet(xb.to(torch.uint8) * 255, data.y, data.name)


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse a gzipped IDX file: big-endian magic, then uint32 dims, then uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got_magic, = struct.unpack(">I", raw[:4])
    if got_magic != magic:
        raise DataError(f"{path}: IDX magic {got_magic:#x}, expected {magic:#x}")
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _load_idx_dataset(dataset: str, split_name: str, root: Path | None) -> ImageSet:
    if split_name not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split_name!r}")
    files = verify(dataset, root)
    prefix = "train" if split_name == "train" else "t10k"
    x = _read_idx(files[f"{prefix}-images-idx3-ubyte.gz"], 0x803)
    y = _read_idx(files[f"{prefix}-labels-idx1-ubyte.gz"], 0x801)
    return ImageSet(torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64)),
                    f"{dataset}-{split_name}")


def load_mnist(split: str = "train", root: Path | None = None) -> ImageSet:
    """MNIST digits, 60,000 train or 10,000 test, (N, 1, 28, 28) uint8 with labels."""
    return _load_idx_dataset("mnist", split, root)


def load_frey_face(root: Path | None = None) -> ImageSet:
    """Frey Face: 1,965 grey faces as (N, 1, 28, 20) uint8 (values 8..238)."""
    from scipy.io import loadmat

    path = verify("freyface", root)["frey_rawface.mat"]
    ff = loadmat(path)["ff"]  # (560, 1965): one column per face, row-major 28x20
    x = np.ascontiguousarray(ff.T.reshape(-1, 1, 28, 20))
    return ImageSet(torch.from_numpy(x), None, "freyface")


def load_cryptopunks(root: Path | None = None) -> dict[str, ImageSet]:
    """CryptoPunks as RGBA (N, 4, 24, 24) uint8; punks 0-5999 train, 6000-7999 valid, 8000-9999 test."""
    from PIL import Image

    path = verify("cryptopunks", root)["punks.png"]
    sheet = np.asarray(Image.open(path).convert("RGBA"))  # (2400, 2400, 4)
    punks = sheet.reshape(100, 24, 100, 24, 4).transpose(0, 2, 4, 1, 3).reshape(10_000, 4, 24, 24)
    x = torch.from_numpy(np.ascontiguousarray(punks))
    whole = ImageSet(x, None, "cryptopunks")
    return {"train": whole.subset(slice(0, 6000), "cryptopunks-train"),
            "valid": whole.subset(slice(6000, 8000), "cryptopunks-valid"),
            "test": whole.subset(slice(8000, 10000), "cryptopunks-test")}


def _square_rgb(paths: Sequence[Path], size: int) -> torch.Tensor:
    """RGB images (N, 3, size, size) uint8: each centre-cropped to a square (the full short side), then an
    antialiased resize. A file that cannot be read raises a ValueError that names it."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    imgs = []
    for path in paths:
        try:
            with Image.open(path) as img:
                imgs.append(np.asarray(ImageOps.fit(img.convert("RGB"), (size, size), Image.LANCZOS)))
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"cannot read the image {path}: {e}") from e
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


def load_celeba(size: int = 64, seed: int = 0, n_test: int = 1000, root: Path | None = None,
                limit: int | None = None, ratios: tuple[float, float, float] | None = None) -> dict[str, ImageSet]:
    """Aligned CelebA faces, centre-cropped to a square and resized to ``size``.

    With the full dataset (202,599 images, as officially distributed) the official
    train/valid/test partitions are used. With the 10,000-image subset, all of
    which are in the official train partition, a seeded held-out test split of
    ``n_test`` images is made instead, or, with ``ratios`` = (red_ratio, test_split,
    validation_split), seeded train/valid/test sets by :func:`ratio_splits`. ``limit`` reads only the first images (for
    quick runs). Returns RGB (N, 3, size, size) uint8 sets; ``y`` holds each image's
    number (000001.jpg is 1), the row of its attributes.
    """
    files = verify("celeba", root)
    folder = files["list_eval_partition.txt"].parent / "img_align_celeba"
    partition = [line.split() for line in files["list_eval_partition.txt"].read_text().splitlines() if line.strip()]
    present = sorted(p.name for p in folder.glob("*.jpg")) if folder.is_dir() else []
    full = len(present) >= CELEBA_FULL_SIZE
    names = [n for n, _ in partition] if full else [f"{i:06d}.jpg" for i in range(1, CELEBA_SUBSET_SIZE + 1)]
    verify_celeba_images(folder, names)
    if limit is not None:
        names = names[:limit]
    x = _square_rgb([folder / n for n in names], size)
    # y is each image's number (000001.jpg is 1), to look its attributes and identity up
    whole = ImageSet(x, torch.tensor([int(n.split(".")[0]) for n in names]), "celeba")
    if full:
        part = {n: int(p) for n, p in partition}
        codes = torch.tensor([part[n] for n in names])
        return {k: whole.subset(torch.nonzero(codes == c).squeeze(1), f"celeba-{k}")
                for k, c in (("train", 0), ("valid", 1), ("test", 2))}
    if ratios is not None:
        return ratio_splits(whole, *ratios, seed=seed)
    n_test = min(n_test, len(whole) // 2)
    train, test = split(whole, [len(whole) - n_test, n_test], seed)
    return {"train": train, "test": test}


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_image_folder(root: Path | str, size: int = 64) -> dict[str, ImageSet]:
    """Faces (or any RGB images) from ``root/train/`` and ``root/test/`` (and ``root/valid/`` if present).

    The layout of the VAE-for-faces seed project: one folder of image files per split, read in
    name order (.png, .jpg, .jpeg), each centre-cropped to a square and resized to ``size`` as
    :func:`load_celeba` does. Returns RGB (N, 3, size, size) uint8 sets without labels. A missing
    folder, an empty split or an unreadable file raises a ValueError that names it.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist; it needs train/ and test/ subfolders of images")
    out = {}
    for split_name in ("train", "valid", "test"):
        folder = root / split_name
        if not folder.is_dir():
            if split_name == "valid":
                continue
            raise ValueError(f"{folder} is missing: an image folder needs train/ and test/ (valid/ optional)")
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        out[split_name] = ImageSet(_square_rgb(files, size), None, f"{root.name}-{split_name}")
    return out

