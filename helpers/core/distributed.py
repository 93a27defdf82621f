"""Several processes, one training run: joining torchrun's process group, averaging gradients,
global batch statistics, and the few things every process must agree on.

    torchrun --nproc_per_node=8 -m helpers.tools.train --model dcgan --profile full --data data/celeba

Every function here is a no-op (or returns its input) in one process, so the notebooks' path runs
the same operations, draws the same random numbers and gets the same numbers as before.

Why gradients are averaged by hand rather than by DistributedDataParallel's reducer. DDP averages
inside `backward()` through hooks on the parameters of the module it wraps, so it assumes one
forward and one backward per iteration. These GAN steps break that assumption on purpose: D runs
on real and on fake images separately (batch norm must see them apart), runs again with its
weights frozen (`requires_grad False`) inside G's update, again on interpolates for the gradient
penalty (`autograd.grad(create_graph=True)`, which DDP does not support), and BEGAN takes both
networks' gradients with `torch.autograd.grad`, which never reaches DDP's hooks. Fader switches D
between train and eval inside the step; WGAN steps skip G's backward on critic steps. Each of
these needs a DDP workaround (`no_sync`, `find_unused_parameters`, `static_graph`, unwrapping),
and a mistake shows up as a hang or as silently different weights. Instead, each model's step
calls `average_gradients(opt)` before every optimiser step, in plain sight: one flattened
all-reduce of that optimiser's gradients, after backward and before gradient clipping, so each
process applies the gradient of the global batch's loss (as NVlabs' StyleGAN3 training loop does).
The cost is that communication does not overlap the backward pass. The Trainer broadcasts rank 0's
weights at start; tests/test_golden.py checks that every model's optimiser steps follow an averaging.

Batch norm: `sync_batchnorm` swaps every batch norm of the trained networks for one whose training
statistics are those of the global batch, as one GPU with the whole batch computes them: on CUDA
`torch.nn.SyncBatchNorm` (NCCL), elsewhere this module's `SyncBatchNorm` (torch's refuses CPU
tensors; this one works on any device and backend). It costs two small collectives per layer and
step, each a point where processes wait for each other: `prepare(..., sync_bn=False)` keeps each
process's own statistics instead (a run setting).
`batch_mean` / `batch_var` do the same for losses built on batch moments (feature matching).
"""
from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

_CONTROL = None  # a gloo group for CPU-side agreements when the data group is NCCL (no GPU sync per step)
_STOP: list[int] = []  # signals received (install_stop_signals)


# ---- the process group ---------------------------------------------------------------------------
def world_size() -> int:
    """Return the number of processes in the run (1 without an initialised process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Return this process's rank (0 in one process)."""
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    """True on the process that writes files and prints (rank 0)."""
    return rank() == 0


def init(device: str | None = None) -> torch.device:
    """Return this process's device after joining the process group torchrun describes (RANK,
    WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); one process: just the device.

    device: 'cuda', 'cpu', ... (default: the local GPU when there is one). Backend NCCL on CUDA,
    gloo on CPU. Under torchrun, `cuda` means cuda:LOCAL_RANK.
    """
    global _CONTROL
    procs, local = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local if procs > 1 else torch.cuda.current_device())
    if procs > 1 and world_size() == 1:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        _CONTROL = dist.new_group(backend="gloo") if dev.type == "cuda" else None
    return dev


def shutdown(wait: bool = True) -> None:
    """Leave the process group, after every process got here when `wait` (not after an error: the
    others may never get here, and torchrun stops them)."""
    global _CONTROL
    if world_size() > 1:
        if wait:
            dist.barrier(group=_CONTROL)
        dist.destroy_process_group()
    _CONTROL = None


@contextlib.contextmanager
def session(device: str | None = None):
    """Inside: this process in torchrun's process group, on the device init() returns (yielded);
    left afterwards, without waiting for the others after an error (they may never get there)."""
    dev = init(device)
    try:
        yield dev
    except BaseException:
        shutdown(wait=False)
        raise
    shutdown()


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


@contextlib.contextmanager
def local_first():
    """Inside, each node's local rank 0 runs first and the others after it (e.g. building a cache)."""
    first = int(os.environ.get("LOCAL_RANK", "0")) == 0
    if world_size() > 1 and not first:
        dist.barrier(group=_CONTROL)
    yield
    if world_size() > 1 and first:
        dist.barrier(group=_CONTROL)


