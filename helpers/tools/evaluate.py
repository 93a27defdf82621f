"""Judge a trained model on any face folder: `make evaluate MODEL=dcgan WEIGHTS=path/to/last.pt DATA=folder OUT=out.json`.

    python -m helpers.tools.evaluate --model dcgan --weights checkpoints_gan/dcgan/demo_synthfaces_32px/last.pt \\
        --data synthetic --out outputs/evaluate/dcgan.json [--n 2000] [--split test|valid|valid+test|all]

WEIGHTS is a checkpoint the notebooks or `make train` wrote (last.pt, best_*.pt), or the name of a
published set (helpers.core.published). The networks are rebuilt from the config saved with the
weights and loaded strictly; DATA's split is scored with the project's judges (docs/metrics.md):
FID / KID against the split's faces, the face detector on the samples and on the real faces, and
for Fader the attribute swap, preservation, reconstruction PSNR and identity kept (plain and
residual). Generators also get `nn_ratio`: their samples' mean distance to the nearest training face
over that of the split's real faces (helpers.eval.metrics.nn_distance_ratio; below 1: closer than
unseen faces, i.e. copies or blur), and `copy_ratio`: how often a sample's nearest real face is a
held-out one, over chance (metrics.copy_ratio; below 1: copies; blur leaves it at 1). `--split
valid+test` judges against both held-out splits (the dev folders' test split alone has ~1,000 faces);
`--split all` is for a folder no model trained on (no nn_ratio then).
One JSON comes out.
Models: dcgan, began and fader (a checkpoint or a published set); smile and lapgan as a published
set: SMiLE's ACGAN samples and its converter (ACGAN + the fixed encoder): conversion, preservation,
PSNR and identity kept; LAPGAN's pyramid, and its direct DCGAN's FID as `fid_direct`. Their headless
runs (`make train`) are judged too, on what such a run holds: SMiLE's ACGAN or WACGAN checkpoint
(its samples and class accuracy; the converter's encoder is trained by the notebook), and LAPGAN's
run folder, or any level's last.pt in it (the pyramid, at its own size). A published set is judged by the oracle it ships when DATA is the folder it was
trained on (the card's numbers), else by one trained on DATA's training faces.
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
from ..eval import judges as face_judges
from ..eval.fid import progress_bars

NOTEBOOK = {"dcgan": "01_dcgan_face_generation", "fader": "02_fadernet", "smile": "03_smile_converter",
            "began": "04_began_interpolation", "lapgan": "05_lapgan"}
SETS_ONLY = ("smile", "lapgan")
FIELD_KEYS = ("fid", "kid", "kid_std", "kid_se", "face_detect_rate", "fd_oracle")
FADER_KEYS = ("swap_accuracy_mean", "preserve_accuracy", "recon_psnr", "identity_kept", "swap_accuracy_residual_mean",
              "preserve_accuracy_residual", "identity_kept_residual", "identity_kept_recon")


def is_checkpoint(weights: str) -> bool:
    """True for a checkpoint file (a .pt path or any existing file), False for a published set's name."""
    path = Path(weights).expanduser()
    return path.suffix == ".pt" or path.is_file()


def is_run(weights: str) -> bool:
    """True for what a training run wrote: a checkpoint file or an existing folder (LAPGAN's levels)."""
    return is_checkpoint(weights) or Path(weights).expanduser().is_dir()


