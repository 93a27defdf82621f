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

    python -m helpers.tools.gpu_check --out outputs/gpu_check      # make gpu-check; --seconds, --models, ...
    python -m helpers.tools.gpu_check --nproc 8                   # the same on 8 GPUs, one process each

With --nproc N the check runs in N processes (helpers.core.distributed: NCCL on CUDA, gloo on CPU),
each trainer's global batch split over them; images/s are the whole job's and the memory column
lists every process's peak, so comparing with a --nproc 1 run shows the scaling.

Writes <out>/gpu_check.json, <out>/gpu_check.md (the table) and <out>/samples.png (the last
fixed-input samples of every model, so a reader can see that each one learns something).
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..core import distributed, paths
from ..core.spawn import spawn_local
from ..core.runtime import get_device, machine, seed_everything
from ..models import MODELS

CELEBA_TRAIN = 162_770  # CelebA's training split (list_eval_partition 0)
LFW_IMAGES = 13_233  # all of LFW (the Torch face project trained on every image)
LFW_MODELS = ("lapgan",)  # trained on an LFW folder; the others on CelebA


@dataclass
class Job:
    """One trainer of a model's `full` preset: build() -> a fresh Trainer (called twice: fresh, then resumed)."""

    name: str
    build: Callable
    pass_images: int  # images one pass over the real data set holds (CelebA's training split, or LFW)
    where: str  # that data set, in words


def jobs(model: str, celeba: Path, lfw: Path, device, ckpt_root: Path, epoch_images: int = 20_000) -> list[Job]:
    """Return one Job per trainer of a model's `full` preset (its parts: LAPGAN's levels, SMiLE's two
    GANs). Their epochs hold epoch_images images, so that a stand-in of a few thousand faces does
    not end an epoch, with its samples and checkpoint, every few GPU steps."""
    from ..data import load_faces

    package = importlib.import_module(f"helpers.models.{model}")
    cfg = package.config_for("full")
    lfw_model = model in LFW_MODELS
    with distributed.local_first():  # one cache build per node
        faces = load_faces(lfw if lfw_model else celeba, cfg.img_size, split="all" if lfw_model else "train")

    def builder(name, kwargs):
        def build():
            trainer, _ = package.build_trainer(cfg, faces, device, ckpt_root / name, **kwargs)
            trainer.set_epoch_images(epoch_images)
            return trainer
        return build

    return [Job(name, builder(name, kwargs), LFW_IMAGES if lfw_model else CELEBA_TRAIN, "LFW" if lfw_model else "CelebA")
            for name, kwargs in package.parts(cfg).items()]


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
    trainer = job.build()
    first = trainer.fit(10**9, max_seconds=seconds)
    _sync(dev)
    step1, sec1 = first.step, first.seconds
    trainer2 = job.build()
    resumed = trainer2.load()  # what fit() does first; checked here, then fit() continues from it
    resumed_step = trainer2.state.step if resumed else 0
    second = trainer2.fit(10**9, max_seconds=sec1 + seconds)
    _sync(dev)
    batch, cfg = trainer2.global_batch, trainer2.config
    warm_steps, warm_s = second.step - step1, second.seconds - sec1
    ips = warm_steps * batch / warm_s if warm_s > 0 and warm_steps > 0 else None
    schedule_images = cfg["epochs"] * (cfg.get("epoch_images") or job.pass_images)
    samples = second.samples[-1] if second.samples else trainer2.sample()  # a time stop ran before_eval
    memory = distributed.peak_memory_gib(dev)
    return {
        "model": job.name, "ok": True, "batch_size": batch,
        "first_slice": {"steps": step1, "seconds": round(sec1, 2),
                        "images_per_second": round(step1 * batch / sec1, 1) if sec1 > 0 else None},
        "resumed": bool(resumed), "resumed_at_step": resumed_step, "resume_continues": bool(resumed and resumed_step == step1),
        "warm_steps": warm_steps, "warm_seconds": round(warm_s, 2),
        "images_per_second": round(ips, 1) if ips else None,
        "losses_finite": _finite_history(second),
        "last_losses": {k: round(v[-1], 4) for k, v in second.history.items() if k not in ("step", "epoch", "seconds") and v},
        "peak_gpu_memory_gib": round(max(memory), 2) if memory else None,
        "peak_gpu_memory_gib_per_process": [round(m, 2) for m in memory],
        "schedule": f"{schedule_images / job.pass_images:.0f} passes over {job.where} at {cfg.get('img_size')} px",
        "schedule_hours_at_this_speed": round(schedule_images / ips / 3600, 1) if ips else None,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "_samples": samples,
    }


def part_index() -> dict:
    """Return {part name: model} over every model's full preset (e.g. 'lapgan_16': 'lapgan', 'acgan': 'smile')."""
    out = {}
    for model in MODELS:
        package = importlib.import_module(f"helpers.models.{model}")
        out.update({part: model for part in package.parts(package.config_for("full"))})
    return out


def _raiser(err):
    def build():
        raise err
    return build


