"""Any photo as a CelebA-aligned face: find the face, its five landmarks, one similarity transform.

dlib's HOG detector (Dalal & Triggs 2005, as the judges use) finds the face, dlib's 68-point
predictor (Kazemi & Sullivan 2014) its landmarks, reduced to CelebA's five (eye centres, nose tip,
mouth corners: the points CelebA's own alignment used, Liu et al. 2015). One least-squares
similarity (rotation, scale, shift; Umeyama 1991) puts them on TEMPLATE, the mean position of the
same five points over CelebA's aligned dev faces, and the photo is warped to CelebA's 178x218
(ARCHITECTURE.md, Photos in). The models then crop and resize it like any CelebA image.

    python -m helpers.data.align IN_DIR OUT_DIR        # each photo -> OUT_DIR/<path>.png + align_report.json
    python -m helpers.data.align --measure-template    # how TEMPLATE was measured (helpers.data.align_measure)
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

WIDTH, HEIGHT = 178, 218  # CelebA's aligned images (img_align_celeba)
MIN_FACE = 64  # smallest face box (px, dlib's box side) worth aligning: smaller ones give blurred landmarks
DETECT_SIDE = 800  # the detector sees a copy whose long side is at most this (HOG time grows with area)
LANDMARK_BOX = 200  # the landmark predictor sees the face box at most this big (more pixels add nothing)
POINTS = ("left eye", "right eye", "nose", "left mouth", "right mouth")  # as seen in the picture
# Mean of the five points (x, y at 178x218) over CelebA's aligned dev faces, measured by
# `python -m helpers.data.align --measure-template` (helpers.data.align_measure.measure_template):
# 10,087 faces found of 5,426 celeba_hq_dev (178x218) + 4,857 celeba_dev (89x109 scaled x2); median
# face box 87 px; spread per point (std, px) 1.4-1.7 at the eyes, 2-3.4 at the mouth, 4.5-6.9 at the nose.
TEMPLATE = np.array([[69.34, 112.62],
                     [107.70, 112.65],
                     [88.12, 134.78],
                     [71.15, 152.83],
                     [105.99, 152.86]])
NO_FACE = "no face found in the upload: use a photo where one face is clearly visible, frontal, at least 64 px"
_MODELS: dict = {}


@dataclass
class Alignment:
    """What align_image did: the aligned face (178x218 RGB) or why there is none, and the numbers.

    found: a face was aligned; message: what was done, or why not (for a read-out or a report);
    faces: how many faces the detector found; box_px: side of the chosen face's box in the photo;
    angle_deg: how far the photo was turned (degrees, positive = anticlockwise); scale: aligned px
    per photo px; error_px: mean distance of the five transformed landmarks to TEMPLATE (178x218 px);
    landmarks: (5, 2) x, y of POINTS in the photo.
    """

    found: bool
    message: str
    image: Image.Image | None = field(default=None, repr=False)
    faces: int = 0
    box_px: int = 0
    angle_deg: float = 0.0
    scale: float = 0.0
    error_px: float = float("nan")
    landmarks: np.ndarray | None = field(default=None, repr=False)

    def report(self) -> dict:
        """Return the numbers as a JSON-ready dict (no image)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("image", "landmarks")}
        out["landmarks"] = None if self.landmarks is None else np.round(self.landmarks, 2).tolist()
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


# --------------------------------------------------------------------------- dlib
def _model(name: str):
    """Return dlib's 'detector' or 68-point 'landmarks' predictor, loaded on first use."""
    if name not in _MODELS:
        from ..eval import judges  # finds dlib and its model files, with the install hint when missing

        dlib = judges._dlib()
        _MODELS[name] = (dlib.get_frontal_face_detector() if name == "detector" else dlib.shape_predictor(
            str(judges.model_file("shape_predictor_68_face_landmarks.dat", "the face aligner"))))
    return _MODELS[name]


