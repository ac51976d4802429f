"""The procedural renderer: a light, weight-free lip-sync for any portrait.

Audio -> one ``MouthPose`` per video frame: jaw opening from the frame's loudness (fast attack,
slower release, so consonant closures read), lip spread from the spectral centroid (a crude viseme:
"ee"/"s" spread, "oo"/"o" round). Frame for a tick: the jaw below the mouth line is displaced down
with a smooth falloff to the chin, the gap becomes a mouth cavity with teeth and tongue, eyelids
blink on a random but reproducible schedule, and the head breathes, sways and nods with speech.
All of it is a function of (tick index, pose), so it can be computed for any tick at play time.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator

import cv2
import numpy as np

from avatars.base import REST, Avatar, Capabilities, FaceHints, MouthPose
from avatars.motion import Canvas, compose, head_matrix

SILENCE_DB = -48.0
FULL_DB = -16.0


class ProceduralRenderer:
    name = "procedural"

    def __init__(self, avatar: Avatar, fps: int, seed: int = 7) -> None:
        self.avatar = avatar
        self.fps = fps
        self._rng = np.random.default_rng(seed)
        self._blinks: list[int] = []
        self._blink_horizon = 0
        self._canvas = Canvas()
        self._prepare_jaw()

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    # ---------------------------------------------------------------- audio -> poses
    def analyze(self, pcm: np.ndarray, rate: int) -> list[MouthPose]:
        """One pose per video frame of ``pcm`` (ceil(len / samples_per_frame) poses)."""
        spf = rate / self.fps
        n = int(math.ceil(len(pcm) / spf)) if len(pcm) else 0
        if n == 0:
            return []
        step = int(round(spf))
        padded = np.zeros(n * step, dtype=np.float32)
        padded[: min(len(pcm), n * step)] = pcm[: n * step]
        frames = padded.reshape(n, step)
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-9
        db = 20 * np.log10(rms)
        target = np.clip((db - SILENCE_DB) / (FULL_DB - SILENCE_DB), 0.0, 1.0)
        spec = np.abs(np.fft.rfft(frames * np.hanning(step).astype(np.float32), axis=1))
        freqs = np.fft.rfftfreq(step, 1.0 / rate)
        centroid = (spec * freqs).sum(axis=1) / (spec.sum(axis=1) + 1e-9)
        wide_t = np.clip((centroid - 900.0) / 2600.0, 0.0, 1.0)
        poses = []
        o = w = e = 0.0
        for i in range(n):
            k = 0.75 if target[i] > o else 0.7
            o += k * (target[i] - o)
            w += 0.5 * (wide_t[i] - w) if target[i] > 0.05 else 0.2 * (0.5 - w)
            e += 0.15 * (target[i] - e)
            poses.append(MouthPose(open=float(o), wide=float(w), energy=float(e)))
        # a frame that is silent rests, whatever the smoothing carried over
        return [p if target[i] > 0.0 or p.open > 0.1 else MouthPose(0.0, p.wide, p.energy) for i, p in enumerate(poses)]

    def render_batches(self, pcm: np.ndarray, rate: int, start_tick: int = 0, sizes: Iterator[int] | None = None,
                       base: list[MouthPose] | None = None) -> Iterator[list[MouthPose]]:
        """The procedural analysis is instant: every pose in one batch."""
        poses = base if base is not None else ProceduralRenderer.analyze(self, pcm, rate)
        if poses:
            yield poses

    # ---------------------------------------------------------------- blink schedule
    def status(self) -> dict[str, object]:
        """What the renderer reports to the status API (a remote or neural renderer adds its counts)."""
        return {"renderer": self.name}

    def blink_amount(self, index: int) -> float:
        while self._blink_horizon <= index + self.fps * 10:
            gap = self._rng.uniform(2.5, 6.0)
            start = self._blink_horizon + int(gap * self.fps)
            self._blinks.append(start)
            if self._rng.random() < 0.15:  # an occasional double blink
                self._blinks.append(start + max(4, int(0.3 * self.fps)))
            self._blink_horizon = self._blinks[-1] + 1
        i = bisect.bisect_right(self._blinks, index) - 1
        if i < 0:
            return 0.0
        phase = (index - self._blinks[i]) / self.fps  # seconds into the blink
        close, hold, reopen = 0.06, 0.04, 0.10
        if phase < close:
            return (phase + 1.0 / self.fps) / (close + 1.0 / self.fps)
        if phase < close + hold:
            return 1.0
        if phase < close + hold + reopen:
            return 1.0 - (phase - close - hold) / reopen
        return 0.0

    # ---------------------------------------------------------------- compositing
    def _prepare_jaw(self, hints: FaceHints | None = None) -> None:
        h, w = self.avatar.image.shape[:2]
        hints = hints or self.avatar.hints
        self._jaw_hints = hints
        mx, my = hints.mouth
        mw = hints.mouth_width
        self._roi = (
            max(0, int(mx - 0.95 * mw)), max(0, int(my - 0.35 * mw)),
            min(w, int(mx + 0.95 * mw)), min(h, int(my + 1.35 * mw)),
        )
        x0, y0, x1, y1 = self._roi
        xs = np.arange(x0, x1, dtype=np.float32)
        ys = np.arange(y0, y1, dtype=np.float32)
        fx = np.cos(np.clip((xs - mx) / (0.95 * mw), -1, 1) * (math.pi / 2)) ** 2
        ry = ys - my
        fy = np.where(ry < 0, 0.0, np.clip(1.0 - (ry - 0.25 * mw) / (1.1 * mw), 0.0, 1.0)).astype(np.float32)
        self._map_x, self._base_y = np.meshgrid(xs, ys)
        self._jaw_weight = (fy[:, None] * fx[None, :]).astype(np.float32)
        self._region = self._face_region(hints)

    def base(self, index: int) -> tuple[np.ndarray, FaceHints]:
        """The picture and face hints under tick ``index`` (a video avatar's loop position)."""
        return self.avatar.base_at(index)

    def frame(self, index: int, pose: MouthPose | None = None) -> np.ndarray:
        """One warp of the picture; what a blink or the mouth changes is drawn on the face region only.
        Not re-entrant: one thread (the clock's) composes frames."""
        pose = pose or REST
        picture, hints = self.base(index)
        if hints is not self._jaw_hints:
            self._prepare_jaw(hints)
        blink = self.blink_amount(index)
        if self._changes(pose, blink):  # draw on the canvas's face region, leave the picture alone
            picture = self._canvas.begin(picture, self._region)
            self._draw(picture, pose, blink)
        h, w = picture.shape[:2]
        m = head_matrix(index, self.fps, (w, h), pose.energy, hints.mouth_width)
        backdrop = self.avatar.backdrop
        alpha = self.avatar.alpha_at(index) if backdrop is not None else None
        return compose(picture, m, alpha, backdrop.picture(index) if alpha is not None else None)

    def _changes(self, pose: MouthPose, blink: float) -> bool:
        return blink > 0.0 or pose.speaking

    def _draw(self, img: np.ndarray, pose: MouthPose, blink: float) -> None:
        """Draw this frame's changes on ``img`` (full-frame coordinates; only ``_region`` is valid)."""
        if blink > 0.0:
            self._draw_eyelids(img, blink)
        if pose.speaking:
            self._draw_mouth(img, pose)

    def _face_region(self, hints: FaceHints) -> tuple[int, int, int, int]:
        """Where blinks and the mouth draw (eyelids, jaw), with an untouched margin for the warp."""
        h, w = self.avatar.image.shape[:2]
        aw, ah = hints.eye_size
        xs = [self._roi[0], self._roi[2]] + [ex + s * (aw + 6) for ex, _ in hints.eyes for s in (-1, 1)]
        ys = [self._roi[1], self._roi[3], hints.mouth[1] - 0.6 * hints.mouth_width]  # the jaw warp reads above
        ys += [ey + s * (ah + 6) for _, ey in hints.eyes for s in (-1, 1)]
        margin = 3
        return (max(0, int(min(xs)) - margin), max(0, int(min(ys)) - margin),
                min(w, int(math.ceil(max(xs))) + margin), min(h, int(math.ceil(max(ys))) + margin))

    def _draw_eyelids(self, img: np.ndarray, amount: float) -> None:
        hints = self._jaw_hints
        aw, ah = hints.eye_size
        lid = hints.skin
        for ex, ey in hints.eyes:
            y_lid = ey - ah + 2.0 * ah * amount
            x0, x1 = int(ex - aw - 3), int(ex + aw + 4)
            y0, y1 = int(ey - ah - 3), int(ey + ah + 4)
            roi = img[y0:y1, x0:x1]
            mask = np.zeros(roi.shape[:2], np.uint8)
            cv2.ellipse(mask, (int(ex - x0), int(ey - y0)), (int(aw * 1.08) + 1, int(ah * 1.15) + 1), 0, 0, 360, 255, -1,
                        cv2.LINE_AA)
            mask[max(0, int(math.ceil(y_lid - y0))):, :] = 0
            m = (mask.astype(np.float32) / 255.0)[..., None]
            roi[:] = (roi * (1 - m) + np.array(lid, np.float32) * m).astype(np.uint8)
            half = aw * math.sqrt(max(0.0, 1.0 - ((y_lid - ey) / (ah * 1.15)) ** 2))
            if half > 1:
                cv2.ellipse(img, (int(ex), int(y_lid - 0.25 * ah * amount)), (int(half), max(1, int(0.3 * ah * amount))),
                            0, 0, 180, (40, 28, 26), max(1, int(ah * 0.22)), cv2.LINE_AA)

    def _draw_mouth(self, img: np.ndarray, pose: MouthPose) -> None:
        hints = self._jaw_hints
        mx, my = hints.mouth
        mw = hints.mouth_width
        x0, y0, x1, y1 = self._roi
        open_px = pose.open * 0.5 * mw
        roi = img[y0:y1, x0:x1]
        map_y = self._base_y - open_px * self._jaw_weight
        jaw = cv2.remap(img, self._map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        half = 0.5 * mw * (0.72 + 0.38 * pose.wide) * (1.0 - 0.18 * pose.open * (1.0 - pose.wide))
        xs = np.linspace(-half, half, 24)
        arc = np.sqrt(np.clip(1.0 - (xs / half) ** 2, 0.0, 1.0))
        upper = np.stack([mx + xs, my - 0.10 * open_px * arc], axis=1)
        lower = np.stack([mx + xs[::-1], my + open_px * arc[::-1]], axis=1)
        poly = (np.concatenate([upper, lower]) - (x0, y0)).astype(np.int32)
        layer = jaw.copy()
        cv2.fillPoly(layer, [poly], (58, 18, 26), cv2.LINE_AA)
        if open_px > 2:
            teeth_h = min(0.28 * open_px, 0.14 * mw)
            teeth = np.concatenate([upper, np.stack([mx + xs[::-1], my + teeth_h * arc[::-1]], axis=1)])
            cv2.fillPoly(layer, [(teeth - (x0, y0)).astype(np.int32)], (238, 234, 226), cv2.LINE_AA)
        if pose.open > 0.35:
            cv2.ellipse(layer, (int(mx - x0), int(my + 0.8 * open_px - y0)), (int(half * 0.55), int(0.22 * open_px)),
                        0, 180, 360, (176, 74, 84), -1, cv2.LINE_AA)
        mask = np.zeros(jaw.shape[:2], np.uint8)
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (3, 3), 0)
        m = (mask.astype(np.float32) / 255.0)[..., None]
        out = jaw * (1.0 - m) + layer * m
        if hints.drawn:
            out = out.astype(np.uint8)
            thick = max(2, int(mw * 0.06))
            cv2.polylines(out, [poly], True, hints.lip, thick, cv2.LINE_AA)
        roi[:] = np.asarray(out, dtype=np.uint8)
