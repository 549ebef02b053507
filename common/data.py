"""Locate, verify and load datasets, and batch them from one tensor on the device.

The data folder is ``$AE_DATA_DIR`` or, when unset, ``data/`` at the repository root.
It has the layout of ``../shared/data``::

    MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    FashionMNIST/raw/  (the same four names)
    FreyFace/frey_rawface.mat
    CelebA/img_align_celeba/*.jpg, CelebA/list_eval_partition.txt, CelebA/identity_CelebA.txt
    CryptoPunks/punks.png

Every file is checked against a known SHA-256 before it is read. A missing or
corrupt file raises :class:`DataError`, which names the file, the folder searched,
the expected checksum and how to get it. ``python -m common.data download NAME``
fetches from the official source and verifies what it fetched; nothing in the
tests or CI downloads.

Images are kept as uint8 (N, C, H, W) tensors. :class:`Batches` keeps them on the
device and slices a ``randperm`` per epoch, casting to float per batch: for data that
fits in memory this is several times faster than a per-item DataLoader.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import struct
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from common.paths import REPO_ROOT

DATA_ENV = "AE_DATA_DIR"


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or malformed."""


def data_dir() -> Path:
    """The data folder: ``$AE_DATA_DIR`` or ``<repo>/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "data"


# ---------------------------------------------------------------------------
# Registry of files and their checksums
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset: where it lives, its SHA-256, and where it comes from."""

    relpath: str
    sha256: str
    urls: tuple[str, ...] = ()


_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)


def _idx_files(folder: str, mirrors: Sequence[str], sums: dict[str, str]) -> tuple[FileSpec, ...]:
    return tuple(FileSpec(f"{folder}/raw/{n}", h, tuple(m + n for m in mirrors)) for n, h in sums.items())


DATASETS: dict[str, tuple[FileSpec, ...]] = {
    "mnist": _idx_files("MNIST", _MNIST_MIRRORS, {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }),
    "fashion-mnist": _idx_files("FashionMNIST", _FASHION_MIRRORS, {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }),
    "freyface": (FileSpec(
        "FreyFace/frey_rawface.mat",
        "265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64",
        ("https://cs.nyu.edu/~roweis/data/frey_rawface.mat",),
    ),),
    # The sheet's SHA-256 is the imageHash recorded in the CryptoPunks contract.
    "cryptopunks": (FileSpec(
        "CryptoPunks/punks.png",
        "ac39af4793119ee46bbff351d8cb6b5f23da60222126add4268e261199a2921b",
        ("https://raw.githubusercontent.com/larvalabs/cryptopunks/master/punks.png",),
    ),),
    # dSprites' npz is known by its git blob id in the official repository (no SHA-256 is
    # published). Optional: without it common.dsprites renders the images.
    "dsprites": (FileSpec(
        "dSprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        "git-blob:d98996d3f8ee1550e06b9d4ed78d0beb478910d5",
        ("https://github.com/deepmind/dsprites-dataset/raw/master/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",),
    ),),
    # CelebA's official files sit on Google Drive; `download` goes through torchvision.
    "celeba": (
        FileSpec("CelebA/list_eval_partition.txt",
                 "fc955bcb3ef8fbdf7d5640d9a8693a8431b5f2ee291a5c1449a1549e7e073fe7"),
        FileSpec("CelebA/identity_CelebA.txt",
                 "c6143857c3e2630ac2da9f782e9c1232e5e59be993a9d44e8a7916c78a6158c0"),
    ),
}

