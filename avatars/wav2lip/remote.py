"""Wav2Lip through a shared inference deployment (``streamer rooms``): the room's side.

A room keeps everything that is cheap and per-room (the mel spectrogram, the procedural poses,
pasting and idle motion) and sends only the expensive part, the generator, to a deployment that
batches frames from many rooms on one GPU. Per batch of video frames it POSTs the mel windows and
its face key (``avatars.wav2lip.wire``) and gets 96x96 mouth patches back.

The clock never waits for the network. Every request has a deadline: the first batch of a sentence
gets ``timeout_s`` (speech starts after it), every later batch must be back before the clock could
reach its first frame. A batch that misses its deadline, or a deployment that cannot be reached,
is covered by the local Wav2Lip renderer when the room has one, else by the procedural mouth, and
counted in ``status()``. After three failures in a row the client stops asking for a short while
(``retry_after_s``) and then probes again, so a dead deployment costs nothing per frame and a
restarted one is picked up within seconds.
"""

from __future__ import annotations

import dataclasses
import http.client
import itertools
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from avatars.base import Avatar, MouthPose
from avatars.dsp import resample
from avatars.paste import PasteBack, wav2lip_box
from avatars.procedural import ProceduralRenderer
from avatars.wav2lip.audio import SAMPLE_RATE, mel_windows, melspectrogram
from avatars.wav2lip.wire import WireError, decode_missing, decode_patches, encode_request, face_key

log = logging.getLogger(__name__)

PREBUFFER_S = 0.4
DRAW_HOOKS = hasattr(ProceduralRenderer, "_draw")
"""The procedural renderer composes frames through ``_changes``/``_draw`` hooks (issue 12's renderer);
without them this renderer composes its frames itself (``_frame_without_hooks``)."""


