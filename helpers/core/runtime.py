"""Seeding, device choice, profiles and mixed precision: the setup every notebook shares."""
from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

from .config import PROFILES

# nbval runs the committed notebooks as they are, so the tests' profile can only reach a kernel from
# the environment: FACEGAN_PROFILE=smoke (conftest.py) wins over the notebook's cell, and setup() says
# so. papermill (make run / publish) sets the `profile` parameter instead.
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
    return str(data) not in ("synthetic", "lfw100")


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


def bf16_native(device: torch.device | str) -> bool:
    """True where bf16 autocast pays: a CUDA GPU with bf16, or a CPU with bf16 dot products (AVX512-BF16, AMX).

    Other CPUs emulate bf16 and train many times slower than in fp32 (docs/experiments.md, session 12),
    so a time-budgeted demo there would learn almost nothing.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: assume the common case, no native bf16
        return False


def autocast(device: torch.device | str, enabled: bool = True):
    """bf16 autocast on CPU/CUDA (keep losses in fp32 outside it); a no-op elsewhere or when off."""
    device = torch.device(device)
    if not enabled or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def machine(device: torch.device | str = "cpu", cpuinfo: str | None = None) -> str:
    """Describe the hardware a number was measured on, e.g. 'AMD EPYC (family 26, model 2), 2 cores, AVX512'.

    Speeds depend on it (the same 2-core CPU slot has been several CPU models, with and without AMX).
    `cpuinfo` replaces /proc/cpuinfo (tests).
    """
    if str(device).startswith("cuda"):  # anything else ran on the CPU ('mps' aside, which we don't use)
        return torch.cuda.get_device_name(torch.device(device))
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    info = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in info:
            info[key.strip()] = value.strip()
    name = info.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']}, model {info['model']})"
    extras = [f"{os.cpu_count()} cores", torch.backends.cpu.get_cpu_capability()]
    if "amx_tile" in info.get("flags", "").split():
        extras.append("AMX")
    return ", ".join([name, *extras])


@dataclass
class Session:
    """What `setup` decided: read by the notebook, printed once."""

    device: torch.device
    profile: str
    seed: int

    def __repr__(self) -> str:
        return f"Session(device={self.device.type}, profile={self.profile}, seed={self.seed}, torch={torch.__version__})"


def environment_overrides(profile: str = "auto") -> list[str]:
    """Return one line per setting the environment changes behind a notebook's back (the profile,
    a rehearsal's caps, moved folders, python -O), each naming its variable; [] when none does."""
    from . import paths
    from .config import REHEARSAL_EPOCHS, REHEARSE_ENV, SETTINGS_ENV, rehearsal_seconds

    lines = []
    forced = os.environ.get(PROFILE_ENV)
    if forced and forced != profile:
        lines.append(f"profile {forced}, from {PROFILE_ENV} (the notebook's cell says {profile!r})")
    if os.environ.get(SETTINGS_ENV, "").strip():
        lines.append(f"config settings, from {SETTINGS_ENV}: {os.environ[SETTINGS_ENV].strip()} (when training here)")
    if rehearsal_seconds() is not None:
        lines.append(f"rehearsal, from {REHEARSE_ENV}: every training run capped at {rehearsal_seconds():g} s and "
                     f"{REHEARSAL_EPOCHS} epochs, evaluation sizes capped")
    for var, path in (("FACEGAN_DATA", paths.DATA), ("FACEGAN_CHECKPOINTS", paths.CHECKPOINTS),
                      ("FACEGAN_OUTPUTS", paths.OUTPUTS)):
        if os.environ.get(var):
            lines.append(f"{path.name}/ at {path}, from {var}")
    if sys.flags.optimize:
        lines.append("python -O (PYTHONOPTIMIZE): the notebook's assert checks are skipped")
    return lines


def setup(seed: int = 0, profile: str = "auto", data: str = "synthetic", device: str | None = None) -> Session:
    """Seed everything, pick the device and profile, set plot defaults; return a Session.

    Prints one line for each setting the environment overrides (environment_overrides)."""
    for line in environment_overrides(profile):
        print(line)
    seed_everything(seed)
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 72, "savefig.dpi": 80, "image.interpolation": "nearest",
                                "axes.titlesize": 10, "figure.max_open_warning": 0})
    return Session(device=get_device(device), profile=resolve_profile(profile, data), seed=seed)
