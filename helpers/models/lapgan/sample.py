"""Sampling the LAPGAN coarse to fine (Denton et al. 2015, section 3.2), and what D thinks of samples."""
from __future__ import annotations

import torch

from ...core.modules import device_of, eval_mode, infer
from .config import LapGANConfig
from .nets import downsample, upsample
from .train import base_z, level_noise


@torch.no_grad()
def sample_pyramid(Gs: list, cfg: LapGANConfig, z: torch.Tensor, noise_seed: int = 0,
                   upto: int | None = None) -> list[dict]:
    """Return the pyramid of samples, one dict per level, coarse to fine (float32, CPU):

    level 0: {'size', 'image'}; level k: {'size', 'up' (coarser image upsampled), 'residual',
    'image' = up + residual}. Images (N, C, S, S) in [-1, 1] (the sum is clamped); z: (N, z_dim).
    upto: stop after that level (default: all of Gs).
    """
    device = device_of(Gs[0])
    g = torch.Generator().manual_seed(noise_seed)
    with eval_mode(*Gs):
        x = Gs[0](z.to(device)).float()
        out = [{"size": x.shape[-1], "image": x.cpu()}]
        for G in Gs[1:(len(Gs) if upto is None else upto + 1)]:
            up = upsample(x)
            h = G(up, level_noise(len(up), cfg, up.shape[-1], device, g)).float()
            x = (up + h).clamp(-1, 1)
            out.append({"size": x.shape[-1], "up": up.cpu(), "residual": h.cpu(), "image": x.cpu()})
    return out


def generate(Gs: list, cfg: LapGANConfig, n: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Return n finest-level samples (n, C, S, S) in [-1, 1], float32 CPU, repeatable by seed."""
    z = base_z(n, cfg, seed=seed)
    return torch.cat([sample_pyramid(Gs, cfg, z[i:i + batch_size], noise_seed=seed * 7919 + i)[-1]["image"]
                      for i in range(0, n, batch_size)])


def d_scores(D, images: torch.Tensor, level: int) -> torch.Tensor:
    """Return D's logit (N,) for images at that level's size: level 0 judges the image, level k its
    residual given the upsampled coarser image (higher = D finds it more real)."""
    def judge(x):
        if level == 0:
            return D(x)
        up = upsample(downsample(x))
        return D(x - up, up)

    return infer(judge, images, modules=(D,)).flatten()


def images_per_second(states: dict, cfg: LapGANConfig) -> float:
    """Return real images consumed per second of training across the levels."""
    steps = sum(s.step for s in states.values())
    seconds = sum(s.seconds for s in states.values())
    return steps * cfg.batch_size / max(seconds, 1e-9)


def evaluate(Gs: list, cfg: LapGANConfig, judges, test, n: int) -> dict:
    """Return the judges' scores of n pyramid samples (pooled to the test faces' size) against n test faces."""
    from .nets import resize_to

    fake = resize_to(generate(Gs, cfg, n, seed=7), test.image_size)
    return judges.generated(fake, test, n)
