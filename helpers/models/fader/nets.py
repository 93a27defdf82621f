"""Fader Networks (notebook 02): the encoder, the attribute-conditioned decoder, the latent discriminator.

Lample, Zeghidour, Usunier, Bordes, Denoyer & Ranzato 2017, "Fader Networks: Manipulating Images
by Sliding Attributes" (NIPS). An encoder E maps a face x to a small latent map z = E(x); a
decoder G rebuilds x from z AND the attributes y, which enter every decoder layer as constant
feature maps [1 - y, y]. A latent discriminator D tries to read y from z; E is trained to fool it,
so z stops carrying y and G has to take y from its attribute inputs: sliding y then edits the face.

Shapes: images (B, C, S, S) in [-1, 1]; attributes y (B, n_attr) in {0, 1} for training, any real
value for editing; latents (B, C_z, latent_size, latent_size).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ...gan import doubling, down_stack
from .config import FaderConfig

INJECT = ("all", "first")  # where the attribute maps enter the decoder (paper: all; ablation: first)


def num_layers(img_size: int, latent_size: int = 2) -> int:
    """Return how many stride-2 layers take img_size down to latent_size (256 -> 2: 7 layers)."""
    n = int(round(math.log2(img_size / latent_size))) if img_size > 0 and latent_size > 0 else 0
    if n < 1 or latent_size * 2**n != img_size:
        raise ValueError(f"img_size={img_size} must be latent_size={latent_size} times a power of two (>= 2x)")
    return n


def channel_ladder(cfg: FaderConfig) -> list[int]:
    """Return the channels after each encoder layer, e.g. [32, 64, 128, 256] at 32 px."""
    return doubling(cfg.conv_dim, num_layers(cfg.img_size, cfg.latent_size), cap=cfg.max_conv_dim)


def attribute_maps(y: torch.Tensor, size: int) -> torch.Tensor:
    """Return the constant maps [1 - y_i, y_i] for every attribute: (B, 2 n_attr, size, size).

    y: (B, n_attr), any real values (the sliders go below 0 and above 1). Paper section 3.1.
    """
    pairs = torch.stack([1 - y, y], dim=2).flatten(1)  # (B, 2 n_attr)
    return pairs[:, :, None, None].expand(-1, -1, size, size)


class Encoder(nn.Module):
    """E: 4x4 stride-2 convolutions, batch norm (not on the first), leaky ReLU 0.2 (paper 4):
    the DCGAN trunk (helpers.gan.down_stack) down to latent_size."""

    def __init__(self, cfg: FaderConfig, channels: int = 3):
        super().__init__()
        ladder = channel_ladder(cfg)
        self.layers = down_stack(channels, ladder, norm="batch")
        self.out_channels = ladder[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return z: (B, out_channels, latent_size, latent_size) for x (B, C, S, S) in [-1, 1]."""
        return self.layers(x)


class Decoder(nn.Module):
    """G: the encoder's mirror, 4x4 stride-2 transposed convs, batch norm + ReLU, tanh output.

    The attributes enter as constant maps [1 - y, y] concatenated to the input of every layer
    (inject='all', the paper) or only of the first (inject='first', the ablation).
    """

    def __init__(self, cfg: FaderConfig, channels: int = 3):
        super().__init__()
        if cfg.inject not in INJECT:
            raise ValueError(f"inject={cfg.inject!r}: use one of {INJECT}")
        self.n_attr, self.inject = len(cfg.attrs), cfg.inject
        ladder = channel_ladder(cfg)
        outs = ladder[::-1][1:] + [channels]  # e.g. 256 -> 128 -> 64 -> 32 -> 3
        self.blocks = nn.ModuleList()
        c_in = ladder[-1]
        for i, c_out in enumerate(outs):
            extra = 2 * self.n_attr if (i == 0 or self.inject == "all") else 0
            last = i == len(outs) - 1
            block = [nn.ConvTranspose2d(c_in + extra, c_out, 4, 2, 1, bias=last)]
            block += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            self.blocks.append(nn.Sequential(*block))
            c_in = c_out

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Return images (B, C, S, S) in [-1, 1] from z (B, C_z, s, s) and attributes y (B, n_attr)."""
        if y.shape != (z.shape[0], self.n_attr):
            raise ValueError(f"attributes must be (B={z.shape[0]}, n_attr={self.n_attr}), got {tuple(y.shape)}")
        h, y = z, y.to(z.dtype)
        for i, block in enumerate(self.blocks):
            if i == 0 or self.inject == "all":
                h = torch.cat([h, attribute_maps(y, h.shape[-1])], dim=1)  # (B, C + 2 n_attr, s, s)
            h = block(h)
        return h


class LatentDiscriminator(nn.Module):
    """D: reads the attributes from z. Conv C512 down to 1x1 (BN, leaky ReLU, dropout 0.3), then
    two fully connected layers (d_hidden, n_attr): paper section 4, official LatentDiscriminator."""

    def __init__(self, cfg: FaderConfig, in_channels: int):
        super().__init__()
        layers, c_in, s = [], in_channels, cfg.latent_size
        while s > 1:
            layers += [nn.Conv2d(c_in, cfg.d_hidden, 4, 2, 1), nn.BatchNorm2d(cfg.d_hidden),
                       nn.LeakyReLU(0.2, inplace=True), nn.Dropout(cfg.d_dropout)]
            c_in, s = cfg.d_hidden, s // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(c_in, cfg.d_hidden), nn.LeakyReLU(0.2, inplace=True),
                                nn.Linear(cfg.d_hidden, len(cfg.attrs)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return one logit per attribute: (B, n_attr) for z (B, C_z, s, s)."""
        return self.fc(self.conv(z).flatten(1))


def build_networks(cfg: FaderConfig, channels: int = 3) -> dict:
    """Return {'E', 'G', 'D'} freshly initialised (PyTorch defaults, as the official code)."""
    E = Encoder(cfg, channels)
    return {"E": E, "G": Decoder(cfg, channels), "D": LatentDiscriminator(cfg, E.out_channels)}


def flip_one(y: torch.Tensor, j: int) -> torch.Tensor:
    """Return a copy of y (B, n_attr) with column j replaced by 1 - y[:, j] (the swap)."""
    out = y.clone()
    out[:, j] = 1 - out[:, j]
    return out
