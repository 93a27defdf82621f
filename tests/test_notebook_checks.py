"""The notebooks' checks fail on a broken model: notebook 01 in the smoke profile, with a generator
that ignores its latent (a classic mode collapse), stops at the course checker when broken from the
start, and at the notebook's own "every z gives the same face" check after training when broken
once the checker has passed, instead of running on to the end."""
import nbformat
import papermill
import pytest

from helpers.core import paths

BREAK_G = """import torch
import helpers as H
_forward = H.dcgan.Generator.forward
H.dcgan.Generator.forward = lambda self, z: _forward(self, torch.zeros_like(z))  # broken on purpose: ignores z
"""


@pytest.mark.parametrize("after, stops_at", [
    ("parameters", r"does forward\(\) use its input"),  # the course checker, before any training
    ("tests.test_generator(", "every z gives"),  # the notebook's own check on the trained model
])
def test_notebook_01_stops_at_a_check_when_the_generator_ignores_z(tmp_path, monkeypatch, after, stops_at):
    monkeypatch.setenv("FACEGAN_CHECKPOINTS", str(tmp_path / "ck"))  # the kernel's folders, not the repo's
    monkeypatch.setenv("FACEGAN_OUTPUTS", str(tmp_path / "out"))
    nb = nbformat.read(paths.NOTEBOOKS / "01_dcgan_face_generation.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if after in c.metadata.get("tags", []) or after in c.source)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(BREAK_G))
    broken = paths.NOTEBOOKS / f".broken_{tmp_path.name}.ipynb"  # beside the others: same imports, same data
    nbformat.write(nb, broken)
    try:
        with pytest.raises(papermill.PapermillExecutionError, match=stops_at):
            papermill.execute_notebook(str(broken), str(tmp_path / "run.ipynb"), cwd=str(paths.NOTEBOOKS),
                                       parameters={"profile": "smoke"}, kernel_name="python3", progress_bar=False)
    finally:
        broken.unlink()
