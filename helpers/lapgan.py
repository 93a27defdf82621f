"""LAPGAN (notebooks/05_lapgan.ipynb): Laplacian-pyramid GAN networks, pyramids and presets.

Denton, Chintala, Szlam & Fergus 2015, "Deep Generative Image Models using a Laplacian Pyramid of
Adversarial Networks" (section 3), with the networks of the Torch face generator built on
Facebook's eyescream code for Labeled Faces in the Wild:

- a base GAN draws the coarsest image (16x16) from noise: G is noise -> dense 2048 (PReLU) -> all
  pixels (sigmoid); D is a small conv net plus a dense branch from the pixels to its last layer;
- each finer level k is a conditional GAN: G_k sees the upsampled coarser image l(I_{k+1}) plus a
  noise plane and draws the band-pass residual h_k; D_k sees (h_k, l(I_{k+1})) and says real/fake.
  An image is built coarse to fine: I_k = l(I_{k+1}) + h_k (equation 4 of the paper).

Every level trains independently on the pyramids of real images (section 3.3). The original's
sigmoid output in [0, 1] is mapped to the project's [-1, 1] at G's boundary (2 * sigmoid - 1), so
images are (B, C, H, W) in [-1, 1] everywhere; residuals are (B, C, H, W), unbounded (in practice
within [-2, 2]). Training (steps, optimisers, trainers, sampling) is in helpers.lapgan_train.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .weights import INITS


# --------------------------------------------------------------------------- configuration
@dataclass
class LapGANConfig:
    """Every knob of the LAPGAN notebook; saved inside each checkpoint (per level)."""

    base_size: int = 16  # side of the coarsest image, drawn from noise by the base GAN
    img_size: int = 32  # side of the finest image: 32 = one refinement level, 64 = two
    z_dim: int = 100  # base G noise size (noiseDim of the original)
    g_hidden: int = 2048  # base G hidden layer width (dense, PReLU)
    d_convs: tuple = (128, 128, 512, 1024)  # base D: 3x3 conv, 3x3 conv, avg pool, stride-2 conv, stride-2 conv
    d_fc: int = 1024  # base D dense layer after the convolutions
    d_dense: int = 128  # base D's dense branch: pixels -> this width -> the last layer
    d_dropout: float = 0.5  # spatial dropout after D's convolutions and dropout before its last layer
    lvl_g_widths: tuple = (64, 128)  # level G: 3x3 conv, 7x7 conv (PReLU), then 5x5 conv -> residual
    lvl_d_width: int = 64  # level D: two 3x3 convs of this width, max pool, dropout ...
    lvl_d_fc: int = 512  # ... then a dense layer of this width and one logit
    noise_planes: int = 1  # noise channels appended to the upsampled image at each level
    batch_size: int = 32  # real images per D step
    d_iters: int = 1  # D updates per batch (D_iterations)
    g_iters: int = 1  # G updates per batch (G_iterations)
    optimizer: str = "adam"  # 'adam' | 'sgd' | 'adagrad' (both networks, every level)
    lr_g: float = 2e-4  # G learning rate
    lr_d: float = 2e-4  # D learning rate
    momentum: float = 0.0  # SGD momentum
    beta1: float = 0.5  # Adam beta1
    g_l1: float = 0.0  # L1 weight penalty on G (added to the gradients, as the original did)
    g_l2: float = 0.0  # L2 weight penalty on G
    d_l1: float = 0.0  # L1 weight penalty on D
    d_l2: float = 1e-4  # L2 weight penalty on D (the original's default)
    g_clamp: float = 5.0  # clamp G's gradients to [-g_clamp, g_clamp] (0 = off)
    d_clamp: float = 1.0  # clamp D's gradients to [-d_clamp, d_clamp] (0 = off)
    ema: float = 0.0  # decay of a G weight average used for samples (0 = off, as the original)
    diffaugment: str = ""  # DiffAugment policy for D's inputs (levels use only the geometric parts)
    flip: bool = True  # random horizontal flips of the training faces
    examples_per_epoch: int | None = None  # images per epoch (N_epoch; None = the whole set)
    epochs: int = 1000  # epochs per level (the time budget usually ends training first)
    max_seconds: float | None = 180.0  # training time for the whole pyramid (None = no limit)
    base_share: float = 0.5  # fraction of max_seconds given to the base level; the rest is split evenly
    direct_seconds: float | None = 180.0  # budget of the plain 32 px DCGAN it is compared with
    lfw_seconds: float | None = 90.0  # budget of the grayscale pyramid on the 100 LFW faces
    init: str = "normal"  # weight init: 'normal' N(0, 0.02) or 'xavier'
    amp: bool = True  # bf16 autocast on CPU/CUDA (losses stay fp32)
    max_images: int | None = None  # use only the first N training images (smoke tests)
    seed: int = 0  # seeds the loaders' order (the notebook's setup seeds the weights)

    @property
    def sizes(self) -> list[int]:
        """Return the pyramid's sides coarse to fine, e.g. [16, 32] or [16, 32, 64]."""
        return level_sizes(self.base_size, self.img_size)


