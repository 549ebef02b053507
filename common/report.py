"""Results, PDF reports and the scorecard.

Each notebook ends by building a :class:`Results` (what was run, on what, and every
claim of the paper with the paper's value beside ours) and calling :func:`finish`,
which writes ``results.json`` and ``<Paper>.pdf`` into the run's output folder.
``build_scorecard`` gathers every paper's claims into ``SCORECARD.md``.

Values in a claim are measured by the notebook and passed in; nothing here makes a
number up. A claim whose experiment was not run says so with the verdict "not run".
"""
from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from common.paths import PROFILES, Run, output_root

PAPERS = ("DenoisingAE", "KsparseAE", "VariationalAE", "SB_VAE", "BetaVAE")
VERDICTS = ("reproduced", "partly", "not reproduced", "not run")
#: paper: a statement of the paper, judged against it (the only kind the totals count);
#: sanity: a property that holds by construction (shown, counted apart);
#: addition: a measurement of ours that the paper does not make.
KINDS = ("paper", "sanity", "addition")
CONFIDENCE = {"P": "read in the paper or the authors' code", "R": "from a careful reimplementation or quote",
              "U": "unconfirmed, from recollection of the paper"}


@dataclass
class Claim:
    """One statement of the paper, the paper's value, ours, and the verdict.

    ``confidence`` is P, R or U (see ``CONFIDENCE``); an [U] number is reported as
    unconfirmed and never used as a hard bar.
    """

    id: str
    statement: str
    paper: str
    ours: str
    criterion: str
    verdict: str
    confidence: str = "R"
    #: One of ``KINDS``: only "paper" claims count in the scorecard's totals.
    kind: str = "paper"
    #: True when the criterion was changed after a result had been seen; the report says so.
    revised: bool = False

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.confidence not in CONFIDENCE:
            raise ValueError(f"claim {self.id}: confidence must be one of {sorted(CONFIDENCE)}")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: kind must be one of {KINDS}, got {self.kind!r}")


def verdict(ok: bool, partly: bool = False) -> str:
    """'reproduced' when ``ok``, else 'partly' when ``partly``, else 'not reproduced'."""
    return "reproduced" if ok else ("partly" if partly else "not reproduced")


def ranking_verdict(diff: float, se: float, z: float = 1.96) -> str:
    """The rule for "A beats B" claims, with ``diff`` the measured margin in the claimed direction.

    Reproduced when the margin exceeds its uncertainty (``diff > z * se``, a 95% test
    by default); partly when it points the claimed way but within the uncertainty;
    not reproduced when it points the other way (or is zero).
    """
    if not (se >= 0):
        raise ValueError(f"standard error must be >= 0, got {se}")
    return verdict(diff > z * se, diff > 0)


def level_verdict(ours: float, paper: float, tol: float, confidence: str = "R") -> str:
    """The rule for "the value is X" claims: within ``tol`` reproduced, within ``2 tol`` partly.

    A paper value marked [U] (unconfirmed) is never a hard bar: it gives at most "partly".
    """
    if confidence not in CONFIDENCE:
        raise ValueError(f"confidence must be one of {sorted(CONFIDENCE)}")
    gap = abs(ours - paper)
    result = verdict(gap <= tol, gap <= 2 * tol)
    return "partly" if confidence == "U" and result == "reproduced" else result


@dataclass
class Figure:
    """A saved figure (path relative to the run's output folder) and its caption."""

    path: str
    caption: str


@dataclass
class Results:
    paper: str
    title: str
    citation: str
    summary: str
    profile: str
    device: str
    seed: int
    runtime_s: float
    setup: dict[str, str] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    notebook: str = ""
    #: How each named model was obtained in this run: "loaded", "resumed" or "trained".
    training: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> "Results":
        d = json.loads(text)
        d["claims"] = [Claim(**c) for c in d.get("claims", [])]
        d["figures"] = [Figure(**f) for f in d.get("figures", [])]
        return cls(**d)


def library_versions() -> dict[str, str]:
    import matplotlib
    import numpy
    import sklearn
    import torch
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__,
            "machine": f"{platform.machine()} ({platform.processor() or 'unknown cpu'})"}


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    import os

    return f"cpu: {cpu_model()} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), since machines differ from run to run."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def finish(run: Run, title: str, citation: str, summary: str, claims: Sequence[Claim],
           figures: Sequence[Figure], setup: dict[str, str], deviations: Sequence[str],
           metrics: dict | None = None, name: str | None = None) -> Results:
    """Write ``results.json`` and the PDF report for ``run``; return the results.

    ``name`` (default: the paper's folder name) names the report and results files,
    for a folder with a second notebook.
    """
    name = name or run.paper
    results = Results(paper=run.paper, title=title, citation=citation, summary=summary, profile=run.profile,
                      device=device_name(run.device), seed=run.seed, runtime_s=round(run.elapsed_s, 1),
                      setup=dict(setup), claims=list(claims), figures=list(figures), deviations=list(deviations),
                      metrics=metrics or {}, versions=library_versions(), notebook=f"{name}.ipynb",
                      training=dict(run.status))
    for f in results.figures:
        if not (run.out / f.path).is_file():
            raise FileNotFoundError(f"figure {f.path} is not in {run.out}; save it before finishing")
    results_path = run.out / ("results.json" if name == run.paper else f"results_{name}.json")
    results_path.write_text(results.to_json())
    build_pdf(results, run.out, run.out / f"{name}.pdf")
    return results


