"""The extra outputs against real things on loopback: an RTMP listener (ffmpeg), PulseAudio through
PortAudio's ALSA "pulse" device, and a camera device that disappears (pyvirtualcam's backend registry)."""

import logging
import shutil
import signal
import socket
import subprocess
import time

import av
import numpy as np
import pytest

from streamer.sinks.base import SinkUnavailable, SinkWorker, Tick
from streamer.sinks.camera import VirtualCameraSink
from streamer.sinks.rtmp import RtmpSink, redact, resolve_url
from tests.conftest import wait_until_recording

W, H, FPS, RATE = 320, 180, 25, 48000
SPF = RATE // FPS


def _tick(i, tone=440.0):
    t = (np.arange(SPF) + i * SPF) / RATE
    frame = np.zeros((H, W, 3), np.uint8)
    frame[:, : (i * 7) % W] = (220, 40, 40)
    return Tick(i, frame, (0.4 * np.sin(2 * np.pi * tone * t)).astype(np.float32), True, i / FPS)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listener(port, out):
    return subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-probesize", "32768",
                             "-analyzeduration", "500000", "-listen", "1", "-timeout", "30", "-i", f"rtmp://127.0.0.1:{port}/live/x", "-c", "copy", "-f", "flv", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_listening(port, proc, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        # the probe itself was the listener's one connection for some ffmpeg builds: wait and check it lives
        return True
    return False


def _decode(path):
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]).astype(np.float32)
    return frames, audio


def _tone_share(audio, rate=RATE, tone=440.0):
    spec = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    freqs = np.fft.rfftfreq(audio.size, 1 / rate)
    band = (freqs > tone - 20) & (freqs < tone + 20)
    return spec[band].sum() / spec.sum()


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")


def test_stream_key_comes_from_the_environment_and_is_never_shown():
    url = resolve_url("rtmp://live.example.com/app/{key}", "MY_KEY", {"MY_KEY": "sk-secret-123"})
    assert url == "rtmp://live.example.com/app/sk-secret-123"
    assert "secret" not in redact(url) and redact(url) == "rtmp://live.example.com/app/***"
    with pytest.raises(SinkUnavailable, match="MY_KEY"):
        resolve_url("rtmp://live.example.com/app/{key}", "MY_KEY", {})
    with pytest.raises(SinkUnavailable, match="rtmp://"):
        resolve_url("http://live.example.com/app/x", "MY_KEY", {})


