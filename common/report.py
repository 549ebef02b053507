"""Results, PDF reports and the scorecard.

Each notebook ends by building a :class:`Results` (what was run, on what, and every
claim of the paper with the paper's value beside ours) and calling :func:`finish`,
which writes ``results.json`` and ``<Paper>.pdf`` into the run's output folder.
``build_scorecard`` gathers every paper's claims into ``SCORECARD.md``.

Values in a claim are measured by the notebook and passed in; nothing here makes a
number up. A claim whose experiment was not run says so with the verdict "not run".

Every file here is written atomically (a temporary file renamed over the target), so
a kill never leaves half a report. Each results file records when it was written and
at which git commit, and ``common.reproduce`` records whether each notebook's last run
succeeded, so the scorecard never shows a failed or stale run as if it were current.
The verdict rules, one per kind of claim, follow (they are ``RULES``, also printed at
the top of ``SCORECARD.md``; cite them by number, e.g. "rule R3").
"""
from __future__ import annotations

import io
import json
import platform
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image as PILImage

from common import dryrun
from common.paths import PROFILES, REPO_ROOT, atomic_write, atomic_write_text, output_root
from common.run import Run

PAPERS = ("DenoisingAE", "KsparseAE", "VariationalAE", "SB_VAE", "BetaVAE")
VERDICTS = ("reproduced", "partly", "not reproduced", "not run")
#: paper: a statement of the paper, judged against it (the only kind the totals count);
#: sanity: a property that holds by construction (shown, counted apart);
#: addition: a measurement of ours that the paper does not make.
KINDS = ("paper", "sanity", "addition")
CONFIDENCE = {"P": "read in the paper or the authors' code", "R": "from a careful reimplementation or quote",
              "U": "unconfirmed, from recollection of the paper"}

#: The verdict rules, one per kind of claim. Notebooks cite them by number in a criterion.
RULES = (
    ("R1 kinds", "A claim is kind='paper' (a statement of the paper, judged against it), 'sanity' (a property "
     "that holds by construction: IS >= bound in expectation, a noise's definition, a closed form against "
     "autograd) or 'addition' (a measurement of ours the paper does not make, such as a speed against other "
     "hardware). Totals count paper claims only; sanity checks and additions are listed and counted apart."),
    ("R2 measured", "Every verdict is computed by a criterion function (verdict, ranking_verdict, "
     "level_verdict) from numbers the run measured. A literal 'reproduced', 'partly' or 'not reproduced' is "
     "allowed only in a sanity check; 'not run' is literal, with the reason in 'ours'. Asserts guard "
     "plumbing (shapes, finite losses), never a claim: a claim that fails is recorded, and the report written."),
    ("R3 ranking", "'A beats B': ranking_verdict(diff, se) with diff the margin in the claimed direction. "
     "Reproduced when diff > 1.96 se (a 95% test), partly when diff > 0 but within it, else not reproduced. "
     "se comes from the spread over seeds or the binomial error of a test error; both sides get the same "
     "selection budget (seeds, noise levels, epochs)."),
    ("R4 level", "'The value is X': level_verdict(ours, paper, tol, confidence). |ours - paper| <= tol "
     "reproduced, <= 2 tol partly, else not reproduced. tol is stated in the criterion. A [U] paper value "
     "(unconfirmed) gives at most partly until the number is confirmed."),
    ("R5 overfitting", "'More X does not overfit more': the growth of the train-test gap of the bound, in nats "
     "per example, from the smallest setting to any larger one (never a percentage of a log-density, whose "
     "level depends on pixel scaling). Reproduced below 2 nats, partly below 5, else not reproduced."),
    ("R6 qualitative", "A figure's claim ('smooth', 'looks like digits') is judged by a statistic with a bar "
     "that a degenerate control fails (a collapsed or constant decoder, shuffled tiles); the control's value "
     "is reported beside ours. A bar every model passes decides nothing and makes the claim a sanity check."),
    ("R7 revised", "A criterion changed after a result was seen sets revised=True and says what it was before. "
     "The claim still counts by its kind, but the scorecard and the PDF flag it and the totals say how many."),
    ("R8 stale", "Only results written by a successful run of this batch of common.reproduce are counted. A "
     "notebook that failed, or was not run in this batch, keeps its rows, marked with the failure date or the "
     "age and profile of its results, and they leave the totals."),
)

