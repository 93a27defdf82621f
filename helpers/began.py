"""BEGAN for faces: the autoencoder discriminator, the generator, the equilibrium losses and config.

Berthelot, Schumm & Metz 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks".
D is an autoencoder; its reconstruction loss L(x) = mean |x - D(x)| is low on what it considers
real. D minimises L(x) - k_t L(G(z)), G minimises L(G(z)), and the control variable k_t keeps
E[L(G(z))] = gamma E[L(x)] (section 3.3). M_global = L(x) + |gamma L(x) - L(G(z))| tells how far
training has come (section 3.4.1). Used by notebooks/04_began_interpolation.ipynb; the training
step and trainer are in helpers.began_train, the interpolation sliders in helpers.began_widgets.

Shapes: images (B, C, H, W) in [-1, 1] with H = W = 8 * 2^n; z (B, nz) in U(-1, 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BEGANConfig:
    """Every knob of the BEGAN notebook (the original project's options); saved in each checkpoint."""

    img_size: int = 64  # 8 * 2^n: 32, 64 (paper), 128 (paper's larger model)
    nz: int = 64  # generator latent size N_z (paper: 64)
    hidden_dim: int = 64  # D's bottleneck h (paper: N_h = 64)
    ngf: int = 128  # G / D-decoder channels n (paper: 64 or 128)
    ndf: int = 128  # D-encoder base channels n (paper: same n as the decoder)
    n_layers: int = 2  # conv 3x3 + ELU repeats per resolution block (paper: 2)
    exp: bool = False  # exponential channel growth (x2 per block) instead of linear (n, 2n, 3n: paper)
    t_conv: bool = False  # transposed-conv upsampling instead of nearest-neighbour + conv (paper)
    tanh: bool = False  # squash G and D outputs with tanh (paper: linear outputs)
    init_mean: float = 0.0  # mean of the normal weight init
    init_std: float = 0.02  # std of the normal weight init; 0 = per layer sqrt(2 / fan_in) (He). Measured
    # here: with He, G's first images are loud noise (L(G(z)) ~ 3 vs L(x) ~ 1), k_t sat at 0 for ~1,700
    # steps while G learnt flat squares D rebuilds easily, and G never left them; 0.02 starts G near
    # flat grey, k_t rises from the first steps and faces appear (n_layers 1 and 2 both learn)
    batch_size: int = 16  # images per step (paper: 16)
    epochs: int = 20  # passes over the training split
    lr: float = 1e-4  # Adam learning rate for G and D (paper: 1e-4)
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    lambda_k: float = 1e-3  # proportional gain of the k_t controller (paper: 0.001)
    gamma: float = 0.5  # diversity ratio E[L(G(z))] / E[L(x)] (paper: 0.5 faces; lower = sharper, less varied)
    k0: float = 0.0  # initial k_t (paper: 0)
    lr_decay_every: int = 100_000  # steps between learning-rate decays (0 = never)
    lr_decay: float = 0.5  # multiply the lr by this at each decay (its own knob: not gamma)
    lr_min: float = 2e-5  # the lr never decays below this floor
    log_every: int = 10  # steps between logged points of the loss / k_t / M_global curves
    sample_every: int = 20_000  # images between fixed-noise sample grids, M tracking and checkpoints
    keep_every: int = 10  # keep every N-th sample-interval checkpoint as epoch_XXXX.pt (0 = none)
    ema: float = 0.0  # decay of an average of G's weights used for samples (0 = off, as in the paper)
    max_seconds: float | None = None  # training-time budget in all (None = no limit)
    amp: bool = True  # bf16 autocast on CPU/CUDA (losses stay fp32)
    max_images: int | None = None  # use only the first N training images (smoke tests)


PRESETS = {
    # He init: after 8 s from N(0, 0.02), G's bf16 output does not yet depend on z, and the interpolation
    # cells have nothing to measure.
    "smoke": BEGANConfig(img_size=32, nz=16, hidden_dim=16, ngf=8, ndf=8, n_layers=1, batch_size=16, epochs=1,
                         sample_every=256, log_every=2, keep_every=1, max_seconds=8, max_images=512, lr=3e-4,
                         init_std=0.0),
    # This 2-core CPU, synthetic faces: narrow nets (~300 img/s per core). 150 s runs on one core, FD of 1000
    # samples: He init collapsed to flat squares (2132); N(0, 0.02) init 1547; + lr 3e-4 1175; + lambda_k 0.01
    # 1111 (0.001: 1675; 0.05: 1175). Wider nets (48 channels, h 64) or n_layers 2 learn slower per second.
    # gamma 0.7 rather than the paper's 0.5: 380 s on one core, FD 768 vs 1135, diversity 27.7 vs 20.9.
    # No weight average (the paper has none): it blurs. One 380 s run on one core, FD of 2000 samples: G 843,
    # averages 0.99 883, 0.995 896, 0.999 917; the published 0.999 demo's checkpoint: G 524 vs average 585.
    "demo": BEGANConfig(img_size=32, nz=32, hidden_dim=32, ngf=32, ndf=32, n_layers=1, batch_size=16, epochs=40,
                        lr=3e-4, lambda_k=0.01, gamma=0.7, lr_decay_every=8000, lr_decay=0.5, lr_min=2.5e-5, sample_every=8000,
                        keep_every=5, ema=0.0, max_seconds=380),
    # The paper's CelebA model on a GPU: 64 px, n = 128, N_z = N_h = 64, batch 16, lr 1e-4 halved
    # every 100k steps (floor 2e-5), gamma 0.5, lambda_k 0.001. For 128 px: config_for('full', img_size=128).
    "full": BEGANConfig(img_size=64, epochs=40, sample_every=100_000),
}


def config_for(profile: str, **overrides) -> BEGANConfig:
    """Return the preset of a profile ('smoke' | 'demo' | 'full') with some fields replaced."""
    if profile not in PRESETS:
        raise ValueError(f"unknown profile {profile!r}: use one of {sorted(PRESETS)}")
    return replace(PRESETS[profile], **overrides)


def num_blocks(img_size: int) -> int:
    """Return the resolution blocks from 8x8 up to img_size (8 -> 1, 32 -> 3, 64 -> 4, 128 -> 5).

    img_size must be 8 * 2^n (section 3.5: the networks start and end at 8x8 feature maps).
    """
    n = math.log2(img_size / 8) if img_size >= 8 else -1
    if n < 0 or n != int(n):
        raise ValueError(f"img_size must be 8 * 2^n (8, 16, 32, 64, 128, ...), got {img_size}")
    return int(n) + 1


def _conv_elu(c_in: int, c_out: int, n_layers: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ELU(inplace=True)]
    return layers


class Decoder(nn.Module):
    """The BEGAN generator, also D's decoder: (B, in_dim) -> (B, channels, img_size, img_size).

    A linear layer to an 8x8 map, then per block `n_layers` x (conv 3x3 + ELU) and a 2x upsampling
    (nearest, or a 4x4 transposed conv when t_conv) between blocks, a last conv 3x3 to RGB
    (section 3.5, figure 1). Channels stay at `ngf` (paper) or, with exp, halve block by block
    from ngf * 2^(blocks-1).
    """

    def __init__(self, in_dim: int, ngf: int, img_size: int, channels: int = 3, n_layers: int = 2,
                 exp: bool = False, t_conv: bool = False, tanh: bool = False):
        super().__init__()
        self.in_dim, self.img_size, self.tanh = in_dim, img_size, tanh
        blocks = num_blocks(img_size)
        widths = [ngf * 2 ** (blocks - 1 - i) if exp else ngf for i in range(blocks)]
        self.top = widths[0]
        self.fc = nn.Linear(in_dim, widths[0] * 8 * 8)
        layers: list[nn.Module] = []
        for i, w in enumerate(widths):
            layers += _conv_elu(widths[i - 1] if i and not t_conv else w, w, n_layers)
            if i < blocks - 1:
                nxt = widths[i + 1]
                layers.append(nn.ConvTranspose2d(w, nxt, 4, stride=2, padding=1) if t_conv
                              else nn.Upsample(scale_factor=2, mode="nearest"))
                if t_conv:
                    layers.append(nn.ELU(inplace=True))
        layers.append(nn.Conv2d(widths[-1], channels, 3, padding=1))
        self.features = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Return images (B, channels, img_size, img_size); in [-1, 1] when tanh, else unbounded."""
        x = self.fc(h.flatten(1)).view(-1, self.top, 8, 8)  # (B, top, 8, 8)
        x = self.features(x)  # (B, channels, img_size, img_size)
        return torch.tanh(x) if self.tanh else x


class Encoder(nn.Module):
    """D's encoder: (B, channels, img_size, img_size) -> (B, hidden_dim) embedding h.

    A first conv 3x3 + ELU, then per block `n_layers` x (conv 3x3 + ELU) and a stride-2 conv
    3x3 between blocks; channels grow linearly n, 2n, 3n, ... (paper) or double (exp); a
    linear layer maps the 8x8 map to h (section 3.5).
    """

    def __init__(self, hidden_dim: int, ndf: int, img_size: int, channels: int = 3, n_layers: int = 2,
                 exp: bool = False):
        super().__init__()
        blocks = num_blocks(img_size)
        widths = [ndf * (2 ** i if exp else i + 1) for i in range(blocks)]
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 3, padding=1), nn.ELU(inplace=True)]
        c = ndf
        for i, w in enumerate(widths):
            layers += _conv_elu(c, w, n_layers)
            c = w
            if i < blocks - 1:
                layers += [nn.Conv2d(w, widths[i + 1], 3, stride=2, padding=1), nn.ELU(inplace=True)]
                c = widths[i + 1]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c * 8 * 8, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return h (B, hidden_dim). x: (B, channels, img_size, img_size) in [-1, 1]."""
        x = self.features(x)  # (B, C_top, 8, 8)
        return self.fc(x.flatten(1))  # (B, hidden_dim)


class Discriminator(nn.Module):
    """The BEGAN discriminator, an autoencoder: D(x) = decode(encode(x)) (section 3.5)."""

    def __init__(self, hidden_dim: int, ndf: int, ngf: int, img_size: int, channels: int = 3, n_layers: int = 2,
                 exp: bool = False, t_conv: bool = False, tanh: bool = False):
        super().__init__()
        self.encoder = Encoder(hidden_dim, ndf, img_size, channels, n_layers, exp)
        self.decoder = Decoder(hidden_dim, ngf, img_size, channels, n_layers, exp, t_conv, tanh)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Return the embedding h (B, hidden_dim) of images x (B, C, H, W) in [-1, 1]."""
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Return images (B, C, H, W) decoded from embeddings h (B, hidden_dim)."""
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the reconstruction of x, same shape (B, C, H, W)."""
        return self.decoder(self.encoder(x))


class Equilibrium(nn.Module):
    """Holds k_t as a buffer so it travels in checkpoints with the networks (exact resume)."""

    def __init__(self, k0: float = 0.0):
        super().__init__()
        self.register_buffer("k", torch.tensor(float(k0)))


def init_weights(module: nn.Module, mean: float = 0.0, std: float = 0.0) -> None:
    """Draw every conv / linear weight from N(mean, std) and zero the biases, in place.

    std <= 0 picks sqrt(2 / fan_in) per layer (He et al. 2015), a variance-preserving scale.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fan_in = m.weight[0].numel() if not isinstance(m, nn.ConvTranspose2d) else m.weight[:, 0].numel()
            nn.init.normal_(m.weight, mean, std if std > 0 else math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_network(cfg: BEGANConfig, channels: int = 3) -> tuple[Discriminator, Decoder]:
    """Return (D, G) for cfg, initialised from N(init_mean, init_std)."""
    num_blocks(cfg.img_size)
    if cfg.n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {cfg.n_layers}")
    D = Discriminator(cfg.hidden_dim, cfg.ndf, cfg.ngf, cfg.img_size, channels, cfg.n_layers, cfg.exp,
                      cfg.t_conv, cfg.tanh)
    G = Decoder(cfg.nz, cfg.ngf, cfg.img_size, channels, cfg.n_layers, cfg.exp, cfg.t_conv, cfg.tanh)
    init_weights(D, cfg.init_mean, cfg.init_std)
    init_weights(G, cfg.init_mean, cfg.init_std)
    return D, G


# --- losses and the equilibrium controller (section 3.3, 3.4) ---------------------------------

def recon_loss(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Return L = mean |x - D(x)| over all pixels, in fp32 (the pixel-wise L1 of eq. 1, eta = 1)."""
    return (x.float() - recon.float()).abs().mean()


def d_loss(l_real: torch.Tensor, l_fake: torch.Tensor, k: torch.Tensor | float) -> torch.Tensor:
    """Return L_D = L(x) - k_t L(G(z)) (section 3.4)."""
    return l_real - k * l_fake


def update_k(k: torch.Tensor | float, l_real: float, l_fake: float, gamma: float, lambda_k: float) -> float:
    """Return k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) (section 3.4)."""
    return min(max(float(k) + lambda_k * (gamma * float(l_real) - float(l_fake)), 0.0), 1.0)


def m_global(l_real: float, l_fake: float, gamma: float) -> float:
    """Return the convergence measure M_global = L(x) + |gamma L(x) - L(G(z))| (section 3.4.1)."""
    return float(l_real) + abs(gamma * float(l_real) - float(l_fake))
