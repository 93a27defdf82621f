"""Independent face judges, trained on none of the project's data: does a standard face detector
find a face (dlib's HOG detector, Dalal & Triggs 2005), and do two faces show the same person
(dlib's ResNet face embedding, King 2017; same person below distance 0.6 in dlib's docs).

Both take images as the rest of the project does and load their models lazily, once. Their
reliability at 32 px (and the upsampled sizes chosen here) is measured in docs/metrics.md.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DETECT_SIZE = 128  # side the HOG detector sees: its window is 80 px, 32 px faces must be upsampled
EMBED_SIZE = 150  # side the landmarks are found at (dlib's face chips are 150 px)
SAME_PERSON = 0.6  # dlib's threshold on the embedding distance
WINDOW_FLOOR = -2.0  # embed: lowest HOG score still taken as the face box (blurred faces score below 0)
INSTALL_HINT = "pip install dlib-bin face_recognition_models  (`make test` installs both from requirements.txt)"
MODEL_FILES = {"landmarks": "shape_predictor_5_face_landmarks.dat",
               "resnet": "dlib_face_recognition_resnet_model_v1.dat"}
_MODELS: dict = {}


class JudgeMissing(ImportError):
    """dlib or the face_recognition_models weights are not installed."""


# --------------------------------------------------------------------------- models
def _dlib():
    try:
        import dlib
    except ImportError as err:
        raise JudgeMissing(f"the face judges need dlib: run {INSTALL_HINT}") from err
    return dlib


def _models_dirs() -> list[Path]:
    # find_spec locates the package without importing it (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("face_recognition_models")
    return [Path(p) / "models" for p in (spec.submodule_search_locations or [])] if spec else []


def model_file(file: str, who: str = "the identity judge") -> Path:
    """Return the path of one of dlib's model files (e.g. 'shape_predictor_68_face_landmarks.dat')
    in the face_recognition_models wheel; JudgeMissing (naming `who` needs it) when it is absent."""
    dirs = _models_dirs()
    path = next((d / file for d in dirs if (d / file).is_file()), None)
    if path is None:
        why = "is not installed" if not dirs else f"has no {file} in {', '.join(map(str, dirs))}"
        raise JudgeMissing(f"{who} needs dlib's models from face_recognition_models, which {why}: run {INSTALL_HINT}")
    return path


def model_paths() -> dict[str, Path]:
    """Return {'landmarks': path, 'resnet': path}: dlib's models in the face_recognition_models wheel."""
    return {name: model_file(file) for name, file in MODEL_FILES.items()}


def _model(name: str):
    """Return one dlib model ('detector', 'landmarks' or 'resnet'), loaded on first use."""
    if name not in _MODELS:
        dlib = _dlib()
        if name == "detector":
            _MODELS[name] = dlib.get_frontal_face_detector()
        elif name == "landmarks":
            _MODELS[name] = dlib.shape_predictor(str(model_paths()["landmarks"]))
        else:
            _MODELS[name] = dlib.face_recognition_model_v1(str(model_paths()["resnet"]))
    return _MODELS[name]


def _pixels(images, size: int) -> np.ndarray:
    """Return images as uint8 RGB (N, size, size, 3), resized bilinearly (as for FID)."""
    x = torch.as_tensor(images).detach().cpu()
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 3, H, W) (or (N, 1, H, W) grayscale), got {tuple(x.shape)}")
    if len(x) == 0:
        raise ValueError("no images to judge")
    if x.dtype == torch.uint8:
        u = x.float()
    elif x.is_floating_point():
        if not torch.isfinite(x).all() or x.min() < -1.01 or x.max() > 1.01:
            raise ValueError("float images must lie in [-1, 1]; map [0, 1] images with x * 2 - 1 or pass uint8")
        u = (x.float() + 1) * 127.5
    else:
        raise ValueError(f"images must be uint8 in [0, 255] or float in [-1, 1], got {x.dtype}")
    u = u.expand(-1, 3, -1, -1)
    if u.shape[-2:] != (size, size):
        u = F.interpolate(u, size=(size, size), mode="bilinear", align_corners=False)
    return u.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


