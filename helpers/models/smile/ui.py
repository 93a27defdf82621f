"""The smile converter's pictures and sliders (notebook 03): pure render functions and the shell.

Tests call the same functions the widget calls.
"""
from __future__ import annotations

import numpy as np
import torch

from ...core.modules import infer
from ...gan import residual_edit
from ...ui.viz import make_grid
from ...ui.widgets import picture_view, read_upload, upload_bytes
from .convert import convert, encode, switch_class


def encode_one(G, E, x: torch.Tensor, c: torch.Tensor | None = None, latent_steps: int = 0,
               latent_lr: float = 0.05, latent_prior: float = 1e-3, map_steps: int = 0,
               map_lr: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (m (M,), class (A,)) for one image x (C, H, W) in [-1, 1]: G's first map of the face.

    c: its class (a label); None reads it from E's class head (thresholded at 0.5). latent_steps
    refines E's guess against G, map_steps then the first map itself (convert).
    """
    if c is None:
        c = (encode(E, x[None])[1][0] > 0.5).float()
    c = torch.as_tensor(c).float().reshape(1, -1)
    out = convert(G, E, x[None], c, c, latent_steps, latent_lr, latent_prior, map_steps=map_steps, map_lr=map_lr)
    return out["m"][0], c[0]


def _draw(G, m: torch.Tensor, c: torch.Tensor, amounts) -> torch.Tensor:
    """Return the face of first map m (M,) with class c (A,) switched to each amount: (T, C, H, W)."""
    target = torch.tensor([float(a) for a in amounts])[:, None].repeat(1, G.n_classes)
    return switch_class(G, m[None].repeat(len(target), 1), c.float().reshape(1, -1).repeat(len(target), 1), target)


def render_conversion(G, x: torch.Tensor, m: torch.Tensor, c: torch.Tensor, amount: float, oracle=None,
                      attr: str = "Smiling", residual: bool = False,
                      strength: float = 1.0) -> tuple[np.ndarray, dict]:
    """Return (picture [x | converted] side by side as uint8 (H, W + pad, 3), read-out).

    x: (C, H, W) in [-1, 1] the input face; m: (M,) its first map (encode_one) and c (A,) its class;
    amount: the class value to draw (0 = no smile, 1 = smile; values outside [0, 1] exaggerate).
    residual: the right picture is x + strength * (converted - G's redraw of x), the photo with
    only what the class switch changes. The read-out holds the oracle's P(attr) before and after when
    an oracle is given.
    """
    out = _draw(G, m, c, [amount])[0]
    if residual:
        recon = infer(G.from_map, m[None], modules=(G,))
        out = residual_edit(x[None].float().cpu(), recon, out[None], strength)[0]
    pair = torch.stack([x.float().cpu(), out])  # (2, C, H, W)
    readout = {"amount": float(amount)}
    if oracle is not None and attr in oracle.attr_names:
        p = oracle.predict(pair)[:, oracle.attr_names.index(attr)]
        readout.update(before=float(p[0]), after=float(p[1]))
    return make_grid(pair, nrow=2, padding=2), readout


def render_amount_strip(G, m: torch.Tensor, c: torch.Tensor,
                        amounts=(-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)) -> np.ndarray:
    """Return the face of first map m (M,), class c (A,), drawn at several class values in a row: uint8."""
    return make_grid(_draw(G, m, c, amounts), nrow=len(amounts))


def _readout_html(model: str, source: str, readout: dict, attr: str) -> str:
    text = f"<b>{model}</b>: {source}<br>{attr} given to G: <b>{readout['amount']:.2f}</b>"
    if "before" in readout:
        text += f"<br>oracle P({attr}) before: <b>{readout['before']:.2f}</b>, after: <b>{readout['after']:.2f}</b>"
    return text


def converter(models: dict, images: torch.Tensor, classes: torch.Tensor, oracle=None, attr: str = "Smiling",
              latent_steps: int = 0, latent_lr: float = 0.05, latent_prior: float = 1e-3, upscale: int = 4,
              residual_strength: float = 1.0, map_steps: int = 0, map_lr: float = 0.01):
    """Return the converter widget: model switch, image picker, smile-amount slider, residual switch
    (render_conversion's `residual`), upload with its alignment switch (on: the face is put where
    CelebA's are, helpers.data.align), pair, read-out.

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
                "upload": W.FileUpload(accept="image/*", multiple=False, description="your image"),
                # after the upload: switching it re-reads the photo just uploaded
                "align": W.Checkbox(value=True, description="align my photo like CelebA (dlib landmarks)")}
    state = {"source": "test", "x": images[0], "c": classes[0], "data": None, "note": ""}
    cache: dict = {}

    def code(model):
        key = (model, state["source"], controls["pick"].value)
        if key not in cache:  # encoding (with latent refinement) once per model and face
            G, E = models[model]
            c = state["c"] if state["source"] == "test" else None
            cache[key] = encode_one(G, E, state["x"], c, latent_steps, latent_lr, latent_prior, map_steps, map_lr)
        return cache[key]

    def render(v, changed):
        if changed == "upload" or (changed == "align" and state["data"] is not None):
            data = upload_bytes(v["upload"]) if changed == "upload" else state["data"]
            state["data"] = data  # kept (even when it has no face) so the switch can read it again
            if data:
                x, note = read_upload(data, images.shape[-1], images.shape[1], v["align"])
                for k in [k for k in cache if k[1] == "upload"]:
                    cache.pop(k)
                state.update(source="upload", x=x, c=None, note=note)
        elif changed == "pick":
            state.update(source="test", x=images[v["pick"]], c=classes[v["pick"]], data=None)
        m, c = code(v["model"])
        pic, read = render_conversion(models[v["model"]][0], state["x"], m, c, v["amount"], oracle, attr,
                                      v["residual"], residual_strength)
        source = (f"test image {v['pick']} (label {attr}={int(c[0])})" if state["source"] == "test"
                  else f"your image, {state['note']} (E reads {attr}={int(c[0])})")
        return pic, _readout_html(v["model"], source, read, attr)

    box = picture_view(controls, render, upscale)

    def flip_to_other_class(change):  # a new face starts converted: amount = 1 - its class
        _m, c = code(controls["model"].value)
        if controls["amount"].value != 1.0 - float(c[0]):
            controls["amount"].value = 1.0 - float(c[0])

    controls["pick"].observe(flip_to_other_class, "value")
    controls["upload"].observe(flip_to_other_class, "value")
    controls["align"].observe(flip_to_other_class, "value")
    return box
