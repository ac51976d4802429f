"""The virtual microphone against a real PulseAudio server: what we play is what a recorder hears."""

import subprocess
import time

import numpy as np
import pytest

from streamer.sinks.base import Tick
from streamer.sinks.microphone import VirtualMicrophoneSink

pytestmark = pytest.mark.slow
RATE, FPS = 48000, 25
SPF = RATE // FPS


def sinks():
    return subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True).stdout


def test_voice_reaches_the_virtual_microphone(pulse, tmp_path):
    name = "streamer_test_mic"
    sink = VirtualMicrophoneSink(name, RATE, target_latency_ms=100)
    sink.open()
    try:
        assert name in sinks()
        out = tmp_path / "heard.raw"
        with open(out, "wb") as f:
            rec = subprocess.Popen(["parec", "-d", f"{name}.monitor", "--format=s16le", f"--rate={RATE}",
                                    "--channels=1", "--raw", "--latency-msec=20"], stdout=f)
            try:
                tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
                n = 0
                silence = np.zeros(SPF, np.float32)
                for _ in range(3 * FPS):  # parec needs ~2 s to start recording
                    sink.write(Tick(n, np.zeros((2, 2, 3), np.uint8), silence, False, 0.0))
                    n += 1
                for i in range(FPS):
                    sink.write(Tick(n, np.zeros((2, 2, 3), np.uint8), tone[i * SPF:(i + 1) * SPF], True, 0.0))
                    n += 1
                for _ in range(2 * FPS):
                    sink.write(Tick(n, np.zeros((2, 2, 3), np.uint8), silence, False, 0.0))
                    n += 1
                time.sleep(0.5)
            finally:
                rec.terminate()
                rec.wait(5)
        assert 0 < sink.status()["latency_ms"] < 1000
    finally:
        sink.close()
    assert name not in sinks()  # the null sink we created is removed again
    heard = np.frombuffer(out.read_bytes(), np.int16).astype(np.float32) / 32768
    loud = np.abs(heard) > 0.1
    assert loud.any(), "nothing reached the microphone"
    span = (np.flatnonzero(loud)[-1] - np.flatnonzero(loud)[0]) / RATE
    assert span == pytest.approx(1.0, abs=0.05)
    seg = heard[np.flatnonzero(loud)[0]:np.flatnonzero(loud)[-1]]
    peak_hz = np.argmax(np.abs(np.fft.rfft(seg))) * RATE / len(seg)
    assert peak_hz == pytest.approx(440, abs=3)


def test_a_sink_that_disappears_is_reconnected_and_the_voice_comes_back(pulse, tmp_path):
    name = "streamer_test_mic_gone"
    sink = VirtualMicrophoneSink(name, RATE, target_latency_ms=100, check_every_s=0.2)
    sink.open()
    silence = np.zeros(SPF, np.float32)
    tone = (0.5 * np.sin(2 * np.pi * 660 * np.arange(SPF) / RATE)).astype(np.float32)
    n = 0

    def play(ticks, audio):
        nonlocal n
        for _ in range(ticks):
            sink.write(Tick(n, np.zeros((2, 2, 3), np.uint8), audio, True, 0.0))
            n += 1
            time.sleep(1 / FPS)

    try:
        play(FPS, silence)
        for module in list(sink._modules):  # someone unloads our virtual microphone (PulseAudio restart...)
            subprocess.run(["pactl", "unload-module", module], check=False, capture_output=True)
        assert name not in sinks()
        play(2 * FPS, silence)
        status = sink.status()
        assert status["outages"] == 1 and status["reopens"] == 1 and status["state"] == "live"
        assert name in sinks()  # created again
        out = tmp_path / "heard.raw"
        with open(out, "wb") as f:
            rec = subprocess.Popen(["parec", "-d", f"{name}.monitor", "--format=s16le", f"--rate={RATE}",
                                    "--channels=1", "--raw", "--latency-msec=20"], stdout=f)
            try:
                play(3 * FPS, silence)  # parec needs ~2 s to start recording
                play(FPS, tone)
                play(FPS, silence)
            finally:
                rec.terminate()
                rec.wait(5)
    finally:
        sink.close()
    assert name not in sinks()
    heard = np.frombuffer(out.read_bytes(), np.int16).astype(np.float32) / 32768
    assert (np.abs(heard) > 0.1).any(), "the voice did not come back on the re-created microphone"