# --------------------------------------------------------------------------- face detection
def face_scores(images, size: int = DETECT_SIZE) -> torch.Tensor:
    """Return each image's best HOG face-detection score: float32 (N,), -inf where nothing is found.

    images: (N, 3, H, W) float in [-1, 1] or uint8, upsampled to size x size (no further
    upsampling inside dlib). dlib's detector (Dalal & Triggs 2005 HOG + linear SVM) reports a face
    when the score is > 0.
    """
    detector, out = _model("detector"), []
    for img in _pixels(images, size):
        _, scores, _ = detector.run(img, 0, -1.0)  # a lowered threshold, so near misses get a score too
        out.append(max(scores) if len(scores) else -np.inf)
    return torch.tensor(out, dtype=torch.float32)


def detect_faces(images, size: int = DETECT_SIZE, threshold: float = 0.0) -> torch.Tensor:
    """Return bool (N,): True where the HOG detector finds a face (score > threshold; dlib's own is 0).

    images: (N, 3, H, W) float in [-1, 1] or uint8.
    """
    return face_scores(images, size) > threshold


def face_detection_rate(images, size: int = DETECT_SIZE) -> float:
    """Return the fraction of images (in [0, 1]) in which the HOG detector finds a face."""
    return float(detect_faces(images, size).float().mean())


# --------------------------------------------------------------------------- identity
def embed(images, size: int = EMBED_SIZE) -> torch.Tensor:
    """Return dlib's ResNet face embeddings: float32 (N, 128) (not unit length; compare by distance).

    images: (N, 3, H, W) float in [-1, 1] or uint8, upsampled to size x size. The face box is the
    HOG detector's best window even below its threshold: our inputs are aligned face crops, so the
    best window is the face (the whole image only where no window scores above WINDOW_FLOOR). Five
    landmarks in that box then align the 150 px chip the network reads.
    """
    dlib = _dlib()
    detector, landmarks, resnet = _model("detector"), _model("landmarks"), _model("resnet")
    chips = []
    for img in _pixels(images, size):
        boxes, scores, _ = detector.run(img, 0, WINDOW_FLOOR)
        box = boxes[int(np.argmax(scores))] if len(scores) else dlib.rectangle(0, 0, size - 1, size - 1)
        chips.append(dlib.get_face_chip(img, landmarks(img, box), size=150, padding=0.25))
    return torch.tensor(np.array(resnet.compute_face_descriptor(chips)), dtype=torch.float32)


def _embeddings(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    # (N, 128) floats are embeddings already; anything else is images.
    return x.float() if x.dim() == 2 and x.shape[1] == 128 and x.is_floating_point() else embed(x)


def identity_distance(a, b) -> torch.Tensor:
    """Return the embedding distance of each pair: float32 (N,); below 0.6 means the same person.

    a, b: paired images (N, 3, H, W) float in [-1, 1] or uint8, or their (N, 128) embeddings.
    """
    ea, eb = _embeddings(a), _embeddings(b)
    if ea.shape != eb.shape:
        raise ValueError(f"a and b must hold the same number of images, got {len(ea)} and {len(eb)}")
    return (ea - eb).norm(dim=1)


def same_person(before, after, threshold: float = SAME_PERSON) -> torch.Tensor:
    """Return bool (N,): whether the embedding calls each pair the same person (identity_distance's
    inputs)."""
    return identity_distance(before, after) < threshold


def identity_kept(before, after, threshold: float = SAME_PERSON) -> float:
    """Return the fraction of pairs (in [0, 1]) the embedding calls the same person.

    before, after: paired images (N, 3, H, W) float in [-1, 1] or uint8 (row i of `after` is the
    edit of row i of `before`), or their embeddings. Higher means the edit kept the identity.
    """
    return float(same_person(before, after, threshold).float().mean())
