"""The README's two results tables, generated from the committed metrics of the published runs.

`make publish` re-executes the notebooks, copies each `outputs/<notebook>/metrics.json` to
`assets/<notebook>/metrics.json`, then runs `python -m helpers.tools.readme --write`, which rewrites
the table between the README's two markers. `make publish-real DATA=...` does the same for runs on
real faces, into `assets/real/<data folder>/<notebook>/`, and the real-faces table sets them beside
the embedded data's. tests/test_readme.py fails when a table and the files disagree, so a number in
a table is always the number a committed run wrote.
"""
from __future__ import annotations

import argparse
import json
import operator
import re
import sys
from pathlib import Path

from ..core import paths
from ..eval.report import markdown_table

START, END = "<!-- results:start (make publish writes this table) -->", "<!-- results:end -->"
REAL_START, REAL_END = "<!-- real:start (make publish-real writes this table) -->", "<!-- real:end -->"
CELEBA_START, CELEBA_END = "<!-- celeba:start (make evaluate WEIGHTS=celeba RECORD=1 writes this table) -->", "<!-- celeba:end -->"
PUB_START, PUB_END = "<!-- published:start (make publish and make evaluate RECORD=1 write this table) -->", "<!-- published:end -->"
# A card's numbers the README shows, as `make evaluate` names them.
CARD_NUMBERS = (("fid", "FID {:.1f}"), ("kid", "KID {:.4f}"), ("face_detect_rate", "faces found {:.2f}"),
                ("swap_accuracy_mean", "swap {:.3f}"), ("identity_kept_residual", "identity kept (residual) {:.2f}"),
                ("conversion_accuracy", "conversion {:.3f}"), ("identity_kept", "identity kept {:.2f}"),
                ("fid_direct", "direct DCGAN's FID {:.1f}"), ("nn_ratio", "nearest-training-face ratio {:.2f}"),
                ("copy_ratio", "copy check {:.2f}"))
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




def _min_attr(m: dict, key: str) -> float:
    return min(v for k, v in m[key].items() if k != "mean")


# The real-face goals: (notebook, data folder, label, metric key or callable(metrics, runs) -> value,
# format, goal). runs: {notebook: metrics} of the same data folder (BEGAN is judged against DCGAN).
REAL_ROWS = [
    ("01_dcgan_face_generation", "celeba_dev", "oracle FD / floor", "fd_ratio", "{:.1f}x", None),
    ("02_fadernet", "celeba_dev", "swap accuracy (mean)", "swap_accuracy_mean", "{:.3f}", (">=", 0.85)),
    ("02_fadernet", "celeba_dev", "swap accuracy, worst attribute", lambda m, r: _min_attr(m, "swap_accuracy"),
     "{:.3f}", (">=", 0.7)),
    ("02_fadernet", "celeba_dev", "reconstruction PSNR", "recon_psnr", "{:.1f} dB", (">=", 23.0)),
    # the same model on E(x) as it comes, without the latent refinement the demo edits with
    ("02_fadernet", "celeba_dev", "without refinement: swap / PSNR",
     lambda m, r: f"{m['unrefined']['swap_accuracy_mean']:.3f} / {m['unrefined']['recon_psnr']:.1f} dB", "{}", None),
    ("02_fadernet", "celeba_dev", "preserve accuracy", "preserve_accuracy", "{:.3f}", (">=", 0.9)),
    ("02_fadernet", "celeba_dev", "identity kept", "identity_kept", "{:.2f}", (">=", 0.9)),
    # the same judge on two real photos of one person: what "same person" can reach at 32 px
    ("02_fadernet", "celeba_dev", "identity judge, two photos of one person", "identity_kept_real_pairs", "{:.2f}",
     None),
    ("02_fadernet", "celeba_dev", "residual edits: swap (mean)", "swap_accuracy_residual_mean", "{:.3f}", (">=", 0.85)),
    ("02_fadernet", "celeba_dev", "residual edits: worst attribute",
     lambda m, r: _min_attr(m, "swap_accuracy_residual"), "{:.3f}", (">=", 0.7)),
    ("02_fadernet", "celeba_dev", "residual edits: identity kept", "identity_kept_residual", "{:.2f}", (">=", 0.9)),
    ("03_smile_converter", "celeba_dev", "conversion accuracy", "conversion_accuracy", "{:.3f}", (">=", 0.9)),
    ("03_smile_converter", "celeba_dev", "identity kept", "identity_kept", "{:.2f}", (">=", 0.85)),
    ("03_smile_converter", "celeba_dev", "PSNR of G's redraw (map inversion)", "recon_psnr", "{:.1f} dB", (">=", 22.0)),
    ("03_smile_converter", "celeba_dev", "PSNR of G(z*, c) (z inversion only)", "recon_psnr_latent", "{:.1f} dB", None),
    ("03_smile_converter", "celeba_dev", "residual: conversion accuracy", "conversion_accuracy_residual", "{:.3f}",
     (">=", 0.9)),
    ("03_smile_converter", "celeba_dev", "residual: identity kept", "identity_kept_residual", "{:.2f}", (">=", 0.85)),
    ("04_began_interpolation", "celeba_dev", "oracle FD / DCGAN's",
     lambda m, r: m["fd_oracle"] / r["01_dcgan_face_generation"]["fd_oracle"], "{:.1f}x", ("<=", 2.0)),
    ("04_began_interpolation", "celeba_dev", "faces found / real faces'",
     lambda m, r: m["face_detect_rate"] / m["face_detect_rate_real"], "{:.2f}", (">=", 0.95)),
    ("04_began_interpolation", "celeba_dev", "real endpoints' PSNR (map inversion)", "real_endpoint_psnr", "{:.1f} dB",
     (">=", 22.0)),
    ("04_began_interpolation", "celeba_dev", "real endpoints' PSNR (z inversion)",
     lambda m, r: m["real_endpoint_psnr_by_method"]["inversion"], "{:.1f} dB", None),
    # A path from photo to photo that is only a blend would reach both ends trivially: say how close it comes.
    ("04_began_interpolation", "celeba_dev", "map path's midpoint vs a cross-fade",
     lambda m, r: m["crossfade_psnr_by_method"]["map inversion"], "{:.1f} dB", None),
    # LFW has no attributes, so its oracle has none to learn features from: FID judges the pyramid there.
    ("05_lapgan", "lfw_dev", "pyramid FID / direct DCGAN FID", lambda m, r: m["fid_lapgan"] / m["fid_direct"],
     "{:.2f}", ("<=", 1.0)),
    ("05_lapgan", "lfw_dev", "pyramid: faces found / real faces'",
     lambda m, r: m["face_detect_rate_lapgan"] / m["face_detect_rate_real"], "{:.2f}", None),
]


