"""Refresh the notebooks' source displays: `python -m helpers.tools.refresh_sources [NB ...]`.

A cell `H.viz.show_source(...)` shows code read from helpers/ as text/markdown, which strict nbval
compares: after a change to a shown function, its stored output must be the code as it now reads.
This rewrites those outputs only (no cell runs, nothing else in the notebook changes).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

import helpers as H

from ..core import paths

SHOW = re.compile(r"H\.viz\.show_source\((.|\n)*\)\s*")


def refresh(path: Path) -> int:
    """Rewrite the show_source outputs of one notebook; return how many changed."""
    nb, changed = nbformat.read(path, as_version=4), 0
    for cell in nb.cells:
        if cell.cell_type == "code" and SHOW.fullmatch(cell.source):
            shown = eval(cell.source, {"H": H}).data  # the notebook's own display call
            for out in cell.outputs:
                if "text/markdown" in out.get("data", {}) and out["data"]["text/markdown"] != shown:
                    out["data"]["text/markdown"], changed = shown, changed + 1
    if changed:
        path.write_text(nbformat.writes(nb).rstrip("\n"))  # as papermill leaves it: no final newline
    return changed


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for name in names:
        print(f"{Path(name).name}: {refresh(Path(name))} display cell(s) refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
