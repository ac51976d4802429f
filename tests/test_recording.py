"""The recording sink rotates files and keeps the folder under its size cap; files stay playable."""

import numpy as np

from streamer.sinks.base import Tick
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
