"""Drawing of one procedural face from its factors (the sampling lives in `synth.py`).

Everything is drawn with PIL at a large size and reduced with LANCZOS, so edges are
anti-aliased; lighting and texture noise are applied with numpy at the final size, where
they are cheapest. The only inputs are the factor dict, so toggling one binary attribute
in it and re-rendering shows exactly what that attribute draws.
"""
from __future__ import annotations

import colorsys
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

# Extra margin on every side of the drawing canvas: the tilt rotation then never pulls empty
# corners into the frame (6 degrees at the corner radius needs ~0.075 of the size).
_PAD = 0.09
# Head outline parameter, starting at the top so the lower (jaw) part is one contiguous run.
_T = np.linspace(-math.pi / 2, 1.5 * math.pi, 44, endpoint=False)
_COS, _SIN = np.cos(_T), np.sin(_T)
_LOWER = _SIN > 0
_SMILE_COS, _SMILE_SIN = np.cos(np.radians(np.linspace(12, 168, 13))), np.sin(np.radians(np.linspace(12, 168, 13)))

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
_SCLERA = (244, 244, 238)
_TILT_RESAMPLE = Image.Resampling.BILINEAR
_MOUTH_IN = (58, 14, 22)


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255 + 0.5), int(g * 255 + 0.5), int(b * 255 + 0.5)


def _mul(c, k) -> tuple[int, int, int]:
    if isinstance(k, (int, float)):
        k = (k, k, k)
    return tuple(max(0, min(255, int(x * m + 0.5))) for x, m in zip(c, k))


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


def _outline(cx, cy, a, b, n_up, n_low) -> np.ndarray:
    """Return (44, 2) points of the head: superellipse, rounder crown, squarer or pointier jaw."""
    e = np.where(_LOWER, 2.0 / n_low, 2.0 / n_up)
    x = cx + a * np.sign(_COS) * np.abs(_COS) ** e
    y = cy + b * np.sign(_SIN) * np.abs(_SIN) ** e
    return np.stack([x, y], axis=1)


def _flat(points) -> list[float]:
    return np.asarray(points, dtype=np.float64).ravel().tolist()


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


def _wrinkles(d, f, s, cx, ey, my, ny, mw, nwid, edx, col) -> None:
    # Age cues spread over the face so some survive bangs, hats, beards and glasses:
    # forehead lines, nasolabial folds, marionette lines, eye bags.
    w = max(1, round(f["wrinkle_w"] * s))
    by = ey - f["brow_gap"] * s
    for k in (0.045, 0.085):
        yy = by - k * s
        d.arc([cx - 0.13 * s, yy, cx + 0.13 * s, yy + 0.05 * s], 205, 335, fill=col, width=w)
    for sg in (-1, 1):
        x0 = cx + sg * (nwid + 0.012 * s)
        x1 = cx + sg * (mw + 0.045 * s)
        d.line([(x0, ny - 0.012 * s), (x0 + sg * 0.022 * s, ny + 0.03 * s), (x1, my + 0.012 * s)],
               fill=col, width=w, joint="curve")
        d.line([(cx + sg * (mw + 0.035 * s), my + 0.03 * s), (cx + sg * (mw + 0.04 * s), my + 0.075 * s)],
               fill=col, width=w)
        ex = cx + sg * edx
        d.arc([ex - 0.045 * s, ey - 0.005 * s, ex + 0.045 * s, ey + 0.055 * s], 25, 155, fill=col, width=w)


def _eyes(d, f, s, cx, ey, edx, brow_col, male) -> None:
    w, h = f["eye_w"] * s, f["eye_h"] * s
    lid = (38, 26, 24)
    lid_w = max(1, round((0.007 if male else 0.013) * s))
    iris = _hsv(f["iris_h"], f["iris_s"], f["iris_v"])
    bt = max(1, round(f["brow_t"] * s))
    by = ey - f["brow_gap"] * s
    for sg in (-1, 1):
        ex = cx + sg * edx
        if f["Narrow_Eyes"]:
            # a dark slit, no white: the visible difference from an open eye at 32 px
            d.ellipse([ex - w, ey - h * 0.28, ex + w, ey + h * 0.28], fill=lid)
        else:
            d.ellipse([ex - w, ey - h, ex + w, ey + h], fill=_SCLERA)
            r = h * 0.92
            gx = ex + f["gaze"] * w * 0.25
            d.ellipse([gx - r, ey - r, gx + r, ey + r], fill=iris)
            d.ellipse([gx - r * 0.45, ey - r * 0.45, gx + r * 0.45, ey + r * 0.45], fill=(12, 10, 10))
            d.arc([ex - w, ey - h, ex + w, ey + h], 185, 355, fill=lid, width=lid_w)
        bl = w * 1.25
        inner, outer = ex - sg * bl, ex + sg * bl
        tilt = f["brow_tilt"] * s
        if male:
            d.line([(inner, by + tilt), (outer, by - tilt)], fill=brow_col, width=bt)
        else:
            d.line([(inner, by + tilt), (ex + sg * bl * 0.2, by - 0.018 * s), (outer, by + 0.004 * s)],
                   fill=brow_col, width=bt, joint="curve")