def read_weights(model: str, weights: str) -> tuple[dict, dict, str]:
    """Return (config dict, {network: state_dict}, what they are) of a checkpoint file or a published set."""
    if model not in NOTEBOOK:
        raise SystemExit(f"--model {model}: evaluate takes {', '.join(NOTEBOOK)}")
    path = Path(weights).expanduser()
    if is_checkpoint(weights):
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
    from ..eval import presets
    from ..eval.panel import load_judges

    if model in SETS_ONLY:
        if is_run(weights):
            return (evaluate_smile_run if model == "smile" else evaluate_lapgan_run)(weights, data, n, split, device)
        return evaluate_set(model, weights, data, n, split, device)
    package = importlib.import_module(f"helpers.models.{model}")
    saved, modules, what = read_weights(model, weights)
    cfg = config_from(package, saved)
    device = torch.device(device) if device else get_device()
    # the oracle (attribute FD, Fader's swap) learns from the folder's training faces, or all of them
    train, valid, test = folders(data, cfg.img_size, split, need=cfg.attrs if model == "fader" else ())
    n = min(n, len(test))
    shipped = None if is_checkpoint(weights) else published.open_set(NOTEBOOK[model], weights)
    judges = load_judges(train, valid, device, presets.config_for("demo", fid_samples=n, identity_samples=min(n, 300)),
                         shipped)
    _, nets = package.build_trainer(cfg, train, device, None, live=False, progress=False)
    # samples need no D, and draw with the average G_ema where there is one (a set ships no G beside it)
    # Fader's latent discriminator only steers its refinement (a lean set ships none: published.LEAN)
    needless = ({"D"} if model in ("dcgan", "fader") else set()) | ({"G"} if "G_ema" in modules else set())
    missing = sorted(set(nets) - set(modules) - needless)
    if missing:
        raise SystemExit(f"{what} holds no weights for {missing}: pass a checkpoint of this model's trainer")
    nets = {k: m for k, m in nets.items() if k in modules or k not in needless}  # none left untrained
    for name, sd in modules.items():
        nets[name].load_state_dict(sd)
    if model == "fader":
        scores = package.evaluate(nets, cfg, judges, test, n)
        keys = ("fid", "kid", "kid_std", "kid_se", "face_detect_rate", *FADER_KEYS)
    else:
        scores = {**package.evaluate(nets, cfg, judges, test, n),
                  **nn_ratios(package.samples(nets, cfg, n), train, test, split)}
        keys = (*FIELD_KEYS, "nn_ratio", "copy_ratio")
    real = test.sample(n, seed=2)
    return {"model": model, "weights": what, "data": str(data), "split": split, "n": n, "img_size": cfg.img_size,
            **{k: float(scores[k]) for k in keys if scores.get(k) is not None},
            "face_detect_rate_real": face_judges.face_detection_rate(real), "machine": machine(device)}


def nn_ratios(fake, train, test, split: str) -> dict:
    """Return the samples' nearest-neighbour ratios: `nn_ratio` (their distance to the nearest training
    face against real unseen faces' own) and `copy_ratio` (how often their nearest face is an unseen
    one, over chance: blur does not move it); {} for split 'all', where no face is held out."""
    from ..eval.metrics import copy_ratio, nn_distance_ratio, nn_distances

    if split == "all":
        return {}
    to_train = nn_distances(fake, train.images)  # both ratios need it: the costliest of the searches
    return {"nn_ratio": nn_distance_ratio(fake, train.images, test.images[:len(fake)], to_train),
            "copy_ratio": copy_ratio(fake, train.images, test.images, to_train)}


def folders(data: str, size: int, split: str, need=()):
    """Return (train, valid, test) FaceSets of `data` at `size` px for `split` (all three the whole
    folder for 'all'; test the valid and test faces together for 'valid+test'); `need`: attributes the
    test faces must carry."""
    from dataclasses import replace

    from ..data.faces import FaceSet, load_faces

    if split == "valid+test":  # every face no model trained on (a dev set's test split alone is ~1,000)
        held = [load_faces(data, size, split=s) for s in ("valid", "test")]
        test = replace(FaceSet.concat(held), split=split, name=held[0].name, key=f"{held[0].key}+{held[1].key}")
    else:
        test = load_faces(data, size, split=split)
    missing = sorted(set(need) - set(test.attr_names))
    if missing:
        raise SystemExit(f"{data} has no labels for {missing}: this model's numbers need CelebA's attributes")
    if split == "all":
        return test, test, test
    return load_faces(data, size, split="train"), load_faces(data, size, split="valid"), test


