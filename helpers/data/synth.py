"""Procedural synthetic faces: the project's embedded default data set (CelebA stand-in).

Each face is a pure function of (seed, index): binary CelebA attributes are sampled with
CelebA-like correlations, ~40 continuous nuisance factors make every face different, and
`synth_render.render_from_factors` draws them. `write_celeba_layout` writes the result in
CelebA's exact on-disk layout so every loader that reads CelebA reads this too.

    python -m helpers.data synth --out data/synthfaces --n 20000 --size 64
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .synth_render import render_from_factors  # noqa: F401  (re-exported for tests/notebooks)

ATTRIBUTES = [
    "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Gray_Hair", "Male",
    "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Pale_Skin", "Smiling",
    "Wearing_Hat", "Wearing_Lipstick", "Young",
]  # CelebA names, in CelebA's (alphabetical) column order
GENERATOR, VERSION = "facegan-synth", 2  # bump whenever the drawing changes: old sets are re-rendered
# CelebA's official split sizes; partitions keep the same proportions and contiguity.
_CELEBA_SPLIT = (162770, 19867, 19962)
_N_UNIFORM = 96


def _check_seed_index(seed: int, index: int) -> None:
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not (isinstance(index, (int, np.integer)) and index >= 0):
        raise ValueError(f"index must be a non-negative int, got {index!r}")


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or not 8 <= size <= 1024:
        raise ValueError(f"size must be an int in [8, 1024] pixels, got {size!r}")


def sample_factors(seed: int, index: int) -> dict:
    """Return the factors of face `index`: every name in ATTRIBUTES as 0/1 plus continuous factors.

    Continuous factors are floats (mostly fractions of the image size, hues in [0, 1)); the dict
    is everything `render_from_factors` needs. Deterministic in (seed, index) alone.
    """
    _check_seed_index(seed, index)
    u = np.random.default_rng([int(seed), int(index)]).random(_N_UNIFORM).tolist()
    it = iter(u)

    def U(lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * next(it)

    # Binary attributes. Every draw is consumed whatever the branch, so the continuous
    # factors below never shift when an attribute changes.
    male = U() < 0.42
    young = U() < 0.78
    bald = male and U() < (0.14 if young else 0.45)
    r_hat, r_gray, r_hair = U(), U(), U()
    hat = not bald and r_hat < 0.132
    glasses = U() < (0.14 if young else 0.25)
    hair = "none"
    if not bald:
        if r_gray < (0.02 if young else 0.45):
            hair = "gray"
        else:  # women are more often blond; "other" is red/auburn with no CelebA label
            cum = (0.32, 0.64, 0.88) if not male else (0.38, 0.74, 0.88)
            hair = ("black", "brown", "blond", "other")[sum(r_hair >= c for c in cum)]
    r_bangs = U()
    bangs = not bald and r_bangs < (0.10 if male else 0.25)
    smiling = U() < 0.48
    mouth_open = U() < (0.70 if smiling else 0.25)
    r_beard, r_must = U(), U()
    beard = male and r_beard < (0.38 if young else 0.5)
    mustache = male and r_must < (0.42 if beard else 0.12)
    pale = U() < (0.07 if male else 0.13)
    r_lip = U()
    lipstick = not male and r_lip < 0.72  # CelebA has almost no men with lipstick; here none
    narrow = U() < 0.12

    f = {
        "Bald": bald, "Bangs": bangs, "Black_Hair": hair == "black", "Blond_Hair": hair == "blond",
        "Brown_Hair": hair == "brown", "Eyeglasses": glasses, "Gray_Hair": hair == "gray", "Male": male,
        "Mouth_Slightly_Open": mouth_open, "Mustache": mustache, "Narrow_Eyes": narrow,
        "No_Beard": not beard, "Pale_Skin": pale, "Smiling": smiling, "Wearing_Hat": hat,
        "Wearing_Lipstick": lipstick, "Young": young,
    }
    f = {k: int(v) for k, v in f.items()}
    r_bald_hair = U()
    f.update(
        # pose and head shape (fractions of the image size)
        dx=U(-0.035, 0.035), dy=U(-0.03, 0.03), tilt=U(-6.0, 6.0),
        face_a=U(0.225, 0.262) if male else U(0.205, 0.238), face_b=U(0.28, 0.325),
        crown_n=U(2.0, 2.4), jaw_n=U(2.5, 3.6) if male else U(1.55, 2.05),
        neck_len=U(0.03, 0.08), shoulder=U(0.4, 0.5),
        # colours: skin tone within its (pale / non-pale) band, hair within its class
        skin_t=_skin_t(U(), hair), skin_j=U(), hair_j1=U(), hair_j2=U(), hair_j3=U(),
        bald_hair=("black", "brown", "gray")[int(r_bald_hair * 2) if young else int(r_bald_hair * 3)],
        # hair shape
        hair_side=U(0.04, 0.09) if not male else U(0.028, 0.05), hair_top=U(0.03, 0.08),
        hair_len=U(0.0, 0.22), hair_flare=U(1.0, 1.7), part=U(-1, 1),
        hairline=U(0.66, 0.8) if young or not male else U(0.8, 0.92),
        fringe_gap=U(0.008, 0.02), fringe_teeth=U(),
        # features
        eye_y=U(0.12, 0.2), eye_dx=U(0.088, 0.112), eye_w=U(0.045, 0.056), eye_h=U(0.027, 0.034),
        gaze=U(-1, 1), iris_h=U(0.05, 0.6), iris_s=U(0.3, 0.8), iris_v=U(0.25, 0.6),
        brow_gap=U(0.05, 0.062), brow_t=U(0.024, 0.032) if male else U(0.011, 0.016),
        brow_tilt=U(-0.008, 0.01),
        nose_y=U(0.55, 0.65), nose_len=U(0.04, 0.07), nose_w=U(0.025, 0.038),
        mouth_y=U(0.5, 0.58), mouth_w=U(0.06, 0.085),
        lip_h=U(-0.04, 0.02), lip_s=U(0.72, 0.9), lip_v=U(0.62, 0.88),
        beard_top=U(-0.02, 0.05), wrinkle_k=U(0.42, 0.55), wrinkle_w=U(0.017, 0.022),
        # accessories, drawn only when their attribute is 1 but always sampled
        glasses_style=U(), glasses_h=U(), glasses_v=U(0.05, 0.25), glasses_t=U(0.018, 0.026),
        hat_style=U(), hat_h=_hat_hue(U()), hat_s=U(0.55, 0.9), hat_v=U(0.5, 0.92),
        hat_low=U(0.0, 0.03), hat_h_extra=U(0.02, 0.07),
        # scene
        bg_h=U(), bg_s=U(0.05, 0.55), bg_v=U(0.3, 0.95),
        cloth_h=U(), cloth_s=U(0.1, 0.8), cloth_v=U(0.2, 0.9),
        light_dir=U(0.0, 6.2832), light_s=U(0.0, 0.22),
        noise_amp=U(1.0, 6.0), noise_ox=U(), noise_oy=U(),
    )
    if f["bald_hair"] == "brown" and f["skin_t"] < 0.3:  # same clash as above, for brows and beard
        f["bald_hair"] = "black"
    return f


def _skin_t(r: float, hair: str) -> float:
    # Brown and red hair have the hue, saturation and value of dark skin, and blond those of the
    # lightest tone; keeping those pairs apart keeps hair, fringe and beard visible on the face.
    lo, hi = {"brown": (0.3, 1.0), "other": (0.4, 1.0), "blond": (0.0, 0.85)}.get(hair, (0.0, 1.0))
    return lo + (hi - lo) * r


def _hat_hue(r: float) -> float:
    # greens or cyan..magenta: hues no hair class (black/brown/blond/gray/red) can take
    return 0.26 + r / 0.3 * 0.16 if r < 0.3 else 0.5 + (r - 0.3) / 0.7 * 0.42


def attributes_of(f: dict) -> dict[str, int]:
    """Return {attribute: 0/1} for ATTRIBUTES, taken from a factor dict."""
    return {k: int(f[k]) for k in ATTRIBUTES}


def render_face(seed: int, index: int, size: int = 64):
    """Return (PIL RGB image size x size, {attribute: 0/1}) for face `index` of `seed`."""
    _check_size(size)
    f = sample_factors(seed, index)
    return Image.fromarray(render_from_factors(f, size)), attributes_of(f)


def render_batch(seed: int, start: int, n: int, size: int):
    """Return (uint8 images (n, size, size, 3) RGB, int8 labels (n, len(ATTRIBUTES)) in {0, 1}).

    Faces start..start+n-1; each equals `render_face(seed, i, size)`, whatever the batching.
    """
    _check_size(size)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    _check_seed_index(seed, start)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty((n, len(ATTRIBUTES)), dtype=np.int8)
    for j in range(n):
        f = sample_factors(seed, start + j)
        images[j] = render_from_factors(f, size)
        labels[j] = [f[k] for k in ATTRIBUTES]
    return images, labels


def partition_of(n: int) -> np.ndarray:
    """Return int8 (n,) split ids 0=train, 1=valid, 2=test: contiguous blocks in CelebA's proportions."""
    total = sum(_CELEBA_SPLIT)
    n_train = round(n * _CELEBA_SPLIT[0] / total)
    n_valid = round(n * (_CELEBA_SPLIT[0] + _CELEBA_SPLIT[1]) / total) - n_train
    split = np.full(n, 2, dtype=np.int8)
    split[:n_train] = 0
    split[n_train:n_train + n_valid] = 1
    return split


