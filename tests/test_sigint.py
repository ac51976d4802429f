"""Ctrl-C stops ``streamer run`` within a second, exit code 0, leaving a playable recording."""

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


def test_sigint_stops_within_a_second_with_a_playable_recording(tmp_path):
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
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert rc == 0, err
    assert elapsed < 1.0, f"took {elapsed:.2f} s to stop"
    assert "Traceback" not in err and "streamer stopped" in err
    frames, audio, fps, rate = read_mp4(next(rec.glob("streamer-*.mp4")))
    assert len(frames) >= 150 and fps == 25
    assert abs(len(frames) / fps - len(audio) / rate) <= 1 / fps
