"""The synthetic face set: determinism, CelebA-like correlations, visible attributes, exact layout."""
import json

import numpy as np
import pytest

from helpers.data import load_faces
from helpers.data import synth
from helpers import paths

FACTORS = [synth.sample_factors(0, i) for i in range(2000)]


def col(name):
    return np.array([f[name] for f in FACTORS])


def test_same_seed_and_index_give_identical_pixels():
    a, la = synth.render_face(0, 7, 32)
    b, lb = synth.render_face(0, 7, 32)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and la == lb
    assert not np.array_equal(np.asarray(a), np.asarray(synth.render_face(0, 8, 32)[0]))
    assert not np.array_equal(np.asarray(a), np.asarray(synth.render_face(1, 7, 32)[0]))


def test_batches_equal_single_renders_at_any_size():
    for size in (16, 32, 64):
        images, labels = synth.render_batch(3, 10, 4, size)
        assert images.shape == (4, size, size, 3) and images.dtype == np.uint8
        assert labels.shape == (4, len(synth.ATTRIBUTES)) and set(np.unique(labels)) <= {0, 1}
        one, attrs = synth.render_face(3, 12, size)
        assert np.array_equal(images[2], np.asarray(one))
        assert labels[2].tolist() == [attrs[k] for k in synth.ATTRIBUTES]


def test_at_least_twelve_celeba_attributes_with_usable_frequencies():
    assert len(synth.ATTRIBUTES) >= 12
    for name in synth.ATTRIBUTES:
        assert 0.05 <= col(name).mean() <= 0.95, name


def test_celeba_like_correlations_hold():
    male = col("Male") == 1
    assert not (col("Mustache")[~male]).any()  # no moustache on women
    assert col("No_Beard")[~male].all()  # no beard on women
    assert col("Wearing_Lipstick")[male].mean() < 0.05
    assert not (col("Bald")[~male]).any()
    bald = col("Bald") == 1
    assert not (col("Wearing_Hat")[bald]).any() and not (col("Bangs")[bald]).any()
    hair = np.stack([col(h) for h in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")])
    assert hair.sum(0).max() <= 1  # hair colours exclusive
    assert (hair.sum(0) == 0)[~bald].any()  # some faces have none of the four (red hair)
    assert not hair[:, bald].any()
    assert col("Gray_Hair")[col("Young") == 0].mean() > col("Gray_Hair")[col("Young") == 1].mean()
    smile = col("Smiling") == 1
    assert col("Mouth_Slightly_Open")[smile].mean() > col("Mouth_Slightly_Open")[~smile].mean()


def test_no_two_faces_alike_in_their_continuous_factors():
    numeric = [k for k, v in FACTORS[0].items() if isinstance(v, float)]
    assert len(numeric) >= 8
    rows = {tuple(round(f[k], 6) for k in numeric) for f in FACTORS}
    assert len(rows) == len(FACTORS)


@pytest.mark.parametrize("attr,region", [("Eyeglasses", "eyes"), ("Smiling", "mouth"), ("Wearing_Hat", "top")])
def test_toggling_an_attribute_changes_its_region(attr, region):
    f = dict(next(f for f in FACTORS if f[attr] == 0 and f["Male"] == 1 and not f["Bald"] and not f["Wearing_Hat"]))
    base = synth.render_from_factors(f, 64).astype(int)
    f[attr] = 1
    edited = synth.render_from_factors(f, 64).astype(int)
    diff = np.abs(edited - base).sum(-1)  # (64, 64) summed over RGB
    rows = {"top": slice(0, 22), "eyes": slice(18, 40), "mouth": slice(36, 56)}[region]
    assert diff.mean() > 0.5, "toggling the attribute changed almost nothing"
    assert diff[rows].sum() > 0.8 * diff.sum(), "the change is not where the attribute lives"


def test_written_layout_is_celeba_exact_and_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    out = synth.write_celeba_layout(tmp_path / "synth", n=30, size=32, seed=0, workers=2, progress=False)
    files = sorted((out / "img_align_celeba").iterdir())
    assert [p.name for p in files] == [f"{i:06d}.jpg" for i in range(1, 31)]
    lines = (out / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "30" and lines[1].split() == synth.ATTRIBUTES
    first = lines[2].split()
    assert first[0] == "000001.jpg" and set(first[1:]) <= {"-1", "1"} and len(first) == 1 + len(synth.ATTRIBUTES)
    parts = [ln.split() for ln in (out / "list_eval_partition.txt").read_text().splitlines()]
    assert parts[0] == ["000001.jpg", "0"] and {p[1] for p in parts} == {"0", "1", "2"}
    meta = json.loads((out / "synth_meta.json").read_text())
    assert meta["n"] == 30 and meta["size"] == 32 and meta["attributes"] == synth.ATTRIBUTES
    faces = load_faces(out, 32, split="all", progress=False)  # through the CelebA loader
    expected = np.array([[int(v) > 0 for v in ln.split()[1:]] for ln in lines[2:]], dtype=np.float32)
    np.testing.assert_array_equal(faces.attrs.numpy(), expected)
    _, labels = synth.render_batch(0, 0, 30, 32)
    np.testing.assert_array_equal(labels, expected)
    assert not list(tmp_path.glob(".synth.tmp-*"))  # the temporary folder was renamed away


def test_refuses_to_overwrite_and_rejects_bad_arguments(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        synth.write_celeba_layout(tmp_path / "full", n=2, size=16, progress=False)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError):
        synth.render_face(0, 0, size=4)
    with pytest.raises(ValueError):
        synth.write_celeba_layout(tmp_path / "x", n=0, progress=False)
