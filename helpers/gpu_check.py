"""The GPU check: every model's `full` configuration, trained for a short timed slice on this machine.

A lent GPU comes with minutes, not hours (this project gets 15 device-minutes a session, the
machine's start included), and that machine has PyTorch but neither Jupyter nor this project's
requirements, and no internet. So this check needs only what training needs (torch, numpy,
pillow, matplotlib, tqdm) and, for each model in turn:

1. trains the `full` preset (the papers' image sizes, widths and batch sizes) for `seconds` on a
   CelebA-layout folder (LAPGAN: an LFW-style folder); where none is given, it renders the
   rehearsal stand-ins (`python -m helpers.data rehearsal`) with `n` faces each;
2. builds the trainer again from its checkpoint folder and trains `seconds` more: the run must
   continue at the step where the first slice stopped (resume), and this warm slice, past the
   first steps' kernel selection, gives the speed;
3. records images per second, peak GPU memory, whether the losses stayed finite, and how long
   the preset's whole schedule would take on the real data set at that speed.

One failing model does not stop the others: its error is recorded and the check goes on.

    python -m helpers.gpu_check --out outputs/gpu_check      # make gpu-check; --seconds, --models, ...

Writes <out>/gpu_check.json, <out>/gpu_check.md (the table) and <out>/samples.png (the last
fixed-input samples of every model, so a reader can see that each one learns something).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import paths
from .runtime import get_device, machine, seed_everything

MODELS = ("dcgan", "fader", "acgan", "wacgan", "began", "lapgan_16", "lapgan_32", "lapgan_64")
CELEBA_TRAIN = 162_770  # CelebA's training split (list_eval_partition 0)
LFW_IMAGES = 13_233  # all of LFW (the Torch face project trained on every image)


@dataclass
class Job:
    """One model's slice: build() -> (trainer, epochs), called twice (fresh, then resumed)."""

    name: str
    build: Callable[[], tuple]
    batch_size: int
    schedule_images: float  # real images the preset's whole schedule consumes on the real data set
    schedule: str  # that schedule, in words


def epoch_of(faces, epoch_images: int):
    """Return faces repeated until one pass holds at least epoch_images (a stand-in of a few thousand
    faces would otherwise end an epoch, with its samples and checkpoint, every few GPU steps)."""
    reps = max(1, math.ceil(epoch_images / len(faces)))
    return faces.subset(torch.arange(len(faces)).repeat(reps)) if reps > 1 else faces


def _celeba_job(name: str, celeba: Path, device, ckpt_dir: Path, epoch_images: int) -> Job:
    from .data import load_faces, to_range

    def data(cfg, attrs=None, **loader_kw):
        faces = epoch_of(load_faces(celeba, cfg.img_size, split="train"), epoch_images)
        faces = faces.select_attrs(list(attrs)) if attrs else faces
        return faces, faces.loader(cfg.batch_size, device=device, seed=0, **loader_kw)

    if name == "dcgan":
        from . import dcgan_train as m
        cfg = m.config_for("full")

        def build():
            faces, loader = data(cfg, channels_last=cfg.amp)
            return m.build_trainer(cfg, loader, device, ckpt_dir, extra_config={"data": faces.key})[0], cfg.epochs
    elif name == "fader":
        from . import fader as m
        cfg = m.config_for("full")

        def build():
            faces, loader = data(cfg, cfg.attrs, flip=cfg.flip, channels_last=m.channels_last(cfg, device))
            return m.build_trainer(cfg, loader, device, ckpt_dir, sample_x=to_range(faces.images[:8]),
                                   sample_y=faces.attrs[:8], extra_config={"data": faces.key})[0], cfg.epochs
    elif name in ("acgan", "wacgan"):
        from . import smile_train as m
        cfg = getattr(m.config_for("full"), name)

        def build():
            faces, _ = data(cfg)
            return m.build_gan_trainer(cfg, faces, device, ckpt_dir, extra_config={"data": faces.key})[0], cfg.epochs
    elif name == "began":
        from . import began, began_train as m
        cfg = began.config_for("full")

        def build():
            faces, loader = data(cfg, channels_last=cfg.amp)
            trainer = m.build_trainer(cfg, loader, device, ckpt_dir, extra_config={"data": faces.key})[0]
            return trainer, m.trainer_epochs(cfg, trainer)
    else:
        raise ValueError(f"unknown model {name!r}: use some of {', '.join(MODELS)}")
    return Job(name, build, cfg.batch_size, cfg.epochs * CELEBA_TRAIN, f"{cfg.epochs} epochs of CelebA at {cfg.img_size} px")


