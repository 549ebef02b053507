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

from dataclasses import dataclass
from typing import Mapping, Sequence

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


def claim_counts(claims: Sequence[Claim]) -> dict[str, dict[str, int]]:
    """``counts[kind][verdict]``: how many claims of each kind got each verdict."""
    return {k: {v: sum(c.kind == k and c.verdict == v for c in claims) for v in VERDICTS} for k in KINDS}


def counts_text(counts: Mapping[str, int]) -> str:
    """One kind's ``claim_counts`` as text: "3 reproduced, 1 partly, 0 not reproduced, 2 not run"."""
    return ", ".join(f"{n} {v}" for v, n in counts.items())
