"""Estimators and probes against cases whose answers are known."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common import evaluate


def test_importance_sampling_is_exact_with_the_true_posterior():
    # z ~ N(0,1), x|z ~ N(z,1): p(x) = N(0,2), p(z|x) = N(x/2, 1/2). With q = p(z|x) every
    # weight equals p(x), so the estimate is exact for any k.
    normal = torch.distributions.Normal
    x = torch.linspace(-3, 3, 7)

    def log_weights(xb, k):
        q = normal(xb / 2, math.sqrt(0.5))
        z = q.sample((k,))
        return normal(0, 1).log_prob(z) + normal(z, 1).log_prob(xb) - q.log_prob(z)

    est = evaluate.importance_sampled_log_likelihood(log_weights, x, k=5, batch_size=3)
    assert torch.allclose(est, normal(0, math.sqrt(2)).log_prob(x), atol=1e-5)


def test_importance_sampling_tightens_with_k():
    normal = torch.distributions.Normal
    torch.manual_seed(0)
    x = torch.randn(2000) * math.sqrt(2)

    def log_weights(xb, k):  # a poor proposal: the prior
        z = normal(0, 1).sample((k, len(xb)))
        return normal(z, 1).log_prob(xb)

    exact = normal(0, math.sqrt(2)).log_prob(x).mean()
    est = {k: evaluate.importance_sampled_log_likelihood(log_weights, x, k=k, chunk=50).mean() for k in (1, 10, 200)}
    assert est[1] < est[10] < est[200] <= exact + 0.01
    assert exact - est[200] < 0.05


def test_error_interval():
    lo, hi = evaluate.error_interval(2.8, 50_000)
    assert lo < 2.8 < hi and hi - lo < 0.3
    lo2, hi2 = evaluate.error_interval(2.8, 500)
    assert hi2 - lo2 > hi - lo
    assert evaluate.error_interval(0.0, 100)[0] == 0.0
    with pytest.raises(ValueError):
        evaluate.error_interval(1.0, 0)


def test_error_se_matches_the_spread_of_simulated_test_errors():
    rng = np.random.default_rng(0)
    n, p_a, p_b = 10_000, 0.02, 0.03
    errors_a = 100 * rng.binomial(n, p_a, size=20_000) / n          # 20,000 simulated test sets
    errors_b = 100 * rng.binomial(n, p_b, size=20_000) / n
    assert evaluate.error_se(2.0, n) == pytest.approx(errors_a.std(), rel=0.03)
    assert evaluate.error_difference_se(2.0, 3.0, n) == pytest.approx((errors_b - errors_a).std(), rel=0.03)
    assert evaluate.error_se(0.0, n) == 0.0
    with pytest.raises(ValueError):
        evaluate.error_se(1.0, 0)


def test_classifier_error_and_features():
    w = torch.eye(3)
    x = torch.eye(3).repeat(10, 1)
    y = torch.arange(3).repeat(10)
    assert evaluate.classifier_error(lambda xb: xb @ w, x, y, batch_size=7) == 0.0
    assert evaluate.classifier_error(lambda xb: xb @ w.roll(1, 0), x, y) == 100.0
    assert evaluate.features(lambda xb: xb * 2, x, batch_size=4).shape == (30, 3)
