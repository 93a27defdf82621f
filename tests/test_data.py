"""The loaders on CelebA-layout fixtures (txt and csv), image folders, LFW, and bad input."""
import os

import numpy as np
import pytest
import torch

from helpers.core import paths
from helpers.data import DataError, get_dataloader, load_faces, scale
from helpers.data import cache

from .fixtures import ATTRS, attr_values, make_celeba, make_folder, partition


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")


@pytest.mark.parametrize("variant,zero_one", [("txt", False), ("csv", False), ("txt", True)])
def test_celeba_layout_splits_and_attributes(tmp_path, variant, zero_one):
    root = make_celeba(tmp_path / "celeba", n=12, variant=variant, zero_one=zero_one)
    train = load_faces(root, 16, split="train", progress=False)
    test = load_faces(root, 16, split="test", progress=False)
    assert len(train) == 8 and len(test) == 2
    assert train.attr_names == ATTRS
    assert train.images.shape == (8, 3, 16, 16) and train.images.dtype == torch.uint8
    expected = (attr_values(12) > 0).astype(np.float32)
    np.testing.assert_array_equal(train.attrs.numpy(), expected[partition(12) == 0])
    np.testing.assert_array_equal(test.attrs.numpy(), expected[partition(12) == 2])


def test_txt_and_csv_give_identical_faces(tmp_path):
    a = load_faces(make_celeba(tmp_path / "a", variant="txt"), 32, split="all", progress=False)
    b = load_faces(make_celeba(tmp_path / "b", variant="csv"), 32, split="all", progress=False)
    assert torch.equal(a.attrs, b.attrs)
    assert (a.images.float() - b.images.float()).abs().max() < 2  # same pixels, same decode


def test_attribute_subset_by_name_keeps_requested_order(tmp_path):
    root = make_celeba(tmp_path / "c")
    faces = load_faces(root, 16, split="all", attrs=["Smiling", "Eyeglasses"], progress=False)
    assert faces.attr_names == ["Smiling", "Eyeglasses"]
    vals = (attr_values(12) > 0).astype(np.float32)
    np.testing.assert_array_equal(faces.attrs.numpy(), vals[:, [2, 0]])
    assert torch.equal(faces.attr("Smiling"), faces.attrs[:, 0])


def test_centre_crop_removes_the_border(tmp_path):
    root = make_celeba(tmp_path / "c")
    full = load_faces(root, 16, split="all", progress=False)
    cropped = load_faces(root, 16, split="all", crop=90, progress=False)
    corner_full, corner_crop = full.images[0, :, 0, 0].int(), cropped.images[0, :, 0, 0].int()
    assert abs(int(corner_full[1]) - 200) < 20  # the green border survives without a crop
    assert abs(int(corner_crop[1]) - 100) < 20  # the 100x100 centre fills a 90 px crop


def test_image_folder_is_recursive_and_mixed_formats(tmp_path):
    root = make_folder(tmp_path / "lfw", n_people=3, per_person=4)
    faces = load_faces(root, 32, split="all", progress=False)
    assert len(faces) == 12 and faces.attr_names == [] and faces.attrs.shape == (12, 0)
    parts = [len(load_faces(root, 32, split=s, progress=False)) for s in ("train", "valid", "test")]
    assert sum(parts) == 12 and min(parts) >= 1
    assert sorted(set(faces.identity.tolist())) == [0, 1, 2]  # LFW's person folders are the people


def test_sub_folders_that_are_not_people_give_no_identities(tmp_path):
    root = make_folder(tmp_path / "lfw", n_people=2, per_person=3)
    (root / "Person_0").rename(root / "train")  # files Person_0_*.jpg under train/: a split, not a person
    assert load_faces(root, 32, split="all", progress=False).identity is None


def test_lfw100_ships_with_scikit_image():
    faces = load_faces("lfw100", 32, split="all", progress=False)
    assert faces.images.shape == (100, 1, 32, 32)
    assert faces.images.float().std() > 20  # real faces, not a blank array
    colour = load_faces("lfw100", 16, split="train", channels=3, progress=False)
    assert colour.images.shape == (80, 3, 16, 16)


def test_cache_is_read_instead_of_decoding_again(tmp_path, monkeypatch):
    root = make_celeba(tmp_path / "c")
    first = load_faces(root, 16, split="all", progress=False)
    assert list(paths.CACHE_DIR.glob("*.npy"))

    def no_decode(*a, **k):
        raise AssertionError("decoded again despite a cache")

    monkeypatch.setattr(cache, "decode_files", no_decode)
    second = load_faces(root, 16, split="all", progress=False)
    assert torch.equal(first.images, second.images)


