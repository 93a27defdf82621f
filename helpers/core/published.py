"""Published weight sets (play first): trained inference weights that ship with the project.

    checkpoints_gan/published/MANIFEST.json     {"entries": [one entry per notebook and set]}
    checkpoints_gan/published/<set>/<notebook>.pt

An entry names the notebook, model, set ('synthetic', 'celeba', ...), file, its sha256 and size,
the image size, the data it was trained on, images seen, training seconds, hardware, code commit
and its numbers (`make evaluate`). A file holds only what the figures, sliders and evaluation need:
the networks' weights (half precision where the numbers hold), the config they were built with,
and the run's small record (loss curves, per-epoch samples as uint8) so a notebook's figures of its
training still draw. Loading checks, in this order, and stops with a message naming the file and
the fix at the first that fails: the set is listed, the file is there, its sha256 is the listed
one, it loads with torch.load(weights_only=True), its config fits the notebook's, every network's
weights fit (strict load_state_dict).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch

from . import paths
from .atomic import atomic_write, atomic_write_text
from .checkpoint import config_diff
from .config import run_keys

FORMAT = "facegan-published-1"
FOLDER = paths.ROOT / "checkpoints_gan" / "published"  # tracked; FACEGAN_CHECKPOINTS never moves it


class PublishedError(RuntimeError):
    """A published weight set cannot be used; the message names the file and what to do."""


def sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path = FOLDER) -> list[dict]:
    """Return MANIFEST.json's entries ([] when there is none yet)."""
    path = Path(folder) / "MANIFEST.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text())["entries"]


def find(notebook: str, set_name: str, folder: Path = FOLDER) -> dict:
    """Return the manifest entry of `notebook`'s weights in set `set_name`, or raise PublishedError
    listing the sets that notebook has."""
    entries = read_manifest(folder)
    for e in entries:
        if e["notebook"] == notebook and e["set"] == set_name:
            return e
    sets = sorted({e["set"] for e in entries if e["notebook"] == notebook})
    have = f"its sets are {', '.join(map(repr, sets))}" if sets else "it has none yet"
    raise PublishedError(f"no published set {set_name!r} for {notebook} in {Path(folder) / 'MANIFEST.json'} "
                         f"({have}): set pretrained to one of them, or None to train here")


def _config(cfg) -> dict:
    return asdict(cfg) if is_dataclass(cfg) else dict(cfg)


