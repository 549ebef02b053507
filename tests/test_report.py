"""Claims and verdicts, results.json and its provenance, the PDF report, and the scorecard."""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import pytest
from pypdf import PdfReader

from common import report
from common.paths import select_profile
from common.report import Claim, Figure
from common.report import pdf as report_pdf
from common.run import Run


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


def _totals(card: str) -> str:
    line = next(x for x in card.splitlines() if x.startswith("**Totals"))
    return line.split(":**")[1].strip().rstrip(".")


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
    assert _totals(card) == "1 reproduced, 0 partly, 1 not reproduced, 2 not run"
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


def test_results_record_commit_and_time_and_old_files_still_load(out_dir):
    import re
    from datetime import datetime, timedelta, timezone

    res = _finish(Run("DenoisingAE", "smoke", 0, "cpu"))
    assert re.fullmatch(r"[0-9a-f]{10}(\+dirty)?", res.commit), res.commit
    assert datetime.now(timezone.utc) - report.parse_time(res.finished_at) < timedelta(minutes=5)
    old = json.loads(res.to_json())
    for key in ("commit", "finished_at", "training"):
        del old[key]
    for c in old["claims"]:
        del c["kind"], c["revised"]
    loaded = report.Results.from_json(json.dumps(old))  # a results.json written before these fields existed
    assert loaded.commit == "" and loaded.finished_at == "" and loaded.claims[0].kind == "paper"
    assert report.show_time(loaded.finished_at) == "unknown date"


def test_a_failed_write_leaves_the_previous_files_whole(out_dir, monkeypatch):
    from common.paths import atomic_write

    run = Run("DenoisingAE", "smoke", 0, "cpu")
    _finish(run)
    before = {p: p.read_bytes() for p in (run.out / "results.json", run.out / "DenoisingAE.pdf")}

    def half_then_kill(tmp):
        tmp.write_bytes(b"%PDF-1.4 half")
        raise KeyboardInterrupt  # as a kill in the middle of writing

    real = report_pdf.atomic_write
    monkeypatch.setattr(report_pdf, "atomic_write", lambda path, write: real(path, half_then_kill))
    with pytest.raises(KeyboardInterrupt):
        _finish(run, ok=False)
    assert {p: p.read_bytes() for p in before} == before
    assert not list(run.out.glob(".*.tmp"))  # no temporary file left behind
    assert atomic_write(out_dir / "x.txt", lambda tmp: tmp.write_text("new")).read_text() == "new"


def _kinds_results(run: Run):
    claims = [Claim("p1", "paper claim one", "1", "1.0", "R4", report.level_verdict(1.0, 1.0, 0.1), "P"),
              Claim("p2", "paper claim two", "A > B", "A < B", "R3", report.ranking_verdict(-1.0, 0.1), "P",
                    revised=True),
              Claim("s1", "IS >= bound", "holds", "holds", "by construction", "reproduced", kind="sanity"),
              Claim("a1", "speed on our CPU", "-", "3 min", "none", report.verdict(True), kind="addition")]
    return report.finish(run, title="Kinds", citation="c", summary="s", claims=claims, figures=[], setup={},
                         deviations=[])


def test_scorecard_counts_paper_claims_only_and_flags_kinds_and_revised(out_dir):
    run = Run("KsparseAE", "smoke", 0, "cpu")
    _kinds_results(run)
    card = report.build_scorecard(report.collect_results("smoke"), out_dir / "SCORECARD.md").read_text()
    assert _totals(card) == "1 reproduced, 0 partly, 1 not reproduced, 0 not run"
    assert "Sanity checks (true by construction; shown, not in the totals): 1" in card
    assert "Additions (ours, not in the paper; not in the totals): 1" in card
    assert "revised after seeing results (flagged *revised*): 1 (p2)" in card
    assert "| p2 | paper | paper claim two | A > B [P] | A < B | **not reproduced** *revised* | – |" in card
    assert "| s1 | sanity |" in card and "| a1 | addition |" in card
    assert "R3 ranking" in card and "1.96" in card  # the rules are written down where the totals are
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(run.out / "KsparseAE.pdf").pages).split())
    assert "not reproduced (revised)" in text and "s1 (sanity)" in text and "criterion revised" in text
    assert "Criteria revised after seeing results: 1 (p2)" in text and "git commit" in text


