"""The scorecard: every paper's claims in ``SCORECARD.md``, and the log of notebook runs behind it.

``build_scorecard`` gathers every paper's claims into ``SCORECARD.md``. ``common.reproduce``
records whether each notebook's last run succeeded, and when, in ``runs.json``
(:func:`record_run`), so the scorecard never shows a failed or stale run as if it were
current (rule R8 of ``common.report.claims.RULES``). Both files are written atomically.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from common.paths import PROFILES, atomic_write_text, output_root
from common.report.claims import RULES, claim_counts, counts_text, paper_cell, verdict_mark
from common.report.provenance import parse_time, show_time
from common.report.results import Results

PAPERS = ("DenoisingAE", "KsparseAE", "VariationalAE", "SB_VAE", "BetaVAE")


def training_summary(training: dict[str, str]) -> str:
    """How many models a run loaded, resumed or trained, e.g. "84 models: 80 loaded, 4 trained".

    The scorecard shows this count; the per-model list stays in results.json and the PDF,
    since a notebook with dozens of named models would drown the table in names.
    """
    counts = Counter(training.values())
    noun = "model" if len(training) == 1 else "models"
    return f"{len(training)} {noun}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


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
    """The log of notebook runs (the latest per notebook), beside the profile's scorecard: ``runs.json`` for
    standard (and smoke, in its own folder), ``runs_<profile>.json`` for the other committed profiles."""
    name = "runs.json" if profile in ("smoke", "standard") else f"runs_{profile}.json"
    return scorecard_path(profile).with_name(name)


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
                    batch: str | None = None, now: datetime | None = None,
                    others: Mapping[str, Sequence[Results]] | None = None) -> Path:
    """Write ``SCORECARD.md``: every claim of every paper, its kind and verdict, and the run behind it.

    With the run log ``runs`` and the ``batch`` it was built for (what ``common.reproduce``
    passes), results of notebooks that failed or were not run in this batch are shown,
    marked, and left out of the totals (rule R8). Totals count paper claims only; sanity
    checks and additions are counted apart, and revised criteria are flagged (R1, R7).

    ``others`` maps another committed profile (``paper``) to its latest results: each claim gets a
    column with that profile's verdict and budget where a run of it exists, each notebook a line
    naming that run, and each profile its own totals (those runs are not part of the batch).
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
    # Rule R9 needs results written since it exists (Results.budget_rule); older files' claims are "not assessed".
    assessed = [c for r, (ok, _, _) in zip(results, states) if ok and r.budget_rule for c in r.claims]
    n_unassessed = sum(c.kind == "paper" for c in counted) - sum(c.kind == "paper" for c in assessed)
    judged = [c for c in assessed if c.verdict != "not run"]
    decided, undertrained = claim_counts(judged, undertrained=False), claim_counts(judged, undertrained=True)
    judged_text = lambda counts: ", ".join(f"{n} {v}" for v, n in counts.items() if v != "not run")  # noqa: E731
    revised = [c for c in counted if c.revised and c.kind == "paper"]
    failed_without_results = [] if runs is None else [
        rec for rec in runs.values()
        if rec.batch == batch and not rec.ok and not any(f"{r.paper}/{r.notebook}" == rec.notebook for r in results)]
    lines = ["# Scorecard", "",
             "Every claim of every paper, the paper's value beside ours as measured by the notebook. "
             "Generated by `python -m common.reproduce`; do not edit by hand.", "",
             f"Built {show_time(now.isoformat())}"
             + (f" for the batch started {show_time(batch)}" if batch else "") + ".", "",
             f"**Totals (paper claims of notebooks run successfully in this batch):** {counts_text(counts['paper'])}.",
             "",
             f"- Decided (every model behind the verdict converged, rule R9): {judged_text(decided['paper'])}.",
             f"- Undertrained (some model behind the verdict had not converged, still improving or too short to "
             f"tell, when its budget ran out, rule R9; the verdict may change with more training): "
             f"{judged_text(undertrained['paper'])}."
             + (f" Not assessed (results written before rule R9): {n_unassessed} paper claims." if n_unassessed
                else ""),
             f"- Sanity checks (true by construction; shown, not in the totals): {sum(counts['sanity'].values())} "
             f"({counts_text(counts['sanity'])}).",
             f"- Additions (ours, not in the paper; not in the totals): {sum(counts['addition'].values())} "
             f"({counts_text(counts['addition'])}).",
             f"- Paper claims judged by a criterion revised after seeing results (flagged *revised*): "
             f"{len(revised)}" + (f" ({', '.join(c.id for c in revised)})" if revised else "") + ".",
             f"- Left out (notebook failed or not run in this batch; rows marked below): {len(left_out)} claims "
             f"({sum(c.kind == 'paper' for _, c in left_out)} paper claims)"
             + (f"; notebooks that failed with no results at all: "
                f"{', '.join(f'`{rec.notebook}`' for rec in failed_without_results)}" if failed_without_results else "")
             + ".", "",
             ]
    others = {p: list(rs) for p, rs in (others or {}).items() if rs}
    for prof, rs in others.items():
        oc = [c for r in rs for c in r.claims]
        lines.append(f"- Profile `{prof}` ({len(rs)} notebook run{'s' if len(rs) != 1 else ''}, its own column "
                     f"below, not in the totals above): {counts_text(claim_counts(oc)['paper'])}; decided "
                     f"{counts_text(claim_counts(oc, False)['paper'])}; undertrained "
                     f"{counts_text(claim_counts(oc, True)['paper'])}.")
    lines += ["", "<details><summary>Verdict rules (cite them by number)</summary>", ""]
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
            twins = {prof: next((o for o in rs if o.paper == r.paper and o.notebook == r.notebook), None)
                     for prof, rs in others.items()}
            twins = {prof: o for prof, o in twins.items() if o is not None}
            for prof, o in twins.items():
                lines += [f"Profile `{prof}`: finished {show_time(o.finished_at)}, commit `{o.commit or 'unknown'}`, "
                          f"{o.device}, {o.runtime_s / 60:.1f} min" + (f"; {training_summary(o.training)}"
                                                                       if o.training else ""), ""]
            head = "| id | kind | claim | paper | ours | verdict | budget (R9) |" + "".join(f" {p} |" for p in twins)
            lines += [head, "|---" * (7 + len(twins)) + "|"]
            for c in r.claims:
                mark = f"**{c.verdict}**" + (", *undertrained*" if c.undertrained else "") \
                    + (" *revised*" if c.revised else "")
                if not ok:
                    mark = f"{verdict_mark(c)}, not counted ({short})"
                cells = [c.id, c.kind, c.statement, paper_cell(c), c.ours, mark, c.budget or "–"]
                for o in twins.values():
                    oc = next((x for x in o.claims if x.id == c.id), None)
                    cells.append("–" if oc is None else f"{verdict_mark(oc)}: {oc.ours}"
                                 + (f" ({oc.budget})" if oc.budget else ""))
                lines.append("| " + " | ".join(s.replace("|", "/").replace("\n", " ") for s in cells) + " |")
            lines.append("")
    return atomic_write_text(path, "\n".join(lines))


def scorecard_path(profile: str) -> Path:
    """Where the scorecard of ``profile`` runs goes: the top level (one for every committed profile, standard
    counted and the others in columns beside it), or build/smoke/ for smoke."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    return output_root(PAPERS[0], "smoke" if profile == "smoke" else "standard").parent / "SCORECARD.md"
