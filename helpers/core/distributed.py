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

Batch norm over the global batch (`prepare(..., sync_bn=True)`, the default) and the moments of
losses built on batch statistics live in helpers.core.global_batch; starting processes on one
machine (tests, benchmarks) in helpers.core.spawn.
"""
from __future__ import annotations

import contextlib
import os
import signal

import torch
import torch.distributed as dist

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
    from .global_batch import sync_batchnorm

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


# ---- preemption ----------------------------------------------------------------------------------
def install_stop_signals(signals=(signal.SIGTERM,)) -> None:
    """On these signals (a scheduler's SIGTERM), ask the loop to checkpoint and stop after the step
    in progress instead of dying mid-epoch. Headless runs only: notebooks keep the default."""
    for sig in signals:
        signal.signal(sig, lambda signum, frame: _STOP.append(signum))


def stop_requested() -> bool:
    """True once a signal installed by install_stop_signals arrived."""
    return bool(_STOP)
