"""The aligner (helpers.data.align) on scikit-image's astronaut: found, put on CelebA's template,
perturbed faces brought back, bad photos answered; the folder command, load_faces(align=True) and
the upload path. No real photo is stored in the repository and nothing reads ../shared/data.

Tolerances, measured when they were written (docs/experiments.md, Alignment (issue 35)): the aligned
astronaut's points sit 3.5 px (mean) from the template, none more than 4.2 px in x or y (the template
is the average face, hers is not); over 45 perturbations (+-20 degrees, 0.7x-1.4x, shifts up to
25 px) her points come back within 1.5 px (mean) of where the first alignment put them.
"""
import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.core import paths
from helpers.data import align, align_measure, load_faces
from helpers.ui import widgets

from .fixtures import astronaut, png_bytes

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def aligned():
    """The astronaut aligned once, and her five points found again on the result."""
    result = align.align_image(astronaut())
    assert result.found, result.message
    points, _box = align_measure.face_points(result.image)
    return result, points


def gradient(w=80, h=64):
    ramp = np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))
    return np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 90)], -1)  # the browser suite's upload


def test_the_astronaut_is_found_aligned_and_found_again_on_the_template(aligned):
    result, points = aligned
    assert result.image.size == (align.WIDTH, align.HEIGHT) and result.image.mode == "RGB"
    assert result.faces == 1 and result.box_px >= align.MIN_FACE and result.error_px < 5
    assert result.message.startswith(f"aligned: face {result.box_px} px, rotated ")
    assert points is not None
    assert np.linalg.norm(points - align.TEMPLATE, axis=1).mean() < 5  # measured 3.5
    assert np.abs(points - align.TEMPLATE).max() < 6  # measured 4.2
    report = result.report()
    assert json.loads(json.dumps(report))["found"] is True and len(report["landmarks"]) == 5


@pytest.mark.parametrize("angle,scale,shift", list(itertools.product((-20, 0, 20), (0.7, 1.4), ((0, 0), (25, -15)))))
def test_a_turned_scaled_shifted_face_comes_back(aligned, angle, scale, shift):
    result, points = aligned
    photo = align_measure.perturb(result.image, angle, scale, shift)
    # 0.7x of her 87 px box is 61 px: under the uploads' floor, so the geometry is checked at the study's
    back = align.align_image(photo, min_face=align_measure.STUDY_MIN_FACE)
    assert back.found, back.message
    assert abs(back.angle_deg + angle) < 2 and abs(back.scale * scale - 1) < 0.05  # the perturbation undone
    again, _ = align_measure.face_points(back.image)
    assert np.linalg.norm(again - points, axis=1).mean() < 2.5  # measured at most 1.5


def test_similarity_recovers_a_known_transform():
    src = np.array([[10.0, 20], [50, 22], [30, 40], [14, 60], [47, 61]])
    a = np.radians(30)
    m = np.array([[1.3 * np.cos(a), -1.3 * np.sin(a), 7.0], [1.3 * np.sin(a), 1.3 * np.cos(a), -4.0]])
    np.testing.assert_allclose(align.similarity(src, align.apply(m, src)), m, atol=1e-9)
    np.testing.assert_allclose(align.apply(align.invert(m), align.apply(m, src)), src, atol=1e-9)


def test_warp_fills_the_border_with_the_photos_edge_and_resamples_exactly():
    img = Image.fromarray(gradient())
    same = align.warp(img, np.array([[1.0, 0, 0], [0, 1, 0]]), img.size)
    assert np.array_equal(np.asarray(same), np.asarray(img))  # identity: not a pixel moves
    shifted = np.asarray(align.warp(img, np.array([[1.0, 0, 30], [0, 1, 0]]), img.size))
    assert (shifted[:, :30] == np.asarray(img)[:, :1]).all()  # the left edge repeated, never black


