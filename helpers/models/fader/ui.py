"""Fader Networks' pictures and sliders (notebook 02): the attribute sweep figure, the ablation
chart, decoding a user's own image, the fader sliders, the training figure.

Pure render functions (tensors or bytes in, uint8 picture / read-out out) that the tests call,
wrapped by helpers.ui.widgets.picture_view. Lample et al. 2017, figures 1 and 4.
"""
from __future__ import annotations

import numpy as np
import torch

from ...data.faces import to_range
from ...gan import residual_edit
from ...ui.viz import make_grid, training_figure as _figure
from ...ui.widgets import picture_view, read_upload, readout_html, upload_bytes
from .evaluate import codes, decode, encode

SWEEP = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)  # attribute values the figure slides through


def render_sweep(nets: dict, x: torch.Tensor, y: torch.Tensor, j: int, values=SWEEP, refine=(0,)) -> np.ndarray:
    """Return the reproduction figure for attribute j: uint8 picture, one row per face, columns
    original | reconstruction | decoded with y_j set to each of `values` (others kept).

    x: (N, C, S, S) in [-1, 1]; y: (N, n_attr) the faces' true attributes; refine: codes()'s
    (steps, lr, adversarial), e.g. cfg.refine (default: E(x) as it comes).
    """
    z = codes(nets, x, y.float(), *refine)
    cols = [x.float().cpu(), decode(nets["G"], z, y)]
    for v in values:
        yv = y.clone().float()
        yv[:, j] = float(v)
        cols.append(decode(nets["G"], z, yv))
    grid = torch.stack(cols, dim=1).flatten(0, 1)  # (N * (2 + V), C, S, S), row-major per face
    return make_grid(grid, nrow=len(cols))


def render_fader(nets: dict, x: torch.Tensor, values, oracle=None, attr_names=None,
                 own=None, strength: float = 1.0, z: torch.Tensor | None = None) -> tuple[np.ndarray, dict]:
    """Return (picture: the face | its edit with attributes = values, oracle read-out of the edit).

    x: (1, C, S, S) or (C, S, S) in [-1, 1]; values: n_attr numbers (any reals, e.g. -1 .. 2).
    own: the face's own attributes (n_attr,): then the edit is residual, the photo plus `strength`
    times what moving from own to values changes (helpers.gan.residual_edit), which keeps what the
    decoder blurs. z: the face's latent (1, C_z, s, s), e.g. refined by codes() (default E(x)).
    The read-out is {attr: P(attr)} for attr_names (empty without an oracle).
    """
    x = x[None] if x.dim() == 3 else x
    z = encode(nets["E"], x) if z is None else z
    edited = decode(nets["G"], z, torch.as_tensor([list(values)], dtype=torch.float32))
    if own is not None:
        recon = decode(nets["G"], z, torch.as_tensor(own).float().reshape(1, -1))
        edited = residual_edit(x.float().cpu(), recon, edited, strength)
    readout = {}
    if oracle is not None and attr_names:
        probs = oracle.predict(edited)[0]
        readout = {n: float(probs[oracle.attr_names.index(n)]) for n in attr_names if n in oracle.attr_names}
    return make_grid(torch.cat([x.float().cpu(), edited]), nrow=2), readout


def upload_face(nets: dict, data: bytes, size: int, oracle=None, attr_names=None, refine=(0,),
                align: bool = True) -> tuple:
    """Return (x (1, C, S, S), own attributes (n_attr,) or None, latent z (1, C_z, s, s), what was
    done to the photo) for an uploaded image's bytes (read_upload: aligned like CelebA unless
    align=False). The own attributes are the oracle's read-out (None without an oracle); refine
    (codes()'s (steps, lr, adversarial)) refines the latent with them."""
    x, note = read_upload(data, size, align=align)
    x = x[None]
    if oracle is None or not attr_names:
        return x, None, encode(nets["E"], x), note
    probs = oracle.predict(x)[0]
    own = torch.tensor([[float(probs[oracle.attr_names.index(n)] > 0.5) for n in attr_names]])
    return x, own[0], codes(nets, x, own, *refine), note


def render_upload(nets: dict, data: bytes, values, size: int, oracle=None, attr_names=None, residual=False,
                  strength: float = 1.0, refine=(0,), face: tuple | None = None, align: bool = True):
    """Return render_fader's (picture, read-out) for an uploaded image's bytes: residual=True edits
    from the oracle's read-out of its attributes (needs an oracle). face: upload_face()'s result for
    these bytes, when the caller keeps it (the refinement then runs once per upload)."""
    x, own, z, _note = face or upload_face(nets, data, size, oracle, attr_names, refine, align)
    return render_fader(nets, x, values, oracle, attr_names, own if residual else None, strength, z)


