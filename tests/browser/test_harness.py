"""Servers fail fast and clearly: port in use, a server that exits, a server that never answers;
and a Run All that a starting kernel swallowed is seen as not started."""
import socket
import sys
import time

import pytest

from . import harness, servers


def test_port_in_use_is_a_clear_failure(tmp_path, env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(servers.ServerError, match="already in use"):
            servers.start_lab(tmp_path, tmp_path, env, port=port, timeout=20)
        assert time.monotonic() - t0 < 5


def test_server_that_exits_is_reported_with_its_log(tmp_path, env):
    cmd = [sys.executable, "-c", "import sys; print('boom: cannot start'); sys.exit(3)"]
    with pytest.raises(servers.ServerError, match=r"exited with code 3[\s\S]*boom: cannot start"):
        servers.start_server("fake", cmd, servers.free_port(), "t", tmp_path, env, "/api/status", timeout=20)


def test_server_that_never_answers_times_out_and_is_killed(tmp_path, env):
    cmd = [sys.executable, "-c", "import time; time.sleep(120)"]
    t0 = time.monotonic()
    with pytest.raises(servers.ServerError, match="did not answer .* within 2 s"):
        servers.start_server("silent", cmd, servers.free_port(), "t", tmp_path, env, "/api/status", timeout=2)
    assert time.monotonic() - t0 < 15
    # the process group was killed: no python left running with that command line
    assert not [p for p in _pids_with("time.sleep(120)")], "the silent server was left running"


def _pids_with(text):
    from pathlib import Path

    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    out.append(int(proc.name))
            except OSError:
                pass
    return out


def test_a_busy_kernel_alone_is_not_a_started_run():
    # CI saw this: the first notebook's Run All click was lost while the new kernel was busy
    # starting, the busy status passed for a started run, and the suite waited out its 300 s.
    assert not harness.run_started({"prompts": ["[ ]:", "[ ]:"], "status": "busy"})
    assert not harness.run_started({"prompts": [], "status": "busy"})
    assert harness.run_started({"prompts": ["[*]:", "[ ]:"], "status": "busy"})
    assert harness.run_started({"prompts": ["[1]:", "[ ]:"], "status": "idle"})
