"""`make run`'s engine: papermill executes notebooks with the profile and keeps going past a failure."""
import json

import nbformat
import pytest

from helpers.core import paths
from helpers.tools import run_notebooks


def tiny_notebook(path, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "auto"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_runs_with_the_profile_and_writes_executed_copies(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGAN_PROFILE", "smoke")  # restored afterwards: main() sets it for the kernels
    monkeypatch.setattr(paths, "OUTPUTS", tmp_path / "outputs")
    monkeypatch.setattr(paths, "ASSETS", tmp_path / "assets")
    good = tiny_notebook(tmp_path / "07_ok.ipynb", "import helpers as H\nprint(H.setup(profile=profile).profile)")
    bad = tiny_notebook(tmp_path / "08_bad.ipynb", "raise RuntimeError('broken on purpose')")
    assert run_notebooks.main([str(good), str(bad), "--profile", "smoke"]) == 1  # one failed ...
    executed = tmp_path / "outputs" / "07_ok" / "07_ok.ipynb"
    assert executed.is_file()  # ... but the other still ran and was written
    out = json.loads(executed.read_text())["cells"][1]["outputs"][0]["text"]
    assert "smoke" in "".join(out)


def test_unknown_notebook_name():
    with pytest.raises(SystemExit, match="no notebook matches"):
        run_notebooks.notebooks(["99_nothing"])
