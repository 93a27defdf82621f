"""DCGAN for faces: the Udacity "face generation" architecture, sized by `img_size`.

Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
GANs" (section 3 lists the architecture guidelines this file follows). The Wasserstein option
(critic losses and gradient penalty) is Gulrajani et al. 2017, "Improved Training of
Wasserstein GANs".

Shapes: images are (B, C, H, W) in [-1, 1] (see `helpers.data.scale`); latents are (B, z_size).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .weights import INITS

NORMS = ("batch", "layer", "none")


def num_stages(img_size: int) -> int:
    """Return how many stride-2 stages take 4x4 feature maps to `img_size` (32 -> 3, 64 -> 4).

    img_size: a power of two >= 16. Both networks use this, so D and G stay mirrors.
    """
    stages = int(math.log2(img_size)) - 2 if img_size > 0 else 0
    if img_size < 16 or 4 * 2**stages != img_size:
        raise ValueError(f"img_size must be a power of two >= 16, got {img_size}")
    return stages


def _norm2d(kind: str, channels: int) -> nn.Module:
    """Return the normalisation layer for a conv map with `channels` channels."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        # One group = normalise over (C, H, W) per sample: layer norm for conv maps, and it does
        # not mix samples, which the per-sample gradient penalty needs (Gulrajani et al. 4).
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: use one of {NORMS}")


