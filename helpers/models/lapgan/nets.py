"""LAPGAN (notebook 05): Laplacian pyramids and the networks of each pyramid level.

Denton, Chintala, Szlam & Fergus 2015, "Deep Generative Image Models using a Laplacian Pyramid of
Adversarial Networks" (section 3), with the networks of the Torch face generator built on
Facebook's eyescream code for Labeled Faces in the Wild:

- a base GAN draws the coarsest image (16x16) from noise: G is noise -> dense 2048 (PReLU) -> all
  pixels (sigmoid); D is a small conv net plus a dense branch from the pixels to its last layer
  (`base_arch='fc'`), or notebook 01's convolutional DCGAN at 16 px (`base_arch='dcgan'`: the
  dense G is what limits the pyramid on real faces, docs/experiments.md);
- each finer level k is a conditional GAN: G_k sees the upsampled coarser image l(I_{k+1}) plus a
  noise plane and draws the band-pass residual h_k; D_k sees (h_k, l(I_{k+1})) and says real/fake.
  An image is built coarse to fine: I_k = l(I_{k+1}) + h_k (equation 4 of the paper).

The original's sigmoid output in [0, 1] is mapped to the project's [-1, 1] at G's boundary
(2 * sigmoid - 1), so images are (B, C, H, W) in [-1, 1] everywhere; residuals are (B, C, H, W),
unbounded (in practice within [-2, 2]).
"""
from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F

from ...gan import INITS, Projection, doubling, down_stack, num_stages, up_stack
from .config import LapGANConfig, level_sizes  # noqa: F401


# --------------------------------------------------------------------------- the pyramid
def downsample(x: torch.Tensor) -> torch.Tensor:
    """Return x at half its side: 2x2 average (the pyramid's d(.)), (B, C, H/2, W/2)."""
    return F.avg_pool2d(x, 2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Return x at twice its side, bilinear (the pyramid's u(.)), (B, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Return x average-pooled down to size x size (size divides x's side)."""
    while x.shape[-1] > size:
        x = downsample(x)
    if x.shape[-1] != size:
        raise ValueError(f"cannot reach {size} px from {x.shape[-1]} px by halving")
    return x


def laplacian_pyramid(x: torch.Tensor, base_size: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Return (coarse image at base_size, residuals coarse to fine) with x = u(...u(coarse)+h1...)+hK.

    x: (B, C, S, S) in [-1, 1]; residuals[i]: (B, C, 2^(i+1) base_size, ...). Exact inverse:
    `reconstruct` (section 3.1, equations 1-2).
    """
    sizes = level_sizes(base_size, x.shape[-1])
    images = [x]
    for _ in sizes[:-1]:
        images.append(downsample(images[-1]))
    images = images[::-1]  # coarse to fine
    residuals = [fine - upsample(coarse) for coarse, fine in zip(images[:-1], images[1:])]
    return images[0], residuals


def reconstruct(coarse: torch.Tensor, residuals: list[torch.Tensor]) -> torch.Tensor:
    """Return the finest image from a coarse image and its residuals (I_k = u(I_{k+1}) + h_k)."""
    x = coarse
    for h in residuals:
        x = upsample(x) + h
    return x


# --------------------------------------------------------------------------- networks
class BaseGenerator(nn.Module):
    """Base G: noise (B, z_dim) -> dense g_hidden + PReLU -> every pixel, sigmoid -> [-1, 1].

    Returns (B, channels, size, size) in [-1, 1] (2 * sigmoid - 1 of the original's [0, 1] output).
    """

    def __init__(self, z_dim: int = 100, hidden: int = 2048, size: int = 16, channels: int = 3):
        super().__init__()
        self.z_dim, self.size, self.channels = z_dim, size, channels
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.PReLU(),
                                 nn.Linear(hidden, channels * size * size))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.sigmoid(self.net(z.flatten(1)))  # (B, C*S*S) in [0, 1]
        return (2 * x - 1).view(-1, self.channels, self.size, self.size)  # (B, C, S, S) in [-1, 1]


