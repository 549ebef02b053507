"""Run every paper notebook (or the ones named) with papermill, then rebuild the scorecard.

    python -m common.reproduce                       # all notebooks, standard profile
    python -m common.reproduce --profile paper       # the papers' own settings (GPU)
    python -m common.reproduce DenoisingAE/DenoisingAE.ipynb --profile smoke

``standard`` and ``paper`` runs execute each notebook in place, so the committed
notebook holds the outputs of the run that made its report. ``smoke`` runs write the
executed copies under ``build/smoke/`` and leave tracked files alone. Each notebook
runs with its own folder as the working directory. A failing notebook does not stop
the others; the exit status is non-zero if any failed.

Each notebook run is recorded, success or failure with its start and end times, in
``runs.json`` beside the scorecard. The scorecard counts only results written by a
successful run of this call (this "batch"); a notebook that failed or was not run keeps
its rows, marked, outside the totals (rule R8 in ``common.report``). To run the
notebooks one call at a time, pass ``--continue-batch`` to every call after the first:
it joins the batch of the last recorded run, so the scorecard counts them all.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from common.paths import PROFILE_ENV, PROFILES, REPO_ROOT, output_root
from common.report import (PAPERS, NotebookRun, build_scorecard, collect_results, read_runs, record_run, runs_path,
                           scorecard_path, utc_now)


def find_notebooks() -> list[Path]:
    """Every notebook in the paper folders, in the order of ``PAPERS``."""
    return [nb for paper in PAPERS for nb in sorted((REPO_ROOT / paper).glob("*.ipynb"))]


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
    target = path if profile != "smoke" else output_root(path.parent.name, profile) / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    before = os.environ.get(PROFILE_ENV)
    os.environ[PROFILE_ENV] = profile  # the kernel inherits this process's environment
    try:
        pm.execute_notebook(str(path), str(target), cwd=str(path.parent), kernel_name=kernel,
                            progress_bar=False, log_output=False)
    finally:
        if before is None:
            os.environ.pop(PROFILE_ENV, None)
        else:
            os.environ[PROFILE_ENV] = before
    nb = nbformat.read(target, as_version=4)
    kept = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    if len(kept) != len(nb.cells):
        nb.cells = kept
        nbformat.write(nb, target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m common.reproduce", description=__doc__.split("\n")[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all)")
    p.add_argument("--profile", default="standard", choices=PROFILES)
    p.add_argument("--continue-batch", action="store_true",
                   help="join the batch of the last recorded run instead of starting one (notebooks run one per call)")
    args = p.parse_args(argv)

    notebooks = args.notebooks or find_notebooks()
    missing = [str(n) for n in notebooks if not n.is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows, failed = [], 0
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
        shown = nb.resolve().relative_to(REPO_ROOT) if nb.resolve().is_relative_to(REPO_ROOT) else nb
        rows.append((str(shown), args.profile, status, (time.time() - start) / 60))
        print(f"    {status} ({rows[-1][3]:.1f} min)", flush=True)

    card = build_scorecard(collect_results(args.profile), scorecard_path(args.profile), read_runs(log), batch)
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'notebook':<{width}}  profile   minutes  status")
    for name, prof, status, minutes in rows:
        print(f"{name:<{width}}  {prof:<8}  {minutes:7.1f}  {status}")
    print(f"{'total':<{width}}  {'':<8}  {sum(r[3] for r in rows):7.1f}  {failed} failed of {len(rows)}")
    print(f"scorecard: {card}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
