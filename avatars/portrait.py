"""Loading a portrait into an ``Avatar``: fit it to the output frame and find the face once.

Faces are found with OpenCV's Haar cascade (shipped by the opencv 4.x wheels). The mouth and eyes
are placed by the usual proportions of a frontal face box, unless the avatar config gives explicit
hints. A photo with no detectable face and no hints fails with a message saying what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatars.base import Avatar, FaceHints
from avatars.default_host import draw_default_host

log = logging.getLogger(__name__)


class AvatarError(RuntimeError):
    pass


def haar_cascade() -> cv2.CascadeClassifier:
    data = getattr(cv2, "data", None)
    path = Path(data.haarcascades) / "haarcascade_frontalface_default.xml" if data else None
    if path is None or not path.is_file():
        raise AvatarError("OpenCV's Haar face cascade is missing: pip install 'opencv-python-headless<5'")
    return cv2.CascadeClassifier(str(path))


_CASCADE: cv2.CascadeClassifier | None = None


def detect_faces(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every frontal face the Haar cascade finds: boxes (n x 4: x, y, w, h) and their confidences."""
    global _CASCADE
    if _CASCADE is None:
        _CASCADE = haar_cascade()
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    min_side = max(24, min(gray.shape) // 10)
    faces, _, weights = _CASCADE.detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=5,
                                                   minSize=(min_side, min_side), outputRejectLevels=True)
    return np.asarray(faces).reshape(-1, 4), np.asarray(weights, np.float64).reshape(-1)


def detect_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """The most confident frontal face (x, y, w, h), or None. Confidence (the cascade's level weight),
    not size, decides: a large false detection on clothing must not win over the real face."""
    faces, weights = detect_faces(rgb)
    if len(faces) == 0:
        return None
    best = max(range(len(faces)), key=lambda i: (float(weights[i]), int(faces[i][2])))
    x, y, w, h = faces[best]
    return int(x), int(y), int(w), int(h)


def _fit(img: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, float, float]:
    """Scale the portrait to the frame height, centre it over a blurred, darkened cover of itself."""
    h, w = img.shape[:2]
    scale = height / h
    if w * scale > width:
        scale = width / w
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    fg = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    cover = max(width / w, height / h)
    bg = cv2.resize(img, (max(width, round(w * cover)), max(height, round(h * cover))), interpolation=cv2.INTER_AREA)
    by, bx = (bg.shape[0] - height) // 2, (bg.shape[1] - width) // 2
    bg = cv2.GaussianBlur(bg[by:by + height, bx:bx + width], (0, 0), 25)
    out = (bg.astype(np.float32) * 0.55).astype(np.uint8)
    ox, oy = (width - nw) // 2, (height - nh) // 2
    out[oy:oy + nh, ox:ox + nw] = fg
    return out, scale, ox, oy


def _sample(img: np.ndarray, x: float, y: float, r: int = 3) -> tuple[int, int, int]:
    h, w = img.shape[:2]
    xi, yi = int(np.clip(x, r, w - r - 1)), int(np.clip(y, r, h - r - 1))
    patch = img[yi - r:yi + r + 1, xi - r:xi + r + 1].reshape(-1, 3)
    c = np.median(patch, axis=0)
    return int(c[0]), int(c[1]), int(c[2])


def hints_from_face_box(img: np.ndarray, box: tuple[int, int, int, int]) -> FaceHints:
    x, y, w, h = box
    mouth = (x + 0.5 * w, y + 0.80 * h)
    eyes = ((x + 0.31 * w, y + 0.40 * h), (x + 0.69 * w, y + 0.40 * h))
    return FaceHints(
        mouth=mouth,
        mouth_width=0.36 * w,
        eyes=eyes,
        eye_size=(0.10 * w, 0.055 * h),
        skin=_sample(img, x + 0.5 * w, y + 0.62 * h, 4),
        lip=_sample(img, mouth[0], mouth[1] + 0.03 * h, 2),
        face_box=box,
    )


def _cover(img: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = max(width / w, height / h)
    big = cv2.resize(img, (max(width, round(w * scale)), max(height, round(h * scale))), interpolation=cv2.INTER_AREA)
    y, x = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return big[y:y + height, x:x + width]


def load_background(background: str | Path | None, width: int, height: int) -> tuple[np.ndarray, Backdrop | None]:
    """The still picture behind a keyed host (the first frame of a video), and the video itself, if any."""
    if background and Path(background).suffix.lower() in VIDEO_EXT:
        backdrop = Backdrop.load(Path(background), width, height)
        return backdrop.picture(0), backdrop
    if background:
        bgr = cv2.imread(str(background), cv2.IMREAD_COLOR)
        if bgr is None:
            raise AvatarError(f"cannot read avatar background {background}")
        return _cover(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), width, height), None
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]  # no background: a studio gradient
    grad = (1 - t) * np.array([34, 40, 66], np.float32) + t * np.array([92, 70, 112], np.float32)
    return np.broadcast_to(grad, (height, width, 3)).astype(np.uint8), None


