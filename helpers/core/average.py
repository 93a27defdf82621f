"""A running average of a network's weights, kept by the training loop for samples and metrics.

Averaging the generator's weights over the last steps (an exponential moving average) gives
steadier, usually better samples than the live weights (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"; Karras et al. 2018 use it in ProGAN).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
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


@dataclass
class WeightAverage:
    """What the loop averages: modules[source] into modules[source + '_ema'].

    decay: per update (warmed up, see ema_update). The loop updates after every step whose logs
    carry `when` (the key a step logs when it updated the source network: G's loss), and before
    samples, metrics and checkpoints recomputes the average's batch-norm statistics from bn_samples
    inputs of inputs_fn(n, generator) (0 or no inputs_fn: keep the copied ones).
    """

    source: str = "G"
    decay: float = 0.999
    inputs_fn: Callable | None = None
    bn_samples: int = 0
    when: str = "g_loss"

    @property
    def name(self) -> str:
        return f"{self.source}_ema"

    def make(self, modules: dict) -> torch.nn.Module:
        """Return the averaged copy of modules[source], in eval mode (it is only ever evaluated)."""
        if self.source not in modules:
            raise KeyError(f"no module {self.source!r} to average; the modules are {sorted(modules)}")
        return copy.deepcopy(modules[self.source]).eval().requires_grad_(False)

    def update(self, modules: dict, step: int) -> None:
        ema_update(modules[self.name], modules[self.source], self.decay, step=step)

    def recalibrate(self, modules: dict) -> None:
        if self.inputs_fn is not None and self.bn_samples:
            recalibrate_batchnorm(modules[self.name], self.inputs_fn, n=self.bn_samples)
