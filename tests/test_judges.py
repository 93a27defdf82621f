"""Face judges (dlib HOG detector, dlib ResNet identity) on scikit-image's pictures at the demo's
32 px: a face is found where there is one, the same face stays the same person, others do not."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from helpers.eval import judges as J


def at_32px(rgb: np.ndarray) -> torch.Tensor:
    """Return an RGB array as uint8 (3, 32, 32), resized as the project's loader does (LANCZOS)."""
    small = Image.fromarray(np.ascontiguousarray(rgb)).resize((32, 32), Image.LANCZOS)
    return torch.from_numpy(np.array(small)).permute(2, 0, 1).contiguous()


@pytest.fixture(scope="module")
def face() -> torch.Tensor:
    # The astronaut's face, cropped loosely like an aligned CelebA face (dlib finds it at 179..266 x 83..170).
    return at_32px(skimage.data.astronaut()[46:206, 142:302])


@pytest.fixture(scope="module")
def lfw_faces() -> torch.Tensor:
    """Ten other people: scikit-image's LFW subset (25 px grayscale), as uint8 (10, 1, 25, 25)."""
    return torch.from_numpy((skimage.data.lfw_subset()[:10] * 255).round().astype(np.uint8))[:, None]


def test_detector_finds_the_face_and_not_the_coffee(face):
    coffee = at_32px(skimage.data.coffee()[:, 100:500])
    found = J.detect_faces(torch.stack([face, coffee]))
    assert found.tolist() == [True, False]
    scores = J.face_scores(torch.stack([face, coffee]))
    assert scores[0] > 0 and scores[1] < 0


def test_detector_takes_float_images_and_grayscale(face, lfw_faces):
    as_float = face.float() / 127.5 - 1
    assert J.detect_faces(as_float[None]).item()
    non_faces = torch.from_numpy((skimage.data.lfw_subset()[100:110] * 255).round().astype(np.uint8))[:, None]
    assert J.face_detection_rate(lfw_faces) >= 0.5 > J.face_detection_rate(non_faces)


def test_detector_misses_noise():
    noise = torch.randint(0, 256, (4, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert J.face_detection_rate(noise) == 0.0


def test_same_face_is_the_same_person_and_others_are_not(face, lfw_faces):
    shifted = torch.roll(face, 1, dims=2)
    brighter = (face.float() * 1.1).clamp(0, 255).to(torch.uint8)
    emb = J.embed(torch.stack([face, shifted, brighter, face.flip(-1)]))
    assert emb.shape == (4, 128) and emb.dtype == torch.float32
    same = J.identity_distance(emb[:1].expand(3, -1), emb[1:])
    assert (same < 0.3).all(), same
    others = J.identity_distance(face[None].expand(10, -1, -1, -1), lfw_faces.expand(-1, 3, -1, -1))
    assert (others > J.SAME_PERSON).all(), others
    assert others.mean() > 3 * same.mean()
    assert J.identity_kept(emb[:1].expand(3, -1), emb[1:]) == 1.0
    assert J.identity_kept(face[None].expand(10, -1, -1, -1), lfw_faces.expand(-1, 3, -1, -1)) == 0.0


def test_embeddings_are_deterministic_and_accept_float(face):
    a = J.embed(face[None])
    b = J.embed((face.float() / 127.5 - 1)[None])
    assert torch.allclose(a, b, atol=1e-5)


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        J.detect_faces(torch.rand(2, 3, 32, 32) * 255)
    with pytest.raises(ValueError, match="N, 3, H, W"):
        J.embed(torch.zeros(2, 4, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="same number"):
        J.identity_distance(torch.zeros(2, 128), torch.zeros(3, 128))


def test_missing_models_say_how_to_install(monkeypatch):
    monkeypatch.setattr(J, "_models_dirs", lambda: [])
    with pytest.raises(J.JudgeMissing, match="not installed.*pip install dlib-bin face_recognition_models"):
        J.model_paths()
    monkeypatch.setattr(J, "_MODELS", {})  # nothing loaded yet, as in a fresh kernel
    with pytest.raises(J.JudgeMissing, match="pip install"):
        J.embed(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