class BaseDiscriminator(nn.Module):
    """Base D: (B, C, S, S) in [-1, 1] -> one logit (B, 1).

    3x3 conv w0, 3x3 conv w1, 2x2 average pool, 3x3 conv w2 stride 2, 3x3 conv w3 stride 2 (PReLU
    after each), spatial dropout, dense d_fc (PReLU), dropout, then one linear logit that also sees
    a small dense branch taken straight from the pixels (the original needed it for D to start
    learning at all).
    """

    def __init__(self, size: int = 16, channels: int = 3, convs=(128, 128, 512, 1024), fc: int = 1024,
                 dense: int = 128, dropout: float = 0.5):
        super().__init__()
        w0, w1, w2, w3 = convs
        self.features = nn.Sequential(
            nn.Conv2d(channels, w0, 3, padding=1), nn.PReLU(),
            nn.Conv2d(w0, w1, 3, padding=1), nn.PReLU(),
            nn.AvgPool2d(2),  # (B, w1, S/2, S/2)
            nn.Conv2d(w1, w2, 3, stride=2, padding=1), nn.PReLU(),  # (B, w2, S/4, S/4)
            nn.Conv2d(w2, w3, 3, stride=2, padding=1), nn.PReLU(),  # (B, w3, S/8, S/8)
            nn.Dropout2d(dropout))
        side = size // 8
        if side < 1:
            raise ValueError(f"base D needs images of at least 8 px, got {size}")
        self.fc = nn.Sequential(nn.Linear(w3 * side * side, fc), nn.PReLU(), nn.Dropout(dropout))
        self.dense = nn.Sequential(nn.Linear(channels * size * size, dense), nn.PReLU())
        self.out = nn.Linear(fc + dense, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.features(x).flatten(1))  # (B, fc)
        d = self.dense(x.flatten(1))  # (B, dense): the pixels' shortcut to the last layer
        return self.out(torch.cat([h, d], 1))  # (B, 1)


class ConvBaseGenerator(nn.Module):
    """Convolutional base G (`base_arch='dcgan'`): notebook 01's DCGAN generator at the base size.

    z (B, z_dim) -> linear + batch norm + ReLU to a (top, 4, 4) map -> stride-2 transposed convs
    (batch norm + ReLU between, tanh last) -> (B, channels, size, size) in [-1, 1].
    """

    def __init__(self, z_dim: int, conv_dim: int, size: int = 16, channels: int = 3):
        super().__init__()
        widths = doubling(conv_dim, num_stages(size))[::-1]  # e.g. [64, 32] at 16 px
        self.stem = Projection(z_dim, widths[0], 4)
        self.features = up_stack(widths, channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(self.stem(z.flatten(1)))  # (B, C, S, S)


class ConvBaseDiscriminator(nn.Module):
    """Convolutional base D (`base_arch='dcgan'`): notebook 01's DCGAN discriminator at the base size.

    (B, C, S, S) -> stride-2 4x4 convs down to 4x4 (leaky ReLU, batch norm after the first) -> one logit (B, 1).
    """

    def __init__(self, conv_dim: int, size: int = 16, channels: int = 3):
        super().__init__()
        widths = doubling(conv_dim, num_stages(size))  # e.g. [32, 64] at 16 px
        self.features = down_stack(channels, widths, "batch")
        self.fc = nn.Linear(widths[-1] * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))  # (B, 1)


