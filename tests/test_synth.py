"""Procedural face set: determinism, shapes, CelebA-like correlations, visible attributes, on-disk layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers.core import paths
from helpers.data import load_faces, synth
from helpers.data.__main__ import main as cli_main
from helpers.data.rehearsal import CELEBA_ATTRIBUTES as CELEBA_40
from helpers.data.synth import (ATTRIBUTES, partition_of, render_batch, render_face, render_from_factors,
                                sample_factors, write_celeba_layout)

HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]


@pytest.fixture(scope="module")
def labels_2000() -> dict[str, np.ndarray]:
    rows = [sample_factors(0, i) for i in range(2000)]
    return {k: np.array([r[k] for r in rows], dtype=bool) for k in ATTRIBUTES}


def test_attributes_are_celeba_names_in_celeba_order():
    assert len(ATTRIBUTES) >= 16
    assert len(set(ATTRIBUTES)) == len(ATTRIBUTES)
    assert set(ATTRIBUTES) <= set(CELEBA_40)
    assert ATTRIBUTES == sorted(ATTRIBUTES, key=CELEBA_40.index)


def test_same_seed_and_index_give_identical_pixels_and_others_differ():
    img, attrs = render_face(3, 17, 48)
    img2, attrs2 = render_face(3, 17, 48)
    assert np.array_equal(np.asarray(img), np.asarray(img2)) and attrs == attrs2
    assert not np.array_equal(np.asarray(img), np.asarray(render_face(3, 18, 48)[0]))
    assert not np.array_equal(np.asarray(img), np.asarray(render_face(4, 17, 48)[0]))
    # factors do not depend on what was sampled before
    later = [sample_factors(3, i) for i in (20, 17)][1]
    assert later == sample_factors(3, 17)


def test_batch_equals_single_faces_whatever_the_start():
    images, labels = render_batch(1, 5, 4, 32)
    for j in (0, 3):
        img, attrs = render_face(1, 5 + j, 32)
        assert np.array_equal(images[j], np.asarray(img))
        assert labels[j].tolist() == [attrs[k] for k in ATTRIBUTES]


@pytest.mark.parametrize("size", [8, 16, 32, 64, 100, 256])
def test_shapes_and_dtypes(size):
    images, labels = render_batch(0, 0, 2, size)
    assert images.shape == (2, size, size, 3) and images.dtype == np.uint8
    assert labels.shape == (2, len(ATTRIBUTES)) and labels.dtype == np.int8
    assert set(np.unique(labels).tolist()) <= {0, 1}
    img, attrs = render_face(0, 0, size)
    assert img.mode == "RGB" and img.size == (size, size)
    assert list(attrs) == ATTRIBUTES and all(v in (0, 1) for v in attrs.values())
    assert images.std() > 10  # a face, not a flat colour


@pytest.mark.parametrize("call", [
    lambda: render_face(0, 0, 7),
    lambda: render_batch(0, 0, 2, 4),
    lambda: render_batch(0, 0, 0, 32),
    lambda: sample_factors(-1, 0),
    lambda: sample_factors(0, -5),
    lambda: write_celeba_layout("/nonexistent/never-created", n=0),
    lambda: write_celeba_layout("/nonexistent/never-created", n=5, size=2),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_correlations_hold(labels_2000):
    L = labels_2000
    women = ~L["Male"]
    assert not (women & L["Mustache"]).any()
    assert L["No_Beard"][women].all()
    assert not (women & L["Bald"]).any()
    assert not (L["Male"] & L["Wearing_Lipstick"]).any()
    assert not (L["Bald"] & (L["Wearing_Hat"] | L["Bangs"])).any()
    hair_count = sum(L[h].astype(int) for h in HAIR)
    assert hair_count.max() == 1  # exclusive
    assert not (L["Bald"] & (hair_count > 0)).any()
    assert ((hair_count == 0) & ~L["Bald"]).mean() > 0.05  # red/other hair exists
    assert L["Gray_Hair"][~L["Young"]].mean() > 3 * L["Gray_Hair"][L["Young"]].mean()
    assert L["Mouth_Slightly_Open"][L["Smiling"]].mean() > L["Mouth_Slightly_Open"][~L["Smiling"]].mean() + 0.2


def test_every_attribute_frequency_is_learnable(labels_2000):
    freq = {k: v.mean() for k, v in labels_2000.items()}
    bad = {k: round(f, 3) for k, f in freq.items() if not 0.05 <= f <= 0.95}
    assert not bad, f"attribute frequencies outside [0.05, 0.95]: {bad}"
    assert 0.35 < freq["Male"] < 0.5 and 0.7 < freq["Young"] < 0.85 and 0.08 < freq["Wearing_Hat"] < 0.16


def test_no_two_faces_alike_in_their_continuous_factors():
    rows = [sample_factors(0, i) for i in range(500)]
    numeric = [k for k, v in rows[0].items() if isinstance(v, float)]
    assert len(numeric) >= 8
    assert len({tuple(round(f[k], 6) for k in numeric) for f in rows}) == len(rows)


def _plain(index: int) -> dict:
    """Factors of face `index` with no tilt, lighting or noise and a neutral attribute set."""
    f = sample_factors(0, index)
    f.update(tilt=0.0, light_s=0.0, noise_amp=0.0)
    f.update({k: 0 for k in ATTRIBUTES})
    f.update(No_Beard=1, Young=1, Black_Hair=1)
    return f


def _toggle(f: dict, attr: str) -> dict:
    g = dict(f)
    if attr in HAIR and attr != "Black_Hair":
        g["Black_Hair"] = 0
    g[attr] = 1 - f[attr]
    return g


@pytest.mark.parametrize("attr", ATTRIBUTES)
def test_each_attribute_visibly_changes_a_32px_face(attr):
    for index in range(6):
        f = _plain(index)
        a = render_from_factors(f, 32).astype(int)
        b = render_from_factors(_toggle(f, attr), 32).astype(int)
        changed = (np.abs(a - b).max(-1) > 24).sum()
        assert changed >= 3, f"{attr} toggled on face {index} changes only {changed} pixels at 32 px"


def _rows(f: dict, attr: str, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (rows where pixels changed, image without, image with) for toggling `attr`."""
    a = render_from_factors(f, size).astype(int)
    b = render_from_factors(_toggle(f, attr), size).astype(int)
    return np.nonzero(np.abs(a - b).max(-1) > 24)[0] / size, a, b