def evaluate_set(model: str, set_name: str, data: str, n: int, split: str, device=None) -> dict:
    """Return the numbers of a published SMiLE or LAPGAN set: the networks are built as the notebook
    builds them (the set's profile, at the set's size) and loaded with the set's checks."""
    from ..eval import presets
    from ..eval.panel import load_judges
    from ..models import dcgan, lapgan, smile

    w = published.open_set(NOTEBOOK[model], set_name)
    device = torch.device(device) if device else get_device()
    quiet = dict(live=False, progress=False)
    sizes = presets.config_for("demo", fid_samples=n, identity_samples=min(n, 300))
    if model == "smile":
        cfg = published.config(smile, w, w.profile)  # the set's profile at the set's size
        train, valid, test = folders(data, cfg.img_size, split, need=cfg.acgan.attrs)
        n = min(n, len(test))
        judges = load_judges(train, valid, device, sizes, w)
        ac_trainer, ac_nets = smile.build_gan_trainer(cfg.acgan, train, device, None, **quiet)
        ac_state = w.load(ac_trainer, "acgan")
        G = smile.sampler(ac_nets)
        enc, E = smile.build_encoder_trainer(cfg.encoder_after, G, cfg.acgan, train, device, None,
                                             generator_tag=f"acgan@{ac_state.step}", **quiet)
        w.load(enc, "encoder_after")
        scores = {**smile.evaluate(ac_nets, cfg.acgan, judges, test, n),
                  **nn_ratios(smile.samples(G, cfg.acgan, test, n), train, test, split),
                  **smile.conversion_metrics(G, E, judges.oracle, test, cfg.acgan, cfg.encoder_after, n=n,
                                             judges=judges, pairs_from=train)}
        keys = (*FIELD_KEYS, "nn_ratio", "copy_ratio", "class_accuracy", "conversion_accuracy", "preserve_accuracy",
                "recon_psnr", "identity_kept", "conversion_accuracy_residual", "preserve_accuracy_residual",
                "identity_kept_residual")
        size = cfg.img_size
    else:
        cfg = published.config(lapgan, w, w.profile)  # the set's profile at the set's size
        train, valid, test = folders(data, 32, split)
        n = min(n, len(test))
        judges = load_judges(train, valid, device, sizes, w)
        pyramid_faces = train if cfg.img_size == 32 else folders(data, cfg.img_size, split)[0]
        _, Gs, _ = lapgan.train_pyramid(cfg, pyramid_faces, device, None, weights=w, **quiet)
        dc_cfg = dcgan.config_for(w.profile, img_size=min(cfg.img_size, 64), max_seconds=cfg.direct_seconds,
                                  max_images=cfg.max_images)
        direct, direct_nets = dcgan.build_trainer(dc_cfg, pyramid_faces, device, None, **quiet)
        w.load(direct, "direct")
        fake_direct = lapgan.resize_to(dcgan.samples(direct_nets, dc_cfg, n), 32)
        scores = {**lapgan.evaluate(Gs, cfg, judges, test, n),
                  "fid_direct": judges.generated(fake_direct, test, n)["fid"],
                  **nn_ratios(lapgan.resize_to(lapgan.generate(Gs, cfg, n, seed=7), 32), train, test, split)}
        keys, size = (*FIELD_KEYS, "nn_ratio", "copy_ratio", "fid_direct"), cfg.img_size
    real = test.sample(n, seed=2)
    return {"model": model, "weights": f"published set {set_name!r}", "data": str(data), "split": split, "n": n,
            "img_size": size, **{k: float(scores[k]) for k in keys if scores.get(k) is not None},
            "face_detect_rate_real": face_judges.face_detection_rate(real), "machine": machine(device)}


def judge_run(model: str, what: str, data: str, n: int, split: str, size: int, need, device, score) -> dict:
    """Return the JSON of a headless run's generator: score(judges, train, test, n) -> {key: number}
    on `data`'s faces at `size` px, judged by the oracle trained on its training faces."""
    from ..eval import presets
    from ..eval.panel import load_judges

    train, valid, test = folders(data, size, split, need=need)
    n = min(n, len(test))
    judges = load_judges(train, valid, device, presets.config_for("demo", fid_samples=n, identity_samples=min(n, 300)))
    scores = score(judges, train, test, n)
    real = test.sample(n, seed=2)
    return {"model": model, "weights": what, "data": str(data), "split": split, "n": n, "img_size": size,
            **{k: float(v) for k, v in scores.items() if v is not None},
            "face_detect_rate_real": face_judges.face_detection_rate(real), "machine": machine(device)}


def evaluate_smile_run(weights: str, data: str, n: int, split: str, device=None) -> dict:
    """Return the numbers of one of SMiLE's GANs from its checkpoint (acgan/ or wacgan/ last.pt):
    FID and the other field scores, class accuracy and nn_ratio. Conversion needs the encoder, which
    notebook 03 trains against the frozen generator."""
    from ..models import smile

    ckpt = read_checkpoint(Path(weights).expanduser())
    if ckpt["model"] not in smile.GAN_PARTS:
        raise SystemExit(f"{weights} holds a {ckpt['model']!r} model: --model smile takes a checkpoint of its "
                         f"{' or '.join(smile.GAN_PARTS)} (checkpoints_gan/smile/<run>/acgan/last.pt) or a published set")
    names = {f.name for f in fields(smile.GANConfig)}
    cfg = smile.GANConfig(**{k: v for k, v in ckpt["config"].items() if k in names})
    device = torch.device(device) if device else get_device()
    faces = folders(data, cfg.img_size, "all")[0]  # any split carries the attribute names
    _, nets = smile.build_gan_trainer(cfg, faces, device, None, name=ckpt["model"], live=False, progress=False)
    for name, sd in ckpt["modules"].items():
        nets[name].load_state_dict(sd)

    def score(judges, train, test, n):
        G = smile.sampler(nets)
        return {**{k: v for k, v in smile.evaluate(nets, cfg, judges, test, n).items()
                   if k in (*FIELD_KEYS, "class_accuracy")},
                **nn_ratios(smile.samples(G, cfg, test, n), train, test, split)}

    return judge_run("smile", f"{ckpt['model']} checkpoint {weights}", data, n, split, cfg.img_size, cfg.attrs,
                     device, score)


