"""``streamer run`` on a headless profile for ~20 s: pace, chat answered with speech, interrupt, bad input."""

import asyncio
import json
import time

import aiohttp
import numpy as np
import pytest
import pyvirtualcam
from websockets.asyncio.client import connect

from streamer.app import App
from streamer.config import load_settings
from streamer.control import ControlServer
from streamer.sinks.base import Sink
from tests.conftest import read_mp4, write_config

pytestmark = pytest.mark.slow

FPS = 25
TOKEN = "test-token-123"


class RecordingCamera:
    """A pyvirtualcam backend standing in for the kernel v4l2loopback device (library boundary)."""

    instances: list["RecordingCamera"] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.arrivals, self.closed = width, height, [], 0
        RecordingCamera.instances.append(self)

    def send(self, frame):
        assert frame.size == self.width * self.height * 3
        self.arrivals.append(time.monotonic())

    def close(self):
        self.closed += 1

    def device(self):
        return "/dev/video-test"

    def native_fourcc(self):
        return None


class PeakSink(Sink):
    """Records each tick's audio peak exactly as the clock hands it to every sink."""

    name = "peaks"

    def __init__(self):
        self.peaks = {}

    def write(self, tick):
        self.peaks[tick.index] = float(np.abs(tick.audio).max())


PROFILE = """
[stream]
width = 640
height = 360
fps = 25
[voice]
engine = "auto"
[director]
state_db = "STATE"
[persona]
catalogue = "{REPO}/config/products/demo.toml"
idle_after_s = 60
[[chat]]
type = "websocket"
port = 0
[outputs.camera]
enabled = "on"
backend = "recording-test"
[outputs.recording]
dir = "REC"
[control]
port = 0
"""


async def _wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_run_headless_answers_chat_interrupts_and_keeps_pace(tmp_path):
    pyvirtualcam.register_backend("recording-test", RecordingCamera)
    RecordingCamera.instances.clear()
    rec = tmp_path / "rec"
    settings = load_settings(write_config(tmp_path, PROFILE.replace("REC", str(rec)).replace("STATE", str(tmp_path / "s.db"))),
                             environ={})
    peaks = PeakSink()
    app = App(settings, extra_sinks=[peaks])
    control = ControlServer(app, "127.0.0.1", 0, TOKEN)
    await app.start()
    await control.start()
    t_start = time.monotonic()
    base = f"http://127.0.0.1:{control.bound_port}/api"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        ws_src = app.sources[0]
        async with connect(f"ws://127.0.0.1:{ws_src.bound_port}") as ws, aiohttp.ClientSession() as http:
            await asyncio.sleep(2.0)
            await ws.send('{"user": "Sam", "text": ')  # malformed: rejected, connection stays up
            bad = json.loads(await ws.recv())
            assert bad["ok"] is False and "not JSON" in bad["error"]
            await ws.send(json.dumps({"user": "Sam", "text": "How much is it? And is shipping free?"}))
            reply = json.loads(await ws.recv())
            assert reply["ok"] is True
            started = await _wait_for(lambda: any(e["kind"] == "start" and e["answers"] == reply["id"]
                                                  for e in app.playback_log), 15)
            assert started, list(app.playback_log)
            start_tick = next(e["tick"] for e in app.playback_log if e["answers"] == reply["id"])
            await asyncio.sleep(1.0)  # let the answer play a while

            async with http.post(f"{base}/interrupt") as r:
                assert r.status == 401  # no token, no control
            async with http.get(f"{base}/status", headers=auth) as r:
                status = await r.json()
                assert status["speaking"] and status["answering"] == reply["id"] and status["ticks"] > 0
            async with http.post(f"{base}/interrupt", headers=auth) as r:
                faded_at = (await r.json())["faded_at_tick"]
            async with http.get(f"{base}/status", headers=auth) as r:
                assert (await r.json())["speaking"] is None
            await asyncio.sleep(2.5)  # silence after the interrupt is checked below

            async with http.post(f"{base}/pause", headers=auth) as r:
                assert (await r.json())["paused"] is True
            async with http.post(f"{base}/say", headers=auth, json={"text": "Flash sale in five minutes!"}) as r:
                assert r.status == 200
            await asyncio.sleep(1.0)
            assert not any(e["source"] == "operator" for e in app.playback_log)  # paused: nothing new is said
            async with http.post(f"{base}/resume", headers=auth) as r:
                assert r.status == 200
            assert await _wait_for(lambda: any(e["source"] == "operator" and e["text"] == "Flash sale in five minutes!"
                                               for e in app.playback_log), 10)
            async with http.post(f"{base}/say", headers=auth, data=b"not json") as r:
                assert r.status == 400
            remaining = 20.0 - (time.monotonic() - t_start)
            await asyncio.sleep(max(1.0, remaining))
    finally:
        await control.stop()
        await app.stop()

    cam = RecordingCamera.instances[-1]
    assert cam.closed == 1
    cam_worker = next(w for w in app.workers if w.sink.name == "camera")
    # the camera got the clock's frames (the pace itself is measured by benchmarks/bench_clock.py)
    assert len(cam.arrivals) + cam_worker.dropped >= app.clock.ticks - 8 and app.clock.ticks > 10 * FPS

    frames, audio, fps, rate = read_mp4(next(rec.glob("streamer-*.mp4")))
    spf = rate // FPS
    assert fps == FPS and abs(len(frames) / fps - len(audio) / rate) <= 1 / fps

    def loudness(tick):
        return np.abs(audio[tick * spf:(tick + 1) * spf]).max()

    assert start_tick < faded_at
    speech = [loudness(t) for t in range(start_tick, faded_at)]
    assert max(speech) > 0.2 and np.mean(np.array(speech) > 0.01) > 0.5  # the answer was heard
    # what the clock sends: exact silence from the frame after the fade frame
    assert peaks.peaks[faded_at - 1] > 0 or peaks.peaks[faded_at] > 0
    assert all(peaks.peaks[t] == 0.0 for t in range(faded_at + 1, faded_at + 2 * FPS))
    # what the recording holds: silent too (AAC's overlap leaves only a trace below -50 dBFS)
    after = [loudness(t) for t in range(faded_at + 1, faded_at + 2 * FPS)]
    assert max(after) < 3e-3, "audio must be silent from the frame after the interrupt"
    assert len(frames) > faded_at + 3 * FPS  # and the stream carried on, idle
