"""Metrics: Fréchet distance against closed forms, PSNR, nearest neighbours, attribute read-outs
with a stub oracle, and the metrics.json round trip."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import scipy.linalg
import torch

from helpers.core import paths, runtime
from helpers.eval import metrics as M
from helpers.eval import report as R


def samples_with_moments(mu, cov, n, seed):
    """Return (n, D) samples whose sample mean and (ddof=1) covariance are exactly mu and cov."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(mu)))
    x -= x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T  # whiten exactly
    return x @ np.linalg.cholesky(cov).T + mu


def analytic_fd(mu1, cov1, mu2, cov2):
    covmean = scipy.linalg.sqrtm(cov1 @ cov2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1 + cov2 - 2 * covmean))


MU1, MU2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 0.0])
COV1 = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
COV2 = np.array([[1.0, -0.2, 0.1], [-0.2, 3.0, 0.0], [0.1, 0.0, 0.8]])


# --------------------------------------------------------------------------- Fréchet distance
def test_fd_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert M.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fd_matches_closed_form_for_exact_moments():
    a = samples_with_moments(MU1, COV1, 50, seed=1)
    b = samples_with_moments(MU2, COV2, 80, seed=2)
    expected = analytic_fd(MU1, COV1, MU2, COV2)
    assert M.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_fd_of_gaussian_samples_close_to_analytic_value():
    rng = np.random.default_rng(3)
    a = rng.multivariate_normal(MU1, COV1, size=20000)
    b = rng.multivariate_normal(MU2, COV2, size=20000)
    expected = analytic_fd(MU1, COV1, MU2, COV2)
    assert M.frechet_distance(torch.from_numpy(a).float(), b) == pytest.approx(expected, rel=0.05)
    # Diagonal case, by hand: ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2 = 1 + (2 - 1)^2 = 2.
    c = rng.normal([0.0, 0.0], [1.0, 2.0], size=(20000, 2))
    d = rng.normal([1.0, 0.0], [1.0, 1.0], size=(20000, 2))
    assert M.frechet_distance(c, d) == pytest.approx(2.0, rel=0.05)


def test_fd_is_symmetric():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(200, 8)), rng.normal(0.3, 2.0, size=(150, 8))
    assert M.frechet_distance(a, b) == pytest.approx(M.frechet_distance(b, a), rel=1e-6)


def test_fd_with_fewer_samples_than_dimensions_stays_finite():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(6, 32)), rng.normal(1.0, size=(7, 32))
    fd = M.frechet_distance(a, b)
    assert math.isfinite(fd) and fd > 0


def test_fd_falls_back_to_eps_offset_when_sqrtm_fails(monkeypatch):
    a = samples_with_moments(MU1, COV1, 50, seed=1)
    b = samples_with_moments(MU2, COV2, 80, seed=2)
    real_sqrtm, calls = scipy.linalg.sqrtm, []

    def flaky_sqrtm(mat):
        calls.append(mat)
        if len(calls) == 1:
            return np.full_like(mat, np.nan)
        return real_sqrtm(mat) + 1e-9j  # tiny imaginary part: discarded

    monkeypatch.setattr(scipy.linalg, "sqrtm", flaky_sqrtm)
    fd = M.frechet_distance(a, b)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (COV1 + 1e-6 * np.eye(3)) @ (COV2 + 1e-6 * np.eye(3)))
    assert isinstance(fd, float) and fd == pytest.approx(analytic_fd(MU1, COV1, MU2, COV2), rel=1e-5)


