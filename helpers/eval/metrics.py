"""GAN quality numbers: Fréchet distance in oracle feature space, attribute agreement, PSNR,
nearest-neighbour distances (memorisation), feature diversity and interpolation smoothness.

The oracle is duck-typed: anything with `features(x) -> (N, D)`, `predict(x) -> (N, A)`
probabilities and `attr_names` works (see helpers.eval.oracle.AttributeOracle).
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from ..data.transforms import scale, to_unit


# --------------------------------------------------------------------------- Fréchet distance
def _as_2d_float64(feats, name: str) -> np.ndarray:
    if isinstance(feats, torch.Tensor):
        feats = feats.detach().to("cpu", torch.float64).numpy()
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array of features, got shape {feats.shape}")
    if feats.shape[0] < 2:
        raise ValueError(f"{name} has {feats.shape[0]} sample(s): a Fréchet distance needs at least 2 "
                         "per set to estimate a covariance (use more images)")
    if not np.isfinite(feats).all():
        raise ValueError(f"{name} contains NaN or inf: check the generator output / oracle input")
    return feats


def _trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray, eps: float = 1e-6) -> float:
    """Return tr(sqrtm(sigma_a @ sigma_b)), real, with the usual eps-offset fallback."""
    with warnings.catch_warnings():
        # A singular product (fewer samples than dims) makes sqrtm warn; we handle it below.
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b)
        bad = not np.isfinite(covmean).all() or (
            np.iscomplexobj(covmean) and not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3))
        if bad:
            # Near-singular covariances: nudge both away from singularity (as pytorch-fid does).
            offset = np.eye(sigma_a.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if not np.isfinite(covmean).all():
        raise ValueError("matrix square root failed even with an eps offset: the features are degenerate "
                         "(all identical?); use more samples or check the oracle")
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3 * max(1.0, np.abs(np.diagonal(covmean).real).max()):
            raise ValueError(f"matrix square root has a large imaginary part ({imag:.3g}): the covariance "
                             "estimates are badly conditioned; use more samples than feature dimensions")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(feats_a, feats_b) -> float:
    """Return the Fréchet distance between Gaussians fitted to two feature sets (>= 0).

    feats_a: (Na, D), feats_b: (Nb, D) torch tensors or arrays, Na, Nb >= 2. Statistics are
    computed in float64: ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 sqrt(S_a S_b)).
    """
    a = _as_2d_float64(feats_a, "feats_a")
    b = _as_2d_float64(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]} (same oracle for both?)")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a = np.atleast_2d(np.cov(a, rowvar=False))
    sigma_b = np.atleast_2d(np.cov(b, rowvar=False))
    diff = mu_a - mu_b
    fd = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * _trace_sqrt_product(sigma_a, sigma_b)
    # Rounding can leave -1e-12 for identical sets; a distance is never negative.
    return max(float(fd), 0.0)


def fd_oracle(oracle, images_a, images_b) -> float:
    """Return the Fréchet distance between two image sets in the oracle's feature space.

    images_*: (N, C, H, W) float in [-1, 1] (or uint8 in [0, 255]), any size the oracle accepts,
    N >= 2 each; lower is better, 0 for identical statistics.
    """
    return frechet_distance(oracle.features(images_a), oracle.features(images_b))


# --------------------------------------------------------------------------- attribute read-outs
def _attr_index(oracle, attr) -> int:
    names = list(oracle.attr_names)
    if isinstance(attr, str):
        if attr not in names:
            raise KeyError(f"unknown attribute {attr!r}; the oracle knows {names}")
        return names.index(attr)
    idx = int(attr)
    if not -len(names) <= idx < len(names):
        raise IndexError(f"attribute index {idx} out of range for {len(names)} attributes {names}")
    return idx % len(names)


def _attr_indices(oracle, attrs) -> list[int]:
    if isinstance(attrs, (str, numbers.Integral)):
        attrs = [attrs]
    return [_attr_index(oracle, a) for a in attrs]


def _binary(oracle, images) -> torch.Tensor:
    """Return the oracle's thresholded read-out: bool (N, A)."""
    return torch.as_tensor(oracle.predict(images)).cpu() > 0.5


def attribute_accuracy(oracle, images, targets, attr_names=None) -> dict:
    """Return {'accuracy': {name: acc}, 'mean_accuracy': float}: how often the oracle's thresholded
    read-out of each attribute agrees with `targets` (accuracies in [0, 1]).

    images: (N, C, H, W) in [-1, 1]. targets: (N, A) in {0, 1} (probabilities are thresholded at
    0.5). attr_names restricts the result to those attributes; targets then holds either one column
    per oracle attribute (oracle order) or one column per name in `attr_names` (that order).
    """
    names = list(oracle.attr_names)
    targets = torch.as_tensor(targets).cpu().float()
    if targets.dim() == 1:
        targets = targets[:, None]
    if attr_names is None:
        attr_names = names
    elif isinstance(attr_names, str):
        attr_names = [attr_names]
    idx = _attr_indices(oracle, attr_names)
    if not idx:
        raise ValueError("no attributes to score: the oracle has none (rotation oracle?) or attr_names is empty")
    if targets.shape[1] == len(names):
        targets = targets[:, idx]
    elif targets.shape[1] != len(idx):
        raise ValueError(f"targets has {targets.shape[1]} columns; expected {len(names)} (all oracle "
                         f"attributes) or {len(idx)} (one per name in attr_names)")
    preds = _binary(oracle, images)[:, idx]
    if preds.shape[0] != targets.shape[0]:
        raise ValueError(f"{preds.shape[0]} images but {targets.shape[0]} target rows")
    acc = (preds == (targets > 0.5)).float().mean(0)
    per = {names[i]: float(a) for i, a in zip(idx, acc)}
    return {"accuracy": per, "mean_accuracy": float(acc.mean())}