@pytest.mark.parametrize("index", [0, 1, 2])
def test_attributes_change_the_right_region(index):
    f = _plain(index)
    eye_y = 0.5 + f["dy"] - f["eye_y"] * f["face_b"]
    mouth_y = 0.5 + f["dy"] + f["mouth_y"] * f["face_b"]
    rows, _, _ = _rows(f, "Eyeglasses")
    assert len(rows) > 40 and np.all(np.abs(rows - eye_y) < 0.1)
    rows, _, _ = _rows(f, "Narrow_Eyes")
    assert len(rows) > 10 and np.all(np.abs(rows - eye_y) < 0.06)
    for attr in ("Smiling", "Mouth_Slightly_Open", "Wearing_Lipstick", "Mustache"):
        rows, _, _ = _rows(f, attr)
        assert len(rows) > 5 and np.all(np.abs(rows - mouth_y) < 0.1), attr
    rows, _, _ = _rows(f, "Wearing_Hat")
    assert len(rows) > 100 and np.median(rows) < eye_y
    rows, _, _ = _rows(f, "Bangs")
    assert len(rows) > 20 and np.all(rows < eye_y)
    rows, _, _ = _rows(f, "No_Beard")
    assert len(rows) > 100 and np.median(rows) > mouth_y - 0.03


