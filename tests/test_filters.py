"""Tests for common.filters: the statistics that put numbers on a bank of filters (DenoisingAE Fig. 3,
KsparseAE Fig. 1)."""
import torch

from common.filters import active_pixels, near_uniform_share, smoothness, spatial_spread


def test_filter_statistics_separate_noise_blobs_and_spread():
    torch.manual_seed(0)
    noise = torch.rand(20, 784) - 0.5
    rr, cc = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    blob = torch.exp(-((rr - 14) ** 2 + (cc - 10) ** 2) / 8).reshape(1, -1).repeat(20, 1)
    wide = torch.exp(-((rr - 14) ** 2 + (cc - 14) ** 2) / 80).reshape(1, -1).repeat(20, 1)
    assert near_uniform_share(noise) == 1.0
    assert near_uniform_share(blob + 0.01 * noise) == 0.0
    assert float(smoothness(noise).abs().max()) < 0.15
    r_blob, r_wide, r_noise = (float(spatial_spread(w).median()) for w in (blob, wide, noise))
    assert r_blob < 3 < r_wide < r_noise
    pix = active_pixels(torch.cat([torch.zeros(5, 784), blob[:5]]))
    assert 0 < len(pix) < 784