def test_failed_and_stale_notebooks_are_marked_and_leave_the_totals(out_dir):
    from datetime import datetime, timedelta, timezone
    from common.report import NotebookRun

    _finish(Run("DenoisingAE", "smoke", 0, "cpu"), ok=True)                 # ran ok in this batch
    _finish(Run("DenoisingAE", "smoke", 0, "cpu"), ok=True, name="Regularized")  # failed in this batch, old rows
    _finish(Run("VariationalAE", "smoke", 0, "cpu"), ok=True)               # not run in this batch
    results = report.collect_results("smoke")
    after = datetime.now(timezone.utc) + timedelta(seconds=1)
    stamp = lambda dt: dt.isoformat(timespec="milliseconds")  # noqa: E731
    batch, earlier = stamp(after - timedelta(minutes=10)), stamp(after - timedelta(hours=5))
    runs = {"DenoisingAE/DenoisingAE.ipynb": NotebookRun("DenoisingAE/DenoisingAE.ipynb", "smoke", True,
                                                         batch, stamp(after), "", batch),
            "DenoisingAE/Regularized.ipynb": NotebookRun("DenoisingAE/Regularized.ipynb", "smoke", False,
                                                         stamp(after), stamp(after), "RuntimeError: boom", batch),
            "VariationalAE/VariationalAE.ipynb": NotebookRun("VariationalAE/VariationalAE.ipynb", "smoke", True,
                                                             earlier, earlier, "", earlier),
            "KsparseAE/KsparseAE.ipynb": NotebookRun("KsparseAE/KsparseAE.ipynb", "smoke", False, batch, batch,
                                                     "NameError: x", batch)}
    card = report.build_scorecard(results, out_dir / "SCORECARD.md", runs, batch, now=after).read_text()
    assert _totals(card) == "1 reproduced, 0 partly, 0 not reproduced, 1 not run"  # DenoisingAE.ipynb only
    assert "Left out (notebook failed or not run in this batch; rows marked below): 4 claims (4 paper claims)" in card
    failed = report.show_time(stamp(after))
    assert f"> **Not counted: run failed {failed} (RuntimeError: boom); shown: the earlier results of" in card
    assert f"| fig1 | paper | noise gives stroke detectors | qualitative [R] | spread 0.4 vs 0.7 | reproduced, " \
           f"not counted (run failed {failed}) |" in card
    assert "> **Not counted: not run in this batch: results of" in card and "profile smoke" in card
    assert "reproduced, not counted (not run in this batch) |" in card
    assert "`KsparseAE/KsparseAE.ipynb`: **run failed" in card and "(NameError: x); no results." in card
    # every counted block names when, in which profile and at which commit its results were made
    commit = results[0].commit
    assert f"profile `smoke`, finished {report.show_time(results[0].finished_at)}, commit `{commit}`" in card


def test_training_summary_counts_each_status():
    from common.report import training_summary
    status = {f"m{i}": "loaded" for i in range(5)} | {"a": "trained", "b": "resumed"}
    assert training_summary(status) == "7 models: 5 loaded, 1 resumed, 1 trained"
    assert training_summary({"x": "trained"}) == "1 model: 1 trained"


def test_record_appends_prints_and_refuses_a_duplicate_id(capsys):
    from common.report import Claim, record
    claims: list = []
    record(claims, Claim("T1", "A beats B", "1% vs 2%", "1.5% vs 1.4%", "R3", "not reproduced", "P"))
    out = capsys.readouterr().out
    assert [c.id for c in claims] == ["T1"]
    assert "T1" in out and "NOT REPRODUCED" in out and "1.5% vs 1.4%" in out
    with pytest.raises(ValueError, match="T1"):
        record(claims, Claim("T1", "again", "-", "-", "-", "partly"))
    assert len(claims) == 1