def network_face(picture: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(6, 96, 96) uint8: exactly what the local Wav2Lip renderer feeds the network for this picture
    (its one definition of the pre-processing, wherever it lives), as bytes for the wire."""
    try:
        from avatars.wav2lip.official import face_input  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from avatars.wav2lip.renderer import Wav2LipRenderer

        face_input = Wav2LipRenderer._face_input  # type: ignore[attr-defined,unused-ignore]
    face = np.asarray(face_input(picture, box))[0]
    return face if face.dtype == np.uint8 else np.rint(face * 255.0).astype(np.uint8)


def speaking(pose: MouthPose) -> bool:
    return bool(getattr(pose, "speaking", pose.open > 0.02))


class LipSyncUnavailable(RuntimeError):
    """The deployment did not answer in time, or answered with an error."""


class LipSyncClient:
    """One room's connection to the deployment: one keep-alive HTTP connection, one request at a time,
    and the set of faces the deployment has confirmed (sent once, resent when a replica lost them)."""

    def __init__(self, url: str, failures_to_open: int = 3, retry_after_s: float = 2.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"lip-sync URL must be http://host:port/path, got {url!r}")
        self.url = url
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path or "/"
        self.failures_to_open = failures_to_open
        self.retry_after_s = retry_after_s
        self.confirmed: set[str] = set()
        self.failures = 0
        self.open_until = 0.0
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def available(self) -> bool:
        """False while the breaker is open (recent failures in a row): skip the network entirely."""
        return time.monotonic() >= self.open_until

    def infer(self, keys: list[str], mel: np.ndarray, faces: dict[str, np.ndarray], deadline: float) -> np.ndarray:
        """Mouth patches for ``keys``/``mel`` by ``deadline`` (time.monotonic), or LipSyncUnavailable."""
        with self._lock:
            try:
                patches = self._infer(keys, mel, faces, deadline)
            except LipSyncUnavailable:
                self.failures += 1
                if self.failures >= self.failures_to_open:
                    self.open_until = time.monotonic() + self.retry_after_s
                raise
            self.failures = 0
            return patches

    def _infer(self, keys: list[str], mel: np.ndarray, faces: dict[str, np.ndarray], deadline: float) -> np.ndarray:
        unsent = {k: faces[k] for k in dict.fromkeys(keys) if k not in self.confirmed}
        for _attempt in range(2):
            status, body = self._post(encode_request(keys, mel, unsent), deadline)
            if status == 200:
                self.confirmed.update(keys)
                try:
                    return decode_patches(body, len(keys))
                except WireError as e:
                    raise LipSyncUnavailable(str(e)) from None
            if status != 409:
                raise LipSyncUnavailable(f"HTTP {status}: {body[:200].decode(errors='replace')}")
            try:  # a replica without our face (restarted, or another replica): send it along
                missing = decode_missing(body)
            except WireError as e:
                raise LipSyncUnavailable(str(e)) from None
            self.confirmed.difference_update(missing)
            unsent = {k: faces[k] for k in missing if k in faces}
        raise LipSyncUnavailable("the deployment kept asking for faces it was sent")

    def _post(self, body: bytes, deadline: float) -> tuple[int, bytes]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LipSyncUnavailable("no time left before the frames are due")
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=left)
            conn = self._conn
            conn.timeout = left
            if conn.sock is not None:
                conn.sock.settimeout(left)
            conn.request("POST", self.path, body, {"Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            data = response.read()
            if response.will_close:
                self.close_connection()
            return response.status, data
        except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out: the answer is lost
            self.close_connection()
            raise LipSyncUnavailable(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None

    def close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RemoteWav2LipRenderer(ProceduralRenderer):
    """The renderer interface of ``Wav2LipRenderer`` (poses with patches, a frame for any tick) with
    the generator run by the shared deployment."""

    name = "wav2lip-remote"

    def __init__(self, avatar: Avatar, fps: int, url: str, *, local: Any = None, batch: int = 16,
                 first_batch: int | None = None, timeout_s: float = 0.25, client: LipSyncClient | None = None) -> None:
        super().__init__(avatar, fps)
        self.client = client or LipSyncClient(url)
        self.local = local
        """A local Wav2Lip renderer (``infer`` / ``infer_video``) for frames the deployment misses;
        None: the procedural mouth covers them."""
        self.batch = batch
        self.first_batch = first_batch or max(1, round(PREBUFFER_S * fps))
        """The clock starts a sentence once 0.4 s of it is rendered: the first request is exactly that."""
        self.timeout_s = timeout_s
        self.video = bool(getattr(avatar, "animated", getattr(avatar, "position", None) is not None))
        self.start_hint = 0
        """For idle-video avatars: the tick where the next utterance starts (set by the speaker)."""
        self.paste = PasteBack(avatar.image, wav2lip_box(avatar.hints.face_box, avatar.image.shape))
        self._pastes: dict[tuple[int, int, int, int], PasteBack] = {}
        if DRAW_HOOKS:
            self._prepare_jaw(avatar.hints)  # the face region the hooks draw on now includes the paste box
        self._faces: dict[tuple[int, tuple[int, int, int, int]], tuple[str, np.ndarray]] = {}
        self.counters = {"remote_frames": 0, "local_frames": 0, "procedural_frames": 0, "failed_requests": 0}
        self.last_error = ""
        self._failing = False
        self._clock = (0, 0.0)

    # ------------------------------------------------------------------ faces
    def _face(self, tick: int) -> tuple[str, np.ndarray]:
        """The face key and (6, 96, 96) uint8 face input for the picture shown at ``tick``."""
        picture, hints = self.base(tick)
        box = wav2lip_box(hints.face_box, picture.shape)
        memo = (id(picture), box)
        if memo not in self._faces:
            if len(self._faces) > 512:
                self._faces.clear()
            face = network_face(picture, box)
            self._faces[memo] = (face_key(face), face)
        return self._faces[memo]

    @property
    def capabilities(self) -> Any:
        """Issue 12's renderer interface: batched, and bound to the tick a sentence starts on for an
        idle-video avatar (absent before it lands)."""
        import importlib

        caps = importlib.import_module("avatars.base").Capabilities
        return caps(batched=True, batch=self.batch, start_tick=self.video)

    # ------------------------------------------------------------------ audio -> poses
    def analyze(self, pcm: np.ndarray, rate: int) -> list[MouthPose]:
        return [p for batch in self.render_batches(pcm, rate) for p in batch]

    def analyze_stream(self, pcm: np.ndarray, rate: int, cancelled: threading.Event | None = None, *,
                       start_frame: int | None = None) -> Iterator[list[MouthPose]]:
        """What the speaker calls: poses in batches as the deployment answers, rendered against the loop
        frames the sentence will play on (``start_frame``)."""
        first = self.start_hint if start_frame is None else start_frame
        for batch in self.render_batches(pcm, rate, first):
            if cancelled is not None and cancelled.is_set():
                return
            yield batch

    def render_batches(self, pcm: np.ndarray, rate: int, start_tick: int = 0, sizes: Iterator[int] | None = None,
                       base: list[MouthPose] | None = None) -> Iterator[list[MouthPose]]:
        """Poses in batches; silent frames skip inference. ``sizes``: batch sizes to use first (then
        ``batch``); by default the first batch is the clock's prebuffer."""
        base = base if base is not None else ProceduralRenderer.analyze(self, pcm, rate)
        n = len(base)
        if n == 0:
            return
        windows = mel_windows(melspectrogram(resample(pcm, rate, SAMPLE_RATE)), n, self.fps)
        plays_at = self._play_time(start_tick)
        sizes = itertools.chain(sizes or (self.first_batch,), itertools.repeat(self.batch))
        t0 = time.monotonic()
        start = 0
        while start < n:
            idx = range(start, min(n, start + max(1, next(sizes))))
            talk = [i for i in idx if speaking(base[i])]
            # the first batch may take timeout_s (speech starts after it); a later one must be back
            # before its first frame can play: not before the first batch is, nor before the clock
            # has played what is queued ahead of this sentence
            deadline = time.monotonic() + self.timeout_s if start == 0 else max(t0, plays_at) + start / self.fps
            patches = self._patches(windows, talk, start_tick, deadline) if talk else {}
            if start == 0:
                t0 = time.monotonic()
            yield [dataclasses.replace(base[i], patch=patches.get(i)) for i in idx]
            start = idx.stop

    def _play_time(self, tick: int) -> float:
        """When the clock will reach ``tick`` (from the last frame it asked for); 0 when unknown."""
        last_tick, at = self._clock
        if at <= 0 or tick < last_tick or time.monotonic() - at > 1.0:
            return 0.0
        return at + (tick - last_tick) / self.fps

    def _patches(self, windows: np.ndarray, talk: list[int], hint: int, deadline: float) -> dict[int, np.ndarray]:
        faces = [self._face(hint + i if self.video else 0) for i in talk]
        keys = [k for k, _ in faces]
        if self.client.available():
            try:
                out = self.client.infer(keys, windows[talk], dict(faces), deadline)
                self.counters["remote_frames"] += len(talk)
                if self._failing:
                    self._failing = False
                    log.info("lip-sync deployment answering again", extra={"url": self.client.url})
                return dict(zip(talk, out, strict=True))
            except LipSyncUnavailable as e:
                self.counters["failed_requests"] += 1
                self.last_error = str(e)
                if not self._failing:
                    self._failing = True
                    log.warning("lip-sync deployment late or unreachable; covering frames locally",
                                extra={"url": self.client.url, "error": str(e),
                                       "cover": "local wav2lip" if self.local is not None else "procedural mouth"})
        return self._cover(windows, talk, hint)

    def _cover(self, windows: np.ndarray, talk: list[int], hint: int) -> dict[int, np.ndarray]:
        if self.local is not None:
            try:
                ticks = [hint + i for i in talk] if self.video else None
                if ticks is not None and hasattr(self.local, "infer_video"):  # the renderer before issue 12
                    out = self.local.infer_video(windows[talk], ticks)
                else:
                    out = self.local.infer(windows[talk], ticks) if ticks is not None else self.local.infer(windows[talk])
                self.counters["local_frames"] += len(talk)
                return dict(zip(talk, out, strict=True))
            except Exception as e:  # the local renderer failing too: the procedural mouth still speaks
                self.last_error = f"local renderer: {e}"
        self.counters["procedural_frames"] += len(talk)
        return {}

    # ------------------------------------------------------------------ frames
    def frame(self, index: int, pose: MouthPose | None = None) -> np.ndarray:
        self._clock = (index, time.monotonic())  # the clock asks for every tick: where playback is now
        if DRAW_HOOKS or pose is None or pose.patch is None:  # idle, silence, a missed frame: procedural
            return super().frame(index, pose)
        return self._frame_without_hooks(index, pose)

    def _frame_without_hooks(self, index: int, pose: MouthPose) -> np.ndarray:
        picture, hints = self.base(index)
        if hints is not self._jaw_hints:
            self._prepare_jaw(hints)
        img = picture.copy()
        assert pose.patch is not None
        self._paste_for(picture, hints.face_box).paste(img, pose.patch)
        blink = self.blink_amount(index)
        if blink > 0.0:
            self._draw_eyelids(img, blink)
        return self._head_motion(img, index, pose)  # type: ignore[attr-defined,unused-ignore]

    # the drawing hooks of issue 12's procedural renderer (unused before it lands)
    def _changes(self, pose: MouthPose, blink: float) -> bool:
        return blink > 0.0 or speaking(pose) or pose.patch is not None

    def _draw(self, img: np.ndarray, pose: MouthPose, blink: float) -> None:
        if pose.patch is None:
            super()._draw(img, pose, blink)  # type: ignore[misc,unused-ignore]
            return
        self._paste_for(img, self._jaw_hints.face_box).paste(img, pose.patch)
        if blink > 0.0:
            self._draw_eyelids(img, blink)

    def _face_region(self, hints: Any) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = super()._face_region(hints)  # type: ignore[misc,unused-ignore]
        paste = getattr(self, "paste", None)
        if paste is None:
            return x1, y1, x2, y2
        bx1, by1, bx2, by2 = paste.box
        return min(x1, bx1), min(y1, by1), max(x2, bx2), max(y2, by2)

    def _paste_for(self, picture: np.ndarray, face_box: tuple[int, int, int, int]) -> PasteBack:
        if not self.video:
            return self.paste
        box = wav2lip_box(face_box, picture.shape)
        if box not in self._pastes:
            if len(self._pastes) > 64:
                self._pastes.clear()
            self._pastes[box] = PasteBack(picture, box)
        return self._pastes[box]

    def status(self) -> dict[str, Any]:
        return {"renderer": self.name, "url": self.client.url, **self.counters,
                "deployment": "failing" if self._failing else "ok", "last_error": self.last_error}

    def close(self) -> None:
        self.client.close_connection()


def create_remote_renderer(avatar: Avatar, fps: int, url: str, timeout_ms: float = 250.0,
                           fallback: str = "procedural", batch: int = 16,
                           local_factory: Callable[[], Any] | None = None) -> RemoteWav2LipRenderer:
    """The remote renderer for a profile; with ``fallback = "local"`` a local Wav2Lip covers missed
    frames (when its weights load: otherwise the procedural mouth does, and the log says why)."""
    local = None
    if fallback == "local" and local_factory is not None:
        local = local_factory()
        if getattr(local, "name", "") != "wav2lip":
            local = None
    log.info("lip-sync through the shared deployment", extra={"url": url, "fallback": fallback if local else "procedural"})
    return RemoteWav2LipRenderer(avatar, fps, url, local=local, batch=batch, timeout_s=timeout_ms / 1000.0)