def test_fd_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="at least 2"):
        M.frechet_distance(torch.zeros(1, 4), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="dimensions differ"):
        M.frechet_distance(torch.randn(5, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match="2-D"):
        M.frechet_distance(torch.randn(5), torch.randn(5))
    with pytest.raises(ValueError, match="NaN"):
        M.frechet_distance(torch.full((5, 2), float("nan")), torch.randn(5, 2))


# --------------------------------------------------------------------------- stub oracle
class StubOracle:
    """Reads attribute k as 'pixel (0, 0) of channel k > 0'; features = the first 4 pixels."""

    attr_names = ["a", "b", "c"]

    def predict(self, x):
        return (x[:, :3, 0, 0] > 0).float() * 0.8 + 0.1

    def features(self, x):
        return x.flatten(1)[:, :4]


def images_from_bits(bits):
    """Return (N, 3, 2, 2) images in [-1, 1] whose stub read-out equals `bits` (N, 3)."""
    x = torch.zeros(len(bits), 3, 2, 2)
    x[:, :, 0, 0] = torch.tensor(bits, dtype=torch.float32) * 2 - 1
    return x


def test_fd_oracle_uses_oracle_features():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(50, 3, 2, 2, generator=g), torch.randn(40, 3, 2, 2, generator=g) + 1
    assert M.fd_oracle(StubOracle(), a, b) == pytest.approx(M.frechet_distance(a.flatten(1)[:, :4], b.flatten(1)[:, :4]))
    assert M.fd_oracle(StubOracle(), a, b) > 3


class _Set:
    """A FaceSet stand-in: sample(n, seed) returns the first n of fixed images."""

    def __init__(self, images):
        self.images = images

    def sample(self, n, seed=0):
        return self.images[:n]


def test_fd_reference_blur_yardstick_sits_between_floor_and_noise():
    g = torch.Generator().manual_seed(1)
    # Sharp checkerboard-like faces: 2x2 pooling wipes the pattern, so blur must cost FD.
    base = torch.where(torch.rand(300, 3, 8, 8, generator=g) > 0.5, 1.0, -1.0)
    a, b = _Set(base[:150]), _Set(base[150:])
    ref = M.fd_reference(StubOracle(), a, b, n=150, blur=2)
    assert set(ref) == {"fd_oracle_floor", "fd_oracle_noise", "fd_oracle_blur2"}
    assert ref["fd_oracle_floor"] < ref["fd_oracle_blur2"]
    assert "fd_oracle_blur2" not in M.fd_reference(StubOracle(), a, b, n=150)


def test_feature_diversity_is_the_mean_pairwise_feature_distance():
    x = torch.zeros(3, 3, 2, 2)
    x[1, 0, 0, 0], x[2, 0, 0, 1] = 3.0, 4.0  # stub features: (0,0,..), (3,0,..), (0,4,..)
    # pairwise distances 3, 4, 5: mean over the 3 pairs = 4
    assert M.feature_diversity(StubOracle(), x) == pytest.approx(4.0)
    assert M.feature_diversity(StubOracle(), x[:1].repeat(5, 1, 1, 1)) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        M.feature_diversity(StubOracle(), x[:1])


def test_attribute_accuracy_per_attribute_and_subset():
    images = images_from_bits([[1, 0, 1], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
    targets = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1]]).float()
    acc = M.attribute_accuracy(StubOracle(), images, targets)
    assert acc["accuracy"] == {"a": 0.75, "b": 0.75, "c": 0.5}
    assert acc["mean_accuracy"] == pytest.approx(2 / 3)
    # Restricted by name: full-width targets are sliced, or targets may hold just those columns.
    sub = M.attribute_accuracy(StubOracle(), images, targets, attr_names=["c", "a"])
    assert sub["accuracy"] == {"c": 0.5, "a": 0.75} and sub["mean_accuracy"] == 0.625
    assert M.attribute_accuracy(StubOracle(), images, targets[:, [2, 0]], attr_names=["c", "a"]) == sub
    with pytest.raises(KeyError, match="knows"):
        M.attribute_accuracy(StubOracle(), images, targets, attr_names=["smiling"])
    with pytest.raises(ValueError, match="columns"):
        M.attribute_accuracy(StubOracle(), images, targets[:, :2])