def evaluate_lapgan_run(weights: str, data: str, n: int, split: str, device=None) -> dict:
    """Return the numbers of a LAPGAN pyramid from its run folder (one sub-folder per level, each with
    its last.pt; a level's last.pt names its run folder), judged at the pyramid's own size."""
    from ..gan import sampler
    from ..models import lapgan

    path = Path(weights).expanduser()
    run = path.parent.parent if path.is_file() or path.suffix == ".pt" else path
    levels = sorted(run.glob("*/last.pt"))
    if not levels:
        raise SystemExit(f"{run} holds no level checkpoints (base16/last.pt, level32/last.pt, ...): pass the "
                         f"folder `make train MODEL=lapgan` wrote, or a published set")
    saved = read_checkpoint(levels[0])["config"]
    names = {f.name for f in fields(lapgan.LapGANConfig)}
    cfg = lapgan.LapGANConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in names})
    device = torch.device(device) if device else get_device()
    faces = folders(data, cfg.img_size, "all")[0]
    Gs = []
    for level in range(len(cfg.sizes)):
        name = lapgan.level_name(cfg, level)
        ckpt = read_checkpoint(run / name / "last.pt") if (run / name / "last.pt").is_file() else None
        if ckpt is None:
            raise SystemExit(f"{run / name / 'last.pt'} is missing: the pyramid needs every level "
                             f"({', '.join(lapgan.level_name(cfg, i) for i in range(len(cfg.sizes)))}); train it first")
        _, nets = lapgan.build_trainer(cfg, faces, device, None, level=level, live=False, progress=False)
        for key, sd in ckpt["modules"].items():
            nets[key].load_state_dict(sd)
        Gs.append(sampler(nets).eval())

    def score(judges, train, test, n):
        return {**{k: v for k, v in lapgan.evaluate(Gs, cfg, judges, test, n).items() if k in FIELD_KEYS},
                **nn_ratios(lapgan.generate(Gs, cfg, n, seed=7), train, test, split)}

    return judge_run("lapgan", f"pyramid run {run}", data, n, split, cfg.img_size, (), device, score)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help=", ".join(NOTEBOOK))
    ap.add_argument("--weights", required=True, help="a checkpoint (.pt) or a published set's name")
    ap.add_argument("--data", default="synthetic", help="'synthetic', a CelebA-layout folder or an image folder")
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument("--n", type=int, default=2000, help="samples (and real faces) judged")
    ap.add_argument("--split", default="test", choices=("test", "valid", "valid+test", "all"))
    ap.add_argument("--device", default=None)
    ap.add_argument("--record", action="store_true",
                    help="a published set: also write the numbers into its MANIFEST.json entry (the model card)")
    a = ap.parse_args(argv)
    if a.record and is_checkpoint(a.weights):
        ap.error("--record writes a published set's card: pass the set's name as --weights")
    try:
        with progress_bars():  # minutes on a CPU: show them passing
            result = evaluate(a.model, a.weights, a.data, a.n, a.split, a.device)
    except (published.PublishedError, FileNotFoundError) as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 2
    atomic_write_text(Path(a.out), json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    if a.record:
        numbers = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()
                   if k not in ("model", "weights", "machine")}
        numbers["data"] = published.data_label(a.data)  # folder names: the card is read on other machines
        published.set_numbers(NOTEBOOK[a.model], a.weights, numbers)
        from ..core import paths
        from .readme import rewrite

        rewrite(paths.ROOT / "README.md")  # its published-sets table shows the cards
        print(f"recorded in {published.FOLDER / 'MANIFEST.json'} ({NOTEBOOK[a.model]}, set {a.weights!r}) and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
