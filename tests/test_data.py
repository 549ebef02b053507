"""Loaders on the real files, checksum errors, download from a local source, batching."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from common import data
from common.data import DataError, FileSpec, ImageSet


def test_mnist_shapes_and_labels(mnist_available):
    train, test = data.load_mnist("train"), data.load_mnist("test")
    assert train.x.shape == (60_000, 1, 28, 28) and test.x.shape == (10_000, 1, 28, 28)
    assert train.x.dtype == torch.uint8 and train.x.max() == 255
    assert sorted(train.y.unique().tolist()) == list(range(10))
    # Known first labels of the 1998 distribution.
    assert train.y[:5].tolist() == [5, 0, 4, 1, 9] and test.y[:5].tolist() == [7, 2, 1, 0, 4]


def test_split_is_a_partition():
    x = ImageSet(torch.arange(100, dtype=torch.uint8).reshape(100, 1, 1, 1), torch.arange(100))
    a, b, c = data.split(x, [50, 30, 20], seed=0)
    ids = torch.cat([a.y, b.y, c.y])
    assert sorted(ids.tolist()) == list(range(100))
    with pytest.raises(ValueError, match="add up to 101"):
        data.split(x, [50, 51], seed=0)


def test_frey_punks_celeba():
    frey = data.load_frey_face()
    assert frey.x.shape == (1965, 1, 28, 20) and frey.x.min() == 8 and frey.x.max() == 238
    punks = data.load_cryptopunks()
    assert [len(punks[k]) for k in ("train", "valid", "test")] == [6000, 2000, 2000]
    assert punks["train"].shape == (4, 24, 24)
    alpha = punks["train"].x[:, 3]
    assert (alpha == 0).any() and (alpha == 255).any()  # transparent background, opaque punk
    faces = data.load_celeba(limit=64, n_test=16)
    assert faces["train"].x.shape == (48, 3, 64, 64) and faces["test"].x.shape == (16, 3, 64, 64)
    parts = data.load_celeba(limit=100, ratios=(1.0, 0.2, 0.25))      # the seed project's ratios
    assert {k: len(v) for k, v in parts.items()} == {"train": 60, "valid": 20, "test": 20}
    assert not set(parts["train"].y.tolist()) & set(parts["valid"].y.tolist())


def _copy(dataset: str, root: Path) -> None:
    for spec in data.DATASETS[dataset]:
        dst = root / spec.relpath
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data.data_dir() / spec.relpath, dst)


def test_missing_file_error_names_file_folder_checksum(tmp_path):
    _copy("freyface", tmp_path)
    (tmp_path / "FreyFace" / "frey_rawface.mat").unlink()
    with pytest.raises(DataError) as e:
        data.load_frey_face(root=tmp_path)
    msg = str(e.value)
    assert "frey_rawface.mat" in msg and str(tmp_path / "FreyFace") in msg
    assert data.DATASETS["freyface"][0].sha256 in msg and "python -m common.data download freyface" in msg


def test_corrupt_file_error_and_nothing_lost(tmp_path):
    _copy("mnist", tmp_path)
    target = tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte.gz"
    blob = bytearray(target.read_bytes())
    blob[-1] ^= 0xFF
    target.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt file .*t10k-labels-idx1-ubyte.gz") as e:
        data.load_mnist("test", root=tmp_path)
    assert "expected sha256: f7ae60f9" in str(e.value)
    assert target.read_bytes() == bytes(blob)  # the error deletes nothing


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AE_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path.resolve()
    with pytest.raises(DataError, match=f"looked in: {tmp_path}"):
        data.load_cryptopunks()


def test_download_from_local_file_url_verifies_and_skips(tmp_path, monkeypatch):
    src = data.data_dir() / "CryptoPunks" / "punks.png"
    spec = data.DATASETS["cryptopunks"][0]
    monkeypatch.setitem(data.DATASETS, "cryptopunks",
                        (FileSpec(spec.relpath, spec.sha256, (src.resolve().as_uri(),)),))
    root = tmp_path / "d"
    assert data.download("cryptopunks", root=root) == [root / "CryptoPunks/punks.png"]
    assert len(data.load_cryptopunks(root=root)["test"]) == 2000
    assert data.download("cryptopunks", root=root) == []  # present and valid: not fetched again


def test_download_rejects_bad_bytes_and_tries_next_mirror(tmp_path, monkeypatch):
    spec = data.DATASETS["freyface"][0]
    monkeypatch.setitem(data.DATASETS, "freyface", (FileSpec(spec.relpath, spec.sha256, ("bad://1", "good://2")),))
    real = (data.data_dir() / spec.relpath).read_bytes()
    calls = []

    def fetch(url: str, dest: Path) -> None:
        calls.append(url)
        dest.write_bytes(b"not the file" if url.startswith("bad") else real)

    data.download("freyface", root=tmp_path, fetch=fetch)
    assert calls == ["bad://1", "good://2"]
    assert list((tmp_path / "FreyFace").iterdir()) == [tmp_path / "FreyFace/frey_rawface.mat"]

    (tmp_path / spec.relpath).unlink()
    with pytest.raises(DataError, match="checksum mismatch"):
        data.download("freyface", root=tmp_path, fetch=lambda url, dest: dest.write_bytes(b"x"))
    assert list((tmp_path / "FreyFace").iterdir()) == []  # no partial file left behind


def test_unknown_dataset_and_bad_images():
    with pytest.raises(DataError, match="unknown dataset 'mnsit'"):
        data.verify("mnsit")
    with pytest.raises(ValueError, match="uint8 \\(N, C, H, W\\)"):
        ImageSet(torch.zeros(3, 28, 28))
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_mnist("valid")


def test_each_example_once_per_epoch_and_seeded_order():
    x = torch.arange(103, dtype=torch.uint8).reshape(103, 1, 1, 1)
    b = ImageSet(x, torch.arange(103)).batches(10, seed=5)
    assert len(b) == 11
    for _ in range(3):
        seen = torch.cat([y for _, y in b])
        assert sorted(seen.tolist()) == list(range(103))
    first = torch.cat([y for _, y in ImageSet(x, torch.arange(103)).batches(10, seed=5)])
    again = torch.cat([y for _, y in ImageSet(x, torch.arange(103)).batches(10, seed=5)])
    assert torch.equal(first, again) and not torch.equal(first, torch.arange(103))
    xb, _ = next(iter(b))
    assert xb.dtype == torch.float32 and 0 <= xb.min() and xb.max() <= 1
    assert len(ImageSet(x).batches(10, drop_last=True)) == 10


def test_float_tensors_are_batched_unscaled():
    codes = torch.rand(25, 7)
    seen = torch.cat([xb for xb, _ in data.Batches(codes, None, 10, shuffle=False)])
    assert torch.equal(seen, codes)


def test_binarize_modes():
    x = ImageSet(torch.full((2000, 1, 2, 2), 64, dtype=torch.uint8))
    s = data.binarize(x, "stochastic", seed=1)
    assert set(s.x.unique().tolist()) <= {0, 255}
    assert abs((s.x == 255).float().mean().item() - 64 / 255) < 0.02
    assert torch.equal(s.x, data.binarize(x, "stochastic", seed=1).x)  # fixed by the seed
    assert (data.binarize(x, "threshold").x == 0).all()
    with pytest.raises(ValueError, match="stochastic"):
        data.binarize(x, "dynamic")


def test_cli_check(capsys):
    assert data.main(["check", "freyface"]) == 0
    assert "freyface: ok" in capsys.readouterr().out
    assert data.main(["check", "nope"]) == 1


def _stream(chunks: data.Chunks, n: int) -> list[int]:
    return [int(v) for _ in range(n) for xb, _ in chunks for v in xb.flatten().mul(255).round()]


def test_chunks_restore_their_position_in_the_stream():
    """A state taken anywhere (mid-pass, at a pass's end, before any pass) replays the same minibatches."""
    x = torch.arange(30, dtype=torch.uint8).reshape(30, 1, 1, 1)  # 7 full batches of 4 per pass
    for before in (0, 1, 2, 7):  # chunks of 5 taken before the state: 0, 5, 10 (pass 2) and 35 (= 5 passes) batches
        chunks = data.Chunks(ImageSet(x).batches(4, seed=3), 5)
        _stream(chunks, before)
        state = chunks.state_dict()
        expected = _stream(chunks, 4)  # crosses at least two pass boundaries
        fresh = data.Chunks(ImageSet(x).batches(4, seed=99), 5)  # another seed: only the state decides
        fresh.load_state_dict(state)
        assert _stream(fresh, 4) == expected, before
    assert chunks.batch_size == 4 and chunks.n == 20
    with pytest.raises(ValueError, match="7 minibatches"):
        fresh.load_state_dict({"pass_start": state["pass_start"], "taken": 8})


def test_python_m_common_data_checks_from_the_command_line():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "common.data", "check", "freyface", "nope"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "freyface: ok" in done.stdout and "unknown dataset 'nope'" in done.stderr
