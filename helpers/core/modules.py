"""Small things every network needs: modes, frozen weights, batched inference, the optimiser."""
from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module):
    """Inside, every module is in eval mode; on exit each gets its own previous mode back
    (an averaged generator that lives in eval mode stays there)."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module):
    """Inside, the modules' parameters need no gradient; on exit each gets its own flag back.

    For a generator's update through its discriminator: autograd then computes only the gradient
    with respect to D's input, not D's weight gradients, which that update never uses (and the next
    D update zeroes). Same G gradients, fewer operations. Also for optimising inputs through a
    fixed network.
    """
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def device_of(module: torch.nn.Module) -> torch.device:
    """Return the device of a module's first parameter (or buffer); CPU for an empty module."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


@torch.no_grad()
def infer(fn, *inputs: torch.Tensor, modules=(), batch_size: int = 500):
    """Return fn(*chunks) over the inputs in chunks of batch_size, concatenated as float32 CPU tensors.

    modules: put in eval mode meanwhile (default: fn itself when it is a module); inputs move to
    their device. fn may return a tensor or a tuple of tensors (then a tuple comes back).
    """
    modules = tuple(modules) or ((fn,) if isinstance(fn, torch.nn.Module) else ())
    if not inputs or len(inputs[0]) == 0:
        raise ValueError("infer got no inputs (0 rows)")
    device = device_of(modules[0]) if modules else inputs[0].device
    outs = []
    with eval_mode(*modules):
        for i in range(0, len(inputs[0]), batch_size):
            out = fn(*(x[i:i + batch_size].to(device) for x in inputs))
            outs.append(tuple(o.float().cpu() for o in out) if isinstance(out, tuple) else out.float().cpu())
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


def adam(params, lr: float, betas=(0.9, 0.999)) -> torch.optim.Adam:
    """Adam with PyTorch's fused kernel where the parameters' device has one (CPU and CUDA).

    The CPU default updates one tensor at a time; the fused kernel runs the same algorithm with the
    same state in one call (docs/experiments.md has its measured share of a DCGAN step).
    """
    params = list(params)  # tensors, or parameter-group dicts as torch.optim takes them
    groups = [p["params"] if isinstance(p, dict) else p for p in params]
    flat = [t for g in groups for t in ([g] if isinstance(g, torch.Tensor) else list(g))]
    fused = bool(flat) and all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in flat)
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=fused or None)
