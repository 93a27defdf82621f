"""Measuring and selecting Fader Networks (notebook 02): swap accuracy, preservation, reconstruction
PSNR and the latent discriminator's accuracy, judged by the oracle; the per-epoch validation
tracker behind model selection; loading a kept checkpoint.

Lample et al. 2017, section 4.1 (model selection on swap accuracy and reconstruction) and 5
(quantitative evaluation: attribute swap judged by a classifier).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from ...core.checkpoint import load_modules
from ...core.config import field_defaults, run_keys
from ...core.modules import eval_mode, frozen, infer
from ...data.faces import to_range
from ...eval import judges as face_judges
from ...eval import metrics
from ...gan import invert, residual_edit
from .config import FaderConfig
from .nets import build_networks, flip_one

KEEP_BEST = {"recon_mse": "min", "swap_accuracy": "max"}  # the two checkpoints the official code keeps


def encode(E, x: torch.Tensor) -> torch.Tensor:
    """Return E(x) in eval mode, fp32 on the CPU: (N, C_z, s, s) for x (N, C, S, S) in [-1, 1]."""
    return infer(E, x, batch_size=256)


def decode(G, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return G(z, y) in eval mode, fp32 on the CPU: (N, C, S, S) in [-1, 1]; y (N, n_attr) any reals."""
    return infer(G, z, y.float(), batch_size=256)


def codes(nets: dict, x: torch.Tensor, y: torch.Tensor, steps: int = 0, lr: float = 0.01,
          adversarial: float = 0.0) -> torch.Tensor:
    """Return the latents of faces x (N, C, S, S) with attributes y (N, n_attr): E(x), then `steps`
    Adam steps per image on |G(z, y) - x|^2 from there (helpers.gan.invert; Zhu et al. 2016), plus
    `adversarial` times the encoder's own term, -log P(1 - y | D(z)): the refined z carries what
    E's one pass missed, and the latent discriminator still must not read y from it."""
    z = encode(nets["E"], x)
    if steps <= 0:
        return z
    D = nets.get("D")  # a lean published set ships none: the refinement is on pixels alone
    if D is None or adversarial <= 0:
        return invert(nets["G"], x, z, y.float(), steps=steps, lr=lr, kind="l2")[0]

    def fool_d(zb, yb):  # (B,): the encoder's adversarial loss per face (paper eq. 3)
        return F.binary_cross_entropy_with_logits(D(zb).float(), 1 - yb, reduction="none").mean(1)

    with eval_mode(D), frozen(D):
        z, _ = invert(nets["G"], x, z, y.float(), steps=steps, lr=lr, kind="l2",
                      penalty=lambda zb, yb: adversarial * fool_d(zb, yb))
    return z