def test_flip_rate_and_preservation():
    before = images_from_bits([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]])
    after = images_from_bits([[1, 0, 0], [1, 1, 0], [1, 0, 1], [0, 0, 0]])
    oracle = StubOracle()
    assert M.flip_rate(oracle, before, after, 0) == 0.75
    assert M.flip_rate(oracle, before, after, "a") == 0.75
    assert M.flip_rate(oracle, before, after, "c") == 0.25
    # Excluding 'a': b and c stay the same in 6 of 8 (image, attribute) pairs.
    assert M.preservation(oracle, before, after, 0) == 0.75
    assert M.preservation(oracle, before, after, ["a", "c"]) == 0.75
    assert math.isnan(M.preservation(oracle, before, after, [0, 1, 2]))
    assert M.flip_rate(oracle, before, before, 1) == 0.0 and M.preservation(oracle, before, before, 1) == 1.0
    with pytest.raises(ValueError, match="same number"):
        M.flip_rate(oracle, before, after[:3], 0)


# --------------------------------------------------------------------------- pixel metrics
def test_psnr_identical_is_inf_and_known_noise_matches_formula():
    g = torch.Generator().manual_seed(7)
    x = torch.rand(4, 3, 8, 8, generator=g) * 1.6 - 0.8
    assert M.psnr(x, x) == math.inf
    signs = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
    y = x + 0.1 * signs  # every squared error is exactly 0.01
    assert M.psnr(x, y) == pytest.approx(10 * math.log10(4 / 0.01), abs=1e-5)
    assert M.psnr(x, y, data_range=1.0) == pytest.approx(10 * math.log10(1 / 0.01), abs=1e-5)
    with pytest.raises(ValueError, match="equal shapes"):
        M.psnr(x, y[:2])


def test_nn_distances_exact_on_a_tiny_example():
    reference = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]).reshape(3, 1, 1, 2)
    queries = torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, 4.0], [0.0, 1.9]]).reshape(4, 1, 1, 2)
    expected = torch.tensor([0.0, 1.0, math.sqrt(9 + 4), 0.1])
    torch.testing.assert_close(M.nn_distances(queries, reference), expected)
    assert M.nn_distances(queries, reference)[0] == 0.0
    # Chunked over both sets gives the same answer as one cdist.
    g = torch.Generator().manual_seed(8)
    q, r = torch.randn(37, 3, 4, 4, generator=g), torch.randn(53, 3, 4, 4, generator=g)
    brute = torch.cdist(q.flatten(1).double(), r.flatten(1).double()).min(1).values.float()
    torch.testing.assert_close(M.nn_distances(q, r, query_batch=5, ref_batch=7), brute)
    # A copied training image is found at distance ~0 even among uint8 references.
    ref_u8 = torch.randint(0, 256, (20, 3, 4, 4), dtype=torch.uint8, generator=g)
    copy = ref_u8[11:12].float() / 127.5 - 1
    assert M.nn_distances(copy, ref_u8).item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="same size"):
        M.nn_distances(q, torch.randn(5, 3, 8, 8))


def test_nn_distance_ratio_is_zero_for_copies_and_one_for_faces_like_the_held_out():
    g = torch.Generator().manual_seed(3)
    train, held = torch.rand(30, 3, 4, 4, generator=g) * 2 - 1, torch.rand(10, 3, 4, 4, generator=g) * 2 - 1
    assert M.nn_distance_ratio(train[:10], train, held) == pytest.approx(0.0, abs=1e-5)  # copies
    assert M.nn_distance_ratio(held, train, held) == pytest.approx(1.0)
    assert M.nn_distance_ratio(held * 3, train, held) > 1  # farther than unseen faces


