"""Configs: one dataclass per model, presets per profile, and which fields only steer a run.

A field made with `run_field(...)` (a time budget, an evaluation size, a thread count) may change
between a run and its resumption; every other field defines the model and its data, and a
checkpoint trained with another value is refused (helpers.core.checkpoint). `choose` is the one
place where a profile name becomes a config, and where a rehearsal (`make rehearse`) caps the
fields that declare a `rehearsal_max`.
"""
from __future__ import annotations

import ast
import dataclasses
import os
from dataclasses import asdict, field, fields, is_dataclass, replace

PROFILES = ("smoke", "demo", "full")
# A rehearsal (`make rehearse`): FACEGAN_REHEARSE=S caps every training run at S seconds and two
# epochs, so the `full` profile's networks, sizes and code paths run end to end on a CPU in minutes.
REHEARSE_ENV = "FACEGAN_REHEARSE"
REHEARSAL_EPOCHS = 2
# Settings for a notebook that trains (`run_notebooks --set`, `make publish-real CONFIG=...`): KEY=VALUE
# pairs separated by ';', as train.py's --set takes them; a published set ignores them.
SETTINGS_ENV = "FACEGAN_SET"


def parse_overrides(pairs: list[str]) -> dict:
    """Return config overrides from KEY=VALUE strings (VALUE a Python literal, else a string);
    'acgan.batch_size=32' sets a field of a nested config."""
    out: dict = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{pair!r}: use KEY=VALUE, e.g. lr=1e-4 or acgan.max_seconds=600")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        *outer, last = key.strip().split(".")
        node = out
        for k in outer:
            node = node.setdefault(k, {})
        node[last] = value
    return out


def environment_pairs() -> list[str]:
    """Return the KEY=VALUE strings FACEGAN_SET holds, ';'-separated ([] when unset)."""
    return [p.strip() for p in os.environ.get(SETTINGS_ENV, "").split(";") if p.strip()]


def environment_settings() -> dict:
    """Return the config overrides FACEGAN_SET names ({} when unset)."""
    try:
        return parse_overrides(environment_pairs())
    except ValueError as err:
        raise ValueError(f"{SETTINGS_ENV}: {err}") from None


def merged(a: dict, b: dict) -> dict:
    """Return the overrides a with b on top (nested dicts merged key by key)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_field(default=None, *, rehearsal_max: int | None = None, default_factory=None):
    """Return a dataclass field that only steers a run (resume ignores it).

    rehearsal_max: in a rehearsal, `choose` caps the value at this (e.g. evaluation sizes: a
    rehearsal checks code paths, and thousands of samples would take most of its time on a CPU).
    """
    meta = {"run": True, "rehearsal_max": rehearsal_max}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def field_defaults(cfg) -> dict:
    """Return {name: default} of a config dataclass's top-level fields that have a plain default."""
    return {f.name: f.default for f in fields(cfg) if f.default is not dataclasses.MISSING}


def run_keys(cfg) -> frozenset:
    """Return the names of cfg's run-only fields (nested dataclasses included, as 'outer.inner')."""
    out = set()
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata.get("run"):
            out.add(f.name)
        elif is_dataclass(value):
            out |= {f"{f.name}.{k}" for k in run_keys(value)}
    return frozenset(out)


def model_dict(cfg) -> dict:
    """Return cfg as a dict without its run-only fields: what must match to resume a checkpoint."""
    skip = {k for k in run_keys(cfg) if "." not in k}
    return {f.name: (model_dict(getattr(cfg, f.name)) if is_dataclass(getattr(cfg, f.name))
                     else asdict(cfg)[f.name]) for f in fields(cfg) if f.name not in skip}


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


def rehearsal_caps(cfg):
    """Return cfg with every field that declares a rehearsal_max capped at it (nested configs too),
    or cfg unchanged outside a rehearsal."""
    if rehearsal_seconds() is None:
        return cfg
    changes = {}
    for f in fields(cfg):
        value, cap = getattr(cfg, f.name), f.metadata.get("rehearsal_max")
        if cap is not None and value is not None:
            changes[f.name] = min(value, cap)
        elif is_dataclass(value):
            changes[f.name] = rehearsal_caps(value)
    return replace(cfg, **changes)


def choose(presets: dict, profile: str, **overrides):
    """Return a copy of presets[profile] with `overrides` replaced, rehearsal caps applied.

    Nested configs take a dict of their own fields, e.g. acgan={'max_seconds': 60}; tuples given as
    lists are turned back into tuples.
    """
    if profile not in presets:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(map(repr, presets))}")
    cfg = presets[profile]
    for key, value in overrides.items():
        current = getattr(cfg, key) if hasattr(cfg, key) else None
        if not any(f.name == key for f in fields(cfg)):
            raise TypeError(f"{type(cfg).__name__} has no field {key!r}: choose from "
                            f"{', '.join(f.name for f in fields(cfg))}")
        if is_dataclass(current) and isinstance(value, dict):
            overrides[key] = replace(current, **value)
        elif isinstance(current, tuple) and isinstance(value, list):
            overrides[key] = tuple(value)
    return rehearsal_caps(replace(dataclasses.replace(cfg), **overrides))
