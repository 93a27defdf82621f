"""Execute notebooks headless with papermill: `python -m helpers.tools.run_notebooks [--profile demo] [NB ...]`.

`--profile` and `--data PATH` set each notebook's `profile` and `data` parameters (papermill injects
them in a cell after the parameters cell; a FACEGAN_PROFILE in the environment is dropped, so the
parameter is what runs). Executed copies go to outputs/<notebook>/<notebook>.ipynb, or back into
notebooks/ with --inplace (`make publish`: without the injected cell, so the committed notebook's
own parameters cell is the one a reader edits; the figures and metrics.json are copied to
assets/<notebook>/ and the README's results table is regenerated from them).
`--real` (`make publish-real DATA=...`): a run on real faces, into outputs/real/<data folder>/; each
notebook's metrics.json and its figures of generated faces only (GENERATED_FIGURES: never a photo, nor
a face rebuilt from one) go to assets/real/<data folder>/<notebook>/, and the README's real-faces
table is regenerated.
`--rehearse S` (`make rehearse`) runs the `full` profile with every training run capped at S seconds
and two epochs (FACEGAN_REHEARSE), writing outputs and checkpoints under outputs/rehearsal/ and
checkpoints_gan/rehearsal/ (emptied first: it trains from scratch) and never touching assets/.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from ..core import paths
from ..core.config import REHEARSE_ENV, SETTINGS_ENV, parse_overrides
from ..core.published import PRETRAINED_ENV
from ..core.runtime import PROFILE_ENV


def drop_injected_cell(path: Path) -> None:
    """Remove papermill's injected-parameters cell from an executed notebook (published in place)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nbformat.write(nb, path)


def notebooks(names: list[str]) -> list[Path]:
    """Return the notebooks to run: the named ones, or every notebooks/NN_*.ipynb in order."""
    if not names:
        return sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    found = []
    for name in names:
        path = Path(name)
        if not path.is_file():
            matches = sorted(paths.NOTEBOOKS.glob(f"{Path(name).stem}*.ipynb"))
            if not matches:
                raise SystemExit(f"no notebook matches {name!r} in {paths.NOTEBOOKS}")
            path = matches[0]
        found.append(path)
    return found


def _has_slider(state: dict, model_id: str, seen: set | None = None) -> bool:
    """Whether the widget model_id (in a notebook's saved widget state) is, or holds, a slider."""
    seen = set() if seen is None else seen
    if model_id in seen or model_id not in state:
        return False
    seen.add(model_id)
    model = state[model_id]
    if model.get("model_name", "").endswith("SliderModel"):
        return True
    refs = [v for v in model.get("state", {}).values() for v in (v if isinstance(v, list) else [v])
            if isinstance(v, str) and v.startswith("IPY_MODEL_")]
    return any(_has_slider(state, r[len("IPY_MODEL_"):], seen) for r in refs)


def seconds_to_first_slider(path: Path) -> float | None:
    """Return the seconds from an executed notebook's first cell to the end of the first cell that shows
    a slider (papermill's cell times and the saved widget state; a progress bar is not a slider), or
    None when it shows none."""
    from datetime import datetime

    nb = json.loads(Path(path).read_text())
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    times = [c.get("metadata", {}).get("papermill", {}) for c in nb["cells"]]
    starts = [t["start_time"] for t in times if t.get("start_time")]
    for cell, t in zip(nb["cells"], times):
        views = [o.get("data", {}).get("application/vnd.jupyter.widget-view+json") for o in cell.get("outputs", [])]
        if starts and t.get("end_time") and any(v and _has_slider(state, v["model_id"]) for v in views):
            return (datetime.fromisoformat(t["end_time"]) - datetime.fromisoformat(starts[0])).total_seconds()
    return None


def publish(notebook: str) -> list[Path]:
    """Copy outputs/<notebook>/*.png and its metrics.json into assets/<notebook>/ (the README shows
    those figures, and its results table is generated from those metrics)."""
    dest = paths.ASSETS / notebook
    copied = []
    for src in sorted((paths.OUTPUTS / notebook).glob("*.png")) + sorted((paths.OUTPUTS / notebook).glob("metrics.json")):
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / src.name)
        copied.append(dest / src.name)
    return copied