def detect(img: Image.Image) -> list[tuple[float, float, float, float]]:
    """Return the faces dlib's detector finds: boxes (left, top, right, bottom) in img's pixels, largest first."""
    k = max(1.0, max(img.size) / DETECT_SIDE)
    small = img if k == 1 else img.resize((round(img.width / k), round(img.height / k)), Image.BILINEAR,
                                          reducing_gap=2.0)
    arr = np.asarray(small.convert("RGB"))
    boxes = []
    for upsample in (0, 1):  # 0 finds faces >= 80 px; only when none, look again at 2x for 40-80 px ones
        rects = _model("detector")(arr, upsample)
        boxes = [(r.left() * k, r.top() * k, (r.right() + 1) * k, (r.bottom() + 1) * k) for r in rects]
        if boxes:
            break
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def landmarks(img: Image.Image, box) -> np.ndarray:
    """Return POINTS (5, 2) float x, y in img's pixels for the face in box (left, top, right, bottom)."""
    import dlib

    side = box[2] - box[0]
    k = max(1.0, side / LANDMARK_BOX)
    pad = side * 0.5  # the predictor looks a little outside the box (chin, brows)
    region = tuple(int(round(v)) for v in (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))
    w, h = region[2] - region[0], region[3] - region[1]
    crop = img.crop(region)  # black outside the photo: the predictor reads the box, not the border
    if k > 1:
        crop = crop.resize((max(1, round(w / k)), max(1, round(h / k))), Image.BILINEAR, reducing_gap=2.0)
    sx, sy = crop.width / w, crop.height / h
    rect = dlib.rectangle(*(int(round(v)) for v in ((box[0] - region[0]) * sx, (box[1] - region[1]) * sy,
                                                    (box[2] - region[0]) * sx - 1, (box[3] - region[1]) * sy - 1)))
    shape = _model("landmarks")(np.asarray(crop.convert("RGB")), rect)
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)
    five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])  # 68-point indices (iBUG)
    return (five + 0.5) / (sx, sy) - 0.5 + region[:2]  # pixel centres back in img's pixels


# --------------------------------------------------------------------------- geometry
def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Return the 2x3 matrix [sR | t] of the least-squares similarity taking points src (N, 2) onto
    dst (N, 2) (Umeyama 1991, no reflection)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ flip @ vt
    scale = float((sv * np.diag(flip)).sum() / s.var(0).sum())
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Return points (N, 2) mapped by a 2x3 affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """Return the inverse of a 2x3 affine matrix."""
    a = np.linalg.inv(matrix[:, :2])
    return np.hstack([a, -(a @ matrix[:, 2])[:, None]])


def warp(img: Image.Image, matrix: np.ndarray, size=(WIDTH, HEIGHT)) -> Image.Image:
    """Return img warped by matrix (2x3, img pixels -> output pixels, pixel centres at integers) to size (W, H).

    Resampling: where the warp shrinks, the region it reads is first resized with LANCZOS to about
    the output's scale (anti-aliased), then PIL bicubic does the rotation and the rest. Border: the
    photo's edge pixels are repeated outward ('edge', as CelebA's own aligned faces show streaks
    where the photo ran out), never black.
    """
    inv = invert(matrix)  # output -> img
    w, h = size
    corners = apply(inv, np.array([[-3, -3], [w + 2, -3], [-3, h + 2], [w + 2, h + 2]], float))
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
    # the footprint of the output in img, filled outside img by repeating img's edge
    arr = np.asarray(img.crop((max(x0, 0), max(y0, 0), min(max(x1, 1), img.width), min(max(y1, 1), img.height))))
    top, left = max(0, -y0), max(0, -x0)
    pad = ((top, (y1 - y0) - top - arr.shape[0]), (left, (x1 - x0) - left - arr.shape[1]), (0, 0))[:arr.ndim]
    region = Image.fromarray(np.pad(arr, [(a, max(b, 0)) for a, b in pad], mode="edge"))
    inv = inv - np.array([[0, 0, x0], [0, 0, y0]])
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.9:  # shrink with LANCZOS first: bicubic alone would alias
        sw, sh = max(1, round(region.width * scale)), max(1, round(region.height * scale))
        fx, fy = sw / region.width, sh / region.height
        region = region.resize((sw, sh), Image.LANCZOS)
        inv = np.array([[fx], [fy]]) * inv + np.array([[0, 0, 0.5 * fx - 0.5], [0, 0, 0.5 * fy - 0.5]])
    a = inv[:, :2]
    c = inv[:, 2] + 0.5 - a @ (0.5, 0.5)  # PIL samples pixel centres at +0.5
    return region.transform(size, Image.AFFINE, (a[0, 0], a[0, 1], c[0], a[1, 0], a[1, 1], c[1]),
                            resample=Image.BICUBIC)


