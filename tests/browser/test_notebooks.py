"""Every notebooks/NN_*.ipynb in JupyterLab: Run All (smoke profile), no cell error, every control
moved and what it drives changed, and every slider the kernel created is on the page."""
import pytest

from . import harness, servers
from .conftest import check_in_lab

NOTEBOOKS = sorted(servers.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_sliders_in_jupyterlab(lab, page, nb):
    report = check_in_lab(lab, page, nb, f"notebooks/{nb.name}", f"lab_{nb.stem}")
    assert report.census is not None or report.errors, "the census cell did not run (Run All stopped early?)"
    problems = harness.failures(report, servers.expected_controls(report.census))
    assert not problems, f"{nb.name}:\n" + "\n".join(problems) + "\n" + harness.summary(report)