def latent_accuracy(D, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return D's accuracy per attribute (n_attr,) at reading y (N, n_attr) from latents z."""
    return ((infer(D, z, batch_size=256) > 0) == (y > 0.5)).float().mean(0)


def scores(nets: dict, oracle, faces, n: int | None = None, strength: float = 1.0,
           z: torch.Tensor | None = None) -> dict:
    """Return the Fader numbers on (the first n of) `faces`, a FaceSet holding exactly the model's attrs.

    swap_accuracy {attr: rate, ..., 'mean'}: fraction of faces whose oracle read-out of attr differs
    from the original's after decoding with that attribute flipped (y_j -> 1 - y_j);
    preserve_accuracy: fraction of the oracle's OTHER attributes unchanged by those edits (mean over
    edits), preserve_vs_recon: the same against the reconstruction (what the edit itself changed,
    reconstruction blur aside); recon_psnr (dB) of G(E(x), y) vs x; recon_mse; latent_disc_accuracy
    (mean, and per attribute) of D reading y from E(x), with latent_disc_chance = majority-class rate.
    swap_accuracy_residual / preserve_accuracy_residual: the same for the residual edits
    x + strength * (G(z, y') - G(z, y)) (helpers.gan.residual_edit: the photo keeps what the decoder
    blurs). z: the latents of those faces, e.g. refined by codes() (default: E(x) as it comes).
    """
    x = to_range(faces.images[:n])
    y = faces.attrs[:n].float()
    names = list(faces.attr_names)
    z = encode(nets["E"], x) if z is None else z
    recon = decode(nets["G"], z, y)
    swap, keep, keep_rec, swap_res, keep_res = {}, {}, {}, {}, {}
    for j, name in enumerate(names):
        edited = decode(nets["G"], z, flip_one(y, j))
        swap[name] = metrics.flip_rate(oracle, x, edited, name)
        keep[name] = metrics.preservation(oracle, x, edited, name)
        keep_rec[name] = metrics.preservation(oracle, recon, edited, name)
        residual = residual_edit(x, recon, edited, strength)
        swap_res[name] = metrics.flip_rate(oracle, x, residual, name)
        keep_res[name] = metrics.preservation(oracle, x, residual, name)
    lat = latent_accuracy(nets["D"], z, y) if "D" in nets else None  # a lean set ships no D
    chance = torch.maximum(y.mean(0), 1 - y.mean(0))
    mean, mean_res = sum(swap.values()) / len(swap), sum(swap_res.values()) / len(swap_res)
    return {"swap_accuracy": {**swap, "mean": mean}, "swap_accuracy_mean": mean,
            "swap_accuracy_residual": {**swap_res, "mean": mean_res}, "swap_accuracy_residual_mean": mean_res,
            "preserve_accuracy_residual": sum(keep_res.values()) / len(keep_res),
            "preserve_accuracy": sum(keep.values()) / len(keep), "preserve_accuracy_per_attr": keep,
            "preserve_vs_recon": sum(keep_rec.values()) / len(keep_rec),
            "recon_psnr": metrics.psnr(recon, x), "recon_mse": float(((recon - x) ** 2).mean()),
            "latent_disc_accuracy": None if lat is None else float(lat.mean()),
            "latent_disc_accuracy_per_attr": None if lat is None else dict(zip(names, lat.tolist())),
            "latent_disc_chance": float(chance.mean()), "n_images": len(x)}


def evaluate(nets: dict, cfg: FaderConfig, judges, test, n: int, pairs_from=None, field: bool = True) -> dict:
    """Return scores() on the first n test faces (the model's attributes selected), and the field's
    judges on the edits: face i with attribute i mod n_attr flipped is scored with FID / KID and the
    face detector against the test faces, and with the identity judge against face i itself
    (identity_kept_real_pairs: that judge on two photos of one person in pairs_from, if given;
    identity_kept_residual: the judge on the residual edits; identity_kept_recon: on the
    reconstructions G(z, y), the most an edit decoded from z can keep; identity_kept_per_attr:
    the edits' rate by the attribute flipped).
    field=False: the oracle's scores only (the field's judges are the slow ones on a CPU)."""
    faces = test.select_attrs(list(cfg.attrs))
    # the (refined) latents once, for the oracle's scores and the field's judges alike
    z_all = codes(nets, to_range(faces.images[:n]), faces.attrs[:n].float(), *cfg.refine)
    out = scores(nets, judges.oracle, faces, n, cfg.residual_strength, z_all)
    if not field:
        return out
    k = min(judges.n_field, n or len(faces), len(faces))
    x, y, z = to_range(faces.images[:k]), faces.attrs[:k].float(), z_all[:k]
    flipped = y.clone()
    rows = torch.arange(k)
    flipped[rows, rows % y.shape[1]] = 1 - flipped[rows, rows % y.shape[1]]
    edits, recon = decode(nets["G"], z, flipped), decode(nets["G"], z, y)
    residual = residual_edit(x, recon, edits, cfg.residual_strength)
    yardsticks = judges.generated(edits, test, k)
    # each image set embedded once (the slow part), then compared to the photos' embeddings
    m = min(judges.n_identity, k)
    e_x, e_edit, e_recon, e_res = (face_judges.embed(v[:m]) for v in (x, edits, recon, residual))
    kept = face_judges.same_person(e_x, e_edit)
    flipped_attr = rows[:m] % y.shape[1]
    per_attr = {name: float(kept[flipped_attr == j].float().mean()) for j, name in enumerate(faces.attr_names)
                if (flipped_attr == j).any()}
    return {**out, **{key: v for key, v in yardsticks.items() if key != "fd_oracle"},
            **judges.identity(e_x, e_edit, pairs_from),
            "identity_kept_residual": judges.identity(e_x, e_res)["identity_kept"],
            "identity_kept_recon": judges.identity(e_x, e_recon)["identity_kept"], "identity_kept_per_attr": per_attr}


def val_tracker(oracle, valid, n: int = 512):
    """Return epoch_end_fn(trainer) -> {'recon_mse', 'recon_psnr', 'swap_accuracy', 'latent_disc_accuracy'}
    on the first n validation faces; with keep_best=KEEP_BEST the trainer keeps the two checkpoints
    the official code keeps (best_rec, best_accu)."""
    def on_epoch(trainer):
        r = scores(trainer.modules, oracle, valid.select_attrs(list(trainer.config["attrs"])), n)
        return {"recon_mse": r["recon_mse"], "recon_psnr": r["recon_psnr"],
                "swap_accuracy": r["swap_accuracy_mean"], "latent_disc_accuracy": r["latent_disc_accuracy"]}

    return on_epoch


def load_nets(path: str | Path, cfg: FaderConfig, device="cpu", channels: int = 3) -> dict:
    """Return {'E', 'G', 'D'} in eval mode from a fader checkpoint (last.pt, best_*.pt, epoch_*.pt).

    Refuses (CheckpointMismatch, naming the differing settings) a checkpoint of another model or
    configuration, e.g. one trained for other attributes.
    """
    nets = build_networks(cfg, channels)
    weights_config = {k: v for k, v in asdict(cfg).items() if k not in run_keys(cfg)}  # run settings never matter here
    load_modules(path, nets, model="fader", config=weights_config, defaults=field_defaults(cfg))
    return {k: m.to(device).eval() for k, m in nets.items()}


def select_model(ckpt_dir: str | Path, nets: dict, cfg: FaderConfig, device="cpu", channels: int = 3,
                 metric: str = "swap_accuracy", weights=None) -> tuple[dict, str]:
    """Return (nets to use from here on, their name): best_<metric>.pt, or the final weights `nets`
    (put in eval mode) when no epoch was judged (a run stopped early, or a headless one), or
    when `nets` hold a published set's `weights` (selected when it was trained)."""
    best = Path(ckpt_dir) / f"best_{metric}.pt"
    if weights is not None:
        print(f"the published set {weights.name!r}: the weights its training run selected")
    elif best.is_file():
        return load_nets(best, cfg, device, channels), best.name
    print(f"no {best.name} (no epoch was judged on validation: the run stopped before its first epoch ended, "
          "or was trained headless): using the final weights")
    for m in nets.values():
        m.eval()
    return nets, "final weights" if weights is None else f"published {weights.name!r}"


def _number(v) -> str:
    return "- (no D)" if v is None else f"{v:.3f}"


def summary_row(result: dict) -> str:
    """Return a one-line summary of scores()'s result."""
    sw = result["swap_accuracy"]
    per = " ".join(f"{k} {v:.3f}" for k, v in sw.items() if k != "mean")
    return (f"swap {sw['mean']:.3f} ({per}) | preserve {result['preserve_accuracy']:.3f} "
            f"(vs recon {result['preserve_vs_recon']:.3f}) | "
            f"PSNR {result['recon_psnr']:.1f} dB | latent D acc {_number(result['latent_disc_accuracy'])} "
            f"(chance {result['latent_disc_chance']:.3f}) | residual: swap "
            f"{result['swap_accuracy_residual_mean']:.3f}, preserve {result['preserve_accuracy_residual']:.3f}")
