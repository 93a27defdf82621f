"""Judge a trained model on any face folder: `make evaluate MODEL=dcgan WEIGHTS=path/to/last.pt DATA=folder OUT=out.json`.

    python -m helpers.tools.evaluate --model dcgan --weights checkpoints_gan/dcgan/demo_synthfaces_32px/last.pt \\
        --data synthetic --out outputs/evaluate/dcgan.json [--n 2000] [--split test|valid|all]

WEIGHTS is a checkpoint the notebooks or `make train` wrote (last.pt, best_*.pt), or the name of a
published set (helpers.core.published). The networks are rebuilt from the config saved with the
weights and loaded strictly; DATA's split is scored with the project's judges (docs/metrics.md):
FID / KID against the split's faces, the face detector on the samples and on the real faces, and
for Fader the attribute swap, preservation, reconstruction PSNR and identity kept (plain and
residual). `--split all` is for a folder no model trained on. One JSON comes out.
Models: dcgan, began and fader (one trainer each); SMiLE and LAPGAN come with their published sets.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import fields
from pathlib import Path

import torch

from ..core import published
from ..core.atomic import atomic_write_text
from ..core.checkpoint import read_checkpoint
from ..core.runtime import get_device, machine

NOTEBOOK = {"dcgan": "01_dcgan_face_generation", "fader": "02_fadernet", "began": "04_began_interpolation"}
FIELD_KEYS = ("fid", "kid", "kid_std", "kid_se", "face_detect_rate", "fd_oracle")
FADER_KEYS = ("swap_accuracy_mean", "preserve_accuracy", "recon_psnr", "identity_kept", "swap_accuracy_residual_mean",
              "preserve_accuracy_residual", "identity_kept_residual", "identity_kept_recon")


def read_weights(model: str, weights: str) -> tuple[dict, dict, str]:
    """Return (config dict, {network: state_dict}, what they are) of a checkpoint file or a published set."""
    if model not in NOTEBOOK:
        raise SystemExit(f"--model {model}: evaluate takes {', '.join(NOTEBOOK)} (SMiLE and LAPGAN: with their "
                         "published sets, issue 34)")
    path = Path(weights).expanduser()
    if path.suffix == ".pt" or path.is_file():
        ckpt = read_checkpoint(path)
        if ckpt["model"] != model:
            raise SystemExit(f"{path} holds a {ckpt['model']!r} model, not {model!r}: pass --model {ckpt['model']}")
        return ckpt["config"], ckpt["modules"], str(path)
    part = published.open_set(NOTEBOOK[model], weights).payload["parts"][model]
    return part["config"], part["modules"], f"published set {weights!r}"


def config_from(package, saved: dict):
    """Return the model's config dataclass with every field the saved dict holds (others: demo's)."""
    names = {f.name for f in fields(package.config_for("demo"))}
    return package.config_for("demo", **{k: v for k, v in saved.items() if k in names})


def evaluate(model: str, weights: str, data: str, n: int = 2000, split: str = "test", device=None) -> dict:
    """Return the judges' numbers of `model`'s `weights` on `data`'s `split` (see the module docstring)."""
    from ..data.faces import load_faces
    from ..eval import judges as face_judges
    from ..eval import presets
    from ..eval.panel import load_judges

    package = importlib.import_module(f"helpers.models.{model}")
    saved, modules, what = read_weights(model, weights)
    cfg = config_from(package, saved)
    device = torch.device(device) if device else get_device()
    test = load_faces(data, cfg.img_size, split=split)
    if model == "fader" and not set(cfg.attrs) <= set(test.attr_names):
        raise SystemExit(f"{data} has no labels for {sorted(set(cfg.attrs) - set(test.attr_names))}: Fader's "
                         "swap and preservation need a folder with CelebA's attributes")
    # the oracle (attribute FD, Fader's swap) learns from the folder's training faces, or all of them
    train = test if split == "all" else load_faces(data, cfg.img_size, split="train")
    valid = test if split == "all" else load_faces(data, cfg.img_size, split="valid")
    n = min(n, len(test))
    judges = load_judges(train, valid, device, presets.config_for("demo", fid_samples=n, identity_samples=min(n, 300)))
    _, nets = package.build_trainer(cfg, train, device, None, live=False, progress=False)
    missing = sorted(set(nets) - set(modules) - ({"D"} if model == "dcgan" else set()))  # samples need no D
    if missing:
        raise SystemExit(f"{what} holds no weights for {missing}: pass a checkpoint of this model's trainer")
    for name, sd in modules.items():
        nets[name].load_state_dict(sd)
    if model == "fader":
        scores = package.evaluate(nets, cfg, judges, test, n)
        keys = ("fid", "kid", "kid_std", "kid_se", "face_detect_rate", *FADER_KEYS)
    else:
        scores, keys = package.evaluate(nets, cfg, judges, test, n), FIELD_KEYS
    real = test.sample(n, seed=2)
    return {"model": model, "weights": what, "data": str(data), "split": split, "n": n, "img_size": cfg.img_size,
            **{k: float(scores[k]) for k in keys if k in scores},
            "face_detect_rate_real": face_judges.face_detection_rate(real), "machine": machine(device)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help=", ".join(NOTEBOOK))
    ap.add_argument("--weights", required=True, help="a checkpoint (.pt) or a published set's name")
    ap.add_argument("--data", default="synthetic", help="'synthetic', a CelebA-layout folder or an image folder")
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument("--n", type=int, default=2000, help="samples (and real faces) judged")
    ap.add_argument("--split", default="test", choices=("test", "valid", "all"))
    ap.add_argument("--device", default=None)
    a = ap.parse_args(argv)
    try:
        result = evaluate(a.model, a.weights, a.data, a.n, a.split, a.device)
    except (published.PublishedError, FileNotFoundError) as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 2
    atomic_write_text(Path(a.out), json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
