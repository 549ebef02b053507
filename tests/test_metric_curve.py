"""BetaVAE.experiment.MetricCurve: the disentanglement metric recorded during training, one value per epoch."""
from __future__ import annotations

import math

import torch

from BetaVAE.experiment import MetricCurve
from common.train import History
from test_betavae_metric import PROTOCOLS, FiveFactors


class Perfect(torch.nn.Module):
    """Encodes the factors themselves (the hook scales uint8 pixels by 1/255; this undoes it)."""

    def encode(self, x):
        return x * 255


def _epochs(hook, model, history, n):
    for _ in range(n):
        history.samples.append((history.samples[-1] if history.samples else 0) + 100)
        history.add("train", {"loss": 1.0})
        hook(model, history)


def test_the_metric_is_recorded_every_few_epochs_and_at_the_last_with_nan_between():
    hook = MetricCurve(FiveFactors(), PROTOCOLS, every=2, epochs=5, num_train=300, num_eval=200, batch_size=16)
    model, h = Perfect(), History()
    model.train()
    _epochs(hook, model, h, 5)
    for name in PROTOCOLS:
        values = h[f"metric/{name}"]
        assert len(values) == h.epochs == 5
        assert [math.isnan(v) for v in values] == [True, False, True, False, False]
        assert min(v for v in values if not math.isnan(v)) > 95
    assert model.training                                      # the hook puts the model back as it was


def test_a_curve_begun_after_a_resume_is_padded_to_the_epochs_before_it():
    hook = MetricCurve(FiveFactors(), {"dlib": None}, every=1, epochs=4, num_train=200, num_eval=100,
                       batch_size=16)
    h = History({"train/loss": [1.0, 1.0, 1.0]}, [100, 200, 300])    # three epochs trained without the hook
    _epochs(hook, Perfect(), h, 1)
    values = h["metric/dlib"]
    assert len(values) == 4 and all(math.isnan(v) for v in values[:3]) and values[3] > 95
