"""The recording sink: H.264 + AAC in size-capped, rotating MP4 files (PyAV).

Files are fragmented MP4 (a fragment per keyframe, every 2 s), so a recording stays playable even if
the process is killed or the machine loses power; they rotate every ``segment_minutes`` and the
oldest ``streamer-*.mp4`` files are deleted to keep the folder under ``max_total_mb``.

A 24/7 recording keeps wall-clock time. Timestamps come from the tick index, not from a count of
what was written: when ticks are missing (the sink fell behind and its worker dropped them), the
video's next frame simply carries a later timestamp, so players hold the last frame over the gap,
and the audio gap is filled with silence. The file is never shorter than the show, audio and video
stay locked, and what was missing is counted in ``status()``. Holding by timestamp costs nothing,
which matters because a sink that drops ticks is already short of time.

A full disk must not stop the stream. Before each new file the sink deletes its oldest recordings
until there is room for one more like the last; if the disk fills anyway (another program), it cuts
the torn end of the file being written (so it stays playable), deletes the oldest recordings and
carries on in a new file; with nothing left to delete it pauses (one log line), counts the ticks it
could not record, and tries again every ``disk_retry_s``. It never raises for a full disk, so the
clock and the other sinks are not affected. Files are Python file objects we close ourselves, so a
deleted recording really frees its space.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import struct
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from streamer.sinks.base import Sink, Tick
from streamer.voice.audio import float_to_int16

log = logging.getLogger(__name__)

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
MAX_SILENCE_CHUNK_S = 1.0
RESUME_AFTER_S = 4.0
"""After a full disk, recording resumes once the disk has room for this many seconds of stream."""


class DiskFull(OSError):
    """The recording's disk (or quota) is full."""


class _RecordingFile(io.FileIO):
    """The MP4 file, remembering why a write failed: PyAV reports a failing Python write as its own
    error ("Error in PyAV callback"), and the sink must still recognise a full disk."""

    write_error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except OSError as e:
            self.write_error = e
            raise


def _disk_full(e: BaseException | None) -> bool:
    return isinstance(e, OSError) and e.errno in DISK_FULL


def trim_torn_fragment(path: Path) -> int:
    """Cut a fragmented MP4 after its last complete fragment; return how many complete fragments it holds.

    A write that failed midway (a full disk) leaves a torn ``moof``/``mdat`` pair at the end; players
    stumble on it. Top-level boxes are walked by their headers only, and truncating needs no space."""
    with open(path, "r+b") as f:
        total = os.fstat(f.fileno()).st_size
        good = off = fragments = 0
        while off + 8 <= total:
            f.seek(off)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:
                size = total - off
            if size < 8 or off + size > total:
                break
            off += size
            if kind != b"moof":  # a moof counts only once its mdat is complete
                good = off
                fragments += kind == b"mdat"
        if good < total:
            f.truncate(good)
        return fragments


