"""Issue 18 in BetaVAE_dSprites.ipynb: the reference budget, the metric's summary and baselines, and the
notebook's claims (rule R4 through level_check, every claim naming the models behind it)."""
from __future__ import annotations

import ast
import fnmatch
import math

import nbformat
import numpy as np
import pytest

from BetaVAE.config import DSPRITES_METRIC_PROTOCOLS, DSPRITES_REFERENCES
from BetaVAE.dsprites import FACTOR_NAMES
from BetaVAE.experiment import binomial_se, dsprites_model_name, fit_pca_ica, format_score, metric_summary
from common.paths import REPO_ROOT
from common.run import Reference

NOTEBOOK = REPO_ROOT / "BetaVAE" / "BetaVAE_dSprites.ipynb"


def _result(acc: float, n_eval: int = 1000, converged: bool = True, n_iter: int = 50) -> dict:
    return {"eval_accuracy": acc, "train_accuracy": acc + 0.02, "num_eval": n_eval, "converged": converged,
            "n_iter": n_iter}


def test_every_dsprites_model_has_disentanglement_libs_budget():
    for beta in (4.0, 1.0):
        name = dsprites_model_name(beta, 3)
        ref = next(r for p, r in DSPRITES_REFERENCES.items() if fnmatch.fnmatchcase(name, p))
        assert isinstance(ref, Reference) and ref.examples == 300_000 * 64
        assert "disentanglement_lib" in ref.source and "paper states no" in ref.source


def test_the_papers_protocol_leaves_shape_out():
    assert DSPRITES_METRIC_PROTOCOLS["dlib"] is None
    assert [FACTOR_NAMES[k] for k in DSPRITES_METRIC_PROTOCOLS["paper"]] == ["scale", "orientation", "pos_x",
                                                                            "pos_y"]
    assert list(DSPRITES_METRIC_PROTOCOLS)[0] == "dlib"   # the widest protocol first (beta_vae_scores)


def test_metric_summary_of_one_seed_uses_the_binomial_error():
    s = metric_summary([_result(0.8)])
    assert s["mean"] == pytest.approx(80.0) and s["std"] is None and s["best_half"] is None
    assert s["se"] == pytest.approx(100 * math.sqrt(0.8 * 0.2 / 1000)) and "binomial" in s["se_from"]
    assert s["converged"] and format_score(s) == "80.00% (1 seed)"
    assert binomial_se(0.5, 100) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        binomial_se(0.5, 0)


def test_metric_summary_over_seeds_uses_their_spread_and_shows_the_papers_best_half_apart():
    s = metric_summary([_result(0.6), _result(0.8, converged=False, n_iter=100), _result(0.7)])
    assert s["mean"] == pytest.approx(70.0) and s["std"] == pytest.approx(10.0)
    assert s["se"] == pytest.approx(10.0 / math.sqrt(3)) and "3 seeds" in s["se_from"]
    assert s["best_half"] == pytest.approx(75.0)          # the best 2 of 3 (half, rounded up)
    assert not s["converged"] and s["n_iter"] == 100
    assert format_score(s) == "70.00% +- 10.00 (3 seeds)"
    with pytest.raises(ValueError):
        metric_summary([])


def test_fit_pca_ica_reports_whether_fastica_converged():
    rng = np.random.default_rng(0)
    sources = rng.laplace(size=(2000, 3))
    images = sources @ rng.normal(size=(3, 40)) + 0.01 * rng.normal(size=(2000, 40))
    out = fit_pca_ica(images, 3, seed=0)
    assert out["ica_converged"] and out["ica_iterations"] < out["ica_max_iter"]
    recovered = out["ica"].transform(out["pca"].transform(images))
    corr = np.abs(np.corrcoef(recovered.T, sources.T)[:3, 3:])
    assert (corr.max(1) > 0.95).all()                      # each component finds one source
    assert not fit_pca_ica(images, 3, seed=0, max_iter=1)["ica_converged"]


def test_the_notebook_sets_its_budget_names_the_models_and_uses_rule_r4():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    source = "\n".join(code)
    assert "run.references = DSPRITES_REFERENCES" in code[1], "set the reference budget right after the Run"
    assert "level_verdict(" not in source and source.count("level_check(") >= 3
    assert "learning_curves(" in source and "dsprites_learning_curves.png" in source
    assert "np.round(" not in source, "no raw float lists in a claim"
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Claim"]
    assert calls
    for call in calls:
        assert any(k.arg == "models" for k in call.keywords), f"line {call.lineno}: Claim without models="
