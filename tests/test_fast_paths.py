"""Each speed optimisation against the plain computation it replaces: same losses, same gradients.

Speed itself is measured by ``benchmarks/step_floor.py`` (ratios printed from one run), never here.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from common import train
from common.data import ImageSet


def _loss(model: nn.Module, x: torch.Tensor, y) -> dict[str, torch.Tensor]:
    x = x.flatten(1)
    rec = ((model(x + 0.1 * torch.randn_like(x)) - x) ** 2).sum(1).mean()
    l2 = sum((p ** 2).sum() for p in model.parameters()) * 1e-4
    return {"loss": rec + l2, "rec": rec, "l2": l2}


def test_fit_epoch_means_equal_a_plain_loop_that_reads_every_step():
    """fit keeps the terms on the device and sums them once per window; a plain loop reads each step's .item()."""
    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (250, 1, 8, 8), generator=g, dtype=torch.uint8), None)

    def model_and_opt():
        train.seed_everything(0)
        m = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 64))
        return m, train.make_optimizer("adam", m.parameters(), 1e-2)

    m, opt = model_and_opt()
    hist = train.fit(m, _loss, data.batches(32, seed=1), opt, 2, progress=False, check_every=3)

    m2, opt2 = model_and_opt()
    batches = data.batches(32, seed=1)
    plain = []
    for _ in range(2):
        sums, seen = {}, 0
        for x, y in batches:
            terms = _loss(m2, x, y)
            opt2.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt2.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.item() * len(x)
            seen += len(x)
        plain.append({k: v / seen for k, v in sums.items()})
    for epoch, means in enumerate(plain):
        for k, v in means.items():
            assert hist[f"train/{k}"][epoch] == pytest.approx(v, rel=1e-5)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), m2.parameters()))


@pytest.mark.parametrize("bad_step", [0, 2, 3, 7])
def test_the_nan_guard_names_the_first_bad_step_wherever_it_falls_in_the_window(bad_step):
    data = ImageSet(torch.zeros(320, 1, 8, 8, dtype=torch.uint8), None)
    model = nn.Linear(64, 64)
    calls = {"n": 0}

    def loss(m, x, y):
        calls["n"] += 1
        rec = (m(x.flatten(1)) ** 2).mean()
        kl = torch.tensor(float("inf") if calls["n"] - 1 >= bad_step else 0.0)
        return {"loss": rec, "kl": kl}

    with pytest.raises(train.NonFiniteLossError, match=f"'kl' became NaN or infinite at step {bad_step} "):
        train.fit(model, loss, data.batches(32), train.make_optimizer("sgd", model.parameters(), 0.1), 2,
                  progress=False, check_every=3)


