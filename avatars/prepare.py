"""``streamer avatar prepare PATH``: find the face once, cache it, never again.

PATH is a portrait image, an idle video loop, or a folder holding one of them (plus an optional
``avatar.toml``). Every frame's face is detected (OpenCV's Haar cascade), the boxes are smoothed over
time (a centred moving median, gaps filled from neighbours) so the paste-back does not jitter, and
the boxes, the 96x96 face crops Wav2Lip sees and the blend mask are written to a cache folder keyed
by the file's SHA-256: a second run finds them and returns at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avatars.paste import PasteBack, wav2lip_box
from avatars.portrait import AvatarError, detect_face

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_EXT = {".mp4", ".mov", ".mkv", ".webm", ".avi"}
CACHE_VERSION = 1


def cache_root() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root) / "avatars"


def media_file(path: Path) -> Path:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXT | VIDEO_EXT)
        if not found:
            raise AvatarError(f"{path}: no image or video in this avatar folder")
        return found[0]
    if not path.is_file():
        raise AvatarError(f"{path}: no such file")
    return path


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


@dataclass
class Prepared:
    media: Path
    cache: Path
    frames: int
    fps: float
    size: tuple[int, int]
    boxes: np.ndarray
    """(frames, 4) smoothed x, y, w, h per frame."""
    detected: int
    cached: bool


def read_frames(path: Path) -> tuple[list[np.ndarray], float]:
    if path.suffix.lower() in IMAGE_EXT:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise AvatarError(f"cannot read image {path}")
        return [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)], 0.0
    import av

    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            fps = float(stream.average_rate or 25)
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as e:
        raise AvatarError(f"cannot read video {path}: {e}") from None
    if not frames:
        raise AvatarError(f"{path}: the video has no frames")
    return frames, fps


def smooth_boxes(raw: list[tuple[int, int, int, int] | None], window: int = 5) -> np.ndarray:
    """Fill frames without a detection from the nearest ones, then a centred moving median."""
    n = len(raw)
    known = [i for i, b in enumerate(raw) if b is not None]
    arr = np.zeros((n, 4), np.float64)
    for i in range(n):
        if raw[i] is not None:
            arr[i] = raw[i]
        else:
            j = min(known, key=lambda k: abs(k - i))
            arr[i] = raw[j]  # type: ignore[assignment]
    half = window // 2
    out = np.empty_like(arr)
    for i in range(n):
        out[i] = np.median(arr[max(0, i - half):i + half + 1], axis=0)
    return np.rint(out).astype(np.int32)


def _progress(done: int, total: int, started: float) -> None:
    if total < 2:
        return
    width = 30
    filled = int(width * done / total)
    rate = done / max(1e-6, time.monotonic() - started)
    sys.stderr.write(f"\r  detecting faces [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                     f"({rate:.0f} frames/s)")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def prepare(path: str | Path, progress: Callable[[int, int, float], None] | None = _progress) -> Prepared:
    media = media_file(Path(path))
    key = f"{file_hash(media)}-v{CACHE_VERSION}"
    cache = cache_root() / key
    meta_file = cache / "meta.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        boxes = np.load(cache / "boxes.npy")
        return Prepared(media, cache, meta["frames"], meta["fps"], tuple(meta["size"]), boxes, meta["detected"], True)
    frames, fps = read_frames(media)
    raw: list[tuple[int, int, int, int] | None] = []
    started = time.monotonic()
    for i, frame in enumerate(frames):
        raw.append(detect_face(frame))
        if progress:
            progress(i + 1, len(frames), started)
    detected = sum(b is not None for b in raw)
    if detected == 0:
        raise AvatarError(f"no face found in {media}: use a frontal, well-lit portrait or video, or give face "
                          "hints (mouth_x, mouth_y, mouth_width) in [avatar]")
    boxes = smooth_boxes(raw)
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    crops = np.stack([cv2.resize(f[y:y2, x:x2], (96, 96), interpolation=cv2.INTER_AREA)
                      for f, (x, y, x2, y2) in ((f, wav2lip_box(tuple(b), f.shape)) for f, b in zip(frames, boxes, strict=True))])
    mask = PasteBack(frames[0], wav2lip_box(tuple(boxes[0]), frames[0].shape)).mask
    np.save(tmp / "boxes.npy", boxes)
    np.savez_compressed(tmp / "crops.npz", crops=crops)
    np.save(tmp / "mask.npy", mask)
    h, w = frames[0].shape[:2]
    (tmp / "meta.json").write_text(json.dumps({"media": str(media), "frames": len(frames), "fps": fps, "size": [w, h],
                                               "detected": detected, "version": CACHE_VERSION}))
    if cache.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, cache)
    return Prepared(media, cache, len(frames), fps, (w, h), boxes, detected, False)