def _lapgan_job(name: str, lfw: Path, device, ckpt_dir: Path, epoch_images: int) -> Job:
    from . import lapgan, lapgan_train as m
    from .data import load_faces

    cfg = lapgan.config_for("full")
    size = int(name.rsplit("_", 1)[1])
    if size not in cfg.sizes:
        raise ValueError(f"{name}: the full LAPGAN's levels are {cfg.sizes}")
    level = cfg.sizes.index(size)

    def build():
        faces = epoch_of(load_faces(lfw, cfg.img_size, split="all"), epoch_images)
        return m.build_trainer(cfg, level, faces, device, ckpt_dir, extra_config={"data": faces.key})[0], cfg.epochs
    return Job(name, build, cfg.batch_size, cfg.epochs * LFW_IMAGES,
               f"{cfg.epochs} epochs of LFW, level {lapgan.level_name(cfg, level)}")


def make_job(name: str, celeba: Path, lfw: Path, device, ckpt_dir: Path, epoch_images: int = 20_000) -> Job:
    """Return the Job of one model name (see MODELS); its training set is repeated to epoch_images a pass."""
    if name.startswith("lapgan_"):
        return _lapgan_job(name, lfw, device, ckpt_dir, epoch_images)
    return _celeba_job(name, celeba, device, ckpt_dir, epoch_images)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _finite_history(state) -> bool:
    losses = [v for k, vals in state.history.items() if k not in ("step", "epoch", "seconds") for v in vals]
    return state.stopped != "nan" and all(math.isfinite(v) for v in losses)


