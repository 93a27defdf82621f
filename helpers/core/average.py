"""A running average of a network's weights, for samples and metrics: each model's step updates it
(ema_update after the generator's optimiser step), and recalibrates its batch norm before evaluation.

Averaging the generator's weights over the last steps (an exponential moving average) gives
steadier, usually better samples than the live weights (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"; Karras et al. 2018 use it in ProGAN).
"""
from __future__ import annotations

import copy
from typing import Callable

import torch

from .modules import device_of


@torch.no_grad()
def ema_update(target: torch.nn.Module, source: torch.nn.Module, decay: float, step: int | None = None) -> None:
    """target <- decay * target + (1 - decay) * source (buffers such as BN statistics copied).

    With `step` (the training step), decay is warmed up as min(decay, (1 + step) / (10 + step)):
    early on a slow average would lag far behind a fast-moving network.
    """
    if step is not None:
        decay = min(decay, (1 + step) / (10 + step))
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, 1 - decay)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)


@torch.no_grad()
def recalibrate_batchnorm(net: torch.nn.Module, inputs_fn: Callable, n: int = 4096, batch_size: int = 256,
                          seed: int = 0) -> None:
    """Recompute net's batch-norm running statistics for its *own* weights ("standing statistics").

    ema_update copies the running statistics of the live network, which were measured for the live
    weights, not for the averaged ones: in eval mode the average would normalise with the wrong
    means and variances. This forwards n inputs in train mode and stores their exact average
    (momentum None). inputs_fn(n, generator) -> a batch of inputs (e.g. latents); a private generator
    seeded by `seed` keeps the global RNG, and so an exact resume, untouched. No batch norm: no-op.
    """
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or n <= 0:
        return
    was_training, momenta = net.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    net.train()
    g = torch.Generator().manual_seed(seed)
    device = device_of(net)
    batch_size = min(batch_size, n)
    for _ in range(-(-n // batch_size)):
        net(inputs_fn(batch_size, g).to(device))
    for m, mom in zip(norms, momenta):
        m.momentum = mom
    net.train(was_training)


def make_average(net: torch.nn.Module) -> torch.nn.Module:
    """Return the averaged copy of net that a step keeps with ema_update: in eval mode, no gradients
    (it is only ever evaluated; the loop leaves every network no optimiser trains in eval mode)."""
    return copy.deepcopy(net).eval().requires_grad_(False)
