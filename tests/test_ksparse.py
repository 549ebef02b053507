"""Tests for KsparseAE.ksparse (top-k by value, the tied model, the schedule, dead units), the notebook's
training and encoding (KsparseAE.experiment) and configuration (KsparseAE.config), and the softmax
regression in common.evaluate that Table 1's classifier uses."""
import dataclasses

import numpy as np
import pytest
import torch

from common.evaluate import error_interval, softmax_regression_error, softmax_regression_reference
from common.run import Run
from common.train import fit, make_optimizer
from common.data import Batches
from KsparseAE.config import CONFIGS, KsparseConfig, config_for
from KsparseAE.experiment import encoded, train_ksparse
from KsparseAE.ksparse import (K_START, KSparseAutoencoder, dead_units, n_features_kept, scheduled_k,
                               sparsity_schedule, squared_error, top_k, top_k_support, win_counts, with_k)


@pytest.mark.parametrize("k", [1, 5, 25, 100])
def test_top_k_keeps_exactly_k_largest_values_unchanged(k):
    torch.manual_seed(0)
    h = torch.randn(64, 100)
    out = top_k(h, k)
    assert out.shape == h.shape
    assert torch.equal((out != 0).sum(1), torch.full((64,), k))
    kept = out != 0
    assert torch.equal(out[kept], h[kept])                      # kept values unchanged
    # every kept value is >= every dropped value of its row: the k largest
    smallest_kept = torch.where(kept, h, torch.full_like(h, float("inf"))).min(1).values
    largest_dropped = torch.where(~kept, h, torch.full_like(h, -float("inf"))).max(1).values
    assert bool((smallest_kept >= largest_dropped).all())
    assert torch.allclose(out.sum(1), h.sort(1, descending=True).values[:, :k].sum(1), atol=1e-5)


def test_top_k_is_by_value_not_magnitude():
    h = torch.tensor([[-10.0, 1.0, 2.0, -5.0, 0.5]])
    assert torch.equal(top_k(h, 2), torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0]]))


def test_top_k_ties_still_give_exactly_k():
    h = torch.zeros(8, 50)
    h[:, :10] = 1.0                                              # ten-way tie at the top
    for k in (3, 10, 20):
        mask = top_k_support(h, k)
        assert torch.equal(mask.sum(1), torch.full((8,), k))
        assert bool(mask[:, :10].sum(1).eq(min(k, 10)).all())   # the tied maxima come first
    h = torch.ones(4, 30)                                        # all equal
    assert torch.equal(top_k_support(h, 7).sum(1), torch.full((4,), 7))


def test_top_k_gradient_reaches_the_support_only_and_bad_k_fails():
    h = torch.randn(5, 20, requires_grad=True)
    top_k(h, 4).sum().backward()
    assert torch.equal(h.grad, top_k_support(h.detach(), 4).float())
    with pytest.raises(ValueError):
        top_k(h, 0)
    with pytest.raises(ValueError):
        top_k(h, 21)
    with pytest.raises(ValueError):
        top_k(torch.randn(2, 3, 4), 1)


def test_model_is_tied_linear_and_sparse():
    g = torch.Generator().manual_seed(0)
    m = KSparseAutoencoder(784, 200, k=10, generator=g)
    assert abs(m.W.std().item() - 0.01) < 0.001 and m.b.abs().sum().item() == 0
    x = torch.rand(16, 1, 28, 28)
    z = m.encode(x)
    assert torch.equal((z != 0).sum(1), torch.full((16,), 10))
    assert torch.allclose(m(x), z @ m.W.t() + m.b_prime)
    assert torch.allclose(m.activities(x), x.reshape(16, -1) @ m.W + m.b)
    assert torch.equal((m.features(x, 3) != 0).sum(1), torch.full((16,), 30))
    assert n_features_kept(2.5, 25, 1000) == 63 and n_features_kept(5, 300, 1000) == 1000
    with pytest.raises(ValueError):
        n_features_kept(0.5, 25, 1000)
    loss = squared_error(m, x)
    assert torch.allclose(loss["loss"], ((m(x) - x.reshape(16, -1)) ** 2).sum(1).mean())


