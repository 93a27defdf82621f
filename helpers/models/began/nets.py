"""BEGAN for faces (notebook 04): the autoencoder discriminator, the generator, the equilibrium losses.

Berthelot, Schumm & Metz 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks".
D is an autoencoder; its reconstruction loss L(x) = mean |x - D(x)| is low on what it considers
real. D minimises L(x) - k_t L(G(z)), G minimises L(G(z)), and the control variable k_t keeps
E[L(G(z))] = gamma E[L(x)] (section 3.3). M_global = L(x) + |gamma L(x) - L(G(z))| tells how far
training has come (section 3.4.1).

Shapes: images (B, C, H, W) in [-1, 1] with H = W = 8 * 2^n; z (B, z_dim) in U(-1, 1).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import BEGANConfig


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
    (section 3.5, figure 1). Channels stay at `conv_dim` (paper) or, with exp, halve block by block
    from conv_dim * 2^(blocks-1). With skip, each upsampled block also sees the first 8x8 map h0,
    upsampled to its side and stacked on its channels (the skip connections of the paper's
    experiments and of its ports: they carry the layout straight to the fine blocks).
    """

    def __init__(self, in_dim: int, conv_dim: int, img_size: int, channels: int = 3, n_layers: int = 2,
                 exp: bool = False, t_conv: bool = False, tanh: bool = False, skip: bool = False):
        super().__init__()
        self.in_dim, self.img_size, self.tanh, self.skip = in_dim, img_size, tanh, skip
        blocks = num_blocks(img_size)
        widths = [conv_dim * 2 ** (blocks - 1 - i) if exp else conv_dim for i in range(blocks)]
        self.top = widths[0]
        self.fc = nn.Linear(in_dim, widths[0] * 8 * 8)
        layers: list[nn.Module] = []
        self._skip_after: set[int] = set()  # indices of the layers that end an upsampling
        for i, w in enumerate(widths):
            c_in = (widths[i - 1] if i and not t_conv else w) + (self.top if skip and i else 0)
            layers += _conv_elu(c_in, w, n_layers)
            if i < blocks - 1:
                nxt = widths[i + 1]
                layers.append(nn.ConvTranspose2d(w, nxt, 4, stride=2, padding=1) if t_conv
                              else nn.Upsample(scale_factor=2, mode="nearest"))
                if t_conv:
                    layers.append(nn.ELU(inplace=True))
                self._skip_after.add(len(layers) - 1)
        layers.append(nn.Conv2d(widths[-1], channels, 3, padding=1))
        self.features = nn.Sequential(*layers)

    def first_map(self, h: torch.Tensor) -> torch.Tensor:
        """Return the first 8x8 map h0 of inputs h (B, in_dim), flattened: (B, top * 64)."""
        return self.fc(h.flatten(1))

    def from_map(self, m: torch.Tensor) -> torch.Tensor:
        """Return the images decoded from first maps m (B, top * 64) (what forward does after fc)."""
        x = h0 = m.reshape(-1, self.top, 8, 8)  # (B, top, 8, 8)
        if not self.skip:
            x = self.features(x)  # (B, channels, img_size, img_size)
        else:
            for i, layer in enumerate(self.features):
                x = layer(x)
                if i in self._skip_after:  # (B, w + top, S, S): h0 upsampled beside the block's input
                    x = torch.cat([x, F.interpolate(h0, size=x.shape[-2:], mode="nearest")], 1)
        return torch.tanh(x) if self.tanh else x

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Return images (B, channels, img_size, img_size); in [-1, 1] when tanh, else unbounded."""
        return self.from_map(self.first_map(h))


class Encoder(nn.Module):
    """D's encoder: (B, channels, img_size, img_size) -> (B, hidden_dim) embedding h.

    A first conv 3x3 + ELU, then per block `n_layers` x (conv 3x3 + ELU) and a stride-2 conv
    3x3 between blocks; channels grow linearly n, 2n, 3n, ... (paper) or double (exp); a
    linear layer maps the 8x8 map to h (section 3.5).
    """

    def __init__(self, hidden_dim: int, conv_dim: int, img_size: int, channels: int = 3, n_layers: int = 2,
                 exp: bool = False):
        super().__init__()
        blocks = num_blocks(img_size)
        widths = [conv_dim * (2 ** i if exp else i + 1) for i in range(blocks)]
        layers: list[nn.Module] = [nn.Conv2d(channels, conv_dim, 3, padding=1), nn.ELU(inplace=True)]
        c = conv_dim
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

    def __init__(self, hidden_dim: int, d_conv_dim: int, g_conv_dim: int, img_size: int, channels: int = 3,
                 n_layers: int = 2, exp: bool = False, t_conv: bool = False, tanh: bool = False,
                 skip: bool = False):
        super().__init__()
        self.encoder = Encoder(hidden_dim, d_conv_dim, img_size, channels, n_layers, exp)
        self.decoder = Decoder(hidden_dim, g_conv_dim, img_size, channels, n_layers, exp, t_conv, tanh, skip)

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
    D = Discriminator(cfg.hidden_dim, cfg.d_conv_dim, cfg.g_conv_dim, cfg.img_size, channels, cfg.n_layers, cfg.exp,
                      cfg.t_conv, cfg.tanh, cfg.skip)
    G = Decoder(cfg.z_dim, cfg.g_conv_dim, cfg.img_size, channels, cfg.n_layers, cfg.exp, cfg.t_conv, cfg.tanh,
                cfg.skip)
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
