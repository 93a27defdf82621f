"""Measuring and selecting Fader Networks (notebooks/02_fadernet.ipynb): swap accuracy, preservation,
reconstruction PSNR and the latent discriminator's accuracy, judged by the oracle; the per-epoch
validation tracker behind model selection; loading a kept checkpoint; the training runs.

Lample et al. 2017, section 4.1 (model selection on swap accuracy and reconstruction) and 5
(quantitative evaluation: attribute swap judged by a classifier).
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from . import checkpoint as ckpt_io
from . import fader, metrics
from .data.faces import to_range


@torch.no_grad()
def encode(E, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Return E(x) in eval mode, fp32 on the CPU: (N, C_z, s, s) for x (N, C, S, S) in [-1, 1]."""
    dev = next(E.parameters()).device
    was = E.training
    E.eval()
    out = torch.cat([E(x[i:i + batch_size].to(dev)).float().cpu() for i in range(0, len(x), batch_size)])
    E.train(was)
    return out


@torch.no_grad()
def decode(G, z: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Return G(z, y) in eval mode, fp32 on the CPU: (N, C, S, S) in [-1, 1]; y (N, n_attr) any reals."""
    dev = next(G.parameters()).device
    was = G.training
    G.eval()
    y = y.float()
    out = torch.cat([G(z[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)).float().cpu()
                     for i in range(0, len(z), batch_size)])
    G.train(was)
    return out


@torch.no_grad()
def latent_accuracy(D, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return D's accuracy per attribute (n_attr,) at reading y (N, n_attr) from latents z."""
    dev = next(D.parameters()).device
    was = D.training
    D.eval()
    logits = torch.cat([D(z[i:i + 256].to(dev)).float().cpu() for i in range(0, len(z), 256)])
    D.train(was)
    return ((logits > 0) == (y > 0.5)).float().mean(0)


def evaluate(nets: dict, oracle, faces, n: int | None = None) -> dict:
    """Return the Fader numbers on (the first n of) `faces`, a FaceSet holding exactly the model's attrs.

    swap_accuracy {attr: rate, ...}: fraction of faces whose oracle read-out of attr differs from
    the original's after decoding with that attribute flipped (y_j -> 1 - y_j); swap_accuracy_mean;
    preserve_accuracy: fraction of the oracle's OTHER attributes unchanged by those edits (mean over
    edits), preserve_vs_recon: the same against the reconstruction (what the edit itself changed,
    reconstruction blur aside); recon_psnr (dB) of G(E(x), y) vs x; recon_mse; latent_disc_accuracy (mean, and
    per attribute) of D reading y from E(x), with latent_disc_chance = majority-class rate.
    """
    x = to_range(faces.images[:n] if n else faces.images)
    y = (faces.attrs[:n] if n else faces.attrs).float()
    names = list(faces.attr_names)
    z = encode(nets["E"], x)
    recon = decode(nets["G"], z, y)
    swap, keep, keep_rec = {}, {}, {}
    for j, name in enumerate(names):
        edited = decode(nets["G"], z, fader.flip_one(y, j))
        swap[name] = metrics.flip_rate(oracle, x, edited, name)
        keep[name] = metrics.preservation(oracle, x, edited, name)
        keep_rec[name] = metrics.preservation(oracle, recon, edited, name)
    lat = latent_accuracy(nets["D"], z, y)
    chance = torch.maximum(y.mean(0), 1 - y.mean(0))
    return {"swap_accuracy": {**swap, "mean": sum(swap.values()) / len(swap)},
            "swap_accuracy_mean": sum(swap.values()) / len(swap),
            "preserve_accuracy": sum(keep.values()) / len(keep), "preserve_accuracy_per_attr": keep,
            "preserve_vs_recon": sum(keep_rec.values()) / len(keep_rec),
            "recon_psnr": metrics.psnr(recon, x), "recon_mse": float(((recon - x) ** 2).mean()),
            "latent_disc_accuracy": float(lat.mean()),
            "latent_disc_accuracy_per_attr": dict(zip(names, lat.tolist())),
            "latent_disc_chance": float(chance.mean()), "n_images": len(x)}


def val_tracker(oracle, valid, n: int = 512):
    """Return epoch_end_fn(trainer) -> {'recon_mse', 'recon_psnr', 'swap_accuracy', 'latent_disc_accuracy'}
    on the first n validation faces; with keep_best={'recon_mse': 'min', 'swap_accuracy': 'max'} the
    trainer keeps the two checkpoints the official code keeps (best_rec, best_accu)."""

    def on_epoch(trainer):
        r = evaluate(trainer.modules, oracle, valid, n)
        return {"recon_mse": r["recon_mse"], "recon_psnr": r["recon_psnr"],
                "swap_accuracy": r["swap_accuracy_mean"], "latent_disc_accuracy": r["latent_disc_accuracy"]}

    return on_epoch


KEEP_BEST = {"recon_mse": "min", "swap_accuracy": "max"}


def load_nets(path: str | Path, cfg: fader.FaderConfig, device="cpu", channels: int = 3,
              extra_config: dict | None = None) -> dict:
    """Return {'E', 'G', 'D'} in eval mode from a fader checkpoint (last.pt, best_*.pt, epoch_*.pt).

    Refuses (CheckpointMismatch, naming the differing settings) a checkpoint of another model or
    configuration, e.g. one trained for other attributes.
    """
    E, G, D = fader.build_networks(cfg, channels)
    nets = {"E": E, "G": G, "D": D}
    ckpt_io.load_modules(path, nets, model="fader", config={**asdict(cfg), **(extra_config or {})})
    for m in nets.values():
        m.to(device).eval()
    return nets


def select_model(ckpt_dir: str | Path, nets: dict, cfg: fader.FaderConfig, device="cpu", channels: int = 3,
                 extra_config: dict | None = None, metric: str = "swap_accuracy") -> tuple[dict, str]:
    """Return (nets to use from here on, their name): best_<metric>.pt, or the final weights `nets`
    (put in eval mode) when no epoch has ended yet, so none was judged (a run stopped early)."""
    best = Path(ckpt_dir) / f"best_{metric}.pt"
    if best.is_file():
        return load_nets(best, cfg, device, channels, extra_config), best.name
    print(f"no {best.name} yet (no epoch has ended, so none was judged): using the final weights")
    for m in nets.values():
        m.eval()
    return nets, "final weights"


def train_run(cfg: fader.FaderConfig, faces, valid, oracle, device, ckpt_dir, seconds: float | None,
              sample_n: int = 8, **trainer_kw):
    """Return (trainer, nets, state) after training cfg on faces for `seconds` of training in all
    (cumulative: calling again with more seconds continues from last.pt)."""
    loader = faces.loader(cfg.batch_size, flip=cfg.flip, device=device, channels_last=fader.channels_last(cfg, device), seed=0)
    sx = to_range(valid.images[:sample_n])
    trainer, nets = fader.build_trainer(
        cfg, loader, device, ckpt_dir, sample_x=sx, sample_y=valid.attrs[:sample_n],
        extra_config={"data": faces.key}, epoch_end_fn=val_tracker(oracle, valid, cfg.val_images),
        keep_best=KEEP_BEST, **trainer_kw)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    state = trainer.fit(cfg.epochs, max_seconds=seconds)
    print(f"{trainer.ckpt_dir.name if trainer.ckpt_dir else 'fader'}: {state.stopped}, {state.epoch} epochs "
          f"+ {state.batch} batches, {state.step} steps, {state.seconds:.0f} s of training "
          f"({time.perf_counter() - t0:.0f} s wall this call)")
    return trainer, nets, state


def summary_row(result: dict) -> str:
    """Return a one-line summary of evaluate()'s result."""
    sw = result["swap_accuracy"]
    per = " ".join(f"{k} {v:.3f}" for k, v in sw.items() if k != "mean")
    return (f"swap {sw['mean']:.3f} ({per}) | preserve {result['preserve_accuracy']:.3f} "
            f"(vs recon {result['preserve_vs_recon']:.3f}) | "
            f"PSNR {result['recon_psnr']:.1f} dB | latent D acc {result['latent_disc_accuracy']:.3f} "
            f"(chance {result['latent_disc_chance']:.3f})")
