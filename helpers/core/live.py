"""The live view of a training run in a notebook: loss curves and the latest samples, redrawn in place."""
from __future__ import annotations

import io
import time


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where live plots make sense)."""
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except ImportError:
        return False


class LivePlot:
    """One display slot, redrawn at most every `every_s` seconds while a Trainer runs."""

    def __init__(self, name: str, every_s: float = 10.0):
        self.name, self.every_s = name, every_s
        self.handle, self.last = None, time.perf_counter()

    def maybe_update(self, state) -> None:
        if time.perf_counter() - self.last > self.every_s:
            self.update(state)

    def update(self, state) -> None:
        """Redraw the loss curves and the latest fixed-input samples of `state`."""
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        from ..ui.viz import make_grid, plot_history

        self.last = time.perf_counter()
        if not state.history.get("step"):
            return
        has_samples = bool(state.samples)
        fig, axes = plt.subplots(1, 2 if has_samples else 1, figsize=(10 if has_samples else 6, 3), squeeze=False)
        plot_history(state.history, ax=axes[0, 0], title=f"{self.name}: epoch {state.epoch}, step {state.step}")
        if has_samples:
            axes[0, 1].imshow(make_grid(state.samples[-1], nrow=8))
            axes[0, 1].set_axis_off()
            axes[0, 1].set_title(f"fixed-input samples after epoch {len(state.samples)}")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight", dpi=72)
        plt.close(fig)
        img = Image(data=buf.getvalue())
        if self.handle is None:
            self.handle = display(img, display_id=True)
        else:
            self.handle.update(img)