__doc__ += "\n" + "\n".join(f"- **{name}**: {text}" for name, text in RULES) + "\n"


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


def record(claims: list[Claim], claim: Claim) -> None:
    """Append ``claim`` to a notebook's ``claims`` and print its verdict, beside the evidence.

    Notebooks call this in the cell right after the figure or number that decides the
    claim, so a reader sees each verdict where it is earned; ``finish`` then writes them
    all. Claim ids must be unique within a notebook. Returns nothing, so a cell that
    ends in ``record(...)`` shows the printed verdict and not the Claim's repr.
    """
    if any(c.id == claim.id for c in claims):
        raise ValueError(f"claim id {claim.id!r} is recorded twice")
    claims.append(claim)
    flag = ", criterion revised after seeing results" if claim.revised else ""
    print(f"[{claim.kind} claim {claim.id}] {claim.verdict.upper()}{flag}: {claim.statement}\n"
          f"    paper: {claim.paper} [{claim.confidence}]\n    ours:  {claim.ours}\n    rule:  {claim.criterion}")


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


def training_summary(training: dict[str, str]) -> str:
    """How many models a run loaded, resumed or trained, e.g. "84 models: 80 loaded, 4 trained".

    The scorecard shows this count; the per-model list stays in results.json and the PDF,
    since a notebook with dozens of named models would drown the table in names.
    """
    counts = Counter(training.values())
    noun = "model" if len(training) == 1 else "models"
    return f"{len(training)} {noun}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


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
    #: The git commit of the code that made these results ("+dirty": tracked .py files differed from it).
    commit: str = ""
    #: When ``finish`` wrote these results (ISO 8601, UTC); "" in files written before it was recorded.
    finished_at: str = ""
    #: Set only by a dry run (training or evaluation capped, ``common.dryrun``): its caps and timings.
    #: Such results are no measurement; the scorecard refuses them.
    dry_run: dict | None = None
    #: The run's typed configuration as data (every learning rate, epoch count, batch size, optimizer).
    config: dict = field(default_factory=dict)
    #: Per named model: epochs, examples seen, best epoch, early stop, training seconds (``Run.models``).
    models: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> "Results":
        """Read a results file; fields added since it was written take their defaults."""
        d = json.loads(text)
        d["claims"] = [Claim(**c) for c in d.get("claims", [])]
        d["figures"] = [Figure(**f) for f in d.get("figures", [])]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def utc_now() -> str:
    """The time now, ISO 8601 in UTC with milliseconds (sortable, and parsed by ``parse_time``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def parse_time(stamp: str) -> datetime | None:
    """A timestamp written by :func:`utc_now`, or None when empty or unreadable."""
    try:
        t = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def show_time(stamp: str) -> str:
    """``2026-11-22 18:40 UTC`` for a stored timestamp, "unknown date" when there is none."""
    t = parse_time(stamp)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if t else "unknown date"


def git_commit(root: Path = REPO_ROOT) -> str:
    """Short hash of HEAD, with "+dirty" when tracked Python files differ from it; "" outside git."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                  "*.py"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if changed else "")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on.

    A module already imported gives its ``__version__`` (torch's names its build, e.g.
    ``+cu130``); the others are read from the installed metadata rather than imported,
    which would cost seconds (scikit-learn) in a run that never used them.
    """
    import sys
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name, module in (("torch", "torch"), ("torchvision", "torchvision"), ("numpy", "numpy"),
                         ("scikit-learn", "sklearn"), ("matplotlib", "matplotlib")):
        try:
            out[name] = getattr(sys.modules.get(module), "__version__", None) or version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    out["machine"] = f"{platform.machine()} ({platform.processor() or 'unknown cpu'})"
    return out


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
           metrics: dict | None = None, name: str | None = None, config: Any = None) -> Results:
    """Write ``results.json`` and the PDF report for ``run``; return the results.

    ``config`` is the notebook's typed configuration: a dataclass (nested ones too) or a
    mapping of them; it is stored as plain data in ``results.json``.

    ``name`` (default: the paper's folder name) names the report and results files,
    for a folder with a second notebook.
    """
    name = name or run.paper
    results = Results(paper=run.paper, title=title, citation=citation, summary=summary, profile=run.profile,
                      device=device_name(run.device), seed=run.seed, runtime_s=round(run.elapsed_s, 1),
                      setup=dict(setup), claims=list(claims), figures=list(figures), deviations=list(deviations),
                      metrics=metrics or {}, versions=library_versions(), notebook=f"{name}.ipynb",
                      training=dict(run.status), commit=git_commit(), finished_at=utc_now(),
                      dry_run=dryrun.summary(), config=config_as_data(config),
                      models={k: dict(v) for k, v in run.models.items()})
    for f in results.figures:
        if not (run.out / f.path).is_file():
            raise FileNotFoundError(f"figure {f.path} is not in {run.out}; save it before finishing")
    results_path = run.out / ("results.json" if name == run.paper else f"results_{name}.json")
    # The PDF first: results.json is what the scorecard reads, so it is written last, once all is well.
    build_pdf(results, run.out, run.out / f"{name}.pdf")
    atomic_write_text(results_path, results.to_json())
    return results


def config_as_data(config: Any) -> dict:
    """A dataclass, or a mapping of dataclasses and plain values, as JSON-ready data (tuples become lists)."""
    def plain(v):
        if is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in fields(v)}
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    if config is None:
        return {}
    data = plain(config)
    if not isinstance(data, dict):
        raise TypeError(f"config must be a dataclass or a mapping, got {type(config).__name__}")
    return data


def claim_counts(claims: Sequence[Claim]) -> dict[str, dict[str, int]]:
    """``counts[kind][verdict]``: how many claims of each kind got each verdict."""
    return {k: {v: sum(c.kind == k and c.verdict == v for c in claims) for v in VERDICTS} for k in KINDS}


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {v}" for v, n in counts.items())


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
    story = [Paragraph(escape(results.title), styles["Title"]), p(results.citation, styles["Italic"])]
    if results.dry_run:
        story += [Spacer(1, 8), p(f"DRY RUN: training capped at {results.dry_run['max_steps']} steps per model, "
                                  f"evaluation sizes at {results.dry_run['max_eval']}. No number in this report is "
                                  "a result; it only shows that every cell runs at this profile's shapes.",
                                  styles["Heading3"])]
    story += [Spacer(1, 8), Paragraph("What the paper claims", styles["Heading2"]), p(results.summary, styles["BodyText"])]

    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8"))])
    setup = {"profile": results.profile, "device": results.device, "seed": str(results.seed),
             "run time": f"{results.runtime_s / 60:.1f} min", "finished": show_time(results.finished_at),
             "git commit": results.commit or "unknown", **results.setup,
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
                     p(c.criterion + revised), p(c.verdict + (" (revised)" if c.revised else ""))])
    story.append(Table(rows, colWidths=[1.6 * cm, 5.0 * cm, 2.6 * cm, 2.9 * cm, 3.2 * cm, 1.9 * cm],
                       style=grid, repeatRows=1))
    counts = claim_counts(results.claims)
    n_revised = sum(c.revised for c in results.claims)
    story += [Spacer(1, 4), p(
        f"Paper claims: {_counts_text(counts['paper'])}. Sanity checks (true by construction, counted apart): "
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
            width = min(16 * cm, w / 150 * 2.54 * cm * 1.0)
            height = width * h / w
            if height > 20 * cm:
                width, height = width * 20 * cm / height, 20 * cm
            image = pdf_image_bytes(im, width / cm)
        story += [Image(image, width=width, height=height), p(f"Figure {i}. {f.caption}", styles["Italic"]),
                  Spacer(1, 10)]

    return atomic_write(path, lambda tmp: SimpleDocTemplate(
        str(tmp), pagesize=A4, title=results.title, leftMargin=2 * cm, rightMargin=2 * cm,
        topMargin=1.8 * cm, bottomMargin=1.8 * cm).build(story))


def collect_results(profile: str = "standard", folder: Path | None = None) -> list[Results]:
    """Every ``results*.json`` in the paper folders where runs of ``profile`` write (or under ``folder``)."""
    out = []
    for paper in PAPERS:
        for f in sorted((folder / paper if folder else output_root(paper, profile)).glob("results*.json")):
            out.append(Results.from_json(f.read_text()))
    return out


@dataclass
class NotebookRun:
    """One notebook run by ``common.reproduce``: whether it succeeded, and when."""

    #: ``<paper folder>/<notebook file>``, the same key as ``Results.paper`` / ``Results.notebook``.
    notebook: str
    profile: str
    ok: bool
    started: str
    finished: str
    #: The last line of the error when the run failed.
    error: str = ""
    #: When the ``common.reproduce`` call that ran it started: runs of one call share it.
    batch: str = ""


def runs_path(profile: str) -> Path:
    """The log of notebook runs (the latest per notebook), beside the profile's scorecard."""
    return scorecard_path(profile).with_name("runs.json")


def read_runs(path: Path) -> dict[str, NotebookRun]:
    """The run log at ``path`` (empty when there is none or it cannot be read)."""
    try:
        data = json.loads(Path(path).read_text())
        return {k: NotebookRun(**v) for k, v in data.items()}
    except (OSError, ValueError, TypeError):
        return {}


def record_run(path: Path, run: NotebookRun) -> dict[str, NotebookRun]:
    """Add ``run`` to the log at ``path`` (replacing that notebook's earlier entry), atomically."""
    runs = read_runs(path)
    runs[run.notebook] = run
    atomic_write_text(path, json.dumps({k: asdict(v) for k, v in sorted(runs.items())}, indent=2))
    return runs


def _age(stamp: str, now: datetime) -> str:
    t = parse_time(stamp)
    if t is None:
        return "of unknown age"
    minutes = max(0.0, (now - t).total_seconds() / 60)
    if minutes < 120:
        return f"{minutes:.0f} min old"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} h old"
    return f"{minutes / 1440:.0f} days old"


