"""load_image_folder: train/ and test/ folders of face images, as the VAE-for-faces seed project lays them out."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from common.data import load_image_folder


def _write(folder, n, size=(80, 100), fmt="png", seed=0):
    """n images of one flat colour each, 10 * i + seed in every channel, written in shuffled order."""
    folder.mkdir(parents=True)
    for i in np.random.default_rng(seed).permutation(n):
        Image.fromarray(np.full((*size, 3), 10 * i + seed, dtype=np.uint8)).save(folder / f"{i:03d}.{fmt}")


def test_each_split_is_read_in_name_order_cropped_and_resized(tmp_path):
    _write(tmp_path / "faces" / "train", 5)
    _write(tmp_path / "faces" / "test", 3, fmt="jpg", seed=1)
    (tmp_path / "faces" / "train" / "notes.txt").write_text("not an image")
    sets = load_image_folder(tmp_path / "faces", size=32)
    assert set(sets) == {"train", "test"}
    assert tuple(sets["train"].x.shape) == (5, 3, 32, 32) and tuple(sets["test"].x.shape) == (3, 3, 32, 32)
    assert sets["train"].y is None and sets["train"].name == "faces-train"
    # name order, and a flat image stays flat through the crop and the antialiased resize
    assert [int(img.float().mean()) for img in sets["train"].x] == [0, 10, 20, 30, 40]
    assert all(int(img.min()) == int(img.max()) for img in sets["train"].x)
    assert [round(float(img.float().mean())) for img in sets["test"].x] == [1, 11, 21]   # jpg: within rounding


def test_a_valid_split_is_read_when_present(tmp_path):
    for name in ("train", "valid", "test"):
        _write(tmp_path / name, 2)
    assert set(load_image_folder(tmp_path, size=16)) == {"train", "valid", "test"}


def test_missing_empty_or_unreadable_input_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    _write(tmp_path / "a" / "train", 2)
    with pytest.raises(ValueError, match=r"a/test is missing"):
        load_image_folder(tmp_path / "a")
    (tmp_path / "a" / "test").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_image_folder(tmp_path / "a")
    (tmp_path / "a" / "test" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read the image .*broken\.png"):
        load_image_folder(tmp_path / "a")


def test_ratio_splits_keep_the_share_then_hold_out_test_and_validation_disjointly():
    from common.data import ImageSet, ratio_splits

    data = ImageSet(torch.arange(1000, dtype=torch.uint8).reshape(1000, 1, 1, 1) % 251,
                    torch.arange(1000), "toy")
    parts = ratio_splits(data, red_ratio=0.5, test_split=0.2, validation_split=0.25, seed=3)
    assert {k: len(v) for k, v in parts.items()} == {"train": 300, "valid": 100, "test": 100}
    ids = [set(v.y.tolist()) for v in parts.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    again = ratio_splits(data, red_ratio=0.5, test_split=0.2, validation_split=0.25, seed=3)
    assert torch.equal(again["test"].y, parts["test"].y)
    assert len(ratio_splits(data, validation_split=0.0)["valid"]) == 0
    with pytest.raises(ValueError, match="red_ratio"):
        ratio_splits(data, red_ratio=0.0)
    with pytest.raises(ValueError, match="no training example"):
        ratio_splits(data, test_split=1.0)