class Discriminator(nn.Module):
    """DCGAN discriminator (or WGAN critic with norm='layer'/'none').

    Strided 4x4 convolutions halve the map down to 4x4 while channels double from `conv_dim`;
    a linear layer turns the last map into one logit. No pooling, leaky ReLU 0.2 everywhere,
    no normalisation on the first layer (Radford et al. 2016, section 3).
    """

    def __init__(self, conv_dim: int = 32, img_size: int = 32, channels: int = 3, norm: str = "batch"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}: use one of {NORMS}")
        self.conv_dim, self.img_size, self.channels, self.norm = conv_dim, img_size, channels, norm
        self.stages = num_stages(img_size)

        layers: list[nn.Module] = []
        in_ch, out_ch = channels, conv_dim
        for i in range(self.stages):
            normed = i > 0 and norm != "none"
            # A bias right before a normalisation is subtracted away again, so it would be dead weight.
            layers.append(nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1, bias=not normed))
            if normed:
                layers.append(_norm2d(norm, out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch, out_ch = out_ch, out_ch * 2
        self.features = nn.Sequential(*layers)
        self.top_channels = in_ch
        self.fc = nn.Linear(in_ch * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return one logit per image: (B, 1), unbounded (no sigmoid: the losses take logits).

        x: (B, channels, img_size, img_size) in [-1, 1]; channels_last is fine.
        """
        x = self.features(x)  # (B, top_channels, 4, 4)
        x = x.flatten(1)  # (B, top_channels * 16)
        return self.fc(x)  # (B, 1)


class Generator(nn.Module):
    """DCGAN generator: the mirror image of `Discriminator`.

    A linear projection of z is reshaped to (top_channels, 4, 4); 4x4 stride-2 transposed
    convolutions double the map and halve the channels; batch norm + ReLU everywhere except the
    output, which is tanh (Radford et al. 2016, section 3 and figure 1).
    """

    def __init__(self, z_size: int = 100, conv_dim: int = 32, img_size: int = 32, channels: int = 3):
        super().__init__()
        self.z_size, self.conv_dim, self.img_size, self.channels = z_size, conv_dim, img_size, channels
        self.stages = num_stages(img_size)
        # Same channel ladder as D, walked backwards: D's last map has conv_dim * 2**(stages-1).
        self.top_channels = conv_dim * 2 ** (self.stages - 1)

        # The paper batch-normalises the projection too; its bias would be cancelled by that norm.
        self.fc = nn.Linear(z_size, self.top_channels * 4 * 4, bias=False)
        self.fc_norm = nn.BatchNorm2d(self.top_channels)

        layers: list[nn.Module] = []
        in_ch = self.top_channels
        for i in range(self.stages):
            last = i == self.stages - 1
            out_ch = channels if last else in_ch // 2
            layers.append(nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=last))
            if last:
                layers.append(nn.Tanh())
            else:
                layers += [nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
            in_ch = out_ch
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return images (B, channels, img_size, img_size) in [-1, 1].

        z: (B, z_size), or (B, z_size, 1, 1) as some DCGAN code feeds it.
        """
        x = self.fc(z.flatten(1))  # (B, top_channels * 16)
        x = x.view(-1, self.top_channels, 4, 4)  # (B, top_channels, 4, 4)
        x = F.relu(self.fc_norm(x))  # (B, top_channels, 4, 4)
        return self.features(x)  # (B, channels, img_size, img_size)


def build_network(d_conv_dim: int, g_conv_dim: int, z_size: int, img_size: int = 32, channels: int = 3,
                  init: str = "normal", d_norm: str = "batch") -> tuple[Discriminator, Generator]:
    """Return (D, G), freshly initialised with `helpers.weights.INITS[init]`.

    init: 'normal' is N(0, 0.02) (Radford et al. 2016, section 4) or 'xavier'.
    d_norm: 'batch' for the standard GAN; 'layer' or 'none' for a WGAN-GP critic.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {sorted(INITS)}")
    D = Discriminator(d_conv_dim, img_size=img_size, channels=channels, norm=d_norm)
    G = Generator(z_size, g_conv_dim, img_size=img_size, channels=channels)
    D.apply(INITS[init])
    G.apply(INITS[init])
    return D, G


# --- Standard (non-saturating) GAN losses: Goodfellow et al. 2014, as used by DCGAN. ---

def real_loss(D_out: torch.Tensor, smooth: bool = False) -> torch.Tensor:
    """Return the scalar mean BCE of logits `D_out` against "real" labels (1, or 0.9 when smooth).

    D_out: (B, 1) or (B,) logits, any float dtype; cast to fp32 because it usually comes out of
    bf16 autocast, where a log-sigmoid loses too much precision. One-sided label smoothing is
    Salimans et al. 2016, section 3.4.
    """
    logits = D_out.float().reshape(-1)  # (B,)
    labels = torch.full_like(logits, 0.9 if smooth else 1.0)  # (B,)
    return F.binary_cross_entropy_with_logits(logits, labels)


def fake_loss(D_out: torch.Tensor) -> torch.Tensor:
    """Return the scalar mean BCE of logits `D_out` against "fake" labels (0).

    D_out: (B, 1) or (B,) logits, any float dtype (cast to fp32 as in `real_loss`).
    """
    logits = D_out.float().reshape(-1)  # (B,)
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


# --- Wasserstein losses with gradient penalty: Gulrajani et al. 2017, algorithm 1. ---

def wgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Return the scalar critic loss E[D(fake)] - E[D(real)] (minimised; add the penalty yourself).

    d_real, d_fake: (B, 1) or (B,) critic scores, cast to fp32.
    """
    return d_fake.float().mean() - d_real.float().mean()


def wgan_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Return the scalar generator loss -E[D(fake)].

    d_fake: (B, 1) or (B,) critic scores, cast to fp32.
    """
    return -d_fake.float().mean()


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Return the scalar penalty E[(||grad_x D(x_hat)||_2 - 1)^2] at random interpolates x_hat.

    real, fake: (B, C, H, W) (any shape with batch first), same shape. x_hat = a*real + (1-a)*fake
    with one a ~ U(0, 1) per sample. The graph is kept (create_graph=True) so the penalty trains
    D; multiply by lambda (10 in the paper) yourself. Gulrajani et al. 2017, section 4 and
    algorithm 1. The critic must not use batch norm: it couples the samples, so the per-sample
    gradient is no longer the thing being penalised (use norm='layer' or 'none').
    """
    B = real.shape[0]
    alpha = torch.rand((B,) + (1,) * (real.dim() - 1), device=real.device)  # (B, 1, 1, 1)
    # Detached: the penalty must train D only, never pull G (or the data) through x_hat.
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)  # (B, C, H, W)
    scores = D(x_hat).float()  # (B, 1)
    (grads,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)  # (B, C, H, W)
    # reshape, not view: a channels_last gradient is not viewable as (B, -1).
    norms = grads.float().reshape(B, -1).norm(2, dim=1)  # (B,)
    return ((norms - 1) ** 2).mean()
