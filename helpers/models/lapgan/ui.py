"""LAPGAN's pictures and sliders (notebook 05): the pyramid, D's ranking, nearest faces, the training figure.

Pure render functions (tensors in, uint8 picture out) that the tests call, wrapped by
helpers.ui.widgets.picture_view (pyramid level, show residuals, seed / resample).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...data.faces import to_range
from ...ui.viz import make_grid, training_figure as _figure
from ...ui.widgets import picture_view


def _to_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """Return x enlarged to size x size by pixel repetition (so coarse levels stay blocky)."""
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="nearest")


def residual_view(h: torch.Tensor, gain: float | None = None) -> torch.Tensor:
    """Return residuals mapped for display: (N, C, S, S) in [-1, 1], 0 = mid-grey.

    gain: multiply before clipping; default scales the largest |value| of the set to 1.
    """
    gain = gain if gain is not None else 1.0 / max(float(h.abs().max()), 1e-6)
    return (h * gain).clamp(-1, 1)


def pyramid_columns(pyramid: list[dict], level: int, show_residuals: bool = True) -> tuple[list[torch.Tensor], list[str]]:
    """Return ([images per column], [column names]) of the pyramid up to `level`, all at its size.

    Columns: base sample, then per finer level 'upsampled', ('residual' when shown), 'refined'.
    Every tensor is (N, C, S, S) in [-1, 1] with S the size of `level`.
    """
    if not 0 <= level < len(pyramid):
        raise ValueError(f"level {level} does not exist: the pyramid has levels 0..{len(pyramid) - 1}")
    size = pyramid[level]["size"]
    cols, names = [_to_size(pyramid[0]["image"], size)], [f"base {pyramid[0]['size']}px"]
    for p in pyramid[1:level + 1]:
        s = p["size"]
        cols.append(_to_size(p["up"], size))
        names.append(f"upsampled {s}px")
        if show_residuals:
            cols.append(_to_size(residual_view(p["residual"]), size))
            names.append(f"residual {s}px")
        cols.append(_to_size(p["image"], size))
        names.append(f"refined {s}px")
    return cols, names


def render_pyramid(pyramid: list[dict], level: int, show_residuals: bool = True, n: int = 4) -> np.ndarray:
    """Return a uint8 picture: one row per sample (first n), one column per pyramid stage up to `level`."""
    cols, _ = pyramid_columns(pyramid, level, show_residuals)
    n = min(n, len(cols[0]))
    rows = torch.stack([c[:n] for c in cols], 1)  # (n, columns, C, S, S)
    return make_grid(rows.flatten(0, 1), nrow=len(cols))


def render_ranked(images: torch.Tensor, scores: torch.Tensor, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Return (picture: the n samples D likes most above the n it likes least, their scores best first).

    images: (N, C, S, S) in [-1, 1]; scores: (N,) D logits.
    """
    if len(images) != len(scores):
        raise ValueError(f"{len(images)} images but {len(scores)} scores")
    order = torch.argsort(scores, descending=True)
    n = min(n, len(images) // 2)
    pick = torch.cat([order[:n], order[-n:]])
    return make_grid(images[pick], nrow=n), scores[pick].numpy()


def nearest_neighbours(queries: torch.Tensor, reference, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (indices (Nq, k), L2 distances (Nq, k)) of each query's k nearest reference images.

    queries: (Nq, C, S, S) in [-1, 1]; reference: (Nr, C, S, S) uint8 or float in [-1, 1]
    (distances in [-1, 1]-pixel units, as helpers.metrics.nn_distances measures the nearest one).
    """
    ref = _signed(reference)
    if ref.shape[1:] != queries.shape[1:]:
        raise ValueError(f"queries are {tuple(queries.shape[1:])} but the reference is {tuple(ref.shape[1:])}")
    d = torch.cdist(queries.flatten(1).double(), ref.flatten(1).double())
    dist, idx = d.topk(min(k, len(ref)), dim=1, largest=False)
    return idx, dist.float()


def _signed(images: torch.Tensor) -> torch.Tensor:
    return to_range(images) if images.dtype == torch.uint8 else images.float()


def render_neighbours(queries: torch.Tensor, reference, k: int = 3) -> np.ndarray:
    """Return a uint8 picture: each row a sample followed by its k nearest training images."""
    idx, _ = nearest_neighbours(queries, reference, k)
    ref = _signed(reference)
    rows = torch.cat([queries[:, None], ref[idx]], 1)  # (Nq, 1 + k, C, S, S)
    return make_grid(rows.flatten(0, 1), nrow=1 + idx.shape[1])


def pyramid_explorer(sample_fn, n_levels: int, n: int = 4, upscale: int = 4):
    """Return the pyramid widget: a level slider, a residuals switch, a seed slider and a resample button.

    sample_fn(seed) -> pyramid (helpers.models.lapgan.sample_pyramid's list of dicts).
    """
    import ipywidgets as W

    # the residuals switch first: it only matters above level 0, where the picture starts
    controls = {"residuals": W.Checkbox(value=True, description="show residuals"),
                "level": W.IntSlider(value=n_levels - 1, min=0, max=n_levels - 1, description="level"),
                "seed": W.IntSlider(value=0, min=0, max=999, description="seed")}
    cache: dict = {}

    def render(v, _changed):
        if v["seed"] not in cache:
            cache.clear()
            cache[v["seed"]] = sample_fn(v["seed"])
        pyr = cache[v["seed"]]
        caption = "columns: " + " | ".join(pyramid_columns(pyr, v["level"], v["residuals"])[1])
        return render_pyramid(pyr, v["level"], v["residuals"], n), caption

    def resample(box):
        seed = box.controls["seed"]
        seed.value = (seed.value + 1) % (seed.max + 1)

    return picture_view(controls, render, upscale, buttons={"resample": resample}, side="top")


def training_figure(states: dict):
    """Draw each level's D and G losses side by side; return the figure."""
    return _figure(*({"state": st, "keys": ["d_loss", "g_loss"], "title": f"{name}: losses"}
                     for name, st in states.items()))
