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

One module per concern, all re-exported here (``from common.report import finish``):

- ``claims``: :class:`Claim`, :func:`record`, the verdict functions and the verdict
  rules ``RULES`` (R1-R9, written out in that module's docstring; cite them by number);
- ``results``: :class:`Results`, :class:`Figure`, :func:`finish`, :func:`config_as_data`;
- ``provenance``: when, at which commit, on which device and libraries;
- ``pdf``: :func:`build_pdf`, the report a reader opens;
- ``scorecard``: :func:`build_scorecard` and the log of notebook runs (rule R8).
"""
from common.report.claims import (CONFIDENCE, KINDS, RULES, VERDICTS, Claim, LevelCheck, apply_budget_rule,
                                  claim_counts, counts_text, level_check, level_tolerance, level_verdict, paper_cell,
                                  ranking_verdict, record, verdict, verdict_mark, weakest_verdict)
from common.report.pdf import build_pdf, figure_caption, flat_config, pdf_image_bytes
from common.report.provenance import (cpu_model, device_name, git_commit, library_versions, parse_time,
                                      show_time, utc_now)
from common.report.results import Figure, Results, config_as_data, finish
from common.report.scorecard import (PAPERS, NotebookRun, build_scorecard, collect_results, read_runs,
                                     record_run, run_state, runs_path, scorecard_path, training_summary)
