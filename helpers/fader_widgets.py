"""Fader Networks pictures and sliders (notebooks/02_fadernet.ipynb): the attribute sweep figure,
the ablation chart, decoding a user's own image, and the fader sliders.

Pure render functions (tensors or bytes in, uint8 picture / read-out out) that the tests call,
wrapped by thin ipywidgets shells, as in helpers.widgets. Lample et al. 2017, figures 1 and 4.
"""
from __future__ import annotations

import numpy as np
import torch

from .data.faces import to_range
from .fader_train import decode, encode
from .viz import make_grid, png_bytes
from .widgets import decode_upload, upload_bytes

SWEEP = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)  # attribute values the figure slides through


def render_sweep(nets: dict, x: torch.Tensor, y: torch.Tensor, j: int, values=SWEEP) -> np.ndarray:
    """Return the reproduction figure for attribute j: uint8 picture, one row per face, columns
    original | reconstruction | decoded with y_j set to each of `values` (others kept).

    x: (N, C, S, S) in [-1, 1]; y: (N, n_attr) the faces' true attributes.
    """
    z = encode(nets["E"], x)
    cols = [x.float().cpu(), decode(nets["G"], z, y)]
    for v in values:
        yv = y.clone().float()
        yv[:, j] = float(v)
        cols.append(decode(nets["G"], z, yv))
    grid = torch.stack(cols, dim=1).flatten(0, 1)  # (N * (2 + V), C, S, S), row-major per face
    return make_grid(grid, nrow=len(cols))


def render_fader(nets: dict, x: torch.Tensor, values, oracle=None, attr_names=None) -> tuple[np.ndarray, dict]:
    """Return (picture: the face | its edit with attributes = values, oracle read-out of the edit).

    x: (1, C, S, S) or (C, S, S) in [-1, 1]; values: n_attr numbers (any reals, e.g. -1 .. 2).
    The read-out is {attr: P(attr)} for attr_names (empty without an oracle).
    """
    x = x[None] if x.dim() == 3 else x
    y = torch.as_tensor([list(values)], dtype=torch.float32)
    edited = decode(nets["G"], encode(nets["E"], x), y)
    readout = {}
    if oracle is not None and attr_names:
        probs = oracle.predict(edited)[0]
        readout = {n: float(probs[oracle.attr_names.index(n)]) for n in attr_names if n in oracle.attr_names}
    return make_grid(torch.cat([x.float().cpu(), edited]), nrow=2), readout


def render_upload(nets: dict, data: bytes, values, size: int, oracle=None, attr_names=None):
    """Return render_fader's (picture, read-out) for an uploaded image's bytes (see decode_upload)."""
    return render_fader(nets, decode_upload(data, size)[None], values, oracle, attr_names)


def readout_html(readout: dict, source: str) -> str:
    """Return the HTML read-out shown beside the face."""
    rows = "<br>".join(f"{n}: <b>{p:.2f}</b>" for n, p in readout.items())
    return f"<b>{source}</b><br>oracle P(attribute) of the edit:<br>{rows}"


def fader_sliders(nets: dict, faces, oracle=None, span=(-1.0, 2.0), upscale: int = 6):
    """Return the fader widget: an image picker over `faces` (a FaceSet holding the model's
    attributes), one slider per attribute (span, default -1 .. 2), a reset button, an upload box
    for your own (aligned) face, the face | edit picture and the oracle's read-out.
    """
    import ipywidgets as W

    names, size = list(faces.attr_names), faces.image_size
    pick = W.IntSlider(value=0, min=0, max=len(faces) - 1, description="test face")
    sliders = [W.FloatSlider(value=float(faces.attrs[0, j]), min=span[0], max=span[1], step=0.1,
                             description=n[:14], continuous_update=False) for j, n in enumerate(names)]
    reset = W.Button(description="reset to the face's own attributes", layout=W.Layout(width="260px"))
    upload = W.FileUpload(accept="image/*", multiple=False, description="your face")
    note = W.HTML("<i>Your own image is centre-cropped and resized to "
                  f"{size}x{size}; it must be a face aligned like the training data (centred, upright, "
                  "filling the square), or the encoder sees something it never learnt.</i>")
    image, readout = W.Image(format="png"), W.HTML()
    source = {"upload": None}

    def redraw(_=None):
        values = [s.value for s in sliders]
        try:
            if source["upload"] is not None:
                pic, probs = render_upload(nets, source["upload"], values, size, oracle, names)
                title = "your image"
            else:
                x = to_range(faces.images[pick.value:pick.value + 1])
                pic, probs = render_fader(nets, x, values, oracle, names)
                title = f"test face {pick.value}"
        except ValueError as err:
            source["upload"] = None
            readout.value = f"<b style='color:#b00'>{err}</b>"
            return
        image.value = png_bytes(pic, upscale)
        readout.value = readout_html(probs, title)

    def on_pick(_):
        source["upload"] = None
        redraw()

    def on_upload(change):
        source["upload"] = upload_bytes(change["new"])
        redraw()

    def to_own(_):
        for j, s in enumerate(sliders):
            s.value = float(faces.attrs[pick.value, j])

    pick.observe(on_pick, "value")
    for s in sliders:
        s.observe(redraw, "value")
    upload.observe(on_upload, "value")
    reset.on_click(to_own)
    redraw()
    box = W.HBox([W.VBox([pick, *sliders, reset, upload, note], layout=W.Layout(width="420px")), image, readout])
    box.controls = {"pick": pick, "sliders": sliders, "upload": upload, "image": image, "readout": readout,
                    "redraw": redraw, "source": source}
    return box


def ablation_chart(results: dict, ax=None, title: str = "swap accuracy on the test faces (oracle)"):
    """Draw grouped bars: one group per attribute (+ mean), one bar per model; return the axes.

    results: {model label: {attr: swap accuracy, ..., 'mean': ...}}.
    """
    import matplotlib.pyplot as plt

    labels = list(next(iter(results.values())))
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3))
    width = 0.8 / len(results)
    for i, (model, acc) in enumerate(results.items()):
        xs = np.arange(len(labels)) + (i - (len(results) - 1) / 2) * width
        bars = ax.bar(xs, [acc[k] for k in labels], width, label=model)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(np.arange(len(labels)), labels)
    ax.set_ylim(0, 1.1)
    ax.axhline(0.9, color="gray", ls=":", lw=1)
    ax.set_ylabel("swap accuracy (oracle)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def training_figure(state):
    """Draw the training losses and the per-epoch validation numbers (swap accuracy, latent
    discriminator accuracy, reconstruction PSNR); return the figure."""
    import matplotlib.pyplot as plt

    from .viz import plot_history

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    plot_history(state.history, keys=["rec_loss", "d_loss", "adv_loss"], ax=axes[0])
    axes[0].set_yscale("log")
    em = state.epoch_metrics
    if em:
        ep = [m["epoch"] for m in em]
        for key in ("swap_accuracy", "latent_disc_accuracy"):
            axes[1].plot(ep, [m[key] for m in em], marker="o", label=f"{key} (valid)")
        axes[1].set_ylim(0, 1.05)
        axes[1].set_xlabel("epoch")
        ax2 = axes[1].twinx()
        ax2.plot(ep, [m["recon_psnr"] for m in em], color="tab:green", ls="--", label="recon PSNR (dB)")
        ax2.set_ylabel("PSNR (dB)")
        axes[1].legend(fontsize=8, loc="lower left")
        ax2.legend(fontsize=8, loc="lower right")
    axes[1].set_title("validation, per epoch")
    fig.tight_layout()
    return fig
