"""Start a few processes of one process group on this machine, as torchrun would, and say clearly
which one died and how (the tests, `make bench-ddp`, `gpu_check --nproc`)."""
from __future__ import annotations

import os
from pathlib import Path


class SpawnError(RuntimeError):
    """A process started by spawn_local failed: `rank`, `signal` (its name when a signal ended it, else
    None); the message names the error and carries the end of that process's output."""

    def __init__(self, message: str, rank: int, signal: str | None):
        super().__init__(message)
        self.rank, self.signal = rank, signal


def spawn_local(fn, nproc: int, *args) -> None:
    """Run fn(*args) in nproc fresh processes on this machine that form one process group, as torchrun
    would start them (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT set in each).

    Started by torchrun's own launcher (torch.distributed.elastic): each process's output is shown
    here as it comes (prefixed with its rank) and kept in a log file, so when one dies, even from a
    signal such as SIGABRT inside a C++ library, the SpawnError raised here says which rank, how,
    and the last lines it wrote (with the Python stack of every thread, from faulthandler).
    """
    import socket
    import tempfile

    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std, start_processes

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    envs = {r: dict(RANK=str(r), WORLD_SIZE=str(nproc), LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(nproc),
                    MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)) for r in range(nproc)}
    with tempfile.TemporaryDirectory(prefix="spawn_local_") as logs:
        ctx = start_processes("spawn_local", _local_process, {r: (fn, args) for r in range(nproc)}, envs,
                              DefaultLogsSpecs(log_dir=logs, redirects=Std.ALL, tee=Std.ALL))
        try:
            result = ctx.wait(period=0.1)
        finally:
            ctx.close()
        if result.failures:  # wait() without a timeout returns only when all ended or one failed
            raise _failure(result, nproc)


def _local_process(fn, args) -> None:
    import faulthandler
    import traceback

    faulthandler.enable(all_threads=True)  # a fatal signal prints every thread's Python stack first
    try:
        fn(*args)
    except BaseException:
        traceback.print_exc()  # into this rank's log, which the parent's SpawnError quotes
        raise


def _last_lines(path: str | None, n: int) -> list[str]:
    if not path or not os.path.exists(path):
        return []
    return [line.rstrip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()][-n:]


def _failure(result, nproc: int, lines: int = 25) -> SpawnError:
    """The SpawnError for the first rank that failed: how, and the last lines of its output."""
    r, failure = min(result.failures.items())  # the launcher reports the first to fail
    sig = failure.signal_name() if failure.exitcode < 0 else None
    how = f"ended by {sig}" if sig else f"exited with code {failure.exitcode}"
    err, out = _last_lines(result.stderrs.get(r), lines), _last_lines(result.stdouts.get(r), lines)
    # the line that names the error goes first (a C++ exception's what(), else Python's): CI summaries show it
    marks = ("what():", "terminate called", "Error", "error")
    said = [line for line in err if not line.lstrip().startswith("File ")]  # not stack frames
    key = next((line for m in marks for line in reversed(said) if m in line), (err or out or [""])[-1])
    return SpawnError(f"rank {r} of {nproc} {how}: {key.strip()}\n--- its last output (stderr, then stdout) ---\n"
                      + "\n".join(err + out), r, sig)
