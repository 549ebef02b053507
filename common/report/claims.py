"""Claims and the verdict rules: what a notebook states about the paper, and how it is judged.

A :class:`Claim` is one statement of the paper, the paper's value beside ours, the
criterion and the verdict. Notebooks :func:`record` each claim in the cell that
decides it, with a verdict computed by :func:`verdict`, :func:`ranking_verdict` or
:func:`level_verdict` from numbers the run measured; nothing here makes a number up.
A claim whose experiment was not run says so with the verdict "not run".

The verdict rules, one per kind of claim, follow (they are ``RULES``, also printed at
the top of ``SCORECARD.md``; cite them by number, e.g. "rule R3").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

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
    ("R4 level", "'The value is X' (rewritten 2026-12-04, one rule for every notebook): level_check(ours, paper, "
     "se_ours, se_paper). tol = max(2 x the combined standard error sqrt(se_ours^2 + se_paper^2), 5% of |paper|), "
     "unless the paper states its own interval, whose half-width is then tol. |ours - paper| <= tol reproduced, "
     "<= 2 tol partly, else not reproduced. Standard errors come from the data: binomial for an error rate, the "
     "importance-sampling spread for a likelihood, the spread over seeds where there are several; the paper's is 0 "
     "when it gives none. The criterion states tol and how it was made. A [U] paper value (unconfirmed) gives at "
     "most partly until the number is confirmed."),
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
    ("R9 budget", "Every trained model records the examples it saw, the reference budget (the paper's or its "
     "authors' code's, with the source), the share used, and whether it converged: early stopping fired, or its "
     "watched metric's best improved by under 0.5% over the last 20% of its epochs (common.run.convergence). A "
     "verdict is computed from the numbers as usual; if any model behind it had not converged, the verdict is "
     "marked undertrained, whatever its direction: an undertrained 'reproduced' ranking may not hold at "
     "convergence, an undertrained 'not reproduced' level may be reached with more training. The scorecard counts "
     "decided verdicts (every model behind them converged) apart from undertrained ones and shows the budget "
     "share beside each row. A claim names the models behind it (Claim.models); by default it is every model the "
     "run trained."),
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
    #: Names of the run's models whose training the verdict rests on (rule R9); None: every model the run
    #: trained; []: none (a definition or a closed form, which no budget changes).
    models: list[str] | None = None
    #: Set by rule R9 (:func:`apply_budget_rule`): some model behind the verdict had not converged.
    undertrained: bool = False
    #: Set by rule R9: the budget behind the verdict, e.g. "1.8% of the reference; 3 of 3 models still improving".
    budget: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.confidence not in CONFIDENCE:
            raise ValueError(f"claim {self.id}: confidence must be one of {sorted(CONFIDENCE)}")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: kind must be one of {KINDS}, got {self.kind!r}")


def record(claims: list[Claim], claim: Claim, models: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Append ``claim`` to a notebook's ``claims`` and print its verdict, beside the evidence.

    Notebooks call this in the cell right after the figure or number that decides the
    claim, so a reader sees each verdict where it is earned; ``finish`` then writes them
    all. Claim ids must be unique within a notebook. Given the run's ``models``
    (``run.models``), rule R9 is applied at once, so the printed verdict already says
    whether it is undertrained (``finish`` applies it to every claim in any case).
    Returns nothing, so a cell that ends in ``record(...)`` shows the printed verdict.
    """
    if any(c.id == claim.id for c in claims):
        raise ValueError(f"claim id {claim.id!r} is recorded twice")
    if models is not None:
        apply_budget_rule([claim], models)
    claims.append(claim)
    flag = ", criterion revised after seeing results" if claim.revised else ""
    budget = f"\n    budget: {claim.budget} (R9)" if claim.budget else ""
    print(f"[{claim.kind} claim {claim.id}] {verdict_mark(claim).upper()}{flag}: {claim.statement}\n"
          f"    paper: {claim.paper} [{claim.confidence}]\n    ours:  {claim.ours}\n    rule:  {claim.criterion}"
          f"{budget}")


def paper_cell(claim: Claim) -> str:
    """The paper's value with its confidence, as tables show it: "–" where the paper gives none (an addition),
    and the mark once when the text already ends in it (no "[U] [U]")."""
    text = claim.paper.strip()
    if text in ("", "-", "–", "—"):
        return "–"
    mark = f"[{claim.confidence}]"
    return text if text.endswith(mark) else f"{text} {mark}"


def verdict_mark(claim: Claim) -> str:
    """The verdict as a reader sees it: "not reproduced, undertrained" when rule R9 marked it."""
    return claim.verdict + (", undertrained" if claim.undertrained else "")