def test_loader_batches_ranges_and_exact_replay(tmp_path):
    faces = load_faces(make_celeba(tmp_path / "c"), 16, split="all", progress=False)
    loader = faces.loader(4, seed=3)
    assert len(loader) == 3
    x, a = next(iter(loader))
    assert x.shape == (4, 3, 16, 16) and a.shape == (4, 3)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.5
    loader.set_epoch(5)
    full = [b for b, _ in loader.iterate()]
    tail = [b for b, _ in loader.iterate(start_batch=1)]
    assert all(torch.equal(p, q) for p, q in zip(full[1:], tail))
    loader.set_epoch(6)
    assert not torch.equal(full[0], next(loader.iterate())[0])  # another epoch, another order
    unit = faces.loader(4, feature_range=(0, 1))
    x01, _ = next(iter(unit))
    assert x01.min() >= 0 and x01.max() <= 1
    assert torch.allclose(scale(x01), next(iter(faces.loader(4)))[0], atol=1e-6)


def test_flip_mirrors_some_images(tmp_path):
    faces = load_faces(make_folder(tmp_path / "f"), 16, split="all", progress=False)
    plain = next(faces.loader(12, shuffle=False).iterate())[0]
    flipped = next(faces.loader(12, shuffle=False, flip=True).iterate())[0]
    same = [torch.equal(p, f) for p, f in zip(plain, flipped)]
    mirrored = [torch.equal(p.flip(-1), f) for p, f in zip(plain, flipped)]
    assert all(s or m for s, m in zip(same, mirrored)) and 0 < sum(mirrored) < 12


def test_get_dataloader_keeps_the_course_signature(tmp_path):
    loader = get_dataloader(batch_size=2, image_size=32, data_dir=make_folder(tmp_path / "f"))
    images, _ = next(iter(loader))
    assert images.shape == (2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1


# ---- bad input: each a clear message that says what to do ----------------------------------
def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist.*synthetic"):
        load_faces(tmp_path / "nope", 32)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="contains no .jpg"):
        load_faces(tmp_path / "empty", 32)


def test_celeba_without_images(tmp_path):
    (tmp_path / "c" / "img_align_celeba").mkdir(parents=True)
    (tmp_path / "c" / "list_attr_celeba.txt").write_text("0\nSmiling\n")
    with pytest.raises(DataError, match="no images found.*img_align_celeba"):
        load_faces(tmp_path / "c", 32)


def test_corrupt_image_is_skipped_with_a_count(tmp_path):
    root = make_celeba(tmp_path / "c")
    (root / "img_align_celeba" / "000002.jpg").write_bytes(b"not a jpeg at all")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image.*000002.jpg"):
        faces = load_faces(root, 16, split="all", progress=False)
    assert len(faces) == 11
    vals = (attr_values(12) > 0).astype(np.float32)
    np.testing.assert_array_equal(faces.attrs.numpy(), np.delete(vals, 1, axis=0))  # labels stay aligned


def test_attribute_file_that_matches_no_image(tmp_path):
    root = make_celeba(tmp_path / "c")
    text = (root / "list_attr_celeba.txt").read_text().replace("0000", "9990")
    (root / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(DataError, match="does not match the images"):
        load_faces(root, 16)


def test_attribute_file_with_missing_images_warns(tmp_path):
    root = make_celeba(tmp_path / "c")
    (root / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.warns(UserWarning, match="1 images listed.*missing"):
        faces = load_faces(root, 16, split="all", progress=False)
    assert len(faces) == 11


def test_unknown_attribute_lists_the_known_ones(tmp_path):
    root = make_celeba(tmp_path / "c")
    with pytest.raises(DataError, match="unknown attribute.*Wearing_Hat.*Eyeglasses, Male, Smiling"):
        load_faces(root, 16, attrs=["Wearing_Hat"])


def test_bad_attribute_values(tmp_path):
    root = make_celeba(tmp_path / "c")
    text = (root / "list_attr_celeba.txt").read_text().replace(" 1", " 7")
    (root / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(DataError, match="-1/1 or 0/1"):
        load_faces(root, 16)


def test_unsupported_image_size(tmp_path):
    with pytest.raises(ValueError, match="image_size=48 is not supported"):
        load_faces(make_folder(tmp_path / "f"), 48)


def test_attrs_on_a_plain_folder_says_what_is_needed(tmp_path):
    with pytest.raises(DataError, match="without attribute labels"):
        load_faces(make_folder(tmp_path / "f"), 16, attrs=["Smiling"])


def test_batch_larger_than_the_set(tmp_path):
    faces = load_faces(make_folder(tmp_path / "f"), 16, split="all", progress=False)
    with pytest.raises(DataError, match="lower batch_size"):
        faces.loader(64)


def test_several_folders_load_as_one_set_split_by_split(tmp_path):
    a, b = make_celeba(tmp_path / "a", n=12), make_celeba(tmp_path / "b", n=16)
    one = {s: load_faces(a, 16, split=s, progress=False) for s in ("train", "test")}
    both = load_faces(f"{a}{os.pathsep}{b}", 16, split="train", progress=False)
    assert len(both) == len(one["train"]) + len(load_faces(b, 16, split="train", progress=False))
    assert torch.equal(both.images[:len(one["train"])], one["train"].images) and both.attr_names == ATTRS
    assert both.name == "a+b" and len(load_faces([a, b], 16, split="test", progress=False)) == 4
    assert len(load_faces([a, b], 16, split="train", max_images=10, progress=False)) == 10
