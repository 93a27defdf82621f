"""The check can fail: run it on a fixture notebook with sliders broken on purpose.

tests/browser/fixtures/broken_sliders.ipynb has a working slider (`good`), a slider whose callback
raises (`raises`), one whose callback redraws the old picture (`stuck`), a slider and a toggle that
drive an HTML read-out (`readout`, `mode`), an upload widget and a last cell that raises. The very
code that checks the real notebooks must pass the working ones and report every broken one.
"""
from .conftest import check_in_lab, check_in_voila
from . import harness, servers


def test_check_reports_the_broken_sliders(lab, page):
    # a short wait for the picture: the broken sliders never change, so each costs the full wait
    report = check_in_lab(lab, page, servers.FIXTURES / "broken_sliders.ipynb", "fixtures/broken_sliders.ipynb",
                          "fixture_broken_sliders", change_timeout=5)
    by_label = {c.label: c for c in report.controls}
    kinds = sorted(c.kind for c in report.controls)
    assert kinds == ["slider"] * 4 + ["toggle", "upload"], kinds
    assert {"good", "raises", "stuck", "readout"} <= set(by_label), by_label.keys()

    # positive controls: a picture and an HTML read-out that do follow their controls pass
    assert by_label["good"].ok and by_label["good"].changed, by_label["good"]
    assert by_label["readout"].ok, by_label["readout"]
    toggle = next(c for c in report.controls if c.kind == "toggle")
    assert toggle.ok, toggle
    # the broken ones are caught: moved, but the picture never changed
    for name in ("raises", "stuck"):
        c = by_label[name]
        assert c.moved and not c.changed and not c.ok, c
    # the raising callback's traceback reached the report through the kernel log
    assert any("deliberately broken" in e for e in by_label["raises"].kernel_errors), by_label["raises"]
    # upload widgets are skipped by type, with the reason
    upload = next(c for c in report.controls if c.kind == "upload")
    assert upload.skipped and upload.ok
    # the last cell's error is seen
    assert any("deliberate error" in e for e in report.errors), report.errors

    problems = harness.failures(report)
    text = "\n".join(problems)
    assert "'raises'" in text and "'stuck'" in text and "deliberate error" in text, text
    assert "'good'" not in text and "'readout'" not in text, text


def test_check_reports_the_broken_sliders_in_voila(workdir, env, page):
    """Same fixture as a Voila dashboard, less its raising last cell (Voila shows only the error then)."""
    import nbformat

    nb = nbformat.read(servers.FIXTURES / "broken_sliders.ipynb", as_version=4)
    assert "raise ValueError" in nb.cells[-1].source
    nb.cells = nb.cells[:-1]
    src = workdir / "voila-src" / "broken_sliders_no_error.ipynb"
    src.parent.mkdir(exist_ok=True)
    nbformat.write(nb, src)
    report = check_in_voila(workdir, env, page, src, "voila_fixture_broken_sliders", change_timeout=5)
    by_label = {c.label: c for c in report.controls}
    assert {"good", "raises", "stuck", "readout"} <= set(by_label), harness.summary(report)
    assert by_label["good"].ok and by_label["readout"].ok, harness.summary(report)
    assert not by_label["raises"].ok and not by_label["stuck"].ok, harness.summary(report)
    assert any("deliberately broken" in e for e in by_label["raises"].kernel_errors), by_label["raises"]
    assert not report.errors and report.census is not None, report.errors
