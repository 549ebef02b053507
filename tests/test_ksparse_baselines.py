"""Table 1's other rows (KsparseAE/baselines.py): the dropout autoencoders' loss and the fine-tuned network."""
from __future__ import annotations

import pytest
import torch

from DenoisingAE.denoising import TiedAutoencoder, dae_loss
from KsparseAE.baselines import KSparseClassifier, dropout_dae_loss
from KsparseAE.ksparse import KSparseAutoencoder


def _digits(n: int = 32) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def _dae() -> TiedAutoencoder:
    return TiedAutoencoder(784, 64, generator=torch.Generator().manual_seed(0))


def test_without_noise_the_dropout_loss_is_the_plain_autoencoders():
    x, model = _digits(), _dae()
    with torch.no_grad():
        assert float(dropout_dae_loss(0.0, 0.0)(model, x)["loss"]) == pytest.approx(float(dae_loss(0.0)(model, x)["loss"]))


def test_in_eval_mode_no_noise_is_applied():
    x, model = _digits(), _dae()
    model.eval()
    with torch.no_grad():
        a = dropout_dae_loss(0.2, 0.5)(model, x)["loss"]
        b = dropout_dae_loss(0.2, 0.5)(model, x)["loss"]
        assert float(a) == float(b) == pytest.approx(float(dae_loss(0.0)(model, x)["loss"]))


def test_hidden_dropout_drops_about_half_the_units_and_scales_the_rest():
    x, model = _digits(256), _dae()
    seen = {}
    real_decode = model.decode_logits

    def spy(h):
        seen["h"] = h
        return real_decode(h)

    model.decode_logits = spy
    torch.manual_seed(0)
    dropout_dae_loss(0.0, 0.5)(model, x)
    h, clean = seen["h"], model.encode(x.reshape(len(x), -1))
    dropped = h == 0
    assert 0.45 < dropped.float().mean() < 0.55
    assert torch.allclose(h[~dropped], 2 * clean[~dropped])   # inverted dropout: kept ones times 1 / (1 - p)


@pytest.mark.parametrize("nu, p", [(-0.1, 0.5), (0.2, 1.0)])
def test_bad_noise_levels_are_refused(nu, p):
    with pytest.raises(ValueError, match="input_nu and hidden_p"):
        dropout_dae_loss(nu, p)


def test_the_fine_tuned_network_starts_from_the_encoder_and_keeps_alpha_k_activities():
    enc = KSparseAutoencoder(784, 100, k=10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        enc.b.normal_()
    net = KSparseClassifier([enc], alpha=3)
    x = _digits(16)
    assert net.keep == [30]
    assert torch.count_nonzero(net(x)) == 0                     # the softmax layer starts at zero
    h = net.layers[0](x.reshape(len(x), -1))
    from KsparseAE.ksparse import top_k
    assert torch.allclose(top_k(h, 30), enc.features(x, 3), atol=1e-6)   # the test-time encoding, sec. 3.2
    assert (torch.count_nonzero(top_k(h, 30), dim=1) == 30).all()


def test_a_deep_network_chains_its_layers_and_refuses_sizes_that_do_not():
    first = KSparseAutoencoder(784, 100, k=10)
    second = KSparseAutoencoder(100, 50, k=5)
    assert KSparseClassifier([first, second], alpha=3)(_digits(4)).shape == (4, 10)
    with pytest.raises(ValueError, match="do not chain"):
        KSparseClassifier([first, KSparseAutoencoder(200, 50, k=5)], alpha=3)
    with pytest.raises(ValueError, match="at least one"):
        KSparseClassifier([], alpha=3)
