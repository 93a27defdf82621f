"""The evaluation oracle: learns a toy attribute set, accepts any size / channel count, caches
itself atomically, and falls back to RotNet without labels."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch

import helpers.eval.oracle as O
from helpers.core import paths
from helpers.eval.metrics import attribute_accuracy, fd_oracle

NAMES = ["bright_top", "dark_square"]
# Epochs, not seconds, end these runs (about 1 s each); the time budget only guards a busy machine.
FAST = dict(seconds=20, max_epochs=15, progress=False)


def make_toy(n: int, seed: int, size: int = 32, channels: int = 3, labelled: bool = True, gradient: bool = False):
    """Return a face-set stand-in: attr 0 = brighter top half, attr 1 = a dark square somewhere.

    Both attributes survive a horizontal flip (the oracle's augmentation). `gradient` adds a
    top-to-bottom ramp so every image shows which way is up (for the rotation task).
    """
    g = torch.Generator().manual_seed(seed)
    x = 0.35 + 0.1 * torch.rand(n, 1, size, size, generator=g)
    a = (torch.rand(n, 2, generator=g) < 0.5).float()
    x[a[:, 0] == 1, :, : size // 2, :] += 0.4
    s = size // 4
    for i in torch.nonzero(a[:, 1]).flatten().tolist():
        r, c = torch.randint(0, size - s + 1, (2,), generator=g).tolist()
        x[i, :, r:r + s, c:c + s] = 0.02
    if gradient:
        x = x + torch.linspace(0.3, -0.3, size)[:, None]
    images = (x.expand(-1, channels, -1, -1).clamp(0, 1) * 255).round().to(torch.uint8)
    if not labelled:
        a = torch.zeros(n, 0)
    return SimpleNamespace(images=images, attrs=a, attr_names=NAMES if labelled else [],
                           key=f"toy-{size}px-{channels}ch-{'attrs' if labelled else 'nolabel'}")


def as_signed(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Two cores shared with other jobs: a second OpenMP thread spin-waits and runs 10x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(one_thread):
    train, valid = make_toy(512, 0), make_toy(256, 1)
    oracle, report = O.train_oracle(train, valid, device="cpu", **FAST)
    return oracle, report


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path)
    return tmp_path / "oracle"


def test_learns_toy_attributes_on_held_out_data(trained):
    oracle, report = trained
    assert set(report["accuracy"]) == set(NAMES)
    assert min(report["accuracy"].values()) > 0.9, report
    assert report["mean_accuracy"] == pytest.approx(sum(report["accuracy"].values()) / 2)
    assert report["n_train"] == 512 and report["task"] == "attributes"
    assert 0 < report["train_seconds"] < 20
    # Independent check on a fresh draw, fed as [-1, 1] floats like a GAN's output.
    test = make_toy(256, 2)
    acc = attribute_accuracy(oracle, as_signed(test.images), test.attrs)
    assert min(acc["accuracy"].values()) > 0.9, acc
    assert not oracle.training


def test_output_shapes_and_ranges(trained):
    oracle, _ = trained
    x = as_signed(make_toy(10, 3).images)
    assert oracle(x).shape == (10, 2)
    p = oracle.predict(x)
    assert p.shape == (10, 2) and p.dtype == torch.float32
    assert ((p >= 0) & (p <= 1)).all()
    assert oracle.features(x).shape == (10, 128)


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_any_input_size_gives_same_feature_shape(trained, size):
    oracle, _ = trained
    toy = make_toy(6, 4, size=size)
    assert oracle.features(as_signed(toy.images)).shape == (6, 128)
    # Resizing keeps the attributes readable: a 64 px toy is scored like a 32 px one.
    if size == 64:
        big = make_toy(128, 5, size=64)
        acc = attribute_accuracy(oracle, as_signed(big.images), big.attrs)
        assert acc["mean_accuracy"] > 0.85, acc


def test_grayscale_input_to_rgb_oracle_and_back(trained):
    oracle, _ = trained
    gray = as_signed(make_toy(8, 6, channels=1).images)
    rgb = gray.repeat(1, 3, 1, 1)
    torch.testing.assert_close(oracle.features(gray), oracle.features(rgb))
    gray_oracle = O.AttributeOracle(NAMES, channels=1).eval()
    torch.testing.assert_close(gray_oracle.predict(rgb), gray_oracle.predict(gray))
    with pytest.raises(ValueError, match="channels"):
        oracle.features(torch.zeros(2, 2, 32, 32))


def test_uint8_input_means_0_to_255(trained):
    oracle, _ = trained
    toy = make_toy(8, 7)
    torch.testing.assert_close(oracle.features(toy.images), oracle.features(as_signed(toy.images)))


def test_batching_and_mode_do_not_change_results(trained):
    oracle, _ = trained
    x = as_signed(make_toy(20, 8).images)
    full = oracle.features(x)
    torch.testing.assert_close(oracle.features(x, batch_size=3), full, rtol=1e-4, atol=1e-4)
    oracle.train()
    try:
        # predict/features switch to eval (running BN stats) and restore the caller's mode.
        torch.testing.assert_close(oracle.features(x), full)
        assert oracle.training
    finally:
        oracle.eval()


def test_training_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    O.train_oracle(make_toy(16, 0), make_toy(8, 1), device="cpu", seconds=20, max_epochs=1, progress=False)
    torch.testing.assert_close(torch.rand(3), expected)


def test_rotation_fallback_without_labels():
    train = make_toy(128, 10, labelled=False, gradient=True)
    valid = make_toy(128, 11, labelled=False, gradient=True)
    oracle, report = O.train_oracle(train, valid, device="cpu", seconds=20, max_epochs=10, progress=False)
    assert report["task"] == "rotation" and set(report["accuracy"]) == {"rotation"}
    assert report["accuracy"]["rotation"] > 0.8, report  # chance is 0.25
    a, b = make_toy(200, 12), make_toy(200, 13)
    x = as_signed(a.images)
    assert oracle.features(x).shape == (200, 128)
    assert oracle(x).shape == (200, 0) and oracle.predict(x).shape == (200, 0)
    # Useful features: two draws of one distribution are closer than two different distributions.
    bright, dark = a.attrs[:, 0] == 1, b.attrs[:, 0] == 0
    same = fd_oracle(oracle, a.images[bright], b.images[b.attrs[:, 0] == 1])
    different = fd_oracle(oracle, a.images[bright], b.images[dark])
    assert different > 5 * same, (same, different)


def test_cache_round_trip_loads_without_retraining(cache_dir, monkeypatch):
    train, valid = make_toy(128, 20), make_toy(64, 21)
    oracle, report = O.load_or_train_oracle(train, valid, device="cpu", seconds=20, max_epochs=2, progress=False)
    target = cache_dir / f"{train.key}.pt"
    assert target.exists() and O.oracle_cache_path(train) == target
    assert [p.name for p in cache_dir.iterdir()] == [target.name]  # no temp file left behind

    def no_training(*args, **kwargs):
        raise AssertionError("the cached oracle should have been loaded")

    monkeypatch.setattr(O, "train_oracle", no_training)
    t0 = time.perf_counter()
    again, report2 = O.load_or_train_oracle(train, valid, device="cpu", seconds=20)
    assert time.perf_counter() - t0 < 2.0
    assert report2 == report
    assert again.attr_names == NAMES and not again.training
    x = as_signed(valid.images)
    torch.testing.assert_close(again.predict(x), oracle.predict(x))
    torch.testing.assert_close(again.features(x), oracle.features(x))


def test_cache_with_other_attr_names_or_channels_is_retrained(cache_dir):
    train, valid = make_toy(64, 30), make_toy(32, 31)
    O.load_or_train_oracle(train, valid, device="cpu", max_epochs=1, progress=False)
    renamed = SimpleNamespace(**{**vars(train), "attr_names": ["smiling", "young"]})
    valid.attr_names = renamed.attr_names
    with pytest.warns(UserWarning, match="attr_names"):
        oracle, _ = O.load_or_train_oracle(renamed, valid, device="cpu", max_epochs=1, progress=False)
    assert oracle.attr_names == ["smiling", "young"]
    assert torch.load(O.oracle_cache_path(train), weights_only=True)["config"]["attr_names"] == ["smiling", "young"]

    gray = SimpleNamespace(**{**vars(renamed), "images": renamed.images[:, :1]})
    gray_valid = SimpleNamespace(**{**vars(valid), "images": valid.images[:, :1]})
    with pytest.warns(UserWarning, match="channels"):
        oracle, _ = O.load_or_train_oracle(gray, gray_valid, device="cpu", max_epochs=1, progress=False)
    assert oracle.channels == 1


def test_a_judge_given_a_shorter_budget_is_retrained_for_a_longer_run(cache_dir, monkeypatch):
    train, valid = make_toy(64, 50), make_toy(32, 51)
    O.load_or_train_oracle(train, valid, device="cpu", seconds=4, max_epochs=1, progress=False)  # a smoke run's
    calls = []
    real = O.train_oracle
    monkeypatch.setattr(O, "train_oracle", lambda *a, **k: calls.append(k["seconds"]) or real(*a, **k))
    O.load_or_train_oracle(train, valid, device="cpu", seconds=6, max_epochs=1, progress=False)  # close enough
    assert calls == []
    with pytest.warns(UserWarning, match="given 4 s of training, this run asks for 60 s: retraining"):
        O.load_or_train_oracle(train, valid, device="cpu", seconds=60, max_epochs=1, progress=False)
    assert calls == [60]
    O.load_or_train_oracle(train, valid, device="cpu", seconds=4, max_epochs=1, progress=False)  # longer serves shorter
    assert calls == [60]


def test_retrain_flag_and_corrupt_cache(cache_dir, monkeypatch):
    train, valid = make_toy(64, 40), make_toy(32, 41)
    calls = []
    real = O.train_oracle

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(O, "train_oracle", counting)
    O.load_or_train_oracle(train, valid, device="cpu", max_epochs=1, progress=False)
    O.load_or_train_oracle(train, valid, device="cpu", max_epochs=1, progress=False, retrain=True)
    assert len(calls) == 2
    O.oracle_cache_path(train).write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        O.load_or_train_oracle(train, valid, device="cpu", max_epochs=1, progress=False)
    assert len(calls) == 3


def test_without_valid_set_reports_training_accuracy_with_a_warning():
    with pytest.warns(UserWarning, match="training set"):
        _, report = O.train_oracle(make_toy(16, 45), None, device="cpu", max_epochs=1, progress=False)
    assert report["n_valid"] == 16


def test_bad_face_sets_give_clear_errors():
    toy = make_toy(8, 50)
    with pytest.raises(ValueError, match="uint8"):
        O.train_oracle(SimpleNamespace(**{**vars(toy), "images": as_signed(toy.images)}), None, device="cpu")
    with pytest.raises(ValueError, match="attrs"):
        O.train_oracle(SimpleNamespace(**{**vars(toy), "attrs": toy.attrs[:, :1]}), None, device="cpu")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        O.AttributeOracle(NAMES).features(torch.zeros(3, 32, 32))