def real_root(data: str, root: Path | None = None) -> Path:
    """Return assets/real/<data folder>/: where make publish-real puts a real-face run's metrics."""
    return (root or paths.ASSETS) / "real" / data


def metrics_path(notebook: str, root: Path | None = None) -> Path:
    """Return assets/<notebook>/metrics.json (the committed copy of a published run)."""
    return (root or paths.ASSETS) / notebook / "metrics.json"


def load(notebook: str, root: Path | None = None) -> dict | None:
    """Return a notebook's committed metrics, or None when it has none yet."""
    path = metrics_path(notebook, root)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _cell(metrics: dict, key, fmt: str, goal, runs: dict | None = None) -> tuple[str, str]:
    try:
        value = (key(metrics, runs or {}) if runs is not None else key(metrics)) if callable(key) else metrics[key]
    except (KeyError, TypeError, ZeroDivisionError, ValueError):
        return "not measured", ""
    if value is None:  # measured where it can be: e.g. identities on data without people
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


def real_table(root: Path | None = None) -> str:
    """Return the real-faces table (markdown): each real-face goal, the committed real-face run's value
    (assets/real/<data>/<notebook>/metrics.json) and the embedded data's value beside it."""
    notebooks = sorted({r[0] for r in REAL_ROWS})
    embedded = {nb: load(nb, root) or {} for nb in notebooks}
    rows, seen, runs = [], set(), {}
    for notebook, data, label, key, fmt, goal in REAL_ROWS:
        if data not in runs:
            runs[data] = {nb: load(nb, real_root(data, root)) or {} for nb in notebooks}
        real = runs[data][notebook]
        value, verdict = _cell(real, key, fmt, goal, runs[data]) if real else ("no committed run", "")
        base = _cell(embedded[notebook], key, fmt, None, embedded)[0] if embedded[notebook] else ""
        first = (notebook, data) not in seen
        seen.add((notebook, data))
        run = (f"{real.get('train_seconds', 0):.0f} s training" if real else "") if first else ""
        rows.append([notebook if first else "", data if first else "", label, value, verdict, base, run])
    return markdown_table(["notebook", "real faces", "measure", "value", "goal: met?", "embedded data", "run"], rows) + "\n"


def _ratio(a: str, b: str):
    return lambda m, *_: m[a] / m[b]


