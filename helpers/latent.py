"""Walking a generator's latent space: interpolation and attribute directions.

Used by 01_dcgan (latent walk + attribute sliders) and 04_began (interpolation).
"""
from __future__ import annotations

import warnings

import torch


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Return the straight-line point (1 - t) z0 + t z1 (any matching shapes)."""
    return z0 + (z1 - z0) * t


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Return the spherical interpolation between z0 and z1 (last dim is the latent).

    Keeps the norm typical of high-dimensional Gaussian/uniform samples, where lerp passes
    through the low-norm middle the generator rarely saw (White 2016, "Sampling Generative Networks").
    """
    a, b = z0 / z0.norm(dim=-1, keepdim=True), z1 / z1.norm(dim=-1, keepdim=True)
    omega = torch.acos((a * b).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = torch.as_tensor(t, dtype=z0.dtype)
    out = (torch.sin((1 - t) * omega) / so) * z0 + (torch.sin(t * omega) / so) * z1
    return torch.where(so.abs() < 1e-6, lerp(z0, z1, t), out)


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int = 16, method: str = "slerp") -> torch.Tensor:
    """Return (steps, *z0.shape) latents from z0 to z1 inclusive, by 'lerp' or 'slerp'."""
    fn = {"lerp": lerp, "slerp": slerp}.get(method)
    if fn is None:
        raise ValueError(f"method={method!r}: use 'lerp' or 'slerp'")
    return torch.stack([fn(z0, z1, float(t)) for t in torch.linspace(0, 1, steps)])


@torch.no_grad()
def generate(G, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Return G(z) in eval mode, batched, as float32 on the CPU: (N, C, H, W) in [-1, 1]."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    out = torch.cat([G(z[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(z), batch_size)])
    G.train(was_training)
    return out


@torch.no_grad()
def attribute_directions(G, oracle, z: torch.Tensor, attrs: list[str], min_side: int = 10) -> dict:
    """Return {attr: direction (z_dim,)}: mean latent of samples the oracle reads as having the
    attribute minus the mean of those without (an unconditional G has no labels of its own).

    Also returns under '_counts' how many samples fell on each side; an attribute with fewer than
    min_side samples on a side gets no direction (a warning says so).
    """
    probs = oracle.predict(generate(G, z))  # (N, A)
    out, counts = {}, {}
    for name in attrs:
        has = probs[:, oracle.attr_names.index(name)] > 0.5
        counts[name] = (int(has.sum()), int((~has).sum()))
        if min(counts[name]) < min_side:
            warnings.warn(f"skipping {name}: the generator produced {counts[name][0]} samples with it and "
                          f"{counts[name][1]} without (need {min_side} each); train longer or sample more z")
            continue
        out[name] = z[has].mean(0) - z[~has].mean(0)
    out["_counts"] = counts
    return out


@torch.no_grad()
def direction_accuracy(G, oracle, z: torch.Tensor, directions: dict, strength: float = 3.0,
                       attrs: list[str] | None = None) -> dict:
    """Return {attr: fraction of edits that flip the oracle's read-out}, plus 'mean' over `attrs`
    (default: those with directions; a requested attribute without a direction scores 0).

    Each sample is pushed along the direction towards the value it lacks (+strength * d when the
    oracle reads 0, -strength * d when it reads 1), the way the sliders move it.
    """
    before = oracle.predict(generate(G, z)) > 0.5
    result = {}
    for name, d in directions.items():
        if name.startswith("_"):
            continue
        j = oracle.attr_names.index(name)
        sign = 1.0 - 2.0 * before[:, j].float()  # +1 where absent, -1 where present
        after = oracle.predict(generate(G, z + strength * sign[:, None] * d)) > 0.5
        result[name] = float((after[:, j] != before[:, j]).float().mean())
    for name in attrs or []:
        result.setdefault(name, 0.0)
    result["mean"] = sum(result.values()) / max(1, len(result))
    return result
