"""Download the datasets, or check them, against their known checksums.

``python -m common.data download|check [NAME ...]``: ``download`` fetches any missing
or corrupt file from its official source and verifies what it fetched; ``check`` only
verifies. Both default to every dataset but CelebA and dSprites. For online users only:
nothing in the tests or CI downloads.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

from common.data.registry import CELEBA_GDRIVE, DATASETS, DataError, checksum_of, data_dir, verify

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
    """The command line; exits 1 when any named dataset could not be fetched or verified."""
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
