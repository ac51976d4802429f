"""Ctrl-C stops ``streamer run`` cleanly: exit code 0, no traceback, a playable recording. (How fast it
stops is a figure: benchmarks/bench_soak.py measures it; here only a hang fails.)"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import read_mp4, write_config

pytestmark = pytest.mark.slow

PROFILE = """
[stream]
width = 640
height = 360
[director]
state_db = "STATE"
[persona]
catalogue = "{REPO}/config/products/demo.toml"
idle_after_s = 1
[[chat]]
type = "replay"
path = "{REPO}/config/samples/commerce_en.jsonl"
speed = 3
[outputs.camera]
enabled = "off"
[outputs.recording]
dir = "REC"
[control]
port = PORT
"""


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigint_stops_cleanly_with_a_playable_recording(tmp_path):
    port = _free_port()
    rec = tmp_path / "rec"
    cfg = write_config(tmp_path, PROFILE.replace("REC", str(rec)).replace("PORT", str(port)).replace("STATE", str(tmp_path / "s.db")))
    env = {**os.environ, "STREAMER_CONTROL_TOKEN": "tok"}
    proc = subprocess.Popen([sys.executable, "-m", "streamer", "run", "-c", str(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180  # bounds a start that hangs; a loaded machine starts slowly
        status = {}
        while time.monotonic() < deadline and status.get("ticks", 0) < 150:
            time.sleep(0.2)
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers={"X-Streamer-Token": "tok"})
                status = json.load(urllib.request.urlopen(req, timeout=2))
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
        assert status.get("ticks", 0) >= 150, status
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert rc == 0, err
    assert "Traceback" not in err and "streamer stopped" in err
    path = next(rec.glob("streamer-*.mp4"))
    _, audio, _, rate = read_mp4(path)
    fps, span = video_span(path)  # by timestamps: a loaded machine may drop ticks, held as gaps (VFR)
    assert fps == 25 and span >= 150 / fps
    assert abs(span - len(audio) / rate) <= 1 / fps  # picture and sound end together


def video_span(path):
    """The recording's nominal frame rate and how long its picture lasts (first frame to the end of the last)."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        fps = float(stream.base_rate or stream.guessed_rate)
        times = [f.time for f in c.decode(video=0)]
    return fps, times[-1] - times[0] + 1 / fps
