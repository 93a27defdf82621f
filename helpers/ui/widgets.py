"""Sliders: pure render functions (tensors in, picture out) wrapped by one thin ipywidgets shell.

Every model's ui module writes a render function and hands it, with its controls, to
`picture_view`; tests call the same render functions and drive the same shell, so a slider whose
picture does not change is caught without a browser.
"""
from __future__ import annotations

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


def kept_epoch(samples: list, epoch: int) -> int:
    """Return the epoch (1-based) whose grid stands for `epoch`: itself, or the nearest earlier one kept
    (a published set keeps a few epochs' grids: published.thin_samples), else the first kept."""
    kept = [e for e in range(1, len(samples) + 1) if samples[e - 1] is not None]
    return max((e for e in kept if e <= epoch), default=kept[0])


def render_epoch(samples: list, epoch: int) -> np.ndarray:
    """Return the fixed-input grid saved after `epoch` (1-based), or after the epoch kept_epoch names
    where a published set did not keep this one: uint8 picture."""
    return make_grid(samples[kept_epoch(samples, epoch) - 1], nrow=8)


def epoch_viewer(samples: list, upscale: int = 3, what: str = "epoch"):
    """Return a slider over epochs showing each epoch's fixed-input samples."""
    import ipywidgets as W

    if not samples:
        return W.HTML(f"no {what} finished within the time budget: no samples yet")
    slider = W.IntSlider(value=len(samples), min=1, max=len(samples), description=what)
    n_kept = sum(s is not None for s in samples)

    def render(v, _changed):
        shown = kept_epoch(samples, v["epoch"])
        note = "" if shown == v["epoch"] else (f"{what} {v['epoch']}: not kept (the published set keeps {n_kept} "
                                                f"of {len(samples)}); showing {what} {shown}")
        return render_epoch(samples, v["epoch"]), note

    return picture_view({"epoch": slider}, render, upscale)


def read_upload(data: bytes, size: int, channels: int = 3, align: bool = True) -> tuple[torch.Tensor, str]:
    """Return (an uploaded photo as (channels, size, size) float in [-1, 1], what was done to it).

    data: the file's bytes (JPEG, PNG, ...). align=True: dlib finds the face and one similarity
    transform puts it where CelebA's faces are (helpers.data.align, 178x218); either way the centred
    square is then cut out and resized (LANCZOS) exactly as the data cache does for CelebA
    (cache.crop_resize), since the models only know faces aligned like their training data.
    Raises ValueError saying what to do for an empty or unreadable file and, when aligning, for a
    photo without a face or with one too small. Used by the upload boxes of notebooks 02 and 03.
    """
    from ..data import align as aligner
    from ..data.cache import crop_resize
    from ..data.transforms import scale, to_unit

    img, note = aligner.read_image(data), "not aligned: the centre square of the photo"
    if align:
        result = aligner.align_image(img)
        if not result.found:
            raise ValueError(result.message)
        img, note = result.image, result.message
    img = crop_resize(img.convert("RGB" if channels == 3 else "L"), size, None)
    arr = np.asarray(img, dtype=np.uint8).reshape(size, size, channels)
    return scale(to_unit(torch.from_numpy(arr.copy()).permute(2, 0, 1))), note  # (C, size, size)


def decode_upload(data: bytes, size: int, channels: int = 3, align: bool = True) -> torch.Tensor:
    """Return an uploaded photo as (channels, size, size) float in [-1, 1]: read_upload's picture."""
    return read_upload(data, size, channels, align)[0]


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