def run_state(results: Results, runs: Mapping[str, NotebookRun] | None, batch: str | None,
              now: datetime | None = None) -> tuple[bool, str, str]:
    """(counted, short mark, why not) for one notebook's results under rule R8.

    ``runs`` is the run log and ``batch`` the ``common.reproduce`` call the scorecard is
    built for; with ``runs`` None the caller vouches that every result is current.
    """
    if runs is None:
        return True, "", ""
    now = now or datetime.now(timezone.utc)
    rec = runs.get(f"{results.paper}/{results.notebook}")
    written = f"results of {show_time(results.finished_at)} ({_age(results.finished_at, now)}), " \
              f"profile {results.profile}, commit {results.commit or 'unknown'}"
    if rec is None or rec.batch != batch:
        last = "" if rec is None else (f"; its last run failed {show_time(rec.finished)}" if not rec.ok
                                       else f"; its last run was {show_time(rec.finished)}")
        return False, "not run in this batch", f"not run in this batch: {written}{last}"
    if not rec.ok:
        return (False, f"run failed {show_time(rec.finished)}",
                f"run failed {show_time(rec.finished)} ({rec.error or 'error'}); shown: the earlier {written}")
    t_res, t_run = parse_time(results.finished_at), parse_time(rec.started)
    if t_res is None or t_run is None or t_res < t_run:
        return (False, "no new results",
                f"ran {show_time(rec.finished)} without writing new results; shown: the earlier {written}")
    return True, "", ""


