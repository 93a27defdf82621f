"""DCGAN's configuration: every knob of notebook 01, with the presets of each profile."""
from __future__ import annotations

from dataclasses import dataclass

from ...core.config import choose, run_field


@dataclass
class DCGANConfig:
    """Every knob of the DCGAN notebook; saved inside each checkpoint."""

    img_size: int = 32  # 32 (the course) or 64 (one more stage in D and G)
    z_dim: int = 100  # latent size (the course's z_size)
    d_conv_dim: int = 64  # D's first-layer channels (doubling each stage)
    g_conv_dim: int = 64  # G's last-hidden-layer channels
    batch_size: int = 64  # images per step
    lr: float = 2e-4  # Adam learning rate (Radford et al. 2016)
    beta1: float = 0.5  # Adam beta1 (0.5 steadies GAN training)
    beta2: float = 0.999  # Adam beta2
    loss: str = "bce"  # 'bce' (the course), 'wgan-gp' (Gulrajani et al. 2017) or 'hinge'
    smooth: bool = False  # one-sided label smoothing of real labels (0.9)
    gp_weight: float = 10.0  # WGAN-GP penalty weight (lambda)
    n_critic: int = 5  # WGAN-GP: critic steps per generator step
    init: str = "normal"  # 'normal' N(0, 0.02) or 'xavier'
    lr_schedule: str = "none"  # 'none' or 'cosine' (decay to 10% over the epochs)
    diffaugment: str = ""  # e.g. 'color,translation,cutout' for small data sets
    ema: float = 0.999  # decay of the G weight average used for samples and metrics (0 = off)
    ema_bn_samples: int = 4096  # recompute the average's batch-norm statistics from this many samples (0 = G's)
    z_dist: str = "uniform"  # 'uniform' U(-1, 1) as in the course, or 'normal'
    epoch_images: int | None = None  # images per epoch (samples, metrics, checkpoints); None = one pass
    max_images: int | None = None  # use only the first N training images (smoke tests)
    epochs: int = run_field(20)  # epochs to train
    max_seconds: float | None = run_field(450.0)  # training-time budget in all (None = no limit)
    amp: bool = run_field(True)  # bf16 autocast + channels_last where bf16 is native (losses stay fp32)


PRESETS = {
    "smoke": DCGANConfig(d_conv_dim=16, g_conv_dim=16, batch_size=32, epochs=2, max_seconds=20, max_images=512),
    # Tuned on this 2-core CPU for an 8-minute budget; each lever's numbers: docs/experiments.md (DCGAN).
    # Demos train for their minutes on any data: the epoch count only has to lie beyond them.
    "demo": DCGANConfig(batch_size=32, d_conv_dim=32, epochs=1000, smooth=True, z_dist="normal", ema=0.995,
                        lr=6e-4, max_seconds=480),
    # 64 px CelebA with the course's defaults, on a GPU
    "full": DCGANConfig(img_size=64, d_conv_dim=64, g_conv_dim=64, batch_size=128, epochs=25, max_seconds=None),
}


def config_for(profile: str, **overrides) -> DCGANConfig:
    """Return the preset of a profile ('smoke' | 'demo' | 'full') with some fields replaced."""
    return choose(PRESETS, profile, **overrides)