# ---- gradients and weights -----------------------------------------------------------------------
def average_gradients(*optimizers: torch.optim.Optimizer) -> None:
    """Replace the gradients of the optimisers' parameters by their mean over all processes.

    Call it after backward and before clipping or stepping: every process then steps with the
    gradient of the mean loss over the global batch. One all-reduce per dtype and device.
    """
    if world_size() == 1:
        return
    params = {id(p): p for opt in optimizers for g in opt.param_groups for p in g["params"] if p.grad is not None}
    buckets: dict = {}
    for p in params.values():
        buckets.setdefault((p.grad.device, p.grad.dtype), []).append(p.grad)
    for grads in buckets.values():
        flat = torch.cat([g.reshape(-1) for g in grads])  # reshape: channels_last gradients too
        dist.all_reduce(flat)
        flat.div_(world_size())
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view(g.shape))


def prepare(modules: dict, trained: set, sync_bn: bool = True) -> None:
    """Make a trainer's modules one run over the processes: batch norm of the `trained` ones over the
    global batch unless not `sync_bn` (the weight average keeps plain batch norm: only rank 0 samples
    from it), and rank 0's weights everywhere."""
    if world_size() > 1:
        for k in sorted(trained) if sync_bn else ():
            sync_batchnorm(modules[k])
        broadcast_modules(modules)


def broadcast_modules(modules: dict) -> None:
    """Copy rank 0's parameters and buffers into every process's modules (same start everywhere)."""
    if world_size() > 1:
        for name in sorted(modules):
            for t in modules[name].state_dict().values():
                dist.broadcast(t, 0)


def from_rank0(fn):
    """Return fn() as rank 0 computed it (read a checkpoint once, whatever each node's disk holds);
    an exception raised there is raised on every process."""
    if world_size() == 1:
        return fn()
    box = [None]
    if rank() == 0:
        try:
            box[0] = ("ok", fn())
        except Exception as err:  # every process must raise it, or the others would wait forever
            box[0] = ("error", err)
    dist.broadcast_object_list(box, src=0, group=_CONTROL)
    status, value = box[0]
    if status == "error":
        raise value
    return value


# ---- agreements the loop needs -------------------------------------------------------------------
def agree(seconds: float, stop: bool) -> tuple[float, bool]:
    """Return (the largest training time of any process, whether any process must stop): the loop's
    time budgets, timed checkpoints and signals then act at the same step everywhere."""
    if world_size() == 1:
        return seconds, stop
    t = torch.tensor([seconds, float(stop)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_CONTROL)
    return float(t[0]), bool(t[1])


def mean_over_ranks(values: dict) -> dict:
    """Return {key: mean over processes} of a dict of floats with the same keys everywhere."""
    if world_size() == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t, group=_CONTROL)
    return {k: float(v) / world_size() for k, v in zip(keys, t)}


def losses(*tensors: torch.Tensor) -> list[float]:
    """Return the scalar losses as floats averaged over processes: the global batch's means."""
    values = [float(t.detach()) for t in tensors]
    if world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, group=_CONTROL)
    return [float(v) / world_size() for v in t]


def peak_memory_gib(device) -> list[float]:
    """Return every process's peak CUDA memory in GiB, rank order ([] off CUDA)."""
    if torch.device(device).type != "cuda":
        return []
    mine = torch.tensor([torch.cuda.max_memory_allocated(device) / 2**30], dtype=torch.float64)
    if world_size() == 1:
        return [float(mine)]
    out = [torch.zeros_like(mine) for _ in range(world_size())]
    dist.all_gather(out, mine, group=_CONTROL)
    return [float(t) for t in out]


# ---- random numbers ------------------------------------------------------------------------------
def _rng_state(device) -> dict:
    cuda = torch.device(device).type == "cuda"
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if cuda else None}


def gather_rng(device) -> list | None:
    """Return every process's RNG state (rank order) for a checkpoint; None in one process."""
    if world_size() == 1:
        return None
    out = [None] * world_size()
    dist.all_gather_object(out, _rng_state(device), group=_CONTROL)
    return out


def split_rng(device, saved: list | None = None) -> None:
    """Give each process its own random stream: its saved one when `saved` (gather_rng's list) is
    of this world size, else rank 0 keeps the current stream (the one-process run's) and every
    other rank seeds a stream derived from it and its rank (noise differs across processes)."""
    if world_size() == 1:
        return
    if saved is not None and len(saved) == world_size():
        state = saved[rank()]
        torch.set_rng_state(state["torch"])
        if state["cuda"] is not None and torch.device(device).type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], device)
    elif rank() > 0:
        g = torch.Generator()
        g.set_state(torch.get_rng_state())
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)) + rank())


