"""Converting and scoring (notebook 03): x -> z = E(x) (refined against G) -> G(z, flipped class),
and the numbers metrics.json reports."""
from __future__ import annotations

import torch

from ...core.modules import infer
from ...data.faces import to_range
from ...eval.metrics import attribute_accuracy, fd_oracle as _fd, preservation, psnr
from ...gan import FromMap, generate, invert, residual_edit, sample_z
from .config import EncoderConfig, GANConfig


def encode(E, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (z_hat (N, z_dim), P(class) (N, A)) from E in eval mode, float32 on the CPU."""
    z, logits = infer(E, x.float())
    return z, torch.sigmoid(logits)


def switch_class(G, m: torch.Tensor, c: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return G's faces (N, C, H, W) from first maps m (N, M) of class c (N, A), drawn with class target
    (N, A): G.from_map(m + G.class_shift(c, target)), in eval mode."""
    return infer(G.from_map, m + infer(G.class_shift, c, target, modules=(G,)), modules=(G,))


def convert(G, E, x: torch.Tensor, c: torch.Tensor, target: torch.Tensor, latent_steps: int = 0,
            latent_lr: float = 0.05, latent_prior: float = 1e-3, kind: str = "l2", strength: float = 1.0,
            map_steps: int = 0, map_lr: float = 0.01) -> dict:
    """Return {'z', 'm', 'recon', 'converted', 'residual'}: z = E(x) (refined), its first map m (refined),
    G's redraw of x and of x with the class `target`, and the photo with only what the class switch
    changes, x + strength * (converted - recon) (residual_edit).

    x: (N, C, H, W) in [-1, 1]; c: (N, A) its class (labels, or E's read-out for an upload);
    target: (N, A) the class to render, e.g. 1 - c to flip the smile, or any value in between.
    latent_steps > 0 refines E's guess per image against G (helpers.gan.invert, from E(x)).
    map_steps > 0 then refines G's first map m from G.first_map(z, c) (M numbers against z's
    z_dim): recon = G.from_map(m), converted = G.from_map(m + G.class_shift(c, target)). Without
    it m = G.first_map(z, c), and recon, converted are G(z, c), G(z, target).
    """
    c, target = c.float().reshape(len(x), -1), target.float().reshape(len(x), -1)
    z, _ = encode(E, x)
    if latent_steps > 0:
        z, _ = invert(G, x, z, c, steps=latent_steps, lr=latent_lr, kind=kind, prior=latent_prior)
    m = infer(G.first_map, z, c, modules=(G,))
    if map_steps > 0:
        m, _ = invert(FromMap(G), x, m, steps=map_steps, lr=map_lr, kind=kind)
    recon = infer(G.from_map, m, modules=(G,))
    converted = switch_class(G, m, c, target)
    return {"z": z, "m": m, "recon": recon, "converted": converted,
            "residual": residual_edit(x, recon, converted, strength)}


def latent_cycle_error(E, G, cfg: GANConfig, n: int = 512, seed: int = 3) -> float:
    """Return mean ||E(G(z, c)) - z||^2 over n prior draws z ~ N(0, I), half of each class: how well
    E finds the code G drew from (about 1 for an encoder that always answers 0)."""
    z = sample_z(n, cfg.z_dim, "normal", seed=seed)
    c = (torch.arange(n) % 2).float()[:, None].repeat(1, len(cfg.attrs))
    z_hat, _ = encode(E, generate(G, z, c))
    return float((z_hat - z).pow(2).mean())


def class_accuracy(G, oracle, cfg: GANConfig, n: int = 2000, seed: int = 5) -> float:
    """Return how often the oracle reads the class G was given (in [0, 1]; half the samples per class)."""
    z = sample_z(n, cfg.z_dim, "normal", seed=seed)
    c = (torch.arange(n) % 2).float()[:, None].repeat(1, len(cfg.attrs))  # (n, A): 0, 1, 0, 1, ...
    return attribute_accuracy(oracle, generate(G, z, c), c, attr_names=list(cfg.attrs))["mean_accuracy"]


def samples(G, cfg: GANConfig, real_fs, n: int = 2000, seed: int = 6) -> torch.Tensor:
    """Return n samples (n, C, H, W) in [-1, 1] with classes drawn as in real_fs."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(real_fs), (n,), generator=g)
    c = real_fs.attrs[idx][:, [real_fs.attr_index(a) for a in cfg.attrs]]
    return generate(G, sample_z(n, cfg.z_dim, "normal", seed=seed), c)


def fd_oracle(G, oracle, cfg: GANConfig, real_fs, n: int = 2000, seed: int = 6) -> float:
    """Return the oracle FD between n samples (classes drawn as in real_fs) and n real_fs images."""
    return _fd(oracle, samples(G, cfg, real_fs, n, seed), real_fs.sample(n, seed=2))


def sample_index(n_total: int, n: int, seed: int = 0) -> torch.Tensor:
    """Return the indices FaceSet.sample(n, seed) picks from a set of n_total faces (n <= n_total)."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n]


def conversion_metrics(G, E, oracle, faces, gan_cfg: GANConfig, enc_cfg: EncoderConfig, n: int = 1000,
                       seed: int = 0, latent_steps: int | None = None, judges=None, pairs_from=None,
                       map_steps: int | None = None) -> dict:
    """Return the converter's scores on n real faces (e.g. the test split), each in [0, 1] or dB.

    conversion_accuracy: the oracle reads the flipped class on G(E(x), 1 - c);
    preserve_accuracy: the oracle's read-out of every other attribute is the same on x and on the
    converted face; recon_psnr: PSNR of G(E(x), c) against x; class_from_E: E's class head vs labels.
    latent_steps and map_steps override enc_cfg's (0: E's codes as they come; see convert). With judges
    (helpers.eval.panel.Judges), also identity_kept (the face embedding calls x and its conversion
    the same person) and identity_kept_real_pairs (that judge on two photos of one person in
    pairs_from, a FaceSet with identities; None without). The *_residual keys score the residual
    conversions x + strength * (G(z, 1 - c) - G(z, c)), which keep what G cannot draw.
    """
    idx = sample_index(len(faces), n, seed)
    steps = enc_cfg.latent_steps if latent_steps is None else latent_steps
    map_steps = enc_cfg.map_steps if map_steps is None else map_steps
    x = to_range(faces.images[idx])  # (n, C, H, W) in [-1, 1]
    c = faces.attrs[idx][:, [faces.attr_index(a) for a in gan_cfg.attrs]]  # (n, A)
    out = convert(G, E, x, c, 1 - c, steps, enc_cfg.latent_lr, enc_cfg.latent_prior, enc_cfg.loss,
                  enc_cfg.residual_strength, map_steps, enc_cfg.map_lr)
    names = list(gan_cfg.attrs)
    _, p_cls = encode(E, x)
    res = out["residual"]
    return {"conversion_accuracy": attribute_accuracy(oracle, out["converted"], 1 - c, attr_names=names)["mean_accuracy"],
            "preserve_accuracy": preservation(oracle, x, out["converted"], names),
            "conversion_accuracy_residual": attribute_accuracy(oracle, res, 1 - c, attr_names=names)["mean_accuracy"],
            "preserve_accuracy_residual": preservation(oracle, x, res, names),
            "recon_psnr": psnr(out["recon"], x),
            "recon_class_accuracy": attribute_accuracy(oracle, out["recon"], c, attr_names=names)["mean_accuracy"],
            "class_from_E": float(((p_cls > 0.5).float() == c).float().mean()),
            "z_norm_ratio": float(out["z"].norm(dim=1).mean() / gan_cfg.z_dim ** 0.5),
            **(judges.identity(x, out["converted"], pairs_from) if judges is not None else {}),
            **({"identity_kept_residual": judges.identity(x, res)["identity_kept"]} if judges is not None else {})}


def evaluate(nets: dict, cfg: GANConfig, judges, test, n: int) -> dict:
    """Return one conditional GAN's scores: class accuracy and the judges' scores of its samples."""
    from ...gan import sampler

    G = sampler(nets)
    return {"class_accuracy": class_accuracy(G, judges.oracle, cfg, n),
            **judges.generated(samples(G, cfg, test, n), test, n)}


def metrics_record(cfg, states: dict, gans: dict, conversions: dict, **extra) -> dict:
    """Return notebook 03's metrics.json record.

    states: {model name: (TrainState, its config)} of every model trained; gans: {'acgan': scores,
    'wacgan': scores} from evaluate() (the ACGAN's are also the headline keys); conversions:
    {key suffix: conversion_metrics() result}, suffix '' for the headline converter; extra: keys
    written as given (profile, data, the real-vs-real reference, ...).
    """
    out = {**extra, "config": cfg}
    for name, scores in gans.items():
        out[f"class_accuracy_{name}"] = scores["class_accuracy"]
        out.update({f"{k}_{name}": v for k, v in scores.items() if k != "class_accuracy"})
    out.update({k: v for k, v in gans["acgan"].items() if k != "class_accuracy"})
    for suffix, scores in conversions.items():
        out.update({f"{k}{suffix}": v for k, v in scores.items()})
    seconds = sum(s.seconds for s, _ in states.values())
    out.update(train_seconds=seconds,
               images_per_second=sum(s.step * c.batch_size for s, c in states.values()) / max(seconds, 1e-9),
               train_seconds_per_model={k: s.seconds for k, (s, _) in states.items()},
               steps={k: s.step for k, (s, _) in states.items()})
    return out


def conversion_table(table: dict) -> str:
    """Return the converters' numbers side by side, {row name: conversion_metrics() result}, as text
    ('-' where a converter was not judged on a number)."""
    keys = ("conversion_accuracy", "preserve_accuracy", "recon_psnr", "identity_kept")
    lines = [f"{'':28}" + "".join(f"{k:>21}" for k in keys) + "   residual: conversion, preserve, identity"]
    for name, m in table.items():
        res = [m.get(f"{k}_residual") for k in ("conversion_accuracy", "preserve_accuracy", "identity_kept")]
        lines.append(f"{name:28}" + "".join(f"{m[k]:21.3f}" if k in m else f"{'-':>21}" for k in keys)
                     + "   " + ", ".join("-" if r is None else f"{r:.3f}" for r in res))
    return "\n".join(lines)
