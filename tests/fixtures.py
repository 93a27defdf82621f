"""Tiny data sets in CelebA's exact on-disk layout (and variants) for loader tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ATTRS = ["Eyeglasses", "Male", "Smiling"]


def face_image(i: int, width: int = 178, height: int = 218) -> Image.Image:
    """A CelebA-sized image: border colour encodes nothing, the centre square's colour encodes i."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:] = (10, 200, 10)
    cy, cx = height // 2, width // 2
    arr[cy - 50:cy + 50, cx - 50:cx + 50] = (20 * i % 256, 100, 255 - 20 * i % 256)
    arr[cy - 20:cy + 20, 5:25] = (250, 250, 0)  # off-centre, so a mirrored image differs
    return Image.fromarray(arr)


def attr_values(n: int) -> np.ndarray:
    """(n, 3) values in -1/1 with a known pattern: Eyeglasses every 3rd, Male odd, Smiling i < n/2."""
    i = np.arange(n)
    return np.stack([np.where(i % 3 == 0, 1, -1), np.where(i % 2 == 1, 1, -1),
                     np.where(i < n // 2, 1, -1)], axis=1)


def partition(n: int) -> np.ndarray:
    """CelebA-like 0/1/2 split: the last two images are test, the two before valid."""
    p = np.zeros(n, int)
    p[-4:-2], p[-2:] = 1, 2
    return p


def make_celeba(root: Path, n: int = 12, variant: str = "txt", zero_one: bool = False) -> Path:
    """Write n images + attribute + partition files in CelebA's layout ('txt') or Kaggle's ('csv')."""
    img_dir = root / "img_align_celeba"
    if variant == "csv":
        img_dir = img_dir / "img_align_celeba"  # Kaggle's zip nests the folder
    img_dir.mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        face_image(i).save(img_dir / name, quality=95)
    vals = attr_values(n)
    if zero_one:
        vals = (vals > 0).astype(int)
    parts = partition(n)
    if variant == "txt":
        rows = [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, vals)]
        (root / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(ATTRS) + " \n" + "\n".join(rows) + "\n")
        (root / "list_eval_partition.txt").write_text("".join(f"{nm} {p}\n" for nm, p in zip(names, parts)))
    else:
        rows = [",".join([name, *map(str, row)]) for name, row in zip(names, vals)]
        (root / "list_attr_celeba.csv").write_text("image_id," + ",".join(ATTRS) + "\n" + "\n".join(rows) + "\n")
        (root / "list_eval_partition.csv").write_text(
            "image_id,partition\n" + "".join(f"{nm},{p}\n" for nm, p in zip(names, parts)))
    return root


def make_folder(root: Path, n_people: int = 3, per_person: int = 4) -> Path:
    """Write an LFW-style folder: one sub-folder per person, jpg and png mixed."""
    k = 0
    for p in range(n_people):
        d = root / f"Person_{p}"
        d.mkdir(parents=True)
        for j in range(per_person):
            face_image(k, 250, 250).save(d / f"Person_{p}_{j:04d}.{'png' if j % 2 else 'jpg'}")
            k += 1
    return root


def astronaut(size: int | None = None) -> Image.Image:
    """scikit-image's public-domain astronaut photo (Eileen Collins, NASA; 512x512, one frontal face
    with an 88 px box), optionally resized to size x size: a real face without a file in the repository."""
    from skimage.data import astronaut as photo

    img = Image.fromarray(photo())
    return img if size is None else img.resize((size, size), Image.LANCZOS)


def png_bytes(img) -> bytes:
    """Return a PIL image or a uint8 (H, W[, 3]) array as PNG bytes (what an upload box receives)."""
    import io

    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img))).save(buf, format="PNG")
    return buf.getvalue()