PRESETS = {
    "smoke": LapGANConfig(z_dim=32, g_hidden=128, d_convs=(16, 16, 32, 32), d_fc=64, d_dense=16,
                          d_dropout=0.25, lvl_g_widths=(16, 16), lvl_d_width=8, lvl_d_fc=32, batch_size=32,
                          max_seconds=6, direct_seconds=5, lfw_seconds=4, examples_per_epoch=256, max_images=512),
    # Widths scaled down for a 2-core CPU; a lighter dropout and a higher lr for a 3-minute budget. No weight
    # average (as the original): in one 180 s run on one core, pyramid FD 668 from the live Gs vs 704 from
    # 0.999 averages (base alone, upsampled: 915 vs 974); two runs without one: 569 and 601.
    "demo": LapGANConfig(g_hidden=1024, d_convs=(32, 32, 64, 128), d_fc=256, d_dense=64, d_dropout=0.25,
                         lvl_g_widths=(32, 64), lvl_d_width=32, lvl_d_fc=256, batch_size=32, ema=0.0,
                         lr_g=4e-4, lr_d=4e-4, base_share=0.6, examples_per_epoch=4096, max_seconds=180, direct_seconds=180),
    # The original's sizes on an LFW (or CelebA) folder, on a GPU: 16 -> 32 -> 64.
    "full": LapGANConfig(img_size=64, batch_size=64, examples_per_epoch=None, epochs=300,
                         max_seconds=None, direct_seconds=None, lfw_seconds=None),
}


def config_for(profile: str, **overrides) -> LapGANConfig:
    """Return the preset of a profile with some fields replaced."""
    if profile not in PRESETS:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(PRESETS)}")
    return replace(PRESETS[profile], **overrides)


# --------------------------------------------------------------------------- the pyramid
def level_sizes(base_size: int, img_size: int) -> list[int]:
    """Return [base_size, 2 * base_size, ..., img_size]; both powers of two, base_size >= 8."""
    for name, v in (("base_size", base_size), ("img_size", img_size)):
        if v < 8 or v & (v - 1):
            raise ValueError(f"{name} must be a power of two >= 8, got {v}")
    if img_size < base_size:
        raise ValueError(f"img_size={img_size} is smaller than base_size={base_size}")
    return [base_size * 2**i for i in range(int(math.log2(img_size // base_size)) + 1)]


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


def build_level(cfg: LapGANConfig, level: int, channels: int) -> tuple[nn.Module, nn.Module]:
    """Return (D, G) of pyramid level `level` (0 = base at base_size, k = the k-th refinement)."""
    sizes = cfg.sizes
    if not 0 <= level < len(sizes):
        raise ValueError(f"level {level} does not exist: this pyramid has levels 0..{len(sizes) - 1} ({sizes})")
    size = sizes[level]
    if level == 0:
        D = BaseDiscriminator(size, channels, cfg.d_convs, cfg.d_fc, cfg.d_dense, cfg.d_dropout)
        G = BaseGenerator(cfg.z_dim, cfg.g_hidden, size, channels)
    else:
        D = LevelDiscriminator(size, channels, cfg.lvl_d_width, cfg.lvl_d_fc, cfg.d_dropout)
        G = LevelGenerator(channels, cfg.lvl_g_widths, cfg.noise_planes)
    init = INITS.get(cfg.init)
    if init is None:
        raise ValueError(f"init={cfg.init!r}: use one of {', '.join(INITS)}")
    return D.apply(init), G.apply(init)


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