def test_attribute_directions():
    f = _plain(4)
    _, a, b = _rows(f, "Mouth_Slightly_Open")
    assert (b.sum(-1) < 150).sum() > (a.sum(-1) < 150).sum()  # dark interior appears
    _, a, b = _rows(f, "Wearing_Lipstick")
    assert ((b[..., 0] - b[..., 1]) > 120).sum() > ((a[..., 0] - a[..., 1]) > 120).sum() + 10  # red lips
    _, a, b = _rows(f, "Narrow_Eyes")
    assert (b.min(-1) > 220).sum() < (a.min(-1) > 220).sum()  # whites of the eyes vanish
    _, a, b = _rows(f, "Pale_Skin")
    assert b[28:40, 24:40].mean() > a[28:40, 24:40].mean() + 15
    _, a, b = _rows(f, "No_Beard")  # toggling No_Beard 1 -> 0 grows a beard
    assert b[44:54, 22:42].mean() < a[44:54, 22:42].mean() - 20


def test_partition_matches_celeba_counts():
    split = partition_of(202599)
    assert np.bincount(split).tolist() == [162770, 19867, 19962]
    assert np.all(np.diff(split) >= 0)
    assert np.bincount(partition_of(30), minlength=3).tolist() == [24, 3, 3]


def test_write_celeba_layout_exact_formats(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    out = write_celeba_layout(tmp_path / "faces", n=30, size=32, seed=2, workers=2, progress=False)
    assert out == (tmp_path / "faces").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]  # the temporary folder was renamed away
    assert sorted(p.name for p in out.iterdir()) == [
        "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt", "synth_meta.json"]
    names = [f"{i:06d}.jpg" for i in range(1, 31)]
    assert sorted(p.name for p in (out / "img_align_celeba").iterdir()) == names

    lines = (out / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "30" and lines[1].split() == ATTRIBUTES and len(lines) == 32
    for i, line in enumerate(lines[2:]):
        name, *values = line.split()
        assert name == names[i]
        expected = sample_factors(2, i)
        assert [int(v) for v in values] == [1 if expected[k] else -1 for k in ATTRIBUTES]

    part = [line.split() for line in (out / "list_eval_partition.txt").read_text().splitlines()]
    assert [p[0] for p in part] == names
    assert [int(p[1]) for p in part] == partition_of(30).tolist()

    meta = json.loads((out / "synth_meta.json").read_text())
    assert meta == {"generator": "facegan-synth", "version": synth.VERSION, "seed": 2, "n": 30, "size": 32,
                    "attributes": ATTRIBUTES}

    for i in (0, 29):
        with Image.open(out / "img_align_celeba" / names[i]) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (32, 32)
            jpg = np.asarray(im, dtype=np.float32)
        ref = np.asarray(render_face(2, i, 32)[0], dtype=np.float32)
        assert np.abs(jpg - ref).mean() < 8  # the same face, up to JPEG loss

    faces = load_faces(out, 32, split="all", progress=False)  # through the CelebA loader
    expected = np.array([[int(v) > 0 for v in ln.split()[1:]] for ln in lines[2:]], dtype=np.float32)
    np.testing.assert_array_equal(faces.attrs.numpy(), expected)


def test_write_refuses_non_empty_folder_unless_overwrite(tmp_path):
    out = tmp_path / "faces"
    out.mkdir()
    write_celeba_layout(out, n=2, size=16, workers=1, progress=False)  # an empty folder is fine
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_celeba_layout(out, n=3, size=16, workers=1, progress=False)
    assert (out / "mine.txt").read_text() == "keep me"
    write_celeba_layout(out, n=3, size=16, workers=1, progress=False, overwrite=True)
    assert not (out / "mine.txt").exists()
    assert (out / "list_attr_celeba.txt").read_text().splitlines()[0] == "3"


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "_render_all", boom)
    with pytest.raises(KeyboardInterrupt):
        write_celeba_layout(tmp_path / "faces", n=3, size=16, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["synth", "--out", str(out), "--n", "3", "--size", "16", "--workers", "1", "--quiet"]) == 0
    assert len(list((out / "img_align_celeba").iterdir())) == 3
    assert cli_main(["synth", "--out", str(out), "--n", "3", "--size", "16", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["synth", "--out", str(out), "--n", "0"])