def majority_accuracy(attrs) -> float:
    """Return the mean accuracy (in [0.5, 1]) of always guessing each attribute's majority value:
    the score a reader that ignores the images gets. attrs: (N, A) in {0, 1}."""
    p = torch.as_tensor(attrs).float().mean(0)
    return float(torch.maximum(p, 1 - p).mean())


def flip_rate(oracle, before, after, attr_idx) -> float:
    """Return the fraction of images (in [0, 1]) whose oracle read-out of one attribute flips.

    before, after: (N, C, H, W) in [-1, 1], row i of `after` is the edit of row i of `before`.
    attr_idx: column index or attribute name. Higher is a more effective edit.
    """
    i = _attr_index(oracle, attr_idx)
    b, a = _binary(oracle, before), _binary(oracle, after)
    if b.shape != a.shape:
        raise ValueError(f"before and after must hold the same number of images, got {b.shape[0]} and {a.shape[0]}")
    return float((b[:, i] != a[:, i]).float().mean())


def preservation(oracle, before, after, exclude_idx) -> float:
    """Return the fraction (in [0, 1]) of the OTHER attributes' read-outs that stay the same,
    averaged over images and attributes; NaN when the oracle has no other attribute.

    before, after: (N, C, H, W) in [-1, 1], paired by row. exclude_idx: index, name, or a list of
    them (the attributes the edit is meant to change). Higher means a more disentangled edit.
    """
    excluded = set(_attr_indices(oracle, exclude_idx))
    keep = [j for j in range(len(oracle.attr_names)) if j not in excluded]
    if not keep:
        return float("nan")
    b, a = _binary(oracle, before), _binary(oracle, after)
    if b.shape != a.shape:
        raise ValueError(f"before and after must hold the same number of images, got {b.shape[0]} and {a.shape[0]}")
    return float((b[:, keep] == a[:, keep]).float().mean())


# --------------------------------------------------------------------------- pixel metrics
def _as_signed_float(x) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu()
    # uint8 images (fs.images) are mapped to the [-1, 1] range the GANs produce.
    return scale(to_unit(x)) if x.dtype == torch.uint8 else x.float()


def psnr(x, y, data_range: float = 2.0) -> float:
    """Return the peak signal-to-noise ratio in dB (inf when x == y).

    x, y: same shape, values in [-1, 1] (data_range 2.0); the MSE is taken over all elements.
    """
    x, y = _as_signed_float(x).double(), _as_signed_float(y).double()
    if x.shape != y.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    mse = float(((x - y) ** 2).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range ** 2 / mse)


def nn_distances(queries, reference, query_batch: int = 256, ref_batch: int = 2048) -> torch.Tensor:
    """Return each query's L2 distance to its nearest reference image: float32 (Nq,) on CPU.

    queries: (Nq, ...), reference: (Nr, ...) with equal per-image size; float in [-1, 1] or uint8
    (mapped to [-1, 1]), so distances are in [-1, 1]-pixel units. A distance near 0 means the
    query copies a reference image (memorisation).
    """
    q = _as_signed_float(queries)
    if q.shape[0] == 0 or len(reference) == 0:
        raise ValueError("nn_distances needs at least one query and one reference image")
    q = q.reshape(q.shape[0], -1).double()
    best = torch.full((q.shape[0],), math.inf, dtype=torch.float64)
    for r0 in range(0, len(reference), ref_batch):
        # Chunk the reference so a 200k-image training set never sits in memory as float64.
        r = _as_signed_float(reference[r0:r0 + ref_batch])
        r = r.reshape(r.shape[0], -1).double()
        if r.shape[1] != q.shape[1]:
            raise ValueError(f"queries have {q.shape[1]} values per image, reference {r.shape[1]}: "
                             "resize one set so both have the same size and channels")
        for q0 in range(0, q.shape[0], query_batch):
            # float64 keeps the matmul form of cdist accurate enough that exact copies give ~0.
            d = torch.cdist(q[q0:q0 + query_batch], r).min(1).values
            best[q0:q0 + query_batch] = torch.minimum(best[q0:q0 + query_batch], d)
    return best.float()


