"""Results: what a notebook ran, on what, and every claim, written as ``results.json`` and a PDF.

Each notebook ends by building a :class:`Results` (what was run, on what, and every
claim of the paper with the paper's value beside ours) and calling :func:`finish`,
which writes ``results.json`` and ``<Paper>.pdf`` into the run's output folder. Both
are written atomically (a temporary file renamed over the target), so a kill never
leaves half a report; ``results.json``, what the scorecard reads, is written last.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Mapping, Sequence

from common import dryrun
from common.paths import atomic_write_text
from common.report.claims import Claim, apply_budget_rule
from common.report.pdf import build_pdf
from common.report.provenance import device_name, git_commit, library_versions, utc_now
from common.run import Run


@dataclass
class Figure:
    """A saved figure (path relative to the run's output folder) and its caption."""

    path: str
    caption: str


@dataclass
class Results:
    """Everything a notebook's run made, as written to ``results.json`` and shown in its PDF."""

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
    #: How each named model was obtained in this run: "loaded", "resumed", "trained" or "published".
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
    #: Per named model: epochs, examples seen, best epoch, early stop, training seconds, convergence, and the
    #: reference budget with its source and the share used (``Run.model_records``, rule R9).
    models: dict = field(default_factory=dict)
    #: True when ``finish`` applied rule R9 to the claims (files written before it existed read False, and the
    #: scorecard counts their claims as not assessed rather than as decided).
    budget_rule: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> "Results":
        """Read a results file; fields added since it was written take their defaults."""
        d = json.loads(text)
        # Rule R9 was applied if the claims carry its mark (files of the first R9 runs predate this flag).
        d.setdefault("budget_rule", any("undertrained" in c for c in d.get("claims", [])))
        d["claims"] = [Claim(**c) for c in d.get("claims", [])]
        d["figures"] = [Figure(**f) for f in d.get("figures", [])]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


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
    models = run.model_records()
    claims = list(claims)
    apply_budget_rule(claims, models)  # rule R9: a verdict resting on an unconverged model is marked undertrained
    results = Results(paper=run.paper, title=title, citation=citation, summary=summary, profile=run.profile,
                      device=device_name(run.device), seed=run.seed, runtime_s=round(run.elapsed_s, 1),
                      setup=dict(setup), claims=claims, figures=list(figures), deviations=list(deviations),
                      metrics=metrics or {}, versions=library_versions(), notebook=f"{name}.ipynb",
                      training=dict(run.status), commit=git_commit(), finished_at=utc_now(),
                      dry_run=dryrun.summary(), config=config_as_data(config),
                      models=models, budget_rule=True)
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
