"""The metrics.json every notebook writes: plain JSON from tensors, arrays and dataclasses, atomically;
and the markdown tables the benches and the README show."""
from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np
import torch

from ..core import paths
from ..core.atomic import atomic_write_text
from ..core.runtime import machine

METRICS_FILE = "metrics.json"


def _round_sig(x: float, digits: int = 6) -> float:
    return x if not math.isfinite(x) or x == 0 else float(f"{x:.{digits}g}")


def _jsonable(obj):
    """Return obj as plain JSON types: numpy/torch scalars and arrays unpacked, floats to 6 sig. digits."""
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        return _jsonable(obj.item() if obj.dim() == 0 else obj.tolist())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, (bool, type(None), str)):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return _round_sig(float(obj))
    if isinstance(obj, Path):
        return str(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Iterable):
        return [_jsonable(v) for v in obj]
    raise TypeError(f"cannot write {type(obj).__name__} to metrics.json: convert it to a number, "
                    "string, list or dict first")


def write_metrics(notebook: str, metrics: dict) -> Path:
    """Return the path of outputs/<notebook>/metrics.json after writing `metrics` to it atomically.

    Values may be Python, numpy or torch scalars/arrays (nested dicts and lists too); floats are
    rounded to 6 significant digits, inf/NaN are written as Infinity/NaN (Python's json reads them).
    The file is replaced, not merged: pass every metric of the notebook in one dict. A 'machine'
    entry (runtime.machine of the metrics' 'device') is added unless given: speeds depend on it.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
    if "machine" not in metrics:
        metrics = {**metrics, "machine": machine(metrics.get("device", "cpu"))}
    text = json.dumps(_jsonable(metrics), indent=2, sort_keys=True) + "\n"
    # Readers (make publish, another kernel) never see a half-written file.
    return atomic_write_text(paths.output_dir(notebook) / METRICS_FILE, text)


def read_metrics(notebook: str) -> dict:
    """Return the dict stored in outputs/<notebook>/metrics.json."""
    target = paths.OUTPUTS / notebook / METRICS_FILE
    if not target.exists():
        raise FileNotFoundError(f"{target} does not exist: run notebook {notebook!r} (it calls write_metrics) first")
    return json.loads(target.read_text(encoding="utf-8"))


def markdown_table(header: list[str], rows: list[list]) -> str:
    """Return a markdown table (no trailing newline): the header, the |---| line, one line per row
    (cells written with str())."""
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row needs {len(header)} cells: {header}")
    lines = [header, ["---"] * len(header)] + [[str(c) for c in r] for r in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)