class MP4Writer:
    """One MP4 file: H.264 video at ``fps`` and mono AAC audio, fed frame by frame.

    ``write(frame, audio, index)``: ``index`` is the tick number; a jump in it is a gap that is held
    (video) and filled with silence (audio). Without ``index`` frames are consecutive."""

    def __init__(self, path: Path, width: int, height: int, fps: int, sample_rate: int, crf: int = 26,
                 fragmented: bool = True, first_index: int | None = None) -> None:
        self.path = path
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "use_editlist": "1"} if fragmented else {}
        # We own the file object: when a write fails (a full disk) it is closed for sure, so a deleted
        # recording really frees its space (PyAV's own file is left open when the header never made it).
        try:
            self._file = _RecordingFile(path, "wb")
        except OSError as e:
            if _disk_full(e):
                raise DiskFull(e.errno, f"disk full creating {path}") from e
            raise
        try:
            self.container: Any = av.open(self._file, mode="w", format="mp4", options=options)
        except BaseException:
            self._file.close()
            raise
        v = self.container.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.codec_context.time_base = Fraction(1, fps)
        v.options = {"preset": "veryfast", "tune": "zerolatency", "crf": str(crf), "g": str(2 * fps)}
        a = self.container.add_stream("aac", rate=sample_rate, layout="mono")
        self.v, self.a = v, a
        self.fps, self.sample_rate = fps, sample_rate
        self.frames = 0
        """Frames encoded."""
        self.span = 0
        """Ticks this file covers (its duration in frames), held gaps included."""
        self.samples = 0
        self.first_index = first_index
        """Tick index at the file's time 0 (None: the first tick written)."""
        self.held_ticks = 0
        self.gaps = 0
        # Fragmented MP4 players do not trim the AAC encoder's priming samples, so the first ones
        # we feed are skipped instead: decoded audio then lines up with video sample-exactly.
        self._skip = 1024 if fragmented else 0

    def gap_before(self, index: int) -> int:
        """Ticks missing between what this file holds and tick ``index``."""
        return 0 if self.first_index is None else max(0, index - self.first_index - self.span)

    def write(self, frame: np.ndarray, audio: np.ndarray, index: int | None = None) -> None:
        """Add one tick; DiskFull when the disk is full (the file then holds what was written before)."""
        try:
            self._write(frame, audio, index)
        except Exception as e:
            self._raise_disk_full(e)
            raise

    def _raise_disk_full(self, e: Exception) -> None:
        cause = self._file.write_error
        if _disk_full(e) or _disk_full(cause):
            raise DiskFull(errno.ENOSPC, f"disk full writing {self.path}: {cause or e}") from e

    def _write(self, frame: np.ndarray, audio: np.ndarray, index: int | None) -> None:
        if index is None:
            index = (self.first_index or 0) + self.span
        if self.first_index is None:
            self.first_index = index
        pts = index - self.first_index
        if pts < self.span:  # a tick we already have (or older): time only moves forward
            return
        missing = pts - self.span
        if missing:
            self.gaps += 1
            self.held_ticks += missing
            self._silence(missing * audio.size)
        if self.frames == 0 and pts > 0:  # a file that starts inside a gap shows this frame from its start
            self._encode(frame, 0)
        self._encode(frame, pts)
        self._audio(audio)

    def _encode(self, frame: np.ndarray, pts: int) -> None:
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = pts
        vf.time_base = Fraction(1, self.fps)
        self.frames += 1
        self.span = pts + 1
        for packet in self.v.encode(vf):
            self.container.mux(packet)

    def _silence(self, samples: int) -> None:
        chunk = int(MAX_SILENCE_CHUNK_S * self.sample_rate)
        while samples > 0:
            n = min(chunk, samples)
            self._audio(np.zeros(n, np.float32))
            samples -= n

    def _audio(self, audio: np.ndarray) -> None:
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
            self.container.close()
        except Exception as e:
            self.abort()
            self._raise_disk_full(e)
            raise
        finally:
            self._file.close()

    def abort(self) -> None:
        """Give up on the file after a failed write: release it without writing anything more."""
        self._file.close()
        try:
            self.container.close()  # the file is closed: PyAV skips the trailer and frees the muxer
        except Exception:
            log.debug("closing an aborted recording failed", exc_info=True)


