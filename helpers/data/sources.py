"""Where faces come from: CelebA folders (txt or csv), plain image folders, scikit-image's LFW.

Each reader returns plain lists/arrays; `helpers.data.faces` turns them into a FaceSet.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm")  # ppm/pgm: LFWcrop's colour/grey faces
SPLITS = {"train": 0, "valid": 1, "test": 2}


class DataError(ValueError):
    """Bad or missing input data; the message says what to do."""


@dataclass
class Source:
    """A listing of one data source: image files (or in-memory pixels) plus labels."""

    kind: str  # 'celeba' | 'folder' | 'lfw100'
    root: Path | None
    files: list[Path] = field(default_factory=list)
    attr_names: list[str] = field(default_factory=list)
    attrs: np.ndarray | None = None  # (N, A) uint8 in {0, 1}
    partition: np.ndarray | None = None  # (N,) 0 train / 1 valid / 2 test
    pixels: np.ndarray | None = None  # (N, C, H, W) uint8, for in-memory sources
    identity: np.ndarray | None = None  # (N,) int person id (CelebA's identity file, LFW's person folders)
    fingerprint: str = ""  # changes when the source's content listing changes


HELP_DATA = ("use data='synthetic' (generated here), data='lfw100' (ships with scikit-image), "
             "or a CelebA folder (see README, Data)")


def find_celeba_images(root: Path) -> Path | None:
    """Return the folder holding CelebA's jpgs: img_align_celeba/ or Kaggle's nested copy."""
    for cand in (root / "img_align_celeba" / "img_align_celeba", root / "img_align_celeba"):
        if cand.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in cand.iterdir()):
            return cand
    return None


def is_celeba_layout(root: Path) -> bool:
    """True when root has img_align_celeba/ and an attribute file (txt or csv)."""
    return (root / "img_align_celeba").is_dir() and any(
        (root / f).is_file() for f in ("list_attr_celeba.txt", "list_attr_celeba.csv"))


def _to01(values: np.ndarray, path: Path) -> np.ndarray:
    """CelebA writes -1/1; many re-exports write 0/1. Accept both, refuse anything else."""
    uniq = set(np.unique(values).tolist())
    if uniq <= {-1, 1} or uniq <= {0, 1}:
        return (values > 0).astype(np.uint8)
    raise DataError(f"{path}: attribute values must be -1/1 or 0/1, found {sorted(uniq)[:6]}")


def read_attr_file(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Return (image names, attribute names, values (N, A) uint8 in {0, 1}) from a txt or csv file.

    txt: line 1 the count, line 2 the names, then `000001.jpg -1 1 ...` (CelebA's own format).
    csv: header `image_id,5_o_Clock_Shadow,...` (the Kaggle export).
    """
    try:
        if path.suffix == ".csv":
            with open(path, newline="") as fh:
                rows = list(csv.reader(fh))
            header, body = rows[0], [r for r in rows[1:] if r]
            names = header[1:]
            images = [r[0] for r in body]
            values = np.array([[int(float(v)) for v in r[1:]] for r in body], dtype=np.int64)
        else:
            lines = path.read_text().splitlines()
            names = lines[1].split()
            body = [ln.split() for ln in lines[2:] if ln.strip()]
            images = [r[0] for r in body]
            values = np.array([[int(v) for v in r[1:]] for r in body], dtype=np.int64)
            if lines[0].strip().isdigit() and int(lines[0]) != len(body):
                warnings.warn(f"{path}: header says {lines[0].strip()} images but {len(body)} rows follow")
    except (IndexError, ValueError) as err:
        raise DataError(f"{path} is not a CelebA attribute file ({err}); expected CelebA's "
                        "list_attr_celeba.txt or the Kaggle list_attr_celeba.csv") from None
    if values.ndim != 2 or values.shape[1] != len(names):
        raise DataError(f"{path}: {len(names)} attribute names but rows carry "
                        f"{values.shape[1] if values.ndim == 2 else '?'} values")
    return images, names, _to01(values, path)


def read_partition_file(root: Path) -> dict[str, int] | None:
    """Return {image name: 0/1/2} from list_eval_partition.txt or .csv, or None if absent."""
    txt, csv_path = root / "list_eval_partition.txt", root / "list_eval_partition.csv"
    if txt.is_file():
        pairs = [ln.split() for ln in txt.read_text().splitlines() if ln.strip()]
    elif csv_path.is_file():
        with open(csv_path, newline="") as fh:
            pairs = [r for r in list(csv.reader(fh))[1:] if r]
    else:
        return None
    try:
        return {name: int(part) for name, part in pairs}
    except ValueError as err:
        raise DataError(f"{root}: list_eval_partition is malformed ({err})") from None