#: SHA-256 over the sorted lines "NAME SHA256\n" of the 10,000-image CelebA subset
#: (000001.jpg ... 010000.jpg at 89x109) that ships in ../shared/data.
CELEBA_SUBSET_DIGEST = "39051785751786212341415e2f83060ca32a357f4666a299e17beded5f901a08"
CELEBA_SUBSET_SIZE = 10_000
CELEBA_FULL_SIZE = 202_599
_CELEBA_GDRIVE = {  # file id, md5 (from torchvision.datasets.CelebA.file_list)
    "img_align_celeba.zip": ("0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    "list_eval_partition.txt": ("0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668"),
    "identity_CelebA.txt": ("1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS", "32bd1bd63d3c78cd57e08160ec5ed1e2"),
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_blob_id(path: Path) -> str:
    """The id git gives a file: the SHA-1 of ``b"blob <size>\\0"`` followed by its bytes."""
    h = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksum_of(path: Path, expected: str) -> str:
    """The file's checksum in the form of ``expected``: a SHA-256, or ``git-blob:<id>``."""
    return "git-blob:" + git_blob_id(path) if expected.startswith("git-blob:") else sha256_of(path)


def _how_to_get(dataset: str, spec: FileSpec | None = None) -> str:
    src = f" (official source: {spec.urls[0]})" if spec and spec.urls else ""
    return (f"get it with `python -m common.data download {dataset}`{src}, or copy it there; "
            f"the data folder is ${DATA_ENV} or <repo>/data (now {data_dir()})")


def verify(dataset: str, root: Path | None = None) -> dict[str, Path]:
    """Check every registered file of ``dataset``; return their paths by file name.

    Raises DataError naming the file, the folder searched, the expected SHA-256 and
    how to get the file, when one is missing or its checksum differs.
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    root = Path(root) if root is not None else data_dir()
    paths = {}
    for spec in DATASETS[dataset]:
        path = root / spec.relpath
        if not path.is_file():
            raise DataError(
                f"{dataset}: missing file {path.name}\n  looked in: {path.parent}\n"
                f"  expected sha256: {spec.sha256}\n  {_how_to_get(dataset, spec)}")
        got = checksum_of(path, spec.sha256)
        if got != spec.sha256:
            raise DataError(
                f"{dataset}: corrupt file {path}\n  expected sha256: {spec.sha256}\n  found sha256:    {got}\n"
                f"  delete it and {_how_to_get(dataset, spec)}")
        paths[path.name] = path
    return paths


# ---------------------------------------------------------------------------
# Image sets and device-resident batching
# ---------------------------------------------------------------------------
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


def concat(*sets: ImageSet, name: str = "") -> ImageSet:
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


class Batches:
    """Minibatches sliced from one device-resident uint8 tensor.

    Each epoch draws one ``randperm`` (from its own generator, so the order is
    reproducible and checkpointable) and yields ``(x, y)``. uint8 images are cast to
    float in [0, 1] per batch; a float tensor (e.g. the codes of a trained layer) is
    sliced as it is. Every example appears exactly once per epoch (the last batch may
    be short unless ``drop_last``).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, batch_size: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        order = (torch.randperm(self.n, generator=self.generator) if self.shuffle
                 else torch.arange(self.n)).to(self.x.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            xb = self.x[idx]
            yield (xb.float().div_(255) if xb.dtype == torch.uint8 else xb), (None if self.y is None else self.y[idx])

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class Chunks:
    """Present a :class:`Batches` to ``fit`` in "epochs" of ``n_batches`` minibatches.

    Each pass of ``fit``'s epoch loop takes the next ``n_batches`` minibatches from a
    stream that reshuffles whenever the data run out, so ``history.samples`` grows in
    steps of ``n_batches * batch_size`` and a learning curve gets points well before the
    first full epoch (Kingma & Welling's Figure 2 has a log axis of samples). The data
    order is that of ``batches``: one randperm per pass, the short last batch dropped.

    The position in the stream is checkpointable: :meth:`state_dict` holds the state of
    the generator at the start of the current pass and the number of minibatches taken
    from that pass, so ``fit(checkpoint=...)`` resumes to the same minibatches, and the
    same history, as an uninterrupted run.
    """

    def __init__(self, batches: Batches, n_batches: int) -> None:
        if n_batches < 1:
            raise ValueError("n_batches must be >= 1")
        if batches.n < batches.batch_size:
            raise ValueError(f"{batches.n} examples make no full minibatch of {batches.batch_size}")
        self.batches = batches
        self.n_batches = n_batches
        # fit() counts train.n examples per epoch: full batches only, so drop a short last batch.
        self.batches.drop_last = True
        self._stream: Iterator | None = None
        self._pass_start: torch.Tensor | None = None  # generator state before the current pass's randperm
        self._taken = 0  # minibatches taken from the current pass

    @property
    def n(self) -> int:
        return self.n_batches * self.batches.batch_size

    @property
    def batch_size(self) -> int:
        return self.batches.batch_size

    @property
    def device(self) -> torch.device:
        return self.batches.device

    def __len__(self) -> int:
        return self.n_batches

    def _start_pass(self) -> None:
        self._pass_start = self.batches.generator.get_state()
        self._stream = iter(self.batches)
        self._taken = 0

    def _next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._stream is None:
            self._start_pass()
        try:
            batch = next(self._stream)
        except StopIteration:
            self._start_pass()
            batch = next(self._stream)
        self._taken += 1
        return batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        for _ in range(self.n_batches):
            yield self._next()

    def state_dict(self) -> dict:
        """The position in the stream: the generator state at the start of this pass, and batches taken."""
        if self._stream is None:  # no pass started: the next one starts from the generator as it is
            return {"pass_start": self.batches.generator.get_state(), "taken": 0}
        return {"pass_start": self._pass_start.clone(), "taken": self._taken}

    def load_state_dict(self, state: dict) -> None:
        """Go back to a position saved by :meth:`state_dict`: redraw that pass's order, skip what was taken."""
        taken = int(state["taken"])
        if not 0 <= taken <= len(self.batches):
            raise ValueError(f"a pass has {len(self.batches)} minibatches; the state says {taken} were taken")
        self.batches.generator.set_state(state["pass_start"])
        self._stream = None
        if taken:
            self._start_pass()
            for _ in range(taken):  # slicing a few hundred minibatches is cheap next to one training step
                next(self._stream)
            self._taken = taken


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------
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


def load_fashion_mnist(split: str = "train", root: Path | None = None) -> ImageSet:
    """Fashion-MNIST articles, 60,000 train or 10,000 test, (N, 1, 28, 28) uint8."""
    return _load_idx_dataset("fashion-mnist", split, root)


def mnist_splits(n_val: int, seed: int, root: Path | None = None) -> tuple[ImageSet, ImageSet, ImageSet]:
    """MNIST train minus a seeded validation set of ``n_val``, the validation set, and test."""
    train = load_mnist("train", root)
    tr, va = split(train, [len(train) - n_val, n_val], seed)
    return tr, va, load_mnist("test", root)


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


def _verify_celeba_images(folder: Path, names: list[str]) -> None:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"celeba: {len(missing)} image(s) missing, first {missing[0]}\n  looked in: {folder}\n"
                        f"  {_how_to_get('celeba')}")
    if len(names) == CELEBA_SUBSET_SIZE:
        lines = "".join(f"{n} {sha256_of(folder / n)}\n" for n in names)
        got = hashlib.sha256(lines.encode()).hexdigest()
        if got != CELEBA_SUBSET_DIGEST:
            raise DataError(
                f"celeba: the 10,000-image subset in {folder} differs from the known one\n"
                f"  expected combined sha256 (over sorted 'NAME SHA256' lines): {CELEBA_SUBSET_DIGEST}\n"
                f"  found: {got}\n  re-copy img_align_celeba/ from ../shared/data/CelebA or {_how_to_get('celeba')}")


def load_celeba(size: int = 64, seed: int = 0, n_test: int = 1000, root: Path | None = None,
                limit: int | None = None) -> dict[str, ImageSet]:
    """Aligned CelebA faces, centre-cropped to a square and resized to ``size``.

    With the full dataset (202,599 images, as officially distributed) the official
    train/valid/test partitions are used. With the 10,000-image subset, all of
    which are in the official train partition, a seeded held-out test split of
    ``n_test`` images is made instead. ``limit`` reads only the first images (for
    quick runs). Returns RGB (N, 3, size, size) uint8 sets; ``y`` holds each image's
    number (000001.jpg is 1), the row of its attributes.
    """
    from PIL import Image, ImageOps

    files = verify("celeba", root)
    folder = files["list_eval_partition.txt"].parent / "img_align_celeba"
    partition = [line.split() for line in files["list_eval_partition.txt"].read_text().splitlines() if line.strip()]
    present = sorted(p.name for p in folder.glob("*.jpg")) if folder.is_dir() else []
    full = len(present) >= CELEBA_FULL_SIZE
    names = [n for n, _ in partition] if full else [f"{i:06d}.jpg" for i in range(1, CELEBA_SUBSET_SIZE + 1)]
    _verify_celeba_images(folder, names)
    if limit is not None:
        names = names[:limit]
    imgs = []
    for n in names:
        with Image.open(folder / n) as img:
            # centre square crop (the full width), then an antialiased resize
            imgs.append(np.asarray(ImageOps.fit(img.convert("RGB"), (size, size), Image.LANCZOS)))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    # y is each image's number (000001.jpg is 1), to look its attributes and identity up
    whole = ImageSet(x, torch.tensor([int(n.split(".")[0]) for n in names]), "celeba")
    if full:
        part = {n: int(p) for n, p in partition}
        codes = torch.tensor([part[n] for n in names])
        return {k: whole.subset(torch.nonzero(codes == c).squeeze(1), f"celeba-{k}")
                for k, c in (("train", 0), ("valid", 1), ("test", 2))}
    n_test = min(n_test, len(whole) // 2)
    train, test = split(whole, [len(whole) - n_test, n_test], seed)
    return {"train": train, "test": test}


# ---------------------------------------------------------------------------
# Download (online users only; never called by tests or CI)
# ---------------------------------------------------------------------------
Fetch = Callable[[str, Path], None]


def _urllib_fetch(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
        while block := r.read(1 << 20):
            f.write(block)


def download(dataset: str, root: Path | None = None, fetch: Fetch = _urllib_fetch) -> list[Path]:
    """Fetch any missing or corrupt file of ``dataset`` and verify its SHA-256.

    Files that are present and verify are left alone. A download goes to a temporary
    file in the target folder and is renamed only after its checksum matches, so a
    broken transfer never leaves a bad file behind. ``fetch(url, dest)`` is the
    transfer (urllib by default; tests pass a local one).
    """
    if dataset == "celeba":
        return _download_celeba(root)
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    root = Path(root) if root is not None else data_dir()
    written = []
    for spec in DATASETS[dataset]:
        path = root / spec.relpath
        if path.is_file() and checksum_of(path, spec.sha256) == spec.sha256:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        errors = []
        for url in spec.urls:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
            os.close(fd)
            tmp = Path(tmp)
            try:
                print(f"downloading {url}", file=sys.stderr)
                fetch(url, tmp)
                got = checksum_of(tmp, spec.sha256)
                if got != spec.sha256:
                    raise DataError(f"checksum mismatch: expected sha256 {spec.sha256}, got {got}")
                os.replace(tmp, path)
                written.append(path)
                break
            except Exception as e:  # try the next mirror, report all at the end
                errors.append(f"{url}: {e}")
            finally:
                tmp.unlink(missing_ok=True)
        else:
            raise DataError(f"{dataset}: could not download {path.name} into {path.parent}\n  "
                            + "\n  ".join(errors))
    return written


def _download_celeba(root: Path | None) -> list[Path]:
    from torchvision.datasets.utils import download_file_from_google_drive, extract_archive

    folder = (Path(root) if root is not None else data_dir()) / "CelebA"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (file_id, md5) in _CELEBA_GDRIVE.items():
        download_file_from_google_drive(file_id, str(folder), name, md5)
    extract_archive(str(folder / "img_align_celeba.zip"), str(folder))
    verify("celeba", root)
    return [folder]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m common.data", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd in ("download", "check"):
        s = sub.add_parser(cmd)
        s.add_argument("names", nargs="*", help=f"datasets (default: all but celeba and dsprites): {sorted(DATASETS)}")
    args = p.parse_args(argv)
    names = args.names or [n for n in DATASETS if n not in ("celeba", "dsprites")]
    status = 0
    for name in names:
        try:
            if args.cmd == "download":
                download(name)
            verify(name)
            print(f"{name}: ok in {data_dir()}")
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
