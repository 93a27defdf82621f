"""DCGAN's pictures and sliders (notebook 01): the latent walk, attribute edits, the training figure.

Pure render functions (tensors in, uint8 picture out) that tests call, wrapped by
helpers.ui.widgets.picture_view.
"""
from __future__ import annotations

import numpy as np
import torch

from ...gan import generate, interpolate, lerp, slerp
from ...ui.viz import make_grid, training_figure as _figure
from ...ui.widgets import picture_view, readout_html


def render_walk(G, z_a: torch.Tensor, z_b: torch.Tensor, t: float, method: str = "slerp") -> np.ndarray:
    """Return the face at position t in [0, 1] between latents z_a and z_b: uint8 (H, W, 3)."""
    z = (slerp if method == "slerp" else lerp)(z_a, z_b, float(t))
    return make_grid(generate(G, z[None]), nrow=1, padding=0)


def render_strip(G, z_a: torch.Tensor, z_b: torch.Tensor, steps: int = 10, method: str = "slerp") -> np.ndarray:
    """Return `steps` faces from z_a to z_b in one row: uint8 picture."""
    return make_grid(generate(G, interpolate(z_a, z_b, steps, method)), nrow=steps)


def render_edit(G, oracle, z: torch.Tensor, directions: dict, values: dict) -> tuple[np.ndarray, dict]:
    """Return (face after moving z along each named direction by its value, oracle read-out).

    z: (z_dim,); directions: {attr: (z_dim,)}; values: {attr: step in units of the direction}.
    The read-out is {attr: probability} for the attributes that have directions.
    """
    moved = z.clone()
    for name, v in values.items():
        moved = moved + float(v) * directions[name]
    img = generate(G, moved[None])
    probs = oracle.predict(img)[0]
    readout = {name: float(probs[oracle.attr_names.index(name)]) for name in values}
    return make_grid(img, nrow=1, padding=0), readout


def render_edit_table(G, oracle, z: torch.Tensor, directions: dict, attrs: list[str],
                      values=(-3, -2, -1, 0, 1, 2, 3)) -> tuple[np.ndarray, np.ndarray]:
    """Return (picture with one row per attribute and one column per step, oracle P(attr) (A, V)).

    z: (z_dim,) the face every row starts from; each row moves it along one attribute direction.
    """
    rows, probs = [], np.zeros((len(attrs), len(values)))
    for i, name in enumerate(attrs):
        imgs = generate(G, torch.stack([z + float(v) * directions[name] for v in values]))
        probs[i] = oracle.predict(imgs)[:, oracle.attr_names.index(name)].numpy()
        rows.append(imgs)
    return make_grid(torch.cat(rows), nrow=len(values)), probs


def latent_walk(G, z_pool: torch.Tensor, upscale: int = 6):
    """Return the latent-walk widget: two endpoint pickers, a position slider, a lerp/slerp switch."""
    import ipywidgets as W

    controls = {"a": W.IntSlider(value=0, min=0, max=len(z_pool) - 1, description="from"),
                "b": W.IntSlider(value=1, min=0, max=len(z_pool) - 1, description="to"),
                "t": W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="position"),
                "method": W.ToggleButtons(options=["slerp", "lerp"], value="slerp", description="path")}

    def render(v, _changed):
        return render_walk(G, z_pool[v["a"]], z_pool[v["b"]], v["t"], v["method"]), ""

    return picture_view(controls, render, upscale)


def attribute_sliders(G, oracle, z_pool: torch.Tensor, directions: dict, span: float = 4.0, upscale: int = 6):
    """Return one slider per attribute direction, a sample picker, a reset button, the face and the
    oracle's read-out of it."""
    import ipywidgets as W

    names = [n for n in directions if not n.startswith("_")]
    controls = {"sample": W.IntSlider(value=0, min=0, max=len(z_pool) - 1, description="sample"),
                **{n: W.FloatSlider(value=0.0, min=-span, max=span, step=0.25, description=n[:14]) for n in names}}

    def render(v, _changed):
        img, probs = render_edit(G, oracle, z_pool[v["sample"]], directions, {n: v[n] for n in names})
        return img, readout_html("oracle P(attribute)", probs)

    def reset(box):
        for n in names:
            box.controls[n].value = 0.0

    return picture_view(controls, render, upscale, buttons={"reset": reset})


def training_figure(state, floor: float | None = None):
    """Draw the losses and the per-epoch validation FD with its floor; return the figure."""
    return _figure({"state": state, "keys": ["d_loss", "g_loss"]},
                   {"state": state, "keys": ["fd_oracle"], "per": "epoch", "floor": floor, "log": True,
                    "title": "fd_oracle per epoch (validation)"})