def key_onto(src: np.ndarray, bg: np.ndarray, width: int, height: int, key: Any = None
             ) -> tuple[np.ndarray, float, float, float, np.ndarray]:
    """Key a green-screen picture and place it over ``bg`` (output size), which fills the frame.
    Returns the frame, the fit (scale, x, y) and the foreground alpha at output size."""
    from avatars.greenscreen import ChromaKey

    key = key or ChromaKey()
    alpha = key.alpha(src)
    fg = np.clip(key.despill(src), 0, 255).astype(np.uint8)
    placed, scale, ox, oy = _fit(fg, width, height)
    nh, nw = round(src.shape[0] * scale), round(src.shape[1] * scale)
    alpha_full = np.zeros((height, width), np.float32)
    alpha_full[int(oy):int(oy) + nh, int(ox):int(ox) + nw] = cv2.resize(alpha, (nw, nh), interpolation=cv2.INTER_AREA)
    a = alpha_full[..., None]
    frame = np.clip(np.rint(placed * a + bg.astype(np.float32) * (1 - a)), 0, 255).astype(np.uint8)
    return frame, scale, ox, oy, alpha_full


class Backdrop:
    """A background video behind a green-screen host: JPEG frames, played ping-pong by tick."""

    def __init__(self, encoded: list[bytes]) -> None:
        self.encoded = encoded
        self._last: tuple[int, np.ndarray] | None = None

    @classmethod
    def load(cls, path: Path, width: int, height: int) -> Backdrop:
        import av

        try:
            with av.open(str(path)) as c:
                frames = [_cover(f.to_ndarray(format="rgb24"), width, height) for f in c.decode(video=0)]
        except (av.error.FFmpegError, IndexError) as e:
            raise AvatarError(f"cannot read background video {path}: {e}") from None
        if not frames:
            raise AvatarError(f"background video {path} has no frames")
        return cls([cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
                    for f in frames])

    def picture(self, tick: int) -> np.ndarray:
        from avatars.video import pingpong

        i = pingpong(tick, len(self.encoded))
        if self._last is None or self._last[0] != i:
            img = cv2.imdecode(np.frombuffer(self.encoded[i], np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise AvatarError(f"background frame {i} does not decode")
            self._last = (i, cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        return self._last[1]


VIDEO_EXT = (".mp4", ".mov", ".mkv", ".webm", ".avi")
DRAWN = "drawn:"
"""``drawn:female`` / ``drawn:male``: one of the bundled drawn hosts instead of a picture."""


def load_avatar(image: str | Path | None, width: int, height: int,
                mouth_x: float | None = None, mouth_y: float | None = None,
                mouth_width: float | None = None, green_screen: bool = False,
                background: str | Path | None = None, fps: float | None = None) -> Avatar:
    """The bundled host when ``image`` is empty (or ``drawn:male``...), else the portrait at ``image`` fitted
    to the frame.

    Explicit hints (mouth_x, mouth_y, mouth_width) are in the source image's pixels.
    """
    if not image:
        return draw_default_host(width, height)
    if str(image).startswith(DRAWN):
        try:
            return draw_default_host(width, height, str(image)[len(DRAWN):])
        except ValueError as e:
            raise AvatarError(str(e)) from None
    path = Path(image)
    if path.is_dir():  # an avatar folder: its avatar.toml fills in what the caller left unset
        from avatars.folder import read_folder

        spec = read_folder(path)
        return load_avatar(spec.media, width, height, mouth_x if mouth_x is not None else spec.mouth_x,
                           mouth_y if mouth_y is not None else spec.mouth_y,
                           mouth_width if mouth_width is not None else spec.mouth_width,
                           green_screen or spec.green_screen, background or spec.background, fps=fps)
    if path.suffix.lower() in VIDEO_EXT:
        from avatars.video import load_video_avatar  # an idle loop: faces per frame, ping-pong playback

        return load_video_avatar(path, width, height, fps=fps, green_screen=green_screen, background=background)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise AvatarError(f"cannot read avatar image {path} (missing or not an image)")
    src = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    alpha: np.ndarray | None = None
    backdrop: Backdrop | None = None
    if green_screen:
        bg, backdrop = load_background(background, width, height)
        frame, scale, ox, oy, alpha = key_onto(src, bg, width, height)
    else:
        frame, scale, ox, oy = _fit(src, width, height)
    if mouth_x is not None and mouth_y is not None:
        mw = (mouth_width or 0.12 * src.shape[1]) * scale
        mx, my = ox + mouth_x * scale, oy + mouth_y * scale
        fw = mw / 0.36
        box = (int(mx - fw / 2), int(my - 0.8 * fw), int(fw), int(fw))
    else:
        found = detect_face(src)
        if found is None:
            raise AvatarError(
                f"no face found in {path}: use a frontal, well-lit portrait, or set [avatar] mouth_x, "
                "mouth_y and mouth_width (pixels of the source image)")
        x, y, w, h = found
        box = (int(ox + x * scale), int(oy + y * scale), int(w * scale), int(h * scale))
    hints = hints_from_face_box(frame, box)
    log.info("avatar loaded", extra={"avatar": str(path), "face_box": box})
    return Avatar(path.stem, frame, hints, alpha=alpha if backdrop is not None else None, backdrop=backdrop)
