"""The recording sink: H.264 + AAC in size-capped, rotating MP4 files (PyAV).

Files are fragmented MP4 (a fragment per keyframe, every 2 s), so a recording stays playable even if
the process is killed or the machine loses power; they rotate every ``segment_minutes`` and the
oldest ``streamer-*.mp4`` files are deleted to keep the folder under ``max_total_mb``. Timestamps
come from tick and sample counts, so audio and video stay locked however late the sink runs.
"""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from streamer.sinks.base import Sink, Tick
from streamer.voice.audio import float_to_int16

log = logging.getLogger(__name__)


class MP4Writer:
    """One MP4 file: H.264 video at ``fps`` and mono AAC audio, fed frame by frame."""

    def __init__(self, path: Path, width: int, height: int, fps: int, sample_rate: int, crf: int = 26,
                 fragmented: bool = True) -> None:
        self.path = path
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "use_editlist": "1"} if fragmented else {}
        self.container: Any = av.open(str(path), mode="w", format="mp4", options=options)
        v = self.container.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.codec_context.time_base = Fraction(1, fps)
        v.options = {"preset": "veryfast", "tune": "zerolatency", "crf": str(crf), "g": str(2 * fps)}
        a = self.container.add_stream("aac", rate=sample_rate, layout="mono")
        self.v, self.a = v, a
        self.sample_rate = sample_rate
        self.frames = 0
        self.samples = 0
        # Fragmented MP4 players do not trim the AAC encoder's priming samples, so the first ones
        # we feed are skipped instead: decoded audio then lines up with video sample-exactly.
        self._skip = 1024 if fragmented else 0

    def write(self, frame: np.ndarray, audio: np.ndarray) -> None:
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = self.frames
        vf.time_base = Fraction(1, self.v.codec_context.time_base.denominator)
        self.frames += 1
        for packet in self.v.encode(vf):
            self.container.mux(packet)
        if self._skip:
            cut = min(self._skip, audio.size)
            audio, self._skip = audio[cut:], self._skip - cut
        if audio.size:
            af = av.AudioFrame.from_ndarray(float_to_int16(audio).reshape(1, -1), format="s16", layout="mono")
            af.sample_rate = self.sample_rate
            af.pts = self.samples
            af.time_base = Fraction(1, self.sample_rate)
            self.samples += audio.size
            for packet in self.a.encode(af):
                self.container.mux(packet)

    def close(self) -> None:
        try:
            for stream in (self.v, self.a):
                for packet in stream.encode(None):
                    self.container.mux(packet)
        finally:
            self.container.close()


class RecordingSink(Sink):
    name = "recording"

    def __init__(self, folder: str | Path, width: int, height: int, fps: int, sample_rate: int,
                 segment_minutes: float = 10.0, max_total_mb: float = 2000.0, crf: int = 26) -> None:
        self.folder = Path(folder)
        self.size = (width, height)
        self.fps, self.sample_rate, self.crf = fps, sample_rate, crf
        self.segment_frames = max(1, int(segment_minutes * 60 * fps))
        self.max_total_bytes = int(max_total_mb * 1024 * 1024)
        self.writer: MP4Writer | None = None
        self.files: list[Path] = []

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._rotate()

    def _rotate(self) -> None:
        if self.writer is not None:
            self.writer.close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = 0
        path = self.folder / f"streamer-{stamp}-{n:02d}.mp4"  # names sort in recording order
        while path.exists():
            n += 1
            path = self.folder / f"streamer-{stamp}-{n:02d}.mp4"
        self.writer = MP4Writer(path, *self.size, self.fps, self.sample_rate, self.crf)
        self.files.append(path)
        log.info("recording to file", extra={"path": str(path)})
        self._enforce_cap()

    def _enforce_cap(self) -> None:
        current = self.writer.path if self.writer else None
        files = sorted(self.folder.glob("streamer-*.mp4"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for old in files:
            if total <= self.max_total_bytes or old == current:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
            log.info("deleted old recording to stay under the size cap", extra={"path": str(old)})

    def write(self, tick: Tick) -> None:
        assert self.writer is not None
        if self.writer.frames >= self.segment_frames:
            self._rotate()
        self.writer.write(tick.frame, tick.audio)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def status(self) -> dict[str, object]:
        return {"file": str(self.files[-1]) if self.files else None}
