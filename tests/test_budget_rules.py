"""Rules R4 (one tolerance for level claims) and R9 (verdicts on models still improving)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from common import report
from common.data import Batches
from common.report import Claim, level_check, level_tolerance
from common.run import Reference, Run, budget_fields, convergence
from common.train import History


def _history(values, stopped_early=False) -> History:
    h = History()
    h.records["val/loss"] = list(values)
    h.stopped_early = stopped_early
    return h


def test_a_model_that_stops_early_is_converged_and_one_whose_metric_still_falls_is_not():
    assert convergence(_history([5, 4, 3.9, 3.9, 3.95], stopped_early=True), "val/loss")["convergence"] == "converged"
    falling = convergence(_history([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]), "val/loss")
    assert falling["convergence"] == "still improving" and falling["tail_improvement"] > 0.5


def test_r4_tolerance_is_twice_the_combined_se_or_five_percent_of_the_paper():
    assert level_tolerance(100.0, se_ours=3.0, se_paper=4.0) == pytest.approx(10.0)   # 2 * hypot(3, 4)
    assert level_tolerance(100.0, se_ours=0.1) == pytest.approx(5.0)                  # 5% floor
    assert level_tolerance(100.0, se_ours=3.0, interval=1.5) == 1.5                   # the paper's own interval
    with pytest.raises(ValueError, match="se_ours"):
        level_tolerance(1.0, se_ours=-1.0)
    with pytest.raises(ValueError, match="interval"):
        level_tolerance(1.0, interval=0.0)


def test_a_level_within_2_se_reads_reproduced_and_one_3_tol_away_reads_not_reproduced():
    paper, se = 100.0, 4.0                      # tol = max(2 * 4, 5) = 8
    near = level_check(paper + 1.9 * se, paper, se)
    assert near.verdict == "reproduced" and near.tol == pytest.approx(8.0)
    assert "tol 8.00" in near.text and "R4" in near.text
    assert level_check(paper + 1.5 * near.tol, paper, se).verdict == "partly"
    assert level_check(paper - 3 * near.tol, paper, se).verdict == "not reproduced"
    assert level_check(paper, paper, se, confidence="U").verdict == "partly"     # [U] values are never a hard bar
    with pytest.raises(ValueError, match="finite"):
        level_check(float("nan"), paper, se)


def _models(**states):
    return {name: {"convergence": st, "examples_seen": 1000,
                   **budget_fields(1000, Reference(50_000, "paper, sec. 5") if st != "skip" else None)}
            for name, st in states.items()}


def test_r9_marks_a_verdict_undertrained_in_either_direction_when_a_model_behind_it_still_improves():
    models = _models(a="converged", b="still improving", c="converged")
    won = Claim("rank", "A beats B", "A < B", "A < B", "R3", "reproduced", models=["a", "b"])
    lost = Claim("level", "A is 1%", "1%", "3%", "R4", "not reproduced", models=["b"])
    done = Claim("done", "C is 1%", "1%", "1%", "R4", "reproduced", models=["c"])
    allm = Claim("all", "all", "x", "y", "R4", "partly")                 # models=None: every model of the run
    pure = Claim("def", "a definition", "x", "x", "closed form", "reproduced", kind="sanity", models=[])
    report.apply_budget_rule([won, lost, done, allm, pure], models)
    assert won.undertrained and lost.undertrained and allm.undertrained
    assert not done.undertrained and not pure.undertrained and pure.budget == ""
    assert won.verdict == "reproduced" and lost.verdict == "not reproduced"   # the verdict itself is unchanged
    assert won.budget == "2% of the reference budget; 1 of 2 models not converged"
    assert done.budget == "2% of the reference budget; converged"
    assert report.verdict_mark(lost) == "not reproduced, undertrained"
    with pytest.raises(ValueError, match="not trained in this run"):
        report.apply_budget_rule([Claim("x", "s", "p", "o", "c", "partly", models=["typo"])], models)


def test_r9_in_finish_the_scorecard_counts_decided_and_undertrained_apart(out_dir):
    run = Run("SB_VAE", "smoke", 0, "cpu")
    run.references = {"sb*": Reference(4_000, "authors' code: 2,000 epochs")}
    torch.manual_seed(0)
    x = torch.rand(40, 3)
    for name, epochs in (("sb_vae", 6), ("gauss", 6)):
        model = nn.Linear(3, 3)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        run.train(name, model, lambda m, xb, yb=None: {"loss": ((m(xb) - xb) ** 2).mean()},
                  Batches(x, None, 10, seed=0), epochs, optimizer=opt, config={}, progress=False)
    run.models["gauss"]["convergence"] = "converged"          # as if its curve had flattened
    claims = [Claim("a", "SB beats Gauss", "x", "y", "R3", "reproduced", models=["sb_vae", "gauss"]),
              Claim("b", "Gauss level", "x", "y", "R4", "not reproduced", models=["gauss"])]
    res = report.finish(run, "t", "c", "s", claims, [], {}, [])
    data = json.loads((out_dir / "SB_VAE/results.json").read_text())
    assert data["models"]["sb_vae"]["budget_share"] == pytest.approx(240 / 4000)
    assert data["models"]["gauss"]["budget_share"] is None and data["models"]["sb_vae"]["reference_source"]
    assert [c["undertrained"] for c in data["claims"]] == [True, False]
    assert report.Results.from_json(res.to_json()) == res
    card = report.build_scorecard(report.collect_results("smoke"), out_dir / "SCORECARD.md").read_text()
    assert "Decided (every model behind the verdict converged, rule R9): 0 reproduced, 0 partly, 1 not reproduced." in card
    assert "Undertrained (" in card and "when its budget ran out, rule R9; the verdict may change with more training): 1 reproduced, 0 partly, 0 not reproduced." in card
    assert "**reproduced**, *undertrained*" in card and "6% of the reference budget; 1 of 2 models not converged" in card


def test_a_reference_budget_needs_examples_and_a_source():
    with pytest.raises(ValueError, match="> 0"):
        Reference(0, "paper")
    with pytest.raises(ValueError, match="source"):
        Reference(10, " ")


def test_learning_curves_plot_each_model_and_its_reference_budget(tmp_path):
    from common.plots import learning_curves
    a, b = History(), History()
    a.records["val/loss"], a.samples = [3.0, 2.0, 1.5], [100, 200, 300]
    b.records["train/loss"], b.samples = [3.0, 2.0], [100, 200]
    fig = learning_curves({"a": a, "b": b}, "val/loss", tmp_path / "lc.png", "t", references={"a": 10_000})
    ax = fig.axes[0]
    assert (tmp_path / "lc.png").is_file() and ax.get_xscale() == "log"
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] == \
        ["a", "reference budget (dotted)"]
    assert "no val/loss recorded: b" in ax.get_title()
    assert any(list(line.get_xdata()) == [10_000, 10_000] for line in ax.get_lines())   # the budget line


def test_the_paper_cell_shows_a_dash_for_additions_and_the_confidence_once():
    assert report.paper_cell(Claim("a", "s", "-", "o", "c", "reproduced", "P", kind="addition")) == "–"
    assert report.paper_cell(Claim("b", "s", "2.80% [U]", "o", "c", "partly", "U")) == "2.80% [U]"
    assert report.paper_cell(Claim("c", "s", "2.80%", "o", "c", "partly", "U")) == "2.80% [U]"


def test_the_scorecard_shows_another_profiles_verdict_beside_the_standard_one(out_dir):
    std = report.Results("SB_VAE", "SB", "c", "s", "standard", "cpu", 0, 60.0, notebook="SB_VAE.ipynb",
                         claims=[Claim("T1", "SB beats Gauss", "4.1 nats", "-48 nats", "R3", "not reproduced",
                                       undertrained=True, budget="0.9% of the reference budget")])
    long = report.Results("SB_VAE", "SB", "c", "s", "paper", "cuda", 0, 600.0, notebook="SB_VAE.ipynb",
                          claims=[Claim("T1", "SB beats Gauss", "4.1 nats", "+3.0 nats", "R3", "partly",
                                        budget="50% of the reference budget; converged")])
    card = report.build_scorecard([std], out_dir / "SCORECARD.md", others={"paper": [long]}).read_text()
    assert "| id | kind | claim | paper | ours | verdict | budget (R9) | paper |" in card
    assert "| **not reproduced**, *undertrained* | 0.9% of the reference budget | partly: +3.0 nats " \
           "(50% of the reference budget; converged) |" in card
    assert "Profile `paper` (1 notebook run, its own column below, not in the totals above): 0 reproduced, " \
           "1 partly" in card
    assert _totals_line(card) == "0 reproduced, 0 partly, 1 not reproduced, 0 not run"   # standard only


def _totals_line(card: str) -> str:
    line = next(x for x in card.splitlines() if x.startswith("**Totals"))
    return line.split(":**")[1].strip().rstrip(".")


def test_paper_and_long_runs_write_beside_the_standard_run_and_smoke_under_build(monkeypatch):
    from common.paths import REPO_ROOT, output_root
    from common.report import runs_path, scorecard_path
    monkeypatch.delenv("AE_OUTPUT_DIR", raising=False)
    assert output_root("KsparseAE", "standard") == REPO_ROOT / "KsparseAE"
    assert output_root("KsparseAE", "paper") == REPO_ROOT / "KsparseAE" / "paper"
    assert output_root("KsparseAE", "smoke") == REPO_ROOT / "build" / "smoke" / "KsparseAE"
    assert scorecard_path("paper") == scorecard_path("standard") == REPO_ROOT / "SCORECARD.md"
    assert runs_path("paper") == REPO_ROOT / "runs_paper.json" and runs_path("standard") == REPO_ROOT / "runs.json"


def test_a_copied_tree_without_git_names_the_commit_it_was_given(tmp_path, monkeypatch):
    from common.report.provenance import COMMIT_ENV, git_commit
    monkeypatch.delenv(COMMIT_ENV, raising=False)
    assert git_commit(tmp_path) == ""                       # not a repository, nothing given
    monkeypatch.setenv(COMMIT_ENV, "abc1234567")
    assert git_commit(tmp_path) == "abc1234567 (copy)"


def test_results_written_before_r9_are_not_counted_as_decided(out_dir):
    old = report.Results("SB_VAE", "SB", "c", "s", "standard", "cpu", 0, 60.0, notebook="SB_VAE.ipynb",
                         claims=[Claim("T1", "SB beats Gauss", "x", "y", "R3", "not reproduced")])
    data = json.loads(old.to_json())
    for key in ("undertrained", "budget", "models"):       # as a file written before R9 existed
        data["claims"][0].pop(key)
    data.pop("budget_rule")
    assert report.Results.from_json(json.dumps(data)).budget_rule is False
    data["claims"][0]["undertrained"] = False             # written by R9's first code, before the flag
    assert report.Results.from_json(json.dumps(data)).budget_rule is True
    card = report.build_scorecard([old], out_dir / "SCORECARD.md").read_text()
    assert "Decided (every model behind the verdict converged, rule R9): 0 reproduced, 0 partly, 0 not reproduced." \
        in card and "Not assessed (results written before rule R9): 1 paper claims." in card