def _over(a: str, notebook: str, b: str):
    """A card's number `a` over another published model's `b` (runs: {notebook: card numbers})."""
    return lambda m, runs: m[a] / runs[notebook][b]


# Issue 36's goals for the `celeba` set, read from its cards (`make evaluate`: 2,000 samples against the
# test faces), and the 8-minute demo's value on real faces beside them (assets/real/<data>/, the same
# measure from the notebook's own run): (notebook, label, card key or callable(numbers), format, goal,
# (demo data folder, metrics key or callable(metrics)) or None).
CELEBA_ROWS = [
    ("01_dcgan_face_generation", "FID", "fid", "{:.1f}", ("<=", 35.0), ("celeba_dev", "fid")),
    ("01_dcgan_face_generation", "faces found / real faces'", _ratio("face_detect_rate", "face_detect_rate_real"),
     "{:.2f}", (">=", 0.95), ("celeba_dev", _ratio("face_detect_rate", "face_detect_rate_real"))),
    ("01_dcgan_face_generation", "nearest-training-face ratio", "nn_ratio", "{:.2f}", (">=", 0.9), None),
    ("01_dcgan_face_generation", "copy check (copies 0, no copies ~1)", "copy_ratio", "{:.2f}", None, None),
    ("02_fadernet", "swap accuracy (mean)", "swap_accuracy_mean", "{:.3f}", (">=", 0.85),
     ("celeba_dev", "swap_accuracy_mean")),
    ("02_fadernet", "identity kept", "identity_kept", "{:.2f}", (">=", 0.8), ("celeba_dev", "identity_kept")),
    ("02_fadernet", "residual edits: identity kept", "identity_kept_residual", "{:.2f}", (">=", 0.9),
     ("celeba_dev", "identity_kept_residual")),
    ("02_fadernet", "reconstruction PSNR", "recon_psnr", "{:.1f} dB", (">=", 24.0), ("celeba_dev", "recon_psnr")),
    ("03_smile_converter", "conversion accuracy", "conversion_accuracy", "{:.3f}", (">=", 0.9),
     ("celeba_dev", "conversion_accuracy")),
    ("03_smile_converter", "identity kept", "identity_kept", "{:.2f}", (">=", 0.9), ("celeba_dev", "identity_kept")),
    ("03_smile_converter", "PSNR of G's redraw", "recon_psnr", "{:.1f} dB", (">=", 24.0), ("celeba_dev", "recon_psnr")),
    ("03_smile_converter", "nearest-training-face ratio", "nn_ratio", "{:.2f}", (">=", 0.9), None),
    ("03_smile_converter", "copy check (copies 0, no copies ~1)", "copy_ratio", "{:.2f}", None, None),
    ("04_began_interpolation", "faces found / real faces'", _ratio("face_detect_rate", "face_detect_rate_real"),
     "{:.2f}", (">=", 0.95), ("celeba_dev", _ratio("face_detect_rate", "face_detect_rate_real"))),
    ("04_began_interpolation", "FID", "fid", "{:.1f}", None, ("celeba_dev", "fid")),
    # the goal's yardstick: the set's DCGAN at BEGAN's 32 px, i.e. notebook 05's direct model
    ("04_began_interpolation", "FID / the set's 32 px DCGAN's (05's direct)", _over("fid", "05_lapgan", "fid_direct"),
     "{:.2f}", ("<=", 1.5), None),
    ("04_began_interpolation", "nearest-training-face ratio", "nn_ratio", "{:.2f}", (">=", 0.9), None),
    ("04_began_interpolation", "copy check (copies 0, no copies ~1)", "copy_ratio", "{:.2f}", None, None),
    ("05_lapgan", "pyramid FID / direct DCGAN's", _ratio("fid", "fid_direct"), "{:.2f}", ("<=", 1.0),
     ("lfw_dev", _ratio("fid_lapgan", "fid_direct"))),
    ("05_lapgan", "nearest-training-face ratio", "nn_ratio", "{:.2f}", (">=", 0.9), None),
    ("05_lapgan", "copy check (copies 0, no copies ~1)", "copy_ratio", "{:.2f}", None, None),
]


