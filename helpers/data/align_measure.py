"""How the aligner's numbers were measured (helpers.data.align): its template on CelebA's aligned dev
faces, its landmark error on perturbed aligned faces, its time per photo. Numbers only, no images.

    python -m helpers.data.align --measure-template   # TEMPLATE, to paste into align.py
    python -m helpers.data.align --measure-error      # docs/experiments.md, Alignment (issue 35)
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..core import paths
from . import align

SHARED = paths.ROOT.parent / "shared" / "data"
# (folder, factor to 178x218): the full-size set as it is, the 89x109 set scaled x2
DEV_SETS = (("celeba_hq_dev", 1), ("celeba_dev", 2))
CANVAS = (320, 320)  # the perturbed "photo": room for a 1.4x face turned by 20 degrees
# CelebA's faces have 87 px boxes (median), so 0.7x is ~61 px, under the uploads' MIN_FACE: the
# study measures the geometry down there, the uploads keep their stricter floor.
STUDY_MIN_FACE = 40


def dev_files(root: Path = SHARED) -> list[tuple[Path, int]]:
    """Return (file, scale factor to 178x218) for every aligned dev face; DataError when none is there."""
    from .sources import DataError

    out = [(f, k) for name, k in DEV_SETS for f in sorted((root / name / "img_align_celeba").glob("*.jpg"))]
    if not out:
        raise DataError(f"no aligned CelebA faces under {root}/celeba_hq_dev or celeba_dev: "
                        "the template and the error are measured on ../shared/data")
    return out


def load_aligned(file: Path, k: int) -> Image.Image:
    """Return one aligned dev face at 178x218 RGB (a 89x109 one scaled x2, bicubic)."""
    with Image.open(file) as img:
        img = img.convert("RGB")
    return img if k == 1 else img.resize((align.WIDTH, align.HEIGHT), Image.BICUBIC)


def face_points(img: Image.Image) -> tuple[np.ndarray | None, int]:
    """Return (the largest face's five points (5, 2) or None, its box side in px)."""
    boxes = align.detect(img)
    if not boxes:
        return None, 0
    return align.landmarks(img, boxes[0]), int(round(boxes[0][2] - boxes[0][0]))


def measure_template(files) -> dict:
    """Return {'template': (5, 2) mean points, 'std': (5, 2), 'n': faces used, 'missed': faces not
    found, 'box_px': median face box} over aligned faces [(file, factor)]."""
    from tqdm.auto import tqdm

    pts, boxes, missed = [], [], 0
    for f, k in tqdm(files, desc="landmarks", unit="img"):
        p, side = face_points(load_aligned(f, k))
        if p is None:
            missed += 1
            continue
        pts.append(p)
        boxes.append(side)
    pts = np.array(pts)
    return {"template": pts.mean(0), "std": pts.std(0), "n": len(pts), "missed": missed,
            "box_px": float(np.median(boxes))}


def perturb(img: Image.Image, angle: float, scale: float, shift=(0.0, 0.0), size=CANVAS) -> Image.Image:
    """Return an aligned face turned by `angle` degrees (anticlockwise), scaled and shifted (px) about
    its centre onto a canvas of size (W, H), the border filled as align.warp fills it."""
    a = np.radians(-angle)  # y points down
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = np.array([(align.WIDTH - 1) / 2, (align.HEIGHT - 1) / 2])
    t = (np.array(size) - 1) / 2 + np.asarray(shift) - rot @ centre
    return align.warp(img, np.hstack([rot, t[:, None]]), size)


def measure_error(files, n: int = 400, seed: int = 0) -> dict:
    """Return landmark errors (px at 178x218; median, p95) after aligning n randomly perturbed
    aligned faces (angle +-20 degrees, scale 0.7-1.4, shift +-20 px): 'to_template' (points found
    again on the aligned result vs TEMPLATE), 'to_own' (vs the same face's points before the
    perturbation), 'fit' (the transform's own residual), 'celeba_to_template' (CelebA's alignment
    of the same faces vs TEMPLATE: the floor a similarity cannot remove), and the failures."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(files), size=min(n, len(files)), replace=False)
    err = {"to_template": [], "to_own": [], "fit": [], "celeba_to_template": []}
    failed: dict[str, int] = {}
    for i in tqdm(pick, desc="perturb + align", unit="img"):
        face = load_aligned(*files[i])
        own, _ = face_points(face)
        if own is None:
            failed["not found unperturbed"] = failed.get("not found unperturbed", 0) + 1
            continue
        photo = perturb(face, rng.uniform(-20, 20), float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))),
                        rng.uniform(-20, 20, size=2))
        res = align.align_image(photo, min_face=STUDY_MIN_FACE)
        again = face_points(res.image)[0] if res.found else None
        if again is None:
            why = res.message.split(":")[0] if not res.found else "not found after alignment"
            failed[why] = failed.get(why, 0) + 1
            continue
        err["to_template"].append(np.linalg.norm(again - align.TEMPLATE, axis=1).mean())
        err["to_own"].append(np.linalg.norm(again - own, axis=1).mean())
        err["fit"].append(res.error_px)
        err["celeba_to_template"].append(np.linalg.norm(own - align.TEMPLATE, axis=1).mean())
    out = {k: {"median": float(np.median(v)), "p95": float(np.percentile(v, 95))} for k, v in err.items()}
    return {**out, "n": len(err["fit"]), "failed": failed}


def measure_time(repeats: int = 5) -> dict:
    """Return seconds per align_image call (median of repeats) on scikit-image's astronaut as it is
    (512x512) and pasted into phone-sized photos, plus the first call's model loading."""
    from skimage.data import astronaut

    face = Image.fromarray(astronaut())
    align._MODELS.clear()  # the first photo pays for loading dlib's models
    t0 = time.perf_counter()
    align._model("detector"), align._model("landmarks")
    out = {"load_models_s": time.perf_counter() - t0}
    for name, (w, h) in {"512x512": (512, 512), "1600x1200": (1600, 1200), "4032x3024": (4032, 3024)}.items():
        photo = face if (w, h) == face.size else Image.new("RGB", (w, h), (90, 110, 130))
        if photo is not face:
            big = face.resize((h * 2 // 3, h * 2 // 3), Image.BICUBIC)
            photo.paste(big, ((w - big.width) // 2, (h - big.height) // 2))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            assert align.align_image(photo).found, name
            times.append(time.perf_counter() - t0)
        out[name] = float(np.median(times))
    return out


def main(template: bool = True, error: bool = False) -> int:
    files = dev_files()
    if template:
        r = measure_template(files)
        rows = ",\n                     ".join(f"[{x:.2f}, {y:.2f}]" for x, y in r["template"])
        print(f"TEMPLATE = np.array([{rows}])  # {', '.join(align.POINTS)}")
        print(f"faces used {r['n']}, not found {r['missed']}, median face box {r['box_px']:.0f} px, "
              f"std per point (px) {np.round(r['std'], 2).tolist()}")
    if error:
        print("landmark error (px at 178x218):", measure_error(files))
        print("seconds per photo:", measure_time())
    return 0
