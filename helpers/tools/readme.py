"""The README's results table, generated from the committed metrics of the published runs.

`make publish` re-executes the notebooks, copies each `outputs/<notebook>/metrics.json` to
`assets/<notebook>/metrics.json`, then runs `python -m helpers.tools.readme --write`, which rewrites
the table between the README's two markers. tests/test_readme.py fails when the two disagree, so a
number in the table is always the number a committed run wrote.
"""
from __future__ import annotations

import argparse
import json
import operator
import re
import sys
from pathlib import Path

from ..core import paths

START, END = "<!-- results:start (make publish writes this table) -->", "<!-- results:end -->"
OPS = {">=": operator.ge, "<=": operator.le}

# (notebook, label, metric key or callable(metrics) -> value, format, goal (op, value) or None)
ROWS = [
    ("00_data", "oracle accuracy (valid)", "oracle_mean_accuracy", "{:.3f}", (">=", 0.97)),
    ("01_dcgan_face_generation", "oracle FD / floor", "fd_ratio", "{:.1f}x", ("<=", 5.0)),
    ("01_dcgan_face_generation", "attribute directions flip", "attr_direction_accuracy", "{:.3f}", (">=", 0.8)),
    ("02_fadernet", "swap accuracy (mean)", "swap_accuracy_mean", "{:.3f}", (">=", 0.9)),
    ("02_fadernet", "preserve accuracy", "preserve_accuracy", "{:.3f}", (">=", 0.95)),
    ("02_fadernet", "reconstruction PSNR", "recon_psnr", "{:.1f} dB", (">=", 24.0)),
    ("03_smile_converter", "ACGAN class accuracy", "class_accuracy_acgan", "{:.3f}", (">=", 0.95)),
    ("03_smile_converter", "conversion accuracy", "conversion_accuracy", "{:.3f}", (">=", 0.85)),
    ("03_smile_converter", "preserve accuracy", "preserve_accuracy", "{:.3f}", (">=", 0.85)),
    ("04_began_interpolation", "oracle FD / floor", "fd_ratio", "{:.1f}x", ("<=", 5.0)),
    ("04_began_interpolation", "interpolation smoothness", "interp_smoothness", "{:.3f}", ("<=", 0.2)),
    ("05_lapgan", "pyramid FD / direct DCGAN FD", lambda m: m["fd_oracle_lapgan_32"] / m["fd_oracle_direct_32"],
     "{:.2f}", ("<=", 1.0)),
    ("05_lapgan", "nearest-neighbour ratio (LFW)", "nn_distance_ratio", "{:.2f}", (">=", 0.9)),
]
# The field's yardsticks, where a notebook measured them (helpers/eval, docs/metrics.md).
YARDSTICKS = [("fid", "FID {:.1f}"), ("kid", "KID {:.4f}"), ("face_detect_rate", "faces found {:.2f}"),
              ("identity_kept", "identity kept {:.2f}")]


def metrics_path(notebook: str, root: Path | None = None) -> Path:
    """Return assets/<notebook>/metrics.json (the committed copy of a published run)."""
    return (root or paths.ASSETS) / notebook / "metrics.json"


def load(notebook: str, root: Path | None = None) -> dict | None:
    """Return a notebook's committed metrics, or None when it has none yet."""
    path = metrics_path(notebook, root)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _cell(metrics: dict, key, fmt: str, goal) -> tuple[str, str]:
    try:
        value = key(metrics) if callable(key) else metrics[key]
    except (KeyError, TypeError, ZeroDivisionError):
        return "not measured", ""
    text = fmt.format(value)
    if goal is None:
        return text, ""
    op, target = goal
    return text, f"{op} {fmt.format(target)}: {'yes' if OPS[op](value, target) else '**no**'}"


def table(root: Path | None = None) -> str:
    """Return the results table (markdown) from the committed metrics under `root` (default assets/)."""
    lines = ["| notebook | measure | value | goal: met? | the field's yardsticks | run |", "|---|---|---|---|---|---|"]
    seen = set()
    for notebook, label, key, fmt, goal in ROWS:
        metrics = load(notebook, root)
        if metrics is None:
            lines.append(f"| {notebook} | {label} | no committed run | | | |")
            continue
        value, verdict = _cell(metrics, key, fmt, goal)
        first = notebook not in seen
        seen.add(notebook)
        yard = ", ".join(f.format(metrics[k]) for k, f in YARDSTICKS if isinstance(metrics.get(k), (int, float)))
        run = f"{metrics.get('profile', '?')}, {metrics.get('train_seconds', 0):.0f} s training, {metrics.get('machine', '?')}"
        lines.append(f"| {notebook if first else ''} | {label} | {value} | {verdict} | {yard if first else ''} "
                     f"| {run if first else ''} |")
    return "\n".join(lines) + "\n"


def section(readme_text: str) -> str:
    """Return the text between the README's results markers."""
    m = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), readme_text, flags=re.S)
    if m is None:
        raise ValueError(f"the README has no results markers: add the lines {START!r} and {END!r}")
    return m.group(1)


def rewrite(readme: Path, root: Path | None = None) -> bool:
    """Replace the README's table with the one the committed metrics give; return True if it changed."""
    text = readme.read_text(encoding="utf-8")
    old = section(text)
    new = table(root)
    if old == new:
        return False
    readme.write_text(text.replace(START + "\n" + old + END, START + "\n" + new + END), encoding="utf-8")
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite README.md's table (default: check it)")
    args = ap.parse_args(argv)
    readme = paths.ROOT / "README.md"
    if args.write:
        print("README.md table", "rewritten" if rewrite(readme) else "already up to date")
        return 0
    same = section(readme.read_text(encoding="utf-8")) == table()
    print("README.md table matches assets/*/metrics.json" if same else "README.md table is stale: run make publish")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
