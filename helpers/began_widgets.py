"""BEGAN interpolation (notebooks/04_began_interpolation.ipynb): four ways between two faces,
the smoothness measure, and the slider shell.

Methods (Berthelot et al. 2017, section 4.4 and figure 4):
  'latent lerp' / 'latent slerp': G along a straight / spherical path between two latents z;
  'D-autoencoder': encode two real faces with D's encoder, interpolate the embeddings h linearly,
      decode with D's decoder;
  'inversion': find z with G(z) close to each real face (gradient descent on |G(z) - x|), then
      interpolate those z through G.
Pure functions (tensors in, uint8 picture / numbers out) are what the tests and sliders call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .latent import generate, interpolate, lerp, slerp
from .train import frozen
from .viz import make_grid, png_bytes

METHODS = ("latent lerp", "latent slerp", "D-autoencoder", "inversion")


def interp_smoothness(features: torch.Tensor) -> float:
    """Return max_i ||f_{i+1} - f_i|| / ||f_last - f_0|| for one interpolation path (>= 1/(F-1)).

    features: (F, D) oracle features of F frames in path order, F >= 3. An evenly spaced
    straight path gives exactly 1/(F-1) (1/15 for 16 frames); a path that jumps gives up to 1 or
    more. Raises ValueError when the endpoints coincide (the ratio is undefined).
    """
    f = torch.as_tensor(features).double()
    if f.dim() != 2 or f.shape[0] < 3:
        raise ValueError(f"features must be (F >= 3, D) in path order, got shape {tuple(f.shape)}")
    span = (f[-1] - f[0]).norm()
    if span <= 1e-12 * max(1.0, float(f.abs().max())):
        raise ValueError("the two endpoints have identical features: pick two different faces")
    return float((f[1:] - f[:-1]).norm(dim=1).max() / span)


def mean_interp_smoothness(oracle, paths: list[torch.Tensor]) -> float:
    """Return the mean interp_smoothness over paths, each (F, C, H, W) frames in [-1, 1]."""
    if not paths:
        raise ValueError("no interpolation paths given")
    return float(np.mean([interp_smoothness(oracle.features(p)) for p in paths]))


def invert(G, x: torch.Tensor, nz: int, steps: int = 300, lr: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (z (N, nz) in [-1, 1], per-image L1 error (N,)) with G(z) close to real faces x.

    x: (N, C, H, W) in [-1, 1]. Adam on |G(z) - x| with G frozen, z kept in G's training range
    [-1, 1] (section 4.4 of the paper interpolates real faces this way). fp32, G in eval mode.
    """
    device = next(G.parameters()).device
    x = x.to(device).float()
    z = (torch.rand(len(x), nz, generator=torch.Generator().manual_seed(seed)) * 0.2 - 0.1).to(device)
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    was_training = G.training
    G.eval()
    try:
        with frozen(G):
            for _ in range(steps):
                err = (G(z).float() - x).abs().mean(dim=(1, 2, 3))  # (N,)
                opt.zero_grad(set_to_none=True)
                err.sum().backward()
                opt.step()
                with torch.no_grad():
                    z.clamp_(-1, 1)
        with torch.no_grad():
            err = (G(z).float() - x).abs().mean(dim=(1, 2, 3))
    finally:
        G.train(was_training)
    return z.detach().cpu(), err.cpu()


@torch.no_grad()
def encode(D, x: torch.Tensor) -> torch.Tensor:
    """Return D's embeddings h (N, hidden_dim) of images x (N, C, H, W) in [-1, 1], float32 CPU."""
    device = next(D.parameters()).device
    return D.encode(x.to(device)).float().cpu()


@dataclass
class Pools:
    """What the interpolation methods pick their endpoints from (index i in every pool)."""

    z: torch.Tensor  # (N, nz) latents for the latent methods
    real: torch.Tensor  # (N, C, H, W) real faces in [-1, 1] for the real-face methods
    h: torch.Tensor  # (N, hidden_dim) D-encoder embeddings of `real`
    z_inv: torch.Tensor  # (N, nz) inverted latents of `real`
    inv_err: torch.Tensor  # (N,) mean |G(z_inv) - real| per face

    def __len__(self) -> int:
        return min(len(self.z), len(self.real))


