"""The committed notebooks: what nbval and papermill need, and outputs of a real run."""
from __future__ import annotations

import ast
import json
import re
import subprocess

import nbformat
import pytest

from common.paths import REPO_ROOT
from common.reproduce import find_notebooks


def _committed(paths):
    """The notebooks git tracks (others in the checkout are work in progress); all of them outside git."""
    try:
        listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "--", "*.ipynb"], capture_output=True,
                                text=True, timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return paths
    tracked = {(REPO_ROOT / p).resolve() for p in listed}
    return [p for p in paths if p.resolve() in tracked]


NOTEBOOKS = _committed(find_notebooks())


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_is_runnable_and_committed_from_a_real_run(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    params = [c for c, t in zip(nb.cells, tags) if "parameters" in t]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert 'os.environ.get("AE_PROFILE", "standard")' in params[0].source, "nbval picks the profile by $AE_PROFILE"
    assert not any("injected-parameters" in t for t in tags), "an injected cell would override $AE_PROFILE"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o.output_type != "error" for c in code for o in c.outputs)
    assert sum(bool(c.outputs) for c in code) >= len(code) // 2, "commit the outputs of a run"
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs), "figures are drawn inline"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_report_comes_from_standard_or_paper(path):
    name = path.stem
    results = path.parent / ("results.json" if name == path.parent.name else f"results_{name}.json")
    data = json.loads(results.read_text())
    assert data["profile"] in ("standard", "paper")
    assert (path.parent / f"{name}.pdf").is_file()
    assert data["claims"] and all(c["ours"] for c in data["claims"])


# ---------------------------------------------------------------------------
# Rule R2 (common.report.RULES): no literal verdicts, except in sanity checks
# ---------------------------------------------------------------------------
LITERAL_VERDICTS = {"reproduced", "partly", "not reproduced"}  # "not run" is literal by nature
CRITERIA = {"verdict", "ranking_verdict", "level_verdict"}
#: Claim's positional fields: id, statement, paper, ours, criterion, verdict, confidence, kind, revised.
VERDICT_ARG, KIND_ARG = 5, 7


def _called(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _is_literal(expr: ast.AST, aliases: dict[str, ast.AST], depth: int = 0) -> bool:
    """Whether a verdict expression can only come out as written: a literal verdict in any branch, a
    criterion applied to constants only (``verdict(True)``), or a name assigned such an expression."""
    if depth > 10:
        return False
    if isinstance(expr, ast.Constant):
        return expr.value in LITERAL_VERDICTS
    if isinstance(expr, ast.IfExp):
        return _is_literal(expr.body, aliases, depth + 1) or _is_literal(expr.orelse, aliases, depth + 1)
    if isinstance(expr, ast.Call) and _called(expr.func) in CRITERIA:
        args = list(expr.args) + [k.value for k in expr.keywords]
        return bool(args) and all(isinstance(a, ast.Constant) for a in args)
    if isinstance(expr, ast.Name) and expr.id in aliases:
        return _is_literal(aliases[expr.id], aliases, depth + 1)
    return False


def literal_verdicts(source: str) -> list[str]:
    """Claims in ``source`` whose verdict is literal (see ``_is_literal``) and whose kind is not "sanity".

    Looks at ``Claim(...)`` calls and at any call that sets ``verdict=`` (``dataclasses.replace``).
    """
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]  # IPython magics
    source = "\n".join(lines)
    tree = ast.parse(source)
    aliases = {t.id: node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
               for t in node.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        is_claim = _called(node.func) == "Claim"
        verdict = keywords.get("verdict", node.args[VERDICT_ARG] if is_claim and len(node.args) > VERDICT_ARG else None)
        kind = keywords.get("kind", node.args[KIND_ARG] if is_claim and len(node.args) > KIND_ARG else None)
        if verdict is None or not _is_literal(verdict, aliases):
            continue
        if isinstance(kind, ast.Constant) and kind.value == "sanity":
            continue
        found.append(f"line {node.lineno}: {(ast.get_source_segment(source, node) or '')[:120]}")
    return found


def test_the_literal_verdict_scan_finds_what_it_should():
    ok = """
from common.report import Claim, verdict, ranking_verdict
Claim("a", "s", "p", "o", "c", verdict(x > 1, x > 0.5))
Claim("b", "s", "p", "o", "c", "not run" if smoke else ranking_verdict(d, se))
Claim("c", "s", "p", "o", "c", "reproduced", "R", "sanity")
Claim("d", "s", "p", "o", "c", verdict="reproduced", kind="sanity")
Claim("e", "s", "p", "o", "c", "not run", "U")
"""
    assert literal_verdicts(ok) == []
    bad = """
%matplotlib inline
v = "partly"
Claim("a", "s", "p", "o", "c", "reproduced", "R")
Claim("b", "s", "p", "o", "c", "not run" if smoke else "reproduced")
report.Claim("c", "s", "p", "o", "c", verdict(True), kind="paper")
Claim("d", "s", "p", "o", "c", v)
dataclasses.replace(claim, verdict="not reproduced")
Claim("f", "s", "p", "o", "c", "reproduced", "R", "addition")
"""
    found = literal_verdicts(bad)
    assert [f.split(":")[0] for f in found] == [f"line {i}" for i in (3, 4, 5, 6, 7, 8)], found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_verdicts_come_from_criteria(path):
    """Rule R2: every verdict is computed from measured numbers; a literal one only in a sanity check."""
    nb = nbformat.read(path, as_version=4)
    found = literal_verdicts("\n".join(c.source for c in nb.cells if c.cell_type == "code"))
    assert not found, "literal verdicts outside sanity checks (lines of the joined code cells):\n" + "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_claims_are_recorded_beside_their_evidence(path):
    """Style: each claim sits next to the figure or number that decides it, not in one long cell at the end."""
    nb = nbformat.read(path, as_version=4)
    per_cell = [c.source.count("Claim(") for c in nb.cells if c.cell_type == "code"]
    per_cell = [n for n in per_cell if n]
    assert max(per_cell, default=0) <= 5, f"a cell builds {max(per_cell)} claims; record each beside its evidence"
    if sum(per_cell) >= 4:
        assert len(per_cell) >= 3, f"all {sum(per_cell)} claims sit in {len(per_cell)} cell(s)"
    long = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and len(c.source.splitlines()) > 60]
    assert not long, f"cells {long} are over 60 lines; a reader wants short cells"


