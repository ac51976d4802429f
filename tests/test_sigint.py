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
        deadline = time.monotonic() + 60
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
    frames, audio, fps, rate = read_mp4(next(rec.glob("streamer-*.mp4")))
    assert len(frames) >= 150 and fps == 25
    assert abs(len(frames) / fps - len(audio) / rate) <= 1 / fps
