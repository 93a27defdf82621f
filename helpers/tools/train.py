"""Headless training of one model (every trainer its `full`, `demo` or `smoke` run has), in one process
or many under torchrun: what a GPU box without Jupyter runs.

    python -m helpers.tools.train --model fader --profile full --data data/celeba
    torchrun --nproc_per_node=8 -m helpers.tools.train --model fader --profile full --data data/celeba
    make train MODEL=fader NPROC=8 PROFILE=full DATA=data/celeba

It builds each trainer exactly as the notebook does (same config, same step, same seed) and writes
to the notebook's checkpoint folder, so a notebook opened afterwards finds the trained model and
either one continues where the other stopped. `batch_size` stays the global batch: N processes
each take batch_size / N of it with the preset's learning rate, so 1 and N processes train the same
schedule (docs/distributed.md). last.pt is written at every epoch end, every --save-minutes of
training and on SIGTERM; run the same command again to continue. Rank 0 alone prints and writes.
Needs only torch, numpy, pillow, matplotlib and tqdm (no Jupyter).
"""
from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import torch

from ..core import distributed, paths
from ..core.atomic import atomic_write, atomic_write_text
from ..core.config import PROFILES, parse_overrides
from ..core.runtime import machine, resolve_profile, seed_everything
from ..models import MODELS


def overrides(pairs: list[str]) -> dict:
    """Return config overrides from --set KEY=VALUE strings (config.parse_overrides)."""
    try:
        return parse_overrides(pairs)
    except ValueError as err:
        raise SystemExit(f"--set {err}") from None


def part_folder(model: str, trainer, parts: dict) -> str:
    """Return the sub-folder of a trainer inside the run's folder, as the notebook names it
    ('' for a one-trainer model; 'acgan', 'base16', ... from the trainer's name)."""
    return "" if len(parts) == 1 else trainer.name.removeprefix(f"{model}_")


def write_outputs(trainer, out: Path, state, started: float) -> None:
    """Write samples.png (latest fixed-input samples), samples_epoch_NNNN.png, training.png and
    metrics.json under out; rank 0 only."""
    if not distributed.is_main():
        return
    from PIL import Image

    from ..ui.viz import make_grid, plot_history, save_figure

    images = state.samples[-1] if state.samples and not state.batch else trainer.sample()
    if images is not None:
        grid = Image.fromarray(make_grid(images, nrow=8))
        for name in ("samples.png", *([f"samples_epoch_{state.epoch:04d}.png"] if not state.batch else [])):
            atomic_write(out / name, lambda fh: grid.save(fh, format="PNG"))
    if state.history.get("step"):
        import matplotlib.pyplot as plt

        ax = plot_history(state.history, title=f"{trainer.name}: epoch {state.epoch}, step {state.step}")
        save_figure(ax.figure, out / "training.png")
        plt.close(ax.figure)
    seconds = max(state.seconds, 1e-9)
    metrics = {"model": trainer.name, "stopped": state.stopped, "epoch": state.epoch, "batch": state.batch,
               "step": state.step, "train_seconds": state.seconds, "wall_seconds": time.time() - started,
               "images_per_second": state.step * trainer.global_batch / seconds, "global_batch": trainer.global_batch,
               "world_size": trainer.world_size, "peak_gpu_memory_gib_per_process": trainer.peak_memory_gib,
               "machine": machine(trainer.device), "checkpoint": str(trainer.last_path),
               "last": {k: v[-1] for k, v in state.history.items() if v}, "epoch_metrics": state.epoch_metrics}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, default=str))


def default_seconds(package, cfg, kwargs: dict, trainer_config: dict) -> float | None:
    """Return a trainer's budget without --seconds, as the notebook gives it: each LAPGAN level its
    share of the pyramid's max_seconds (level_seconds), any other trainer its config's max_seconds."""
    if "level" in kwargs and hasattr(package, "level_seconds"):
        return package.level_seconds(cfg, kwargs["level"])
    return trainer_config.get("max_seconds")


