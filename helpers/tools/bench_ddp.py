"""`make bench-ddp`: how the DCGAN-64 step scales over processes on this machine's CPU cores.

The set-ups train the same global batch (64 images at 64 px, the `full` preset's networks, bf16
autocast) through the project's loop, each in fresh processes: 1 process x 1 thread, 1 process x
2 threads (intra-op parallelism), 2 processes x 1 thread (gloo, each process half the batch,
gradients averaged after every backward, batch norm over the global batch), the same with each
process's own batch norm (`--local-bn` of make train), and, as the machine's ceiling, 2 processes
that train half the batch each without talking to each other (no communication at all).
Reported: images/s of the whole job, the speed-up over 1 process x 1 thread and the scaling
efficiency (speed-up / processes). Writes outputs/bench/bench_ddp.json.

    python -m helpers.tools.bench_ddp --steps 20
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

import torch

from ..core import distributed, paths
from ..core.spawn import spawn_local
from ..core.runtime import machine, seed_everything
from ..eval.report import markdown_table

# name: (processes, threads per process, kind)
SETUPS = {"1x1": (1, 1, "one run"), "1x2": (1, 2, "one run"), "2x1": (2, 1, "one run"),
          "2x1 local bn": (2, 1, "local bn"), "2x1 apart": (2, 1, "apart")}
LABELS = {"one run": "", "local bn": ", each process's batch norm", "apart": ", no communication (ceiling)"}


def rank_speed(procs: int, threads: int, kind: str, steps: int, warmup: int, batch: int, out: str) -> None:
    """One process of a set-up (started by spawn_local): time `steps` DCGAN-64 steps after
    `warmup`; rank 0 writes img/s to out ('apart': every process trains batch / procs alone and
    writes its own img/s)."""
    if kind == "apart":  # one process group each: no group is formed
        batch, out = batch // procs, f"{out}.{os.environ['RANK']}"
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    torch.set_num_threads(threads)
    device = distributed.init("cpu")
    from ..data.faces import FaceSet
    from ..models import dcgan

    seed_everything(0)
    g = torch.Generator().manual_seed(0)
    n = 16 * batch  # the step's speed does not depend on what the faces show
    faces = FaceSet(torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8), torch.zeros(n, 0), [],
                    "bench64", "bench", "train")
    # One long epoch: an epoch end (rank 0 samples while the other waits) would be timed as training.
    cfg = dcgan.config_for("full", batch_size=batch, max_seconds=None, ema_bn_samples=0, epoch_images=10**9)
    trainer, _ = dcgan.build_trainer(cfg, faces, device, None, live=False, progress=False,
                                     sync_bn=kind != "local bn")
    trainer.fit(10**6, steps=warmup)  # first allocations, kernel choices
    before = trainer.state.seconds
    trainer.fit(10**6, steps=steps)
    if distributed.is_main():
        with open(out, "w") as fh:
            json.dump({"img_s": steps * trainer.global_batch / (trainer.state.seconds - before)}, fh)
    distributed.shutdown()


def measure(procs: int, threads: int, kind: str, steps: int, warmup: int, batch: int) -> float:
    """Return images/s of one set-up, run in fresh processes (the sum over processes when 'apart')."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "speed.json")
        spawn_local(rank_speed, procs, procs, threads, kind, steps, warmup, batch, out)
        files = [f"{out}.{r}" for r in range(procs)] if kind == "apart" else [out]
        total = 0.0
        for f in files:
            with open(f) as fh:
                total += json.load(fh)["img_s"]
        return total


def bench(steps: int = 20, warmup: int = 3, batch: int = 64) -> dict:
    """Return the report: img/s of every set-up, speed-ups over 1 x 1 and scaling efficiencies."""
    speeds = {name: measure(p, t, kind, steps, warmup, batch) for name, (p, t, kind) in SETUPS.items()}
    base = speeds["1x1"]
    return {"machine": machine("cpu"), "torch": torch.__version__, "global_batch": batch, "img_size": 64,
            "steps": steps, "img_s": speeds,
            "speedup_vs_1x1": {k: v / base for k, v in speeds.items()},
            "efficiency_2_ranks": speeds["2x1"] / (2 * base),
            "ranks_vs_threads": speeds["2x1"] / speeds["1x2"]}


def table(report: dict) -> str:
    """Return the report as a markdown table."""
    rows = []
    for k, v in report["img_s"].items():
        p, t, kind = SETUPS[k]
        rows.append([f"{p} process{'es' if p > 1 else ''} x {t} thread{'s' if t > 1 else ''}{LABELS[kind]}",
                     f"{v:.1f}", f"{report['speedup_vs_1x1'][k]:.2f}x"])
    return (f"{report['machine']}, torch {report['torch']}, DCGAN-64 (`full` networks), global batch "
            f"{report['global_batch']}, {report['steps']} timed steps\n\n"
            + markdown_table(["set-up", "img/s", "speed-up vs 1 x 1"], rows) +
            f"\n\nscaling efficiency of 2 processes: {report['efficiency_2_ranks']:.0%}; "
            f"2 processes x 1 thread vs 1 process x 2 threads: {report['ranks_vs_threads']:.2f}x\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per set-up")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--batch", type=int, default=64, help="global batch (split over the processes)")
    a = ap.parse_args(argv)
    report = bench(a.steps, a.warmup, a.batch)
    print(table(report))
    out = paths.output_dir("bench") / "bench_ddp.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
