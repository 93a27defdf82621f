"""The smile converter's pictures and sliders (notebook 03): pure render functions and the shell.

Tests call the same functions the widget calls.
"""
from __future__ import annotations

import numpy as np
import torch

from ...gan import generate, invert, residual_edit
from ...ui.viz import make_grid
from ...ui.widgets import decode_upload, picture_view, upload_bytes
from .convert import encode


def encode_one(G, E, x: torch.Tensor, c: torch.Tensor | None = None, latent_steps: int = 0,
               latent_lr: float = 0.05, latent_prior: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (z (z_dim,), class (A,)) for one image x (C, H, W) in [-1, 1].

    c: its class (a label); None reads it from E's class head (thresholded at 0.5). latent_steps
    refines E's guess against G (helpers.gan.invert).
    """
    z0, p = encode(E, x[None])
    c = (p[0] > 0.5).float() if c is None else torch.as_tensor(c).float().reshape(-1)
    if latent_steps <= 0:
        return z0[0], c
    z, _ = invert(G, x[None], z0, c[None], steps=latent_steps, lr=latent_lr, kind="l2", prior=latent_prior)
    return z[0], c


def render_conversion(G, x: torch.Tensor, z: torch.Tensor, amount: float, oracle=None,
                      attr: str = "Smiling", own: torch.Tensor | None = None,
                      strength: float = 1.0) -> tuple[np.ndarray, dict]:
    """Return (picture [x | G(z, amount)] side by side as uint8 (H, W + pad, 3), read-out).

    x: (C, H, W) in [-1, 1] the input face; z: (z_dim,) its code; amount: the class value given
    to G (0 = no smile, 1 = smile; values outside [0, 1] exaggerate). own: the face's class (A,):
    then the right picture is the residual x + strength * (G(z, amount) - G(z, own)), the photo with
    only what the class switch changes. The read-out holds the oracle's P(attr) before and after when an
    oracle is given.
    """
    out = generate(G, z[None], torch.full((1, G.n_classes), float(amount)))  # (1, C, H, W)
    if own is not None:
        out = residual_edit(x[None].float().cpu(), generate(G, z[None], own.float().reshape(1, -1)), out, strength)
    pair = torch.stack([x.float().cpu(), out[0]])  # (2, C, H, W)
    readout = {"amount": float(amount)}
    if oracle is not None and attr in oracle.attr_names:
        p = oracle.predict(pair)[:, oracle.attr_names.index(attr)]
        readout.update(before=float(p[0]), after=float(p[1]))
    return make_grid(pair, nrow=2, padding=2), readout


def render_amount_strip(G, z: torch.Tensor, amounts=(-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)) -> np.ndarray:
    """Return one face rendered at several class values in a row: uint8 picture."""
    c = torch.tensor(amounts, dtype=torch.float32)[:, None].repeat(1, G.n_classes)
    return make_grid(generate(G, z[None].repeat(len(amounts), 1), c), nrow=len(amounts))


def _readout_html(model: str, source: str, readout: dict, attr: str) -> str:
    text = f"<b>{model}</b>: {source}<br>{attr} given to G: <b>{readout['amount']:.2f}</b>"
    if "before" in readout:
        text += f"<br>oracle P({attr}) before: <b>{readout['before']:.2f}</b>, after: <b>{readout['after']:.2f}</b>"
    return text


def converter(models: dict, images: torch.Tensor, classes: torch.Tensor, oracle=None, attr: str = "Smiling",
              latent_steps: int = 0, latent_lr: float = 0.05, latent_prior: float = 1e-3, upscale: int = 4,
              residual_strength: float = 1.0):
    """Return the converter widget: model switch, image picker, smile-amount slider, residual switch
    (render_conversion's `own`), upload, pair, read-out.

    models: {'ACGAN': (G, E), 'WACGAN': (G, E)}; images: (N, C, H, W) in [-1, 1] (the test split);
    classes: (N, A) their labels. Moving the picker flips the smile of the new face (amount = 1 - c).
    """
    import ipywidgets as W

    names = list(models)
    controls = {"model": W.ToggleButtons(options=names, value=names[0], description="model"),
                "pick": W.IntSlider(value=0, min=0, max=len(images) - 1, description="test image"),
                "amount": W.FloatSlider(value=1.0 - float(classes[0, 0]), min=-0.5, max=1.5, step=0.05,
                                        description="smile"),
                "residual": W.Checkbox(value=False, description="keep the photo's detail (residual)"),
                "upload": W.FileUpload(accept="image/*", multiple=False, description="your image")}
    state = {"source": "test", "x": images[0], "c": classes[0]}
    cache: dict = {}

    def code(model):
        key = (model, state["source"], controls["pick"].value)
        if key not in cache:  # encoding (with latent refinement) once per model and face
            G, E = models[model]
            c = state["c"] if state["source"] == "test" else None
            cache[key] = encode_one(G, E, state["x"], c, latent_steps, latent_lr, latent_prior)
        return cache[key]

    def render(v, changed):
        if changed == "upload":
            data = upload_bytes(v["upload"])
            x = decode_upload(data, images.shape[-1], images.shape[1]) if data else None
            if x is not None:
                for k in [k for k in cache if k[1] == "upload"]:
                    cache.pop(k)
                state.update(source="upload", x=x, c=None)
        elif changed == "pick":
            state.update(source="test", x=images[v["pick"]], c=classes[v["pick"]])
        z, c = code(v["model"])
        pic, read = render_conversion(models[v["model"]][0], state["x"], z, v["amount"], oracle, attr,
                                      c if v["residual"] else None, residual_strength)
        source = (f"test image {v['pick']} (label {attr}={int(c[0])})" if state["source"] == "test"
                  else f"your image (E reads {attr}={int(c[0])})")
        return pic, _readout_html(v["model"], source, read, attr)

    box = picture_view(controls, render, upscale)

    def flip_to_other_class(change):  # a new face starts converted: amount = 1 - its class
        _z, c = code(controls["model"].value)
        if controls["amount"].value != 1.0 - float(c[0]):
            controls["amount"].value = 1.0 - float(c[0])

    controls["pick"].observe(flip_to_other_class, "value")
    controls["upload"].observe(flip_to_other_class, "value")
    return box
