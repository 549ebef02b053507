"""KsparseAE/rbm.py: the free energy is the RBM's exact marginal, and CD-1 raises the exact likelihood of its data."""
from __future__ import annotations

import itertools

import torch

from KsparseAE.rbm import RBM, cd_loss


def _all_binary(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


def _exact_log_likelihood(model, data):
    """log p(v) by enumerating every visible and hidden state of a tiny RBM."""
    vs, hs = _all_binary(model.weight.shape[1]), _all_binary(model.weight.shape[0])
    energy = -(vs @ model.visible_bias)[:, None] - (hs @ model.hidden_bias)[None, :] - vs @ model.weight.T @ hs.T
    log_z = torch.logsumexp(-energy.flatten(), 0)
    return (torch.logsumexp(-energy, 1)[[int("".join(str(int(b)) for b in v), 2) for v in data]] - log_z)


def test_the_free_energy_is_the_exact_marginal():
    torch.manual_seed(0)
    model = RBM(6, 3, init_std=1.0)
    with torch.no_grad():
        model.visible_bias.normal_()
        model.hidden_bias.normal_()
    vs = _all_binary(6)
    log_p_free = -model.free_energy(vs) - torch.logsumexp(-model.free_energy(vs), 0)
    assert torch.allclose(log_p_free, _exact_log_likelihood(model, vs), atol=1e-5)
    assert torch.isclose(torch.logsumexp(log_p_free, 0), torch.tensor(0.0), atol=1e-5)


def test_cd1_raises_the_exact_log_likelihood_of_its_data():
    torch.manual_seed(0)
    patterns = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.float32)
    data = patterns[torch.randint(0, 2, (256,))]
    model = RBM(6, 4, init_std=0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = _exact_log_likelihood(model, patterns).mean()
    for _ in range(300):
        loss = cd_loss(model, data)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _exact_log_likelihood(model, patterns).mean()
    assert before < -3.5 and after > -1.5          # uniform over 64 states is -4.16; two patterns are -0.69 each
    features = model.features(patterns)
    assert features.shape == (2, 4) and (features[0] - features[1]).abs().max() > 0.5   # they tell them apart
