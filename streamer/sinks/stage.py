"""The stage sink: the stream over WebRTC (aiortc) to the stage page ``/stage``, several viewers at once.

The sink thread turns each tick into one video frame and one audio frame (once, shared by every
viewer) and hands them to the event loop, where each viewer's tracks hold a short queue: a viewer
that cannot keep up loses its oldest frames (counted), never the clock's pace or another viewer's.
Audio and video carry timestamps from the same tick index, so the browser's jitter buffer lines them
up. Signalling is one HTTP exchange (the page posts its offer, the control server answers); with
no STUN/TURN servers (``iceServers=[]``) it works on this machine and its LAN, which is where an
OBS Browser Source runs.
"""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction
from typing import Any

import av
import numpy as np

from streamer.sinks.base import Sink, SinkUnavailable, Tick
from streamer.voice.audio import float_to_int16

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90000


def _aiortc() -> Any:
    try:
        import aiortc
    except ImportError:
        raise SinkUnavailable("the stage page needs aiortc: pip install 'streamer[stage]'") from None
    return aiortc


class _Progress:
    """How far one viewer's video has gone out (tick index), to release its audio in step.

    aiortc stamps each RTCP sender report with the time a packet leaves, not the time it was captured.
    Video leaves later than audio by its encoding time (tens to hundreds of ms at 720p), so the
    browser believes the video was captured that much later and plays the audio that much early.
    Releasing a tick's audio only once the same tick's video has been sent puts both reports on one
    timeline; if video stalls, audio goes on alone after ``max_hold_s``.
    """

    def __init__(self, max_hold_s: float = 0.5) -> None:
        self.sent_upto = -1
        self.max_hold_s = max_hold_s
        self.changed = asyncio.Event()

    def video_sent(self, index: int) -> None:
        if index > self.sent_upto:
            self.sent_upto = index
            self.changed.set()

    async def wait_video(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.max_hold_s
        while self.sent_upto < index:
            left = end - loop.time()
            if left <= 0:
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                return


class _FeedTrack:
    """A MediaStreamTrack fed by the hub (built lazily so aiortc stays optional)."""

    @staticmethod
    def make(kind: str, maxsize: int, progress: _Progress | None = None, pts_per_tick: int = 1) -> Any:
        from aiortc import MediaStreamTrack

        class FeedTrack(MediaStreamTrack):
            def __init__(self) -> None:
                super().__init__()
                self.kind = kind
                self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
                self.dropped = 0
                self.sent = 0
                self._last = -1

            def put(self, frame: Any) -> None:
                if self.queue.full():
                    self.queue.get_nowait()
                    self.dropped += 1
                self.queue.put_nowait(frame)

            async def recv(self) -> Any:
                if kind == "video" and progress is not None:  # asked for the next frame: the last one is out
                    progress.video_sent(self._last)
                frame = await self.queue.get()
                if progress is not None:
                    if kind == "video":
                        self._last = frame.pts // pts_per_tick
                    else:
                        await progress.wait_video(frame.pts // pts_per_tick)
                self.sent += 1
                return frame

        return FeedTrack()


class _Viewer:
    def __init__(self, pc: Any, video: Any, audio: Any, number: int) -> None:
        self.pc, self.video, self.audio, self.number = pc, video, audio, number


class StageHub:
    """The viewers of the stage page. ``answer`` runs on the event loop; ``push`` on the sink thread."""

    def __init__(self, fps: int, sample_rate: int, width: int, height: int, max_viewers: int = 8) -> None:
        self.fps, self.rate = fps, sample_rate
        self.size = (width, height)
        self.max_viewers = max_viewers
        self.viewers: dict[int, _Viewer] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.served = 0
        self.frames = 0
        self.sync_audio = True

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # ------------------------------------------------------------------ sink thread
    def push(self, tick: Tick) -> None:
        loop = self.loop
        if loop is None or not self.viewers:
            return
        video = av.VideoFrame.from_ndarray(tick.frame, format="rgb24")
        if (video.width, video.height) != self.size:
            video = video.reformat(self.size[0], self.size[1])
        video.pts, video.time_base = tick.index * (VIDEO_CLOCK // self.fps), Fraction(1, VIDEO_CLOCK)
        audio = av.AudioFrame.from_ndarray(float_to_int16(tick.audio).reshape(1, -1), format="s16", layout="mono")
        audio.sample_rate, audio.time_base = self.rate, Fraction(1, self.rate)
        audio.pts = tick.index * tick.audio.size
        self.frames += 1
        try:
            loop.call_soon_threadsafe(self._fan_out, video, audio)
        except RuntimeError:  # the loop closed while stopping
            pass

    def _fan_out(self, video: Any, audio: Any) -> None:
        for viewer in list(self.viewers.values()):
            viewer.video.put(video)
            viewer.audio.put(audio)

    # ------------------------------------------------------------------ event loop
    async def answer(self, sdp: str, kind: str) -> dict[str, str]:
        """Answer a viewer's offer; ValueError for a bad offer, LookupError when the stage is full."""
        aiortc = _aiortc()
        if len(self.viewers) >= self.max_viewers:
            raise LookupError(f"the stage has {self.max_viewers} viewers already ([outputs.stage] max_viewers)")
        self.attach(asyncio.get_running_loop())
        pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
        self.served += 1
        progress = _Progress() if self.sync_audio else None
        viewer = _Viewer(pc, _FeedTrack.make("video", 3, progress, VIDEO_CLOCK // self.fps),
                         _FeedTrack.make("audio", 25, progress, self.rate // self.fps), self.served)
        pc.addTrack(viewer.video)
        pc.addTrack(viewer.audio)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            log.info("stage viewer connection", extra={"viewer": viewer.number, "state": pc.connectionState})
            if pc.connectionState in ("failed", "closed"):
                await self._drop(viewer)

        try:
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(sdp=sdp, type=kind))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:
            await pc.close()
            raise ValueError(f"cannot answer this offer: {e}") from None
        self.viewers[viewer.number] = viewer
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    async def _drop(self, viewer: _Viewer) -> None:
        if self.viewers.pop(viewer.number, None) is not None:
            await viewer.pc.close()

    async def aclose(self) -> None:
        for viewer in list(self.viewers.values()):
            await self._drop(viewer)

    def status(self) -> dict[str, object]:
        return {"viewers": len(self.viewers), "served": self.served,
                "viewer_dropped": sum(v.video.dropped for v in self.viewers.values())}


class StageSink(Sink):
    name = "stage"

    def __init__(self, hub: StageHub) -> None:
        self.hub = hub

    def open(self) -> None:
        _aiortc()

    def write(self, tick: Tick) -> None:
        self.hub.push(tick)

    def status(self) -> dict[str, object]:
        return self.hub.status()


class PreviewSink(Sink):
    """Keeps the latest frame for the panel's preview; encodes a small JPEG only when asked."""

    name = "preview"

    def __init__(self, width: int = 480) -> None:
        self.width = width
        self.frame: np.ndarray | None = None
        self.index = -1

    def write(self, tick: Tick) -> None:
        self.frame, self.index = tick.frame, tick.index  # frames are shared and never modified: no copy

    def jpeg(self) -> bytes | None:
        import cv2

        frame = self.frame
        if frame is None:
            return None
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (self.width, max(2, h * self.width // w)), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 70])
        return data.tobytes() if ok else None
