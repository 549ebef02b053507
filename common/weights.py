"""Published weights: a committed run's trained models as plain ``state_dict`` files, each checked by SHA-256.

A user with no time to train loads them and checks every number of a ``long`` run in
minutes. ``python -m common.weights publish <Paper> --profile long`` copies the finished
checkpoints of that run into ``<Paper>/long/weights/``:

- ``<name>.pt``: the model's ``state_dict`` alone (no optimizer state), loadable with
  ``torch.load(path, weights_only=True)`` into the notebook's model;
- ``<name>.state.pt``: the random-number generators' and the training batches' state when training
  ended (what a finished checkpoint restores), so that the evaluations after a load draw exactly what
  the training run drew on the same kind of device;
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
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from common.data import sha256_of
from common.paths import REPO_ROOT, atomic_write, atomic_write_text, output_root
from common.train import History, _from_plain_rng, _set_rng_state, load_checkpoint

MANIFEST = "manifest.json"
#: The most that all published weights of the repository may weigh together.
LIMIT_BYTES = 50 * 2**20
#: Profiles whose runs are committed beside standard's and may publish weights.
PUBLISHED_PROFILES = ("long", "paper")


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
    for file, expected in ((entry["file"], entry["sha256"]), (entry["state_file"], entry["state_sha256"])):
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


def load_published(folder: Path, name: str, key: str, model: nn.Module, train=None) -> History | None:
    """Load the published model ``name`` into ``model`` if it was trained under ``key``; return its history.

    Returns None when nothing is published under that name or its key differs (the model then
    comes from a checkpoint or trains). The RNG state, and the position of ``train`` (the
    training batches), are restored as a finished checkpoint restores them.
    """
    entry = read_manifest(folder).get(name)
    if entry is None or entry["key"] != key:
        if entry is not None:
            print(f"{name}: published weights not used: they were trained under another key (the code or the "
                  f"settings changed since)")
        return None
    verify(folder, name, entry)
    model.load_state_dict(torch.load(Path(folder) / entry["file"], map_location="cpu", weights_only=True))
    state = torch.load(Path(folder) / entry["state_file"], weights_only=True)
    _set_rng_state(_from_plain_rng(state["rng"]))
    if train is not None and state.get("batches") is not None:
        train.load_state_dict(state["batches"])
    return History.from_dict(entry["history"])


def _serialised(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def publish(paper: str, profile: str, names: Sequence[str] | None = None, limit_bytes: int = LIMIT_BYTES) -> Path:
    """Publish the finished checkpoints of ``paper``'s ``profile`` run (all of them, or ``names``); return the folder.

    Only a finished checkpoint is published (an unfinished one would be a different model from
    the run's). Models already published there and not named stay in the manifest. Everything is
    sized before anything is written: a publish that would take the repository's weights over
    ``limit_bytes`` writes nothing. The manifest is written last, atomically.
    """
    if profile not in PUBLISHED_PROFILES:
        raise ValueError(f"only the committed runs of {', '.join(PUBLISHED_PROFILES)} publish weights, not {profile!r}")
    source = output_root(paper, profile) / "checkpoints" / profile
    paths = sorted(source.glob("*.pt")) if names is None else [source / f"{n}.pt" for n in names]
    if not paths:
        raise FileNotFoundError(f"no checkpoints in {source}: run the {profile} notebook of {paper} first")
    folder = weights_dir(paper, profile)
    blobs: dict[str, tuple[bytes, bytes, dict]] = {}
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint")
        state = load_checkpoint(path)
        if not state.get("finished"):
            raise ValueError(f"{path}: training is not finished; finish the run before publishing it")
        weights = _serialised({k: v.cpu() for k, v in state["model"].items()})
        extra = _serialised({"rng": state["rng"], "batches": state.get("batches")})
        blobs[path.stem] = (weights, extra, state)
    models = read_manifest(folder)
    elsewhere = sum(m["bytes"] for manifest in REPO_ROOT.glob("*/*/weights/" + MANIFEST)
                    if manifest.parent.resolve() != folder.resolve() for m in read_manifest(manifest.parent).values())
    kept = sum(m["bytes"] for n, m in models.items() if n not in blobs)
    total = elsewhere + kept + sum(len(w) for w, _, _ in blobs.values())
    if total > limit_bytes:
        raise ValueError(f"{paper} {profile}: the repository's published weights would weigh {total / 2**20:.1f} MiB, "
                         f"over the {limit_bytes / 2**20:.0f} MiB limit; publish fewer models (names=...)")
    for name, (weights, extra, state) in blobs.items():
        atomic_write(folder / f"{name}.pt", lambda tmp, b=weights: tmp.write_bytes(b))
        atomic_write(folder / f"{name}.state.pt", lambda tmp, b=extra: tmp.write_bytes(b))
        models[name] = {"key": state["key"], "file": f"{name}.pt", "sha256": hashlib.sha256(weights).hexdigest(),
                        "bytes": len(weights), "state_file": f"{name}.state.pt",
                        "state_sha256": hashlib.sha256(extra).hexdigest(), "history": state["history"]}
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
    pub.add_argument("--profile", default="long", choices=PUBLISHED_PROFILES)
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
