"""Every path the project uses, derived from the repository root (never from the cwd).

nbval runs kernels inside notebooks/, papermill wherever it is called from, so all code
asks this module instead of writing literal paths.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# FACEGAN_DATA / FACEGAN_CHECKPOINTS / FACEGAN_OUTPUTS let tests and users redirect the heavy folders.
DATA = Path(os.environ.get("FACEGAN_DATA", ROOT / "data"))
CHECKPOINTS = Path(os.environ.get("FACEGAN_CHECKPOINTS", ROOT / "checkpoints_gan"))
OUTPUTS = Path(os.environ.get("FACEGAN_OUTPUTS", ROOT / "outputs"))
ASSETS = ROOT / "assets"
NOTEBOOKS = ROOT / "notebooks"
SYNTH_DIR = DATA / "synthfaces"
CACHE_DIR = DATA / "cache"


def output_dir(notebook: str) -> Path:
    """Return outputs/<notebook>/, created if needed."""
    path = OUTPUTS / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_dir(model: str) -> Path:
    """Return checkpoints_gan/<model>/, created if needed."""
    path = CHECKPOINTS / model
    path.mkdir(parents=True, exist_ok=True)
    return path