def _write_chunk(job: tuple) -> tuple[int, np.ndarray]:
    """Render and save faces [start, stop) as JPEGs; return (start, int8 labels)."""
    seed, start, stop, size, img_dir = job
    labels = np.empty((stop - start, len(ATTRIBUTES)), dtype=np.int8)
    for j, i in enumerate(range(start, stop)):
        f = sample_factors(seed, i)
        Image.fromarray(render_from_factors(f, size)).save(os.path.join(img_dir, f"{i + 1:06d}.jpg"), quality=95)
        labels[j] = [f[k] for k in ATTRIBUTES]
    return start, labels


def write_celeba_layout(out_dir, n: int = 20000, size: int = 64, seed: int = 0, workers: int = 2,
                        progress: bool = True, overwrite: bool = False) -> Path:
    """Return the path of a finished CelebA-layout data set of `n` faces written to `out_dir`.

    Writes img_align_celeba/000001.jpg... (JPEG q95, size x size), list_attr_celeba.txt (count,
    names, then `000001.jpg  1 -1 ...` rows), list_eval_partition.txt (0/1/2 in CelebA's
    proportions) and synth_meta.json. Everything is built in a temporary sibling folder and
    renamed into place, so an interrupted run never leaves a partial set behind.
    """
    _check_size(size)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if n > 999999:
        raise ValueError(f"n must be <= 999999 (CelebA file names have 6 digits), got {n}")
    _check_seed_index(seed, 0)
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True (CLI: --overwrite) "
                                  "or choose another folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        img_dir = tmp / "img_align_celeba"
        img_dir.mkdir()
        labels = _render_all(seed, n, size, str(img_dir), workers, progress)
        names = [f"{i + 1:06d}.jpg" for i in range(n)]
        values = np.where(labels > 0, " 1", "-1")
        rows = [name + " " + " ".join(v) for name, v in zip(names, values.tolist())]
        (tmp / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(ATTRIBUTES)}\n" + "\n".join(rows) + "\n")
        split = partition_of(n)
        (tmp / "list_eval_partition.txt").write_text(
            "".join(f"{name} {s}\n" for name, s in zip(names, split.tolist())))
        meta = {"generator": GENERATOR, "version": VERSION, "seed": int(seed), "n": int(n),
                "size": int(size), "attributes": ATTRIBUTES}
        (tmp / "synth_meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _render_all(seed: int, n: int, size: int, img_dir: str, workers: int, progress: bool) -> np.ndarray:
    chunk = max(1, min(250, -(-n // max(1, 4 * workers))))  # small chunks: smooth progress, balanced load
    jobs = [(seed, s, min(n, s + chunk), size, img_dir) for s in range(0, n, chunk)]
    labels = np.empty((n, len(ATTRIBUTES)), dtype=np.int8)
    bar = pool = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, desc="synth faces", unit="img")
    try:
        if workers <= 1 or len(jobs) == 1:
            results = map(_write_chunk, jobs)
        else:
            pool = mp.get_context().Pool(min(workers, len(jobs)))
            results = pool.imap_unordered(_write_chunk, jobs)
        for start, lab in results:
            labels[start:start + len(lab)] = lab
            if bar is not None:
                bar.update(len(lab))
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.terminate()
    return labels
