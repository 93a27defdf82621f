"""Latent space: drawing z, sampling a generator, walking between latents, inverting real faces,
and attribute directions in an unconditional generator."""
from __future__ import annotations

import warnings

import torch

from ..core.modules import device_of, eval_mode, frozen, infer


def sample_z(n: int, z_dim: int, dist: str = "uniform", device="cpu", generator=None,
             seed: int | None = None) -> torch.Tensor:
    """Return (n, z_dim) latents: U(-1, 1) (the Udacity course, BEGAN) or N(0, 1); `seed` repeats them."""
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
    if dist == "uniform":
        return torch.rand(n, z_dim, generator=generator).to(device) * 2 - 1
    if dist == "normal":
        return torch.randn(n, z_dim, generator=generator).to(device)
    raise ValueError(f"z_dist={dist!r}: use 'uniform' or 'normal'")


def sampler(nets: dict) -> torch.nn.Module:
    """Return the generator to sample from: the weight average G_ema when there is one, else G."""
    return nets["G_ema"] if "G_ema" in nets else nets["G"]  # a published set ships no G beside G_ema


def generate(G, *inputs: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Return G(*inputs) in eval mode, batched, float32 on the CPU: (N, C, H, W) in [-1, 1].

    inputs: z (N, z_dim), plus e.g. classes (N, A) for a conditional G.
    """
    return infer(G, *inputs, batch_size=batch_size)


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


def invert(G, x: torch.Tensor, z0: torch.Tensor, *cond: torch.Tensor, steps: int = 300, lr: float = 0.05,
           kind: str = "l1", prior: float = 0.0, clamp: float | None = None,
           batch_size: int = 500, penalty=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (z (N, ...), per-image error (N,)) with G(z, *cond) close to the images x.

    Adam on the per-image mean |G(z) - x| ('l1') or squared error ('l2') + prior * mean(z^2), from z0
    (N, z_dim) or any per-image shape (N, ...) such as a map, with G frozen in eval mode, in fp32
    (Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image Manifold", section 3.1;
    BEGAN section 4.4 inverts real faces this way).
    clamp keeps z in [-clamp, clamp] (a uniform prior). x: (N, C, H, W) in [-1, 1].
    penalty(z, *cond) -> (B,): a further per-image term to minimise (e.g. what a latent critic reads).
    """
    if kind not in ("l1", "l2"):
        raise ValueError(f"kind={kind!r}: use 'l1' or 'l2'")
    device = device_of(G)

    def error(z, xb, cb):
        diff = G(z, *cb).float() - xb
        return (diff.abs() if kind == "l1" else diff.pow(2)).flatten(1).mean(1)  # (B,)

    zs, errs = [], []
    with eval_mode(G), frozen(G):
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device).float()
            cb = [c[i:i + batch_size].to(device).float() for c in cond]
            z = z0[i:i + batch_size].to(device).float().clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                # Per-image sums (not batch means) so each z gets the same step whatever the batch size.
                loss = error(z, xb, cb) + prior * z.pow(2).flatten(1).mean(1)
                loss = (loss + penalty(z, *cb) if penalty is not None else loss).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if clamp is not None:
                    with torch.no_grad():
                        z.clamp_(-clamp, clamp)
            with torch.no_grad():
                errs.append(error(z, xb, cb).cpu())
            zs.append(z.detach().cpu())
    return torch.cat(zs), torch.cat(errs)


class FromMap(torch.nn.Module):
    """A generator seen from one of its inner maps: forward(m) = G.from_map(m), so that invert can
    optimise that map (B, M) instead of the latent (Bau et al. 2019, "Seeing What a GAN Cannot
    Generate", invert a layer in: it holds far more numbers than z, and reaches the photo).

    G: any generator with first_map(...) -> (B, M) and from_map(m) -> images.
    """

    def __init__(self, G: torch.nn.Module):
        super().__init__()
        self.G = G

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return self.G.from_map(m)


def residual_edit(x: torch.Tensor, recon: torch.Tensor, edited: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Return x + strength * (edited - recon), clamped to [-1, 1]: the photo with only what the edit
    changed (strength > 1 pushes the change further, for edits the photo's own detail dampens).

    A generator that cannot draw the photo exactly (recon = G(z, c) != x) still tells what switching
    the attribute changes: edited = G(z, c'). Adding that difference to the photo keeps every detail
    the generator missed, so the person stays; what it cannot do is remove detail the edit should
    remove (old glasses stay faintly under new ones). All (N, C, H, W) in [-1, 1].
    """
    if not (x.shape == recon.shape == edited.shape):
        raise ValueError(f"x, recon and edited must have one shape, got {tuple(x.shape)}, {tuple(recon.shape)}, "
                         f"{tuple(edited.shape)}")
    return (x.float() + strength * (edited.float() - recon.float())).clamp(-1, 1)


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
