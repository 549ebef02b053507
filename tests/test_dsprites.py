"""The dSprites renderer: the official grid and index order, binary un-clipped sprites, geometry
that moves the way the factors say, and the match with the official frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from common import data as common_data
from BetaVAE import dsprites as D


@pytest.fixture(scope="module")
def data() -> D.DSprites:
    return D.DSprites(source="render")


def all_base_factors(px: int, py: int) -> np.ndarray:
    """The 720 (shape, scale, orientation) combinations at one position."""
    s, c, o = np.meshgrid(np.arange(3), np.arange(6), np.arange(40), indexing="ij")
    n = s.size
    return np.stack([s.ravel(), c.ravel(), o.ravel(), np.full(n, px), np.full(n, py)], axis=1)


def centroids(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x = images[:, 0].float()
    grid = torch.arange(64, dtype=torch.float32)
    area = x.sum((1, 2))
    return ((x.sum(1) * grid).sum(1) / area).numpy(), ((x.sum(2) * grid).sum(1) / area).numpy()


def test_grid_is_complete_in_the_official_order(data):
    assert data.factor_sizes == (3, 6, 40, 32, 32) and len(data) == 737_280
    assert data.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    every = data.factors(np.arange(len(data)))
    np.testing.assert_array_equal(data.index(every), np.arange(len(data)))  # round trip: a bijection
    for col, size in enumerate(data.factor_sizes):                          # each value equally often
        assert (np.bincount(every[:, col], minlength=size) == len(data) // size).all()
    np.testing.assert_array_equal(data.factors([1, 32, 1024, 40960, 245760]),
                                  [[0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    f = data.sample_factors(500, np.random.default_rng(0))
    assert f.dtype == np.int64 and f.shape == (500, 5) and (f < np.array(data.factor_sizes)).all() and (f >= 0).all()
    with pytest.raises(ValueError):
        data.index(np.array([[3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError):
        data.factors(len(data))


def test_images_are_binary_nonempty_and_never_clipped(data):
    for px, py in [(0, 0), (31, 31), (0, 31), (31, 0)]:
        x = data.observations(all_base_factors(px, py))
        assert x.dtype == torch.uint8 and x.shape == (720, 1, 64, 64)
        assert set(torch.unique(x).tolist()) == {0, 255}
        area = (x > 0).sum((1, 2, 3))
        assert (area > 0).all()
        # the image border stays empty: no sprite reaches the edge of the frame
        assert not x[..., 0, :].any() and not x[..., -1, :].any() and not x[..., :, 0].any() and not x[..., :, -1].any()
    # nor the edge of the crop it is drawn in, so nothing was cut when it was drawn
    crops = D.render_base_sprites()
    assert not crops[..., 0, :].any() and not crops[..., -1, :].any()
    assert not crops[..., :, 0].any() and not crops[..., :, -1].any()
    # the same sprite has the same area at every position (placement only shifts it)
    a0 = (data.observations(all_base_factors(0, 0)) > 0).sum((1, 2, 3))
    a1 = (data.observations(all_base_factors(17, 9)) > 0).sum((1, 2, 3))
    assert torch.equal(a0, a1)


def test_area_grows_with_scale(data):
    area = (data.observations(all_base_factors(10, 10)) > 0).sum((1, 2, 3)).reshape(3, 6, 40)
    assert (area[:, 1:] > area[:, :-1]).all()
    # scale 1 against the official frames (unrotated): square 400 px, ellipse 288, heart 222
    assert abs(int(area[0, 5, 0]) - 400) <= 6 and abs(int(area[1, 5, 0]) - 288) <= 6 and abs(int(area[2, 5, 0]) - 222) <= 12


def test_centroid_moves_monotonically_with_position(data):
    for shape, scale, orient in [(0, 0, 0), (1, 3, 7), (2, 5, 20), (2, 0, 33)]:
        for axis in (3, 4):
            f = np.tile([shape, scale, orient, 5, 20], (32, 1))
            f[:, axis] = np.arange(32)
            cx, cy = centroids(data.observations(f))
            moving, still = (cx, cy) if axis == 3 else (cy, cx)
            assert (np.diff(moving) > 0).all() and np.ptp(still) < 1e-4
            assert 31 <= moving[-1] - moving[0] <= 33   # positions span 32 pixels


def test_orientation_ends_meet_and_rotation_keeps_area(data):
    f0 = all_base_factors(4, 4)
    x = data.observations(f0).reshape(3, 6, 40, 64, 64)
    assert torch.equal(x[:, :, 0], x[:, :, 39])   # linspace(0, 2 pi, 40): 0 and 2 pi
    area = (x > 0).sum((3, 4)).float()   # pixels make small rotated sprites vary (official scale 1: 364-400)
    assert ((area.max(2).values - area.min(2).values) / area.mean(2) < 0.2).all()


def test_matches_the_official_frames():
    # every 4th of the 320 frames, each against all 737,280 rendered images; measured at
    # calibration: median 0.974 and worst 0.907 over all 320 frames
    frames = D.load_calibration_frames()[::4]
    m = D.best_match(frames)
    assert np.median(m["iou"]) > 0.95 and m["iou"].min() > 0.88
    hearts, ellipses, squares = m["factors"][:48, 0], m["factors"][48:64, 0], m["factors"][64:, 0]
    assert (hearts == 2).all() and (ellipses == 1).all() and (squares == 0).all()


def test_batches_render_on_the_fly_and_resume(data):
    b = D.DSpritesBatches(data, batch_size=8, n_batches=3, seed=0)
    first = [x for x, _ in b]
    assert len(first) == 3 and first[0].shape == (8, 1, 64, 64) and first[0].dtype == torch.float32
    assert set(torch.unique(first[0]).tolist()) <= {0.0, 1.0}
    state = b.state_dict()
    nxt = next(iter(b))[0]
    b.load_state_dict(state)
    assert torch.equal(next(iter(b))[0], nxt)
    again = [x for x, _ in D.DSpritesBatches(data, batch_size=8, n_batches=3, seed=0)]
    assert all(torch.equal(a, c) for a, c in zip(first, again))


def test_official_file_is_checked_by_its_git_blob_id(tmp_path, monkeypatch):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello world\n")
    blob = "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"   # `git hash-object` of these bytes
    assert common_data.git_blob_id(src) == blob
    spec = common_data.DATASETS["dsprites"][0]
    assert spec.sha256 == "git-blob:d98996d3f8ee1550e06b9d4ed78d0beb478910d5"
    monkeypatch.setitem(common_data.DATASETS, "dsprites",
                        (common_data.FileSpec(spec.relpath, "git-blob:" + blob, ("local://src",)),))
    root = tmp_path / "data"
    common_data.download("dsprites", root, fetch=lambda url, dest: dest.write_bytes(src.read_bytes()))
    assert common_data.verify("dsprites", root)[D.OFFICIAL_NAME].read_bytes() == b"hello world\n"
    (root / spec.relpath).write_bytes(b"hello world!\n")
    with pytest.raises(common_data.DataError, match="corrupt"):
        common_data.verify("dsprites", root)


def test_without_the_official_file_it_renders(tmp_path):
    assert D.DSprites(root=tmp_path).source == "render"
    with pytest.raises(common_data.DataError, match="download dsprites"):
        D.DSprites(source="official", root=tmp_path)
