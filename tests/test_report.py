"""results.json, the PDF report and the scorecard."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
from pypdf import PdfReader

from common import report
from common.paths import Run, select_profile
from common.report import Claim, Figure


def _claims(ok: bool):
    return [Claim("fig1", "noise gives stroke detectors", "qualitative", "spread 0.4 vs 0.7", "spread falls",
                  report.verdict(ok), "R"),
            Claim("tab1", "SdA-3 error on basic", "2.80%", "not run in smoke", "within interval", "not run", "U")]


def _finish(run: Run, ok: bool = True, **kw):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    ax.set_title("t")
    fig.savefig(run.plots / "f.png")
    plt.close(fig)
    return report.finish(run, title="Denoising AE", citation="Vincent et al. 2008", summary="claims",
                         claims=_claims(ok), figures=[Figure("plots/f.png", "a figure")], setup={"epochs": "3"},
                         deviations=["fewer epochs"], metrics={"err": 3.1}, **kw)


def test_finish_writes_results_and_pdf(out_dir):
    run = Run("DenoisingAE", "smoke", 0, "cpu")
    res = _finish(run)
    data = json.loads((out_dir / "DenoisingAE/results.json").read_text())
    assert data["profile"] == "smoke" and data["seed"] == 0 and data["runtime_s"] >= 0
    assert data["claims"][0]["verdict"] == "reproduced" and data["metrics"] == {"err": 3.1}
    assert "torch" in data["versions"]
    assert report.Results.from_json(res.to_json()) == res
    pdf = PdfReader(out_dir / "DenoisingAE/DenoisingAE.pdf")
    text = "".join(page.extract_text() for page in pdf.pages)
    assert len(pdf.pages) >= 1
    for needle in ("Denoising AE", "Vincent et al. 2008", "SdA-3 error on basic", "2.80%", "fewer epochs", "Figure 1"):
        assert needle in text, needle


def test_second_notebook_gets_its_own_files(out_dir):
    _finish(Run("DenoisingAE", "smoke", 0, "cpu"), name="RegularizedAE")
    assert (out_dir / "DenoisingAE/results_RegularizedAE.json").is_file()
    assert (out_dir / "DenoisingAE/RegularizedAE.pdf").is_file()


def test_bad_input_is_refused(out_dir):
    with pytest.raises(ValueError, match="verdict must be one of"):
        Claim("x", "s", "1", "2", "c", "maybe")
    with pytest.raises(ValueError, match="confidence"):
        Claim("x", "s", "1", "2", "c", "partly", "Q")
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        Run("DenoisingAE", "fast", 0, "cpu")
    with pytest.raises(ValueError, match=r"unknown profile 'quick'; choose one of \['smoke', 'standard'\]"):
        select_profile("quick", {"smoke": {}, "standard": {}})
    run = Run("DenoisingAE", "smoke", 0, "cpu")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        report.finish(run, "t", "c", "s", [], [Figure("plots/missing.png", "x")], {}, [])


def test_scorecard_gathers_every_claim(out_dir):
    _finish(Run("DenoisingAE", "smoke", 0, "cpu"), ok=True)
    _finish(Run("VariationalAE", "smoke", 1, "cpu"), ok=False)
    results = report.collect_results("smoke")
    assert [r.paper for r in results] == ["DenoisingAE", "VariationalAE"]
    card = report.build_scorecard(results, out_dir / "SCORECARD.md").read_text()
    assert "Totals: 1 reproduced, 0 partly, 1 not reproduced, 2 not run" in card
    assert card.count("| tab1 |") == 2 and "## KsparseAE" in card and "No results yet" in card
    assert report.scorecard_path("smoke") == out_dir / "SCORECARD.md"


def test_ranking_verdict_needs_the_margin_to_exceed_its_uncertainty():
    from common.report import ranking_verdict
    assert ranking_verdict(1.0, 0.1) == "reproduced"
    assert ranking_verdict(0.1, 0.1) == "partly"
    assert ranking_verdict(-0.5, 0.1) == "not reproduced"
    assert ranking_verdict(0.0, 0.0) == "not reproduced"
    with pytest.raises(ValueError):
        ranking_verdict(1.0, float("nan"))


def test_level_verdict_caps_unconfirmed_paper_values_at_partly():
    from common.report import level_verdict
    assert level_verdict(1.40, 1.35, 0.1, "P") == "reproduced"
    assert level_verdict(1.50, 1.35, 0.1, "R") == "partly"
    assert level_verdict(1.80, 1.35, 0.1, "R") == "not reproduced"
    assert level_verdict(1.35, 1.35, 0.1, "U") == "partly"


def test_claim_kind_is_checked():
    from common.report import Claim
    assert Claim("x", "s", "1", "1", "c", "reproduced", kind="sanity").kind == "sanity"
    with pytest.raises(ValueError, match="kind"):
        Claim("x", "s", "1", "1", "c", "reproduced", kind="bonus")