def make_pools(G, D, z: torch.Tensor, real: torch.Tensor, invert_steps: int = 300) -> Pools:
    """Return Pools for latents z and real faces `real` (encodes and inverts the faces)."""
    z_inv, err = invert(G, real, z.shape[1], steps=invert_steps)
    return Pools(z=z, real=real, h=encode(D, real), z_inv=z_inv, inv_err=err)


@torch.no_grad()
def frames(method: str, G, D, pools: Pools, a: int, b: int, ts) -> torch.Tensor:
    """Return the faces at positions ts (floats in [0, 1]) from endpoint a to b: (T, C, H, W) float CPU."""
    ts = [float(t) for t in ts]
    if method in ("latent lerp", "latent slerp"):
        fn = lerp if method == "latent lerp" else slerp
        return generate(G, torch.stack([fn(pools.z[a], pools.z[b], t) for t in ts]))
    if method == "inversion":
        return generate(G, torch.stack([lerp(pools.z_inv[a], pools.z_inv[b], t) for t in ts]))
    if method == "D-autoencoder":
        h = torch.stack([lerp(pools.h[a], pools.h[b], t) for t in ts])
        was_training = D.training
        D.eval()
        out = D.decode(h.to(next(D.parameters()).device)).float().cpu()
        D.train(was_training)
        return out
    raise ValueError(f"method={method!r}: use one of {METHODS}")


def render_strip(method: str, G, D, pools: Pools, a: int, b: int, steps: int = 10) -> np.ndarray:
    """Return `steps` faces from a to b in one row (real faces at both ends for real-face methods)."""
    imgs = frames(method, G, D, pools, a, b, torch.linspace(0, 1, steps))
    if method in ("D-autoencoder", "inversion"):
        imgs = torch.cat([pools.real[a:a + 1].float(), imgs, pools.real[b:b + 1].float()])
    return make_grid(imgs, nrow=len(imgs))


def render_interp(method: str, G, D, pools: Pools, a: int, b: int, t: float) -> np.ndarray:
    """Return the slider picture: [start, face at t, end] (with the real faces outside for real-face
    methods): uint8 (H, W, 3)."""
    imgs = frames(method, G, D, pools, a, b, [0.0, t, 1.0])
    if method in ("D-autoencoder", "inversion"):
        imgs = torch.cat([pools.real[a:a + 1].float(), imgs, pools.real[b:b + 1].float()])
    return make_grid(imgs, nrow=len(imgs))


def smoothness_by_method(oracle, G, D, pools: Pools, pairs: list[tuple[int, int]], steps: int = 16) -> dict:
    """Return {method: mean interp_smoothness over pairs} for every method, `steps` frames each."""
    ts = torch.linspace(0, 1, steps)
    return {m: mean_interp_smoothness(oracle, [frames(m, G, D, pools, a, b, ts) for a, b in pairs]) for m in METHODS}


def interpolation_explorer(G, D, pools: Pools, upscale: int = 5, seed: int = 0):
    """Return the widget: method switch, endpoint pickers, position slider, 'new pair' button,
    the picture and a read-out."""
    import ipywidgets as W

    n = len(pools)
    method = W.ToggleButtons(options=list(METHODS), value="latent slerp", description="method")
    a = W.IntSlider(value=0, min=0, max=n - 1, description="from")
    b = W.IntSlider(value=1, min=0, max=n - 1, description="to")
    t = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="position")
    new_pair = W.Button(description="new pair")
    image = W.Image(value=png_bytes(render_interp(method.value, G, D, pools, 0, 1, 0.5), upscale), format="png")
    readout = W.HTML()
    rng = np.random.default_rng(seed)

    def redraw(_=None):
        image.value = png_bytes(render_interp(method.value, G, D, pools, a.value, b.value, t.value), upscale)
        ends = "real faces" if method.value in ("D-autoencoder", "inversion") else "latents"
        readout.value = f"{method.value}: {ends} #{a.value} &rarr; #{b.value}, position <b>{t.value:.2f}</b>"

    def pick(_):
        i, j = rng.choice(n, size=2, replace=False)
        with image.hold_trait_notifications():
            a.value, b.value = int(i), int(j)
        redraw()

    for w in (method, a, b, t):
        w.observe(redraw, "value")
    new_pair.on_click(pick)
    redraw()
    return W.VBox([method, W.HBox([W.VBox([a, b, t, new_pair]), image]), readout])
