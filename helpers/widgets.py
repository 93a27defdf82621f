"""Sliders: pure render functions (tensors in, picture out) and thin ipywidgets shells around them.

Tests call the render functions directly, the same ones the sliders call, so a slider whose
picture does not change is caught without a browser.
"""
from __future__ import annotations

import io

import numpy as np
import torch

from .latent import generate, lerp, slerp
from .viz import make_grid, png_bytes


def render_walk(G, z_a: torch.Tensor, z_b: torch.Tensor, t: float, method: str = "slerp") -> np.ndarray:
    """Return the face at position t in [0, 1] between latents z_a and z_b: uint8 (H, W, 3)."""
    z = (slerp if method == "slerp" else lerp)(z_a, z_b, float(t))
    return make_grid(generate(G, z[None]), nrow=1, padding=0)


def render_strip(G, z_a: torch.Tensor, z_b: torch.Tensor, steps: int = 10, method: str = "slerp") -> np.ndarray:
    """Return `steps` faces from z_a to z_b in one row: uint8 picture."""
    from .latent import interpolate

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


def render_epoch(samples: list, epoch: int) -> np.ndarray:
    """Return the fixed-noise grid saved after `epoch` (1-based): uint8 picture."""
    return make_grid(samples[epoch - 1], nrow=8)


def _image_widget(array: np.ndarray, upscale: int):
    import ipywidgets as W

    return W.Image(value=png_bytes(array, upscale), format="png")


def epoch_viewer(samples: list, upscale: int = 3):
    """Return a slider over epochs showing each epoch's fixed-noise samples."""
    import ipywidgets as W

    slider = W.IntSlider(value=len(samples), min=1, max=len(samples), description="epoch")
    image = _image_widget(render_epoch(samples, len(samples)), upscale)
    slider.observe(lambda ch: setattr(image, "value", png_bytes(render_epoch(samples, ch["new"]), upscale)), "value")
    return W.VBox([slider, image])


def latent_walk(G, z_pool: torch.Tensor, upscale: int = 6):
    """Return the latent-walk widget: two endpoint pickers, a position slider, lerp/slerp switch."""
    import ipywidgets as W

    a = W.IntSlider(value=0, min=0, max=len(z_pool) - 1, description="from")
    b = W.IntSlider(value=1, min=0, max=len(z_pool) - 1, description="to")
    t = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="position")
    method = W.ToggleButtons(options=["slerp", "lerp"], value="slerp")
    image = _image_widget(render_walk(G, z_pool[0], z_pool[1], 0.5), upscale)

    def redraw(_=None):
        image.value = png_bytes(render_walk(G, z_pool[a.value], z_pool[b.value], t.value, method.value), upscale)

    for w in (a, b, t, method):
        w.observe(redraw, "value")
    return W.HBox([W.VBox([a, b, t, method]), image])


def attribute_sliders(G, oracle, z_pool: torch.Tensor, directions: dict, span: float = 4.0, upscale: int = 6):
    """Return one slider per attribute direction, a sample picker, the face and the oracle read-out."""
    import ipywidgets as W

    names = [n for n in directions if not n.startswith("_")]
    pick = W.IntSlider(value=0, min=0, max=len(z_pool) - 1, description="sample")
    sliders = {n: W.FloatSlider(value=0.0, min=-span, max=span, step=0.25, description=n[:14]) for n in names}
    reset = W.Button(description="reset")
    image = _image_widget(render_edit(G, oracle, z_pool[0], directions, {n: 0.0 for n in names})[0], upscale)
    readout = W.HTML()

    def redraw(_=None):
        img, probs = render_edit(G, oracle, z_pool[pick.value], directions, {n: s.value for n, s in sliders.items()})
        image.value = png_bytes(img, upscale)
        readout.value = "<br>".join(f"{n}: <b>{p:.2f}</b>" for n, p in probs.items())

    def zero(_):
        for s in sliders.values():
            s.value = 0.0

    for w in (pick, *sliders.values()):
        w.observe(redraw, "value")
    reset.on_click(zero)
    redraw()
    return W.HBox([W.VBox([pick, *sliders.values(), reset]), image, readout])


def render_edit_table(G, oracle, z: torch.Tensor, directions: dict, attrs: list[str],
                      values=(-3, -2, -1, 0, 1, 2, 3)) -> tuple[np.ndarray, np.ndarray]:
    """Return (picture with one row per attribute and one column per step, oracle P(attr) (A, V)).

    z: (z_dim,) the face every row starts from; each row moves it along one attribute direction.
    """
    rows, probs = [], np.zeros((len(attrs), len(values)))
    for i, name in enumerate(attrs):
        zs = torch.stack([z + float(v) * directions[name] for v in values])
        imgs = generate(G, zs)
        probs[i] = oracle.predict(imgs)[:, oracle.attr_names.index(name)].numpy()
        rows.append(imgs)
    return make_grid(torch.cat(rows), nrow=len(values)), probs


def decode_upload(data: bytes, size: int, channels: int = 3) -> torch.Tensor:
    """Return an uploaded picture as (channels, size, size) float in [-1, 1].

    data: the file's bytes (JPEG, PNG, ...). The centred square of the short side is cut out and
    resized (Lanczos), as the data cache does for CelebA, so a portrait photo lands where the
    models' faces are; they only know faces aligned like their training data. Raises ValueError
    for empty or unreadable bytes. Used by the upload boxes of notebooks 02 and 03.
    """
    from PIL import Image, UnidentifiedImageError

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
    arr = np.asarray(img, dtype=np.float32).reshape(size, size, channels)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0  # (C, size, size)


def upload_bytes(value) -> bytes | None:
    """Return the first file's bytes from a W.FileUpload value (ipywidgets 8 tuple or 7 dict), or None."""
    if not value:
        return None
    first = value[0] if isinstance(value, (tuple, list)) else next(iter(value.values()))
    return bytes(first["content"])
