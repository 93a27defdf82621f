"""`make bench`: training and data-pipeline speed, ours against the pytorch/examples set-up.

Ours: the exact step notebook 01 runs (helpers.models.dcgan: bf16 autocast + channels_last, fused
Adam, D frozen during G's update), driven by the project's training loop over the uint8 cache, at
64 px with batch 64 (the `full` profile's size).
Baseline: the same networks in fp32, eager, NCHW, per-tensor Adam, fed by a DataLoader that
decodes, crops and resizes a JPEG per image per step (what pytorch/examples/dcgan does with
ImageFolder).
`--quality` also trains notebook 01's 32 px DCGAN for the same number of steps with bf16 and in
fp32 and compares their oracle Fréchet distances (is bf16 safe?).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from ..core import paths
from ..core.runtime import bf16_native, machine, seed_everything
from ..data import cache, load_faces
from ..data.faces import ensure_synthetic, pipeline_speed
from ..gan import fake_loss, real_loss
from ..models import dcgan


class JpegFolder(torch.utils.data.Dataset):
    """Decode + centre-crop + resize one JPEG per item, every epoch (the baseline's data path)."""

    def __init__(self, files, size):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        img = cache.load_image(self.files[i], self.size, None, 3)
        return torch.from_numpy(img.copy()).float().div_(127.5).sub_(1), 0


def baseline_speed(steps: int, warmup: int = 3, size: int = 64, batch_size: int = 64, device="cpu") -> float:
    """Return images/s of the pytorch/examples-style DCGAN iteration (fp32, per-tensor Adam, D's
    weight gradients computed in G's update, JPEGs decoded by a 2-worker DataLoader)."""
    seed_everything(0)
    D, G = (m.to(device) for m in dcgan.build_network(64, 64, 100, img_size=size))
    d_opt, g_opt = (torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999)) for m in (D, G))
    files = sorted((ensure_synthetic(size) / "img_align_celeba").glob("*.jpg"))
    loader = torch.utils.data.DataLoader(JpegFolder(files, size), batch_size=batch_size, shuffle=True, num_workers=2,
                                         drop_last=True, persistent_workers=True)
    it, n_img, t0 = iter(loader), 0, None
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        real = next(it)[0].to(device)
        fake = G(torch.randn(batch_size, 100, device=device))
        d_loss = real_loss(D(real)) + fake_loss(D(fake.detach()))
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = real_loss(D(fake))
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        n_img += batch_size if i >= warmup else 0
    return n_img / (time.perf_counter() - t0)


def ours_speed(steps: int, warmup: int = 3, amp: bool = True, device="cpu", **overrides) -> float:
    """Return images/s of notebook 01's step in the project's loop (64 px, batch 64 unless overridden)."""
    seed_everything(0)
    cfg = dcgan.config_for("full", batch_size=64, amp=amp, max_seconds=None, **overrides)
    faces = load_faces("synthetic", cfg.img_size, split="train", progress=False)
    trainer, _ = dcgan.build_trainer(cfg, faces, device, None, live=False, progress=False)
    trainer.fit(10**6, steps=warmup)  # kernel selection and first allocations
    before = trainer.state.seconds
    trainer.fit(10**6, steps=steps)
    return steps * cfg.batch_size / (trainer.state.seconds - before)


def speed(steps: int, device: str) -> dict:
    """Return the speed report: ours vs the baseline at 64 px, batch 64, and the data pipeline."""
    ours, base = ours_speed(steps, device=device), baseline_speed(steps, device=device)
    report = {"device": str(device), "machine": machine(device), "bf16_native": bf16_native(device),  # else "ours" is fp32
              "threads": torch.get_num_threads(), "steps": steps,
              "ours_img_s": ours, "baseline_fp32_jpeg_img_s": base,
              "ours_fp32_img_s": ours_speed(steps, amp=False, device=device), "speedup": ours / base}
    report.update(pipeline_speed("synthetic", 64))
    return report


def quality(steps: int, device: str, seed: int = 0) -> dict:
    """Return the oracle FD of notebook 01's 32 px DCGAN after `steps` steps in bf16 and in fp32."""
    from ..eval.metrics import fd_oracle
    from ..eval.oracle import load_or_train_oracle

    train, test = (load_faces("synthetic", 32, split=s, progress=False) for s in ("train", "test"))
    oracle, _ = load_or_train_oracle(train, load_faces("synthetic", 32, split="valid", progress=False),
                                     device=device, seconds=60)
    out = {"bf16_native": bf16_native(device)}
    for amp in (True, False) if out["bf16_native"] else (False,):  # elsewhere the trainer runs fp32 anyway
        seed_everything(seed)
        cfg = dcgan.config_for("demo", amp=amp, max_seconds=None)
        trainer, nets = dcgan.build_trainer(cfg, train, device, None, live=False, progress=False)
        t0 = time.perf_counter()
        trainer.fit(10**6, steps=steps)
        key = "bf16" if amp else "fp32"
        out[f"fd_oracle_{key}"] = fd_oracle(oracle, dcgan.samples(nets, cfg, 2000), test.sample(2000, seed=1))
        out[f"seconds_{key}"] = time.perf_counter() - t0
    return {**out, "quality_steps": steps, "quality_seed": seed}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="timed DCGAN iterations per variant")
    ap.add_argument("--quality", type=int, default=0, metavar="STEPS",
                    help="also compare bf16 vs fp32 oracle FD after STEPS iterations (e.g. 1500)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the --quality runs")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    report = speed(args.steps, args.device)
    if args.quality:
        report.update(quality(args.quality, args.device, seed=args.seed))
    width = max(map(len, report))
    for k, v in report.items():
        print(f"{k:<{width}}  {v:,.2f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    out = paths.output_dir("bench") / "bench.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
