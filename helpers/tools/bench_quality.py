"""`make bench-quality`: our DCGAN against pytorch/examples' DCGAN, equal CPU minutes, same real faces.

Both train on the same images (the `celeba_dev` folder at 32 px, train split), one after the
other, for the same seconds: ours is notebook 01's demo (helpers.models.dcgan through the one
loop); the reference is a plain copy of pytorch/examples' dcgan/main.py as it trains (fp32, eager,
per-tensor Adam 2e-4 / 0.5, BCELoss on a sigmoid, batch 64, nz 100, ngf = ndf = 64, N(0, 0.02)
init), with one stage fewer in each network for 32 px. Both are scored with the same judges on the
test split: FID and KID (helpers.eval.fid), the face-detection rate (helpers.eval.judges) and the
oracle's FD. Writes outputs/bench_quality/bench_quality.json, bench_quality.md (the table) and
samples.png (generated faces only). Exits 0 with a message when the data folder is missing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

from ..core import paths
from ..core.runtime import machine, seed_everything
from ..eval.report import markdown_table
from ..data import load_faces, to_range

DEFAULT_DATA = paths.ROOT.parent / "shared" / "data" / "celeba_dev"


class ExamplesG(nn.Module):
    """pytorch/examples' netG at 32 px: (B, nz, 1, 1) -> ConvT 4x4 to 4x4, then three stride-2 ConvTs."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 8x8
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 16x16
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())  # 32x32

    def forward(self, z):
        return self.main(z.view(len(z), -1, 1, 1))


class ExamplesD(nn.Module):
    """pytorch/examples' netD at 32 px: three stride-2 convs, then a 4x4 conv to one probability."""

    def __init__(self, ndf: int = 64, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # 16x16
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())  # 1x1

    def forward(self, x):
        return self.main(x).view(-1)