class RecordingSink(Sink):
    name = "recording"

    def __init__(self, folder: str | Path, width: int, height: int, fps: int, sample_rate: int,
                 segment_minutes: float = 10.0, max_total_mb: float = 2000.0, crf: int = 26,
                 disk_retry_s: float = 60.0) -> None:
        self.folder = Path(folder)
        self.size = (width, height)
        self.fps, self.sample_rate, self.crf = fps, sample_rate, crf
        self.segment_frames = max(1, int(segment_minutes * 60 * fps))
        self.max_total_bytes = int(max_total_mb * 1024 * 1024)
        self.disk_retry_ticks = max(1, int(disk_retry_s * fps))
        self.writer: MP4Writer | None = None
        self.files: list[Path] = []
        self.ticks_missing = 0
        """Ticks that never reached this sink (dropped upstream); held/filled in the file."""
        self.gaps = 0
        self.ticks_not_recorded = 0
        """Ticks that arrived while the disk was full."""
        self.deleted_for_space = 0
        self.disk_full: str | None = None
        self._last_index: int | None = None
        self._retry_at = 0
        self._stamp, self._seq = "", 0
        self._bytes_per_s = 256 * 1024.0

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._rotate()

    # ---------------------------------------------------------------- files
    def _rotate(self, first_index: int | None = None) -> None:
        """Start a new file; ``first_index`` makes it continue the previous one without a hole."""
        previous = self.writer.path if self.writer is not None else None
        self._finish_writer()
        if previous is not None and previous.exists():
            self._keep_room(int(previous.stat().st_size * 1.25))
        path = self._next_path()
        self.writer = MP4Writer(path, *self.size, self.fps, self.sample_rate, self.crf, first_index=first_index)
        self.files.append(path)
        log.info("recording to file", extra={"path": str(path)})
        self._enforce_cap()

    def _next_path(self) -> Path:
        """A new file name; names sort in recording order (never reusing a deleted file's name)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = self._seq + 1 if stamp == self._stamp else 0
        while (path := self.folder / f"streamer-{stamp}-{n:02d}.mp4").exists():
            n += 1
        self._stamp, self._seq = stamp, n
        return path

    def _finish_writer(self, failed: bool = False) -> None:
        """Close the current file. When the disk is (or was) full, keep what its complete fragments
        hold, cut the torn end, delete it if nothing is left; DiskFull when closing found the disk full."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        error: DiskFull | None = None
        try:
            writer.close()
        except DiskFull as e:
            error, failed = e, True
        if failed and writer.path.exists() and trim_torn_fragment(writer.path) == 0:
            writer.path.unlink(missing_ok=True)
        if error is not None:
            raise error

    def _abandon_writer(self) -> None:
        """After a failed write: release the file, keeping its complete fragments."""
        w = self.writer
        if w is not None and w.span > w.fps and w.path.exists():  # how fast this stream fills a disk
            self._bytes_per_s = w.path.stat().st_size / (w.span / w.fps)
        try:
            self._finish_writer(failed=True)
        except DiskFull:
            pass

    def _recordings(self) -> list[Path]:
        """Every recording in the folder (this run's and earlier ones'), oldest first: names carry the time."""
        return sorted(self.folder.glob("streamer-*.mp4"))

    def _enforce_cap(self) -> None:
        current = self.writer.path if self.writer else None
        files = self._recordings()
        total = sum(p.stat().st_size for p in files)
        for old in files:
            if total <= self.max_total_bytes or old == current:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
            log.info("deleted old recording to stay under the size cap", extra={"path": str(old)})

    def _keep_room(self, need: int) -> None:
        """Before a new file: delete the oldest recordings until the disk has room for one more like the
        last, so a disk that fills up costs old footage, not the newest."""
        deleted = 0
        while shutil.disk_usage(self.folder).free < need and self._delete_oldest():
            deleted += 1
        if deleted:
            log.warning("recording disk nearly full: deleted the oldest recordings",
                        extra={"folder": str(self.folder), "deleted": deleted})

    def _delete_oldest(self) -> bool:
        """Free space by deleting the oldest recording, never the newest one (the latest footage)."""
        files = self._recordings()
        if len(files) < 2:
            return False
        files[0].unlink(missing_ok=True)
        self.deleted_for_space += 1
        return True

    # ---------------------------------------------------------------- ticks
    def write(self, tick: Tick) -> None:
        if self._last_index is not None and tick.index > self._last_index + 1:
            self.gaps += 1
            self.ticks_missing += tick.index - self._last_index - 1
        if self._last_index is None or tick.index > self._last_index:
            self._last_index = tick.index
        if self.disk_full is not None and not self._may_retry(tick):
            self.ticks_not_recorded += 1
            return
        try:
            self._write(tick)
        except DiskFull as e:
            if not self._make_room(tick):
                self._pause(tick, e)
                return
        if self.disk_full is not None:
            log.info("recording resumed", extra={"folder": str(self.folder), "not_recorded": self.ticks_not_recorded})
            self.disk_full = None

    def _write(self, tick: Tick) -> None:
        w = self.writer
        if w is None:  # after a full disk: a new file, starting at this tick
            self._rotate()
        elif w.gap_before(tick.index) >= self.segment_frames:  # a stall longer than a segment
            log.warning("recording hole longer than a segment; starting a new file",
                        extra={"missing_s": round(w.gap_before(tick.index) / self.fps, 1)})
            self._rotate()
        elif w.span >= self.segment_frames:
            self._rotate(first_index=(w.first_index or 0) + w.span)
        assert self.writer is not None
        self.writer.write(tick.frame, tick.audio, tick.index)

    def _make_room(self, tick: Tick) -> bool:
        """The disk is full: delete the oldest recordings until the tick fits. False when none is left."""
        self._abandon_writer()
        deleted = 0
        while self._delete_oldest():
            deleted += 1
            try:
                self._write(tick)
            except DiskFull:
                self._abandon_writer()
                continue
            log.warning("recording disk full: deleted the oldest recordings and carried on",
                        extra={"folder": str(self.folder), "deleted": deleted})
            return True
        return False

    def _may_retry(self, tick: Tick) -> bool:
        """While paused: retry every ``disk_retry_s``, once there is room for a few seconds of stream."""
        if tick.index < self._retry_at:
            return False
        self._retry_at = tick.index + self.disk_retry_ticks
        return shutil.disk_usage(self.folder).free >= RESUME_AFTER_S * self._bytes_per_s

    def _pause(self, tick: Tick, error: OSError) -> None:
        retry_s = self.disk_retry_ticks / self.fps
        if self.disk_full is None:
            self.disk_full = f"disk full in {self.folder}: recording paused, retrying every {retry_s:g} s"
            log.error("recording paused: disk full; the stream goes on",
                      extra={"folder": str(self.folder), "error": str(error), "retry_s": retry_s})
        self.ticks_not_recorded += 1
        self._retry_at = tick.index + self.disk_retry_ticks

    def close(self) -> None:
        try:
            self._finish_writer()
        except DiskFull as e:
            log.error("recording disk full while closing the last file; its complete fragments are kept",
                      extra={"folder": str(self.folder), "error": str(e)})

    def status(self) -> dict[str, object]:
        return {"file": str(self.files[-1]) if self.files else None, "ticks_missing": self.ticks_missing,
                "gaps": self.gaps, "disk_full": self.disk_full, "ticks_not_recorded": self.ticks_not_recorded,
                "deleted_for_space": self.deleted_for_space}
