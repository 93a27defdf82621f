"""The DCGAN building blocks several models share (Radford, Metz & Chintala 2016, section 3).

- `down_stack`: 4x4 stride-2 convolutions that halve the map at each stage, leaky ReLU 0.2, a
  normalisation on every stage but the first, no pooling: the DCGAN discriminator's trunk, also
  the SMiLE critic / encoder trunk and the Fader encoder.
- `Projection` + `up_stack`: a linear projection of a vector to a (C, 4, 4) map, then 4x4 stride-2
  transposed convolutions that double it, batch norm + ReLU, tanh at the output: the DCGAN
  generator, also the (class-conditional) SMiLE generator.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMS = ("batch", "layer", "none")


def num_stages(img_size: int) -> int:
    """Return how many stride-2 stages take 4x4 feature maps to `img_size` (32 -> 3, 64 -> 4).

    img_size: a power of two >= 16. D and G both use it, so they stay mirrors.
    """
    stages = int(math.log2(img_size)) - 2 if img_size > 0 else 0
    if img_size < 16 or 4 * 2**stages != img_size:
        raise ValueError(f"img_size must be a power of two >= 16, got {img_size}")
    return stages


def norm2d(kind: str, channels: int) -> nn.Module:
    """Return the normalisation layer for a conv map: 'batch', 'layer' or 'none'."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        # One group = normalise over (C, H, W) per sample: layer norm for conv maps, and it does
        # not mix samples, which the per-sample gradient penalty needs (Gulrajani et al. 4).
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: use one of {NORMS}")


def down_stack(channels: int, widths: list[int], norm: str = "batch") -> nn.Sequential:
    """Return the strided trunk: one 4x4 stride-2 conv per entry of widths (its output channels),
    each followed by a normalisation (not on the first: section 3) and leaky ReLU 0.2.

    (B, channels, S, S) -> (B, widths[-1], S / 2**len(widths), S / 2**len(widths)).
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: use one of {NORMS}")
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(zip([channels, *widths[:-1]], widths)):
        normed = i > 0 and norm != "none"
        # A bias right before a normalisation is subtracted away again: dead weight.
        layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not normed))
        if normed:
            layers.append(norm2d(norm, c_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def doubling(conv_dim: int, stages: int, cap: int | None = None) -> list[int]:
    """Return the channel ladder conv_dim, 2 conv_dim, 4 conv_dim, ... (stages entries, capped)."""
    return [min(conv_dim * 2**i, cap or conv_dim * 2**i) for i in range(stages)]


class Projection(nn.Module):
    """(B, in_dim) -> (B, channels, size, size): linear, batch norm, ReLU (section 3 and figure 1).

    No bias in the linear layer: the batch norm right after it would cancel it.
    """

    def __init__(self, in_dim: int, channels: int, size: int = 4):
        super().__init__()
        self.channels, self.size = channels, size
        self.fc = nn.Linear(in_dim, channels * size * size, bias=False)
        self.norm = nn.BatchNorm2d(channels)

    def pre(self, v: torch.Tensor) -> torch.Tensor:
        """Return the linear layer's output (B, channels * size * size), before batch norm and ReLU."""
        return self.fc(v.flatten(1))

    def post(self, m: torch.Tensor) -> torch.Tensor:
        """Return the map (B, channels, size, size) from pre-activations m (B, channels * size * size)."""
        return F.relu(self.norm(m.reshape(-1, self.channels, self.size, self.size)))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.post(self.pre(v))  # (B, C, size, size)


def up_stack(widths: list[int], channels: int) -> nn.Sequential:
    """Return the generator's upsampling stack: a 4x4 stride-2 transposed conv from each width to the
    next (then to `channels`), batch norm + ReLU between, tanh at the output.

    (B, widths[0], s, s) -> (B, channels, s * 2**len(widths), ...) in [-1, 1].
    """
    layers: list[nn.Module] = []
    outs = [*widths[1:], channels]
    for i, (c_in, c_out) in enumerate(zip(widths, outs)):
        last = i == len(outs) - 1
        layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=last))
        layers += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)
