"""The CryptoPunks studies' model (VariationalAE/punks.py): one tanh layer is the paper's Gaussian VAE, deeper and
ReLU variants build, and the speed record follows the history."""
from __future__ import annotations

import pytest
import torch

from common.train import History
from VariationalAE.punks import MLPVAE, record_seconds
from VariationalAE.vae import VAE, elbo_terms


def test_one_tanh_layer_is_the_papers_gaussian_vae():
    torch.manual_seed(0)
    paper = VAE((4, 24, 24), 64, 2, "gaussian")
    ours = MLPVAE((4, 24, 24), (64,), 2, "tanh")
    pairs = [(ours.encoder.body[0], paper.encoder.hidden), (ours.encoder.mu, paper.encoder.mu),
             (ours.encoder.logvar, paper.encoder.logvar), (ours.decoder.body[0], paper.decoder.hidden),
             (ours.decoder.mu, paper.decoder.mu), (ours.decoder.logvar, paper.decoder.logvar)]
    with torch.no_grad():
        for a, b in pairs:
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    x = torch.rand(8, 4, 24, 24)
    torch.manual_seed(1)
    t_paper = elbo_terms(paper, x)
    torch.manual_seed(1)
    t_ours = elbo_terms(ours, x)
    assert torch.allclose(t_paper["elbo"], t_ours["elbo"], atol=1e-4)
    assert torch.allclose(paper.reconstruct(x), ours.reconstruct(x), atol=1e-6)


def test_deeper_and_relu_variants_mirror_their_layers_and_bad_settings_are_refused():
    net = MLPVAE((4, 24, 24), (500, 200), 2, "relu")
    assert [m.out_features for m in net.encoder.body if isinstance(m, torch.nn.Linear)] == [500, 200]
    assert [m.out_features for m in net.decoder.body if isinstance(m, torch.nn.Linear)] == [200, 500]
    assert isinstance(net.encoder.body[1], torch.nn.ReLU)
    assert net.decode(torch.zeros(3, 2)).shape == (3, 4, 24, 24)
    with pytest.raises(ValueError, match="activation"):
        MLPVAE((4, 24, 24), (10,), 2, "gelu")
    with pytest.raises(ValueError, match="at least one hidden layer"):
        MLPVAE((4, 24, 24), (), 2)


def test_the_speed_record_is_the_historys_seconds_per_epoch_padded_after_a_resume():
    h = History()
    for seconds in (1.0, 2.5):
        h.add("train", {"loss": 0.0})
        h.seconds = seconds
        record_seconds(None, h)
    assert h["time/seconds"] == [1.0, 2.5]
    resumed = History({"train/loss": [0.0, 0.0, 0.0]}, [1, 2, 3], seconds=4.0)
    record_seconds(None, resumed)
    assert resumed["time/seconds"][-1] == 4.0 and len(resumed["time/seconds"]) == 3
