"""dSprites (Matthey, Higgins, Hassabis & Lerchner, 2017), rendered from its factor grid.

The 2D-shapes dataset of the beta-VAE paper is the full product of five factors, in this
index order (pos-y varies fastest):

    shape (square, ellipse, heart) x scale (6) x orientation (40) x pos-x (32) x pos-y (32)

= 737,280 binary 64x64 images. The official ``.npz`` could not be obtained offline, so
:class:`DSprites` re-renders the images: each of the 3 x 6 x 40 = 720 base sprites
(shape, scale, orientation) is drawn once into a 32x32 crop, and an observation is that
crop placed by an integer shift at one of the 32 x 32 positions. A batch is rendered from
factor indices by one gather and one scatter, with no 737,280-image array in memory.

The geometry (:data:`GEOMETRY`) was calibrated against the 320 official frames of
``dSprites/dsprites.gif`` (:func:`calibrate` reports the best intersection-over-union of
each frame over the whole grid). What it reproduces, measured on those frames:

- scale takes ``linspace(0.5, 1, 6)``; a scale-1 square covers 20x20 pixels unrotated;
- orientation is ``linspace(0, 2 pi, 40)``: indices 0 and 39 draw the same image;
- the sprite's centre sits at ``16 + 32 * pos`` pixels, so positions span [16, 48] and no
  sprite leaves the frame; the official images place sprites at sub-pixel offsets,
  which the integer shift rounds to the nearest pixel;
- a pixel is on when at least half of it is covered (supersampled coverage).

When the official file is in the data folder (``dSprites/`` + :data:`OFFICIAL_NAME`),
``DSprites()`` serves its images instead (it holds all 737,280 of them: 3 GB as uint8).
Images follow the project's convention: uint8 (N, 1, 64, 64) with values 0 and 255, as
:class:`common.data.ImageSet` expects (its ``floats()`` divides by 255).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)   # 0 and 2 pi both present, as in the official file
POSITIONS = np.linspace(0.0, 1.0, 32)
IMAGE_SIZE = 64
CROP = 32          # side of the crop one base sprite is drawn into

OFFICIAL_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
# The official file's checksum (its git blob id) and URL are in common.data.DATASETS["dsprites"].
CALIBRATION_GIF = "dSprites/dsprites.gif"
CALIBRATION_SHA256 = "88020a1b32065baa72533ba231ddf717309842062fd31c7e759eb6bbe6fde306"


@dataclass(frozen=True)
class SpriteGeometry:
    """Sizes (pixels at scale 1) and placement of the three sprites.

    The heart is two discs (the lobes) over a triangle that joins the outer edges of
    the lobes to the tip; ``heart_*`` are its lobe radius, the horizontal offset of the
    lobe centres, the height of the lobe centres and of the tip, relative to the
    centre it rotates about (y points down). Rotation is counter-clockwise on screen
    for ``rotation_sign = 1``.
    """

    square_side: float = 19.2
    ellipse_width: float = 25.56
    ellipse_height: float = 14.45
    heart_lobe_radius: float = 5.22
    heart_lobe_offset: float = 4.54
    heart_lobe_height: float = -3.84
    heart_tip: float = 9.18
    centre: float = 16.0          # sprite centre at pos = 0, in pixels
    span: float = 32.0            # pixels from pos = 0 to pos = 1
    y_offset: float = 0.13        # the official pos-y shifts round 32 * pos - 0.13 (measured), pos-x 32 * pos
    rotation_sign: float = 1.0
    coverage: float = 0.5         # a pixel is on when at least this much of it is covered
    supersample: int = 8          # samples per pixel side for the coverage

    def to_dict(self) -> dict:
        return asdict(self)


GEOMETRY = SpriteGeometry()


def _inside(shape: int, u: np.ndarray, v: np.ndarray, scale: float, g: SpriteGeometry) -> np.ndarray:
    """Whether sprite-frame points (u right, v down, in pixels) lie inside the shape."""
    if shape == 0:
        half = g.square_side * scale / 2
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == 1:
        a, b = g.ellipse_width * scale / 2, g.ellipse_height * scale / 2
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    r, c = g.heart_lobe_radius * scale, g.heart_lobe_offset * scale
    yl, yt = g.heart_lobe_height * scale, g.heart_tip * scale
    lobes = ((np.abs(u) - c) ** 2 + (v - yl) ** 2) <= r * r
    # below the lobes: the region between the tip and the lines from it that touch each lobe
    pu, pv = _tangent_point(c, yl, r, yt)
    below = (v >= pv) & (v <= yt) & (np.abs(u) <= pu * (yt - v) / (yt - pv))
    between = (v >= yl) & (v <= pv) & (np.abs(u) <= c)
    return lobes | below | between


def _tangent_point(c: float, yl: float, r: float, yt: float) -> tuple[float, float]:
    """Where the line from the tip (0, yt) touches the right lobe (centre (c, yl), radius r) on its outer side."""
    dx, dy = c, yl - yt
    dist = math.hypot(dx, dy)
    along = math.sqrt(max(dist * dist - r * r, 0.0))
    alpha = math.asin(min(r / dist, 1.0))
    best = None
    for a in (alpha, -alpha):   # the two tangents; keep the outer one
        ex = (dx * math.cos(a) - dy * math.sin(a)) / dist
        ey = (dx * math.sin(a) + dy * math.cos(a)) / dist
        p = (along * ex, yt + along * ey)
        if best is None or p[0] > best[0]:
            best = p
    return best


def render_base_sprites(geometry: SpriteGeometry = GEOMETRY) -> np.ndarray:
    """The 720 base sprites as a bool array (3, 6, 40, CROP, CROP), each centred at pixel
    ``geometry.centre`` of its crop (the position pos_x = pos_y = 0)."""
    ss = geometry.supersample
    offs = (np.arange(ss) + 0.5) / ss
    grid = (np.arange(CROP)[:, None] + offs[None, :]).reshape(-1)         # sample coordinates
    y, x = np.meshgrid(grid - geometry.centre, grid - geometry.centre, indexing="ij")
    out = np.zeros((3, 6, 40, CROP, CROP), dtype=bool)
    for o, theta in enumerate(ORIENTATIONS):
        # rotate the sample points back into the sprite's frame
        cs, sn = math.cos(theta), geometry.rotation_sign * math.sin(theta)
        u, v = cs * x - sn * y, sn * x + cs * y
        for shape in range(3):
            for s, scale in enumerate(SCALES):
                inside = _inside(shape, u, v, scale, geometry)
                cover = inside.reshape(CROP, ss, CROP, ss).mean(axis=(1, 3))
                out[shape, s, o] = cover >= geometry.coverage
    return out


def position_shifts(geometry: SpriteGeometry = GEOMETRY, axis: str = "x") -> np.ndarray:
    """Integer pixel shift of each of the 32 positions along ``axis``: round(span * pos [- y_offset]), 0..32."""
    offset = geometry.y_offset if axis == "y" else 0.0
    return np.floor(geometry.span * POSITIONS - offset + 0.5).astype(np.int64)


class DSprites:
    """The dSprites dataset: factor grid, index order and images rendered on demand.

    ``source="auto"`` uses the official npz when it is in the data folder and the
    renderer otherwise; ``"render"`` or ``"official"`` force one. ``.source`` says which.
    """

    factor_sizes = FACTOR_SIZES
    factor_names = FACTOR_NAMES

    def __init__(self, source: str = "auto", geometry: SpriteGeometry = GEOMETRY, root: Path | None = None) -> None:
        if source not in ("auto", "render", "official"):
            raise ValueError(f"source must be 'auto', 'render' or 'official', got {source!r}")
        self.geometry = geometry
        self._official: np.ndarray | None = None
        path = official_path(root)
        if source == "official" or (source == "auto" and path.is_file()):
            self._official = load_official(root)
            self.source = "official"
        else:
            self.source = "render"
            self.sprites = render_base_sprites(geometry).reshape(720, CROP, CROP).astype(np.uint8) * 255
            self.shift_x, self.shift_y = position_shifts(geometry, "x"), position_shifts(geometry, "y")
        self._strides = np.cumprod((1,) + FACTOR_SIZES[::-1])[:-1][::-1].astype(np.int64)

    def __len__(self) -> int:
        return math.prod(FACTOR_SIZES)

    # -- factors and the official flat index -------------------------------
    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor vectors drawn uniformly from the grid, int64 (n, 5)."""
        return np.stack([rng.integers(0, k, size=n) for k in FACTOR_SIZES], axis=1).astype(np.int64)

    def index(self, factors: np.ndarray) -> np.ndarray:
        """Flat index in the official order (pos-y fastest) of factor vectors (n, 5)."""
        f = self._check(factors)
        return f @ self._strides

    def factors(self, index: np.ndarray | int) -> np.ndarray:
        """Factor vectors (n, 5) of flat indices, the inverse of :meth:`index`."""
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        if idx.min(initial=0) < 0 or idx.max(initial=0) >= len(self):
            raise ValueError(f"indices must lie in [0, {len(self)})")
        return np.stack([(idx // s) % k for s, k in zip(self._strides, FACTOR_SIZES)], axis=1)

    def values(self, factors: np.ndarray) -> np.ndarray:
        """The factors' values (shape 1-3, scale, orientation in radians, pos-x, pos-y), float (n, 5)."""
        f = self._check(factors)
        return np.stack([f[:, 0] + 1.0, SCALES[f[:, 1]], ORIENTATIONS[f[:, 2]], POSITIONS[f[:, 3]],
                         POSITIONS[f[:, 4]]], axis=1)

    def _check(self, factors: np.ndarray) -> np.ndarray:
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != 5:
            raise ValueError(f"factors must be an integer array (n, 5), got shape {f.shape}")
        if np.any(f < 0) or np.any(f >= np.array(FACTOR_SIZES)):
            raise ValueError(f"factor indices out of range; the grid is {FACTOR_SIZES}")
        return f.astype(np.int64)

    # -- images -------------------------------------------------------------
    def observations(self, factors: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """Images of the factor vectors (n, 5) as uint8 (n, 1, 64, 64), values 0 and 255."""
        f = self._check(factors)
        if self._official is not None:
            return torch.from_numpy(self._official[self.index(f)]).mul_(255).unsqueeze(1).to(device)
        base = (f[:, 0] * 6 + f[:, 1]) * 40 + f[:, 2]
        n = len(f)
        out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        # a strided view of each image's 33 x 33 possible 32x32 windows: one fancy-indexed
        # write places every crop, with no per-pixel index arrays
        windows = np.lib.stride_tricks.as_strided(
            out, shape=(n, IMAGE_SIZE - CROP + 1, IMAGE_SIZE - CROP + 1, CROP, CROP),
            strides=(IMAGE_SIZE * IMAGE_SIZE, IMAGE_SIZE, 1, IMAGE_SIZE, 1))
        windows[np.arange(n), self.shift_y[f[:, 4]], self.shift_x[f[:, 3]]] = self.sprites[base]
        return torch.from_numpy(out).unsqueeze(1).to(device)

    def images(self, index: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """Images of flat indices (official order)."""
        return self.observations(self.factors(index), device)


class DSpritesBatches:
    """Training minibatches rendered straight from :class:`DSprites`, for ``common.train.fit``.

    Each "epoch" is ``n_batches`` minibatches of images drawn uniformly from the grid
    (with replacement), rendered on the fly and cast to float in [0, 1]: no dataset
    array is held. The draw comes from its own generator, so two models trained with
    the same seed see the same images in the same order, and a resumed run continues
    the stream (the generator state is checkpointed).
    """

    def __init__(self, data: DSprites, batch_size: int, n_batches: int, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        if batch_size < 1 or n_batches < 1:
            raise ValueError("batch_size and n_batches must be >= 1")
        # (not an attribute "n_batches": run.train reads that as a common.data.Chunks)
        self.data, self.batch_size, self.batches_per_epoch = data, batch_size, n_batches
        self._device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def n(self) -> int:
        return self.batch_size * self.batches_per_epoch

    @property
    def device(self) -> torch.device:
        return self._device

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self):
        for _ in range(self.batches_per_epoch):
            idx = torch.randint(len(self.data), (self.batch_size,), generator=self.generator).numpy()
            yield self.data.images(idx, self._device).float().div_(255), None

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


# ---------------------------------------------------------------------------
# The official file (used when present) and the calibration frames
# ---------------------------------------------------------------------------
def official_path(root: Path | None = None) -> Path:
    from common.data import data_dir

    return (Path(root) if root is not None else data_dir()) / "dSprites" / OFFICIAL_NAME


def load_official(root: Path | None = None) -> np.ndarray:
    """The official images, uint8 (737280, 64, 64) with values 0/1, after checking the file's git blob id
    (``python -m common.data download dsprites`` fetches it)."""
    from common.data import DataError, verify

    path = verify("dsprites", root)[OFFICIAL_NAME]   # names the folder and how to get it when missing
    with np.load(path, allow_pickle=False) as z:
        imgs = z["imgs"]
    if imgs.shape != (math.prod(FACTOR_SIZES), IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"dsprites: {path} holds images of shape {imgs.shape}")
    return imgs


def load_calibration_frames(root: Path | None = None) -> np.ndarray:
    """The 320 official frames of ``dSprites/dsprites.gif`` as bool (320, 64, 64)."""
    from PIL import Image, ImageSequence

    from common.data import DataError, data_dir, sha256_of

    path = (Path(root) if root is not None else data_dir()) / CALIBRATION_GIF
    if not path.is_file():
        raise DataError(f"dsprites: missing calibration file {path.name}\n  looked in: {path.parent}\n"
                        "  it is the official repository's dsprites.gif (deepmind/dsprites-dataset)")
    if sha256_of(path) != CALIBRATION_SHA256:
        raise DataError(f"dsprites: {path} differs from the known dsprites.gif (sha256 {CALIBRATION_SHA256})")
    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("L")) > 127 for f in ImageSequence.Iterator(im)])


@torch.no_grad()
def best_match(frames: np.ndarray, geometry: SpriteGeometry = GEOMETRY, chunk: int = 32) -> dict[str, np.ndarray]:
    """Best IoU of each frame over the whole rendered grid (all 737,280 images), and where.

    The overlap of a frame with every base sprite at every shift is one 2-D
    cross-correlation (``conv2d`` of the frames with the 720 crops), read at the 32 x 32
    shifts that positions use. Returns ``iou`` (n,) and ``factors`` (n, 5) of the best match.
    """
    sprites = torch.from_numpy(render_base_sprites(geometry).reshape(720, 1, CROP, CROP)).float()
    area_s = sprites.sum((1, 2, 3))                                    # (720,)
    sx, sy = torch.from_numpy(position_shifts(geometry, "x")), torch.from_numpy(position_shifts(geometry, "y"))
    ious, best = [], []
    for fb in torch.from_numpy(np.asarray(frames, dtype=np.float32)).split(chunk):
        inter = torch.nn.functional.conv2d(fb[:, None], sprites)       # (b, 720, 33, 33): [dy, dx]
        inter = inter[:, :, sy][:, :, :, sx]                           # (b, 720, 32 pos-y, 32 pos-x)
        area_f = fb.sum((1, 2))[:, None, None, None]
        iou = inter / (area_f + area_s[None, :, None, None] - inter)
        flat = iou.flatten(1)
        v, i = flat.max(1)
        ious.append(v)
        best.append(i)
    i = torch.cat(best).numpy()
    base, py, px = i // (32 * 32), (i // 32) % 32, i % 32
    factors = np.stack([base // 240, (base // 40) % 6, base % 40, px, py], axis=1)
    return {"iou": torch.cat(ious).numpy(), "factors": factors}


def calibrate(root: Path | None = None, geometry: SpriteGeometry = GEOMETRY, every: int = 1) -> dict:
    """The renderer against the official frames: median, worst and mean best-IoU over the grid.

    Uses every ``every``-th of the 320 frames. Also the share of frames whose best match
    has the frame's shape (the GIF shows hearts in frames 0-191, ellipses in 192-255 and
    squares in 256-319), and the frames themselves with their best-matching images.
    """
    frames = load_calibration_frames(root)
    true_shape = np.r_[np.full(192, 2), np.full(64, 1), np.full(64, 0)][:len(frames)]
    frames, true_shape = frames[::every], true_shape[::every]
    m = best_match(frames, geometry)
    return {"frames": len(frames), "median_iou": float(np.median(m["iou"])), "worst_iou": float(m["iou"].min()),
            "mean_iou": float(m["iou"].mean()), "worst_frame": int(m["iou"].argmin()) * every,
            "shape_agreement": float(np.mean(m["factors"][:, 0] == true_shape)),
            "iou": m["iou"], "factors": m["factors"], "official": frames}
