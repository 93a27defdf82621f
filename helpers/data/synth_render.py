"""Drawing of one procedural face from its factors (the sampling lives in `synth.py`).

Everything is drawn with PIL at a large size and reduced with LANCZOS, so edges are
anti-aliased; lighting and texture noise are applied with numpy at the final size, where
they are cheapest. The only inputs are the factor dict, so toggling one binary attribute
in it and re-rendering shows exactly what that attribute draws.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from .synth_parts import (_eyes, _flat, _front_hair, _glasses, _hat, _hsv, _mouth, _mul, _outline,
                          _wrinkles)

# Extra margin on every side of the drawing canvas: the tilt rotation then never pulls empty
# corners into the frame (6 degrees at the corner radius needs ~0.075 of the size).
_PAD = 0.09

# (hue, saturation, value) ranges per hair class; ranges are disjoint in saturation/value so
# the class stays readable under the +-22% lighting. "other" is red/auburn (no CelebA label).
_HAIR_HSV = {
    "black": ((0.03, 0.12), (0.10, 0.40), (0.07, 0.16)),
    "brown": ((0.055, 0.085), (0.45, 0.65), (0.28, 0.44)),
    "blond": ((0.11, 0.14), (0.35, 0.58), (0.80, 0.95)),
    "gray": ((0.05, 0.60), (0.00, 0.06), (0.62, 0.86)),
    "other": ((0.015, 0.055), (0.62, 0.85), (0.52, 0.74)),
}
_HAIR_ATTR = (("Black_Hair", "black"), ("Blond_Hair", "blond"), ("Brown_Hair", "brown"), ("Gray_Hair", "gray"))
# Non-pale skin runs continuously dark -> light; pale is a separate, less saturated band above it.
_SKIN_ANCHORS = np.array([(92, 58, 40), (150, 100, 70), (198, 148, 112), (230, 188, 157)], dtype=np.float64)
_PALE_LO, _PALE_HI = np.array((236, 213, 199.0)), np.array((247, 228, 217.0))
_TILT_RESAMPLE = Image.Resampling.BILINEAR


def _lerp(lo: float, hi: float, t: float) -> float:
    return lo + (hi - lo) * t


def hair_class(f: dict) -> str:
    """Return the hair class name ('black', 'blond', 'brown', 'gray', 'other' or 'none' when bald)."""
    if f["Bald"]:
        return "none"
    for attr, name in _HAIR_ATTR:
        if f[attr]:
            return name
    return "other"


def _hair_rgb(cls: str, f: dict) -> tuple[int, int, int]:
    (h0, h1), (s0, s1), (v0, v1) = _HAIR_HSV[cls]
    return _hsv(_lerp(h0, h1, f["hair_j1"]), _lerp(s0, s1, f["hair_j2"]), _lerp(v0, v1, f["hair_j3"]))


def _skin_rgb(f: dict) -> tuple[int, int, int]:
    t = f["skin_t"]
    if f["Pale_Skin"]:
        c = _PALE_LO + (_PALE_HI - _PALE_LO) * t
    else:
        x = t * (len(_SKIN_ANCHORS) - 1)
        i = min(int(x), len(_SKIN_ANCHORS) - 2)
        c = _SKIN_ANCHORS[i] + (_SKIN_ANCHORS[i + 1] - _SKIN_ANCHORS[i]) * (x - i)
    # a small warm/cool shift keeps two faces of equal tone from being identical
    j = (f["skin_j"] - 0.5) * 0.06
    return _mul(c, (1 + j, 1.0, 1 - j))


@lru_cache(maxsize=16)
def _grids(size: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return g[None, :], g[:, None]


@lru_cache(maxsize=16)
def _noise_bank(size: int) -> np.ndarray:
    # One fixed noise texture per size, sliced at a per-face offset: as varied as fresh noise for
    # a GAN, deterministic across processes, and ~10x cheaper than drawing new normals each time.
    return np.random.default_rng(20240601).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)


def render_from_factors(f: dict, size: int = 64) -> np.ndarray:
    """Return the face for factor dict `f` as uint8 (size, size, 3) RGB.

    Drawn at R = max(128, 2 * size) plus a margin, tilted, LANCZOS-reduced to `size`, then
    lit and noised. Any binary attribute in `f` may be flipped before calling (tests do).
    """
    R = max(128, 2 * size)
    P = round(_PAD * R)
    img = Image.new("RGB", (R + 2 * P, R + 2 * P), _hsv(f["bg_h"], f["bg_s"], f["bg_v"]))
    d = ImageDraw.Draw(img)
    s = float(R)
    male, young, bald, hat = f["Male"], f["Young"], f["Bald"], f["Wearing_Hat"]
    cx, cy = P + (0.5 + f["dx"]) * s, P + (0.5 + f["dy"]) * s
    a, b = f["face_a"] * s, f["face_b"] * s
    skin = _skin_rgb(f)
    hcls = hair_class(f)
    hair = _hair_rgb(hcls, f) if hcls != "none" else None
    # brows, beard and moustache of bald men keep the colour their hair would have had
    fhair = _mul(hair if hair else _hair_rgb(f["bald_hair"], f), 0.72)
    chin = cy + b
    ey = cy - f["eye_y"] * b
    my = cy + f["mouth_y"] * b
    ny = ey + (my - ey) * f["nose_y"]
    edx = f["eye_dx"] * s
    vs, vt = f["hair_side"] * s, f["hair_top"] * s

    # clothes and neck
    ctop = chin + f["neck_len"] * s
    d.rounded_rectangle([cx - f["shoulder"] * s, ctop, cx + f["shoulder"] * s, R + 2 * P + 0.3 * s],
                        radius=0.16 * s, fill=_hsv(f["cloth_h"], f["cloth_s"], f["cloth_v"]))
    nw = a * (0.52 if male else 0.42)
    if not male and not bald:  # long hair falls behind the neck onto the shoulders
        d.ellipse([cx - a - vs, cy - b - vt, cx + a + vs, cy + 0.6 * b], fill=hair)
        fl = vs * f["hair_flare"]
        d.rounded_rectangle([cx - a - fl, cy - 0.1 * b, cx + a + fl, chin + f["hair_len"] * s],
                            radius=0.05 * s, fill=hair)
    d.ellipse([cx - nw * 1.5, ctop - 0.03 * s, cx + nw * 1.5, ctop + 0.06 * s], fill=_mul(skin, 0.8))
    d.rectangle([cx - nw, cy + 0.3 * b, cx + nw, ctop + 0.01 * s], fill=_mul(skin, 0.84))
    if male or bald:  # women's ears are hidden by the long hair
        for sg in (-1, 1):
            ex_ = cx + sg * a * 0.96
            d.ellipse([ex_ - 0.03 * s, ey - 0.03 * s, ex_ + 0.03 * s, ey + 0.075 * s],
                      fill=_mul(skin, 0.9), outline=_mul(skin, 0.7), width=max(1, round(0.008 * s)))

    head = _outline(cx, cy, a, b, f["crown_n"], f["jaw_n"])
    d.polygon(_flat(head), fill=skin)
    if bald:  # scalp highlight makes the bare dome read as skin, not as a light hat
        d.ellipse([cx - a * 0.45, cy - b * 0.95, cx + a * 0.2, cy - b * 0.7], fill=_mul(skin, 1.1))

    mw = f["mouth_w"] * s * (1.2 if f["Smiling"] else 1.0)
    if not f["No_Beard"]:
        ybs = cy + f["beard_top"] * s
        run = head[head[:, 1] >= ybs]
        run = np.column_stack([cx + (run[:, 0] - cx) * 1.04, run[:, 1] + 0.012 * s])
        inner = [(cx - mw - 0.03 * s, my - 0.006 * s), (cx + mw + 0.03 * s, my - 0.006 * s)]
        d.polygon(_flat(run) + _flat(inner), fill=fhair)

    # nose: a shaded side and the nostril arc
    nwid, shade = f["nose_w"] * s, _mul(skin, 0.72)
    lw = max(1, round(0.011 * s))
    d.line([(cx + 0.008 * s, ny - f["nose_len"] * s), (cx + nwid * 0.7, ny - 0.005 * s)], fill=shade, width=lw)
    d.arc([cx - nwid, ny - 0.025 * s, cx + nwid, ny + 0.012 * s], 20, 160, fill=shade, width=lw)

    if not young:
        _wrinkles(d, f, s, cx, ey, my, ny, mw, nwid, edx, _mul(skin, f["wrinkle_k"]))

    _eyes(d, f, s, cx, ey, edx, fhair, male)
    if f["Eyeglasses"]:
        _glasses(d, f, s, cx, ey, edx, a)
    if f["Mustache"]:
        # darker than a beard of the same hair so it still stands out on top of one
        d.polygon(_flat([(cx - mw * 1.08, my - 0.008 * s), (cx + mw * 1.08, my - 0.008 * s),
                         (cx + mw * 0.75, my - 0.052 * s), (cx - mw * 0.75, my - 0.052 * s)]), fill=_mul(fhair, 0.7))
    _mouth(d, f, s, cx, my, mw, skin)
    if not bald:
        _front_hair(d, f, s, cx, cy, a, b, ey, vs, vt, hair)
    if hat:
        _hat(d, f, s, cx, cy, a, b, ey, vs, vt)

    # tilt about the face centre and drop the margin in one affine resample; NEAREST is 9x
    # faster than BILINEAR here and its stair-steps vanish in the >= 2x LANCZOS reduction
    ang = math.radians(f["tilt"])
    ca, sa = math.cos(ang), math.sin(ang)
    ox, oy = cx - P, cy - P
    img = img.transform((R, R), Image.Transform.AFFINE,
                        (ca, -sa, cx - ca * ox + sa * oy, sa, ca, cy - sa * ox - ca * oy),
                        resample=_TILT_RESAMPLE)
    if size != R:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return _light_and_noise(np.asarray(img, dtype=np.float32), f, size)


def _light_and_noise(x: np.ndarray, f: dict, size: int) -> np.ndarray:
    gx, gy = _grids(size)
    k = f["light_s"]
    light = 1.0 + k * (gx * math.cos(f["light_dir"]) + gy * math.sin(f["light_dir"]))
    x *= light[..., None]
    o1, o2 = int(f["noise_ox"] * size), int(f["noise_oy"] * size)
    x += f["noise_amp"] * _noise_bank(size)[o1:o1 + size, o2:o2 + size]
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)
