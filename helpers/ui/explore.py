"""Looking at a face data set: attribute frequencies, co-occurrence, examples per attribute.

Used by notebooks/00_data.ipynb and the attribute-exploration part of 03_smile_converter.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .viz import make_grid


def attribute_frequencies(attrs: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Return {attribute: fraction of faces that have it}, most frequent first."""
    freq = attrs.float().mean(0).tolist()
    return dict(sorted(zip(names, freq), key=lambda kv: -kv[1]))


def cooccurrence(attrs: torch.Tensor) -> np.ndarray:
    """Return P(column j | row i) as an (A, A) array: how often attribute j comes with i."""
    a = attrs.float()
    both = a.T @ a  # (A, A) counts of faces with i and j
    return (both / a.sum(0).clamp(min=1)[:, None]).numpy()


def plot_attribute_overview(attrs: torch.Tensor, names: list[str], title: str = ""):
    """Draw frequencies (bars) and conditional co-occurrence (heat map); return the figure."""
    freq = attribute_frequencies(attrs, names)
    order = [names.index(n) for n in freq]
    co = cooccurrence(attrs)[np.ix_(order, order)]
    height = max(4.5, 0.2 * len(names) + 1.0)  # CelebA's 40 names need about twice the 17 synthetic ones' room
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, height), gridspec_kw={"width_ratios": [1, 1.2]})
    ax1.barh(list(freq)[::-1], list(freq.values())[::-1], color="tab:blue")
    ax1.tick_params(axis="y", labelsize=7 if len(names) > 20 else 10)
    ax1.set_xlim(0, 1)
    ax1.set_title(f"{title} attribute frequency".strip())
    im = ax2.imshow(co, cmap="viridis", vmin=0, vmax=1)
    ax2.set_xticks(range(len(order)), list(freq), rotation=90, fontsize=7)
    ax2.set_yticks(range(len(order)), list(freq), fontsize=7)
    ax2.set_title("P(column | row)")
    fig.colorbar(im, ax=ax2, fraction=0.046)
    fig.tight_layout()
    return fig


def examples_per_attribute(images: torch.Tensor, attrs: torch.Tensor, names: list[str], per: int = 6,
                           seed: int = 0):
    """Draw `per` faces with and without each attribute (one row each); return the figure."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for j in range(len(names)):
        for value in (1, 0):
            idx = torch.nonzero(attrs[:, j] == value).flatten()
            pick = idx[torch.randperm(len(idx), generator=g)[:per]] if len(idx) else idx
            row = images[pick]
            if len(row) < per:  # an attribute no face has: pad with blanks, do not fail
                row = torch.cat([row, torch.full((per - len(row), *images.shape[1:]), 255, dtype=images.dtype)])
            rows.append(row)
    fig, axes = plt.subplots(len(names), 1, figsize=(2 * per * 0.55, len(names) * 0.75))
    axes = np.atleast_1d(axes)
    for j, ax in enumerate(axes):
        ax.imshow(make_grid(torch.cat([rows[2 * j], rows[2 * j + 1]]), nrow=2 * per, padding=1))
        ax.set_axis_off()
        ax.set_title(f"{names[j]}: with | without", fontsize=8, loc="left")
    fig.tight_layout()
    return fig
