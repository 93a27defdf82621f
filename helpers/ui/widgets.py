"""Sliders: pure render functions (tensors in, picture out) wrapped by one thin ipywidgets shell.

Every model's ui module writes a render function and hands it, with its controls, to
`picture_view`; tests call the same render functions and drive the same shell, so a slider whose
picture does not change is caught without a browser.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
import torch

from .viz import make_grid, png_bytes


def picture_view(controls: dict, render: Callable, upscale: int = 4, buttons: dict | None = None,
                 note: str = "", side: str = "left"):
    """Return a box: the controls, a picture and an HTML read-out, redrawn whenever a control moves.

    controls: {name: widget}; render(values, changed) -> (uint8 (H, W, 3) picture, read-out HTML),
    values = {name: widget.value}, changed = the name of the control that just moved (None at
    first). A ValueError from render shows its message in the read-out (bad upload, ...).
    buttons: {label: callback(box)} for actions (reset, new pair, resample). The box carries
    .controls, .buttons, .image, .readout and .redraw (what tests drive).
    """
    import ipywidgets as W

    image, readout = W.Image(format="png"), W.HTML()
    btns = {label: W.Button(description=label, layout=W.Layout(width="auto")) for label in (buttons or {})}
    column = [*controls.values(), *btns.values(), *([W.HTML(note)] if note else [])]
    left = W.VBox(column, layout=W.Layout(width="420px"))
    box = W.HBox([left, image, readout]) if side == "left" else W.VBox([W.HBox(column), image, readout])

    def redraw(changed=None):
        try:
            pic, text = render({k: w.value for k, w in controls.items()}, changed)
        except ValueError as err:
            readout.value = f"<b style='color:#b00'>{err}</b>"
            return
        image.value = png_bytes(pic, upscale)
        readout.value = text

    for name, w in controls.items():
        w.observe(lambda change, name=name: redraw(name), "value")
    for label, fn in (buttons or {}).items():
        btns[label].on_click(lambda _b, fn=fn: fn(box))
    box.controls, box.buttons, box.image, box.readout, box.redraw = controls, btns, image, readout, redraw
    redraw()
    return box


def render_epoch(samples: list, epoch: int) -> np.ndarray:
    """Return the fixed-input grid saved after `epoch` (1-based): uint8 picture."""
    return make_grid(samples[epoch - 1], nrow=8)


def epoch_viewer(samples: list, upscale: int = 3, what: str = "epoch"):
    """Return a slider over epochs showing each epoch's fixed-input samples."""
    import ipywidgets as W

    if not samples:
        return W.HTML(f"no {what} finished within the time budget: no samples yet")
    slider = W.IntSlider(value=len(samples), min=1, max=len(samples), description=what)
    return picture_view({"epoch": slider}, lambda v, _c: (render_epoch(samples, v["epoch"]), ""), upscale)


def decode_upload(data: bytes, size: int, channels: int = 3) -> torch.Tensor:
    """Return an uploaded picture as (channels, size, size) float in [-1, 1].

    data: the file's bytes (JPEG, PNG, ...). The centred square of the short side is cut out and
    resized (Lanczos), as the data cache does for CelebA, so a portrait photo lands where the
    models' faces are; they only know faces aligned like their training data. Raises ValueError
    for empty or unreadable bytes. Used by the upload boxes of notebooks 02 and 03.
    """
    from PIL import Image, UnidentifiedImageError

    from ..data.transforms import scale, to_unit

    if not data:
        raise ValueError("the upload is empty: choose a JPEG or PNG file")
    try:
        img = Image.open(io.BytesIO(bytes(data)))
        img.load()
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"could not read the upload as an image ({err}); use a JPEG or PNG file") from None
    img = img.convert("RGB" if channels == 3 else "L")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8).reshape(size, size, channels)
    return scale(to_unit(torch.from_numpy(arr.copy()).permute(2, 0, 1)))  # (C, size, size)


def upload_bytes(value) -> bytes | None:
    """Return the first file's bytes from a W.FileUpload value (ipywidgets 8 tuple or 7 dict), or None."""
    if not value:
        return None
    first = value[0] if isinstance(value, (tuple, list)) else next(iter(value.values()))
    return bytes(first["content"])


def readout_html(title: str, values: dict, what: str = "") -> str:
    """Return an HTML read-out: a bold title, then one 'name: value' line per entry."""
    rows = "<br>".join(f"{n}: <b>{v:.2f}</b>" if isinstance(v, float) else f"{n}: <b>{v}</b>"
                       for n, v in values.items())
    return f"<b>{title}</b><br>{what + '<br>' if what else ''}{rows}"
