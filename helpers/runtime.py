"""Seeding, device choice, profiles and mixed precision: the setup every notebook shares."""
from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

PROFILES = ("smoke", "demo", "full")
# Tests export FACEGAN_PROFILE=smoke; notebook kernels inherit it, so it wins over the cell.
PROFILE_ENV = "FACEGAN_PROFILE"


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) from one number."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best device: cuda > mps > cpu, or `prefer` when given."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def is_real_dataset(data: str) -> bool:
    """True when `data` names a folder on disk rather than an embedded set."""
    return data not in ("synthetic", "lfw100")


def resolve_profile(profile: str = "auto", data: str = "synthetic") -> str:
    """Return 'smoke', 'demo' or 'full'.

    FACEGAN_PROFILE overrides everything (tests force 'smoke'); 'auto' picks 'full' only when a
    CUDA GPU and a real data folder are both present, else 'demo'.
    """
    forced = os.environ.get(PROFILE_ENV)
    if forced:
        profile = forced
    if profile == "auto":
        return "full" if torch.cuda.is_available() and is_real_dataset(data) else "demo"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of 'auto', {', '.join(map(repr, PROFILES))}")
    return profile


def autocast(device: torch.device | str, enabled: bool = True):
    """bf16 autocast on CPU/CUDA (keep losses in fp32 outside it); a no-op elsewhere or when off."""
    device = torch.device(device)
    if not enabled or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@dataclass
class Session:
    """What `setup` decided: read by the notebook, printed once."""

    device: torch.device
    profile: str
    seed: int

    def __repr__(self) -> str:
        return f"Session(device={self.device.type}, profile={self.profile}, seed={self.seed}, torch={torch.__version__})"


def setup(seed: int = 0, profile: str = "auto", data: str = "synthetic", device: str | None = None) -> Session:
    """Seed everything, pick the device and profile, set plot defaults; return a Session."""
    seed_everything(seed)
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 72, "savefig.dpi": 80, "image.interpolation": "nearest",
                                "axes.titlesize": 10, "figure.max_open_warning": 0})
    return Session(device=get_device(device), profile=resolve_profile(profile, data), seed=seed)