def _glasses(d, f, s, cx, ey, edx, a) -> None:
    gw, gh = (f["eye_w"] + 0.022) * s, (f["eye_h"] + 0.026) * s
    col = _hsv(f["glasses_h"], 0.4, f["glasses_v"])
    t = max(2, round(f["glasses_t"] * s))
    for sg in (-1, 1):
        ex = cx + sg * edx
        box = [ex - gw, ey - gh, ex + gw, ey + gh]
        if f["glasses_style"] < 0.5:
            d.rounded_rectangle(box, radius=gh * 0.45, outline=col, width=t)
        else:
            d.ellipse(box, outline=col, width=t)
        d.line([(ex + sg * gw, ey - gh * 0.3), (cx + sg * a * 0.99, ey - gh * 0.55)], fill=col, width=t)
    d.line([(cx - edx + gw, ey - gh * 0.25), (cx + edx - gw, ey - gh * 0.25)], fill=col, width=t)


def _mouth(d, f, s, cx, my, mw, skin) -> None:
    lipstick = f["Wearing_Lipstick"]
    if lipstick:
        lip = _hsv(f["lip_h"], f["lip_s"], f["lip_v"])
    elif f["No_Beard"]:  # relatively darker on dark skin, so the contrast holds for every tone
        lum = sum(skin) / 765.0
        kr, kg = 0.45 + 0.35 * lum, 0.28 + 0.24 * lum
        lip = _mul(skin, (kr, kg, kg))
    else:  # on a dark beard, bare lips must be lighter than the hair around them to show
        lip = _mul(skin, (1.12, 0.86, 0.82))
    lt = max(1, round((0.026 if lipstick else 0.022) * s))
    # open mouths get a thinner lip outline so the dark interior stays visible at 32 px
    lo = max(1, round(lt * 0.6))
    if f["Smiling"]:
        if f["Mouth_Slightly_Open"]:  # a "D": flat top with upper teeth, dark below
            y0, y1 = my - 0.012 * s, my + 0.085 * s
            box = [cx - mw, 2 * y0 - y1, cx + mw, y1]
            d.chord(box, 0, 180, fill=_MOUTH_IN)
            d.chord([cx - mw * 0.88, y0 - 0.03 * s, cx + mw * 0.88, y0 + 0.03 * s], 0, 180, fill=_SCLERA)
            d.chord(box, 0, 180, outline=lip, width=lo)
        else:  # a crescent: thick in the middle, corners well above it
            th = (0.042 if lipstick else 0.034) * s
            xs = cx + mw * _SMILE_COS
            yo = my - 0.04 * s + 0.1 * s * _SMILE_SIN
            d.polygon(_flat(np.column_stack([np.r_[xs, xs[::-1]], np.r_[yo, (yo - th * _SMILE_SIN)[::-1]]])),
                      fill=lip)
    elif f["Mouth_Slightly_Open"]:  # an "O" with upper teeth: white reads on dark skin too
        ow, top, bot = mw * 0.65, my - 0.03 * s, my + 0.045 * s
        d.ellipse([cx - ow, top, cx + ow, bot], fill=_MOUTH_IN)
        d.chord([cx - ow * 0.8, top - 0.015 * s, cx + ow * 0.8, top + 0.035 * s], 0, 180, fill=_SCLERA)
        d.ellipse([cx - ow, top, cx + ow, bot], outline=lip, width=lo)
    elif lipstick:
        d.ellipse([cx - mw * 0.95, my - 0.026 * s, cx + mw * 0.95, my + 0.03 * s], fill=lip)
        d.line([(cx - mw * 0.85, my), (cx + mw * 0.85, my)], fill=_mul(lip, 0.55), width=max(1, round(0.007 * s)))
    else:
        d.line([(cx - mw * 0.9, my), (cx + mw * 0.9, my)], fill=lip, width=lt)


