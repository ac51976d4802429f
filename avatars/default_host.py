"""The bundled default hosts, drawn in code so they are licence-clean by construction and ship no image.

Two drawings of a friendly studio host (head and shoulders) with a closed mouth line: ``female`` (the
default, long hair, matching the bundled female voices) and ``male`` (short hair, stronger brows, no
blush, matching piper's male English voice), chosen in a profile or persona file as ``avatar = "drawn:male"``.
Because we draw them, the face hints are exact. Each is drawn at twice the size and downsampled for smooth
edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from avatars.base import Avatar, FaceHints

SKIN = (244, 204, 178)
SKIN_SHADE = (226, 180, 152)
HAIR = (58, 40, 34)
LIP = (196, 98, 98)
LIP_MALE = (178, 112, 104)
SHIRT = (40, 132, 146)
BROW = (70, 48, 40)
IRIS = (92, 64, 44)


def _gradient(h: int, w: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return np.broadcast_to(img, (h, w, 3)).astype(np.uint8).copy()


def _blend_ellipse(img: np.ndarray, center, axes, color, alpha: float) -> None:
    layer = img.copy()
    cv2.ellipse(layer, center, axes, 0, 0, 360, color, -1, cv2.LINE_AA)
    cv2.addWeighted(layer, alpha, img, 1 - alpha, 0, dst=img)


STYLES = ("female", "male")


def draw_default_host(width: int, height: int, style: str = "female") -> Avatar:
    if style not in STYLES:
        raise ValueError(f"no drawn host {style!r}; known: {', '.join(STYLES)}")
    male = style == "male"
    ss = 2  # supersampling
    W, H = width * ss, height * ss
    s = H / 720.0  # design units are for a 720-pixel-high frame
    cx = W // 2

    def p(x: float, y: float) -> tuple[int, int]:
        return (int(round(cx + x * s)), int(round(y * s)))

    def r(v: float) -> int:
        return max(1, int(round(v * s)))

    img = _gradient(H, W, (34, 40, 66), (92, 70, 112))
    _blend_ellipse(img, p(0, 300), (r(330), r(300)), (120, 110, 160), 0.35)
    # shoulders and shirt
    cv2.ellipse(img, p(0, 760), (r(300), r(230)), 0, 180, 360, SHIRT, -1, cv2.LINE_AA)
    cv2.rectangle(img, p(-300, 760), p(300, 720), SHIRT, -1)
    cv2.fillPoly(img, [np.array([p(-60, 545), p(60, 545), p(0, 640)], np.int32)], (235, 235, 240), cv2.LINE_AA)
    # neck
    cv2.rectangle(img, p(-48, 420), p(48, 560), SKIN_SHADE, -1, cv2.LINE_AA)
    cv2.ellipse(img, p(0, 556), (r(48), r(26)), 0, 0, 180, SKIN_SHADE, -1, cv2.LINE_AA)
    # hair (back): long for the female host, cropped close for the male one
    if male:
        cv2.ellipse(img, p(0, 270), (r(142), r(160)), 0, 180, 360, HAIR, -1, cv2.LINE_AA)
    else:
        cv2.ellipse(img, p(0, 280), (r(160), r(185)), 0, 0, 360, HAIR, -1, cv2.LINE_AA)
        cv2.rectangle(img, p(-160, 280), p(160, 470), HAIR, -1)
    # ears
    for side in (-1, 1):
        cv2.ellipse(img, p(side * 128, 315), (r(20), r(32)), 0, 0, 360, SKIN_SHADE, -1, cv2.LINE_AA)
    # face
    cv2.ellipse(img, p(0, 310), (r(128), r(158)), 0, 0, 360, SKIN, -1, cv2.LINE_AA)
    if male:  # a short, side-parted crop
        fringe = [p(-136, 240), p(-140, 180), p(-100, 128), p(-30, 110), p(50, 112), p(115, 135), p(138, 185),
                  p(134, 235), p(110, 190), p(40, 168), p(-40, 172), p(-100, 200)]
    else:  # a swept wave over the forehead
        fringe = [p(-140, 250), p(-150, 190), p(-110, 135), p(-40, 112), p(40, 112), p(110, 130), p(150, 180),
                  p(142, 250), p(120, 205), p(80, 178), p(20, 190), p(-30, 170), p(-80, 200), p(-118, 215)]
    cv2.fillPoly(img, [np.array(fringe, np.int32)], HAIR, cv2.LINE_AA)
    if not male:  # cheeks
        for side in (-1, 1):
            _blend_ellipse(img, p(side * 70, 370), (r(28), r(16)), (236, 140, 140), 0.35)
    # brows
    for side in (-1, 1):
        cv2.ellipse(img, p(side * 52, 262), (r(30), r(10)), 0, 200 if side < 0 else 200, 340,
                    BROW, r(9 if male else 6), cv2.LINE_AA)
    # eyes
    eye_y, eye_dx, ew, eh = 300, 52, 24, 14
    for side in (-1, 1):
        c = p(side * eye_dx, eye_y)
        cv2.ellipse(img, c, (r(ew), r(eh)), 0, 0, 360, (250, 250, 252), -1, cv2.LINE_AA)
        cv2.circle(img, c, r(11), IRIS, -1, cv2.LINE_AA)
        cv2.circle(img, c, r(5), (20, 16, 16), -1, cv2.LINE_AA)
        cv2.circle(img, p(side * eye_dx + 4, eye_y - 4), r(3), (255, 255, 255), -1, cv2.LINE_AA)
        cv2.ellipse(img, c, (r(ew + 1), r(eh + 1)), 0, 190, 350, (40, 28, 26), r(3), cv2.LINE_AA)
    # nose
    cv2.ellipse(img, p(0, 352), (r(9), r(6)), 0, 20, 160, SKIN_SHADE, r(3), cv2.LINE_AA)
    # closed mouth: a gentle smile line
    mouth_y, mouth_w = 398, 64
    lip = LIP_MALE if male else LIP
    cv2.ellipse(img, p(0, mouth_y - 6), (r(mouth_w / 2), r(8)), 0, 15, 165, lip, r(4), cv2.LINE_AA)

    out = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    k = s / ss  # design units -> output pixels
    ox = width / 2
    hints = FaceHints(
        mouth=(ox, mouth_y * k),
        mouth_width=mouth_w * k,
        eyes=((ox - eye_dx * k, eye_y * k), (ox + eye_dx * k, eye_y * k)),
        eye_size=((ew + 2) * k, (eh + 2) * k),
        skin=SKIN,
        lip=lip,
        face_box=(int(ox - 128 * k), int(152 * k), int(256 * k), int(316 * k)),
        drawn=True,
    )
    return Avatar(f"drawn host ({style})", out, hints)