def build_pdf(results: Results, base: Path, path: Path) -> Path:
    """The PDF report: title and citation, the claim, setup, figures, paper-vs-ours, deviations."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
    from xml.sax.saxutils import escape

    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=8, leading=10)
    p = lambda text, style=cell: Paragraph(escape(str(text)), style)  # noqa: E731
    story = [Paragraph(escape(results.title), styles["Title"]), p(results.citation, styles["Italic"]),
             Spacer(1, 8), Paragraph("What the paper claims", styles["Heading2"]), p(results.summary, styles["BodyText"])]

    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8"))])
    setup = {"profile": results.profile, "device": results.device, "seed": str(results.seed),
             "run time": f"{results.runtime_s / 60:.1f} min", **results.setup,
             **({"models": ", ".join(f"{k} {v}" for k, v in results.training.items())} if results.training else {}),
             "libraries": ", ".join(f"{k} {v}" for k, v in results.versions.items())}
    story += [Paragraph("Setup", styles["Heading2"]),
              Table([[p("setting"), p("value")]] + [[p(k), p(v)] for k, v in setup.items()],
                    colWidths=[4 * cm, 13 * cm], style=grid)]

    story += [Paragraph("Paper against ours", styles["Heading2"]),
              p("Confidence of the paper's value: " + "; ".join(f"[{k}] {v}" for k, v in CONFIDENCE.items())
                + ". Our values are measured by the notebook in the profile above.", styles["BodyText"]), Spacer(1, 4)]
    rows = [[p(h) for h in ("id", "claim", "paper", "ours", "criterion", "verdict")]]
    for c in results.claims:
        kind = "" if c.kind == "paper" else f" ({c.kind})"
        revised = " (criterion revised after seeing results)" if c.revised else ""
        rows.append([p(c.id + kind), p(c.statement), p(f"{c.paper} [{c.confidence}]"), p(c.ours),
                     p(c.criterion + revised), p(c.verdict)])
    story.append(Table(rows, colWidths=[1.6 * cm, 5.0 * cm, 2.6 * cm, 2.9 * cm, 3.2 * cm, 1.9 * cm],
                       style=grid, repeatRows=1))

    story.append(Paragraph("Deviations from the paper", styles["Heading2"]))
    for d in results.deviations or ["none stated"]:
        story.append(p("• " + d, styles["BodyText"]))

    story.append(Paragraph("Figures", styles["Heading2"]))
    for i, f in enumerate(results.figures, 1):
        img_path = base / f.path
        from PIL import Image as PILImage

        with PILImage.open(img_path) as im:
            w, h = im.size
        width = min(16 * cm, w / 150 * 2.54 * cm * 1.0)
        height = width * h / w
        if height > 20 * cm:
            width, height = width * 20 * cm / height, 20 * cm
        story += [Image(str(img_path), width=width, height=height), p(f"Figure {i}. {f.caption}", styles["Italic"]),
                  Spacer(1, 10)]

    path.parent.mkdir(parents=True, exist_ok=True)
    SimpleDocTemplate(str(path), pagesize=A4, title=results.title, leftMargin=2 * cm, rightMargin=2 * cm,
                      topMargin=1.8 * cm, bottomMargin=1.8 * cm).build(story)
    return path


def collect_results(profile: str = "standard") -> list[Results]:
    """Every ``results*.json`` in the paper folders where runs of ``profile`` write."""
    out = []
    for paper in PAPERS:
        for f in sorted(output_root(paper, profile).glob("results*.json")):
            out.append(Results.from_json(f.read_text()))
    return out


def build_scorecard(results: Sequence[Results], path: Path) -> Path:
    """Write ``SCORECARD.md``: every claim of every paper, with its verdict."""
    counts = {v: sum(c.verdict == v for r in results for c in r.claims) for v in VERDICTS}
    lines = ["# Scorecard", "",
             "Every claim of every paper, the paper's value beside ours as measured by the notebook. "
             "Generated by `python -m common.reproduce`; do not edit by hand.", "",
             "Totals: " + ", ".join(f"{n} {v}" for v, n in counts.items()), ""]
    by_paper: dict[str, list[Results]] = {}
    for r in results:
        by_paper.setdefault(r.paper, []).append(r)
    for paper in PAPERS:
        runs = by_paper.get(paper)
        lines.append(f"## {paper}")
        lines.append("")
        if not runs:
            lines += ["No results yet: this paper's notebook has not been written or run.", ""]
            continue
        for r in runs:
            lines += [f"**{r.title}** — `{r.notebook}`, profile `{r.profile}`, {r.device}, seed {r.seed}, "
                      f"{r.runtime_s / 60:.1f} min", "",
                      "| id | claim | paper | ours | verdict |", "|---|---|---|---|---|"]
            for c in r.claims:
                cells = [c.id, c.statement, f"{c.paper} [{c.confidence}]", c.ours, f"**{c.verdict}**"]
                lines.append("| " + " | ".join(s.replace("|", "/").replace("\n", " ") for s in cells) + " |")
            lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def scorecard_path(profile: str) -> Path:
    """Where the scorecard of ``profile`` runs goes: the top level, or build/smoke/ for smoke."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    return output_root(PAPERS[0], profile).parent / "SCORECARD.md"