def run_job(job: Job, device, seconds: float) -> dict:
    """Train job for `seconds`, resume it for `seconds` more; return the measurements."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    trainer, epochs = job.build()
    first = trainer.fit(epochs, max_seconds=seconds)
    _sync(dev)
    step1, sec1 = first.step, first.seconds
    trainer2, _ = job.build()
    resumed = trainer2.load()  # what fit() does first; checked here, then fit() continues from it
    resumed_step = trainer2.state.step if resumed else 0
    second = trainer2.fit(epochs, max_seconds=sec1 + seconds)
    _sync(dev)
    warm_steps, warm_s = second.step - step1, second.seconds - sec1
    ips = warm_steps * job.batch_size / warm_s if warm_s > 0 and warm_steps > 0 else None
    samples = second.samples[-1] if second.samples else trainer2.sample()  # a time stop ran before_eval
    return {
        "model": job.name, "ok": True, "batch_size": job.batch_size,
        "first_slice": {"steps": step1, "seconds": round(sec1, 2),
                        "images_per_second": round(step1 * job.batch_size / sec1, 1) if sec1 > 0 else None},
        "resumed": bool(resumed), "resumed_at_step": resumed_step, "resume_continues": bool(resumed and resumed_step == step1),
        "warm_steps": warm_steps, "warm_seconds": round(warm_s, 2),
        "images_per_second": round(ips, 1) if ips else None,
        "losses_finite": _finite_history(second),
        "last_losses": {k: round(v[-1], 4) for k, v in second.history.items() if k not in ("step", "epoch", "seconds") and v},
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None,
        "schedule": job.schedule,
        "schedule_hours_at_this_speed": round(job.schedule_images / ips / 3600, 1) if ips else None,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "_samples": samples,
    }


def ensure_stand_ins(root: Path, n: int) -> tuple[Path, Path]:
    """Render the CelebA- and LFWcrop-shaped stand-ins under root when they are missing; return them."""
    from .data import rehearsal

    celeba, lfw = root / "celeba", root / "lfwcrop_color"
    if not (celeba / "list_attr_celeba.txt").is_file():
        rehearsal.write_celeba_sized(celeba, n=n)
    if not (lfw / "faces").is_dir():
        rehearsal.write_lfw_sized(root, n=n, crop=True)
    return celeba, lfw


def samples_figure(results: list[dict]):
    """Return a figure with the last samples of every model that has some."""
    import matplotlib.pyplot as plt

    from .viz import make_grid

    shown = [r for r in results if r.get("_samples") is not None]
    fig, axes = plt.subplots(len(shown) or 1, 1, figsize=(10, 1.0 * max(len(shown), 1)), squeeze=False)
    for ax, r in zip(axes[:, 0], shown):
        ax.imshow(make_grid(r["_samples"][:16], nrow=16))  # uint8: make_grid takes it as it is
        ax.set_title(f"{r['model']}: {r['first_slice']['steps'] + r['warm_steps']} steps", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def table(report: dict) -> str:
    """Return the report as a markdown table."""
    rows = ["| model | batch | img/s (warm) | first slice img/s | resumed at the step it stopped | losses finite | "
            "peak GPU GiB | full schedule at this speed |", "|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        if not r["ok"]:
            rows.append(f"| {r['model']} | | **failed**: {r['error'].splitlines()[-1][:120]} | | | | | |")
            continue
        hours = r["schedule_hours_at_this_speed"]
        rows.append(f"| {r['model']} | {r['batch_size']} | {r['images_per_second']} | {r['first_slice']['images_per_second']} | "
                    f"{'yes' if r['resume_continues'] else 'NO'} (step {r['resumed_at_step']}) | "
                    f"{'yes' if r['losses_finite'] else 'NO'} | {r['peak_gpu_memory_gib'] or '-'} | "
                    f"{'' if hours is None else f'{hours} h'} ({r['schedule']}) |")
    head = f"{report['machine']}, torch {report['torch']}, {report['seconds']} s per slice"
    return head + "\n\n" + "\n".join(rows) + "\n"


def check(models=MODELS, seconds: float = 15.0, out: str | Path = "outputs/gpu_check", celeba=None, lfw=None,
          n: int = 2000, device: str | None = None, ckpt_root: str | Path | None = None,
          epoch_images: int = 20_000) -> dict:
    """Run the check (see the module doc) and write its files to out; return the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = get_device(device)
    if celeba is None or lfw is None:
        made = ensure_stand_ins(paths.DATA / "gpu_check", n)
        celeba, lfw = Path(celeba or made[0]), Path(lfw or made[1])
    ckpt_root = Path(ckpt_root) if ckpt_root else paths.checkpoint_dir("gpu_check")
    shutil.rmtree(ckpt_root, ignore_errors=True)  # a check trains from scratch
    report = {"machine": machine(dev), "device": dev.type, "torch": torch.__version__, "seconds": seconds,
              "epoch_images": epoch_images,
              "celeba": str(celeba), "lfw": str(lfw), "results": []}
    for name in models:
        seed_everything(0)
        print(f"== {name}", flush=True)
        try:
            job = make_job(name, Path(celeba), Path(lfw), dev, ckpt_root / name, epoch_images)
            report["results"].append(run_job(job, dev, seconds))
        except Exception as err:  # record and go on: one model's failure must not cost the others' minutes
            report["results"].append({"model": name, "ok": False, "error": f"{type(err).__name__}: {err}",
                                      "traceback": traceback.format_exc()})
            print(report["results"][-1]["traceback"], flush=True)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    fig = samples_figure(report["results"])
    from .viz import save_figure
    save_figure(fig, out / "samples.png")
    for r in report["results"]:
        r.pop("_samples", None)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (out / "gpu_check.md").write_text(table(report))
    print(table(report))
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    p.add_argument("--seconds", type=float, default=15.0, help="training seconds per slice (two slices a model)")
    p.add_argument("--out", default="outputs/gpu_check", help="folder for gpu_check.json/.md and samples.png")
    p.add_argument("--celeba", default=None, help="a CelebA-layout folder (default: render the stand-in)")
    p.add_argument("--lfw", default=None, help="an LFW or LFWcrop folder for LAPGAN (default: render the stand-in)")
    p.add_argument("--n", type=int, default=2000, help="faces in each rendered stand-in")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: the GPU when there is one)")
    p.add_argument("--epoch-images", type=int, default=20_000, help="repeat the training set to this many images a pass")
    a = p.parse_args(argv)
    report = check([m.strip() for m in a.models.split(",") if m.strip()], a.seconds, a.out, a.celeba, a.lfw, a.n,
                   a.device, epoch_images=a.epoch_images)
    return 0 if all(r["ok"] and r["resume_continues"] and r["losses_finite"] for r in report["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