def build_scorecard(results: Sequence[Results], path: Path, runs: Mapping[str, NotebookRun] | None = None,
                    batch: str | None = None, now: datetime | None = None) -> Path:
    """Write ``SCORECARD.md``: every claim of every paper, its kind and verdict, and the run behind it.

    With the run log ``runs`` and the ``batch`` it was built for (what ``common.reproduce``
    passes), results of notebooks that failed or were not run in this batch are shown,
    marked, and left out of the totals (rule R8). Totals count paper claims only; sanity
    checks and additions are counted apart, and revised criteria are flagged (R1, R7).
    """
    capped = [f"{r.paper}/{r.notebook}" for r in results if r.dry_run]
    if capped:
        raise ValueError(f"results made by a dry run (training capped, common.dryrun) cannot be scored: "
                         f"{', '.join(capped)}; run the notebooks without $AE_MAX_STEPS/$AE_MAX_EVAL")
    now = now or datetime.now(timezone.utc)
    states = [run_state(r, runs, batch, now) for r in results]
    counted = [c for r, (ok, _, _) in zip(results, states) if ok for c in r.claims]
    left_out = [(r, c) for r, (ok, _, _) in zip(results, states) if not ok for c in r.claims]
    counts = claim_counts(counted)
    revised = [c for c in counted if c.revised and c.kind == "paper"]
    failed_without_results = [] if runs is None else [
        rec for rec in runs.values()
        if rec.batch == batch and not rec.ok and not any(f"{r.paper}/{r.notebook}" == rec.notebook for r in results)]
    lines = ["# Scorecard", "",
             "Every claim of every paper, the paper's value beside ours as measured by the notebook. "
             "Generated by `python -m common.reproduce`; do not edit by hand.", "",
             f"Built {show_time(now.isoformat())}"
             + (f" for the batch started {show_time(batch)}" if batch else "") + ".", "",
             f"**Totals (paper claims of notebooks run successfully in this batch):** {_counts_text(counts['paper'])}.",
             "",
             f"- Sanity checks (true by construction; shown, not in the totals): {sum(counts['sanity'].values())} "
             f"({_counts_text(counts['sanity'])}).",
             f"- Additions (ours, not in the paper; not in the totals): {sum(counts['addition'].values())} "
             f"({_counts_text(counts['addition'])}).",
             f"- Paper claims judged by a criterion revised after seeing results (flagged *revised*): "
             f"{len(revised)}" + (f" ({', '.join(c.id for c in revised)})" if revised else "") + ".",
             f"- Left out (notebook failed or not run in this batch; rows marked below): {len(left_out)} claims "
             f"({sum(c.kind == 'paper' for _, c in left_out)} paper claims)"
             + (f"; notebooks that failed with no results at all: "
                f"{', '.join(f'`{rec.notebook}`' for rec in failed_without_results)}" if failed_without_results else "")
             + ".", "",
             "<details><summary>Verdict rules (cite them by number)</summary>", ""]
    lines += [f"- **{name}**: {text}" for name, text in RULES] + ["", "</details>", ""]
    by_paper: dict[str, list[tuple[Results, tuple[bool, str, str]]]] = {}
    for r, st in zip(results, states):
        by_paper.setdefault(r.paper, []).append((r, st))
    for paper in PAPERS:
        entries = by_paper.get(paper, [])
        failed_here = [rec for rec in failed_without_results if rec.notebook.split("/")[0] == paper]
        lines.append(f"## {paper}")
        lines.append("")
        for rec in failed_here:
            lines += [f"`{rec.notebook}`: **run failed {show_time(rec.finished)}** ({rec.error or 'error'}); "
                      f"no results.", ""]
        if not entries:
            if not failed_here:
                lines += ["No results yet: this paper's notebook has not been written or run.", ""]
            continue
        for r, (ok, short, why) in entries:
            lines += [f"**{r.title}** — `{r.notebook}`, profile `{r.profile}`, finished {show_time(r.finished_at)}, "
                      f"commit `{r.commit or 'unknown'}`, {r.device}, seed {r.seed}, {r.runtime_s / 60:.1f} min"
                      + (f"; {training_summary(r.training)}" if r.training else ""),
                      ""]
            if not ok:
                lines += [f"> **Not counted: {why}.**", ""]
            lines += ["| id | kind | claim | paper | ours | verdict |", "|---|---|---|---|---|---|"]
            for c in r.claims:
                mark = f"**{c.verdict}**" + (" *revised*" if c.revised else "")
                if not ok:
                    mark = f"{c.verdict}, not counted ({short})"
                cells = [c.id, c.kind, c.statement, f"{c.paper} [{c.confidence}]", c.ours, mark]
                lines.append("| " + " | ".join(s.replace("|", "/").replace("\n", " ") for s in cells) + " |")
            lines.append("")
    return atomic_write_text(path, "\n".join(lines))


def scorecard_path(profile: str) -> Path:
    """Where the scorecard of ``profile`` runs goes: the top level, or build/smoke/ for smoke."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    return output_root(PAPERS[0], profile).parent / "SCORECARD.md"
