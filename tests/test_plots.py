"""Every figure function draws, labels its axes and writes its file."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from common import plots


def _decode(z: torch.Tensor) -> torch.Tensor:
    """A toy decoder whose image brightness follows the first latent."""
    return torch.sigmoid(z[:, :1]).reshape(-1, 1, 1, 1).expand(-1, 1, 6, 5)


def test_manifold_grid_uses_interior_quantiles():
    z = plots.manifold_grid(5, quantile=0.05)
    assert z.shape == (25, 2) and torch.isfinite(z).all()
    assert z[:, 0].max() == pytest.approx(1.6449, abs=1e-3) and z[:, 0].min() == pytest.approx(-1.6449, abs=1e-3)
    assert z[0, 1] > z[-1, 1]  # top row has the highest z2
    with pytest.raises(ValueError, match="quantile"):
        plots.manifold_grid(5, quantile=0.0)


def test_each_plot_writes_a_png(tmp_path):
    imgs = torch.rand(8, 1, 6, 5)
    rgba = torch.rand(8, 4, 6, 6)
    figs = {
        "filters.png": plots.filter_grid(torch.randn(16, 30), (6, 5), tmp_path / "filters.png"),
        "panels.png": plots.filter_panels({"a": torch.randn(9, 30), "b": torch.randn(9, 30)}, (6, 5),
                                          tmp_path / "panels.png", title="t"),
        "grid.png": plots.image_grid({"input": imgs, "output": imgs}, tmp_path / "grid.png", title="rec"),
        "rgba.png": plots.image_grid({"punks": rgba}, tmp_path / "rgba.png"),
        "samples.png": plots.sample_grid(imgs, tmp_path / "samples.png", title="s", nrow=4),
        "manifold.png": plots.manifold_2d(_decode, (1, 6, 5), tmp_path / "manifold.png", n=4),
        "trav.png": plots.latent_traversal(_decode, torch.zeros(3), [0, 2], [-2, 0, 2], (1, 6, 5),
                                           tmp_path / "trav.png"),
        "curves.png": plots.curves({"train": ([1e3, 1e4], [-120, -110])}, tmp_path / "curves.png", logx=True,
                                   ylabel="bound"),
        "heat.png": plots.heatmap(torch.eye(4), tmp_path / "heat.png", title="W", xlabel="i", ylabel="j"),
        "bars.png": plots.bars({"a": 1.0, "b": 2.0}, tmp_path / "bars.png", reference={"a": 1.5}, ylabel="%"),
    }
    for name, fig in figs.items():
        assert (tmp_path / name).stat().st_size > 1000, name
        assert any(ax.get_title() or ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes), name
    assert figs["curves.png"].axes[0].get_xscale() == "log"


def test_interpolation_and_gif(tmp_path):
    za, zb = torch.tensor([-3.0, 0.0]), torch.tensor([3.0, 0.0])
    xa, xb = torch.zeros(1, 6, 5), torch.ones(1, 6, 5)
    fig, latent, blend = plots.interpolation(_decode, za, zb, xa, xb, (1, 6, 5), steps=5, path=tmp_path / "i.png")
    assert latent.shape == blend.shape == (5, 1, 6, 5)
    assert torch.allclose(blend[2], torch.full((1, 6, 5), 0.5))
    assert latent[0].mean() < latent[-1].mean()
    path = plots.gif(torch.cat([latent, blend], dim=3), tmp_path / "i.gif")
    with Image.open(path) as im:
        assert im.n_frames == 8  # 5 forward, 3 back
        assert im.size == (10 * 4, 6 * 4)


def test_rgba_composites_over_white():
    transparent = torch.zeros(1, 4, 2, 2)
    assert torch.equal(plots.to_rgb(transparent), torch.ones(1, 3, 2, 2))
    opaque_red = torch.tensor([1.0, 0, 0, 1]).reshape(1, 4, 1, 1)
    assert np.allclose(plots.to_rgb(opaque_red).flatten().numpy(), [1, 0, 0])
