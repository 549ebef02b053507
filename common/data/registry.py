"""The registry of dataset files and their checksums, and the checks that guard every read.

Every file is checked against a known SHA-256 (or, for dSprites, its git blob id) before
it is read. A missing or corrupt file raises :class:`DataError`, which names the file,
the folder searched, the expected checksum and how to get it. The data folder is
``$AE_DATA_DIR`` or, when unset, ``data/`` at the repository root.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from common.paths import REPO_ROOT

DATA_ENV = "AE_DATA_DIR"


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or malformed."""


def data_dir() -> Path:
    """The data folder: ``$AE_DATA_DIR`` or ``<repo>/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "data"


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
    # published). Optional: without it BetaVAE.dsprites renders the images.
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
CELEBA_GDRIVE = {  # file id, md5 (from torchvision.datasets.CelebA.file_list)
    "img_align_celeba.zip": ("0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    "list_eval_partition.txt": ("0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668"),
    "identity_CelebA.txt": ("1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS", "32bd1bd63d3c78cd57e08160ec5ed1e2"),
}


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
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


def verify_celeba_images(folder: Path, names: list[str]) -> None:
    """Check the CelebA images ``names`` in ``folder``: all present, and the 10,000-image subset by its digest."""
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