# ---------------------------------------------------------------------------
# No helper defined in a notebook reads a notebook global (issue 16): it takes what it needs
# as arguments, so running cells out of order cannot change what it computes.
# ---------------------------------------------------------------------------
def _bound_in(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Every name a function binds itself: parameters, assignments, loop and comprehension targets, nested defs."""
    a = fn.args
    names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not fn:
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(al.asname or al.name).split(".")[0] for al in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def notebook_global_reads(source: str) -> list[str]:
    """``"helper reads x"`` for each notebook global (not an import, function or class) a notebook function reads.

    Named functions (``def``) only: an inline lambda handed straight to a call is an
    expression of the cell it is written in, not a helper that other cells reuse.
    """
    import builtins

    tree = ast.parse(source)
    imported, defined, assigned = set(), set(), set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(al.asname or al.name).split(".")[0] for al in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assigned.add(node.id)
    allowed = imported | defined | set(dir(builtins))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bound = _bound_in(node)
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in bound
                        and sub.id not in allowed and sub.id in assigned - bound):
                    found.append(f"{node.name} reads {sub.id}")
    return sorted(set(found))


def test_the_global_reads_check_finds_a_global_and_passes_arguments():
    src = "import math\nscale = 2\ndef f(x):\n    return math.sqrt(x) * scale\ndef g(x, scale):\n    return x * scale\n"
    assert notebook_global_reads(src) == ["f reads scale"]
    assert notebook_global_reads("n = 3\ndef h(r):\n    k = [n for n in range(r)]\n    return k\n") == []
    assert notebook_global_reads("n = 3\ndef h(r):\n    def inner():\n        return n\n    return inner\n") \
        == ["h reads n", "inner reads n"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_notebook_helper_reads_a_notebook_global(path):
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and not c.source.lstrip().startswith("%"))
    assert notebook_global_reads(source) == [], "pass these as arguments (or move the helper to the paper's experiment.py)"


# ---------------------------------------------------------------------------
# Committed runs of the other profiles (<Paper>/long/, <Paper>/paper/): executed copies with their reports
# ---------------------------------------------------------------------------
OTHER_RUNS = _committed(sorted(p for prof in ("long", "paper") for p in REPO_ROOT.glob(f"*/{prof}/*.ipynb")))


@pytest.mark.parametrize("path", OTHER_RUNS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_a_committed_run_of_another_profile_is_complete_and_says_its_profile(path):
    profile, name = path.parent.name, path.stem
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3" and "widgets" not in nb.metadata
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o.output_type != "error" for c in code for o in c.outputs)
    assert sum(bool(c.outputs) for c in code) >= len(code) // 2, "commit the outputs of the run"
    results = path.parent / ("results.json" if name == path.parent.parent.name else f"results_{name}.json")
    data = json.loads(results.read_text())
    assert data["profile"] == profile and not data.get("dry_run")
    assert "dirty" not in (data.get("commit") or "dirty"), "run the batch on a clean commit"
    assert (path.parent / f"{name}.pdf").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_notebook_code_line_runs_past_100_characters(path):
    """A reader in JupyterLab at a normal width should not scroll sideways (issue 21)."""
    nb = nbformat.read(path, as_version=4)
    long = [(i, len(line)) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for line in c.source.splitlines() if len(line) > 100]
    assert not long, f"(cell index, length) of code lines over 100 characters: {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_notebook_parameter_switches_tensorboard_logging_on(path):
    nb = nbformat.read(path, as_version=4)
    params = [c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and re.search(r"^tensorboard = ", params[0], re.M), \
        "the parameters cell has no `tensorboard` parameter (papermill -p tensorboard True)"
    runs = [c.source for c in nb.cells if c.cell_type == "code" and re.search(r"\bRun\(", c.source)]
    assert any(re.search(r"\bRun\(.*?\btensorboard=tensorboard\b", src, re.S) for src in runs), \
        "the notebook's Run(...) does not receive the `tensorboard` parameter"