def test_batches_slice_the_same_rows_as_fancy_indexing():
    """Batches gathers each minibatch with index_select; x[idx] is the plain form."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (103, 1, 5, 5), generator=g, dtype=torch.uint8)
    y = torch.arange(103)
    batches = ImageSet(x, y).batches(10, seed=3)
    order = torch.randperm(103, generator=torch.Generator().manual_seed(3))
    for b, (xb, yb) in enumerate(batches):
        idx = order[b * 10:(b + 1) * 10]
        assert torch.equal(xb, x[idx].float() / 255) and torch.equal(yb, y[idx])


# ---------------------------------------------------------------------------
# SB-VAE: the Kumaraswamy sampler's hand-written backward, the float32 quadrature, one decoder pass
# ---------------------------------------------------------------------------
def _sampler_inputs(dtype, shape=(300, 49)):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(shape, generator=g, dtype=dtype) * 8 + 0.01
    b = torch.logspace(-2, 1.3, shape[0] * shape[1], dtype=dtype).reshape(shape)[torch.randperm(shape[0], generator=g)]
    log_u = torch.log(0.01 + 0.98 * torch.rand(shape, generator=g, dtype=dtype))
    return log_u, a, b


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_kumaraswamy_sampler_equals_autograd_of_the_plain_one(dtype):
    from SB_VAE.kumaraswamy import kumaraswamy_log_v, kumaraswamy_log_v_fused

    log_u, a, b = _sampler_inputs(dtype)
    w1, w2 = torch.randn_like(a), torch.randn_like(a)
    out, grads = {}, {}
    for name, fn in (("plain", kumaraswamy_log_v), ("fused", kumaraswamy_log_v_fused)):
        inputs = [t.clone().requires_grad_() for t in (log_u, a, b)]
        lv, l1 = fn(*inputs)
        out[name] = (lv, l1)
        grads[name] = torch.autograd.grad((lv * w1 + l1 * w2).sum(), inputs)
    assert all(torch.equal(p, q) for p, q in zip(out["plain"], out["fused"]))  # the same forward, bit for bit
    rtol = 1e-9 if dtype == torch.float64 else 2e-4
    for p, q in zip(grads["plain"], grads["fused"]):
        assert torch.allclose(p, q, rtol=rtol, atol=rtol * p.abs().max().item())


def test_fused_sampler_reduces_gradients_over_broadcast_nodes_as_autograd_does():
    """The quadrature broadcasts 41 nodes against (N, K, 1) parameters; gradients must sum back over them."""
    from SB_VAE.kumaraswamy import kumaraswamy_log_v, kumaraswamy_log_v_fused

    _, a, b = _sampler_inputs(torch.float64, (20, 7))
    log_r = torch.log(torch.linspace(0.001, 0.999, 41, dtype=torch.float64))
    grads = []
    for fn in (kumaraswamy_log_v, kumaraswamy_log_v_fused):
        ai, bi = a.clone().unsqueeze(-1).requires_grad_(), b.clone().unsqueeze(-1).requires_grad_()
        grads.append(torch.autograd.grad(fn(log_r, ai, bi)[1].sum(), (ai, bi)))
    for p, q in zip(*grads):
        assert p.shape == (20, 7, 1) and torch.allclose(p, q, rtol=1e-9, atol=1e-12)


def _mean_log_1mv_both(lo: float, hi: float, lo_b: float | None = None, hi_b: float | None = None, n: int = 41):
    """E[log(1 - v)] on an n x n log grid, by the float64 rule and by the float32 rule training uses."""
    from SB_VAE.kumaraswamy import kumaraswamy_mean_log_1mv

    ga = torch.logspace(math.log10(lo), math.log10(hi), n, dtype=torch.float64)
    gb = torch.logspace(math.log10(lo_b or lo), math.log10(hi_b or hi), n, dtype=torch.float64)
    a, b = ga[:, None].expand(n, n), gb[None, :].expand(n, n)
    a64, b64 = a.clone().requires_grad_(), b.clone().requires_grad_()
    a32, b32 = a.float().requires_grad_(), b.float().requires_grad_()
    e64, e32 = kumaraswamy_mean_log_1mv(a64, b64), kumaraswamy_mean_log_1mv(a32, b32)
    assert e32.dtype == torch.float32
    g64 = torch.autograd.grad(e64.sum(), (a64, b64))
    g32 = torch.autograd.grad(e32.sum(), (a32, b32))
    return e64.detach(), e32.detach().double(), g64, g32


def test_accurate_kl_in_float32_is_within_float32_rounding_of_float64_where_models_train():
    # the 25-node float32 rule against the 41-node float64 one (QUADRATURE_RULES states the ranges):
    # over the range trained SB-VAEs use, and for all a, b >= 0.2, the difference is float32 rounding
    e64, e32, g64, g32 = _mean_log_1mv_both(0.5, 30.0, 2.0, 2000.0)
    big = e64.abs() > 1e-6
    assert (e32 - e64).abs().max() < 1e-6 and ((e32 - e64).abs()[big] / e64.abs()[big]).max() < 3e-6
    e64, e32, g64, g32 = _mean_log_1mv_both(0.2, 10.0)
    assert (e32 - e64).abs().max() < 3e-6
    for p, q in zip(g64, g32):
        assert torch.allclose(q.double(), p, rtol=1e-4, atol=1e-5)
    # below 0.2 the fewer nodes lose digits in the endpoint layers, by the stated amounts at most
    e64, e32, _, _ = _mean_log_1mv_both(0.1, 10.0)
    assert (e32 - e64).abs().max() < 4e-5
    e64, e32, _, _ = _mean_log_1mv_both(0.01, 100.0)
    assert (e32 - e64).abs().max() < 5e-3


@pytest.mark.parametrize("model_name", ["gauss", "sb10", "sb_accurate"])
def test_sb_vae_step_gives_the_plain_loss_and_gradients(model_name, monkeypatch):
    """The whole SB_VAE training loss: fused sampler and one decoder pass against the plain sampler and
    a second decoder pass for the squared error (the code before the optimisation)."""
    from SB_VAE import kumaraswamy, sbvae

    def build():
        torch.manual_seed(0)
        if model_name == "gauss":
            return sbvae.GaussVAE(784, 64, 10)
        return sbvae.StickBreakingVAE(784, 64, 10, 5.0, kl_terms=10 if model_name == "sb10" else None)

    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    model = build()
    torch.manual_seed(2)
    fast = sbvae.negative_bound_loss(model, x)
    g_fast = torch.autograd.grad(fast["loss"], list(model.parameters()))

    plain_model = build()
    monkeypatch.setattr(sbvae, "kumaraswamy_log_v_fused", kumaraswamy.kumaraswamy_log_v)
    monkeypatch.setattr(kumaraswamy, "kumaraswamy_log_v_fused", kumaraswamy.kumaraswamy_log_v)
    torch.manual_seed(2)
    t = plain_model.terms(x)
    with torch.no_grad():
        sq = (plain_model.decoder.mean(t["z"]) - x.reshape(len(x), -1)).pow(2).sum(-1).mean()
    loss = (t["rec"] + t["kl"]).mean()
    g_plain = torch.autograd.grad(loss, list(plain_model.parameters()))
    assert fast["loss"].item() == pytest.approx(loss.item(), rel=1e-6)
    assert fast["sq_err"].item() == pytest.approx(sq.item(), rel=1e-6)
    for p, q in zip(g_plain, g_fast):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-6 * max(1.0, p.abs().max().item()))
