"""The semi-supervised models (SB_VAE/semisupervised.py): the batched unlabelled bound equals the explicit sum over
classes, it is a proper mixture of the labelled bounds, and a step of the objective lowers it."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from SB_VAE.semisupervised import DeepGenerativeModel, semi_supervised_loss


@pytest.mark.parametrize("latent", ["gauss", "sb"])
def test_the_batched_unlabelled_bound_equals_the_explicit_sum_over_classes(latent):
    torch.manual_seed(0)
    model = DeepGenerativeModel(latent, x_dim=20, hidden=16, z_dim=6, n_classes=4)
    with torch.no_grad():                        # weights away from the tiny init, so classes differ
        for p in model.parameters():
            p.normal_(0, 0.5)
    x = torch.bernoulli(torch.full((7, 20), 0.4))
    noise = torch.stack([model.latent.noise(7) for _ in range(4)])            # (C, N, ...)
    batched = model.unlabelled_neg_bound(x, noise)
    q = F.softmax(model.class_logits(x), -1)
    explicit = torch.zeros(7)
    for c in range(4):
        onehot = F.one_hot(torch.full((7,), c), 4).float()
        explicit += q[:, c] * model.labelled_neg_bound(x, onehot, noise[c])
    explicit += (q * q.log()).sum(-1)                                          # minus the entropy
    assert torch.allclose(batched, explicit, atol=1e-4)
    assert q.std(0).max() > 0.01                    # the classifier's weights are not uniform: a real mixture


def test_a_confident_classifier_makes_the_unlabelled_bound_the_labelled_one():
    torch.manual_seed(0)
    model = DeepGenerativeModel("gauss", x_dim=10, hidden=8, z_dim=3, n_classes=3)
    with torch.no_grad():
        model.classifier[2].weight.zero_()
        model.classifier[2].bias.copy_(torch.tensor([0.0, 60.0, 0.0]))          # q(y = 1 | x) = 1
    x = torch.bernoulli(torch.full((5, 10), 0.5))
    noise = torch.stack([model.latent.noise(5) for _ in range(3)])
    labelled = model.labelled_neg_bound(x, F.one_hot(torch.ones(5, dtype=torch.long), 3).float(), noise[1])
    assert torch.allclose(model.unlabelled_neg_bound(x, noise), labelled, atol=1e-4)
    # -log p(y) with p uniform is part of -L
    no_prior = labelled - math.log(3)
    assert (no_prior > 0).all()


def test_steps_of_the_objective_lower_it():
    torch.manual_seed(0)
    model = DeepGenerativeModel("sb", x_dim=30, hidden=20, z_dim=5, n_classes=3)
    xl, y = torch.bernoulli(torch.full((32, 30), 0.3)), torch.randint(0, 3, (32,))
    xu = torch.bernoulli(torch.full((64, 30), 0.3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        out = semi_supervised_loss(model, xl, y, xu, n_labelled=32, n_unlabelled=64, alpha=0.1 * 96)
        first = first if first is not None else out["loss"].item()
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["loss"].item() < first and torch.isfinite(out["loss"])


def test_the_objective_weighs_each_part_by_its_data_set_as_eq_9_does():
    torch.manual_seed(0)
    model = DeepGenerativeModel("gauss", x_dim=10, hidden=8, z_dim=3, n_classes=3)
    xl, y, xu = torch.rand(4, 10).round(), torch.tensor([0, 1, 2, 0]), torch.rand(6, 10).round()
    torch.manual_seed(1)
    out = semi_supervised_loss(model, xl, y, xu, n_labelled=100, n_unlabelled=900, alpha=0.1 * 1000)
    expected = (100 * out["labelled"] + 900 * out["unlabelled"] + 100 * out["ce"]) / 1000
    assert torch.allclose(out["loss"], expected)
