"""BEGAN's interpolations and figures (notebook 04): four ways between two faces, their smoothness,
the slider, the training figure.

Methods (Berthelot et al. 2017, section 4.4 and figure 4):
  'latent lerp' / 'latent slerp': G along a straight / spherical path between two latents z;
  'D-autoencoder': encode two real faces with D's encoder, interpolate the embeddings h linearly,
      decode with D's decoder;
  'inversion': find z with G(z) close to each real face (helpers.gan.invert), then interpolate
      those z through G;
  'map inversion': go on from there in G's first 8x8 map h0 (2,048 numbers at the demo's width,
      against z's 32), which reaches the photo, and interpolate those maps through the rest of G
      (inversion into an intermediate layer, as Bau et al. 2019, "Seeing What a GAN Cannot
      Generate", do). The more the map holds, the more the path between two photos leans towards
      a cross-fade: `crossfade_psnr` measures how far.
Pure functions (tensors in, uint8 picture / numbers out) are what the tests and the slider call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...core.modules import infer
from ...eval.metrics import mean_interp_smoothness, psnr
from ...gan import FromMap, generate, invert, lerp, slerp
from ...ui.viz import make_grid, training_figure as _figure
from ...ui.widgets import picture_view

METHODS = ("latent lerp", "latent slerp", "D-autoencoder", "inversion", "map inversion")
REAL_FACE_METHODS = ("D-autoencoder", "inversion", "map inversion")


@dataclass
class Pools:
    """What the interpolation methods pick their endpoints from (index i in every pool)."""

    z: torch.Tensor  # (N, z_dim) latents for the latent methods
    real: torch.Tensor  # (N, C, H, W) real faces in [-1, 1] for the real-face methods
    h: torch.Tensor  # (N, hidden_dim) D-encoder embeddings of `real`
    z_inv: torch.Tensor  # (N, z_dim) inverted latents of `real`
    inv_err: torch.Tensor  # (N,) mean |G(z_inv) - real| per face
    m_inv: torch.Tensor  # (N, top * 64) inverted first maps of `real`, started from G.first_map(z_inv)
    map_err: torch.Tensor  # (N,) mean |G.from_map(m_inv) - real| per face

    def __len__(self) -> int:
        return min(len(self.z), len(self.real))


def make_pools(G, D, z: torch.Tensor, real: torch.Tensor, invert_steps: int = 300, map_steps: int = 100,
               seed: int = 0) -> Pools:
    """Return Pools for latents z and real faces `real` (encodes and inverts the faces).

    The inversion starts near z = 0 and keeps z in G's training range [-1, 1] (uniform prior);
    the map inversion starts from G's first map of that z and takes map_steps more.
    """
    z0 = torch.rand(len(real), z.shape[1], generator=torch.Generator().manual_seed(seed)) * 0.2 - 0.1
    z_inv, err = invert(G, real, z0, steps=invert_steps, kind="l1", clamp=1.0)
    m0 = infer(G.first_map, z_inv, modules=(G,))
    m_inv, map_err = invert(FromMap(G), real, m0, steps=map_steps, kind="l1")
    return Pools(z=z, real=real, h=infer(D.encode, real, modules=(D,)), z_inv=z_inv, inv_err=err, m_inv=m_inv,
                 map_err=map_err)


def frames(method: str, G, D, pools: Pools, a: int, b: int, ts) -> torch.Tensor:
    """Return the faces at positions ts (floats in [0, 1]) from endpoint a to b: (T, C, H, W) float CPU."""
    ts = [float(t) for t in ts]
    if method in ("latent lerp", "latent slerp"):
        fn = lerp if method == "latent lerp" else slerp
        return generate(G, torch.stack([fn(pools.z[a], pools.z[b], t) for t in ts]))
    if method == "inversion":
        return generate(G, torch.stack([lerp(pools.z_inv[a], pools.z_inv[b], t) for t in ts]))
    if method == "map inversion":
        return infer(G.from_map, torch.stack([lerp(pools.m_inv[a], pools.m_inv[b], t) for t in ts]), modules=(G,))
    if method == "D-autoencoder":
        return infer(D.decode, torch.stack([lerp(pools.h[a], pools.h[b], t) for t in ts]), modules=(D,))
    raise ValueError(f"method={method!r}: use one of {METHODS}")


def _with_ends(method: str, pools: Pools, a: int, b: int, imgs: torch.Tensor) -> torch.Tensor:
    """Put the two real faces outside the path for the real-face methods."""
    if method not in REAL_FACE_METHODS:
        return imgs
    return torch.cat([pools.real[a:a + 1].float(), imgs, pools.real[b:b + 1].float()])


def render_strip(method: str, G, D, pools: Pools, a: int, b: int, steps: int = 10) -> np.ndarray:
    """Return `steps` faces from a to b in one row (real faces at both ends for real-face methods)."""
    imgs = _with_ends(method, pools, a, b, frames(method, G, D, pools, a, b, torch.linspace(0, 1, steps)))
    return make_grid(imgs, nrow=len(imgs))


def render_interp(method: str, G, D, pools: Pools, a: int, b: int, t: float) -> np.ndarray:
    """Return the slider picture: [start, face at t, end] (with the real faces outside for real-face
    methods): uint8 (H, W, 3)."""
    imgs = _with_ends(method, pools, a, b, frames(method, G, D, pools, a, b, [0.0, t, 1.0]))
    return make_grid(imgs, nrow=len(imgs))


def endpoint_psnr(G, D, pools: Pools) -> dict:
    """Return {method: PSNR (dB) of the path's end faces against the real photos} for the real-face
    methods: D(x) for 'D-autoencoder', G(z_inv) for 'inversion', G from m_inv for 'map inversion'
    (22 dB and up reads as the photo)."""
    ends = {"D-autoencoder": infer(D.decode, pools.h, modules=(D,)), "inversion": generate(G, pools.z_inv),
            "map inversion": infer(G.from_map, pools.m_inv, modules=(G,))}
    return {m: psnr(ends[m].clamp(-1, 1), pools.real.float()) for m in REAL_FACE_METHODS}


def crossfade_psnr(G, D, pools: Pools, pairs: list[tuple[int, int]]) -> dict:
    """Return {method: PSNR (dB) of each path's midpoint against the pixel average of its two ends},
    for the real-face methods: the higher, the more the path is a mere cross-fade of the two faces
    (a blend of two photos is not a face between them)."""
    out = {}
    for m in REAL_FACE_METHODS:
        paths = [frames(m, G, D, pools, a, b, [0.0, 0.5, 1.0]) for a, b in pairs]
        mids = torch.stack([p[1] for p in paths]).clamp(-1, 1)
        blends = torch.stack([(p[0] + p[2]) / 2 for p in paths]).clamp(-1, 1)
        out[m] = psnr(mids, blends)
    return out


def smoothness_by_method(oracle, G, D, pools: Pools, pairs: list[tuple[int, int]], steps: int = 16) -> dict:
    """Return {method: mean interp_smoothness over pairs} for every method, `steps` frames each."""
    ts = torch.linspace(0, 1, steps)
    return {m: mean_interp_smoothness(oracle, [frames(m, G, D, pools, a, b, ts) for a, b in pairs]) for m in METHODS}


def interpolation_explorer(G, D, pools: Pools, upscale: int = 5, seed: int = 0):
    """Return the widget: method switch, endpoint pickers, position slider, 'new pair' button,
    the picture and a read-out."""
    import ipywidgets as W

    n = len(pools)
    controls = {"method": W.ToggleButtons(options=list(METHODS), value="latent slerp", description="method"),
                "a": W.IntSlider(value=0, min=0, max=n - 1, description="from"),
                "b": W.IntSlider(value=1, min=0, max=n - 1, description="to"),
                "t": W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="position")}
    rng = np.random.default_rng(seed)

    def render(v, _changed):
        ends = "real faces" if v["method"] in REAL_FACE_METHODS else "latents"
        text = f"{v['method']}: {ends} #{v['a']} &rarr; #{v['b']}, position <b>{v['t']:.2f}</b>"
        return render_interp(v["method"], G, D, pools, v["a"], v["b"], v["t"]), text

    def new_pair(box):
        i, j = rng.choice(n, size=2, replace=False)
        with box.controls["b"].hold_trait_notifications():
            box.controls["a"].value, box.controls["b"].value = int(i), int(j)

    return picture_view(controls, render, upscale, buttons={"new pair": new_pair})


def training_figure(state, floor: float | None = None):
    """Draw L(x), L(G(z)), M_global and k_t against steps, and the per-epoch FD; return the figure."""
    return _figure({"state": state, "keys": ["m_global", "l_real", "l_fake"], "title": "convergence M_global"},
                   {"state": state, "keys": ["k"], "title": "control variable k_t", "window": 1},
                   {"state": state, "keys": ["fd_oracle"], "per": "epoch", "floor": floor, "log": True,
                    "title": "fd_oracle per epoch (validation)"})
