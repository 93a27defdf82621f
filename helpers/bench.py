"""`make bench`: training and data-pipeline speed, ours against the pytorch/examples set-up.

Ours: the uint8 cache -> FaceLoader -> bf16 autocast + channels_last DCGAN step, fused Adam, and D
frozen while G's loss backpropagates through it (no unused D weight gradients), as our loop does.
Baseline: the same networks in fp32, eager, NCHW, fed by a DataLoader that decodes, crops and
resizes a JPEG per image per step (what pytorch/examples/dcgan does with ImageFolder).
`--quality` also trains the 32 px DCGAN for the same number of steps in bf16 and fp32 and
compares their oracle Fréchet distances (is bf16 safe?).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch

from . import dcgan, paths
from .data import cache, load_faces
from .data.faces import pipeline_speed
from .data.faces import ensure_synthetic
from .runtime import autocast, machine, seed_everything
from .train import adam, frozen


class JpegFolder(torch.utils.data.Dataset):
    """Decode + centre-crop + resize one JPEG per item, every epoch (the baseline's data path)."""

    def __init__(self, files, size):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        img = cache.load_image(self.files[i], self.size, None, 3)
        return torch.from_numpy(img.copy()).float().div_(127.5).sub_(1), 0


def gan_step(D, G, d_opt, g_opt, real, z_size, amp, device, freeze_d=False):
    """One DCGAN iteration (D on real + fake, then G); returns nothing, just does the work.

    freeze_d: G's update skips D's weight gradients (helpers.train.frozen); the baseline computes them,
    as pytorch/examples does.
    """
    b = real.shape[0]
    with autocast(device, amp):
        fake = G(torch.randn(b, z_size, device=device))
        d_loss = dcgan.real_loss(D(real)) + dcgan.fake_loss(D(fake.detach()))
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    with autocast(device, amp), (frozen(D) if freeze_d else contextlib.nullcontext()):
        g_loss = dcgan.real_loss(D(fake))
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()


def train_speed(batches, *, amp, channels_last, steps, warmup=3, size=64, conv_dim=64, z_size=100,
                device="cpu", fused=False, freeze_d=False) -> float:
    """Return training images/s of a DCGAN at `size` over `steps` iterations from `batches`.

    fused: our loop's fused Adam (helpers.train.adam) instead of the default per-tensor one.
    freeze_d: our loop's frozen D during G's update (see gan_step).
    """
    seed_everything(0)
    D, G = dcgan.build_network(conv_dim, conv_dim, z_size, img_size=size)
    D, G = D.to(device), G.to(device)
    if channels_last:
        D, G = D.to(memory_format=torch.channels_last), G.to(memory_format=torch.channels_last)
    make_opt = adam if fused else (lambda p, lr, betas: torch.optim.Adam(p, lr, betas=betas))
    d_opt, g_opt = (make_opt(m.parameters(), 2e-4, (0.5, 0.999)) for m in (D, G))
    it = iter(batches)
    n_img, t0 = 0, None
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        real = next(it)[0].to(device)
        if channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        gan_step(D, G, d_opt, g_opt, real, z_size, amp, device, freeze_d)
        n_img += real.shape[0] if i >= warmup else 0
    return n_img / (time.perf_counter() - t0)


def speed(steps: int, device: str) -> dict:
    """Return the speed report: ours vs the baseline at 64 px, batch 64, and the data pipeline."""
    files = sorted((ensure_synthetic(64) / "img_align_celeba").glob("*.jpg"))
    faces = load_faces("synthetic", 64, split="train", progress=False)
    ours = train_speed(faces.loader(64, device=device), amp=True, channels_last=True, steps=steps, device=device,
                       fused=True, freeze_d=True)
    jpeg_loader = torch.utils.data.DataLoader(JpegFolder(files, 64), batch_size=64, shuffle=True, num_workers=2,
                                              drop_last=True, persistent_workers=True)
    base = train_speed(jpeg_loader, amp=False, channels_last=False, steps=steps, device=device)
    fp32_cached = train_speed(faces.loader(64, device=device), amp=False, channels_last=False, steps=steps,
                              device=device)
    report = {"device": str(device), "machine": machine(device), "threads": torch.get_num_threads(), "steps": steps,
              "ours_bf16_channels_last_cached_img_s": ours, "baseline_fp32_jpeg_img_s": base,
              "fp32_cached_img_s": fp32_cached, "speedup": ours / base}
    report.update(pipeline_speed("synthetic", 64))
    return report


def quality(steps: int, device: str, size: int = 32, seed: int = 0) -> dict:
    """Return the oracle FD of a 32 px DCGAN after `steps` iterations in bf16 and in fp32."""
    from .metrics import fd_oracle
    from .oracle import load_or_train_oracle

    train = load_faces("synthetic", size, split="train", progress=False)
    test = load_faces("synthetic", size, split="test", progress=False)
    oracle, _ = load_or_train_oracle(train, load_faces("synthetic", size, split="valid", progress=False),
                                     device=device, seconds=60)
    out = {}
    for amp in (True, False):
        seed_everything(seed)
        D, G = dcgan.build_network(64, 64, 100, img_size=size)
        d_opt = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
        g_opt = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
        loader, done, t0 = train.loader(64), 0, time.perf_counter()
        while done < steps:
            for real, _ in loader:
                gan_step(D, G, d_opt, g_opt, real, 100, amp, device)
                done += 1
                if done >= steps:
                    break
        G.eval()
        with torch.no_grad():
            fake = torch.cat([G(torch.randn(500, 100)) for _ in range(4)]).float()
        key = "bf16" if amp else "fp32"
        out[f"fd_oracle_{key}"] = fd_oracle(oracle, fake, test.sample(2000, seed=1))
        out[f"seconds_{key}"] = time.perf_counter() - t0
    out.update(quality_steps=steps, quality_seed=seed)
    return out


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
