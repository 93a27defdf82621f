"""LAPGAN's configuration (notebook 05): the Torch face generator's options, with the presets of each profile."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...core.config import choose, run_field


def level_sizes(base_size: int, img_size: int) -> list[int]:
    """Return [base_size, 2 * base_size, ..., img_size]; both powers of two, base_size >= 8."""
    for name, v in (("base_size", base_size), ("img_size", img_size)):
        if v < 8 or v & (v - 1):
            raise ValueError(f"{name} must be a power of two >= 8, got {v}")
    if img_size < base_size:
        raise ValueError(f"img_size={img_size} is smaller than base_size={base_size}")
    return [base_size * 2**i for i in range(int(math.log2(img_size // base_size)) + 1)]


@dataclass
class LapGANConfig:
    """Every knob of the LAPGAN notebook; saved inside each checkpoint (per level)."""

    base_size: int = 16  # side of the coarsest image, drawn from noise by the base GAN
    img_size: int = 32  # side of the finest image: 32 = one refinement level, 64 = two
    z_dim: int = 100  # base G noise size (noiseDim of the original)
    base_arch: str = "fc"  # base GAN: 'fc' (the original's dense G, small conv D) or 'dcgan' (notebook 01's nets)
    base_conv_dim: int = 64  # 'dcgan' base: D's first width, G's last (doubling per stage, as notebook 01)
    g_hidden: int = 2048  # base G hidden layer width (dense, PReLU)
    d_conv_dims: tuple = (128, 128, 512, 1024)  # base D: 3x3 conv, 3x3 conv, avg pool, stride-2 conv, stride-2 conv
    d_hidden: int = 1024  # base D dense layer after the convolutions
    d_dense: int = 128  # base D's dense branch: pixels -> this width -> the last layer
    d_dropout: float = 0.5  # spatial dropout after D's convolutions and dropout before its last layer
    level_g_conv_dims: tuple = (64, 128)  # level G: 3x3 conv, 7x7 conv (PReLU), then 5x5 conv -> residual
    level_d_conv_dim: int = 64  # level D: two 3x3 convs of this width, max pool, dropout ...
    level_d_hidden: int = 512  # ... then a dense layer of this width and one logit
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
    epoch_images: int | None = None  # images per epoch (N_epoch of the original; None = the whole set)
    init: str = "normal"  # weight init: 'normal' N(0, 0.02) or 'xavier'
    max_images: int | None = None  # use only the first N training images (smoke tests)
    seed: int = 0  # seeds the data order (the notebook's setup seeds the weights)
    epochs: int = run_field(1000)  # epochs per level (the time budget usually ends training first)
    max_seconds: float | None = run_field(180.0)  # training time for the whole pyramid (None = no limit)
    base_share: float = run_field(0.5)  # fraction of max_seconds given to the base level; the rest is split evenly
    direct_seconds: float | None = run_field(180.0)  # budget of the plain 32 px DCGAN it is compared with
    lfw_seconds: float | None = run_field(90.0)  # budget of the grayscale pyramid on the 100 LFW faces
    amp: bool = run_field(True)  # bf16 autocast where bf16 is native (losses stay fp32)

    @property
    def sizes(self) -> list[int]:
        """Return the pyramid's sides coarse to fine, e.g. [16, 32] or [16, 32, 64]."""
        return level_sizes(self.base_size, self.img_size)


PRESETS = {
    "smoke": LapGANConfig(z_dim=32, g_hidden=128, d_conv_dims=(16, 16, 32, 32), d_hidden=64, d_dense=16,
                          d_dropout=0.25, level_g_conv_dims=(16, 16), level_d_conv_dim=8, level_d_hidden=32,
                          base_arch="dcgan", base_conv_dim=8, batch_size=32, max_seconds=6, direct_seconds=5,
                          lfw_seconds=4, epoch_images=256, max_images=512),
    # Widths scaled down for a 2-core CPU; a lighter dropout and a higher lr for a 3-minute budget; no
    # weight average, as the original; a convolutional base, since the dense one limits the pyramid
    # on real faces, and most of the time for the slower refinement level (docs/experiments.md, LAPGAN).
    "demo": LapGANConfig(base_arch="dcgan", base_conv_dim=32, g_hidden=1024, d_conv_dims=(32, 32, 64, 128),
                         d_hidden=256, d_dense=64, d_dropout=0.25,
                         level_g_conv_dims=(32, 64), level_d_conv_dim=32, level_d_hidden=256, batch_size=32, ema=0.0,
                         lr_g=4e-4, lr_d=4e-4, base_share=0.3, epoch_images=4096, max_seconds=180, direct_seconds=180),
    # The original's sizes on an LFW (or CelebA) folder, on a GPU: 16 -> 32 -> 64.
    "full": LapGANConfig(img_size=64, batch_size=64, epoch_images=None, epochs=300,
                         max_seconds=None, direct_seconds=None, lfw_seconds=None),
}


def config_for(profile: str, **overrides) -> LapGANConfig:
    """Return the preset of a profile with some fields replaced."""
    return choose(PRESETS, profile, **overrides)
