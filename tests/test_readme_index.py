"""The README's gallery and figure index point at the code cells that really make each plot.

Cell numbers go stale whenever a cell is added above them; this test finds, for every plot a row
names, the code cells whose source saves it (the file name, or an f-string with its digits as a
field) and checks that one of them is a cell the row cites.
"""
from __future__ import annotations

import re

import nbformat
import pytest

from common.paths import REPO_ROOT

ROWS = [line for line in (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("|") and ".ipynb" in line]


def _cited(text: str) -> set[int]:
    """Cell numbers in "cell 6", "cells 5-9" or "cells 13-14, 18-21"."""
    out: set[int] = set()
    for part in re.findall(r"cells? ([0-9][0-9, -]*)", text):
        for span in part.split(","):
            bounds = [int(b) for b in span.strip().split("-") if b.strip()]
            if bounds:
                out.update(range(bounds[0], bounds[-1] + 1))
    return out


def _makers(code: list[str], png: str) -> set[int]:
    """1-based code cells that save ``png``: its name literally, or with a token that has digits as an f-string field."""
    # in a token with digits ("beta4"), the digits or the whole token may be an f-string field ("beta{b:g}", "{n}")
    field = r"\{[^}]*\}"
    tokens = [re.escape(t) if not re.search(r"\d", t) else
              r"(?:" + re.sub(r"\d+", lambda _: rf"(?:\d+|{field})", re.escape(t)) + rf"|{field})"
              for t in png[:-4].split("_")]
    pattern = "_".join(tokens) + r"\.png"
    return {i + 1 for i, src in enumerate(code) if re.search(pattern, src) and "finish(" not in src}


def _entries() -> list[tuple[str, str, set[int]]]:
    entries = []
    for row in ROWS:
        for cell in row.strip("|").split("|"):
            notebook = re.search(r"([A-Za-z_]+/[A-Za-z_]+\.ipynb)", cell)
            if notebook is None:
                continue
            # a gallery cell names its plot as an <img>; an index row names it in the next column
            pngs = re.findall(r"([A-Za-z0-9_]+\.png)", cell) or re.findall(r"([A-Za-z0-9_]+\.png)", row)
            for png in pngs:
                entries.append((notebook.group(1), png, _cited(cell)))
    return entries


ENTRIES = _entries()


def test_the_readme_has_a_gallery_and_an_index_to_check():
    assert len({nb for nb, _, _ in ENTRIES}) >= 6 and len(ENTRIES) >= 20


@pytest.mark.parametrize("notebook, png, cited", ENTRIES, ids=[f"{nb}:{png}" for nb, png, _ in ENTRIES])
def test_each_cited_cell_makes_the_plot(notebook, png, cited):
    nb = nbformat.read(REPO_ROOT / notebook, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    makers = _makers(code, png)
    assert makers, f"no code cell of {notebook} saves {png}"
    assert cited & makers, f"README cites cells {sorted(cited)} of {notebook} for {png}; it is made in {sorted(makers)}"
    assert (REPO_ROOT / notebook).parent.joinpath("plots", png).is_file(), f"{png} is not committed"