def train_part(model: str, package, cfg, faces, device, name: str, kwargs: dict, folder: str, args) -> str:
    """Train one trainer of the run; return how it stopped."""
    say = print if distributed.is_main() else (lambda *a, **k: None)
    parts = package.parts(cfg)
    started = time.time()
    trainer, _ = package.build_trainer(cfg, faces, device, None, live=False, progress=True,
                                       save_every_minutes=args.save_minutes,
                                       sync_bn=not args.local_bn, **kwargs)
    sub = part_folder(model, trainer, parts)
    trainer.ckpt_dir = paths.CHECKPOINTS / folder / sub  # rank 0 creates it with the first checkpoint
    out = paths.OUTPUTS / "train" / folder / sub
    trainer.epoch_end_fn = lambda t: write_outputs(t, out, t.state, started)
    epochs = args.epochs or trainer.config["epochs"]
    max_seconds = args.seconds if args.seconds is not None else default_seconds(package, cfg, kwargs, trainer.config)
    rank_batch = trainer.global_batch // trainer.world_size
    say(f"== {name}: global batch {trainer.global_batch} = {rank_batch} per process x {trainer.world_size}, "
        + ", ".join(f"{k} {v:g}" for k, v in trainer.config.items() if k.startswith("lr") and isinstance(v, float))
        + f"; {epochs} epochs of {trainer.per_epoch} steps" + (f", at most {max_seconds:g} s" if max_seconds else ""))
    say(f"   checkpoints: {trainer.last_path} (each epoch, every {args.save_minutes:g} min of training, on SIGTERM)")
    say(f"   samples, training curves, metrics: {out}/ (samples.png, training.png, metrics.json)", flush=True)
    state = trainer.fit(epochs, max_seconds=max_seconds, resume=not args.fresh, steps=args.steps)
    write_outputs(trainer, out, state, started)
    say(f"{name}: {state.stopped} at epoch {state.epoch} + {state.batch} batches, step {state.step}, "
        f"{state.seconds:.0f} s of training, {state.step * trainer.global_batch / max(state.seconds, 1e-9):.1f} img/s "
        f"for the whole job", flush=True)
    return state.stopped


def parser() -> argparse.ArgumentParser:
    parts = {}
    for m in MODELS:
        package = importlib.import_module(f"helpers.models.{m}")
        parts[m] = ", ".join(package.parts(package.config_for("full")))
    p = argparse.ArgumentParser(
        prog="python -m helpers.tools.train", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="models and their trainers (full profile):\n" + "\n".join(f"  {m:<7} {parts[m]}" for m in MODELS)
        + "\n\nseveral processes: torchrun --nproc_per_node=N -m helpers.tools.train ... (several nodes: "
          "--nnodes, --node-rank, --rdzv-endpoint; docs/distributed.md)\nfolders: FACEGAN_DATA, FACEGAN_CHECKPOINTS, "
          "FACEGAN_OUTPUTS move data/, checkpoints_gan/ and outputs/")
    p.add_argument("--model", required=True, choices=MODELS, help="which model to train")
    p.add_argument("--profile", default="auto", choices=("auto", *PROFILES),
                   help="preset: smoke (seconds), demo (CPU minutes), full (the papers' settings); auto: full with "
                        "CUDA and a real data folder, else demo")
    p.add_argument("--data", default="synthetic", help="'synthetic', 'lfw100', a CelebA-layout folder or an image "
                                                       "folder (on every node, same path)")
    p.add_argument("--parts", default="", help="comma-separated trainers of the model (default: all, in order)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trainer (default: the config's)")
    p.add_argument("--seconds", type=float, default=None,
                   help="training-time budget per trainer, cumulative over resumes (default: the config's max_seconds)")
    p.add_argument("--steps", type=int, default=None, help="stop after this many more steps (a quick check)")
    p.add_argument("--save-minutes", type=float, default=10.0,
                   help="also write last.pt after this many minutes of training (default 10)")
    p.add_argument("--local-bn", action="store_true",
                   help="several processes: batch norm over each process's share of the batch instead of the "
                        "global batch (fewer waits per step; other statistics than one GPU's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set lr=1e-4 --set acgan.batch_size=32 (repeatable)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing last.pt and start over")
    p.add_argument("--device", default=None, help="cuda or cpu (default: the GPU when there is one; under torchrun "
                                                  "cuda:LOCAL_RANK)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the data order (the notebooks': 0)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per process (0: torch's default)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    with distributed.session(args.device) as device:
        return run(args, device)


def run(args, device) -> int:
    """Train the chosen trainers one after the other; return the exit status (1 after a NaN stop)."""
    distributed.install_stop_signals()
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    profile = resolve_profile(args.profile, args.data)
    package = importlib.import_module(f"helpers.models.{args.model}")
    cfg = package.config_for(profile, **overrides(args.set))
    from ..data import load_faces

    with distributed.local_first():  # one cache build per node
        faces = load_faces(args.data, cfg.img_size, split="train", progress=distributed.is_main())
    folder = f"{args.model}/{profile}_{faces.name}_{cfg.img_size}px"  # the notebook's folder
    parts = package.parts(cfg)
    chosen = [p.strip() for p in args.parts.split(",") if p.strip()] or list(parts)
    unknown = sorted(set(chosen) - set(parts))
    if unknown:
        raise SystemExit(f"--parts {','.join(unknown)}: {args.model} has {', '.join(parts)}")
    if distributed.is_main():
        print(f"{args.model}, profile {profile}, {faces} on {distributed.world_size()} process(es), "
              f"{device.type} ({machine(device)}), torch {torch.__version__}")
    stops = []
    for name in chosen:
        seed_everything(args.seed)  # the same start whichever parts run
        stops.append(train_part(args.model, package, cfg, faces, device, name, parts[name], folder, args))
        if stops[-1] in ("signal", "nan"):
            break
    return 1 if "nan" in stops else 0


if __name__ == "__main__":
    raise SystemExit(main())
