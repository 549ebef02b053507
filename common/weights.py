"""Published weights: a committed run's trained models as plain ``state_dict`` files, each checked by SHA-256.

A user with no time to train loads them and checks every number of a ``long`` run in
minutes. ``python -m common.weights publish <Paper> --profile long`` copies the finished
checkpoints of that run into ``<Paper>/long/weights/``:

- ``<name>.pt``: the model's ``state_dict`` alone (no optimizer state), loadable with
  ``torch.load(path, weights_only=True)`` into the notebook's model;
- ``<name>.rng.pt``: the random-number generators' state when training ended, so that the
  evaluations after a load draw exactly what the training run drew;
- ``manifest.json``: per model the config key it was trained under (``common.run.config_key``:
  the code, settings and data behind it), both files' SHA-256 and sizes, and its training
  history (for the learning curves and the convergence rule).

``Run.train`` loads a published model whose key matches the one it would train (printing
``<name>: published``); a changed key means the code or the settings changed, and the model
trains instead. ``Run(retrain=True)`` ignores published weights. A file whose checksum does
not match stops the run with an error that names the file, the expected checksum and where
the file belongs: a wrong weight never passes silently for a published one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from common.data import sha256_of
from common.paths import REPO_ROOT, atomic_write, atomic_write_text, output_root
from common.train import History, _from_plain_rng, _set_rng_state, load_checkpoint

MANIFEST = "manifest.json"
#: The most that one paper's published weights may weigh (the repository's budget is 50 MB in all).
LIMIT_BYTES = 50 * 2**20


class PublishedWeightsError(RuntimeError):
    """A published file is missing or its checksum does not match the manifest."""


def weights_dir(paper: str, profile: str) -> Path:
    """Where a paper's published weights of ``profile`` live: ``<Paper>/<profile>/weights/``."""
    return output_root(paper, profile) / "weights"


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """The manifest of ``folder`` by model name; empty when nothing is published there."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["models"]


def verify(folder: Path, name: str, entry: dict[str, Any]) -> None:
    """Raise :class:`PublishedWeightsError` unless both files of ``name`` exist with their recorded SHA-256."""
    for file, expected in ((entry["file"], entry["sha256"]), (entry["rng_file"], entry["rng_sha256"])):
        path = Path(folder) / file
        where = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        if not path.is_file():
            raise PublishedWeightsError(
                f"published weights of {name!r}: {where} is missing (expected SHA-256 {expected}); restore it "
                f"with `git checkout -- {where}`, or pass retrain=True to train the model instead")
        found = sha256_of(path)
        if found != expected:
            raise PublishedWeightsError(
                f"published weights of {name!r}: {where} has SHA-256 {found}, the manifest expects {expected}; "
                f"put the committed file back at {where} (`git checkout -- {where}`), or pass retrain=True")


def load_published(folder: Path, name: str, key: str, model: nn.Module) -> History | None:
    """Load the published model ``name`` into ``model`` if it was trained under ``key``; return its history.

    Returns None when nothing is published under that name or its key differs (the model then
    trains). The RNG state is restored as a finished checkpoint restores it.
    """
    entry = read_manifest(folder).get(name)
    if entry is None or entry["key"] != key:
        if entry is not None:
            print(f"{name}: the published weights were trained under another key (the code or the settings "
                  f"changed since), so it trains")
        return None
    verify(folder, name, entry)
    model.load_state_dict(torch.load(Path(folder) / entry["file"], map_location="cpu", weights_only=True))
    _set_rng_state(_from_plain_rng(torch.load(Path(folder) / entry["rng_file"], weights_only=True)))
    return History.from_dict(entry["history"])


def publish(paper: str, profile: str, names: Sequence[str] | None = None, limit_bytes: int = LIMIT_BYTES) -> Path:
    """Publish the finished checkpoints of ``paper``'s ``profile`` run (all of them, or ``names``); return the folder.

    Only a finished checkpoint is published (an unfinished one would be a different model from
    the run's). The manifest is written last, atomically, so an interrupted publish leaves the old one.
    """
    source = output_root(paper, profile) / "checkpoints" / profile
    paths = sorted(source.glob("*.pt")) if names is None else [source / f"{n}.pt" for n in names]
    if not paths:
        raise FileNotFoundError(f"no checkpoints in {source}: run the {profile} notebook of {paper} first")
    folder = weights_dir(paper, profile)
    models: dict[str, dict[str, Any]] = {}
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint")
        state = load_checkpoint(path)
        if not state.get("finished"):
            raise ValueError(f"{path}: training is not finished; finish the run before publishing it")
        name = path.stem
        weights, rng = folder / f"{name}.pt", folder / f"{name}.rng.pt"
        atomic_write(weights, lambda tmp: torch.save({k: v.cpu() for k, v in state["model"].items()}, tmp))
        atomic_write(rng, lambda tmp: torch.save(state["rng"], tmp))
        models[name] = {"key": state["key"], "file": weights.name, "sha256": sha256_of(weights),
                        "bytes": weights.stat().st_size, "rng_file": rng.name, "rng_sha256": sha256_of(rng),
                        "history": state["history"]}
    total = sum(m["bytes"] for m in models.values())
    if total > limit_bytes:
        raise ValueError(f"{paper} {profile}: {total / 2**20:.1f} MiB of weights, over the {limit_bytes / 2**20:.0f} MiB "
                         "limit; publish fewer models (names=...)")
    atomic_write_text(folder / MANIFEST, json.dumps({"paper": paper, "profile": profile, "models": models},
                                                    indent=1, sort_keys=True) + "\n")
    return folder


def check_all(root: Path = REPO_ROOT) -> list[str]:
    """Verify every published file under ``root``; return the names checked (raises on the first bad one)."""
    checked = []
    for manifest in sorted(root.glob("*/*/weights/" + MANIFEST)):
        for name, entry in read_manifest(manifest.parent).items():
            verify(manifest.parent, name, entry)
            checked.append(f"{manifest.parent.relative_to(root)}/{name}")
    return checked


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m common.weights", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="publish the finished checkpoints of a paper's run")
    pub.add_argument("paper", help="the paper's folder, e.g. SB_VAE")
    pub.add_argument("--profile", default="long")
    pub.add_argument("--names", nargs="*", help="models to publish (default: every finished checkpoint)")
    sub.add_parser("check", help="verify the checksum of every published file")
    args = p.parse_args(argv)
    if args.command == "publish":
        folder = publish(args.paper, args.profile, args.names)
        for name, m in read_manifest(folder).items():
            print(f"{name}: {m['bytes'] / 2**20:.2f} MiB, sha256 {m['sha256'][:16]}...")
        return 0
    for line in check_all():
        print(f"ok {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