# --------------------------------------------------------------------------- alignment
def align_image(img, template: np.ndarray | None = None, min_face: int = MIN_FACE) -> Alignment:
    """Return the Alignment of one photo (PIL image, or uint8 (H, W, 3) / (H, W) array): the largest
    face's five points on template (default TEMPLATE), the photo warped to 178x218 RGB."""
    img = Image.fromarray(np.asarray(img)) if not isinstance(img, Image.Image) else img
    img = img.convert("RGB")
    boxes = detect(img)
    if not boxes:
        return Alignment(False, NO_FACE)
    box = boxes[0]
    side = int(round(box[2] - box[0]))
    several = f" ({len(boxes)} faces found: aligned the largest)" if len(boxes) > 1 else ""
    if side < min_face:
        return Alignment(False, f"the face is too small to align: {side} px, at least {min_face} px needed "
                                f"(use a larger photo or one taken closer){several}", faces=len(boxes), box_px=side)
    points = landmarks(img, box)
    template = TEMPLATE if template is None else template
    matrix = similarity(points, template)
    angle = float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
    angle = -angle  # y points down: a matrix angle of +a turns the picture clockwise
    turn = "" if round(abs(angle)) == 0 else (" anticlockwise" if angle > 0 else " clockwise")
    message = f"aligned: face {side} px, rotated {abs(angle):.0f} degrees{turn}{several}"
    return Alignment(True, message, warp(img, matrix), len(boxes), side, angle,
                     float(np.sqrt(np.linalg.det(matrix[:, :2]))),
                     float(np.linalg.norm(apply(matrix, points) - template, axis=1).mean()), points)


def read_image(data: bytes | Path | str) -> Image.Image:
    """Return a photo (bytes or a path) as an RGB PIL image turned upright by its EXIF orientation
    (phones store portraits sideways); ValueError for an empty or unreadable file."""
    if isinstance(data, (bytes, bytearray, memoryview)) and not data:
        raise ValueError("the upload is empty: choose a JPEG or PNG file")
    try:
        with Image.open(io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray, memoryview)) else data) as img:
            img.load()
            return ImageOps.exif_transpose(img).convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"could not read the upload as an image ({err}); use a JPEG or PNG file") from None


# --------------------------------------------------------------------------- folders
def align_folder(in_dir: Path, out_dir: Path, progress: bool = True) -> dict:
    """Return the report {relative path: Alignment.report()} after writing each photo under in_dir as
    out_dir/<relative path>.png (178x218) and the report as out_dir/align_report.json."""
    from tqdm.auto import tqdm

    from .sources import IMAGE_SUFFIXES, DataError

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    files = sorted(p for p in in_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{in_dir} holds no .jpg/.jpeg/.png/.ppm/.pgm photos (searched recursively)")
    report = {}
    for f in tqdm(files, desc="align", unit="img", disable=not progress):
        rel = f.relative_to(in_dir)
        try:
            result = align_image(read_image(f))
        except ValueError as err:
            result = Alignment(False, str(err).replace("the upload", "the file"))
        if result.found:
            dest = out_dir / rel.parent / f"{rel.name}.png"
            dest.parent.mkdir(parents=True, exist_ok=True)
            result.image.save(dest)
        report[str(rel)] = result.report()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "align_report.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.data.align", description=__doc__.split("\n")[0])
    p.add_argument("in_dir", nargs="?", help="a folder of photos (searched recursively)")
    p.add_argument("out_dir", nargs="?", help="where the aligned 178x218 PNGs and align_report.json go")
    p.add_argument("--measure-template", action="store_true",
                   help="measure TEMPLATE on ../shared/data's aligned CelebA faces and print it")
    p.add_argument("--measure-error", action="store_true",
                   help="landmark error after aligning perturbed aligned dev faces, and the time per photo")
    args = p.parse_args(argv)
    if args.measure_template or args.measure_error:
        from . import align_measure

        return align_measure.main(template=args.measure_template, error=args.measure_error)
    if not (args.in_dir and args.out_dir):
        p.error("give IN_DIR and OUT_DIR (or --measure-template / --measure-error)")
    from .sources import DataError

    try:
        report = align_folder(Path(args.in_dir), Path(args.out_dir))
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    found = sum(r["found"] for r in report.values())
    print(f"aligned {found} of {len(report)} photos into {args.out_dir} (why not, per file: align_report.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