def read_celeba(root: Path, attrs: list[str] | None = None) -> Source:
    """Return a Source listing a CelebA-layout folder, optionally only the named attributes."""
    img_dir = find_celeba_images(root)
    if img_dir is None:
        raise DataError(f"no images found under {root / 'img_align_celeba'}: download CelebA's "
                        f"img_align_celeba.zip and unzip it there, or {HELP_DATA}")
    attr_path = next((root / f for f in ("list_attr_celeba.txt", "list_attr_celeba.csv")
                      if (root / f).is_file()), None)
    if attr_path is None:
        raise DataError(f"{root} has images but no list_attr_celeba.txt/.csv: put CelebA's "
                        "attribute file next to img_align_celeba/, or point data= at the image "
                        "folder itself to train without attributes")
    names, attr_names, values = read_attr_file(attr_path)
    on_disk = {p.name for p in img_dir.iterdir()}
    missing = [n for n in names if n not in on_disk]
    if len(missing) == len(names):
        raise DataError(f"none of the {len(names)} images named in {attr_path.name} exist in "
                        f"{img_dir} (e.g. {names[0]}): the attribute file does not match the images")
    if missing:
        warnings.warn(f"{len(missing)} images listed in {attr_path.name} are missing from {img_dir} "
                      f"(e.g. {missing[0]}); they are skipped")
        keep = np.array([n in on_disk for n in names])
        names, values = [n for n in names if n in on_disk], values[keep]
    if attrs is not None:
        unknown = [a for a in attrs if a not in attr_names]
        if unknown:
            raise DataError(f"unknown attribute(s) {unknown}; this data set has: {', '.join(attr_names)}")
        cols = [attr_names.index(a) for a in attrs]
        attr_names, values = list(attrs), values[:, cols]
    parts = read_partition_file(root)
    partition = None
    if parts is not None:
        partition = np.array([parts.get(n, 0) for n in names], dtype=np.int8)
    stat = attr_path.stat()
    return Source(kind="celeba", root=root, files=[img_dir / n for n in names], attr_names=attr_names,
                  attrs=values, partition=partition, identity=read_identity_file(root, names),
                  fingerprint=f"{len(names)}:{stat.st_size}:{int(stat.st_mtime)}")


def read_identity_file(root: Path, names: list[str]) -> np.ndarray | None:
    """Return the person id of each named image from CelebA's identity_CelebA.txt (-1 where it has
    none), or None when the folder has no such file."""
    path = root / "identity_CelebA.txt"
    if not path.is_file():
        return None
    ids = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            ids[parts[0]] = int(parts[1])
    return np.array([ids.get(n, -1) for n in names], dtype=np.int64)


def read_folder(root: Path) -> Source:
    """Return a Source listing every jpg/png/ppm/pgm below root (recursive), with no attributes."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{root} contains no .jpg/.jpeg/.png/.ppm/.pgm images (searched recursively): "
                        f"put face images there, or {HELP_DATA}")
    size = sum(p.stat().st_size for p in files[:: max(1, len(files) // 1000)])
    # LFW-style person folders (root/<Person_Name>/<Person_Name>_0001.jpg): the folder is the person.
    # Other sub-folders (train/, male/, class folders) are not people: no identities then.
    people = {name: i for i, name in enumerate(sorted({p.parent.name for p in files}))}
    named_by_person = all(p.stem.startswith(p.parent.name + "_") for p in files)
    identity = (np.array([people[p.parent.name] for p in files], dtype=np.int64)
                if len(people) > 1 and named_by_person else None)
    return Source(kind="folder", root=root, files=files, identity=identity, fingerprint=f"{len(files)}:{size}")


def read_lfw100() -> Source:
    """Return scikit-image's 100 real LFW faces: (100, 1, 25, 25) uint8 grayscale, no attributes."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]  # the first 100 are faces, the rest are non-faces
    pixels = np.round(faces * 255).astype(np.uint8)[:, None]  # (100, 1, 25, 25)
    return Source(kind="lfw100", root=None, pixels=pixels, fingerprint="skimage-lfw100")


def resolve(data: str | Path, attrs: list[str] | None = None) -> Source:
    """Return the Source that `data` names: 'lfw100', a CelebA-layout folder or an image folder.

    ('synthetic' is handled by the caller, which makes sure the folder exists first.)
    """
    if str(data) == "lfw100":
        if attrs:
            raise DataError("lfw100 has no attribute labels: drop attrs= or use data='synthetic'")
        return read_lfw100()
    root = Path(data).expanduser()
    if not root.exists():
        raise DataError(f"data folder {root} does not exist: {HELP_DATA}")
    if not root.is_dir():
        raise DataError(f"data={root} is a file; point it at a folder: {HELP_DATA}")
    if is_celeba_layout(root) or (root / "img_align_celeba").is_dir():
        return read_celeba(root, attrs)
    if attrs:
        raise DataError(f"{root} is a plain image folder without attribute labels; attrs={attrs} "
                        "needs a CelebA-layout folder (img_align_celeba/ + list_attr_celeba.txt)")
    return read_folder(root)


def default_partition(n: int, seed: int = 0) -> np.ndarray:
    """Return a deterministic 80/10/10 train/valid/test split for sources without a partition file."""
    order = np.random.default_rng(seed).permutation(n)
    part = np.zeros(n, dtype=np.int8)
    n_valid, n_test = max(1, n // 10), max(1, n // 10)
    part[order[:n_valid]] = 1
    part[order[n_valid:n_valid + n_test]] = 2
    return part