def test_no_face_gets_the_no_face_message():
    for picture in (gradient(), np.full((300, 300, 3), 128, np.uint8)):
        result = align.align_image(picture)
        assert not result.found and result.image is None and result.message == align.NO_FACE
    with pytest.raises(ValueError, match="no face found in the upload: use a photo where one face is clearly"):
        widgets.read_upload(png_bytes(gradient()), 16)


def test_a_small_face_says_its_size_and_the_minimum():
    result = align.align_image(astronaut(300))  # her box shrinks to about 52 px
    assert not result.found and 40 <= result.box_px < align.MIN_FACE
    assert f"too small to align: {result.box_px} px, at least {align.MIN_FACE} px needed" in result.message


def test_several_faces_take_the_largest_and_say_so():
    photo = Image.new("RGB", (900, 520), (120, 120, 120))
    photo.paste(astronaut(), (0, 0))
    photo.paste(astronaut(330), (560, 100))
    result = align.align_image(photo)
    assert result.found and result.faces == 2 and "2 faces found: aligned the largest" in result.message
    assert result.landmarks[:, 0].max() < 512  # the big one on the left


def test_an_unreadable_upload_says_what_to_use():
    with pytest.raises(ValueError, match="JPEG or PNG"):
        widgets.read_upload(b"not an image", 16)
    with pytest.raises(ValueError, match="empty"):
        widgets.read_upload(b"", 16)


def test_the_upload_is_aligned_by_default_and_cropped_like_the_cache():
    data = png_bytes(astronaut())
    x, note = widgets.read_upload(data, 32)
    assert x.shape == (3, 32, 32) and -1 <= x.min() and x.max() <= 1 and note.startswith("aligned: face ")
    from helpers.data.cache import crop_resize

    expected = np.asarray(crop_resize(align.align_image(astronaut()).image, 32, None)).transpose(2, 0, 1)
    assert torch.allclose((x + 1) * 127.5, torch.from_numpy(expected.copy()).float(), atol=0.01)
    plain, plain_note = widgets.read_upload(data, 32, align=False)
    assert plain_note.startswith("not aligned") and not torch.allclose(plain, x, atol=0.1)
    assert widgets.decode_upload(data, 16, channels=1).shape == (1, 16, 16)


def test_the_folder_command_writes_aligned_pngs_and_a_report(tmp_path):
    (tmp_path / "in" / "people").mkdir(parents=True)
    astronaut().save(tmp_path / "in" / "people" / "eileen.jpg")
    Image.fromarray(gradient()).save(tmp_path / "in" / "sky.png")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"junk")
    assert align.main([str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    out = tmp_path / "out" / "people" / "eileen.jpg.png"
    assert Image.open(out).size == (178, 218)
    report = json.loads((tmp_path / "out" / "align_report.json").read_text())
    assert report["people/eileen.jpg"]["found"] and report["people/eileen.jpg"]["box_px"] >= 64
    assert report["sky.png"]["message"] == align.NO_FACE and not (tmp_path / "out" / "sky.png.png").exists()
    assert "could not read" in report["broken.jpg"]["message"]
    assert align.main([str(tmp_path / "empty"), str(tmp_path / "o2")]) == 2


def test_load_faces_aligns_a_folder_once_into_its_own_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, size in enumerate((512, 400, 460)):
        astronaut(size).save(folder / f"p{i}.png")
    Image.fromarray(gradient(200, 200)).save(folder / "nobody.png")
    with pytest.warns(UserWarning, match="skipped 1 unreadable or unalignable"):
        faces = load_faces(folder, 32, split="all", align=True, progress=False)
    plain = load_faces(folder, 32, split="all", progress=False)
    assert len(faces) == 3 and len(plain) == 4 and "_aligned_" in faces.key and faces.key != plain.key
    a, b = faces.images.float(), faces.images[:1].float().expand(3, -1, -1, -1)
    assert (a - b).abs().mean() < 6  # the same face at three sizes lands on the same pixels
    assert len(list((tmp_path / "cache").glob("photos_aligned_*.npy"))) == 2  # images + ok mask