@pytest.mark.slow
@needs_ffmpeg
def test_rtmp_round_trip_and_reconnect_after_the_server_drops(tmp_path):
    port = _free_port()
    first, second = tmp_path / "first.flv", tmp_path / "second.flv"
    server = _listener(port, first)
    sink = RtmpSink(f"rtmp://127.0.0.1:{port}/live/x", W, H, FPS, RATE, preset="ultrafast", first_backoff_s=0.2,
                    max_backoff_s=0.5)
    try:
        time.sleep(0.5)
        for _ in range(40):  # ffmpeg needs a moment before it listens
            sink.open()
            if sink.reopener.state == "live":
                break
            time.sleep(0.25)
        assert sink.reopener.state == "live", sink.status()
        outages = sink.reopener.outages
        for i in range(50):
            sink.write(_tick(i))
        server.send_signal(signal.SIGINT)  # the server drops us mid-stream (and keeps what it got)
        second_server = None
        i = 50
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sink.reopener.state == "live":
            sink.write(_tick(i))  # ffmpeg notices the signal at its next read
            i += 1
            time.sleep(0.01)
        assert sink.reopener.state == "down" and sink.reopener.outages == outages + 1
        server.wait(20)
        second_server = _listener(port, second)
        while time.monotonic() < deadline and sink.status()["connections"] < 2:
            sink.write(_tick(i))  # skipped and counted while down, then reconnects
            i += 1
            time.sleep(0.02)
        assert sink.status()["connections"] == 2 and sink.reopener.state == "live" and sink.reopener.reopens >= 1
        assert sink.reopener.skipped > 0
        for j in range(i, i + 50):
            sink.write(_tick(j))
        sink.close()
        second_server.wait(20)
    finally:
        sink.close()
        for proc in (server, locals().get("second_server")):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    frames, audio = _decode(first)
    assert len(frames) >= 25
    frames2, audio2 = _decode(second)
    assert len(frames2) >= 45  # the new connection carries the stream on
    assert abs(frames2[-1][H // 2, 2].astype(int) - (220, 40, 40)).max() < 40  # the red bar arrived
    assert audio2.size >= 45 * SPF * 0.9 and _tone_share(audio2[: 40 * SPF]) > 0.5


def test_an_rtmp_server_that_refuses_costs_one_log_line_and_never_blocks(caplog):
    port = _free_port()  # nothing listens here
    sink = RtmpSink(f"rtmp://127.0.0.1:{port}/live/x", W, H, FPS, RATE, first_backoff_s=30)
    caplog.set_level(logging.WARNING)
    sink.open()
    assert sink.reopener.state == "down" and sink.reopener.error
    started = time.monotonic()
    for i in range(250):
        sink.write(_tick(i))
    assert time.monotonic() - started < 5  # generous: skipping a tick is a clock read, not a network wait
    assert sink.reopener.skipped == 250
    lines = [r for r in caplog.records if "RTMP" in r.getMessage() or "sink lost" in r.getMessage()]
    assert len(lines) == 1 and str(port) not in "".join(str(v) for v in vars(lines[0]).values() if v == "x")
    sink.close()


class FlakyCamera:
    """pyvirtualcam backend: the first device vanishes after 10 frames (unplugged); reopening works."""

    instances: list["FlakyCamera"] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.frames, self.closed = [], 0
        FlakyCamera.instances.append(self)

    def send(self, frame):
        if len(FlakyCamera.instances) == 1 and len(self.frames) >= 10:
            raise OSError("No such device")
        self.frames.append(frame[:3].copy())  # pyvirtualcam hands the backend a flat array

    def close(self):
        self.closed += 1

    def device(self):
        return f"/dev/video-flaky{len(FlakyCamera.instances)}"

    def native_fourcc(self):
        return None


@pytest.fixture
def flaky_backend(monkeypatch):
    """Registered for this test only: a backend left registered would be found by later tests'
    ``Camera(backend=None)`` (doctor would then see a camera here)."""
    camera = pytest.importorskip("pyvirtualcam.camera")
    monkeypatch.setitem(camera.BACKENDS, "flaky-test", FlakyCamera)


def test_camera_that_disappears_is_reopened_without_touching_other_sinks(flaky_backend):
    FlakyCamera.instances.clear()
    cam = VirtualCameraSink(W, H, FPS, backend="flaky-test")
    cam.reopener.first_delay_s = 0.0
    worker = SinkWorker(cam)
    worker.start()
    assert worker.wait_open(10)
    for i in range(30):
        worker.push(_tick(i))
        time.sleep(0.01)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and worker.written < 30:
        time.sleep(0.02)
    worker.stop(5)
    first, second = FlakyCamera.instances[:2]
    assert len(first.frames) == 10 and first.closed >= 1
    assert len(second.frames) >= 15 and worker.failed is None
    st = cam.status()
    assert st["reopens"] == 1 and st["outages"] == 1 and st["skipped"] >= 1 and st["state"] == "live"


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="flaky, under investigation: through ALSA's pulse plugin only the first "
                   "8 ticks (0.32 s) of tone sometimes reach the sink's monitor (2 of 3 runs in a fresh clone on "
                   "2026-11-22); the PulseAudio microphone sink, what Linux users use, is tested in test_microphone")
def test_sound_device_sink_plays_through_portaudio_into_pulseaudio(pulse_sink, monkeypatch):
    sd = pytest.importorskip("sounddevice")
    from streamer.sinks.audio_device import AudioDeviceSink, find_device

    if not any("pulse" in d["name"] for d in sd.query_devices()):
        pytest.skip("PortAudio has no ALSA 'pulse' device (apt-get install libasound2-plugins)")
    with pytest.raises(SinkUnavailable, match="VB-Cable"):
        find_device("CABLE Input (nonexistent)")
    monkeypatch.setenv("PULSE_SINK", pulse_sink)  # the ALSA pulse plugin plays into this sink
    rec = subprocess.Popen(["parec", "-d", f"{pulse_sink}.monitor", "--format=float32le", "--rate=48000",
                            "--channels=1", "--latency-msec=20"], stdout=subprocess.PIPE)
    sink = AudioDeviceSink("pulse", RATE, 80)
    try:
        wait_until_recording(f"{pulse_sink}.monitor")
        sink.open()
        for i in range(50):  # 2 s of tone, written at the device's pace
            sink.write(_tick(i))
        sink.muted.set()
        for i in range(50, 75):
            sink.write(_tick(i))
        time.sleep(0.5)
    finally:
        sink.close()
        rec.terminate()
    heard = np.frombuffer(rec.communicate(timeout=10)[0], np.float32)
    loud = np.flatnonzero(np.abs(heard) > 0.1)
    assert loud.size > RATE  # more than a second of the tone arrived
    assert _tone_share(heard[loud[0]: loud[0] + RATE]) > 0.5
    tail = heard[loud[-1] + RATE // 10:]
    assert tail.size > RATE // 4 and np.abs(tail).max() < 0.01  # muted: silence followed
    assert sink.status()["state"] == "live"


@pytest.mark.slow
@needs_ffmpeg
async def test_in_the_app_a_refusing_rtmp_server_leaves_the_other_outputs_whole(tmp_path, monkeypatch):
    """RTMP, stage, preview and a capture sink run together; RTMP has no server at first: it is down
    and counts skipped ticks while the capture sink gets every tick; then a server appears and RTMP
    goes live on its own; /metrics and the status say so all along."""
    import asyncio

    import aiohttp

    from streamer.app import App
    from streamer.config import load_settings
    from streamer.control import ControlServer
    from tests.conftest import write_config
    from tests.test_control_live import PROFILE, TOKEN, _wait_for
    from tests.test_panel_browser import Peaks

    port = _free_port()
    body = PROFILE.replace("{TMP}", str(tmp_path)).replace("{KIND}", "scripted").replace("{LLM}", "") + f"""
[outputs.rtmp]
enabled = true
url = "rtmp://127.0.0.1:{port}/live/{{key}}"
key_env = "OPERATOR_TEST_RTMP_KEY"
max_backoff_s = 1
[outputs.stage]
enabled = true
"""
    monkeypatch.setenv("OPERATOR_TEST_RTMP_KEY", "x")
    peaks = Peaks()
    app = App(load_settings(write_config(tmp_path, body), environ={}), extra_sinks=[peaks])
    control = ControlServer(app, "127.0.0.1", 0, TOKEN)
    await app.start()
    await control.start()
    server = None
    try:
        assert await _wait_for(lambda: app.status()["sinks"]["rtmp"]["skipped"] > 25, 30)
        rtmp = app.status()["sinks"]["rtmp"]
        assert rtmp["state"] == "down" and rtmp["ok"] and "x" not in rtmp["url"].rsplit("/", 1)[1]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            metrics = await (await http.get(f"{control.url}/metrics")).text()
            assert 'streamer_sink_up{sink="rtmp"} 0' in metrics and 'streamer_sink_up{sink="peaks"} 1' in metrics
            server = _listener(port, tmp_path / "late.flv")
            assert await _wait_for(lambda: app.status()["sinks"]["rtmp"]["state"] == "live", 40)
            await asyncio.sleep(1.0)
            metrics = await (await http.get(f"{control.url}/metrics")).text()
            assert 'streamer_sink_up{sink="rtmp"} 1' in metrics
        ticks = sorted(peaks.peaks)
        assert ticks == list(range(ticks[0], ticks[-1] + 1))  # the capture sink missed nothing meanwhile
        assert app.status()["sinks"]["peaks"]["dropped"] == 0
    finally:
        await control.stop()
        await app.stop()
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(server.wait, 20)
            except subprocess.TimeoutExpired:
                server.kill()
    frames, _ = _decode(tmp_path / "late.flv")
    assert len(frames) > 10