def ensure_stand_ins(root: Path, n: int) -> tuple[Path, Path]:
    """Render the CelebA- and LFWcrop-shaped stand-ins under root when they are missing; return them."""
    from ..data import rehearsal

    celeba, lfw = root / "celeba", root / "lfwcrop_color"
    if not (celeba / "list_attr_celeba.txt").is_file():
        rehearsal.write_celeba_sized(celeba, n=n)
    if not (lfw / "faces").is_dir():
        rehearsal.write_lfw_sized(root, n=n, crop=True)
    return celeba, lfw


def samples_figure(results: list[dict]):
    """Return a figure with the last samples of every model that has some."""
    import matplotlib.pyplot as plt

    from ..ui.viz import make_grid

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
    nproc = report.get("nproc", 1)
    head = (f"{report['machine']}, torch {report['torch']}, {report['seconds']} s per slice"
            + (f", {nproc} processes (img/s of the whole job, peak memory of the largest)" if nproc > 1 else ""))
    return head + "\n\n" + "\n".join(rows) + "\n"


def check(models=MODELS, seconds: float = 15.0, out: str | Path = "outputs/gpu_check", celeba=None, lfw=None,
          n: int = 2000, device: str | None = None, ckpt_root: str | Path | None = None,
          epoch_images: int = 20_000) -> dict:
    """Run the check (see the module doc) and write its files to out; return the report."""
    out, main = Path(out), distributed.is_main()
    dev = get_device(device)
    with distributed.local_first():  # rank 0 renders and cleans up, the others wait
        if celeba is None or lfw is None:
            made = ensure_stand_ins(paths.DATA / "gpu_check", n)
            celeba, lfw = Path(celeba or made[0]), Path(lfw or made[1])
        ckpt_root = Path(ckpt_root) if ckpt_root else paths.CHECKPOINTS / "gpu_check"
        if main:
            shutil.rmtree(ckpt_root, ignore_errors=True)  # a check trains from scratch
    report = {"machine": machine(dev), "device": dev.type, "torch": torch.__version__, "seconds": seconds,
              "nproc": distributed.world_size(),
              "epoch_images": epoch_images,
              "celeba": str(celeba), "lfw": str(lfw), "results": []}
    for name in models:
        seed_everything(0)
        if main:
            print(f"== {name}", flush=True)
        model = name if name in MODELS else part_index().get(name)
        try:
            if model is None:
                raise ValueError(f"unknown model {name!r}: use some of {', '.join(MODELS)} or one of their parts, "
                                 f"{', '.join(part_index())}")
            model_jobs = [j for j in jobs(model, Path(celeba), Path(lfw), dev, ckpt_root, epoch_images)
                          if name in (model, j.name)]
        except Exception as err:  # record and go on: one model's failure must not cost the others' minutes
            model_jobs = [Job(name, _raiser(err), 1, "")]
        for job in model_jobs:
            try:
                report["results"].append(run_job(job, dev, seconds))
            except Exception as err:
                report["results"].append({"model": job.name, "ok": False, "error": f"{type(err).__name__}: {err}",
                                          "traceback": traceback.format_exc()})
                print(report["results"][-1]["traceback"], flush=True)  # every process: one may fail alone
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            if main:  # after every job: a check cut off by its time limit still leaves what it measured
                write_report(report, out)
    if not main:
        return report
    fig = samples_figure(report["results"])
    from ..ui.viz import save_figure
    save_figure(fig, out / "samples.png")
    for r in report["results"]:
        r.pop("_samples", None)
    print(table(report))
    return report


def write_report(report: dict, out: Path) -> None:
    """Write gpu_check.json and gpu_check.md for the results so far (samples left out), each atomically."""
    from ..core.atomic import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    plain = {**report, "results": [{k: v for k, v in r.items() if k != "_samples"} for r in report["results"]]}
    atomic_write_text(out / "gpu_check.json", json.dumps(plain, indent=1))
    atomic_write_text(out / "gpu_check.md", table(plain))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.tools.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"comma-separated, from {', '.join(MODELS)} (or single parts: lapgan_16, acgan, ...)")
    p.add_argument("--seconds", type=float, default=15.0, help="training seconds per slice (two slices a model)")
    p.add_argument("--out", default="outputs/gpu_check", help="folder for gpu_check.json/.md and samples.png")
    p.add_argument("--celeba", default=None, help="a CelebA-layout folder (default: render the stand-in)")
    p.add_argument("--lfw", default=None, help="an LFW or LFWcrop folder for LAPGAN (default: render the stand-in)")
    p.add_argument("--n", type=int, default=2000, help="faces in each rendered stand-in")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: the GPU when there is one)")
    p.add_argument("--epoch-images", type=int, default=20_000, help="repeat the training set to this many images a pass")
    p.add_argument("--nproc", type=int, default=1, help="processes (one per GPU), each trainer's batch split over them")
    a = p.parse_args(argv)
    if a.nproc > 1 and "RANK" not in os.environ:  # launch the processes here, as torchrun would
        spawn_local(main, a.nproc, argv)
        report = json.loads((Path(a.out) / "gpu_check.json").read_text())
    else:
        with distributed.session(a.device) as device:
            report = check([m.strip() for m in a.models.split(",") if m.strip()], a.seconds, a.out, a.celeba, a.lfw,
                           a.n, str(device), epoch_images=a.epoch_images)
    return 0 if all(r["ok"] and r["resume_continues"] and r["losses_finite"] for r in report["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
