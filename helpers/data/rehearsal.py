"""Small stand-ins for the real data sets the `full` profile expects, in their exact shapes.

`make rehearse` runs every notebook in the `full` profile on a CPU with short time caps, to find
what breaks in the code paths only a GPU run would otherwise reach (64 and 256 px networks,
CelebA's 40 attributes and 178x218 frames, an LFW person-folder tree). Real CelebA and LFW cannot
be downloaded here, so these sets are rendered by the synthetic face renderer:

- CelebA: img_align_celeba/000001.jpg ... as 178x218 JPEGs (the face drawn on the central
  178x178 square, the frame extended above and below), list_attr_celeba.txt with CelebA's 40
  columns in CelebA's order (the 17 the renderer draws carry its labels; the other 23 are seeded
  coin flips the images do not show), list_eval_partition.txt.
- LFW: lfw/<Person_Name>/<Person_Name>_0001.jpg ..., 250x250 JPEGs with the face in the middle
  (as LFW's frames are wider than the face), several images per person.
- LFWcrop (what the Torch LAPGAN face project trained on): lfwcrop_color/faces/<Person_Name>_0001.ppm,
  64x64 faces cut tightly.

    python -m helpers.data rehearsal --out data/rehearsal --n 300
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .synth import ATTRIBUTES, partition_of, render_batch

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
CELEBA_FRAME = (178, 218)  # width, height of img_align_celeba's JPEGs
LFW_FRAME, LFW_FACE = 250, 150  # LFW's frames are 250x250; the face fills roughly the middle
LFWCROP_SIZE = 64  # LFWcrop's faces are 64x64
PER_PERSON = 4  # LFW images per person folder


def _padded(face: np.ndarray, width: int, height: int) -> Image.Image:
    """Return the (h, w, 3) face centred in a width x height frame, its edges extended outwards."""
    h, w = face.shape[:2]
    top, left = (height - h) // 2, (width - w) // 2
    arr = np.pad(face, ((top, height - h - top), (left, width - w - left), (0, 0)), mode="edge")
    return Image.fromarray(arr)


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def write_celeba_sized(out_dir, n: int = 300, seed: int = 0, chunk: int = 100) -> Path:
    """Write n faces in CelebA's exact layout and shapes (see the module doc) to out_dir; return it."""
    if n < 10:
        raise ValueError(f"n must be >= 10 (every split needs faces), got {n}")
    out = Path(out_dir).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        img_dir = tmp / "img_align_celeba"
        img_dir.mkdir()
        width, height = CELEBA_FRAME
        labels = np.empty((n, len(CELEBA_ATTRIBUTES)), np.int8)
        drawn = [CELEBA_ATTRIBUTES.index(a) for a in ATTRIBUTES]
        rng = np.random.default_rng(seed)
        for start in range(0, n, chunk):
            images, lab = render_batch(seed, start, min(chunk, n - start), width)
            for j, img in enumerate(images):
                _padded(img, width, height).save(img_dir / f"{start + j + 1:06d}.jpg", quality=90)
            block = (rng.random((len(lab), len(CELEBA_ATTRIBUTES))) < 0.3).astype(np.int8)
            block[:, drawn] = lab
            labels[start:start + len(lab)] = block
        names = [f"{i + 1:06d}.jpg" for i in range(n)]
        rows = [name + " " + " ".join(f"{v:2d}" for v in np.where(row > 0, 1, -1)) for name, row in zip(names, labels)]
        (tmp / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(CELEBA_ATTRIBUTES)} \n" + "\n".join(rows) + "\n")
        (tmp / "list_eval_partition.txt").write_text(
            "".join(f"{name} {s}\n" for name, s in zip(names, partition_of(n).tolist())))
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_lfw_sized(out_dir, n: int = 300, seed: int = 1, chunk: int = 100, crop: bool = False) -> Path:
    """Write n faces as an LFW tree to out_dir/lfw, or (crop=True) as LFWcrop's colour set to
    out_dir/lfwcrop_color (see the module doc); return that folder."""
    if n < 10:
        raise ValueError(f"n must be >= 10, got {n}")
    out = Path(out_dir).expanduser().resolve() / ("lfwcrop_color" if crop else "lfw")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for start in range(0, n, chunk):
            images, _ = render_batch(seed, start, min(chunk, n - start), LFWCROP_SIZE if crop else LFW_FACE)
            for j, img in enumerate(images):
                i = start + j
                person = f"Person_{i // PER_PERSON + 1:04d}"
                name = f"{person}_{i % PER_PERSON + 1:04d}"
                folder = tmp / ("faces" if crop else person)
                folder.mkdir(exist_ok=True)
                if crop:
                    Image.fromarray(img).save(folder / f"{name}.ppm")
                else:
                    _padded(img, LFW_FRAME, LFW_FRAME).save(folder / f"{name}.jpg", quality=90)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