def test_gradient_of_the_encoder_flows_only_through_the_support():
    m = KSparseAutoencoder(30, 40, k=3, init_std=0.1, generator=torch.Generator().manual_seed(1))
    x = torch.rand(1, 30)
    support = top_k_support(m.activities(x).detach(), 3)[0]
    squared_error(m, x)["loss"].backward()
    assert bool((m.b.grad[~support] == 0).all()) and bool((m.b.grad[support] != 0).all())
    assert bool((m.W.grad[:, ~support] == 0).all())             # off-support units learn nothing: they can die


def test_schedule_is_linear_from_100_over_the_first_half_then_holds():
    ks = [scheduled_k(e, 20, 10) for e in range(20)]
    assert ks[0] == K_START and ks[10:] == [10] * 10
    assert all(a > b for a, b in zip(ks[:11], ks[1:11]))         # strictly falling over the first half
    steps = np.diff(ks[:11])
    assert steps.max() - steps.min() <= 1                         # linear (up to rounding)
    assert [scheduled_k(e, 10, 150) for e in range(10)] == [150] * 10
    m = with_k(KSparseAutoencoder(20, 120, k=5), 25)
    hook = sparsity_schedule(4)
    seen = []
    for e in range(4):
        hook(m, e)
        seen.append(m.k)
    assert seen == [100, 62, 25, 25] and m.k_target == 25


def test_with_k_copies_the_same_initialisation():
    init = KSparseAutoencoder(20, 50, k=5, generator=torch.Generator().manual_seed(2))
    a, b = with_k(init, 10), with_k(init, 40)
    assert torch.equal(a.W, b.W) and a.W is not init.W and (a.k, b.k) == (10, 40)
    assert "k_target=10" in repr(a) and "k_target=40" in repr(b)


def test_dead_units_counts_units_in_no_examples_top_k():
    m = KSparseAutoencoder(4, 6, k=1, init_std=0.0)
    with torch.no_grad():
        m.b.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, -1.0, -1.0]))
        m.W[:, :4] = torch.eye(4)                                 # unit j wins for input e_j
    x = torch.eye(4)[[0, 1, 1, 2]]                                # unit 3 never wins, 4 and 5 never
    assert win_counts(m, x).tolist() == [1, 2, 1, 0, 0, 0]
    assert dead_units(m, x) == 3 and dead_units(m, x, k=6) == 0


def test_training_lowers_the_error_and_the_schedule_reaches_the_target():
    torch.manual_seed(0)
    x = (torch.rand(400, 64) < 0.2).float()
    m = KSparseAutoencoder(64, 80, k=5, generator=torch.Generator().manual_seed(0))
    opt = make_optimizer("adam", m.parameters(), lr=3e-3)
    h = fit(m, squared_error, Batches(x, None, 50), opt, 6, progress=False, before_step=sparsity_schedule(6, 40))
    assert h["train/loss"][-1] < h["train/loss"][0] and m.k == 5


def test_train_ksparse_trains_a_named_copy_of_init_through_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path))
    torch.manual_seed(0)
    x = (torch.rand(200, 64) < 0.2).float()
    init = KSparseAutoencoder(64, 120, k=100, generator=torch.Generator().manual_seed(0))
    w0 = init.W.detach().clone()
    cfg = dataclasses.replace(CONFIGS["smoke"], epochs=4, lr=3e-3)
    results = []
    for _ in range(2):
        run = Run("KsparseAE", "smoke", 0, "cpu", progress=False)
        m, h = train_ksparse(run, init, 5, True, Batches(x, None, 50, seed=0), cfg)
        m2, _ = train_ksparse(run, init, 5, False, Batches(x, None, 50, seed=0), cfg)
        results.append((dict(run.status), h["train/loss"], m.W.detach().clone()))
    assert set(results[0][0]) == {"ksparse_k5", "ksparse_k5_nosched"}
    assert set(results[0][0].values()) == {"trained"} and set(results[1][0].values()) == {"loaded"}
    assert results[0][1] == results[1][1] and torch.equal(results[0][2], results[1][2])
    assert m.k == m.k_target == 5 and torch.equal(init.W, w0)            # init is copied, never trained
    assert h["train/loss"][-1] < h["train/loss"][0]
    ftr, fte = encoded(lambda xb: m.features(xb, 2), x[:150], x[150:])
    assert ftr.shape == (150, 120) and fte.shape == (50, 120)
    assert torch.equal((fte != 0).sum(1), torch.full((50,), 10))


