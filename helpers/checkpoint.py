"""Checkpoints that are written atomically, load with weights_only=True, and refuse a mismatch."""
from __future__ import annotations

import os
from pathlib import Path

import torch

FORMAT = 1
# Options that may change between a run and its resumption without invalidating the weights.
RUNTIME_KEYS = frozenset({"epochs", "max_seconds", "profile", "log_every", "sample_every", "device",
                          "num_workers", "keep_every", "live", "progress", "steps", "amp"})


class CheckpointMismatch(RuntimeError):
    """A checkpoint belongs to another model or configuration; the message says which."""


def save_checkpoint(payload: dict, path: str | Path) -> Path:
    """Write payload to path atomically (temp file in the same folder, fsync, then rename).

    A crash mid-write leaves the previous checkpoint intact, never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save({"format": FORMAT, **payload}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def config_diff(saved: dict, current: dict, ignore=RUNTIME_KEYS) -> dict:
    """Return {key: (saved, current)} for every architecture/training key that differs."""
    keys = (set(saved) | set(current)) - set(ignore)
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731  (tuples come back as lists)
    return {k: (saved.get(k), current.get(k)) for k in sorted(keys) if norm(saved.get(k)) != norm(current.get(k))}


def load_checkpoint(path: str | Path, model: str | None = None, config: dict | None = None,
                    map_location="cpu", ignore=RUNTIME_KEYS) -> dict:
    """Return the checkpoint at path, refusing one of another model or configuration.

    model: the expected model name (e.g. 'dcgan'); config: the current config dict, compared
    key by key except the runtime keys (epochs, time budget, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated or foreign file: say so instead of an unpickling trace
        raise CheckpointMismatch(f"{path} is not a readable Face GAN Lab checkpoint ({type(err).__name__}: "
                                 f"{str(err)[:200]}); delete it to start fresh") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointMismatch(f"{path} is not a Face GAN Lab checkpoint; delete it or point ckpt_dir elsewhere")
    if model is not None and ckpt["model"] != model:
        raise CheckpointMismatch(f"{path} holds a {ckpt['model']!r} model, not {model!r}: "
                                 "point this notebook at its own checkpoint folder")
    if config is not None:
        diff = config_diff(ckpt.get("config", {}), config, ignore)
        if diff:
            lines = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise CheckpointMismatch(f"{path} was trained with another configuration ({lines}); use the same "
                                     "settings to resume, or resume=False / another folder to start fresh")
    return ckpt


def load_modules(path: str | Path, modules: dict, model: str, config: dict | None = None,
                 map_location="cpu") -> dict:
    """Load the weights of checkpoint `path` into `modules` ({name: nn.Module}); return the checkpoint.

    Refuses (CheckpointMismatch) a checkpoint of another model or configuration, and one that holds
    no weights for some of `modules`; optimisers and training state are left alone (evaluating a
    best_*.pt without rewinding a run).
    """
    ckpt = load_checkpoint(path, model=model, config=config, map_location=map_location)
    missing = sorted(set(modules) - set(ckpt.get("modules", {})))
    if missing:
        raise CheckpointMismatch(f"{path} holds no weights for {missing}: it was saved by another notebook's "
                                 "version of this model; point at a checkpoint of this one")
    for name, module in modules.items():
        module.load_state_dict(ckpt["modules"][name])
    return ckpt