# ---- batch statistics of the global batch --------------------------------------------------------
class _AllSum(torch.autograd.Function):
    """Sum over processes. Every process's loss depends on every process's input through the sum,
    so the gradient of an input is the sum of all processes' gradients of the output."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad):
        return _AllSum.apply(grad)


def batch_mean(x: torch.Tensor) -> torch.Tensor:
    """Return x.mean(0) over the global batch (every process's rows); differentiable. x: (B, ...)."""
    if world_size() == 1:
        return x.mean(0)
    return _AllSum.apply(x.sum(0)) / (x.shape[0] * world_size())  # the loader gives every process the same share


def batch_var(x: torch.Tensor) -> torch.Tensor:
    """Return x.var(0) (unbiased) over the global batch; differentiable. x: (B, ...)."""
    if world_size() == 1:
        return x.var(0)
    n = x.shape[0] * world_size()
    return batch_mean((x - batch_mean(x)).pow(2)) * (n / (n - 1))


class _GlobalBatchNorm(torch.autograd.Function):
    """Batch norm of x (B, C, ...) with the statistics of every process's rows, and its gradient
    (the batch-norm backward with the two per-channel sums taken over all processes). Returns
    (y, mean, biased var); the statistics carry no gradient (they feed the running averages)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims, shape = [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)
        _, mean_r, invstd_r = torch.native_batch_norm(x, None, None, None, None, True, 0.0, eps)  # fused stats
        count = torch.full_like(mean_r[:1], x.numel() / x.shape[1])
        stats = [torch.empty(2 * len(mean_r) + 1, device=x.device) for _ in range(world_size())]
        dist.all_gather(stats, torch.cat([mean_r, invstd_r.pow(-2) - eps, count]))
        means, variances, counts = torch.stack(stats).split([len(mean_r), len(mean_r), 1], dim=1)
        n = counts.sum()
        mean = (counts * means).sum(0) / n  # exact pairwise combination (Chan et al.)
        var = (counts * (variances + (means - mean).pow(2))).sum(0) / n
        invstd = torch.rsqrt(var + eps)
        scale = invstd * weight if weight is not None else invstd
        shift = (bias if bias is not None else 0) - mean * scale
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.n, ctx.dims, ctx.shape = float(n), dims, shape
        ctx.mark_non_differentiable(mean, var)
        return torch.addcmul(shift.view(shape), x, scale.view(shape)), mean, var

    @staticmethod
    def backward(ctx, grad, _mean, _var):
        x, weight, mean, invstd = ctx.saved_tensors
        dims, shape, n = ctx.dims, ctx.shape, ctx.n
        sum_g = grad.sum(dims)
        sum_gxhat = ((grad * x).sum(dims) - mean * sum_g) * invstd  # sum of grad * normalised x
        both = torch.cat([sum_g, sum_gxhat])
        dist.all_reduce(both)  # every process's loss depends on this one's rows through the statistics
        g1, g2 = both.split(len(mean))
        a = invstd * weight if weight is not None else invstd
        b = -a * invstd * g2 / n
        c = -a * g1 / n - b * mean
        dx = torch.addcmul(torch.addcmul(c.view(shape), x, b.view(shape)), grad, a.view(shape))
        return dx, sum_gxhat if weight is not None else None, sum_g if weight is not None else None, None


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm that normalises with the global batch's statistics in training (one process, or
    eval mode: the ordinary batch norm). Any input (B, C, ...); parameters and buffers as BatchNorm.
    One all-gather forward and one all-reduce backward per layer; no double backward (critics
    with a gradient penalty use layer norm)."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        # fp32 statistics and arithmetic under bf16 autocast, as batch norm does
        y, mean, var = _GlobalBatchNorm.apply(x.float(), self.weight, self.bias, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                n = x.numel() / x.shape[1] * world_size()
                self.running_mean.lerp_(mean, m)
                self.running_var.lerp_(var * n / (n - 1), m)
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """Return module with every batch norm inside replaced by a SyncBatchNorm holding the very same
    parameters and buffers (optimisers built before keep working); same state_dict keys."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SyncBatchNorm):
            new = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            new.weight, new.bias = child.weight, child.bias
            for key in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(new, key, getattr(child, key))
            setattr(module, name, new.train(child.training))
        else:
            sync_batchnorm(child)
    return module


# ---- preemption ----------------------------------------------------------------------------------
def install_stop_signals(signals=(signal.SIGTERM,)) -> None:
    """On these signals (a scheduler's SIGTERM), ask the loop to checkpoint and stop after the step
    in progress instead of dying mid-epoch. Headless runs only: notebooks keep the default."""
    for sig in signals:
        signal.signal(sig, lambda signum, frame: _STOP.append(signum))


def stop_requested() -> bool:
    """True once a signal installed by install_stop_signals arrived."""
    return bool(_STOP)
