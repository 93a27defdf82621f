"""The parts of a procedural face that `synth_render.render_from_factors` draws one by one: wrinkles,
eyes, glasses, mouth, fringe and hat. Each draws on a PIL ImageDraw at the canvas scale `s`."""
from __future__ import annotations

import colorsys
import math

import numpy as np

# Head outline parameter, starting at the top so the lower (jaw) part is one contiguous run.
_T = np.linspace(-math.pi / 2, 1.5 * math.pi, 44, endpoint=False)
_COS, _SIN = np.cos(_T), np.sin(_T)
_LOWER = _SIN > 0
_SCLERA = (244, 244, 238)
_MOUTH_IN = (58, 14, 22)
_SMILE_COS, _SMILE_SIN = np.cos(np.radians(np.linspace(12, 168, 13))), np.sin(np.radians(np.linspace(12, 168, 13)))


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255 + 0.5), int(g * 255 + 0.5), int(b * 255 + 0.5)


def _mul(c, k) -> tuple[int, int, int]:
    if isinstance(k, (int, float)):
        k = (k, k, k)
    return tuple(max(0, min(255, int(x * m + 0.5))) for x, m in zip(c, k))


def _flat(points) -> list[float]:
    return np.asarray(points, dtype=np.float64).ravel().tolist()


def _outline(cx, cy, a, b, n_up, n_low) -> np.ndarray:
    """Return (44, 2) points of the head: superellipse, rounder crown, squarer or pointier jaw."""
    e = np.where(_LOWER, 2.0 / n_low, 2.0 / n_up)
    x = cx + a * np.sign(_COS) * np.abs(_COS) ** e
    y = cy + b * np.sign(_SIN) * np.abs(_SIN) ** e
    return np.stack([x, y], axis=1)


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
