"""``fit(compile=True)``: the compiled training loss against the eager one (same draws, same loss and gradients),
and its eager fallback. Compiling takes a few seconds a graph, so the models here are small.

Whether compiling is faster is measured by ``benchmarks/step_floor.py --compile``, never here.
"""
from __future__ import annotations

import os
import shutil
import warnings

import pytest
import torch
import torch._dynamo

from common import compiled, train
from common.data import ImageSet

#: Inductor compiles C++ on a CPU; without a compiler fit(compile=True) runs eagerly (tested below with a fake failure).
needs_compiler = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                                    reason="no C++ compiler for inductor on this machine")


def _graphs_compiled() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def _sb_vae():
    from SB_VAE.sbvae import StickBreakingVAE

    torch.manual_seed(0)
    return StickBreakingVAE(64, 32, 8, 5.0, kl_terms=10)


def _dae():
    from DenoisingAE.denoising import TiedAutoencoder

    return TiedAutoencoder(64, 32, generator=torch.Generator().manual_seed(0))


def _losses():
    from DenoisingAE.denoising import dae_loss
    from SB_VAE.sbvae import negative_bound_loss

    # the SB-VAE draws its uniforms with torch.rand and runs a custom autograd Function; the denoising loss
    # draws the masking noise's scores; both must come from torch's generator, as in eager mode
    return {"sb-vae": (_sb_vae, negative_bound_loss), "dae": (_dae, dae_loss(0.25))}


@needs_compiler
@pytest.mark.filterwarnings("error::UserWarning")  # a failed compilation (it warns) fails the test
@pytest.mark.parametrize("name", ["sb-vae", "dae"])
def test_a_compiled_step_gives_the_eager_loss_gradients_and_random_draws(name):
    build, loss_fn = _losses()[name]
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    results = []
    for fn in (loss_fn, compiled.CompiledLoss(loss_fn)):
        model = build()
        torch.manual_seed(2)
        terms = fn(model, x, None)
        grads = torch.autograd.grad(terms["loss"], list(model.parameters()))
        results.append((terms, grads, torch.rand(3)))  # the generator is left where eager leaves it
    (eager, g_eager, next_eager), (comp, g_comp, next_comp) = results
    assert fn.failure is None and _graphs_compiled() >= 1   # it did run compiled: no silent fallback
    for k in eager:
        assert comp[k].detach().numpy() == pytest.approx(eager[k].detach().numpy(), rel=1e-5, abs=1e-6), k
    for p, q in zip(g_eager, g_comp):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5 * max(1.0, p.abs().max().item()))
    assert torch.equal(next_eager, next_comp)


@needs_compiler
@pytest.mark.filterwarnings("error::UserWarning")
def test_fit_with_compile_trains_as_fit_without_it_including_a_short_last_batch():
    # 100 images in batches of 32: the fourth batch has 4 rows, which compiles a second graph
    build, loss_fn = _losses()["sb-vae"]
    data = ImageSet(torch.randint(0, 256, (100, 1, 8, 8), generator=torch.Generator().manual_seed(0),
                                  dtype=torch.uint8), None)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    hist, params = [], []
    for comp in (False, True):
        model = build()
        opt = train.make_optimizer("adam", model.parameters(), 1e-3)
        train.seed_everything(3)
        hist.append(train.fit(model, loss_fn, data.batches(32, seed=1), opt, 2, progress=False, compile=comp))
        params.append([p.detach().clone() for p in model.parameters()])
    assert _graphs_compiled() >= 2          # the full batches' graph and the short last batch's
    for k in hist[0].records:
        assert hist[1][k] == pytest.approx(hist[0][k], rel=1e-4), k
    for p, q in zip(*params):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-5)


def test_a_failed_compilation_warns_and_reruns_the_step_eagerly_from_the_same_random_state(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args):
            torch.rand(1000)                 # consumes draws, as a half-run compiled graph may
            raise RuntimeError("InductorError: no C++ compiler found\nmore detail")
        return run

    monkeypatch.setattr(compiled.torch, "compile", broken_compile)
    build, sb_loss = _losses()["sb-vae"]

    def loss_fn(model, x, y):   # a loss of this test's own, not wrapped by an earlier test
        return sb_loss(model, x, y)

    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    eager = loss_fn(build(), x, None)["loss"]
    fn = compiled.compile_loss(loss_fn)
    assert fn.failure is None
    torch.manual_seed(2)
    with pytest.warns(UserWarning, match="torch.compile of the training loss failed .*no C\\+\\+ compiler found"):
        fallback = fn(build(), x, None)["loss"]
    assert fallback.item() == eager.item() and "no C++ compiler found" in fn.failure
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # later steps are eager, without a second warning or attempt
        fn(build(), x, None)
        assert compiled.compile_loss(loss_fn) is fn   # a later fit() of the same loss reuses the failed state


def test_a_backward_graph_that_fails_to_compile_is_caught_with_the_forward(monkeypatch):
    """The backward is compiled with the forward, inside the guarded call, not lazily at backward()."""
    from torch._functorch import config as functorch_config

    seen = []

    def spy_compile(fn, **kwargs):
        def run(*args):
            seen.append(functorch_config.force_non_lazy_backward_lowering)
            return fn(*args)
        return run

    monkeypatch.setattr(compiled.torch, "compile", spy_compile)
    build, loss_fn = _losses()["sb-vae"]
    compiled.CompiledLoss(loss_fn)(build(), torch.rand(4, 1, 8, 8), None)
    assert seen == [True] and functorch_config.force_non_lazy_backward_lowering is False


def test_an_error_in_the_loss_itself_is_raised_as_the_eager_loss_raises_it():
    def bad_loss(model, x, y):
        raise ValueError("the loss's own error")

    with pytest.raises(ValueError, match="the loss's own error"):
        compiled.compile_loss(bad_loss)(torch.nn.Linear(2, 2), torch.zeros(1, 2), None)