def celeba_table(folder: Path | None = None, root: Path | None = None) -> str:
    """Return the `celeba` set's table (markdown): issue 36's goals against each published model's card,
    beside the 8-minute demo's value on real faces; a notebook not published yet says so."""
    from ..core import published

    entries = {e["notebook"]: e for e in published.read_manifest(folder or published.FOLDER) if e["set"] == "celeba"}
    runs = {notebook: entry.get("numbers") or {} for notebook, entry in entries.items()}
    rows, seen = [], set()
    for notebook, label, key, fmt, goal, demo in CELEBA_ROWS:
        entry = entries.get(notebook)
        if entry is None:
            if notebook not in seen:
                rows.append([notebook, "", "not published yet", "", "", ""])
            seen.add(notebook)
            continue
        numbers = entry.get("numbers") or {}
        value, verdict = _cell(numbers, key, fmt, goal, runs) if numbers else ("not measured yet", "")
        base = ""
        if demo is not None:
            metrics = load(notebook, real_root(demo[0], root)) or {}
            try:
                base = fmt.format(demo[1](metrics) if callable(demo[1]) else metrics[demo[1]]) + f" ({demo[0]})"
            except (KeyError, TypeError, ZeroDivisionError):
                base = ""
        first = notebook not in seen
        seen.add(notebook)
        run = (f"{entry.get('img_size', '?')} px, {entry.get('images_seen', 0):,} images, "
               f"{entry.get('train_seconds', 0) / 60:.0f} min, {entry.get('hardware', '?')}") if first else ""
        rows.append([notebook if first else "", label, value, verdict, base, run])
    return markdown_table(["notebook", "measure", "`celeba` set", "goal: met?", "8-minute demo", "training"],
                          rows) + "\n"


def published_table(folder: Path | None = None) -> str:
    """Return the published weight sets' table (markdown) from MANIFEST.json: what each set is and its
    card's numbers (`make evaluate RECORD=1`)."""
    from ..core import published

    rows = []
    for e in published.read_manifest(folder or published.FOLDER):
        n = e.get("numbers") or {}
        shown = ", ".join(f.format(n[k]) for k, f in CARD_NUMBERS if isinstance(n.get(k), (int, float)))
        judged = f" ({n['n']:,} samples, {n.get('data', '?')} {n.get('split', '')})" if shown and "n" in n else ""
        rows.append([e["notebook"], f"`{e['set']}`", f"{e.get('data', '?')}, {e.get('img_size', '?')} px",
                     f"{e.get('images_seen', 0):,} images, {e.get('train_seconds', 0):.0f} s, {e.get('hardware', '?')}",
                     f"{e['bytes'] / 1e6:.1f} MB", (shown + judged) or "not measured yet"])
    total = sum(e["bytes"] for e in published.read_manifest(folder or published.FOLDER)) / 1e6
    return markdown_table(["notebook", "set", "trained on", "training", "file", "card's numbers (`make evaluate`)"],
                          rows) + f"\nAll files together: {total:.1f} MB.\n"


def section(readme_text: str, start: str = START, end: str = END) -> str:
    """Return the text between a pair of the README's markers (default: the results table's)."""
    m = re.search(re.escape(start) + r"\n(.*?)" + re.escape(end), readme_text, flags=re.S)
    if m is None:
        raise ValueError(f"the README has no results markers: add the lines {start!r} and {end!r}")
    return m.group(1)


def rewrite(readme: Path, root: Path | None = None) -> bool:
    """Replace the README's tables with the ones the committed metrics give; return True if one changed.
    A README without the real-faces markers keeps only the results table."""
    text = original = readme.read_text(encoding="utf-8")
    pairs = [(START, END, table)] + ([(REAL_START, REAL_END, real_table)] if REAL_START in text else [])
    for start, end, make in pairs:
        text = text.replace(start + "\n" + section(text, start, end) + end, start + "\n" + make(root) + end)
    if PUB_START in text and root is None:
        text = text.replace(PUB_START + "\n" + section(text, PUB_START, PUB_END) + PUB_END,
                            PUB_START + "\n" + published_table() + PUB_END)
    if CELEBA_START in text and root is None:
        text = text.replace(CELEBA_START + "\n" + section(text, CELEBA_START, CELEBA_END) + CELEBA_END,
                            CELEBA_START + "\n" + celeba_table() + CELEBA_END)
    if text == original:
        return False
    readme.write_text(text, encoding="utf-8")
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite README.md's table (default: check it)")
    args = ap.parse_args(argv)
    readme = paths.ROOT / "README.md"
    if args.write:
        print("README.md table", "rewritten" if rewrite(readme) else "already up to date")
        return 0
    text = readme.read_text(encoding="utf-8")
    same = (section(text) == table() and section(text, REAL_START, REAL_END) == real_table()
            and section(text, PUB_START, PUB_END) == published_table()
            and (CELEBA_START not in text or section(text, CELEBA_START, CELEBA_END) == celeba_table()))
    print("README.md tables match assets/**/metrics.json" if same else "README.md tables are stale: run make publish")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
