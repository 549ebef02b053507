"""BetaVAE/metric.py: the disentanglement metric (reference protocol) and the latent-factor mutual
information, on a toy dataset with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from BetaVAE.metric import beta_vae_score, beta_vae_scores, factor_mutual_information, mutual_information_gap


class FactorsAsImages:
    """A tiny ground-truth dataset whose observations are the factor values themselves."""

    factor_sizes = (4, 5, 6, 7)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, k, n) for k in self.factor_sizes], axis=1)

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(factors, dtype=torch.float32)


SIZES = dict(batch_size=16, num_train=1000, num_eval=500)


def score(represent, seed: int = 0) -> float:
    return beta_vae_score(FactorsAsImages(), represent, seed=seed, **SIZES)["eval_accuracy"]


def test_perfect_representation_scores_high():
    assert score(lambda x: x) >= 0.9


def test_random_representation_scores_near_chance():
    g = torch.Generator().manual_seed(0)
    acc = score(lambda x: torch.randn(len(x), 4, generator=g))
    assert abs(acc - 0.25) < 0.08, acc   # chance = 1 / 4 factors


def test_noisy_representation_lands_in_between():
    g = torch.Generator().manual_seed(0)
    noisy = score(lambda x: x + 2.0 * torch.randn(x.shape, generator=g))
    assert 0.35 < noisy < 0.85, noisy


def test_the_fixed_factor_is_shared_by_each_pair():
    # a representation that sees only factor 0 can tell "factor 0 fixed" (difference exactly 0) from the rest
    out = beta_vae_score(FactorsAsImages(), lambda x: x[:, :1], **SIZES)
    assert out["chance"] == 0.25
    assert 0.35 < out["eval_accuracy"] < 0.6, out   # factor 0 recognised, the other three confused


def test_same_seed_same_score_and_bad_input():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = beta_vae_score(FactorsAsImages(), lambda x: x + torch.randn(x.shape, generator=g1), seed=1, **SIZES)
    b = beta_vae_score(FactorsAsImages(), lambda x: x + torch.randn(x.shape, generator=g2), seed=1, **SIZES)
    assert a == b
    with pytest.raises(ValueError):
        beta_vae_score(FactorsAsImages(), lambda x: x, batch_size=0)


class FiveFactors(FactorsAsImages):
    """Five factors like dSprites (factor 0 plays shape): the two protocols differ in whether it may be fixed."""

    factor_sizes = (3, 6, 10, 8, 8)


PROTOCOLS = {"dlib": None, "paper": (1, 2, 3, 4)}


def both(represent, seed: int = 0) -> dict[str, dict]:
    return beta_vae_scores(FiveFactors(), represent, PROTOCOLS, seed=seed, **SIZES)


def test_perfect_representation_scores_about_100_percent_by_both_protocols():
    out = both(lambda x: x)
    for name, r in out.items():
        assert r["eval_accuracy"] >= 0.98, (name, r)
        assert r["converged"] and r["n_iter"] < r["max_iter"], (name, r)
    assert out["dlib"]["chance"] == 0.2 and out["paper"]["chance"] == 0.25
    assert out["dlib"]["factors"] == [0, 1, 2, 3, 4] and out["paper"]["factors"] == [1, 2, 3, 4]


def test_random_representation_scores_about_chance_by_both_protocols():
    g = torch.Generator().manual_seed(0)
    out = both(lambda x: torch.randn(len(x), 5, generator=g))
    assert abs(out["dlib"]["eval_accuracy"] - 0.2) < 0.07, out["dlib"]       # 1 / 5 factors
    assert abs(out["paper"]["eval_accuracy"] - 0.25) < 0.07, out["paper"]    # 1 / 4 factors
    assert all(r["converged"] for r in out.values())


def test_protocols_share_points_and_keep_their_sizes():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    noisy = lambda g: (lambda x: x + torch.randn(x.shape, generator=g))  # noqa: E731
    out = both(noisy(g1), seed=2)
    single = beta_vae_score(FiveFactors(), noisy(g2), seed=2, **SIZES)
    assert out["dlib"] == {**single, "factors": [0, 1, 2, 3, 4]}   # the first protocol is beta_vae_score's draw
    assert out["dlib"]["shared_points"] == SIZES["num_train"] + SIZES["num_eval"]
    # the paper's protocol reuses the points that did not fix factor 0 (about 80%) and tops up the rest
    n = SIZES["num_train"] + SIZES["num_eval"]
    assert 0.7 * n < out["paper"]["shared_points"] < 0.9 * n
    assert out["paper"]["num_train"] == SIZES["num_train"] and out["paper"]["num_eval"] == SIZES["num_eval"]


def test_a_protocol_must_lie_within_the_first():
    with pytest.raises(ValueError):
        beta_vae_scores(FiveFactors(), lambda x: x, {"paper": (1, 2), "dlib": None}, **SIZES)
    with pytest.raises(ValueError):
        beta_vae_scores(FiveFactors(), lambda x: x, {"bad": (7,)}, **SIZES)
    with pytest.raises(ValueError):
        beta_vae_scores(FiveFactors(), lambda x: x, {}, **SIZES)


def test_a_capped_classifier_says_it_did_not_converge():
    g = torch.Generator().manual_seed(0)
    out = beta_vae_score(FiveFactors(), lambda x: 50 * x + torch.randn(x.shape, generator=g), max_iter=2,
                         **SIZES)
    assert not out["converged"] and out["n_iter"] == 2


def test_factor_mutual_information_finds_the_factor_each_code_follows():
    rng = np.random.default_rng(0)
    f = FactorsAsImages().sample_factors(20_000, rng)
    codes = np.stack([f[:, 2] + 0.01 * rng.normal(size=len(f)),     # follows factor 2 exactly
                      np.sin(f[:, 0] * 1.0) + 0.01 * rng.normal(size=len(f)),   # a nonlinear function of factor 0
                      rng.normal(size=len(f))], axis=1)            # follows nothing
    mi = factor_mutual_information(codes, f, FactorsAsImages.factor_sizes)
    assert mi.shape == (3, 4)
    assert mi[0].argmax() == 2 and mi[0, 2] > 0.95 and mi[1].argmax() == 0 and mi[1, 0] > 0.95
    assert mi[2].max() < 0.02 and np.delete(mi[0], 2).max() < 0.02


def test_mutual_information_gap_is_the_mean_top_two_gap_per_factor():
    mi = np.array([[0.9, 0.1, 0.0],
                   [0.2, 0.6, 0.0],
                   [0.1, 0.5, 0.3]])
    # factor 0: 0.9 - 0.2; factor 1: 0.6 - 0.5; factor 2: 0.3 - 0.0
    assert mutual_information_gap(mi) == pytest.approx((0.7 + 0.1 + 0.3) / 3)
    assert mutual_information_gap(np.full((4, 2), 0.5)) == 0.0
    assert isinstance(mutual_information_gap(mi), float)
