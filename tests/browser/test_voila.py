"""The same control check against Voila: every notebook served as a dashboard as `make app NB=..` serves it,
on the published `synthetic` weights (FACEGAN_PRETRAINED; JupyterLab's check trains them in the smoke profile).
Their pictures are generated and edited faces, so the check that every control changes the picture means
something.

FACEGAN_BROWSER_VOILA lists the notebook numbers to check (default: all of them; e.g. '01 02').
"""
import os

import pytest

from . import harness, servers
from .conftest import check_in_voila

WANTED = os.environ.get("FACEGAN_BROWSER_VOILA", " ".join(nb.name[:2] for nb in sorted(servers.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))).split()
NOTEBOOKS = [nb for n in WANTED for nb in sorted(servers.NOTEBOOKS.glob(f"{n}_*.ipynb"))]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_sliders_in_voila_on_published_weights(workdir, env, page, nb):
    report = check_in_voila(workdir, {**env, "FACEGAN_PRETRAINED": "synthetic"}, page, nb, f"voila_{nb.stem}")
    assert report.census is not None, "the census cell did not run: Voila stopped early\n" + "\n".join(report.errors)
    problems = harness.failures(report, servers.expected_controls(report.census))
    assert not problems, f"{nb.name} in Voila on published weights:\n" + "\n".join(problems) + "\n" + harness.summary(report)