def _front_hair(d, f, s, cx, cy, a, b, ey, vs, vt, hair) -> None:
    """Hair cap over the crown, down the sides to cheek level; the fringe if Bangs."""
    outer = _outline(cx, cy, a + vs, b + vt, f["crown_n"], 2.0)
    # men's sides stop above the ear, women's reach the cheeks
    # (men's sideburns go to mid-ear so the hair colour still shows under a hat)
    ysb = ey + 0.01 * s if f["Male"] else cy + 0.01 * s
    outer = outer[(outer[:, 1] <= ysb)]
    # order the crown arc left -> right over the top (parameter starts at the top)
    k = int(np.argmin(outer[:, 0] if len(outer) else [0]))
    outer = np.roll(outer, -k, axis=0)
    by = ey - f["brow_gap"] * s
    # a high hairline leaves a tall bare forehead, so a fringe is an obvious change
    ytemple = by - (0.02 if f["Bangs"] else 0.035) * s
    ymid = cy - b * f["hairline"]
    pts = [tuple(p) for p in outer]
    side = 0.84 if f["Male"] else 0.9
    pts += [(cx + a * 0.98, ysb), (cx + a * side, ysb), (cx + a * side, ytemple)]
    if f["Bangs"]:
        # fringe over the whole forehead, jagged bottom edge just above the brows
        yf = by - f["fringe_gap"] * s
        n = 5 + int(f["fringe_teeth"] * 4)
        xs = np.linspace(cx + a * 0.9, cx - a * 0.9, 2 * n + 1)
        for i, x in enumerate(xs):
            pts.append((float(x), yf - (0.032 * s if i % 2 else 0.0)))
    else:
        xs = np.linspace(0.9, -0.9, 11)
        part = f["part"] * 0.5
        for xn in xs:
            depth = math.sqrt(max(0.0, 1 - (xn / 0.9) ** 2))
            dip = 0.02 * s * max(0.0, 1 - abs(xn - part) / 0.12)
            pts.append((cx + a * xn, ytemple - (ytemple - ymid) * depth - dip))
    pts += [(cx - a * side, ytemple), (cx - a * side, ysb), (cx - a * 0.98, ysb)]
    d.polygon(_flat(pts), fill=hair)
    # a few strands so the hair is not a flat blob
    sc = _mul(hair, 0.78) if sum(hair) > 150 else _mul(hair, 1.6)
    for i in range(3):
        off = (i - 1) * 0.06 * s + f["part"] * 0.03 * s
        d.arc([cx - a * 0.7 + off, cy - b - vt * 0.6, cx + a * 0.5 + off, cy - b * 0.2], 200, 290,
              fill=sc, width=max(1, round(0.008 * s)))


def _hat(d, f, s, cx, cy, a, b, ey, vs, vt) -> None:
    """Hat over the top of the head, coloured from a palette no hair class uses."""
    col = _hsv(f["hat_h"], f["hat_s"], f["hat_v"])
    dark = _mul(col, 0.72)
    by = ey - f["brow_gap"] * s
    # the brim stops above the fringe so bangs stay visible under a hat
    yb = by - (0.12 if f["Bangs"] else 0.06) * s - f["hat_low"] * s
    top = cy - b - vt - f["hat_h_extra"] * s
    half = a + vs + 0.012 * s
    style = int(f["hat_style"] * 3)
    if style == 0:  # beanie: dome plus a folded band
        d.chord([cx - half, top, cx + half, yb + (yb - top)], 180, 360, fill=col)
        d.rectangle([cx - half, yb - 0.05 * s, cx + half, yb], fill=dark)
    elif style == 1:  # cap: dome plus a peak sticking out in front
        d.chord([cx - half, top, cx + half, yb + (yb - top)], 180, 360, fill=col)
        d.ellipse([cx - a * 0.95, yb - 0.04 * s, cx + a * 0.95, yb + 0.015 * s], fill=dark)
    else:  # wide brim: straight crown on a flat brim wider than the head
        d.rounded_rectangle([cx - half * 0.82, top, cx + half * 0.82, yb], radius=0.04 * s, fill=col)
        d.rectangle([cx - half * 0.82, yb - 0.04 * s, cx + half * 0.82, yb - 0.015 * s], fill=dark)
        d.ellipse([cx - half - 0.08 * s, yb - 0.035 * s, cx + half + 0.08 * s, yb + 0.01 * s], fill=col)