def test_copy_ratio_reads_copies_but_not_blur():
    g = torch.Generator().manual_seed(5)
    faces = torch.rand(1200, 3, 4, 4, generator=g) * 2 - 1  # one distribution, split 3:1
    train, held = faces[:900], faces[900:]
    assert M.copy_ratio(train[:200], train, held) == 0.0  # copies: the nearest face is always a training face
    fresh = torch.rand(800, 3, 4, 4, generator=g) * 2 - 1
    assert M.copy_ratio(fresh, train, held) == pytest.approx(1.0, abs=0.2)
    blurred = 0.3 * fresh  # pulled towards the mean face: nearer every face alike
    assert M.nn_distance_ratio(blurred, train, held) < 0.9  # the nearest-face ratio reads it as copying
    assert M.copy_ratio(blurred, train, held) == pytest.approx(1.0, abs=0.2)  # this one does not
    half = torch.cat([train[:400], fresh[:400]])
    assert M.copy_ratio(half, train, held) == pytest.approx(0.5 * M.copy_ratio(fresh[:400], train, held), abs=0.01)
    to_train = M.nn_distances(half, train)  # shared by both ratios: the same numbers as computing it in each
    assert M.copy_ratio(half, train, held, to_train) == M.copy_ratio(half, train, held)
    assert M.nn_distance_ratio(half, train, held, to_train) == M.nn_distance_ratio(half, train, held)


# --------------------------------------------------------------------------- metrics.json
def test_write_and_read_metrics_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "OUTPUTS", tmp_path)
    metrics = {
        "fd": np.float32(12.3456789),
        "n_images": np.int64(1000),
        "psnr": torch.tensor(31.234567891),
        "identical_psnr": math.inf,
        "big": 123456789.0,
        "small": 0.000123456789,
        "ok": np.bool_(True),
        "per_epoch": np.array([0.5, 0.25]),
        "nested": {"acc": torch.tensor([0.91234567, 1.0]), "names": ("a", "b"), 3: None},
        "machine": "test box",
    }
    path = R.write_metrics("01_dcgan", metrics)
    assert path == tmp_path / "01_dcgan" / "metrics.json"
    text = path.read_text()
    assert text.startswith("{\n  ")  # pretty-printed
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]  # no temp file left
    back = R.read_metrics("01_dcgan")
    assert back == json.loads(text)
    assert back == {
        "fd": 12.3457, "n_images": 1000, "psnr": 31.2346, "identical_psnr": math.inf,
        "big": 123457000.0, "small": 0.000123457, "ok": True, "per_epoch": [0.5, 0.25],
        "nested": {"acc": [0.912346, 1.0], "names": ["a", "b"], "3": None}, "machine": "test box",
    }
    assert isinstance(back["n_images"], int) and isinstance(back["ok"], bool)
    R.write_metrics("01_dcgan", {"fd": 1.0, "device": "cpu"})  # replaced, not merged; the machine added
    assert R.read_metrics("01_dcgan") == {"fd": 1.0, "device": "cpu", "machine": runtime.machine("cpu")}


def test_machine_names_the_cpu_its_cores_and_its_vector_units():
    amd = "processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: 26\nmodel\t\t: 2\nflags\t\t: fpu avx512_bf16\n"
    text = runtime.machine("cpu", cpuinfo=amd)
    assert text.startswith("AMD EPYC (family 26, model 2), ") and f"{os.cpu_count()} cores" in text
    assert "AMX" not in text
    intel = "model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: avx512f amx_bf16 amx_tile\n"
    assert runtime.machine("cpu", cpuinfo=intel).endswith(", AMX")
    assert runtime.machine("cpu", cpuinfo="").split(", ")[1] == f"{os.cpu_count()} cores"


def test_metrics_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "OUTPUTS", tmp_path)
    with pytest.raises(FileNotFoundError, match="run notebook"):
        R.read_metrics("never_ran")
    with pytest.raises(TypeError, match="cannot write object"):
        R.write_metrics("bad", {"x": object()})
    assert not (tmp_path / "bad" / "metrics.json").exists()