# Figures that show generated faces only: all a run on real faces may commit. The others show the
# photos themselves, their reconstructions or edits (01's attribute edits and 04's latent walks are of
# samples; 05's residual pyramid is sampled too). A model trained for minutes on a few thousand faces
# can still copy some: commit them only after a nearest-neighbour check (docs/experiments.md, session 9).
GENERATED_FIGURES = {
    "01_dcgan_face_generation": ("samples.png", "latent_walk.png", "attribute_edits.png"),
    "03_smile_converter": ("samples.png",),
    "04_began_interpolation": ("samples.png", "latent_interpolation.png"),
    "05_lapgan": ("lapgan_vs_direct.png", "pyramid.png"),
}


def publish_real(notebook: str, data: str, outputs: Path, root: Path | None = None,
                 since: float | None = None) -> list[Path]:
    """Copy a real-face run's metrics.json and GENERATED_FIGURES from outputs/<notebook>/ into
    assets/real/<data>/<notebook>/ (root: instead of assets/); return what was copied.

    since: the run's start (time.time()): a file older than it is an earlier run's (a figure this run no
    longer draws, such as SMiLE's ACGAN-vs-WACGAN grid without a WACGAN), and is neither copied nor kept."""
    from .readme import real_root

    dest = real_root(data, root) / notebook
    copied = []
    for name in ("metrics.json",) + GENERATED_FIGURES.get(notebook, ()):
        src = outputs / notebook / name
        if src.is_file() and (since is None or src.stat().st_mtime >= since):
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / name)
            copied.append(dest / name)
        elif (dest / name).is_file():
            (dest / name).unlink()
    return copied


