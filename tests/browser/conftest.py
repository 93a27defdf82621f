"""Fixtures for the browser suite: one JupyterLab server and one headless Chromium per test session.

The server serves a COPY of notebooks/ (plus the broken fixture) from a temp dir, in the profile
FACEGAN_BROWSER_PROFILE (default 'smoke'), with checkpoints and outputs in temp dirs. Server,
kernels and browser are always shut down, also when a test fails. Screenshots and a timings file
go to outputs/browser/ (FACEGAN_BROWSER_SHOTS overrides).
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from . import harness, servers

SHOTS = Path(os.environ.get("FACEGAN_BROWSER_SHOTS", servers.ROOT / "outputs" / "browser"))
PROFILE = os.environ.get("FACEGAN_BROWSER_PROFILE", "smoke")
# Bounded waits (seconds): one notebook's Run All, and one control's picture change.
NB_TIMEOUT = float(os.environ.get("FACEGAN_BROWSER_NB_TIMEOUT", "300"))
CHANGE_TIMEOUT = float(os.environ.get("FACEGAN_BROWSER_CHANGE_TIMEOUT", "20"))
_TIMINGS: dict = {}


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # `timeout`/CI send SIGTERM: turn it into KeyboardInterrupt so fixtures still stop servers and browser
    signal.signal(signal.SIGTERM, _interrupt)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in [*SHOTS.glob("*.png"), *SHOTS.glob("*_report.json")]:
        old.unlink()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="session")
def served(workdir) -> Path:
    """Return the served root; each test copies its notebook there (with the census cell) when it starts."""
    root = workdir / "served"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def env(workdir) -> dict:
    return servers.server_env(workdir, PROFILE)


@pytest.fixture(scope="session")
def lab(served, workdir, env):
    """A running JupyterLab (token, free port, 127.0.0.1); stopped with its kernels at the end."""
    server = servers.start_lab(served, workdir, env)
    server.root_dir = str(served)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright; closed at the end whatever happened."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make test-browser` (pip install -r requirements-browser.txt)")
    pw = sync_playwright().start()
    try:
        b = harness.launch_browser(pw)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser):
    """A fresh browser page (own context: no shared cookies or storage); closed after the test."""
    context = browser.new_context(viewport=harness.VIEWPORT)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()


def check_in_lab(lab, page, src: Path, relpath: str, name: str, change_timeout: float = CHANGE_TIMEOUT) -> harness.Report:
    """Copy notebook `src` to the served root as relpath, open it in JupyterLab, Run All, collect
    errors, move every control; return the report."""
    servers.copy_with_census(src, Path(lab.root_dir) / relpath)
    lab.delete_sessions()
    report = harness.Report(name)
    wire = harness.KernelWire(page)
    t0 = time.monotonic()
    try:
        harness.open_notebook(page, lab, relpath)
        report.run_seconds = harness.run_all_cells(page, NB_TIMEOUT)["seconds"]
        report.errors = harness.cell_errors(page)
        report.census = harness.read_census(page)
        harness.exercise_controls(page, report, SHOTS, lab.new_log, change_timeout, wire)
        report.errors += [e for e in harness.cell_errors(page) if e not in report.errors]
    except Exception:
        page.screenshot(path=str(SHOTS / f"{name}_FAILED.png"), full_page=True)
        raise
    finally:
        record(name, report, time.monotonic() - t0)
        try:
            lab.delete_sessions()
        except Exception:  # noqa: BLE001 - the server may be the thing that failed
            pass
    return report


def check_in_voila(workdir: Path, env: dict, page, src: Path, name: str,
                   change_timeout: float = CHANGE_TIMEOUT) -> harness.Report:
    """Serve a copy of notebook `src` with Voila (as `make app` does), load the dashboard, collect
    errors, move every control; return the report. The Voila server is stopped before returning."""
    copy = servers.copy_with_census(src, workdir / "voila" / src.name)
    report = harness.Report(name)
    server = servers.start_voila(copy, workdir / "voila", env)
    wire = harness.KernelWire(page)
    t0 = time.monotonic()
    try:
        # Voila executes the notebook while it answers the request; the page loads when all cells ran.
        page.goto(f"{server.base_url}/?token={server.token}", timeout=NB_TIMEOUT * 1000, wait_until="load")
        report.run_seconds = time.monotonic() - t0
        page.wait_for_selector(".jp-OutputArea-output", state="attached", timeout=60_000)
        report.census = harness.read_census(page)
        expected = servers.expected_controls(report.census)
        # widgets render after load: wait (bounded) until the page shows as many sliders as the kernel made
        harness._poll(lambda: page.locator(".widget-slider").count() >= expected["slider"], 60, 0.5)
        report.errors = harness.cell_errors(page)
        harness.exercise_controls(page, report, SHOTS, server.new_log, change_timeout, wire)
    except Exception:
        page.screenshot(path=str(SHOTS / f"{name}_FAILED.png"), full_page=True)
        raise
    finally:
        record(name, report, time.monotonic() - t0)
        server.stop()
    return report


def record(name: str, report: harness.Report, total: float) -> None:
    _TIMINGS[name] = {"total_s": round(total, 1), "run_all_s": round(report.run_seconds, 1),
                      "controls_s": round(report.control_seconds, 1),
                      "controls": len(report.controls),
                      "failed": sum(1 for c in report.controls if not c.ok)}
    (SHOTS / f"{name}_report.json").write_text(json.dumps(report.to_json(), indent=1))
    print(harness.summary(report))


def pytest_terminal_summary(terminalreporter):
    if not _TIMINGS:
        return
    (SHOTS / "timings.json").write_text(json.dumps(_TIMINGS, indent=1))
    terminalreporter.section("browser: time per notebook (s)")
    for name, t in _TIMINGS.items():
        terminalreporter.write_line(f"{name:40} total {t['total_s']:6.1f}  run-all {t['run_all_s']:6.1f}  "
                                    f"controls {t['controls_s']:5.1f} ({t['controls']} found, {t['failed']} failed)")
    terminalreporter.write_line(f"screenshots and reports: {SHOTS}")