def apply_budget_rule(claims: Sequence[Claim], models: Mapping[str, Mapping[str, Any]]) -> None:
    """Rule R9: mark each claim whose verdict rests on a model that had not converged, and state its budget.

    ``models`` is ``Run.models`` (each with ``convergence`` and, where a reference is known,
    ``budget_share``). A claim's ``models`` names the models behind it; None means all of them.
    A claim that was not run, or rests on no model, is left decided. Naming a model the run does
    not have is an error (a typo would silently make a verdict look decided).
    """
    for c in claims:
        names = list(models) if c.models is None else list(c.models)
        unknown = [n for n in names if n not in models]
        if unknown:
            raise ValueError(f"claim {c.id}: models {unknown} were not trained in this run; "
                             f"known: {sorted(models)}")
        if c.verdict == "not run" or not names:
            c.undertrained, c.budget = False, ""
            continue
        behind = [n for n in names if models[n].get("convergence") != "converged"]
        shares = [models[n]["budget_share"] for n in names if models[n].get("budget_share") is not None]
        parts = []
        if shares:
            low, high = min(shares), max(shares)
            parts.append(f"{_share(low)} of the reference budget" if low == high or len(shares) == 1
                         else f"{_share(low)}-{_share(high)} of the reference budgets")
        n = len(names)
        parts.append(f"{len(behind)} of {n} models not converged" if behind
                     else ("converged" if n == 1 else f"all {n} models converged"))
        c.undertrained, c.budget = bool(behind), "; ".join(parts)


def _share(x: float) -> str:
    return f"{100 * x:.2g}%" if x < 0.1 else f"{100 * x:.0f}%"


@dataclass(frozen=True)
class LevelCheck:
    """A level claim judged by rule R4: its verdict, the tolerance and the criterion text that states it."""

    verdict: str
    tol: float
    gap: float
    text: str


def level_tolerance(paper: float, se_ours: float = 0.0, se_paper: float = 0.0,
                    interval: float | None = None, rel: float = 0.05) -> float:
    """Rule R4's tolerance: the paper's own interval half-width if it states one, else
    ``max(2 * sqrt(se_ours**2 + se_paper**2), rel * |paper|)``."""
    for name, v in (("se_ours", se_ours), ("se_paper", se_paper)):
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    if interval is not None:
        if not interval > 0:
            raise ValueError(f"the paper's interval half-width must be > 0, got {interval}")
        return float(interval)
    return max(2 * math.hypot(se_ours, se_paper), rel * abs(paper))


def level_check(ours: float, paper: float, se_ours: float, se_paper: float = 0.0, confidence: str = "R",
                interval: float | None = None, unit: str = "", digits: int = 2) -> LevelCheck:
    """Judge "the value is ``paper``" by rule R4 and write the criterion, e.g.
    "R4: |ours - paper| = 0.87 vs tol 0.28 = max(2 x se 0.14, 5% of 2.80)".

    ``se_ours`` comes from the data (binomial, importance-sampling spread, seeds); ``se_paper``
    is 0 when the paper gives none; ``interval`` is the paper's own half-width, if it states one.
    """
    if not (math.isfinite(ours) and math.isfinite(paper)):
        raise ValueError(f"level_check needs finite numbers, got ours={ours}, paper={paper}")
    tol = level_tolerance(paper, se_ours, se_paper, interval)
    gap = abs(ours - paper)
    f = lambda v: f"{v:.{digits}f}{unit}"  # noqa: E731
    if interval is not None:
        how = f"the paper's interval +-{f(interval)}"
    else:
        se = math.hypot(se_ours, se_paper)
        how = f"max(2 x se {f(se)}, 5% of {f(abs(paper))})"
    text = f"R4: |ours - paper| = {f(gap)} vs tol {f(tol)} = {how}; partly within 2 tol"
    if confidence == "U":
        text += "; [U] paper value: at most partly"
    return LevelCheck(level_verdict(ours, paper, tol, confidence), tol, gap, text)


def verdict(ok: bool, partly: bool = False) -> str:
    """'reproduced' when ``ok``, else 'partly' when ``partly``, else 'not reproduced'."""
    return "reproduced" if ok else ("partly" if partly else "not reproduced")


def weakest_verdict(*verdicts: str) -> str:
    """The weakest of several verdicts (reproduced > partly > not reproduced), for a claim that needs each of
    them; "not run" only when none was judged."""
    judged = [v for v in verdicts if v != "not run"]
    unknown = [v for v in judged if v not in VERDICTS]
    if unknown:
        raise ValueError(f"unknown verdicts {unknown}; choose from {VERDICTS}")
    return max(judged, key=VERDICTS.index) if judged else "not run"


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


def claim_counts(claims: Sequence[Claim], undertrained: bool | None = None) -> dict[str, dict[str, int]]:
    """``counts[kind][verdict]``: how many claims of each kind got each verdict.

    ``undertrained`` True or False counts only the claims rule R9 marked so, or left decided.
    """
    chosen = [c for c in claims if undertrained is None or c.undertrained == undertrained]
    return {k: {v: sum(c.kind == k and c.verdict == v for c in chosen) for v in VERDICTS} for k in KINDS}


def counts_text(counts: Mapping[str, int]) -> str:
    """One kind's ``claim_counts`` as text: "3 reproduced, 1 partly, 0 not reproduced, 2 not run"."""
    return ", ".join(f"{n} {v}" for v, n in counts.items())