def main(argv=None) -> int:
    import papermill

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    ap.add_argument("--profile", default="demo", choices=["smoke", "demo", "full", "auto"])
    ap.add_argument("--inplace", action="store_true", help="write the executed notebook back into notebooks/")
    ap.add_argument("--data", default=None, help="the notebooks' `data` parameter (default: each notebook's own)")
    ap.add_argument("--pretrained", default=None, metavar="SET",
                    help="the notebooks' `pretrained` parameter: start from that published weight set instead of "
                         "training (make run: 'synthetic')")
    ap.add_argument("--publish", default=None, metavar="SET",
                    help="the notebooks' `publish` parameter: export each run's trained weights as that set "
                         "(make publish: 'synthetic')")
    ap.add_argument("--img-size", type=int, default=None, metavar="PX",
                    help="the notebooks' `img_size` parameter: train at that side instead of the profile's "
                         "(make publish-real IMG_SIZE=64)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config field for every notebook that trains, as train.py's --set (repeatable; "
                         "FACEGAN_SET): e.g. encoder_after.max_seconds=600 (make publish-real CONFIG=...)")
    ap.add_argument("--real", action="store_true",
                    help="a run on real faces (needs --data): outputs/real/<data folder>/, then its metrics and "
                         "figures of generated faces into assets/real/ and the README's real-faces table")
    ap.add_argument("--rehearse", type=float, default=None, metavar="S",
                    help="full profile, every training run capped at S seconds and two epochs; "
                         "results under outputs/rehearsal/")
    args = ap.parse_args(argv)
    nbs = notebooks(args.names)
    if not nbs:
        print(f"no notebooks in {paths.NOTEBOOKS} yet: nothing to run")
        return 0
    outputs = paths.OUTPUTS
    if args.rehearse is not None:
        if args.rehearse <= 0 or args.inplace:
            ap.error("--rehearse takes a positive number of seconds and never writes back into notebooks/")
        if args.profile == "demo":  # the default: a rehearsal is of the full profile
            args.profile = "full"
        outputs = paths.OUTPUTS / "rehearsal"
        os.environ[REHEARSE_ENV] = str(args.rehearse)
        # A rehearsal checks code paths, not learning: kernels run with python -O, which drops the
        # notebooks' asserts on what minutes of training reach; the course checkers raise and still run.
        os.environ["PYTHONOPTIMIZE"] = "1"
        os.environ["FACEGAN_OUTPUTS"] = str(outputs)
        ckpts = paths.CHECKPOINTS / "rehearsal"
        shutil.rmtree(ckpts, ignore_errors=True)  # a rehearsal trains from scratch, never resumes an old one
        os.environ["FACEGAN_CHECKPOINTS"] = str(ckpts)
    real_name = None
    if args.real:
        if args.data is None or args.inplace or args.rehearse is not None:
            ap.error("--real needs --data PATH (a folder of real faces) and goes with neither --inplace nor --rehearse")
        # several folders (a:b) are one data set: celeba_dev+celeba_hq_dev, as the checkpoint folders name it
        real_name = "+".join(Path(p).expanduser().resolve().name for p in args.data.split(os.pathsep))
        outputs = paths.OUTPUTS / "real" / real_name
        os.environ["FACEGAN_OUTPUTS"] = str(outputs)
    if args.set:
        if args.inplace:
            ap.error("--set changes the presets: the committed notebooks (--inplace) run them as they are")
        try:
            parse_overrides(args.set)
        except ValueError as err:
            ap.error(f"--set {err}")
        os.environ[SETTINGS_ENV] = ";".join(args.set)
    if os.environ.pop(PROFILE_ENV, None):
        print(f"{PROFILE_ENV} ignored: the notebooks run with profile={args.profile!r} (--profile)")
    if os.environ.pop(PRETRAINED_ENV, None):
        print(f"{PRETRAINED_ENV} ignored: the notebooks run with pretrained={args.pretrained!r} (--pretrained)")
    if args.data is not None:  # kernels run inside notebooks/: folders as absolute paths (several: a:b)
        args.data = os.pathsep.join(str(Path(p).expanduser().resolve()) if Path(p).expanduser().exists() else p
                                    for p in args.data.split(os.pathsep))
    if args.pretrained and args.publish:
        ap.error("--publish exports weights trained in the run: it goes without --pretrained")
    params = {"profile": args.profile, **({} if args.data is None else {"data": args.data}),
              **{k: v for k, v in (("pretrained", args.pretrained), ("publish", args.publish),
                                   ("img_size", args.img_size)) if v}}
    failed, total = [], 0.0
    for nb in nbs:
        out = nb if args.inplace else outputs / nb.stem / nb.name
        out.parent.mkdir(parents=True, exist_ok=True)
        t0, started = time.perf_counter(), time.time()
        print(f"== {nb.name} ({args.profile}{', rehearsal' if args.rehearse else ''}) -> {out}", flush=True)
        try:
            declared = papermill.inspect_notebook(str(nb))  # 00_data trains nothing: no `pretrained`
            papermill.execute_notebook(str(nb), str(out), cwd=str(paths.NOTEBOOKS), kernel_name="python3",
                                       parameters={k: v for k, v in params.items()
                                                   if k in declared or k not in ("pretrained", "publish", "img_size")},
                                       progress_bar=False, log_output=False)
            if args.inplace:
                drop_injected_cell(out)
            if args.inplace and args.profile != "smoke":  # make publish: what the README shows and tabulates
                publish(nb.stem)
            if real_name:
                publish_real(nb.stem, real_name, outputs, since=started)
        except Exception as err:  # keep going: one broken notebook should not hide the others' results
            failed.append(nb.name)
            print(f"!! {nb.name} failed: {type(err).__name__}: {str(err)[:2000]}", file=sys.stderr)
        seconds = time.perf_counter() - t0
        total += seconds
        slider = seconds_to_first_slider(out) if out.is_file() and nb.name not in failed else None
        print(f"   {nb.name}: {seconds:.0f} s" + ("" if slider is None else f", first slider after {slider:.0f} s"),
              flush=True)
    print(f"all {len(nbs)} notebooks: {total / 60:.1f} min")
    if (args.inplace and args.profile != "smoke") or real_name:
        from .readme import rewrite

        print("README.md results table", "rewritten" if rewrite(paths.ROOT / "README.md") else "unchanged")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
