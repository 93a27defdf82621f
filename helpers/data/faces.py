"""FaceSet: cached uint8 faces + named attributes, and the batch loader every model trains from.

    faces = load_faces("synthetic", image_size=32, split="train")
    for x, a in faces.loader(batch_size=64):   # x: (B, C, H, W) in [-1, 1], a: (B, A) in {0, 1}
        ...
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..core import paths
from . import cache, sources
from .sources import SPLITS, DataError

SYNTH_N = 20_000  # the embedded default's size: big enough that a 32 px DCGAN does not memorise


@dataclass
class FaceSet:
    """Faces as a uint8 tensor with their attribute columns.

    images: (N, C, H, W) uint8; attrs: (N, A) float32 in {0, 1}, columns named by attr_names;
    key: unique per (source, size, crop, channels), used to name caches (e.g. the oracle's).
    """

    images: torch.Tensor
    attrs: torch.Tensor
    attr_names: list[str]
    key: str
    name: str
    split: str
    identity: torch.Tensor | None = None  # (N,) person ids, where the source has them (CelebA, LFW folders)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return (f"FaceSet({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"size={self.image_size}, channels={self.channels}, attrs={len(self.attr_names)})")

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def digest(self, n: int = 256) -> str:
        """Return a sha1 of the first n faces' pixels and attributes: equal on any clone that built the
        same faces, and for any max_images cut of them (the key is not portable: it names the folder's
        path and its files' times, for the local caches)."""
        h = hashlib.sha1(json.dumps([self.attr_names, list(self.images.shape[1:])]).encode())
        for t in (self.images[:n], self.attrs[:n]):
            h.update(np.ascontiguousarray(t.numpy()).data)
        return h.hexdigest()[:16]

    def attr(self, name: str) -> torch.Tensor:
        """Return the (N,) {0, 1} column of one attribute."""
        return self.attrs[:, self.attr_index(name)]

    def attr_index(self, name: str) -> int:
        """Return the column of `name`, or raise a DataError listing the known names."""
        if name not in self.attr_names:
            raise DataError(f"unknown attribute {name!r}; this data set has: {', '.join(self.attr_names) or 'none'}")
        return self.attr_names.index(name)

    def subset(self, index) -> "FaceSet":
        """Return the faces at `index` (a slice, mask or index tensor)."""
        ids = None if self.identity is None else self.identity[index]
        return replace(self, images=self.images[index], attrs=self.attrs[index], identity=ids)

    def head(self, n: int | None) -> "FaceSet":
        """Return the first n faces (all of them when n is None)."""
        return self if n is None else self.subset(slice(0, n))

    def select_attrs(self, names: list[str]) -> "FaceSet":
        """Return the same faces with only the named attribute columns, in that order."""
        cols = [self.attr_index(n) for n in names]
        return replace(self, attrs=self.attrs[:, cols], attr_names=list(names))

    def sample(self, n: int, seed: int = 0, feature_range=(-1, 1)) -> torch.Tensor:
        """Return n faces picked at random (without replacement where possible) as float in feature_range."""
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n] if n <= len(self) else torch.randint(len(self), (n,), generator=g)
        return to_range(self.images[idx], feature_range)

    @staticmethod
    def concat(sets: list) -> "FaceSet":
        """Return one FaceSet of several (images of one size and channel count; the attribute
        columns they all have, in the first set's order; person ids kept where all have them)."""
        names = [n for n in sets[0].attr_names if all(n in s.attr_names for s in sets)]
        ids = None if any(s.identity is None for s in sets) else torch.cat([s.identity for s in sets])
        return FaceSet(torch.cat([s.images for s in sets]), torch.cat([s.select_attrs(names).attrs for s in sets]),
                       names, "+".join(s.key for s in sets), "+".join(s.name for s in sets), sets[0].split, ids)

    def loader(self, batch_size: int, **kwargs) -> "FaceLoader":
        """Return a FaceLoader over this set (see FaceLoader for the options)."""
        return FaceLoader(self, batch_size, **kwargs)


def to_range(images: torch.Tensor, feature_range=(-1, 1)) -> torch.Tensor:
    """Return uint8 images as float32 mapped from [0, 255] to feature_range."""
    lo, hi = feature_range
    return images.float().mul_((hi - lo) / 255.0).add_(lo)


class FaceLoader:
    """Shuffled batches (x float in feature_range, attrs float) straight from the uint8 tensor.

    Each epoch's order depends only on (seed, epoch), so resuming at (epoch, batch) replays the
    exact batches an uninterrupted run would have seen. With world_size > 1 (torch.distributed),
    process `rank` takes its slice of every global batch of batch_size * world_size images. On CUDA the uint8 set moves to the GPU
    once when it takes under a quarter of the free memory.
    """

    def __init__(self, faces: FaceSet, batch_size: int, *, shuffle: bool = True, drop_last: bool = True,
                 flip: bool = False, feature_range=(-1, 1), device=None, seed: int = 0,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1):
        if len(faces) < batch_size * world_size and drop_last:
            raise DataError(f"batch_size={batch_size} x {world_size} process(es) but only {len(faces)} images in "
                            f"{faces.name} ({faces.split}): lower batch_size or use more data")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
        self.rank, self.world_size = rank, world_size
        self.faces, self.batch_size, self.shuffle, self.drop_last = faces, batch_size, shuffle, drop_last
        self.flip, self.feature_range, self.seed, self.epoch = flip, feature_range, seed, 0
        self.device = torch.device(device or "cpu")
        self.channels_last = channels_last
        images, attrs = faces.images, faces.attrs
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            if images.numel() < free / 4:
                images = images.to(self.device)
            attrs = attrs.to(self.device)
        self._images, self._attrs = images, attrs
        self.dataset = faces  # like torch's DataLoader.dataset

    def __len__(self) -> int:
        n, b = len(self.faces), self.batch_size * self.world_size
        return n // b if self.drop_last else math.ceil(n / b)

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's order the next iteration replays."""
        self.epoch = epoch

    def iterate(self, start_batch: int = 0):
        """Yield (x, attrs) for the current epoch, skipping the first `start_batch` batches."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.faces)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        flips = torch.rand(n, generator=g) < 0.5 if self.flip else None
        for b in range(start_batch, len(self)):
            first = (b * self.world_size + self.rank) * self.batch_size  # this process's share of global batch b
            idx = order[first:first + self.batch_size]
            x = to_range(self._images[idx.to(self._images.device)].to(self.device, non_blocking=True),
                         self.feature_range)
            if flips is not None:
                f = flips[idx].to(self.device)
                x = torch.where(f[:, None, None, None], x.flip(-1), x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self._attrs[idx.to(self._attrs.device)]

    def __iter__(self):
        yield from self.iterate()
        self.epoch += 1

    def stream(self, start: int = 0):
        """Yield batches without end from global batch `start` on: batch k is batch k % len(self) of
        pass k // len(self), each pass in its own (seed, pass) order, so any position replays exactly."""
        p, b = divmod(start, len(self))
        while True:
            self.set_epoch(p)
            yield from self.iterate(b)
            p, b = p + 1, 0


def synthetic_dir(image_size: int) -> Path:
    """Return the synthetic set's folder: 64 px source for sizes <= 64, a larger render above."""
    return paths.SYNTH_DIR if image_size <= 64 else paths.DATA / f"synthfaces_{image_size}"


def ensure_synthetic(image_size: int = 64, n: int = SYNTH_N, seed: int = 0, progress: bool = True) -> Path:
    """Return the synthetic set's folder, rendering it first (CelebA layout) if missing."""
    from . import synth

    out = synthetic_dir(image_size)
    meta_path = out / "synth_meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if not (out / "list_attr_celeba.txt").is_file() or meta.get("version") != synth.VERSION:
        why = "missing" if not meta else f"drawn by renderer v{meta.get('version')}, now v{synth.VERSION}"
        print(f"rendering {n} synthetic faces into {out} ({why}; takes under a minute) ...")
        synth.write_celeba_layout(out, n=n, size=max(64, image_size), seed=seed, progress=progress,
                                  overwrite=True)
    return out


def load_faces(data: str | Path = "synthetic", image_size: int = 32, *, split: str = "train",
               attrs: list[str] | None = None, channels: int | None = None, crop: int | None = None,
               max_images: int | None = None, progress: bool = True, align: bool = False) -> FaceSet:
    """Return a FaceSet of one split of `data`, decoding and resizing only on the first call.

    data: 'synthetic' (rendered here in CelebA's layout), 'lfw100' (scikit-image's 100 faces),
      a CelebA-layout folder (img_align_celeba/ + list_attr_celeba.txt|csv [+ list_eval_partition]),
      or any folder of jpg/png/ppm/pgm images (searched recursively, e.g. LFW or LFWcrop); several
      folders as a list or joined by os.pathsep ('a:b'): each folder's split, one after the other.
    split: 'train' | 'valid' | 'test' | 'all'. attrs: keep only these attribute columns.
    channels: 3 (RGB) or 1 (grayscale); default 1 for lfw100, else 3.
    crop: side of the centred square cut before resizing (CelebA faces: e.g. 148); None = short side.
    align: first put each photo's face where CelebA's are (helpers.data.align; for ordinary photos,
      e.g. LFW's 250x250 frames), once, into the cache; photos without a face are skipped.
    """
    parts = list(data) if isinstance(data, (list, tuple)) else str(data).split(os.pathsep)
    if len(parts) > 1:
        sets = [load_faces(p, image_size, split=split, attrs=attrs, channels=channels, crop=crop, progress=progress,
                           align=align) for p in parts]
        return FaceSet.concat(sets).head(max_images)
    cache.check_size(image_size)
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split={split!r}: use 'train', 'valid', 'test' or 'all'")
    if str(data) == "synthetic":
        data = ensure_synthetic(image_size, progress=progress)
    src = sources.resolve(data, attrs)
    channels = channels or (1 if src.kind == "lfw100" else 3)
    if channels not in (1, 3):
        raise ValueError(f"channels={channels}: use 3 (colour) or 1 (grayscale)")
    if align and src.pixels is not None:
        raise DataError(f"align=True needs a folder of photos; {src.kind} is in memory already cropped: drop align=")
    key = cache.cache_key(src.kind, src.root, src.fingerprint, image_size, crop, channels, align)
    if src.pixels is not None:
        pixels = src.pixels if channels == src.pixels.shape[1] else src.pixels.repeat(channels, axis=1)
        images, ok = cache.resize_pixels(pixels, image_size), np.ones(len(pixels), bool)
    else:
        images, ok = cache.cached_images(
            key, lambda: cache.decode_files(src.files, image_size, crop, channels, progress=progress, align=align))
    n = len(ok)
    attr_values = src.attrs if src.attrs is not None else np.zeros((n, 0), np.uint8)
    partition = src.partition if src.partition is not None else sources.default_partition(n)
    keep = ok.copy()
    if split != "all":
        keep &= partition == SPLITS[split]
    index = np.flatnonzero(keep)
    if max_images is not None:
        index = index[:max_images]
    if len(index) == 0:
        raise DataError(f"split {split!r} of {data} is empty: check list_eval_partition, or use split='all'")
    name = src.root.name if src.root else src.kind
    identity = None if src.identity is None else torch.from_numpy(src.identity[index])
    return FaceSet(images=torch.from_numpy(np.ascontiguousarray(images[index])),
                   attrs=torch.from_numpy(attr_values[index].astype(np.float32)),
                   attr_names=list(src.attr_names), key=key, name=name, split=split, identity=identity)


def pipeline_speed(data: str | Path = "synthetic", size: int = 64, n: int = 2000) -> dict:
    """Return img/s of JPEG decode + crop + resize (one process, and the 2-process pool that builds
    the cache) against reading float batches from the cache, for `data` at `size`."""
    import time

    faces = load_faces(data, size, split="train", progress=False)
    src = sources.resolve(ensure_synthetic(size) if str(data) == "synthetic" else data)
    out = {}
    if src.files:
        t0 = time.perf_counter()
        for f in src.files[:n]:
            cache.load_image(f, size, None, 3)
        out["decode_1proc_img_s"] = min(n, len(src.files)) / (time.perf_counter() - t0)
        files = src.files[:2 * n]
        t0 = time.perf_counter()
        cache.decode_files(files, size, None, 3, progress=False)
        out["decode_pool_img_s"] = len(files) / (time.perf_counter() - t0)
    loader, seen = faces.loader(min(256, len(faces))), 0
    t0 = time.perf_counter()
    for x, _ in loader:
        seen += len(x)
    out["cached_batches_img_s"] = seen / (time.perf_counter() - t0)
    return out


def get_dataloader(batch_size: int, image_size: int, data_dir: str | Path = "synthetic") -> FaceLoader:
    """Return a shuffled loader of (images in [0, 1], attrs), as in the Udacity project.

    Batches are (batch_size, 3, image_size, image_size) float tensors in [0, 1]: apply `scale`
    to move them to the generator's [-1, 1]. data_dir: see `load_faces` (e.g.
    'processed_celeba_small/' or a CelebA folder; 'synthetic' by default).
    """
    faces = load_faces(data_dir, image_size, split="train")
    return faces.loader(batch_size, shuffle=True, drop_last=True, feature_range=(0, 1))
