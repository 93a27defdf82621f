"""BEGAN's configuration (notebook 04): the original project's options, with the presets of each profile."""
from __future__ import annotations

from dataclasses import dataclass

from ...core.config import choose, run_field


@dataclass
class BEGANConfig:
    """Every knob of the BEGAN notebook; saved in each checkpoint."""

    img_size: int = 64  # 8 * 2^n: 32, 64 (paper), 128 (paper's larger model)
    z_dim: int = 64  # generator latent size N_z (paper: 64)
    hidden_dim: int = 64  # D's bottleneck h (paper: N_h = 64)
    g_conv_dim: int = 128  # G / D-decoder channels n (paper: 64 or 128)
    d_conv_dim: int = 128  # D-encoder base channels n (paper: same n as the decoder)
    n_layers: int = 2  # conv 3x3 + ELU repeats per resolution block (paper: 2)
    exp: bool = False  # exponential channel growth (x2 per block) instead of linear (n, 2n, 3n: paper)
    t_conv: bool = False  # transposed-conv upsampling instead of nearest-neighbour + conv (paper)
    skip: bool = False  # decoders stack the upsampled first 8x8 map on each block's input (paper's skip connections)
    tanh: bool = False  # squash G and D outputs with tanh (paper: linear outputs)
    init_mean: float = 0.0  # mean of the normal weight init
    init_std: float = 0.02  # std of the normal weight init; 0 = per layer sqrt(2 / fan_in) (He)
    batch_size: int = 16  # images per step (paper: 16)
    lr: float = 1e-4  # Adam learning rate for G and D (paper: 1e-4)
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    lambda_k: float = 1e-3  # proportional gain of the k_t controller (paper: 0.001)
    gamma: float = 0.5  # diversity ratio E[L(G(z))] / E[L(x)] (paper: 0.5 faces; lower = sharper, less varied)
    k0: float = 0.0  # initial k_t (paper: 0)
    lr_decay_every: int = 100_000  # steps between learning-rate decays (0 = never)
    lr_decay: float = 0.5  # multiply the lr by this at each decay (its own knob: not gamma)
    lr_min: float = 2e-5  # the lr never decays below this floor
    ema: float = 0.0  # decay of an average of G's weights used for samples (0 = off, as in the paper)
    epoch_images: int | None = 20_000  # images per epoch: between sample grids, M_global tracking and checkpoints
    max_images: int | None = None  # use only the first N training images (smoke tests)
    epochs: int = run_field(40)  # epochs (of epoch_images) to train
    max_seconds: float | None = run_field(None)  # training-time budget in all (None = no limit)
    log_every: int = run_field(10)  # steps between logged points of the loss / k_t / M_global curves
    keep_every: int = run_field(10)  # keep every N-th epoch's checkpoint as epoch_XXXX.pt (0 = none)
    gamma_seconds: float = run_field(25.0)  # training per gamma in the notebook's gamma comparison
    invert_steps: int = run_field(300)  # optimisation steps that put a real face into G's latent space
    invert_map_steps: int = run_field(100)  # further steps in G's first 8x8 map (the map inversion)
    amp: bool = run_field(True)  # bf16 autocast + channels_last where bf16 is native (losses stay fp32)


PRESETS = {
    # He init: after 8 s from N(0, 0.02), G's bf16 output does not yet depend on z, and the interpolation
    # cells have nothing to measure.
    "smoke": BEGANConfig(img_size=32, z_dim=16, hidden_dim=16, g_conv_dim=8, d_conv_dim=8, n_layers=1, batch_size=16,
                         epochs=2, epoch_images=256, log_every=2, keep_every=1, max_seconds=8, max_images=512,
                         lr=3e-4, init_std=0.0, gamma_seconds=2, invert_steps=50, invert_map_steps=20),
    # Narrow nets, a faster controller and gamma 0.7 for an 8-minute CPU budget (docs/experiments.md, BEGAN).
    # The lr decay is for longer budgets: the demo's minutes end before its first step, and a decay that
    # fires inside them made FD worse (docs/experiments.md, session 14).
    "demo": BEGANConfig(img_size=32, z_dim=32, hidden_dim=32, g_conv_dim=32, d_conv_dim=32, n_layers=1, batch_size=16,
                        epochs=100, lr=3e-4, lambda_k=0.01, gamma=0.7, lr_decay_every=8000, lr_decay=0.5, lr_min=2.5e-5,
                        epoch_images=8000, keep_every=5, ema=0.0, max_seconds=380),
    # The paper's CelebA model on a GPU: 64 px, n = 128, N_z = N_h = 64, batch 16, lr 1e-4 halved
    # every 100k steps (floor 2e-5), gamma 0.5, lambda_k 0.001. For 128 px: config_for('full', img_size=128).
    # 65 epochs of 100,000 images: 40 passes over CelebA's 162,770 training faces.
    "full": BEGANConfig(img_size=64, epochs=65, epoch_images=100_000, gamma_seconds=3600),
}


def config_for(profile: str, **overrides) -> BEGANConfig:
    """Return the preset of a profile ('smoke' | 'demo' | 'full') with some fields replaced."""
    return choose(PRESETS, profile, **overrides)
