"""The PDF report of one notebook's results: the claims, the setup, paper against ours, the figures.

:func:`build_pdf` lays out a :class:`common.report.results.Results` for a reader: the
paper's claim, the setup (the run, the typed configuration as ``a.b`` keys, and what
each named model's training amounted to), every claim with the paper's value beside
ours, the deviations, and the figures. It is written atomically.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from xml.sax.saxutils import escape

from PIL import Image as PILImage

from common.paths import atomic_write
from common.report.claims import CONFIDENCE, claim_counts, counts_text, paper_cell, verdict_mark
from common.report.provenance import show_time

if TYPE_CHECKING:
    from common.report.results import Results

#: A caption that opens with the paper's own number: "Fig. 1, ...", "Fig. 3(g, h): ...", "Table 1: ...".
PAPER_REFERENCE = re.compile(r"^((?:Fig\.|Figure|Table)\s*\d+(?:\s*\([^)]*\))?)\s*[,:.]\s*")


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"vae": {"lr": 0.001}}`` as ``{"vae.lr": "0.001"}``: nested keys joined by dots, values as text."""
    out: dict[str, str] = {}
    for k, v in config.items():
        if isinstance(v, Mapping) and v:
            out.update(flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, str) else str(v)
    return out


def model_rows(models: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One row per named model of ``Results.models``, headed; best epochs count from 1, as the text does."""
    rows = [["model", "epochs", "examples seen", "share of reference", "best epoch", "stopped early", "seconds",
             "status", "converged"]]
    for name, m in models.items():
        best, seen, seconds = m.get("best_epoch"), m.get("examples_seen"), m.get("train_seconds")
        share = m.get("budget_share")
        rows.append([name, str(m.get("epochs", "")), "" if seen is None else f"{seen:,}",
                     "–" if share is None else f"{100 * share:.3g}% of {m['reference_examples']:,.0f}",
                     "-" if best is None else str(best + 1), "yes" if m.get("stopped_early") else "no",
                     "" if seconds is None else f"{seconds:.1f}", str(m.get("status", "")),
                     str(m.get("convergence", "")) + (f" ({100 * m['tail_improvement']:.1f}% in the last 20%)"
                                                      if m.get("tail_improvement") is not None else "")])
    return rows


def figure_caption(number: int, caption: str) -> str:
    """The caption under figure ``number``, numbered once: a leading "Fig. 1, " of the paper moves into the label.

    "Figure 2. Fig. 1, beta=1: ..." read as two numbers; "Figure 2 (the paper's Fig. 1). beta=1: ..." says whose
    each is.
    """
    m = PAPER_REFERENCE.match(caption)
    if m is None:
        return f"Figure {number}. {caption}"
    return f"Figure {number} (the paper's {m.group(1)}). {caption[m.end():]}"


def pdf_image_bytes(im: PILImage.Image, width_cm: float, dpi: int = 200) -> io.BytesIO:
    """``im`` encoded for a PDF page where it is printed ``width_cm`` wide.

    Downscaled to ``dpi`` at that size, since a plot saved at screen resolution would
    otherwise go into the PDF pixel for pixel. Photographs (many distinct colours, such
    as CelebA traversals) become JPEG: as PNG, a report with a dozen of them weighed
    over 10 MB. Line plots stay PNG, so lines and text stay sharp.
    """
    if im.mode in ("RGBA", "LA", "P"):   # transparency goes onto the white page, not black
        rgba = im.convert("RGBA")
        im = PILImage.new("RGB", rgba.size, "white")
        im.paste(rgba, mask=rgba.getchannel("A"))
    elif im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    max_w = round(width_cm / 2.54 * dpi)
    if im.width > max_w:
        im = im.resize((max_w, round(im.height * max_w / im.width)), PILImage.Resampling.LANCZOS)
    photo = im.getcolors(maxcolors=4096) is None
    out = io.BytesIO()
    im.save(out, format="JPEG" if photo else "PNG", **({"quality": 88} if photo else {"optimize": True}))
    out.seek(0)
    return out


def build_pdf(results: Results, base: Path, path: Path) -> Path:
    """The PDF report: title and citation, the claim, setup, paper-vs-ours, deviations, figures."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=8, leading=10)
    p = lambda text, style=cell: Paragraph(escape(str(text)), style)  # noqa: E731
    story = [Paragraph(escape(results.title), styles["Title"]), p(results.citation, styles["Italic"])]
    if results.dry_run:
        story += [Spacer(1, 8), p(f"DRY RUN: training capped at {results.dry_run['max_steps']} steps per model, "
                                  f"evaluation sizes at {results.dry_run['max_eval']}. No number in this report is "
                                  "a result; it only shows that every cell runs at this profile's shapes.",
                                  styles["Heading3"])]
    story += [Spacer(1, 8), Paragraph("What the paper claims", styles["Heading2"]),
              p(results.summary, styles["BodyText"])]

    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8"))])
    # The per-model table below says how each model was obtained; the list stays for results without one.
    listed = {"models": ", ".join(f"{k} {v}" for k, v in results.training.items())} \
        if results.training and not results.models else {}
    setup = {"profile": results.profile, "device": results.device, "seed": str(results.seed),
             "run time": f"{results.runtime_s / 60:.1f} min", "finished": show_time(results.finished_at),
             "git commit": results.commit or "unknown", **results.setup, **listed,
             "libraries": ", ".join(f"{k} {v}" for k, v in results.versions.items())}
    story += [Paragraph("Setup", styles["Heading2"]),
              Table([[p("setting"), p("value")]] + [[p(k), p(v)] for k, v in setup.items()],
                    colWidths=[4 * cm, 13 * cm], style=grid)]
    if results.config:
        story += [Paragraph("Configuration", styles["Heading3"]),
                  Table([[p("setting"), p("value")]] + [[p(k), p(v)] for k, v in flat_config(results.config).items()],
                        colWidths=[6 * cm, 11 * cm], style=grid, repeatRows=1)]
    if results.models:
        story += [Paragraph("Models", styles["Heading3"]),
                  Table([[p(v) for v in row] for row in model_rows(results.models)], style=grid, repeatRows=1,
                        colWidths=[w * cm for w in (2.9, 1.4, 1.9, 2.4, 1.3, 1.6, 1.6, 1.5, 2.4)]),
                  Spacer(1, 2), p("Epochs as trained (early stopping may end a model before its budget); the best "
                                  "epoch counts from 1 ('-': none was kept); seconds of training and validation; "
                                  "status: trained in this run, resumed from an unfinished checkpoint, loaded "
                                  "finished, or published (committed weights, common.weights); share of reference: examples seen over the reference budget (sources "
                                  "below); converged: early stopping fired, or the watched metric's best improved "
                                  "by under 0.5% over the last 20% of the epochs (common.run.convergence).", cell)]
        sources = dict.fromkeys(f"{m['reference_examples']:,.0f} examples: {m['reference_source']}"
                                for m in results.models.values() if m.get("reference_examples"))
        story += [p("Reference budgets: " + ("; ".join(sources) if sources else "none stated") + ".", cell)]

    story += [Paragraph("Paper against ours", styles["Heading2"]),
              p("Confidence of the paper's value: " + "; ".join(f"[{k}] {v}" for k, v in CONFIDENCE.items())
                + ". Our values are measured by the notebook in the profile above.", styles["BodyText"]), Spacer(1, 4)]
    rows = [[p(h) for h in ("id", "claim", "paper", "ours", "criterion", "verdict")]]
    ids = []
    for c in results.claims:
        ids.append(c.id + ("" if c.kind == "paper" else f" ({c.kind})"))
        revised = " (criterion revised after seeing results)" if c.revised else ""
        rows.append([p(ids[-1]), p(c.statement), p(paper_cell(c)), p(c.ours),
                     p(c.criterion + revised + (f" Budget (R9): {c.budget}." if c.budget else "")),
                     p(verdict_mark(c) + (" (revised)" if c.revised else ""))])
    # The id column is as wide as the longest word of an id (plus the cell's padding), so no id breaks mid-word.
    longest = max((stringWidth(w, cell.fontName, cell.fontSize) for i in ids for w in i.split()), default=0)
    id_width = min(max(1.6 * cm, longest + 13), 3.2 * cm)
    story.append(Table(rows, colWidths=[id_width, 6.6 * cm - id_width, 2.6 * cm, 2.9 * cm, 3.2 * cm, 1.9 * cm],
                       style=grid, repeatRows=1))
    counts = claim_counts(results.claims)
    decided, under = claim_counts(results.claims, False), claim_counts(results.claims, True)
    n_revised = sum(c.revised for c in results.claims)
    story += [Spacer(1, 4), p(
        f"Paper claims: {counts_text(counts['paper'])}; decided (every model behind them converged, rule R9): "
        f"{counts_text(decided['paper'])}; undertrained: {counts_text(under['paper'])}. Sanity checks (true by construction, counted apart): "
        f"{sum(counts['sanity'].values())}. Additions (ours, not in the paper): {sum(counts['addition'].values())}. "
        f"Criteria revised after seeing results: {n_revised}"
        + (f" ({', '.join(c.id for c in results.claims if c.revised)})" if n_revised else "") + ".",
        styles["BodyText"])]

    story.append(Paragraph("Deviations from the paper", styles["Heading2"]))
    for d in results.deviations or ["none stated"]:
        story.append(p("• " + d, styles["BodyText"]))

    story.append(Paragraph("Figures", styles["Heading2"]))
    for i, f in enumerate(results.figures, 1):
        with PILImage.open(base / f.path) as im:
            w, h = im.size
            # as large as the page frame allows (17 cm of A4 between the margins; 24 cm of its height,
            # leaving room for the caption), so that a tall traversal grid stays readable in print
            width = min(17 * cm, w / 150 * 2.54 * cm)
            height = width * h / w
            if height > 24 * cm:
                width, height = width * 24 * cm / height, 24 * cm
            image = pdf_image_bytes(im, width / cm)
        story += [Image(image, width=width, height=height), p(figure_caption(i, f.caption), styles["Italic"]),
                  Spacer(1, 10)]

    return atomic_write(path, lambda tmp: SimpleDocTemplate(
        str(tmp), pagesize=A4, title=results.title, leftMargin=2 * cm, rightMargin=2 * cm,
        topMargin=1.8 * cm, bottomMargin=1.8 * cm).build(story))