def fader_sliders(nets: dict, faces, oracle=None, span=(-1.0, 2.0), upscale: int = 6, residual_strength: float = 1.0,
                  refine=(0,), residual: bool = True):
    """Return the fader widget: an image picker over `faces` (a FaceSet holding the model's
    attributes), one slider per attribute (span, default -1 .. 2), a residual switch (keep the
    photo's detail: render_fader's `own`, at residual_strength), a reset button, an upload box for your own
    photo with its alignment switch (on: the face is put where CelebA's are, helpers.data.align), the
    face | edit picture and the oracle's read-out. refine: codes()'s (steps, lr,
    adversarial) for each face's latent (cfg.refine), computed once per face. residual: the
    switch's first state; on, because the decoder's own redraw of a real photo often loses the
    person and the residual edit keeps it (docs/experiments.md, Fader identity).
    """
    import ipywidgets as W

    names, size = list(faces.attr_names), faces.image_size
    controls = {"pick": W.IntSlider(value=0, min=0, max=len(faces) - 1, description="test face"),
                **{n: W.FloatSlider(value=float(faces.attrs[0, j]), min=span[0], max=span[1], step=0.1,
                                    description=n[:14], continuous_update=False) for j, n in enumerate(names)},
                "residual": W.Checkbox(value=residual, description="keep the photo's detail (residual edit)"),
                "upload": W.FileUpload(accept="image/*", multiple=False, description="your face"),
                # after the upload: switching it re-reads the photo just uploaded
                "align": W.Checkbox(value=True, description="align my photo like CelebA (dlib landmarks)")}
    note = ("<i>Your own photo: one face, frontal, at least 64 px. It is aligned like CelebA (eyes, nose "
            f"and mouth where the training faces have them), then resized to {size}x{size}. Switch "
            "alignment off only for a face already aligned like the training data.</i>")
    source = {"upload": None, "face": None, "bytes": None}  # bytes: the last upload, kept for the switch
    latents: dict = {}

    def latent(i):  # the refined latent of test face i, once
        if i not in latents:
            latents[i] = codes(nets, to_range(faces.images[i:i + 1]), faces.attrs[i:i + 1].float(), *refine)
        return latents[i]

    def render(v, changed):
        if changed == "upload":
            source["upload"] = source["bytes"] = upload_bytes(v["upload"])
            source["face"] = None
        elif changed == "align" and source["bytes"] is not None:  # read the same photo the other way
            source["upload"], source["face"] = source["bytes"], None
        elif changed == "pick":
            source["upload"] = source["bytes"] = None
        values = [v[n] for n in names]
        if source["upload"] is not None:
            try:
                if source["face"] is None:  # decoded and refined once per upload, not per slider move
                    source["face"] = upload_face(nets, source["upload"], size, oracle, names, refine, v["align"])
                pic, probs = render_upload(nets, source["upload"], values, size, oracle, names, v["residual"],
                                           residual_strength, refine, source["face"])
            except ValueError:
                source["upload"] = None
                raise
            return pic, readout_html("your image", probs, f"{source['face'][3]}<br>oracle P(attribute) of the edit:")
        own = faces.attrs[v["pick"]] if v["residual"] else None
        pic, probs = render_fader(nets, to_range(faces.images[v["pick"]:v["pick"] + 1]), values, oracle, names, own,
                                  residual_strength, latent(v["pick"]))
        return pic, readout_html(f"test face {v['pick']}", probs, "oracle P(attribute) of the edit:")

    def to_own(box):
        for j, n in enumerate(names):
            box.controls[n].value = float(faces.attrs[box.controls["pick"].value, j])

    return picture_view(controls, render, upscale, buttons={"reset to the face's own attributes": to_own}, note=note)


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
        ax.bar_label(ax.bar(xs, [acc[k] for k in labels], width, label=model), fmt="%.2f", fontsize=7)
    ax.set_xticks(np.arange(len(labels)), labels)
    ax.set_ylim(0, 1.1)
    ax.axhline(0.9, color="gray", ls=":", lw=1)
    ax.set_ylabel("swap accuracy (oracle)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def training_figure(state):
    """Draw the training losses and the per-epoch validation numbers; return the figure."""
    return _figure({"state": state, "keys": ["rec_loss", "d_loss", "adv_loss"], "log": True},
                   {"state": state, "keys": ["swap_accuracy", "latent_disc_accuracy"], "per": "epoch",
                    "ylim": (0, 1.05), "title": "validation, per epoch"},
                   {"state": state, "keys": ["recon_psnr"], "per": "epoch", "title": "reconstruction PSNR (dB)"})
