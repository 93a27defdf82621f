"""Drive a notebook page in headless Chromium: Run All, read errors, move every control.

The slider check (`exercise_controls`) is shared by JupyterLab, Voila and the broken-fixture test:
for every control it snapshots what the control's output area shows (each picture's bytes, and
apart from them each HTML read-out), moves the control once (keyboard on a slider handle, falling
back to a mouse drag; a click on a toggle, checkbox or button; scikit-image's astronaut photo for an upload),
waits (bounded) for the pictures to change and records whether they did, plus any error the kernel
sent meanwhile (KernelWire) or logged. A control counts as working only when a picture changed: a
read-out that echoes the control's own value proves nothing about the picture. A control whose
purpose is text (it drives a read-out, no picture) says so with the CSS class TEXT_ONLY (in Python:
`widget.add_class("fg-text-only")`); then its read-out must change. `failures(report)` turns the
report into readable failure lines. Widget types that are deliberately not driven are listed in
SKIPPED_TYPES.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .servers import CENSUS_MARK, Server

CHROMIUM = os.environ.get("FACEGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1000}

# Widget types found in a page but never driven, and why. By type, never by notebook.
SKIPPED_TYPES = {
    "text": "free-text inputs have no 'next value' to move to",
}
# What counts as a control to drive, and what is on the skip-list (CSS classes of ipywidgets 8).
CONTROL_SELECTORS = {
    "slider": ".widget-slider",
    "toggle": ".widget-toggle-buttons",
    "dropdown": ".widget-dropdown",
    "checkbox": ".widget-checkbox",
    "upload": ".widget-upload",
    "button": ".widget-button:not(.widget-toggle-button):not(.widget-upload)",
    "text": ".widget-text, .widget-textarea",
}
TEXT_ONLY = "fg-text-only"  # CSS class of a control that drives a read-out only, no picture
# An image for upload controls: scikit-image's astronaut (a public-domain photo, one frontal face),
# so the upload boxes, which align a photo's face before editing it, have a face to align (a picture
# without one gets only the no-face message, and no picture changes); never a file in the repository.
UPLOAD_PNG = Path(os.environ.get("FACEGAN_BROWSER_UPLOAD", "")) if os.environ.get("FACEGAN_BROWSER_UPLOAD") else None
class NotebookTimeout(RuntimeError):
    """Run All did not finish within the bounded wait."""


def launch_browser(playwright):
    """Return headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test-browser` installs Debian's chromium "
                           "(apt-get install -y chromium); never `playwright install`")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def _poll(fn, timeout: float, interval: float = 0.5):
    """Call fn until it returns something truthy; return it, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


_JS_RUN_STATE = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
      .map(p => p.innerText.trim());
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return {prompts, status: ind ? ind.getAttribute('data-status') : null};
}"""

_JS_ERRORS = r"""() => {
  const errs = [];
  for (const el of document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')) {
    const t = el.innerText || '';
    if (/Traceback|^\s*\w*(Error|Exception)\b|There was an error when executing cell/m.test(t)) errs.push(t.slice(0, 3000));
  }
  for (const el of document.querySelectorAll('.jp-OutputArea-output, .jupyter-widgets')) {
    const t = (el.innerText || '').trim();
    if (/^(Error displaying widget|Error rendering widget|Failed to load model)/.test(t)) errs.push(t.slice(0, 500));
  }
  return errs;
}"""

_JS_CENSUS = f"""() => {{
  for (const el of document.querySelectorAll('.jp-OutputArea-output')) {{
    const m = (el.innerText || '').match(/{CENSUS_MARK} (\\{{.*\\}})/);
    if (m) return m[1];
  }}
  return null;
}}"""


def open_notebook(page, server: Server, relpath: str, timeout: float = 120.0) -> None:
    """Open a notebook in JupyterLab and wait (bounded) until its kernel is idle."""
    # a fresh workspace per page: the default one would reopen (and start kernels for) earlier notebooks
    workspace = f"fg-{os.urandom(6).hex()}"
    page.goto(f"{server.base_url}/lab/workspaces/{workspace}/tree/{relpath}?token={server.token}",
              timeout=timeout * 1000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached", timeout=timeout * 1000)

    def ready():
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():  # "Select Kernel": take the notebook's own kernel (python3)
            dialog.first.click()
            return False
        return page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').count() > 0

    if not _poll(ready, timeout, 0.5):
        raise NotebookTimeout(f"{relpath}: the kernel was not idle within {timeout:.0f} s after opening")


def run_started(state: dict) -> bool:
    """Return whether a Run All has reached the cells: one is queued ([*]) or has run ([n]).

    state: _JS_RUN_STATE's {'prompts', 'status'}. A busy kernel alone does not count: a fresh kernel
    is busy while it starts, and a Run All click that landed then was lost, so it must be clicked again.
    """
    return any(re.search(r"[\d*]", p) for p in state["prompts"])


def run_all_cells(page, timeout: float) -> dict:
    """Click Run > Run All Cells; wait (bounded) until no cell is queued and the kernel is idle.

    Returns {'seconds', 'prompts'}. Raises NotebookTimeout after `timeout` seconds.
    """
    def started():
        return run_started(page.evaluate(_JS_RUN_STATE))

    t0 = time.monotonic()
    for _ in range(3):  # a click that lands while the kernel is still connecting can be lost
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        if _poll(started, 15, 0.25):
            break
        page.keyboard.press("Escape")
    else:
        raise NotebookTimeout("Run All Cells did not start any cell after 3 clicks (45 s)")
    state: dict = {}
    done_in_a_row = 0

    def finished():
        nonlocal state, done_in_a_row
        state = page.evaluate(_JS_RUN_STATE)
        ran = any(re.search(r"\d", p) for p in state["prompts"])
        busy = any("*" in p for p in state["prompts"]) or state["status"] != "idle"
        done_in_a_row = done_in_a_row + 1 if (ran and not busy) else 0
        return done_in_a_row >= 2

    if not _poll(finished, timeout, interval=1.0):
        raise NotebookTimeout(f"Run All Cells did not finish within {timeout:.0f} s; prompts: {state.get('prompts')}, "
                              f"kernel: {state.get('status')}")
    return {"seconds": time.monotonic() - t0, "prompts": state["prompts"]}


def cell_errors(page) -> list[str]:
    """Return the text of every error shown in the page (tracebacks, widgets that failed to render)."""
    return page.evaluate(_JS_ERRORS)


def read_census(page) -> dict | None:
    """Return {widget class: count} printed by the census cell, or None if it did not run."""
    raw = page.evaluate(_JS_CENSUS)
    return json.loads(raw) if raw else None


# ----------------------------------------------------------------------------------- controls
_JS_TAG_CONTROLS = """(selectors) => {
  const kinds = Object.entries(selectors);
  const all = document.querySelectorAll(kinds.map(([k, s]) => s).join(', '));
  const out = [];
  let nScopes = document.querySelectorAll('[data-fg-scope]').length;
  all.forEach((el) => {
    const kind = kinds.find(([k, s]) => el.matches(s))[0];
    if (el.parentElement && el.parentElement.closest('[data-fg-control]')) return;  // nested part of a control
    if (!el.dataset.fgControl) el.dataset.fgControl = String(out.length);
    const scope = el.closest('.jp-OutputArea-output') || el.closest('.jp-Cell') || document.body;
    if (!scope.dataset.fgScope) scope.dataset.fgScope = String(nScopes++);
    const clean = (t) => (t || '').replace(/[\u200b]/g, '').trim();  // an empty description shows a zero-width space
    const label = el.querySelector('.widget-label');
    const buttons = [...el.querySelectorAll('button')].map(b => clean(b.innerText)).join('/');
    out.push({index: Number(el.dataset.fgControl), kind, scope: scope.dataset.fgScope,
              label: (clean(label && label.innerText) || buttons || clean(el.innerText)).slice(0, 40)});
  });
  return out;
}"""

# What a control's output area shows: each picture's bytes and, apart, each read-out's HTML, hashed.
_JS_SIGNATURE = """async (scopeId) => {
  const scope = document.querySelector(`[data-fg-scope="${scopeId}"]`);
  if (!scope) return null;
  const fnv = (bytes) => { let h = 0x811c9dc5; for (let i = 0; i < bytes.length; i++) {
      h ^= bytes[i]; h = Math.imul(h, 0x01000193) >>> 0; } return h.toString(16) + '/' + bytes.length; };
  const enc = new TextEncoder();
  const inControl = (el) => el.closest('[data-fg-control]') !== null;
  const img = [], html = [];
  for (const el of scope.querySelectorAll('img')) {
    if (inControl(el)) continue;
    const src = el.getAttribute('src') || '';
    let h = null;
    if (src.startsWith('blob:')) {
      try { h = fnv(new Uint8Array(await (await fetch(src)).arrayBuffer())); } catch (e) { h = 'blob ' + src; }
    } else { h = fnv(enc.encode(src)); }
    img.push(h);
  }
  for (const c of scope.querySelectorAll('canvas')) {
    if (inControl(c)) continue;
    try { img.push('canvas ' + fnv(enc.encode(c.toDataURL()))); } catch (e) {}
  }
  for (const el of scope.querySelectorAll('.widget-html-content, .widget-output .jp-OutputArea-output')) {
    if (inControl(el)) continue;
    html.push(fnv(enc.encode(el.innerHTML)));
  }
  return {img: img.join(' | '), html: html.join(' | ')};
}"""

_JS_VALUE = """(i) => {
  const el = document.querySelector(`[data-fg-control="${i}"]`);
  if (!el) return null;
  const h = el.querySelector('.noUi-handle');
  const readout = el.querySelector('.widget-readout');
  const active = el.querySelector('.mod-active');
  const sel = el.querySelector('select');
  const box = el.querySelector('input[type=checkbox]');
  return {now: h ? h.getAttribute('aria-valuenow') : null, min: h ? h.getAttribute('aria-valuemin') : null,
          max: h ? h.getAttribute('aria-valuemax') : null,
          text: readout ? (readout.innerText || readout.value || '').trim() : null,
          active: active ? active.innerText.trim() : null, select: sel ? sel.value : null,
          checked: box ? box.checked : null, text_only: el.classList.contains('fg-text-only')};
}"""


@dataclass
class ControlResult:
    """What happened when one control was moved."""

    index: int
    kind: str
    label: str
    scope: str
    moved: bool = False
    changed: bool = False  # the picture changed (the read-out, for a text-only control)
    text_only: bool = False  # declared (CSS class TEXT_ONLY) to drive a read-out, not a picture
    readout_changed: bool = False
    skipped: str = ""
    value_before: str = ""
    value_after: str = ""
    seconds: float = 0.0
    kernel_errors: list = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.skipped) or (self.moved and self.changed and not self.kernel_errors)


@dataclass
class Report:
    """Everything the browser check found in one notebook/dashboard."""

    name: str
    errors: list = field(default_factory=list)
    controls: list = field(default_factory=list)
    census: dict | None = None
    run_seconds: float = 0.0
    control_seconds: float = 0.0
    screenshots: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {**asdict(self), "controls": [asdict(c) for c in self.controls]}


def _value_str(v: dict | None) -> str:
    if not v:
        return "?"
    for key in ("text", "now", "active", "select", "checked"):
        if v.get(key) is not None:
            return str(v[key])
    return "?"


def _stable_signature(page, scope: str, timeout: float = 10.0, quiet: float = 1.0):
    """Return the scope's signature once it stopped changing for `quiet` s (bounded by timeout)."""
    last, since, deadline = page.evaluate(_JS_SIGNATURE, scope), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cur = page.evaluate(_JS_SIGNATURE, scope)
        if cur != last:
            last, since = cur, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def _kernel_errors(text: str) -> list[str]:
    """Return the error lines a kernel logged (tracebacks from slider callbacks land in the server log)."""
    lines = [ln for ln in text.splitlines() if re.search(r"^\w*(Error|Exception): ", ln.strip())]
    if not lines and "Traceback (most recent call last)" in text:
        lines = ["Traceback in the kernel log"]
    return lines[:5]


class KernelWire:
    """Listen to the page's kernel websockets and keep error messages the kernel sends.

    A slider callback that raises does not show in any cell: the kernel logs "Exception in
    comm_msg" with the traceback on a stream that JupyterLab sends to its log console and Voila
    to nowhere. Reading the kernel's websocket frames catches it in both.
    """

    PATTERN = re.compile(r"(\w*(?:Error|Exception)\b: [^\\\"\n]{0,200}|Exception in comm_msg)")

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("websocket", self._attach)

    def _attach(self, ws) -> None:
        if "/api/kernels/" in ws.url:
            ws.on("framereceived", self._frame)

    def _frame(self, payload) -> None:
        data = payload if isinstance(payload, bytes) else payload.encode("utf-8", "replace")
        if b"Traceback" in data or b"Exception in comm_msg" in data or b'"ename"' in data:
            text = re.sub(r"\x1b\[[0-9;]*m|\\u001b\[[0-9;]*m", "", data.decode("utf-8", "replace"))
            found = [m for m in self.PATTERN.findall(text) if m != "Exception in comm_msg"]
            self.errors.extend(found or ["a traceback (unparsed)"])

    def take(self) -> list[str]:
        """Return the errors seen since the last call."""
        out, self.errors = self.errors, []
        return out


def _move(page, ctl: dict, v0: dict | None) -> None:
    """Move one control by one step: slider by keyboard (drag as fallback), toggle/dropdown by choice."""
    root = page.locator(f'[data-fg-control="{ctl["index"]}"]')
    if ctl["kind"] == "slider":
        handle = root.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed(timeout=10_000)
        try:
            at_max = v0 and v0["now"] is not None and float(v0["now"]) >= float(v0["max"])
        except (TypeError, ValueError):
            at_max = False
        handle.focus()
        handle.press("ArrowLeft" if at_max else "ArrowRight")
        if _poll(lambda: page.evaluate(_JS_VALUE, ctl["index"]) != v0, 3, 0.2):
            return
        box, track = handle.bounding_box(), root.locator(".noUi-target").first.bounding_box()
        if box and track:  # keyboard did nothing: drag the handle a third of the track
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            dx = -track["width"] / 3 if at_max else track["width"] / 3
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + dx, y, steps=5)
            page.mouse.up()
    elif ctl["kind"] == "toggle":
        buttons = root.locator("button:not(.mod-active)")
        if buttons.count():
            buttons.first.scroll_into_view_if_needed(timeout=10_000)
            buttons.first.click()
    elif ctl["kind"] == "dropdown":
        select = root.locator("select").first
        values = select.locator("option").evaluate_all("(os) => os.map(o => o.value)")
        others = [v for v in values if v != select.input_value()]
        if others:
            select.select_option(others[0])
    elif ctl["kind"] == "checkbox":
        box = root.locator("input[type=checkbox]").first
        box.scroll_into_view_if_needed(timeout=10_000)
        box.click()
    elif ctl["kind"] == "button":
        root.scroll_into_view_if_needed(timeout=10_000)
        root.click()
    elif ctl["kind"] == "upload":  # its file input is not in the page: answer the file chooser it opens
        root.scroll_into_view_if_needed(timeout=10_000)
        with page.expect_file_chooser(timeout=10_000) as chooser:
            root.click()
        chooser.value.set_files(str(upload_png()))


def upload_png() -> Path:
    """Return a PNG to feed upload controls (written once to a temp folder)."""
    global UPLOAD_PNG
    if UPLOAD_PNG is None or not UPLOAD_PNG.is_file():
        import tempfile

        from PIL import Image
        from skimage.data import astronaut

        UPLOAD_PNG = Path(tempfile.mkdtemp(prefix="fg-upload-")) / "upload.png"
        Image.fromarray(astronaut()).save(UPLOAD_PNG)
    return UPLOAD_PNG


def _acted(kind: str, v0: dict | None, v1: dict | None) -> bool:
    """True when the control took the action: a new value, or (buttons and uploads, which hold no
    value to read) a click or file that went through."""
    return kind in ("button", "upload") or (v1 is not None and v1 != v0)


def exercise_controls(page, report: Report, shots_dir: Path | None = None, log_probe=None,
                      change_timeout: float = 20.0, wire: KernelWire | None = None) -> Report:
    """Move every control in the page once; record in `report` whether what it drives changed.

    log_probe: a callable returning what the kernel logged since its last call (Server.new_log);
    wire: the page's KernelWire (attached before the page loaded) for errors sent to the browser.
    Screenshots of each output area with controls, before and after, go to shots_dir.
    """
    t0 = time.monotonic()
    controls = page.evaluate(_JS_TAG_CONTROLS, CONTROL_SELECTORS)
    scopes = sorted({c["scope"] for c in controls}, key=int)
    name = re.sub(r"[^\w.-]+", "_", report.name)
    if shots_dir:
        shots_dir.mkdir(parents=True, exist_ok=True)
        for s in scopes:
            _shot(page, s, shots_dir / f"{name}_widgets{s}_before.png", report)
    for ctl in controls:
        res = ControlResult(ctl["index"], ctl["kind"], ctl["label"], ctl["scope"])
        report.controls.append(res)
        if ctl["kind"] in SKIPPED_TYPES:
            res.skipped = SKIPPED_TYPES[ctl["kind"]]
            continue
        started = time.monotonic()
        before = _stable_signature(page, ctl["scope"], quiet=0.5)
        if log_probe:
            log_probe()
        if wire:
            wire.take()
        v0 = page.evaluate(_JS_VALUE, ctl["index"])
        res.text_only = bool(v0 and v0.get("text_only"))
        acted = False
        try:
            _move(page, ctl, v0)
            acted = True
        except Exception as exc:  # noqa: BLE001 - recorded as a failure of this control
            res.note = f"could not move it: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        v1 = _poll(lambda: (lambda v: v if v != v0 else None)(page.evaluate(_JS_VALUE, ctl["index"])),
                   3 if ctl["kind"] not in ("button", "upload") else 0.5, 0.2)
        res.value_before, res.value_after = _value_str(v0), _value_str(v1 or v0)
        res.moved = acted and _acted(ctl["kind"], v0, v1)
        if res.moved:
            key = "html" if res.text_only else "img"
            changed = _poll(lambda: (lambda sig: sig if sig and sig[key] != before[key] else None)(
                page.evaluate(_JS_SIGNATURE, ctl["scope"])), change_timeout, 0.25)
            res.changed = bool(changed)
            after = _stable_signature(page, ctl["scope"], quiet=0.75) if res.changed else \
                page.evaluate(_JS_SIGNATURE, ctl["scope"])
            res.readout_changed = bool(after and before and after["html"] != before["html"])
        time.sleep(0.3)
        page.evaluate("() => 0")  # let pending websocket events reach the wire
        res.kernel_errors = (wire.take() if wire else []) + (_kernel_errors(log_probe()) if log_probe else [])
        res.seconds = time.monotonic() - started
    if shots_dir:
        for s in scopes:
            _shot(page, s, shots_dir / f"{name}_widgets{s}_after.png", report)
    report.control_seconds = time.monotonic() - t0
    return report


def _shot(page, scope: str, path: Path, report: Report) -> None:
    try:
        page.locator(f'[data-fg-scope="{scope}"]').first.screenshot(path=str(path), timeout=15_000)
        report.screenshots.append(str(path))
    except Exception as exc:  # noqa: BLE001 - a missing screenshot must not hide the real result
        report.screenshots.append(f"{path} (failed: {type(exc).__name__})")


def failures(report: Report, expected: dict | None = None) -> list[str]:
    """Return one readable line per problem: cell errors, controls that did not move or change
    what they drive, kernel tracebacks, and controls the kernel created that the page lacks."""
    out = [f"cell error: {e.strip().splitlines()[-1] if e.strip() else e}" for e in report.errors]
    for c in report.controls:
        if c.ok:
            continue
        what = f"{c.kind} '{c.label}' (output area {c.scope})"
        if not c.moved:
            out.append(f"{what}: did not move ({c.note or 'value stayed ' + c.value_before})")
        elif not c.changed and c.text_only:
            out.append(f"{what}: moved {c.value_before} -> {c.value_after} but the read-out it drives did not change")
        elif not c.changed:
            out.append(f"{what}: moved {c.value_before} -> {c.value_after} but the picture did not change"
                       + (" (only a read-out did)" if c.readout_changed else ""))
        if c.kernel_errors:
            out.append(f"{what}: the kernel logged {'; '.join(c.kernel_errors)}")
    for kind, n in (expected or {}).items():
        seen = sum(1 for c in report.controls if c.kind == kind)
        if seen < n:
            out.append(f"the kernel created {n} {kind} widget(s) but the page shows {seen}")
    return out


def summary(report: Report) -> str:
    """Return a short table of the controls and what happened to each."""
    rows = [f"{report.name}: run {report.run_seconds:.1f} s, controls {report.control_seconds:.1f} s"]
    for c in report.controls:
        state = "skipped" if c.skipped else ("ok" if c.ok else "FAIL")
        drives = "read-out" if c.text_only else "picture"
        rows.append(f"  [{state:7}] {c.kind:8} {c.label[:24]:24} {c.value_before} -> {c.value_after}"
                    f" {drives} changed={c.changed} {c.seconds:.1f}s {' '.join(c.kernel_errors)[:80]}")
    return "\n".join(rows)