def test_pdf_images_are_downscaled_and_photos_become_jpeg():
    import numpy as np
    from PIL import Image as PILImage
    from common.report import pdf_image_bytes
    rng = np.random.default_rng(0)
    photo = PILImage.fromarray(rng.integers(0, 256, (900, 3000, 3), dtype=np.uint8))
    plot = PILImage.new("RGBA", (3000, 900), (255, 255, 255, 0))
    plot.paste((0, 0, 255, 255), (100, 400, 2900, 420))             # a blue line on a transparent page
    out_photo, out_plot = PILImage.open(pdf_image_bytes(photo, 16)), PILImage.open(pdf_image_bytes(plot, 16))
    assert out_photo.format == "JPEG" and out_plot.format == "PNG"
    assert out_photo.width == out_plot.width == round(16 / 2.54 * 200)  # 200 dpi at 16 cm
    assert out_plot.getpixel((10, 10)) == (255, 255, 255)            # transparency onto white, not black
    small = PILImage.new("RGB", (300, 100), "white")
    assert PILImage.open(pdf_image_bytes(small, 16)).size == (300, 100)  # never upscaled


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    import os
    import stat
    from common.paths import atomic_write
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    made = atomic_write(tmp_path / "atomic.txt", lambda tmp: tmp.write_text("x"))
    assert stat.S_IMODE(os.stat(made).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


@dataclass(frozen=True)
class _ModelConfig:
    lr: float = 1e-3
    epochs: int = 3
    hidden: tuple[int, ...] = (500, 500)


@dataclass(frozen=True)
class _Config:
    batch_size: int = 100
    optimizer: str = "adam"
    vae: _ModelConfig = field(default_factory=_ModelConfig)


def _pdf_text(path) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def test_finish_stores_a_frozen_config_as_plain_data_and_the_pdf_shows_it_and_the_models(out_dir):
    run = Run("DenoisingAE", "smoke", 0, "cpu")
    run.models["sda-3"] = {"epochs": 7, "examples_seen": 70_000, "best_epoch": 4, "stopped_early": True,
                           "train_seconds": 12.3, "status": "trained"}
    res = _finish(run, config=_Config())
    data = json.loads((out_dir / "DenoisingAE/results.json").read_text())
    assert data["config"] == {"batch_size": 100, "optimizer": "adam",
                              "vae": {"lr": 0.001, "epochs": 3, "hidden": [500, 500]}}  # tuples as lists
    assert data["models"] == run.model_records()  # with the (here unknown) reference budget, rule R9
    assert data["models"]["sda-3"]["budget_share"] is None
    assert report.Results.from_json(res.to_json()) == res
    text = _pdf_text(out_dir / "DenoisingAE/DenoisingAE.pdf")
    assert "Configuration" in text and "vae.lr 0.001" in text and "vae.hidden [500, 500]" in text
    assert "batch_size 100" in text and "optimizer adam" in text
    assert "examples seen" in text and "stopped early" in text
    assert "sda-3 7 70,000 – 5 yes 12.3 trained" in text  # the best epoch counts from 1 in the PDF


def test_the_pdf_leaves_out_empty_config_and_model_tables(out_dir):
    run = Run("DenoisingAE", "smoke", 0, "cpu")
    _finish(run)
    text = _pdf_text(out_dir / "DenoisingAE/DenoisingAE.pdf")
    assert "Configuration" not in text and "examples seen" not in text


def test_config_as_data_takes_dataclasses_and_mappings_only():
    assert report.config_as_data(None) == {}
    assert report.config_as_data({"a": _ModelConfig(), "seed": 3}) == {
        "a": {"lr": 0.001, "epochs": 3, "hidden": [500, 500]}, "seed": 3}
    for bad in (3, [1, 2], "adam", _Config):  # _Config is the class, not an instance
        with pytest.raises(TypeError, match="config must be a dataclass or a mapping"):
            report.config_as_data(bad)


def test_flat_config_joins_nested_keys_with_dots_and_writes_values_as_text():
    assert report.flat_config({"vae": {"lr": 0.001, "sizes": [1, 2]}, "name": "x", "empty": {}, "off": None}) == {
        "vae.lr": "0.001", "vae.sizes": "[1, 2]", "name": "x", "empty": "{}", "off": "None"}


def test_figure_captions_are_numbered_once_and_keep_the_papers_number():
    assert report.figure_caption(1, "a figure") == "Figure 1. a figure"
    assert report.figure_caption(2, "Fig. 1, beta=1 (the VAE): the same traversals.") == \
        "Figure 2 (the paper's Fig. 1). beta=1 (the VAE): the same traversals."
    assert report.figure_caption(3, "Fig. 3(g, h): decoder means") == \
        "Figure 3 (the paper's Fig. 3(g, h)). decoder means"
    assert report.figure_caption(4, "Fig. 6 (left): the metric") == "Figure 4 (the paper's Fig. 6 (left)). the metric"
    assert report.figure_caption(5, "Table 1: test error") == "Figure 5 (the paper's Table 1). test error"
    assert report.figure_caption(6, "Figures of merit") == "Figure 6. Figures of merit"


def test_the_pdf_numbers_figures_once_and_never_breaks_a_claim_id(out_dir):
    run = Run("DenoisingAE", "smoke", 0, "cpu")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fig.savefig(run.plots / "f.png")
    plt.close(fig)
    claims = [Claim("F2-gauss-collapse", "the Gauss VAE collapses", "yes", "yes", "R4", report.verdict(True), "P"),
              Claim("cae-closed-form", "the closed form", "-", "-", "by construction", "reproduced", kind="sanity")]
    report.finish(run, "t", "c", "s", claims, [Figure("plots/f.png", "Fig. 1, beta=250: traversals"),
                                               Figure("plots/f.png", "ours only")], {}, [])
    raw = "".join(page.extract_text() for page in PdfReader(run.out / "DenoisingAE.pdf").pages)
    assert "F2-gauss-collapse" in raw and "cae-closed-form" in raw  # each on one line of its cell
    text = " ".join(raw.split())
    assert "Figure 1 (the paper's Fig. 1). beta=250: traversals" in text and "Figure 2. ours only" in text
    assert "Figure 1. Fig. 1" not in text


def test_library_versions_name_the_cpu():
    machine = report.library_versions()["machine"]
    assert machine == f"{platform.machine()} ({report.cpu_model()})" and "unknown cpu" not in machine