def nn_distance_ratio(fake, train, held_out, fake_to_train=None) -> float:
    """Return the mean nearest-training-face distance of the samples `fake` over that of real faces no
    model trained on (`held_out`): near 1 when the samples are as far from the training faces as
    unseen faces are, below 1 when they sit closer (copies). Images as in nn_distances;
    `fake_to_train`: nn_distances(fake, train) when the caller has it already."""
    if fake_to_train is None:
        fake_to_train = nn_distances(fake, train)
    return float(fake_to_train.mean() / nn_distances(held_out, train).mean())


def copy_ratio(fake, train, held_out, fake_to_train=None) -> float:
    """Return how often a sample's nearest real face is a held-out one, over how often chance says
    (len(held_out) / (len(train) + len(held_out))): about 1 for samples no nearer the faces trained on
    than unseen faces are, 0 when every sample's nearest face is a training face (copies). For a sample
    drawn without looking at either set, each of the faces is equally likely its nearest, however smooth
    it is, so blur, which nn_distance_ratio reads as copying, leaves this at 1. Images and
    `fake_to_train` as in nn_distance_ratio."""
    if fake_to_train is None:
        fake_to_train = nn_distances(fake, train)
    held_nearer = nn_distances(fake, held_out) < fake_to_train
    return float(held_nearer.double().mean() * (len(train) + len(held_out)) / len(held_out))


@torch.no_grad()
def feature_diversity(oracle, images: torch.Tensor) -> float:
    """Return the mean pairwise L2 distance between oracle features of images (N, C, H, W), N >= 2:
    higher means more varied faces (BEGAN's gamma trades this against quality)."""
    f = oracle.features(images).double()
    n = len(f)
    if n < 2:
        raise ValueError("feature_diversity needs at least 2 images")
    return float(torch.cdist(f, f).sum() / (n * (n - 1)))


def fd_reference(oracle, set_a, set_b, n: int = 2000, blur: int = 0) -> dict:
    """Return the yardsticks for fd_oracle: the floor (real vs other real) and noise vs real.

    set_a, set_b: FaceSets (e.g. train and test); n images are drawn from each. A GAN's
    fd_oracle is judged against the floor measured with the same n (the estimate shrinks with n).
    blur > 1 adds 'fd_oracle_blur{blur}': real faces average-pooled by `blur` and scaled back up
    (bilinear) against real, i.e. what a model scores whose only flaw is that much blur.
    """
    real_a, real_b = set_a.sample(n, seed=1), set_b.sample(n, seed=2)
    out = {"fd_oracle_floor": fd_oracle(oracle, real_a, real_b), "fd_oracle_noise": fd_oracle(oracle, noise_like(real_a), real_b)}
    if blur > 1:
        out[f"fd_oracle_blur{blur}"] = fd_oracle(oracle, blurred(real_a, blur), real_b)
    return out


def blurred(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Return images (N, C, H, W) in [-1, 1] average-pooled by `factor` and scaled back up (bilinear):
    what a model whose only flaw is that much blur would draw."""
    return F.interpolate(F.avg_pool2d(images, factor), size=images.shape[-2:], mode="bilinear", align_corners=False)


def noise_like(images: torch.Tensor, seed: int = 3) -> torch.Tensor:
    """Return uniform noise in [-1, 1] of the images' shape (a repeatable 'model' that learnt nothing)."""
    return torch.rand(images.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1




def interp_smoothness(features: torch.Tensor) -> float:
    """Return max_i ||f_{i+1} - f_i|| / ||f_last - f_0|| for one interpolation path (>= 1/(F-1)).

    features: (F, D) features (e.g. the oracle's) of F frames in path order, F >= 3. An evenly spaced
    straight path gives exactly 1/(F-1) (1/15 for 16 frames); a path that jumps gives up to 1 or
    more. Raises ValueError when the endpoints coincide (the ratio is undefined).
    """
    f = torch.as_tensor(features).double()
    if f.dim() != 2 or f.shape[0] < 3:
        raise ValueError(f"features must be (F >= 3, D) in path order, got shape {tuple(f.shape)}")
    span = (f[-1] - f[0]).norm()
    if span <= 1e-12 * max(1.0, float(f.abs().max())):
        raise ValueError("the two endpoints have identical features: pick two different faces")
    return float((f[1:] - f[:-1]).norm(dim=1).max() / span)


def mean_interp_smoothness(oracle, paths: list[torch.Tensor]) -> float:
    """Return the mean interp_smoothness over paths, each (F, C, H, W) frames in [-1, 1]."""
    if not paths:
        raise ValueError("no interpolation paths given")
    return float(np.mean([interp_smoothness(oracle.features(p)) for p in paths]))


def fd_tracker(oracle, real: torch.Tensor, z: torch.Tensor, pick):
    """Return epoch_end_fn(trainer) -> {'fd_oracle'}: the oracle FD of the generator pick(modules)
    on fixed latents z against the real images `real` (N, C, H, W) in [-1, 1].

    Cheap enough (about a second on a CPU at 32 px for 1,000 samples) to run every epoch; with
    keep_best={'fd_oracle': 'min'} the trainer keeps the best generator.
    """
    from ..gan.latent import generate

    def on_epoch(trainer):
        return {"fd_oracle": fd_oracle(oracle, generate(pick(trainer.modules), z), real)}

    return on_epoch