def test_config_holds_every_profile_with_its_optimizer():
    assert set(CONFIGS) == {"smoke", "standard", "long", "paper"} and isinstance(config_for("smoke"), KsparseConfig)
    standard, paper = config_for("standard"), config_for("paper")
    assert (standard.optimizer, standard.lr, standard.momentum, standard.epochs) == ("adam", 1e-3, None, 4)
    assert standard.dae_epochs == standard.epochs == standard.finetune_epochs   # one budget for every Table 1 row
    assert (paper.optimizer, paper.lr, paper.momentum, paper.epochs) == ("sgd", 0.01, 0.9, 5000)
    assert standard.ks == (70, 40, 25, 10) and standard.batch_size == 100 and standard.dae_lr == 1e-3
    with pytest.raises(dataclasses.FrozenInstanceError):
        standard.lr = 1.0
    with pytest.raises(ValueError, match="smoke, standard, long, paper"):
        config_for("fast")


# --- common.evaluate.softmax_regression_error (Table 1's logistic regression) -------------
def _blobs(n, d, classes, sep, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g) * sep
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


def test_softmax_regression_is_near_perfect_on_separable_data_and_chance_on_random_labels():
    x, y = _blobs(3000, 20, 5, sep=4.0, seed=0)
    r = softmax_regression_error(x[:2000], y[:2000], x[2000:], y[2000:], max_iter=50)
    assert r["test_error"] < 1.0 and r["train_error"] < 1.0
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(3000, 20, generator=g)
    labels = torch.randint(0, 5, (3000,), generator=g)
    r = softmax_regression_error(noise[:2000].numpy(), labels[:2000].numpy(), noise[2000:].numpy(),
                                 labels[2000:].numpy(), max_iter=50)
    assert 70.0 < r["test_error"] < 90.0                         # chance is 80%


def test_softmax_regression_matches_sklearn_and_rejects_bad_shapes():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _blobs(2000, 10, 4, sep=0.8, seed=3)                   # overlapping classes: errors to agree on
    ours = softmax_regression_error(x[:1500], y[:1500], x[1500:], y[1500:], weight_decay=1e-3, max_iter=200)
    sc = StandardScaler().fit(x[:1500].numpy())
    # sklearn minimises sum CE + ||w||^2 / (2C): the same optimum as mean CE + wd/2 ||w||^2 with C = 1 / (n wd)
    clf = LogisticRegression(C=1 / (1500 * 1e-3), max_iter=1000).fit(sc.transform(x[:1500].numpy()), y[:1500].numpy())
    theirs = 100 * float(np.mean(clf.predict(sc.transform(x[1500:].numpy())) != y[1500:].numpy()))
    assert 5.0 < theirs and abs(ours["test_error"] - theirs) <= 0.6   # at most 3 of 500 test points differ
    with pytest.raises(ValueError):
        softmax_regression_error(x[:10], y[:10], x[:10, :5], y[:10])
    with pytest.raises(ValueError):
        softmax_regression_error(x[:10], y[:9], x[:10], y[:10])


def test_wilson_interval_used_for_table_1_brackets_the_rate():
    lo, hi = error_interval(1.35, 10000)
    assert lo < 1.35 < hi and hi - lo < 0.5


def test_the_fast_softmax_regression_equals_the_plain_layout():
    x, y = _blobs(3000, 40, 6, sep=0.25, seed=5)                   # overlapping: many borderline test points
    for wd, iters in ((1e-3, 30), (1e-2, 100)):
        fast = softmax_regression_error(x[:2000], y[:2000], x[2000:], y[2000:], weight_decay=wd, max_iter=iters)
        plain = softmax_regression_reference(x[:2000], y[:2000], x[2000:], y[2000:], wd, iters)
        assert fast["test_error"] > 5.0 and abs(fast["test_error"] - plain) <= 0.2   # at most 2 of 1,000 differ
