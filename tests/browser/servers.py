"""Start and always stop the servers the browser suite drives: JupyterLab and Voila.

Everything is bounded: a port in use, a server that exits or one that never answers ends in a
ServerError with the log's tail after a fixed wait, never a hang. Servers run in their own process
group; `Server.stop` ends the group and then the kernels the server started (found by their
connection files in the server's private runtime dir, so only processes this suite started are
ever signalled). Notebooks are served as copies with a census cell appended, which prints the
widgets the kernel created so the page can be checked to show them all.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Kernel-side widget class name -> control kind, for the census cell (see CENSUS_SOURCE).
CENSUS_KINDS = {"slider": r"Slider$", "toggle": r"^ToggleButtons$", "dropdown": r"^Dropdown$", "checkbox": r"^Checkbox$",
                "button": r"^Button$", "upload": r"^FileUpload$"}
CENSUS_MARK = "FACEGAN_WIDGET_CENSUS"
CENSUS_SOURCE = f'''# appended by tests/browser: which widgets the kernel created (the page must show them all)
import json as _fg_json
from ipywidgets.widgets.widget import _instances as _fg_instances
_fg_kinds = {{}}
for _fg_w in list(_fg_instances.values()):
    _fg_kinds[type(_fg_w).__name__] = _fg_kinds.get(type(_fg_w).__name__, 0) + 1
print("{CENSUS_MARK}", _fg_json.dumps(_fg_kinds, sort_keys=True))'''



class ServerError(RuntimeError):
    """A server could not be started (port in use, exited early, never answered)."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_port_free(port: int) -> None:
    """Raise ServerError when something already listens on 127.0.0.1:port."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise ServerError(f"port {port} on 127.0.0.1 is already in use: stop what listens there or pick another port")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Server:
    """A server process in its own process group, with its log file and private runtime dir."""

    name: str
    port: int
    token: str
    proc: subprocess.Popen
    log_path: Path
    runtime_dir: Path
    base_url: str = ""
    root_dir: str = ""
    _log_offset: int = 0

    def log_tail(self, n: int = 40) -> str:
        """Return the last n lines of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def new_log(self) -> str:
        """Return what the server and its kernels logged since the last call."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except OSError:
            return ""
        self._log_offset += len(data)
        return data.decode(errors="replace")

    def api(self, method: str, path: str, timeout: float = 10.0):
        """Call the Jupyter REST API; return the decoded JSON (None for empty bodies)."""
        sep = "&" if "?" in path else "?"
        req = urllib.request.Request(f"{self.base_url}{path}{sep}token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def delete_sessions(self) -> None:
        """Shut down every kernel session (a fresh notebook must not reuse an old kernel)."""
        for s in self.api("GET", "/api/sessions") or []:
            try:
                self.api("DELETE", f"/api/sessions/{s['id']}", timeout=30)
            except urllib.error.URLError:
                pass

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server's process group (TERM, then KILL after `grace` s) and its kernels."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        kill_kernels_of(self.runtime_dir)


def kill_kernels_of(runtime_dir: Path) -> list[int]:
    """Kill kernels whose command line names a connection file in `runtime_dir`; return their pids.

    jupyter_client starts kernels in a new session, so killing the server's group misses them; the
    private runtime dir identifies exactly the kernels this suite's servers started.
    """
    key, killed = str(runtime_dir), []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if key in cmdline and int(proc.name) != os.getpid():
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
            except ProcessLookupError:
                pass
    return killed


def start_server(name: str, cmd: list[str], port: int, token: str, workdir: Path, env: dict,
                 ready_path: str | None, timeout: float = 60.0) -> Server:
    """Start `cmd` (which must listen on 127.0.0.1:port) and wait until it answers.

    ready_path: an HTTP path that answers 200 once the server is up (None: a TCP connect is
    enough). Raises ServerError, with the log's tail, when the port is taken, the process exits,
    or it does not answer within `timeout` seconds; the process group is killed first.
    """
    assert_port_free(port)
    workdir.mkdir(parents=True, exist_ok=True)
    runtime_dir = workdir / f"{name}-runtime"
    runtime_dir.mkdir(exist_ok=True)
    env = {**env, "JUPYTER_RUNTIME_DIR": str(runtime_dir)}
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    server = Server(name, port, token, proc, log_path, runtime_dir, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    try:
        while True:
            code = proc.poll()
            if code is not None:
                in_use = "in use" in server.log_tail().lower()
                raise ServerError(f"{name} exited with code {code} before answering on port {port}"
                                  f"{' (port already in use)' if in_use else ''}; log tail:\n{server.log_tail()}")
            if _listening(port):
                if ready_path is None:
                    return server
                try:
                    sep = "&" if "?" in ready_path else "?"
                    url = f"{server.base_url}{ready_path}{sep}token={token}"
                    with urllib.request.urlopen(url, timeout=5) as r:
                        if r.status == 200:
                            return server
                except (urllib.error.URLError, OSError):
                    pass
            if time.monotonic() > deadline:
                raise ServerError(f"{name} did not answer on 127.0.0.1:{port} within {timeout:.0f} s; "
                                  f"log tail:\n{server.log_tail()}")
            time.sleep(0.25)
    except BaseException:
        server.stop(grace=3)
        raise


def lab_settings(settings_dir: Path) -> None:
    """Write JupyterLab user settings: no news/update pop-up, every cell rendered (no windowing)."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for rel, value in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def server_env(workdir: Path, profile: str = "smoke") -> dict:
    """Return the environment for a server and its kernels: given profile, throwaway checkpoints/outputs."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # a person's kernel uses the inline backend; conftest's Agg would hide figures
    env.update({
        "FACEGAN_PROFILE": profile,
        "FACEGAN_CHECKPOINTS": str(workdir / "checkpoints"),
        "FACEGAN_OUTPUTS": str(workdir / "outputs"),
        "JUPYTERLAB_SETTINGS_DIR": str(workdir / "lab-user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(workdir / "lab-workspaces"),
        "PYTHONUNBUFFERED": "1",
    })
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_lab(root_dir: Path, workdir: Path, env: dict, port: int | None = None, timeout: float = 90.0) -> Server:
    """Start JupyterLab serving root_dir on 127.0.0.1 with a fresh token and a free port."""
    port = port or free_port()
    token = os.urandom(16).hex()
    lab_settings(Path(env["JUPYTERLAB_SETTINGS_DIR"]))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", "--allow-root",
           f"--ServerApp.root_dir={root_dir}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    return start_server("jupyterlab", cmd, port, token, workdir, env, "/api/status", timeout)


def start_voila(notebook: Path, workdir: Path, env: dict, port: int | None = None, timeout: float = 60.0) -> Server:
    """Start Voila serving one notebook as a dashboard on 127.0.0.1 with a fresh token and a free port."""
    port = port or free_port()
    token = os.urandom(16).hex()
    cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.port_retries=0",
           "--Voila.ip=127.0.0.1", f"--Voila.token={token}", "--show_tracebacks=True"]
    # Voila runs the notebook on every GET of '/', so readiness is a plain TCP connect.
    return start_server("voila", cmd, port, token, workdir, env, None, timeout)


def copy_with_census(src: Path, dst: Path) -> Path:
    """Copy a notebook without its stored outputs, appending the census cell that prints which
    widgets the kernel created.

    Stored (demo) outputs are cleared so that every picture, error and execution count the
    browser sees comes from this run, and "Run All finished" can be told from "never started".
    """
    import nbformat

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nb.cells.append(nbformat.v4.new_code_cell(CENSUS_SOURCE))
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


def expected_controls(census: dict | None) -> dict:
    """Return {kind: count} of drivable controls the kernel created, from the census printout."""
    out = {k: 0 for k in CENSUS_KINDS}
    for cls, n in (census or {}).items():
        for kind, pattern in CENSUS_KINDS.items():
            if re.search(pattern, cls):
                out[kind] += n
    return out