class LevelGenerator(nn.Module):
    """Level G: (upsampled coarse (B, C, S, S), noise (B, P, S, S)) -> residual (B, C, S, S).

    3x3 conv w0 (PReLU), 7x7 conv w1 (PReLU), 5x5 conv -> C channels, no activation: the residual
    is a band-pass image of either sign (Denton et al. 2015, section 3.2).
    """

    def __init__(self, channels: int = 3, widths=(64, 128), noise_planes: int = 1):
        super().__init__()
        self.channels, self.noise_planes = channels, noise_planes
        w0, w1 = widths
        self.net = nn.Sequential(
            nn.Conv2d(channels + noise_planes, w0, 3, padding=1), nn.PReLU(),
            nn.Conv2d(w0, w1, 7, padding=3), nn.PReLU(),
            nn.Conv2d(w1, channels, 5, padding=2))

    def forward(self, up: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([up, noise], 1))  # (B, C, S, S)


class LevelDiscriminator(nn.Module):
    """Level D: (residual (B, C, S, S), upsampled coarse (B, C, S, S)) -> one logit (B, 1).

    The residual and its condition enter as stacked channels; 3x3 conv w, 3x3 conv w (PReLU),
    2x2 max pool, dropout, dense fc (PReLU), dropout, one logit.
    """

    def __init__(self, size: int = 32, channels: int = 3, width: int = 64, fc: int = 512, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2 * channels, width, 3, padding=1), nn.PReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.PReLU(),
            nn.MaxPool2d(2), nn.Dropout(dropout))  # (B, width, S/2, S/2)
        self.head = nn.Sequential(nn.Linear(width * (size // 2) ** 2, fc), nn.PReLU(), nn.Dropout(dropout),
                                  nn.Linear(fc, 1))

    def forward(self, residual: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(torch.cat([residual, up], 1)).flatten(1))  # (B, 1)


def build_level(cfg: LapGANConfig, level: int, channels: int) -> dict:
    """Return {'D', 'G'} of pyramid level `level` (0 = base at base_size, k = the k-th refinement)."""
    sizes = cfg.sizes
    if not 0 <= level < len(sizes):
        raise ValueError(f"level {level} does not exist: this pyramid has levels 0..{len(sizes) - 1} ({sizes})")
    size = sizes[level]
    if level == 0 and cfg.base_arch == "dcgan":
        D = ConvBaseDiscriminator(cfg.base_conv_dim, size, channels)
        G = ConvBaseGenerator(cfg.z_dim, cfg.base_conv_dim, size, channels)
    elif level == 0 and cfg.base_arch == "fc":
        D = BaseDiscriminator(size, channels, cfg.d_conv_dims, cfg.d_hidden, cfg.d_dense, cfg.d_dropout)
        G = BaseGenerator(cfg.z_dim, cfg.g_hidden, size, channels)
    elif level == 0:
        raise ValueError(f"base_arch={cfg.base_arch!r}: use 'fc' (the original's) or 'dcgan'")
    else:
        D = LevelDiscriminator(size, channels, cfg.level_d_conv_dim, cfg.level_d_hidden, cfg.d_dropout)
        G = LevelGenerator(channels, cfg.level_g_conv_dims, cfg.noise_planes)
    init = INITS.get(cfg.init)
    if init is None:
        raise ValueError(f"init={cfg.init!r}: use one of {', '.join(INITS)}")
    return {"D": D.apply(init), "G": G.apply(init)}


def level_name(cfg: LapGANConfig, level: int) -> str:
    """Return 'base16', 'level32', 'level64', ... (the checkpoint sub-folder of a level)."""
    return f"{'base' if level == 0 else 'level'}{cfg.sizes[level]}"


def pyramid_of(x: torch.Tensor, base_size: int) -> list[dict]:
    """Return the Laplacian pyramid of real images in sample_pyramid's format (coarse to fine):

    [{'size', 'image'}, {'size', 'up', 'residual', 'image'}, ...]; x: (N, C, S, S) in [-1, 1].
    """
    coarse, residuals = laplacian_pyramid(x, base_size)
    out, img = [{"size": coarse.shape[-1], "image": coarse}], coarse
    for h in residuals:
        up = upsample(img)
        img = up + h
        out.append({"size": img.shape[-1], "up": up, "residual": h, "image": img})
    return out
