"""Pictures without torchvision: image grids, loss curves, PNG bytes for widgets."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, value_range=(-1, 1),
              pad_value: float = 1.0) -> np.ndarray:
    """Return a uint8 (H, W, 3) picture of images tiled nrow per row.

    images: (N, C, h, w) float in value_range (C = 1 or 3), or uint8 in [0, 255].
    """
    x = images.detach().float().cpu()
    if images.dtype == torch.uint8:
        x = x / 255.0
    else:
        lo, hi = value_range
        x = ((x - lo) / (hi - lo)).clamp(0, 1)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    n, _, h, w = x.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = torch.full((3, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value)
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def show_grid(images: torch.Tensor, title: str | None = None, nrow: int = 8, scale: float = 1.0,
              ax=None, value_range=(-1, 1)):
    """Draw a grid of images on `ax` (a new figure when None); return the axes."""
    grid = make_grid(images, nrow=nrow, value_range=value_range)
    if ax is None:
        h, w = grid.shape[:2]
        _, ax = plt.subplots(figsize=(max(2.0, w / 40 * scale), max(2.0, h / 40 * scale)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _pil(array: np.ndarray, upscale: int = 1) -> Image.Image:
    img = Image.fromarray(array)
    return img.resize((img.width * upscale, img.height * upscale), Image.NEAREST) if upscale > 1 else img


def save_image(array: np.ndarray, path: str | Path, upscale: int = 1) -> Path:
    """Write a uint8 (H, W, 3) array as PNG, optionally enlarged (nearest) for small faces."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _pil(array, upscale).save(path)
    return path


def png_bytes(array: np.ndarray, upscale: int = 1) -> bytes:
    """Return PNG bytes of a uint8 (H, W, 3) array, for ipywidgets.Image values."""
    buf = io.BytesIO()
    _pil(array, upscale).save(buf, format="PNG")
    return buf.getvalue()


def smooth(values, window: int = 20) -> np.ndarray:
    """Return a running mean (same length) so noisy GAN losses stay readable."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or window <= 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    end = np.arange(1, len(v) + 1)
    start = np.maximum(0, end - window)
    return (c[end] - c[start]) / (end - start)


def plot_history(history: dict, keys=None, ax=None, title: str = "training losses", window: int = 20):
    """Plot logged curves (history['step'] on x) on `ax`; return the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    steps = history.get("step", [])
    for k in keys or [k for k in history if k not in ("step", "epoch", "seconds")]:
        vals = history.get(k, [])
        if len(vals) and len(vals) == len(steps):
            ax.plot(steps, smooth(vals, window), label=k)
    ax.set_xlabel("step")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return ax


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure (PNG, modest dpi so notebooks and assets stay small)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=80)
    return path


def bar_chart(values: dict, title: str = "", ylim=None, ax=None):
    """Draw {label: value} as bars (labels rotated for long attribute names); return the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 0.45 * len(values)), 3))
    ax.bar(list(values), list(values.values()), color="tab:blue")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=90)
    return ax


def show_row(pictures: list, titles: list[str], width: float = 3.2, height: float = 1.9):
    """Draw uint8 pictures side by side with titles; return the figure."""
    fig, axes = plt.subplots(1, len(pictures), figsize=(width * len(pictures), height))
    for ax, pic, title in zip(np.atleast_1d(axes), pictures, titles):
        ax.imshow(pic)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
    return fig


def show_column(pictures: list, titles: list[str], width: float = 10, height: float = 1.3):
    """Draw uint8 pictures one above the other, titled on the left; return the figure."""
    fig, axes = plt.subplots(len(pictures), 1, figsize=(width, height * len(pictures)))
    for ax, pic, title in zip(np.atleast_1d(axes), pictures, titles):
        ax.imshow(pic)
        ax.set_axis_off()
        ax.set_title(title, loc="left", fontsize=9)
    return fig


def plot_epochs(epoch_metrics: list, keys, floor: float | None = None, log: bool = False, ax=None,
                title: str = "", ylim=None):
    """Plot per-epoch metrics (e.g. fd_oracle) against the epoch, with an optional floor line and
    5x that floor; return the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for key in [keys] if isinstance(keys, str) else keys:
        ax.plot([m["epoch"] for m in epoch_metrics if key in m], [m[key] for m in epoch_metrics if key in m],
                marker="o", label=key)
    if floor is not None:
        ax.axhline(floor, color="gray", ls="--", label="floor (real vs real)")
        ax.axhline(5 * floor, color="tab:red", ls=":", label="5x floor")
    if log:
        ax.set_yscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def training_figure(*panels: dict, width: float = 5.5, height: float = 3.2):
    """Draw one panel per dict side by side; return the figure.

    A panel: {'state': TrainState, 'keys': [...], 'title': str, 'per': 'step' (logged curves, the
    default) or 'epoch' (per-epoch metrics), 'log': bool, 'floor': float, 'window': int, 'ylim'}.
    A panel whose state has nothing for its keys is left out.
    """
    def has(p):
        if p.get("per", "step") == "epoch":
            return any(k in m for m in p["state"].epoch_metrics for k in p["keys"])
        return any(p["state"].history.get(k) for k in p["keys"])

    shown = [p for p in panels if has(p)] or panels[:1]
    fig, axes = plt.subplots(1, len(shown), figsize=(width * len(shown), height), squeeze=False)
    for ax, p in zip(axes[0], shown):
        if p.get("per", "step") == "epoch":
            plot_epochs(p["state"].epoch_metrics, p["keys"], p.get("floor"), p.get("log", False), ax,
                        p.get("title", ""), p.get("ylim"))
            continue
        plot_history(p["state"].history, keys=list(p["keys"]), ax=ax, title=p.get("title", "training losses"),
                     window=p.get("window", 20))
        if p.get("log"):
            ax.set_yscale("log")
    fig.tight_layout()
    return fig


def show_source(*objs):
    """Return the source of functions / classes / modules as a Markdown code block (what runs is
    what is shown: it is read from the modules the notebook imports)."""
    import inspect

    from IPython.display import Markdown

    code = "\n\n".join(inspect.getsource(o).rstrip() for o in objs)
    return Markdown(f"```python\n{code}\n```")