def _examples_init(m: nn.Module) -> None:
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build_reference(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """Return pytorch/examples' (netG, netD), initialised as there, repeatable by seed."""
    seed_everything(seed)
    G, D = ExamplesG(), ExamplesD()
    G.apply(_examples_init), D.apply(_examples_init)
    return G, D


def train_reference(faces, seconds: float, batch_size: int = 64, seed: int = 0) -> tuple[nn.Module, dict]:
    """Return (netG in eval mode, run facts) after `seconds` of pytorch/examples' training loop on faces."""
    G, D = build_reference(seed)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        order = torch.randperm(len(faces))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            real = to_range(faces.images[order[i:i + batch_size]])
            label = torch.full((batch_size,), 1.0)
            D.zero_grad()
            err_real = criterion(D(real), label)
            err_real.backward()
            fake = G(torch.randn(batch_size, 100, 1, 1))
            err_fake = criterion(D(fake.detach()), label.fill_(0.0))
            err_fake.backward()
            opt_d.step()
            G.zero_grad()
            criterion(D(fake), label.fill_(1.0)).backward()
            opt_g.step()
            steps += 1
            if time.perf_counter() - t0 >= seconds:
                break
    return G.eval(), {"steps": steps, "train_seconds": time.perf_counter() - t0, "batch_size": batch_size}


def train_ours(faces, seconds: float, device, ckpt_dir: Path, seed: int = 0):
    """Return (generator, config, run facts) after notebook 01's demo trained `seconds` on faces (its
    epoch count is beyond any minutes, as for the reference: both models get the minutes)."""
    from ..models import dcgan

    seed_everything(seed)
    cfg = dcgan.config_for("demo", max_seconds=seconds)
    trainer, nets = dcgan.build_trainer(cfg, faces, device, ckpt_dir, live=False, seed=seed)
    state = trainer.fit(cfg.epochs, max_seconds=seconds, resume=False)
    return nets, cfg, {"steps": state.step, "train_seconds": state.seconds, "batch_size": cfg.batch_size}


def run(data: Path, seconds: float, n: int, out: Path, device="cpu", oracle_seconds: float = 60) -> dict:
    """Train both, score both, write the report files; return the report.

    n: samples per model, and test faces (at most the test split's size: real faces are not repeated).
    """
    from ..eval import presets
    from ..eval.panel import load_judges
    from ..gan import sample_z, generate
    from ..models import dcgan
    from ..ui.viz import make_grid, save_figure, show_row

    train, valid, test = (load_faces(data, 32, split=s) for s in ("train", "valid", "test"))
    n = min(n, len(test))
    panel = load_judges(train, valid, device, presets.config_for("demo", oracle_seconds=oracle_seconds, fid_samples=n))
    nets, cfg, ours_run = train_ours(train, seconds, device, paths.checkpoint_dir("bench_quality/ours"))
    ref_G, ref_run = train_reference(train, seconds)
    fakes = {"ours": dcgan.samples(nets, cfg, n), "reference": generate(ref_G, sample_z(n, 100, "normal", seed=7))}
    real = panel.reference(train, test, n)
    report = {"data": str(data), "n": n, "seconds_each": seconds, "machine": machine(device),
              "face_detect_rate_real": real["face_detect_rate_real"], "kid_real": real["kid_real"],
              "kid_real_se": real["kid_real_se"], "fid_real": real["fid_real"], "fd_oracle_floor": real["fd_oracle_floor"]}
    for name, fake in fakes.items():
        scores = panel.generated(fake, test, n)
        report.update({**{f"{k}_{name}": v for k, v in scores.items()},
                       f"steps_{name}": (ours_run if name == "ours" else ref_run)["steps"]})
    report["fid_ratio"] = report["fid_ours"] / report["fid_reference"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_quality.json").write_text(json.dumps(report, indent=1))
    (out / "bench_quality.md").write_text(table(report))
    fig = show_row([make_grid(f[:32], nrow=8) for f in fakes.values()],
                   [f"ours (FID {report['fid_ours']:.1f})", f"pytorch/examples (FID {report['fid_reference']:.1f})"],
                   width=5, height=3.2)
    save_figure(fig, out / "samples.png")
    print(table(report))
    return report


def table(report: dict) -> str:
    """Return the report as a markdown table (one row per model)."""
    rows = [[label, f"{report[f'steps_{name}']:,}", f"{report[f'fid_{name}']:.1f}",
             f"{report[f'kid_{name}']:.4f} (± {report[f'kid_se_{name}']:.4f})",
             f"{report[f'face_detect_rate_{name}']:.2f} (real {report['face_detect_rate_real']:.2f})",
             f"{report[f'fd_oracle_{name}']:.1f}"]
            for name, label in (("ours", "ours (notebook 01 demo)"), ("reference", "pytorch/examples DCGAN"))]
    return (f"{report['seconds_each']:.0f} s of training each on {Path(report['data']).name} (32 px), "
            f"{report['n']} samples vs {report['n']} test faces, {report['machine']}\n\n"
            + markdown_table(["model", "steps", "FID", "KID (± se)", "faces found", "oracle FD"], rows) +
            f"\n\nreal vs real: FID {report['fid_real']:.1f}, KID {report['kid_real']:.4f} (± {report['kid_real_se']:.4f}); "
            f"FID ours / reference {report['fid_ratio']:.2f}\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="a CelebA-layout folder of real faces")
    ap.add_argument("--seconds", type=float, default=480, help="training seconds for each model")
    ap.add_argument("--n", type=int, default=2000, help="samples (and test faces, at most all of them) each score uses")
    ap.add_argument("--oracle-seconds", type=float, default=60, help="training budget of the oracle")
    ap.add_argument("--out", default=str(paths.OUTPUTS / "bench_quality"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"skipped: no real faces at {args.data} (this benchmark needs a CelebA-layout folder; see README, Data)")
        return 0
    run(Path(args.data), args.seconds, args.n, Path(args.out), args.device, args.oracle_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
