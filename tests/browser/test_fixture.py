"""The check can fail: run it on a fixture notebook with controls broken on purpose.

tests/browser/fixtures/broken_sliders.ipynb has working controls (`good`, the `flip` checkbox, the
`brighter` button, an upload), two declared text-only controls (`readout`, the `mode` toggle), and
broken ones: `raises` (its callback raises), `stuck` (it redraws the old picture), `frozen` (its
read-out follows it, its picture does not), the `deaf` button (no handler), and a last cell that
raises. The very code that checks the real notebooks must pass the working ones and report every
broken one.
"""
from .conftest import check_in_lab, check_in_voila
from . import harness, servers


def _by_label(report):
    # an upload button shows its file count: "upload (0)"
    return {c.label.split(" (")[0]: c for c in report.controls}


def test_check_reports_the_broken_controls(lab, page):
    # a short wait for the picture: the broken controls never change, so each costs the full wait
    report = check_in_lab(lab, page, servers.FIXTURES / "broken_sliders.ipynb", "fixtures/broken_sliders.ipynb",
                          "fixture_broken_sliders", change_timeout=5)
    by = _by_label(report)
    kinds = sorted(c.kind for c in report.controls)
    assert kinds == ["button"] * 2 + ["checkbox"] + ["slider"] * 5 + ["toggle", "upload"], kinds
    assert {"good", "raises", "stuck", "readout", "frozen", "brighter", "deaf", "flip", "upload"} <= set(by), by.keys()

    # positive controls: pictures that follow their controls, and read-outs of declared text-only controls
    for name in ("good", "flip", "brighter", "upload"):
        assert by[name].ok and by[name].changed and not by[name].text_only, by[name]
    assert by["readout"].text_only and by["readout"].ok, by["readout"]
    toggle = next(c for c in report.controls if c.kind == "toggle")
    assert toggle.text_only and toggle.ok, toggle
    # the broken ones are caught: moved (or clicked), but the picture never changed
    for name in ("raises", "stuck", "frozen", "deaf"):
        c = by[name]
        assert c.moved and not c.changed and not c.ok, c
    assert by["frozen"].readout_changed  # a read-out that echoes the slider is not enough
    # the raising callback's traceback reached the report through the kernel log
    assert any("deliberately broken" in e for e in by["raises"].kernel_errors), by["raises"]
    # the last cell's error is seen
    assert any("deliberate error" in e for e in report.errors), report.errors

    problems = harness.failures(report)
    text = "\n".join(problems)
    for name in ("raises", "stuck", "frozen", "deaf"):
        assert f"'{name}'" in text, text
    assert "'frozen' (output area" in text and "only a read-out did" in text, text
    assert "deliberate error" in text, text
    for name in ("good", "readout", "flip", "brighter", "upload"):
        assert f"'{name}'" not in text, text


def test_frozen_picture_is_reported_in_voila_too(workdir, env, page):
    """Same fixture as a Voila dashboard, less its raising last cell (Voila shows only the error then)."""
    import nbformat

    nb = nbformat.read(servers.FIXTURES / "broken_sliders.ipynb", as_version=4)
    assert "raise ValueError" in nb.cells[-1].source
    nb.cells = nb.cells[:-1]
    src = workdir / "voila-src" / "broken_sliders_no_error.ipynb"
    src.parent.mkdir(exist_ok=True)
    nbformat.write(nb, src)
    report = check_in_voila(workdir, env, page, src, "voila_fixture_broken_sliders", change_timeout=5)
    by = _by_label(report)
    assert {"good", "raises", "stuck", "readout", "frozen", "brighter", "deaf"} <= set(by), harness.summary(report)
    assert by["good"].ok and by["readout"].ok and by["brighter"].ok, harness.summary(report)
    for name in ("raises", "stuck", "frozen", "deaf"):
        assert not by[name].ok, harness.summary(report)
    assert any("deliberately broken" in e for e in by["raises"].kernel_errors), by["raises"]
    assert not report.errors and report.census is not None, report.errors
