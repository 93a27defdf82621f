"""Checkpoints that are written atomically, load with weights_only=True, and refuse a mismatch.

A checkpoint holds the model name, its config (as a dict) and the names of the config's run-only
fields (helpers.core.config.run_field): resuming compares every other field and says which differs.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write

FORMAT = 2


class CheckpointMismatch(RuntimeError):
    """A checkpoint belongs to another model or configuration; the message says which."""


def save_checkpoint(payload: dict, path: str | Path) -> Path:
    """Write payload to path atomically; a crash mid-write leaves the previous checkpoint intact."""
    return atomic_write(path, lambda fh: torch.save({"format": FORMAT, **payload}, fh))


def config_diff(saved: dict, current: dict, ignore=(), defaults: dict | None = None) -> dict:
    """Return {key: (saved, current)} for every key outside `ignore` whose values differ.

    defaults: {key: default} of the current config's fields. A key the saved config lacks (a field
    added after it was written) matches when the current value is that default: the old code
    behaved as the default does."""
    keys = (set(saved) | set(current)) - set(ignore)
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731  (tuples come back as lists)
    defaults = defaults or {}
    return {k: (saved.get(k), current.get(k)) for k in sorted(keys) if norm(saved.get(k)) != norm(current.get(k))
            and not (k not in saved and k in defaults and norm(defaults[k]) == norm(current.get(k)))}


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Return the checkpoint dict at path, unchecked; a clear error for a missing or foreign file."""
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
    return ckpt


def check_checkpoint(ckpt: dict, path, model: str | None = None, config: dict | None = None, ignore=(),
                     networks=(), defaults: dict | None = None) -> dict:
    """Return ckpt when it holds `model` trained with `config` (every key but `ignore` and the
    checkpoint's own run-only keys; config_diff's `defaults`) and weights for every name in
    `networks`; else raise CheckpointMismatch saying what differs."""
    if model is not None and ckpt["model"] != model:
        raise CheckpointMismatch(f"{path} holds a {ckpt['model']!r} model, not {model!r}: "
                                 "point this notebook at its own checkpoint folder")
    if config is not None:
        saved, ignore = ckpt.get("config", {}), set(ignore) | set(ckpt.get("run_keys", ()))
        if "data_faces" not in saved:  # written before the faces' digest: the cache key alone decides
            ignore.add("data_faces")
        elif saved["data_faces"] is not None and saved["data_faces"] == config.get("data_faces"):
            ignore.add("data")  # the same faces on another path or machine (the key names both)
        diff = config_diff(saved, config, ignore, defaults)
        if diff:
            lines = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise CheckpointMismatch(f"{path} was trained with another configuration ({lines}); use the same "
                                     "settings to resume, or resume=False / another folder to start fresh")
    missing = sorted(set(networks) - set(ckpt.get("modules", {})))
    if missing:
        raise CheckpointMismatch(f"{path} holds no weights for {missing}: it was saved by another version "
                                 "of this model; point at a checkpoint of this one")
    return ckpt


def load_checkpoint(path: str | Path, model: str | None = None, config: dict | None = None,
                    map_location="cpu", ignore=(), networks=(), defaults: dict | None = None) -> dict:
    """Return the checkpoint at path, refusing one of another model or configuration.

    model: the expected model name (e.g. 'dcgan'); config: the current config dict, compared key by
    key except `ignore` and the run-only keys the checkpoint itself lists; networks: names it must
    hold weights for.
    """
    return check_checkpoint(read_checkpoint(path, map_location), path, model, config, ignore, networks, defaults)


def load_modules(path: str | Path, modules: dict, model: str, config: dict | None = None,
                 map_location="cpu", defaults: dict | None = None) -> dict:
    """Load the weights of checkpoint `path` into `modules` ({name: nn.Module}); return the checkpoint.

    Refuses (CheckpointMismatch) a checkpoint of another model or of another value of any key in
    `config` (keys `config` lacks, such as the data set's, are not compared: weights only), and one
    that holds no weights for some of `modules`; optimisers and training state are left alone
    (evaluating a best_*.pt without rewinding a run).
    """
    ckpt = read_checkpoint(path, map_location)
    check_checkpoint(ckpt, path, model, config, ignore=set(ckpt.get("config", {})) - set(config or {}),
                     networks=modules, defaults=defaults)
    for name, module in modules.items():
        module.load_state_dict(ckpt["modules"][name])
    return ckpt
