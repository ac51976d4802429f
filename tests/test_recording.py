"""The recording sink rotates files and keeps the folder under its size cap; files stay playable; missing
ticks never shorten a file; a full disk never stops the stream."""

import logging
import shutil
import subprocess
import threading
import time

import av
import numpy as np
import pytest

from streamer.sinks.base import Sink, SinkWorker, Tick
from streamer.sinks.recording import RecordingSink
from tests.conftest import read_mp4

FPS, RATE = 25, 16000


def test_rotates_and_deletes_the_oldest_above_the_cap(tmp_path):
    sink = RecordingSink(tmp_path, 160, 96, FPS, RATE, segment_minutes=1 / 60, max_total_mb=0.05)
    sink.open()
    rng = np.random.default_rng(0)
    for i in range(8 * FPS):  # 8 s of noisy frames: 8 one-second files, each ~10+ kB
        frame = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
        sink.write(Tick(i, frame, np.zeros(RATE // FPS, np.float32), False, 0.0))
    sink.close()
    files = sorted(tmp_path.glob("streamer-*.mp4"))
    assert len(sink.files) == 8
    assert 1 <= len(files) < 8  # the oldest were deleted
    assert sum(f.stat().st_size for f in files[:-1]) <= 0.05 * 1024 * 1024
    assert files[-1] == sink.files[-1]  # the newest survives
    frames, audio, fps, rate = read_mp4(files[-1])
    assert len(frames) == FPS and fps == FPS and abs(len(audio) / rate - 1.0) <= 1 / FPS


# ---------------------------------------------------------------- wall-clock time: missing ticks never shorten a file

SPF = RATE // FPS
MARK = 42
AAC_FRAME = 1024  # decoded AAC comes in whole frames: lengths are exact to one frame


def marked_tick(i: int, mark: int = MARK) -> Tick:
    """A tick whose frame says its index (grey level) and, at ``mark``, a white frame and a beep."""
    frame = np.full((96, 160, 3), 255 if i == mark else (i * 3) % 200, np.uint8)
    audio = np.zeros(SPF, np.float32)
    if i == mark:
        audio[:] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(SPF) / RATE)
    return Tick(i, frame, audio, i == mark, 0.0)


def decode(path):
    """(video frame times in ticks, their mean grey levels, video duration s, audio samples)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        times, levels = [], []
        for f in c.decode(video=0):
            times.append(round(float(f.pts * f.time_base) * FPS))
            levels.append(float(f.to_ndarray(format="gray").mean()))
        last = max(times)
        assert vs.base_rate == FPS  # the frame rate stays 25; held gaps only lower the average rate
    frames, audio, fps, rate = read_mp4(path)
    assert rate == RATE
    return times, levels, (last + 1) / FPS, audio


def beep_onset(audio: np.ndarray) -> int:
    return int(np.argmax(np.abs(audio) > 0.1))


def test_missing_ticks_are_held_and_filled_with_silence_never_shortened(tmp_path):
    sink = RecordingSink(tmp_path, 160, 96, FPS, RATE)
    sink.open()
    sent = [*range(0, 10), *range(15, 25), *range(40, 50)]  # 5 and 15 ticks never arrive
    for i in sent:
        sink.write(marked_tick(i))
    status = sink.status()
    sink.close()
    times, levels, seconds, audio = decode(sink.files[-1])
    assert times == sent  # each frame at its tick's own time: held over the gaps
    assert seconds == pytest.approx(50 / FPS)  # the file lasts as long as the show: 2 s, not 1.2 s
    assert abs(len(audio) - 50 * SPF) <= AAC_FRAME  # audio too (silence in the gaps)
    white = times[int(np.argmax(levels))]
    assert white == MARK and abs(beep_onset(audio) - MARK * SPF) <= SPF // 4  # A/V still aligned after gaps
    assert status["ticks_missing"] == 20 and status["gaps"] == 2


class BlockingRecording(RecordingSink):
    """A recording sink that stalls on one tick (a slow disk), so its real worker drops what piles up."""

    def __init__(self, *a, stall_at: int, **kw):
        super().__init__(*a, **kw)
        self.stall_at, self.stalled, self.release = stall_at, threading.Event(), threading.Event()

    def write(self, tick):
        if tick.index == self.stall_at:
            self.stalled.set()
            assert self.release.wait(60)
        super().write(tick)


def test_a_slow_recording_behind_its_worker_keeps_wall_clock_time(tmp_path):
    sink = BlockingRecording(tmp_path, 160, 96, FPS, RATE, stall_at=5)
    worker = SinkWorker(sink, max_queue=8)
    worker.start()
    assert worker.wait_open(30)
    mark = 195
    for i in range(6):
        worker.push(marked_tick(i, mark))
    assert sink.stalled.wait(60)
    for i in range(6, 200):  # the sink is stuck: the worker keeps the newest 8 and drops the rest
        worker.push(marked_tick(i, mark))
    sink.release.set()
    worker.stop(timeout=60)
    assert worker.failed is None and worker.dropped == 186
    times, levels, seconds, audio = decode(sink.files[-1])
    assert times == [*range(0, 6), *range(192, 200)]
    assert seconds == pytest.approx(200 / FPS)  # 8 s of show, 8 s of file
    assert abs(len(audio) - 200 * SPF) <= AAC_FRAME
    assert times[int(np.argmax(levels))] == mark and abs(beep_onset(audio) - mark * SPF) <= SPF // 4
    assert sink.status()["ticks_missing"] == 186


def test_a_segment_boundary_inside_a_gap_loses_no_time(tmp_path):
    sink = RecordingSink(tmp_path, 160, 96, FPS, RATE, segment_minutes=1 / 60)  # 1 s files
    sink.open()
    sent = [*range(0, 25), *range(30, 60)]  # the gap starts exactly where the first file ends
    for i in sent:
        sink.write(marked_tick(i, mark=-1))
    sink.close()
    durations = [decode(f)[2] for f in sink.files]
    assert sum(durations) == pytest.approx(60 / FPS) and len(sink.files) == 3


# ---------------------------------------------------------------- a full disk does not stop the stream
@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root); unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("cannot mount a small tmpfs: no mount command")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


class CountingSink(Sink):
    name = "counting"

    def __init__(self):
        self.indices = []

    def write(self, tick):
        self.indices.append(tick.index)


def noisy_tick(i: int, rng) -> Tick:
    return Tick(i, rng.integers(0, 255, (96, 160, 3), dtype=np.uint8), np.zeros(SPF, np.float32), False, 0.0)


def feed(workers, ticks, rng, start=0):
    """Offer ticks to every worker as the clock does, waiting for each worker to take each (no drops)."""
    for i in range(start, start + ticks):
        tick = noisy_tick(i, rng)
        for w in workers:
            w.push(tick)
        deadline = time.monotonic() + 30
        while any(w.written + w.dropped <= i and w.failed is None for w in workers):
            assert time.monotonic() < deadline, "a sink worker is stuck"
            time.sleep(0.001)


def test_full_disk_deletes_the_oldest_recordings_and_goes_on(small_disk, caplog):
    rec = RecordingSink(small_disk, 160, 96, FPS, RATE, segment_minutes=1 / 60, max_total_mb=100)
    other = CountingSink()
    workers = [SinkWorker(rec), SinkWorker(other)]
    for w in workers:
        w.start()
    rng = np.random.default_rng(1)
    with caplog.at_level(logging.INFO):
        feed(workers, 400, rng)  # ~1.6 MB of noise into 1 MiB
        for w in workers:
            w.stop(timeout=30)
    status = rec.status()
    assert workers[0].failed is None  # the sink never raised
    assert other.indices == list(range(400))  # the other sink got every tick
    assert status["deleted_for_space"] > 0 and status["disk_full"] is None
    left = sorted(small_disk.glob("streamer-*.mp4"))
    assert left and left[-1] == rec.files[-1]  # the newest footage is kept
    assert decode(left[-1])[2] > 0.5
    lines = [r for r in caplog.records if r.getMessage().startswith("recording disk")]
    assert 1 <= len(lines) <= status["deleted_for_space"]  # one line per episode, not one per tick
    assert not open_files_under(small_disk)


def test_full_disk_with_nothing_to_delete_pauses_then_resumes(small_disk, caplog):
    filler = small_disk / "someone-else.bin"
    filler.write_bytes(b"\0" * 700_000)  # another program filled most of the disk
    rec = RecordingSink(small_disk, 160, 96, FPS, RATE, segment_minutes=10, disk_retry_s=0.4)
    other = CountingSink()
    workers = [SinkWorker(rec), SinkWorker(other)]
    for w in workers:
        w.start()
    rng = np.random.default_rng(2)
    with caplog.at_level(logging.INFO):
        feed(workers, 200, rng)
        paused = rec.status()
        filler.unlink()  # the operator frees space
        feed(workers, 100, rng, start=200)
        for w in workers:
            w.stop(timeout=30)
    assert workers[0].failed is None and other.indices == list(range(300))
    assert paused["disk_full"] and "disk full" in paused["disk_full"] and paused["ticks_not_recorded"] > 0
    assert rec.status()["disk_full"] is None  # resumed
    errors = [r for r in caplog.records if r.getMessage() == "recording paused: disk full; the stream goes on"]
    assert len(errors) == 1  # one clear line, not one per tick or per retry
    assert any(r.getMessage() == "recording resumed" for r in caplog.records)
    first, last = rec.files[0], rec.files[-1]
    assert first != last and first.exists() and last.exists()
    assert decode(first)[2] > 1.0  # what was recorded before the disk filled stays playable (torn end cut)
    assert decode(last)[2] > 1.0
    assert not open_files_under(small_disk)  # nothing held open: deleted files really free their space


def open_files_under(folder) -> list[str]:
    import os

    paths = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            paths.append(target)
    return paths
