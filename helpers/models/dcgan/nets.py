"""DCGAN for faces: the Udacity "face generation" networks, sized by `img_size`.

Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
GANs" (section 3 lists the architecture guidelines these follow). The signatures are the course's
(`Discriminator(conv_dim)`, `Generator(z_size, conv_dim)`, `build_network`), since its checkers
(problem_unittests.py) call them by those names.

Shapes: images are (B, C, H, W) in [-1, 1] (see `helpers.data.scale`); latents are (B, z_size).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ...gan import INITS, Projection, doubling, down_stack, num_stages, up_stack


class Discriminator(nn.Module):
    """DCGAN discriminator (or a WGAN critic with norm='layer' / 'none').

    Strided 4x4 convolutions halve the map down to 4x4 while channels double from `conv_dim`
    (`helpers.gan.down_stack`); a linear layer turns the last map into one logit. No pooling,
    leaky ReLU 0.2 everywhere, no normalisation on the first layer (section 3).
    """

    def __init__(self, conv_dim: int = 32, img_size: int = 32, channels: int = 3, norm: str = "batch"):
        super().__init__()
        self.conv_dim, self.img_size, self.channels, self.norm = conv_dim, img_size, channels, norm
        widths = doubling(conv_dim, num_stages(img_size))  # e.g. [32, 64, 128] at 32 px
        self.features = down_stack(channels, widths, norm)
        self.stages, self.top_channels = len(widths), widths[-1]
        self.fc = nn.Linear(widths[-1] * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return one logit per image: (B, 1), unbounded (no sigmoid: the losses take logits).

        x: (B, channels, img_size, img_size) in [-1, 1]; channels_last is fine.
        """
        x = self.features(x)  # (B, top_channels, 4, 4)
        return self.fc(x.flatten(1))  # (B, 1)


class Generator(nn.Module):
    """DCGAN generator: the mirror image of `Discriminator`.

    z is projected to a (top_channels, 4, 4) map (linear + batch norm + ReLU); 4x4 stride-2
    transposed convolutions double the map and halve the channels, batch norm + ReLU between and
    tanh at the output (section 3 and figure 1; `helpers.gan.Projection`, `up_stack`).
    """

    def __init__(self, z_size: int = 100, conv_dim: int = 32, img_size: int = 32, channels: int = 3):
        super().__init__()
        self.z_size, self.conv_dim, self.img_size, self.channels = z_size, conv_dim, img_size, channels
        # The same channel ladder as D, walked backwards: e.g. [128, 64, 32] at 32 px.
        widths = doubling(conv_dim, num_stages(img_size))[::-1]
        self.stages, self.top_channels = len(widths), widths[0]
        self.stem = Projection(z_size, widths[0], 4)
        self.features = up_stack(widths, channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return images (B, channels, img_size, img_size) in [-1, 1].

        z: (B, z_size), or (B, z_size, 1, 1) as some DCGAN code feeds it.
        """
        x = self.stem(z.flatten(1))  # (B, top_channels, 4, 4)
        return self.features(x)  # (B, channels, img_size, img_size)


def build_network(d_conv_dim: int, g_conv_dim: int, z_size: int, img_size: int = 32, channels: int = 3,
                  init: str = "normal", d_norm: str = "batch") -> tuple[Discriminator, Generator]:
    """Return (D, G), freshly initialised with `helpers.gan.INITS[init]`.

    init: 'normal' is N(0, 0.02) (Radford et al. 2016, section 4) or 'xavier'.
    d_norm: 'batch' for the standard GAN; 'layer' or 'none' for a WGAN-GP critic.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {sorted(INITS)}")
    D = Discriminator(d_conv_dim, img_size=img_size, channels=channels, norm=d_norm)
    G = Generator(z_size, g_conv_dim, img_size=img_size, channels=channels)
    return D.apply(INITS[init]), G.apply(INITS[init])
