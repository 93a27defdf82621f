"""Pixel-range conversions shared by every model (Udacity signatures kept)."""
from __future__ import annotations

import torch


def scale(x: torch.Tensor, feature_range: tuple[float, float] = (-1, 1)) -> torch.Tensor:
    """Return x mapped from [0, 1] to `feature_range` (default [-1, 1], the range of tanh).

    x: any shape, values in [0, 1] (what `get_dataloader` yields).
    """
    lo, hi = feature_range
    return x * (hi - lo) + lo


def to_unit(images_uint8: torch.Tensor) -> torch.Tensor:
    """Return uint8 images (any shape) as float32 in [0, 1]."""
    return images_uint8.float().div_(255.0)
