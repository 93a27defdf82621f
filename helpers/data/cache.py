"""Decode, crop and resize each image once into a uint8 cache file; every epoch reads the cache.

On a 2-core machine every JPEG decode steals time from training (decoding runs at a small fraction
of the rate cached batches are read: notebook 00 measures both), so no model decodes during training.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..core import paths
from ..core.atomic import atomic_write

CACHE_VERSION = 1
VALID_SIZES = (8, 16, 32, 64, 128, 256)


def check_size(size: int) -> None:
    """Raise a clear error for an image size the models were not built for."""
    if size not in VALID_SIZES:
        raise ValueError(f"image_size={size} is not supported; use one of {VALID_SIZES}")


def crop_box(width: int, height: int, crop: int | None) -> tuple[int, int, int, int]:
    """Return the centred square (left, top, right, bottom) of side `crop` (None: the short side)."""
    side = min(width, height) if crop is None else min(crop, width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def crop_resize(img: Image.Image, size: int, crop: int | None) -> Image.Image:
    """Return img's centred square of side `crop` (None: the short side) resized to size x size with
    LANCZOS: what every cached image, an aligned photo and an upload go through."""
    return img.resize((size, size), Image.LANCZOS, box=crop_box(img.width, img.height, crop))


def load_image(path: Path, size: int, crop: int | None, channels: int, align: bool = False) -> np.ndarray:
    """Return one image as uint8 (channels, size, size): centre crop, then LANCZOS resize.

    align: first put the photo's face where CelebA's are (helpers.data.align, 178x218); ValueError
    saying why when it has none.
    """
    if align:
        from . import align as aligner

        result = aligner.align_image(aligner.read_image(path))
        if not result.found:
            raise ValueError(result.message.replace("in the upload", "in the photo"))
        img = crop_resize(result.image.convert("RGB" if channels == 3 else "L"), size, crop)
        arr = np.asarray(img, dtype=np.uint8)
        return arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    with Image.open(path) as img:
        full_width = img.width
        # draft() lets libjpeg decode at 1/2, 1/4 or 1/8 scale: much faster for 178x218 -> 64.
        # Ask for twice the target side (of the cropped square) so LANCZOS still anti-aliases.
        if img.format == "JPEG":
            side = min(img.size) if crop is None else min(crop, *img.size)
            factor = max(1.0, side / (2 * size))
            img.draft("RGB" if channels == 3 else "L", (int(img.width / factor), int(img.height / factor)))
        img = img.convert("RGB" if channels == 3 else "L")
        shrink = img.width / full_width  # draft may have scaled the image: scale the crop with it
        img = crop_resize(img, size, None if crop is None else round(crop * shrink))
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def _load_chunk(args) -> tuple[np.ndarray, list[int], list[str]]:
    """Worker: decode a chunk of files; unreadable files are reported, not fatal."""
    files, size, crop, channels, align = args
    out = np.zeros((len(files), channels, size, size), dtype=np.uint8)
    bad, errors = [], []
    for i, f in enumerate(files):
        try:
            out[i] = load_image(Path(f), size, crop, channels, align)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
            bad.append(i)
            errors.append(f"{Path(f).name}: {err}")
    return out, bad, errors


def decode_files(files: list[Path], size: int, crop: int | None, channels: int,
                 workers: int | None = None, progress: bool = True,
                 align: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N, C, size, size), ok mask (N,)) decoding `files` in parallel.

    Unreadable or corrupt images (and with align=True, photos without a face to align) are skipped
    with one warning that counts them.
    """
    workers = workers or min(2, os.cpu_count() or 1)
    chunk = 256
    jobs = [([str(f) for f in files[i:i + chunk]], size, crop, channels, align) for i in range(0, len(files), chunk)]
    images = np.zeros((len(files), channels, size, size), dtype=np.uint8)
    ok = np.ones(len(files), dtype=bool)
    errors: list[str] = []
    bar = tqdm(total=len(files), desc=f"{'align + ' if align else ''}decode -> {size}px", unit="img",
               disable=not progress)
    if workers > 1 and len(jobs) > 1:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(_load_chunk, jobs)
    else:
        pool, results = None, map(_load_chunk, jobs)
    try:
        for j, (arr, bad, errs) in enumerate(results):
            start = j * chunk
            images[start:start + len(arr)] = arr
            ok[[start + b for b in bad]] = False
            errors += errs
            bar.update(len(arr))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    if errors:
        what = "unreadable or unalignable" if align else "unreadable"
        warnings.warn(f"skipped {len(errors)} {what} image(s) of {len(files)} "
                      f"(first: {errors[0]}); delete or replace them to silence this")
    if not ok.any():
        raise ValueError(f"none of the {len(files)} images could be read (first error: {errors[0]})")
    return images, ok


def resize_pixels(pixels: np.ndarray, size: int) -> np.ndarray:
    """Return in-memory uint8 images (N, C, h, w) resized to (N, C, size, size) with LANCZOS."""
    out = np.zeros((len(pixels), pixels.shape[1], size, size), dtype=np.uint8)
    for i, img in enumerate(pixels):
        for c in range(img.shape[0]):
            out[i, c] = np.asarray(Image.fromarray(img[c]).resize((size, size), Image.LANCZOS))
    return out


def cache_key(kind: str, root: Path | None, fingerprint: str, size: int, crop: int | None, channels: int,
              align: bool = False) -> str:
    """Return a short, readable, unique name for one (source, size, crop, channels, align) cache."""
    ident = [CACHE_VERSION, kind, str(root.resolve()) if root else None, fingerprint, size, crop, channels]
    if align:  # appended only when on, so the caches of unaligned sets keep their names
        from .align import TEMPLATE

        ident += ["align", TEMPLATE.round(2).tolist()]
    digest = hashlib.sha1(json.dumps(ident).encode()).hexdigest()[:10]
    label = (root.name if root else kind) + ("_aligned" if align else "")
    return f"{label}_{size}px_c{crop or 'full'}_{channels}ch_{digest}"


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda fh: np.save(fh, array))


def cached_images(key: str, build) -> tuple[np.ndarray, np.ndarray]:
    """Return (images memmap (N, C, H, W) uint8, ok mask) from the cache, building it on a miss.

    `build()` returns (images, ok); both are written atomically, so an interrupted build is
    simply rebuilt next time.
    """
    paths.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    img_path = paths.CACHE_DIR / f"{key}.npy"
    ok_path = paths.CACHE_DIR / f"{key}.ok.npy"
    if not (img_path.exists() and ok_path.exists()):
        images, ok = build()
        _atomic_save_npy(ok_path, ok)
        _atomic_save_npy(img_path, images)
    return np.load(img_path, mmap_mode="r"), np.load(ok_path)
