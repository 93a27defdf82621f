"""`make run`'s engine: papermill executes notebooks with the profile and keeps going past a failure."""
import json
import os
import time

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


def test_runs_with_the_profile_parameter_and_writes_executed_copies(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEGAN_PROFILE", "demo")  # a stray variable loses to --profile; restored afterwards
    monkeypatch.setattr(paths, "OUTPUTS", tmp_path / "outputs")
    monkeypatch.setattr(paths, "ASSETS", tmp_path / "assets")
    good = tiny_notebook(tmp_path / "07_ok.ipynb", "import helpers as H\nprint(H.setup(profile=profile).profile)")
    bad = tiny_notebook(tmp_path / "08_bad.ipynb", "raise RuntimeError('broken on purpose')")
    assert run_notebooks.main([str(good), str(bad), "--profile", "smoke"]) == 1  # one failed ...
    assert "FACEGAN_PROFILE ignored" in capsys.readouterr().out
    executed = json.loads((tmp_path / "outputs" / "07_ok" / "07_ok.ipynb").read_text())  # ... the other was written
    injected = executed["cells"][1]
    assert "injected-parameters" in injected["metadata"]["tags"] and "profile = \"smoke\"" in "".join(injected["source"])
    assert "".join(executed["cells"][2]["outputs"][0]["text"]).splitlines()[-1] == "smoke"  # nothing overrode it


def test_pretrained_reaches_only_the_notebooks_that_take_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEGAN_PRETRAINED", "celeba")  # a stray variable loses to --pretrained
    monkeypatch.setattr(paths, "OUTPUTS", tmp_path / "outputs")
    takes = tiny_notebook(tmp_path / "07_takes.ipynb", "print(pretrained)")
    nb = nbformat.read(takes, as_version=4)
    nb.cells[0].source += '\npretrained = None'
    nbformat.write(nb, takes)
    plain = tiny_notebook(tmp_path / "08_plain.ipynb", "print('pretrained' in globals())")
    assert run_notebooks.main([str(takes), str(plain), "--profile", "smoke", "--pretrained", "synthetic"]) == 0
    assert "FACEGAN_PRETRAINED ignored" in capsys.readouterr().out
    out = {n: json.loads((tmp_path / "outputs" / n / f"{n}.ipynb").read_text())["cells"][-1]["outputs"][0]["text"]
           for n in ("07_takes", "08_plain")}
    assert "".join(out["07_takes"]) == "synthetic\n" and "".join(out["08_plain"]) == "False\n"
    with pytest.raises(SystemExit):
        run_notebooks.main([str(takes), "--pretrained", "synthetic", "--publish", "synthetic"])
    assert "goes without --pretrained" in capsys.readouterr().err


def test_a_notebook_published_in_place_keeps_no_injected_cell(tmp_path, monkeypatch):
    nb = tiny_notebook(tmp_path / "07_ok.ipynb", "print(profile)")
    assert run_notebooks.main([str(nb), "--profile", "smoke", "--inplace"]) == 0
    cells = json.loads(nb.read_text())["cells"]
    assert len(cells) == 2 and "".join(cells[1]["outputs"][0]["text"]) == "smoke\n"


def test_setup_says_what_the_environment_overrides(monkeypatch, capsys):
    from helpers.core import runtime

    monkeypatch.setenv("FACEGAN_PROFILE", "smoke")
    monkeypatch.setenv("FACEGAN_REHEARSE", "")
    assert runtime.setup(profile="auto").profile == "smoke"
    assert "profile smoke, from FACEGAN_PROFILE (the notebook's cell says 'auto')" in capsys.readouterr().out
    monkeypatch.setenv("FACEGAN_REHEARSE", "30")
    assert any("from FACEGAN_REHEARSE" in line for line in runtime.environment_overrides("smoke"))
    monkeypatch.delenv("FACEGAN_PROFILE")
    monkeypatch.setenv("FACEGAN_REHEARSE", "")
    assert not any("profile" in line for line in runtime.environment_overrides("demo"))


def test_unknown_notebook_name():
    with pytest.raises(SystemExit, match="no notebook matches"):
        run_notebooks.notebooks(["99_nothing"])


def test_a_real_face_run_commits_its_metrics_and_only_figures_of_generated_faces(tmp_path):
    run = tmp_path / "outputs" / "01_dcgan_face_generation"
    run.mkdir(parents=True)
    for name in ("metrics.json", "samples.png", "latent_walk.png", "training.png", "photos.png"):
        (run / name).write_text(name)
    copied = run_notebooks.publish_real("01_dcgan_face_generation", "celeba_dev", tmp_path / "outputs", tmp_path)
    dest = tmp_path / "real" / "celeba_dev" / "01_dcgan_face_generation"
    assert sorted(p.name for p in copied) == ["latent_walk.png", "metrics.json", "samples.png"]
    assert sorted(p.name for p in dest.iterdir()) == ["latent_walk.png", "metrics.json", "samples.png"]
    assert run_notebooks.publish_real("02_fadernet", "celeba_dev", tmp_path / "outputs", tmp_path) == []
    # a later run that no longer draws a figure: the earlier run's file is neither copied nor kept
    os.utime(run / "latent_walk.png", (time.time() - 60, time.time() - 60))
    again = run_notebooks.publish_real("01_dcgan_face_generation", "celeba_dev", tmp_path / "outputs", tmp_path,
                                       since=time.time() - 30)
    assert sorted(p.name for p in again) == ["metrics.json", "samples.png"]
    assert sorted(p.name for p in dest.iterdir()) == ["metrics.json", "samples.png"]
    assert set(run_notebooks.GENERATED_FIGURES) <= {p.stem for p in paths.NOTEBOOKS.glob("*.ipynb")}


def test_a_real_face_run_needs_a_data_folder(capsys):
    with pytest.raises(SystemExit):
        run_notebooks.main(["--real", "01"])
    assert "--real needs --data" in capsys.readouterr().err


def test_refresh_sources_rewrites_a_stale_source_display_only(tmp_path):
    import nbformat

    import helpers as H
    from helpers.tools import refresh_sources

    nb = nbformat.v4.new_notebook()
    show, other = nbformat.v4.new_code_cell("H.viz.show_source(H.gan.sample_z)"), nbformat.v4.new_code_cell("1 + 1")
    show.outputs = [nbformat.v4.new_output("execute_result", {"text/markdown": "```python\nold\n```",
                                                              "text/plain": "<IPython.core.display.Markdown object>"},
                                           execution_count=1)]
    other.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "3"}, execution_count=2)]
    nb.cells = [show, other]
    path = tmp_path / "07_show.ipynb"
    nbformat.write(nb, path)
    assert refresh_sources.refresh(path) == 1 and refresh_sources.refresh(path) == 0
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].outputs[0]["data"]["text/markdown"] == H.viz.show_source(H.gan.sample_z).data
    assert cells[1].outputs[0]["data"]["text/plain"] == "3"  # other cells untouched (not re-run)


def test_the_time_to_the_first_slider_skips_progress_bars(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "OUTPUTS", tmp_path / "outputs")
    nb = tiny_notebook(tmp_path / "07_w.ipynb", "import time, ipywidgets as w\ndisplay(w.IntProgress(3)); time.sleep(1.2)")
    book = nbformat.read(nb, as_version=4)
    book.cells.append(nbformat.v4.new_code_cell("w.VBox([w.HBox([w.FloatSlider()])])"))
    nbformat.write(book, nb)
    plain = tiny_notebook(tmp_path / "08_p.ipynb", "import ipywidgets as w\nw.IntProgress(3)")
    assert run_notebooks.main([str(nb), str(plain), "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    seconds = run_notebooks.seconds_to_first_slider(tmp_path / "outputs" / "07_w" / "07_w.ipynb")
    assert 1.2 <= seconds < 30 and f"first slider after {seconds:.0f} s" in out  # the nested slider, after the bar
    assert run_notebooks.seconds_to_first_slider(tmp_path / "outputs" / "08_p" / "08_p.ipynb") is None
