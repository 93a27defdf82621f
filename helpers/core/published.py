"""Published weight sets (play first): trained inference weights that ship with the project.

    checkpoints_gan/published/MANIFEST.json     {"entries": [one entry per notebook and set]}
    checkpoints_gan/published/<set>/<notebook>.pt

An entry names the notebook, model, set ('synthetic', 'celeba', ...), file, its sha256 and size,
the image size, the profile and data it was trained on, images seen, training seconds, hardware,
code commit and its numbers (`make evaluate`, written into the entry afterwards). A file holds one
part per trainer the notebook runs ('dcgan'; 'acgan', 'wacgan', 'encoder_after', ...): the weights
the figures, sliders and evaluation need (half precision; int8 for a set PRECISION lists), the config they were built with and the
run's small record (loss curves, per-epoch samples as uint8), so a notebook's figures of its
training still draw; and the attribute oracle the notebook judged with, so its judges need no
training either. Loading checks, in this order, and stops with a message naming the file and the
fix at the first that fails: the set is listed, the file is there, its sha256 is the listed one,
it loads with torch.load(weights_only=True), each part's config fits the trainer the notebook
built, every network's weights fit (strict load_state_dict).

In a notebook (pretrained: the parameters cell's set name, None to train here):

    weights = H.published.open_set("01_dcgan_face_generation", pretrained)   # None when training
    state = H.published.fit(trainer, weights, cfg.epochs, cfg.max_seconds)   # trains, or loads
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import fields, is_dataclass
from pathlib import Path

import torch

from . import paths
from .atomic import atomic_write, atomic_write_text
from .checkpoint import config_diff
from .runtime import machine
from .train import TrainState

FORMAT = "facegan-published-2"
PRETRAINED_ENV = "FACEGAN_PRETRAINED"
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
    return dequantize(payload)


# What a set trained on real faces carries with it (the card shows it; issue 36).
CELEBA_TERMS = ("trained on CelebA images: CelebA is for non-commercial research purposes only (its agreement, "
                "mmlab.ie.cuhk.edu.hk/projects/CelebA.html), and these weights carry those terms")


def data_terms(data: str) -> str | None:
    """Return the terms a set trained on `data` carries: CelebA's for a folder named like CelebA (several
    folders: a:b), else None (the synthetic faces and the project's own data)."""
    names = [Path(p).name.lower() for p in str(data).split(os.pathsep)]
    return CELEBA_TERMS if any("celeba" in n for n in names) else None


def data_label(data: str) -> str:
    """Return how a card names the faces a set was trained on: 'synthetic', 'lfw100', or a folder's name
    (several folders a:b as a+b), never the path on the machine that trained it."""
    parts = str(data).split(os.pathsep)
    return "+".join(Path(p).name for p in parts) if any(os.sep in p for p in parts) else str(data)


# Keys of a trainer's config that say where and how it ran, not what it learnt.
RUN_ONLY = {"data", "data_faces", "world_size"}


class Weights:
    """A published set opened for one notebook, its file verified (read()); None stands for 'train here'."""

    def __init__(self, notebook: str, set_name: str, folder: Path = FOLDER):
        self.notebook, self.name, self.folder = notebook, set_name, Path(folder)
        self.entry = find(notebook, set_name, folder)
        self.payload = read(self.entry, folder)
        self.path = Path(folder) / self.entry["file"]
        self.profile = self.payload["profile"]  # the preset the networks were built with
        self.labelled: list[str] = []  # digests of the faces this set's oracle labelled (generated_faces)

    def __repr__(self) -> str:
        return f"Weights({self.notebook!r}, {self.name!r}: {', '.join(self.payload['parts'])})"

    def card(self):
        """Return the model card as Markdown (Jupyter shows it)."""
        from IPython.display import Markdown

        return Markdown(card_markdown({**self.payload, "card": self.entry}))

    def load(self, trainer, part: str | None = None) -> TrainState:
        """Load part `part` (default: the trainer's name) into the trainer's networks and return the
        run's record as a TrainState (what training would have returned)."""
        part = part or trainer.name
        parts = self.payload["parts"]
        if part not in parts:
            raise PublishedError(f"{self.path} has no part {part!r} (it has {', '.join(parts)}): train here "
                                 "(pretrained=None)")
        p = parts[part]
        ignore = set(p["run_keys"]) | RUN_ONLY | (set(trainer.config) - set(p["config"]))
        diff = config_diff(p["config"], trainer.config, ignore=ignore)
        if diff:
            fields = ", ".join(f"{k} {a!r} (here {b!r})" for k, (a, b) in list(diff.items())[:6])
            raise PublishedError(f"the {self.name!r} weights of {self.notebook} ({self.path}, part {part}) were "
                                 f"trained with {fields}: build the config from the set's profile "
                                 f"({self.profile!r}) as the notebook does, or train here (pretrained=None)")
        for name, sd in p["modules"].items():
            try:
                trainer.modules[name].load_state_dict(sd)  # copy_ casts half precision back
            except (RuntimeError, KeyError) as err:
                raise PublishedError(f"{self.path}: the weights of {part}/{name} do not fit this network "
                                     f"({str(err)[:300]}); the config and the code disagree: train here "
                                     "(pretrained=None)") from None
        trainer.state = TrainState(**p["state"])
        return trainer.state

    def shipped(self, part: str) -> set:
        """Return the names of the networks the set ships for `part` (a lean set leaves some out: LEAN)."""
        return set(self.payload["parts"][part]["modules"])

    def oracle(self) -> dict | None:
        """Return the attribute oracle's cache payload the notebook judged with (None when not shipped),
        with `faces`: the digest of the faces it was trained on (FaceSet.digest, from the manifest), and
        `labelled`: the digests of the faces it labelled (generated_faces), which it judges too."""
        payload = self.payload.get("oracle")
        return None if payload is None else {**payload, "faces": self.entry.get("oracle_faces"),
                                             "labelled": list(self.labelled)}

    def generated_faces(self, image_size: int, sizes: dict | None = None, seed: int = 0) -> tuple:
        """Return (train, valid, test) FaceSets of faces the same set's DCGAN (notebook 01) draws, at
        image_size px, labelled by this set's oracle (probability > 0.5): what an editing notebook edits
        when its data has no labels for its attributes (LFW, a folder of photos). They have no person ids.

        sizes: {split: number of faces}, default GENERATED. The oracle is then the judge of these faces
        too (load_judges uses it for them, as for the faces it was trained on)."""
        import torch.nn.functional as F

        from ..data.faces import FaceSet
        from ..eval.oracle import AttributeOracle
        from ..gan.latent import generate, sample_z
        from ..models.dcgan.nets import Generator
        from .train import to_uint8

        if self.payload.get("oracle") is None:
            raise PublishedError(f"{self.path} ships no attribute oracle to label generated faces: use data with "
                                 "the model's attribute labels (a CelebA-layout folder), or train here (pretrained=None)")
        dcgan = Weights(DCGAN_NOTEBOOK, self.name, self.folder)
        part = dcgan.payload["parts"]["dcgan"]
        c, modules = part["config"], part["modules"]
        sd = modules.get("G_ema", modules.get("G"))
        channels = [t for t in sd.values() if t.dim() == 4][-1].shape[1]  # the last transposed conv's outputs
        G = Generator(c["z_dim"], c["g_conv_dim"], c["img_size"], channels)
        G.load_state_dict(sd)
        oracle = AttributeOracle(**self.payload["oracle"]["config"])
        oracle.load_state_dict(self.payload["oracle"]["state_dict"])
        sizes = sizes or GENERATED
        sets = []
        for i, (split, n) in enumerate(sizes.items()):
            x = generate(G.eval(), sample_z(n, c["z_dim"], c.get("z_dist", "normal"), seed=seed + i))
            if x.shape[-1] != image_size:
                x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
            labels = (oracle.eval().predict(x) > 0.5).float()
            key = f"generated_{self.name}_{dcgan.entry['sha256'][:10]}_{image_size}px_n{n}_s{seed + i}"
            sets.append(FaceSet(to_uint8(x), labels, list(oracle.attr_names), key, f"{self.name}_dcgan_faces", split))
        self.labelled += [f.digest() for f in sets]
        return tuple(sets)


DCGAN_NOTEBOOK = "01_dcgan_face_generation"
GENERATED = {"train": 1000, "valid": 200, "test": 500}  # the judges' pretrained sizes (presets.PLAY) fit in these


def open_set(notebook: str, set_name: str | None, folder: Path = FOLDER) -> Weights | None:
    """Return the verified published set `set_name` of `notebook`, or None when set_name is None (train here).

    FACEGAN_PRETRAINED names a set where the notebook's cell says None (`make app`, the browser suite:
    a dashboard takes no parameters); it is printed, as setup() prints the environment's other overrides."""
    if set_name is None and os.environ.get(PRETRAINED_ENV):
        set_name = os.environ[PRETRAINED_ENV]
        print(f"pretrained {set_name!r}, from {PRETRAINED_ENV} (the notebook's cell says None)")
    return None if set_name is None else Weights(notebook, set_name, folder)


def sized(cfg, img_size: int | None) -> dict:
    """Return the overrides that put a model config at img_size: its own `img_size` field, or its nested
    parts' (SMiLE's GANs); {} for None or the size it already has."""
    if img_size is None or getattr(cfg, "img_size", None) == img_size:
        return {}
    if any(f.name == "img_size" for f in fields(cfg)):
        return {"img_size": img_size}
    return {f.name: {"img_size": img_size} for f in fields(cfg)
            if is_dataclass(getattr(cfg, f.name)) and any(g.name == "img_size" for g in fields(getattr(cfg, f.name)))}


def config(package, weights: Weights | None, profile: str, img_size: int | None = None, **overrides):
    """Return a notebook's model config: an open set's (its profile's preset at the set's image size),
    else `profile`'s preset at `img_size` (None: the preset's own) with the environment's settings
    (FACEGAN_SET: `make publish-real CONFIG=...` gives a long run's parts their budgets); `overrides`
    on top of either."""
    from .config import environment_settings, merged, parse_overrides

    settings = {}
    if weights is not None:
        size = weights.entry.get("img_size")
        if img_size is not None and img_size != size:
            raise PublishedError(f"the published set {weights.name!r} of {weights.notebook} is {size} px, not "
                                 f"img_size={img_size}: leave img_size at None to use it, or train here (pretrained=None)")
        profile, img_size = weights.profile, size
        settings = parse_overrides(weights.entry.get("settings", []))  # what its run set beside the preset
    else:
        settings = environment_settings()
    return package.config_for(profile, **merged(merged(sized(package.config_for(profile), img_size), settings),
                                                overrides))


def model_settings(model: str, profile: str) -> list[str]:
    """Return the run's FACEGAN_SET overrides (`make publish-real CONFIG=...`) that shape the model, as
    KEY=VALUE strings: a notebook opened on the set builds its config with them (config). Budgets and
    other run-only fields stay behind, and so do keys of another model (one CONFIG for several notebooks)."""
    import importlib

    from .config import environment_pairs, run_keys

    cfg = importlib.import_module(f"helpers.models.{model}").config_for(profile)
    names, run = {f.name for f in fields(cfg)}, run_keys(cfg)
    keys = {p: p.partition("=")[0].strip() for p in environment_pairs()}
    return [p for p, key in keys.items() if key.split(".")[0] in names and key not in run]


def demo_checks(profile: str, data, weights: Weights | None) -> bool:
    """True where a notebook's demo sanity bounds apply: the demo profile on the synthetic faces, with
    models trained here or a set trained on them (a `celeba` set judged on synthetic faces is far from
    them by design, not broken)."""
    trained_on = "synthetic" if weights is None else weights.entry.get("data")
    return profile == "demo" and data == "synthetic" and trained_on == "synthetic"


def faces_to_edit(data, image_size: int, need, weights: Weights | None = None, max_images: int | None = None) -> tuple:
    """Return (train, valid, test) FaceSets for an editing notebook (Fader, SMiLE): `data`'s splits
    (helpers.data.load_faces; train cut to max_images), or, when a published set is open and the data
    has no labels for the attributes `need` (LFW, a folder of photos), the faces the set's DCGAN draws,
    labelled by the set's oracle (Weights.generated_faces). Training (weights None) needs the labels."""
    from ..data.faces import load_faces
    from ..data.sources import DataError

    test = load_faces(data, image_size, split="test")
    missing = [a for a in need if a not in test.attr_names]
    if missing and weights is not None:
        print(f"{data} has no labels for {', '.join(missing)}: editing faces the {weights.name!r} set's DCGAN draws, "
              f"labelled by the set's oracle")
        return weights.generated_faces(image_size)
    if missing:
        raise DataError(f"{data} has no labels for {', '.join(missing)}, and this model trains on them: use a "
                        "CelebA-layout folder (list_attr_celeba.txt), or pretrained='synthetic' to edit faces a "
                        "published DCGAN draws")
    return (load_faces(data, image_size, split="train", max_images=max_images),
            load_faces(data, image_size, split="valid"), test)


def fit(trainer, weights: Weights | None, epochs: int, max_seconds: float | None = None,
        part: str | None = None) -> TrainState:
    """Train (weights None: trainer.fit, resuming its last.pt) or load the published part; return the state."""
    if weights is None:
        return trainer.fit(epochs, max_seconds=max_seconds)
    return weights.load(trainer, part)


def commit() -> str:
    """Return the code's git commit ('unknown' outside a checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


KEPT_SAMPLE_EPOCHS = 8  # a long run's per-epoch grids (64 px: 0.2 MB each) would outweigh its networks
# The parts whose per-epoch sample grids a notebook shows (01's and 04's epoch sliders and progress
# figures), all drawn from noise. No other part's grids ship: nothing shows them after loading, and
# Fader's (its training faces rebuilt) and LAPGAN's refinement levels' (real faces refined) hold photos
# of the training faces, which a set trained on real faces must not carry.
SHOWN_GRIDS = {"dcgan": ("dcgan",), "began": ("began",)}


def thin_samples(samples: list, keep: int = KEPT_SAMPLE_EPOCHS) -> list:
    """Return the per-epoch sample grids with at most `keep` of them kept, the others None: the first,
    the last, those the notebooks' training figures show (1/4 and 1/2 of the way) and evenly spaced
    ones between (widgets.render_epoch shows the nearest earlier kept grid for the others)."""
    n = len(samples)
    if n <= keep:
        return list(samples)
    figures = [0, max(1, n // 4) - 1, max(1, n // 2) - 1, n - 1]  # epochs 1, n/4, n/2 and n, 0-based
    picks = set(list(dict.fromkeys(figures + [round(i * (n - 1) / (keep - 1)) for i in range(keep)]))[:keep])
    return [s if i in picks else None for i, s in enumerate(samples)]


# How each set stores its weights: fp16 unless listed. The celeba set's 64 px networks in fp16 would not fit
# beside the synthetic set in the 60 MB the project allows; its cards are measured on the int8 file.
PRECISION = {"celeba": "int8"}
# Networks a set leaves out beside export's `drop`, {set: {part: names}}: Fader's latent discriminator only
# trains the encoder (and steers an optional refinement term); at 64 px it is 4.5 MB in int8, which the
# celeba set cannot hold within the 60 MB budget. A notebook opened on such a set runs without it.
LEAN = {"celeba": {"fader": ("D",)}}
QUANTIZE_MIN = 4096  # smaller tensors (biases, norms, the first layers) stay fp16: they are few bytes


def quantize(t: torch.Tensor, precision: str):
    """Return t as stored at `precision`: 'fp16', or 'int8' for a weight of >= QUANTIZE_MIN values
    (symmetric, one fp16 scale per slice of the first dimension, a conv's output channels:
    {"int8": q, "scale": s}, t ~ q * s); others fp16."""
    if not t.is_floating_point():
        return t.detach().cpu()
    t = t.detach().cpu().float()
    if precision == "fp16" or t.dim() < 2 or t.numel() < QUANTIZE_MIN:
        return t.half()
    if precision != "int8":
        raise ValueError(f"precision={precision!r}: use 'fp16' or 'int8'")
    scale = (t.abs().amax(dim=tuple(range(1, t.dim())), keepdim=True) / 127).half().float().clamp_min(1e-7)
    return {"int8": (t / scale).round().clamp(-127, 127).to(torch.int8), "scale": scale.half()}


def dequantize(obj):
    """Return obj (a payload, or any part of one) with every int8 weight ({"int8", "scale"}) back as a
    float32 tensor; everything else as it is."""
    if isinstance(obj, dict):
        if set(obj) == {"int8", "scale"}:
            return obj["int8"].float() * obj["scale"].float()
        return {k: dequantize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [dequantize(v) for v in obj]
    return obj


def export(trainers: dict, *, notebook: str, model: str, set_name: str, profile: str, data: str,
           oracle_of=None, drop: dict | None = None, nets: dict | None = None, folder: Path = FOLDER) -> dict:
    """Write `trainers` ({part: Trainer}, trained) as `<set_name>/<notebook>.pt` under folder in half
    precision (int8 weights for a set PRECISION lists), list it in MANIFEST.json (replacing an older entry of the same notebook and set) and
    return the entry.

    oracle_of: the training faces whose cached attribute oracle judged the run (load_judges): shipped,
    so a notebook opened on the set trains no judge.
    drop: {part: network names} not needed to draw, edit or judge (a DCGAN's D). A G beside its weight
    average G_ema is never shipped: the figures and sliders draw with the average (gan.sampler).
    nets: {part: {name: module}} to take the weights from instead of the trainer's (a selected epoch)."""
    precision = PRECISION.get(set_name, "fp16")

    def pack(sd):
        return {n: quantize(t, precision) for n, t in sd.items()}

    nets, lean, drop = nets or {}, LEAN.get(set_name, {}), drop or {}
    drop = {p: (*lean.get(p, ()), *drop.get(p, ())) for p in {*lean, *drop}}
    parts = {}
    for part, t in trainers.items():
        modules = nets.get(part, t.modules)
        skip = {*drop.get(part, ()), *(("G",) if "G_ema" in modules else ())}  # the average is what draws
        record = {k: getattr(t.state, k) for k in ("epoch", "batch", "step", "seconds", "history", "epoch_metrics",
                                                   "best", "stopped")}
        record["samples"] = thin_samples(t.state.samples) if part in SHOWN_GRIDS.get(model, ()) else []
        parts[part] = {"config": t.config, "run_keys": list(t.run_keys), "state": record,
                       "modules": {k: pack(m.state_dict()) for k, m in modules.items() if k not in skip}}
    first = next(iter(trainers.values()))
    card = {"profile": profile, "data": data_label(data), "img_size": first.config.get("img_size"),
            "images_seen": int(sum(t.state.step * t.global_batch for t in trainers.values())),
            "train_seconds": round(sum(t.state.seconds for t in trainers.values()), 1),
            "hardware": machine(first.device), "commit": commit(), "parts": list(trainers)}
    settings = model_settings(model, profile)
    if settings:
        card["settings"] = settings
    oracle_payload = None
    if oracle_of is not None:
        from ..eval.oracle import oracle_cache_path

        oracle_payload = torch.load(oracle_cache_path(oracle_of), map_location="cpu", weights_only=True)
        oracle_payload["state_dict"] = pack(oracle_payload["state_dict"])
    payload = {"format": FORMAT, "notebook": notebook, "model": model, "set": set_name, "profile": profile,
               "parts": parts, "oracle": oracle_payload}
    rel = f"{set_name}/{notebook}.pt"
    path = atomic_write(Path(folder) / rel, lambda fh: torch.save(payload, fh))
    entry = {"notebook": notebook, "model": model, "set": set_name, "file": rel, "sha256": sha256(path),
             "bytes": path.stat().st_size, "precision": precision, **card}
    if oracle_of is not None:
        entry["oracle_faces"] = oracle_of.digest()
    if data_terms(data):
        entry["terms"] = data_terms(data)
    # a new file's numbers come from a new `make evaluate`: an older entry's go with it
    _write_manifest([e for e in read_manifest(folder) if not (e["notebook"] == notebook and e["set"] == set_name)]
                    + [entry], folder)
    return entry


def _write_manifest(entries: list[dict], folder: Path) -> None:
    entries = sorted(entries, key=lambda e: (e["set"], e["notebook"]))
    atomic_write_text(Path(folder) / "MANIFEST.json", json.dumps({"entries": entries}, indent=1) + "\n")


def set_numbers(notebook: str, set_name: str, numbers: dict, folder: Path = FOLDER) -> dict:
    """Write `make evaluate`'s numbers into the manifest entry of a set (the file is unchanged)."""
    entry = find(notebook, set_name, folder)
    entries = [e for e in read_manifest(folder) if e is not entry and e != entry]
    entry = {**entry, "numbers": numbers}
    _write_manifest(entries + [entry], folder)
    return entry


def card_markdown(payload: dict) -> str:
    """Return a short model card (markdown) for a loaded set: what, trained on what, how long, its numbers."""
    c = payload["card"]
    lines = [f"**{payload['notebook']}**, published set `{payload['set']}` ({payload['model']}, "
             f"{c.get('profile', '?')} profile, parts: {', '.join(c.get('parts', []))})",
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
