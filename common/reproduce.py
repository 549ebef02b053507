"""Run every paper notebook (or the ones named) with papermill, then rebuild the scorecard.

    python -m common.reproduce                       # all notebooks, standard profile
    python -m common.reproduce --profile long        # the budget-bound notebooks, hours each on a CPU
    python -m common.reproduce --profile paper       # the papers' own settings (GPU)
    python -m common.reproduce DenoisingAE/DenoisingAE.ipynb --profile smoke

``standard`` runs execute each notebook in place, so the committed notebook holds the
outputs of the run that made its report. Other committed profiles (``long``, ``paper``) write the
executed copy beside their results, in ``<paper folder>/<profile>/``, so both runs stay
readable; the scorecard shows their verdicts in a column beside the standard ones.
``smoke`` runs write the executed copies under ``build/smoke/`` and leave tracked files alone. Each notebook
runs with its own folder as the working directory. A failing notebook does not stop
the others; the exit status is non-zero if any failed.

Each notebook run is recorded, success or failure with its start and end times, in
``runs.json`` beside the scorecard. The scorecard counts only results written by a
successful run of this call (this "batch"); a notebook that failed or was not run keeps
its rows, marked, outside the totals (rule R8 in ``common.report``). To run the
notebooks one call at a time, pass ``--continue-batch`` to every call after the first:
it joins the batch of the last recorded run, so the scorecard counts them all.

``--dry-run`` (``make paper-check``) runs the notebooks with training capped at
``--max-steps`` steps per model and evaluation sizes at ``--max-eval``
(:mod:`common.dryrun`), writes everything under the ignored ``build/paper-check/``,
builds no scorecard, and prints the estimated time of the full run instead, notebook
by notebook (also written to ``ESTIMATE.md`` there). ``--estimate`` prints
that table again from the last dry run's results (``make paper-estimate``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from common import dryrun
from common.paths import PROFILE_ENV, PROFILES, REPO_ROOT, atomic_write_text, dry_run_root, output_root
from common.report import (PAPERS, NotebookRun, build_scorecard, collect_results, read_runs, record_run,
                           runs_path, scorecard_path, utc_now)


@contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables for the duration of a block, then restore what was there."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: The notebooks that define a profile beyond the common ones, by profile: ``long`` exists only where a longer
#: CPU run can change a verdict (the budget-bound claims); elsewhere that profile is an error in the first cell.
#: KsparseAE's ``long`` trains each autoencoder to its validation optimum (early stopping, capped).
PROFILE_NOTEBOOKS: dict[str, tuple[str, ...]] = {
    "long": ("KsparseAE/KsparseAE.ipynb", "VariationalAE/VariationalAE.ipynb", "SB_VAE/SB_VAE.ipynb",
             "BetaVAE/BetaVAE_dSprites.ipynb"),
}


def find_notebooks(profile: str = "standard") -> list[Path]:
    """The notebooks that ``profile`` runs, in the order of ``PAPERS``: all of them, or its ``PROFILE_NOTEBOOKS``."""
    every = [nb for paper in PAPERS for nb in sorted((REPO_ROOT / paper).glob("*.ipynb"))]
    only = PROFILE_NOTEBOOKS.get(profile)
    return every if only is None else [nb for nb in every if f"{nb.parent.name}/{nb.name}" in only]


def run_notebook(path: Path, profile: str, kernel: str = "python3") -> Path:
    """Execute one notebook with papermill in ``profile``; return where the executed copy went.

    The profile reaches the kernel through ``$AE_PROFILE``, which the parameters cell
    reads, rather than through an injected parameters cell: a notebook saved in place
    with ``profile = "standard"`` injected would make every later nbval run (which
    cannot inject) silently run that profile instead of the one CI asks for.
    """
    import nbformat
    import papermill as pm

    path = path.resolve()
    # Only standard runs replace the committed notebook; smoke and dry runs never touch tracked files.
    in_place = profile == "standard" and not dryrun.active()
    target = path if in_place else output_root(path.parent.name, profile) / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    from common.train import TEXT_PROGRESS_ENV

    # The kernel inherits this process's environment: the profile, and text progress bars
    # (a widget's final state is not saved, so a saved widget reads "0/N" for ever).
    with _environment({PROFILE_ENV: profile, TEXT_PROGRESS_ENV: "1"}):
        pm.execute_notebook(str(path), str(target), cwd=str(path.parent), kernel_name=kernel,
                            progress_bar=False, log_output=False)
    nb = nbformat.read(target, as_version=4)
    kept = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    # papermill copies the input's metadata: widget state saved by an interactive session would ride along
    # for ever, showing bars frozen mid-way ("99%") that this run never drew
    if len(kept) != len(nb.cells) or "widgets" in nb.metadata:
        nb.cells = kept
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m common.reproduce", description=__doc__.split("\n")[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all)")
    p.add_argument("--profile", default="standard", choices=PROFILES)
    p.add_argument("--continue-batch", action="store_true",
                   help="join the batch of the last recorded run instead of starting one (notebooks run one per call)")
    p.add_argument("--dry-run", action="store_true",
                   help="cap training and evaluation, write under build/paper-check/, print the full run's time estimate")
    p.add_argument("--max-steps", type=int, default=60,
                   help="with --dry-run: optimizer steps per model, over at most 3 epochs (default 60)")
    p.add_argument("--max-eval", type=int, default=200,
                   help="with --dry-run: cap on evaluation sizes and iterations (default 200)")
    p.add_argument("--estimate", action="store_true", help="print the time estimate of the last dry run and stop")
    args = p.parse_args(argv)
    if args.estimate:
        return print_estimate(args.profile)
    if args.dry_run:
        if args.max_steps < 1 or args.max_eval < 1:
            p.error("--max-steps and --max-eval must be positive")
        caps = {dryrun.MAX_STEPS_ENV: str(args.max_steps), dryrun.MAX_EVAL_ENV: str(args.max_eval)}
        with _environment(caps):
            return _run(args)
    if dryrun.active():
        p.error(f"${dryrun.MAX_STEPS_ENV} or ${dryrun.MAX_EVAL_ENV} is set: unset them, or pass --dry-run")
    return _run(args)


def rebuild_scorecard(profile: str, batch: str) -> Path:
    """Rebuild the scorecard after a run of ``profile``: smoke's own, or the committed one.

    The committed scorecard counts the standard batch (rule R8) and shows, beside each claim,
    the verdict of every other committed profile's latest results (``long``, ``paper``), whichever
    profile just ran; ``batch`` is that run's, and the standard batch is the latest recorded.
    """
    if profile == "smoke":
        return build_scorecard(collect_results("smoke"), scorecard_path("smoke"), read_runs(runs_path("smoke")), batch)
    standard_runs = read_runs(runs_path("standard"))
    standard_batch = batch if profile == "standard" else max(
        (rec.batch for rec in standard_runs.values() if rec.batch), default=None)
    others = {p: collect_results(p) for p in PROFILES if p not in ("smoke", "standard")}
    return build_scorecard(collect_results("standard"), scorecard_path("standard"), standard_runs, standard_batch,
                           others=others)


def print_estimate(profile: str, notebooks: Sequence[str] | None = None) -> int:
    """Print (and write to ``ESTIMATE.md`` beside them) the time estimate from the dry runs' results.

    ``notebooks`` (``<paper folder>/<file>`` keys) limits it to those, e.g. the ones a dry run just ran.
    """
    folder = dry_run_root()
    results = [r for r in collect_results(profile, folder) if r.profile == profile and r.dry_run
               and (notebooks is None or f"{r.paper}/{r.notebook}" in notebooks)]
    if not results:
        print(f"error: no dry-run results of profile {profile!r} in {folder}; run `make paper-check` first",
              file=sys.stderr)
        return 2
    table = dryrun.estimate_table(results, results[0].device, profile)
    atomic_write_text(folder / "ESTIMATE.md", table + "\n")
    print(table)
    return 0


def _run(args: argparse.Namespace) -> int:
    notebooks = args.notebooks or find_notebooks(args.profile)
    missing = [str(n) for n in notebooks if not n.is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows, failed, ran = [], 0, []
    log = runs_path(args.profile)
    earlier = [rec.batch for rec in read_runs(log).values() if rec.batch]
    batch = max(earlier) if args.continue_batch and earlier else utc_now()
    for nb in notebooks:
        start, started = time.time(), utc_now()
        print(f"[{args.profile}] {nb} ...", flush=True)
        error = ""
        try:
            run_notebook(nb, args.profile)
            status = "ok"
        except Exception as e:  # keep going; report at the end
            failed += 1
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
            status = f"FAILED: {error}"
        key = f"{nb.resolve().parent.name}/{nb.name}"  # what results.json names: paper folder / notebook
        record_run(log, NotebookRun(key, args.profile, not error, started, utc_now(), error[:300], batch))
        ran.append((key, not error))
        shown = nb.resolve().relative_to(REPO_ROOT) if nb.resolve().is_relative_to(REPO_ROOT) else nb
        rows.append((str(shown), args.profile, status, (time.time() - start) / 60))
        print(f"    {status} ({rows[-1][3]:.1f} min)", flush=True)

    card = None
    if not dryrun.active():
        card = rebuild_scorecard(args.profile, batch)
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'notebook':<{width}}  profile   minutes  status")
    for name, prof, status, minutes in rows:
        print(f"{name:<{width}}  {prof:<8}  {minutes:7.1f}  {status}")
    print(f"{'total':<{width}}  {'':<8}  {sum(r[3] for r in rows):7.1f}  {failed} failed of {len(rows)}")
    if card is not None:
        print(f"scorecard: {card}")
    else:
        print(f"dry run: no scorecard (nothing here is a result); outputs in {scorecard_path(args.profile).parent}\n")
        print_estimate(args.profile, [key for key, ok in ran if ok])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
