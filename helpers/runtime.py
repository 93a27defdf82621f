"""Seeding, device choice, profiles and mixed precision: the setup every notebook shares."""
from __future__ import annotations

import contextlib
import os
import platform
import random
from dataclasses import dataclass, replace

import numpy as np
import torch

PROFILES = ("smoke", "demo", "full")
# Tests export FACEGAN_PROFILE=smoke; notebook kernels inherit it, so it wins over the cell.
PROFILE_ENV = "FACEGAN_PROFILE"
# A rehearsal (`make rehearse`): FACEGAN_REHEARSE=S caps every training run at S seconds and two
# epochs, so the `full` profile's networks, sizes and code paths run end to end on a CPU in minutes.
REHEARSE_ENV = "FACEGAN_REHEARSE"
REHEARSAL_EPOCHS = 2


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


def rehearsal_seconds() -> float | None:
    """Return the per-run training cap of a rehearsal (FACEGAN_REHEARSE, seconds), or None."""
    value = os.environ.get(REHEARSE_ENV, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{REHEARSE_ENV}={value!r}: give the seconds each training run may take, e.g. 20")
    return seconds


def rehearsal_budget(epochs: int, max_seconds: float | None, start_epoch: int = 0,
                     start_seconds: float = 0.0) -> tuple[int, float | None]:
    """Return (epochs, max_seconds) as a training run uses them: unchanged, or capped in a rehearsal
    at REHEARSAL_EPOCHS more epochs and rehearsal_seconds() more training than where it starts
    (start_epoch, start_seconds: a resumed run continues for the same cap as a fresh one)."""
    cap = rehearsal_seconds()
    if cap is None:
        return epochs, max_seconds
    until = start_seconds + cap
    return min(epochs, start_epoch + REHEARSAL_EPOCHS), min(until, max_seconds) if max_seconds is not None else until


class ProfilePresets(dict):
    """{profile: preset dataclass} whose entries have some fields capped in a rehearsal.

    caps: {field: most}, e.g. fd_samples=500: a rehearsal checks code paths, and measuring on the
    `full` profile's thousands of samples would take most of its time on a CPU.
    """

    def __init__(self, presets: dict, **caps):
        super().__init__(presets)
        self.caps = caps

    def __getitem__(self, profile):
        preset = super().__getitem__(profile)
        if not self.caps or rehearsal_seconds() is None:
            return preset
        return replace(preset, **{k: min(getattr(preset, k), v) for k, v in self.caps.items()})


def autocast(device: torch.device | str, enabled: bool = True):
    """bf16 autocast on CPU/CUDA (keep losses in fp32 outside it); a no-op elsewhere or when off."""
    device = torch.device(device)
    if not enabled or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def machine(device: torch.device | str = "cpu", cpuinfo: str | None = None) -> str:
    """Describe the hardware a number was measured on, e.g. 'AMD EPYC (family 26, model 2), 2 cores, AVX512'.

    Speeds here depend on it: the same 2-core CPU slot has been a part with AMX (`make bench`: bf16 loop
    2.3-2.45x the fp32 baseline) and an AMD Zen 5 without it (1.85-1.99x). `cpuinfo` replaces
    /proc/cpuinfo (tests).
    """
    if str(device).startswith("cuda"):  # anything else ran on the CPU ('mps' aside, which we don't use)
        return torch.cuda.get_device_name(torch.device(device))
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    extras = [f"{os.cpu_count()} cores", torch.backends.cpu.get_cpu_capability()]
    if "amx_tile" in fields.get("flags", "").split():
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


def setup(seed: int = 0, profile: str = "auto", data: str = "synthetic", device: str | None = None) -> Session:
    """Seed everything, pick the device and profile, set plot defaults; return a Session."""
    seed_everything(seed)
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 72, "savefig.dpi": 80, "image.interpolation": "nearest",
                                "axes.titlesize": 10, "figure.max_open_warning": 0})
    return Session(device=get_device(device), profile=resolve_profile(profile, data), seed=seed)