def read(entry: dict, folder: Path = FOLDER) -> dict:
    """Return the verified payload of a manifest entry: the file exists, its sha256 is the listed
    one, and it loads with weights_only=True."""
    path = Path(folder) / entry["file"]
    if not path.is_file():
        raise PublishedError(f"{path} is listed in MANIFEST.json but missing: restore it with "
                             f"`git checkout -- {path.relative_to(paths.ROOT) if path.is_relative_to(paths.ROOT) else path}`")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise PublishedError(f"{path} is damaged or was changed: its sha256 is {digest[:12]}..., MANIFEST.json "
                             f"says {entry['sha256'][:12]}... ({path.stat().st_size:,} of {entry['bytes']:,} bytes); "
                             "restore the file from git (`git checkout -- <file>`) or train here (pretrained=None)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise PublishedError(f"{path} matches its sha256 but does not load ({type(err).__name__}: {err}); "
                             "it was written by another version of this project: train here (pretrained=None)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PublishedError(f"{path} is not a Face GAN Lab weight set ({FORMAT}); train here (pretrained=None)")
    return payload


def load(notebook: str, set_name: str, nets: dict, config=None, folder: Path = FOLDER) -> dict:
    """Load a published set's weights into `nets` ({name: module}, built as the notebook builds
    them); return the payload ('card', 'config', 'state', ...).

    config: the notebook's config; every field but the run-only ones (helpers.core.config) must be
    the one the set was trained with. Networks the file lacks, or weights of other shapes, are
    refused with the set's name and the fix."""
    entry = find(notebook, set_name, folder)
    payload = read(entry, folder)
    path = Path(folder) / entry["file"]
    if config is not None:
        current = _config(config)
        ignore = set(payload.get("run_keys", ())) | (set(current) - set(payload["config"]))
        diff = config_diff(payload["config"], current, ignore=ignore)
        if diff:
            fields = ", ".join(f"{k} {a!r} (here {b!r})" for k, (a, b) in diff.items())
            raise PublishedError(f"the {set_name!r} weights of {notebook} ({path}) were trained with {fields}: "
                                 f"use the profile they were trained in ({entry.get('profile', 'demo')!r}) "
                                 "with those settings, or train here (pretrained=None)")
    missing = sorted(set(nets) - set(payload["modules"]))
    if missing:
        raise PublishedError(f"{path} holds no weights for {missing}: train here (pretrained=None)")
    for name, module in nets.items():
        try:
            module.load_state_dict(payload["modules"][name])  # copy_ casts half precision back
        except RuntimeError as err:
            raise PublishedError(f"{path}: the weights of {name} do not fit this network ({str(err)[:300]}); "
                                 "the config and the code disagree: train here (pretrained=None)") from None
    return payload


def export(nets: dict, *, notebook: str, model: str, set_name: str, config, card: dict, state=None,
           half: bool = True, folder: Path = FOLDER) -> dict:
    """Write `nets`' weights as `<set_name>/<notebook>.pt` under folder, list it in MANIFEST.json
    (replacing an older entry of the same notebook and set) and return the entry.

    card: what the manifest says of the weights (data, images_seen, train_seconds, hardware,
    commit, numbers, ...). state: the run's TrainState, whose curves, per-epoch samples and
    epoch metrics travel along (a few hundred kB). half: store floating-point tensors as fp16.
    """
    def pack(t):
        return t.detach().cpu().half() if half and t.is_floating_point() else t.detach().cpu()

    record = None
    if state is not None:
        record = {k: getattr(state, k) for k in ("epoch", "step", "seconds", "history", "epoch_metrics", "samples",
                                                   "best", "stopped")}
    payload = {"format": FORMAT, "notebook": notebook, "model": model, "set": set_name,
               "config": _config(config), "run_keys": sorted(run_keys(config) if is_dataclass(config) else ()), "card": card, "state": record,
               "modules": {k: {n: pack(t) for n, t in m.state_dict().items()} for k, m in nets.items()}}
    rel = f"{set_name}/{notebook}.pt"
    path = atomic_write(Path(folder) / rel, lambda fh: torch.save(payload, fh))
    entry = {"notebook": notebook, "model": model, "set": set_name, "file": rel, "sha256": sha256(path),
             "bytes": path.stat().st_size, "precision": "fp16" if half else "fp32", **card}
    entries = [e for e in read_manifest(folder) if not (e["notebook"] == notebook and e["set"] == set_name)]
    entries = sorted([*entries, entry], key=lambda e: (e["set"], e["notebook"]))
    atomic_write_text(Path(folder) / "MANIFEST.json", json.dumps({"entries": entries}, indent=1) + "\n")
    return entry


def card_markdown(payload: dict) -> str:
    """Return a short model card (markdown) for a loaded set: what, trained on what, how long, its numbers."""
    c = payload["card"]
    lines = [f"**{payload['notebook']}**, published set `{payload['set']}` ({payload['model']})",
             f"- trained on: {c.get('data', '?')}, {c.get('images_seen', 0):,} images seen in "
             f"{c.get('train_seconds', 0):.0f} s on {c.get('hardware', '?')} (commit {str(c.get('commit', '?'))[:10]})",
             f"- image size: {c.get('img_size', '?')} px"]
    if c.get("terms"):
        lines.append(f"- terms: {c['terms']}")
    numbers = c.get("numbers") or {}
    if numbers:
        lines.append("- its numbers (`make evaluate`): " + ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items()))
    return "\n".join(lines)
