"""The audio-device sink: the host's voice to a named sound output through PortAudio (sounddevice).

For machines without PulseAudio: VB-Cable on Windows ("CABLE Input"), BlackHole on macOS
("BlackHole 2ch"), or any ALSA/PipeWire device on Linux; the other side of the cable is the
microphone OBS or a meeting app records. The device is picked by (part of) its name in the profile;
``streamer doctor`` lists the output devices. Writes block at the device's pace in this sink's own
thread; the device's clock drifts against ours, so the buffer level is steered back to the target
during idle with the same drift corrector as the PulseAudio sink (speech is never stretched).
A device that vanishes is reopened with backoff.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from streamer.sinks.base import Sink, SinkUnavailable, Tick
from streamer.sinks.drift import DriftCorrector
from streamer.sinks.reopen import Reopener

log = logging.getLogger(__name__)

EXTRA_HINT = "pip install 'streamer[audio]' (sounddevice; on Linux also: sudo apt-get install libportaudio2)"


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError:
        raise SinkUnavailable(f"sounddevice is not installed: {EXTRA_HINT}") from None
    except OSError as e:  # the package is there, the PortAudio library is not
        raise SinkUnavailable(f"PortAudio library missing ({e}): {EXTRA_HINT}") from None
    return sounddevice


def output_devices() -> list[tuple[int, str, str]]:
    """(index, name, host API) of every output device PortAudio sees."""
    sd = _sounddevice()
    apis = [api["name"] for api in sd.query_hostapis()]
    return [(i, d["name"], apis[d["hostapi"]]) for i, d in enumerate(sd.query_devices())
            if d["max_output_channels"] > 0]


def find_device(name: str) -> int | None:
    """The output device whose name matches ``name`` (exactly, else as a case-insensitive part);
    None for the default output. SinkUnavailable, listing what exists, when nothing matches."""
    if not name:
        return None
    devices = output_devices()
    for i, dev, _ in devices:
        if dev == name:
            return i
    for i, dev, _ in devices:
        if name.lower() in dev.lower():
            return i
    listing = "; ".join(dev for _, dev, _ in devices) or "none"
    raise SinkUnavailable(f"no sound output device matches {name!r} (found: {listing}); on Windows install "
                          "VB-Cable, on macOS BlackHole, then set [outputs.audio_device] device")


class AudioDeviceSink(Sink):
    name = "audio_device"

    def __init__(self, device: str, sample_rate: int, latency_ms: float = 100.0) -> None:
        self.device_name = device
        self.rate = sample_rate
        self.latency_s = latency_ms / 1000.0
        self.corrector = DriftCorrector(sample_rate, self.latency_s)
        self.muted = threading.Event()
        self.reopener = Reopener(self.name)
        self.stream: Any = None
        self.device: int | None = None
        self.written = 0
        self.underflows = 0
        self._t0 = 0.0

    def open(self) -> None:
        self.device = find_device(self.device_name)
        self._start()
        self.reopener.up()

    def _start(self) -> None:
        sd = _sounddevice()
        self.stream = sd.OutputStream(samplerate=self.rate, channels=1, dtype="float32", device=self.device,
                                      latency=self.latency_s)
        self.stream.start()
        self._t0, self.written = self.stream.time, 0
        info = sd.query_devices(self.stream.device)
        log.info("audio device open", extra={"device": info["name"], "latency_ms": round(self.stream.latency * 1000)})

    def buffered_s(self) -> float:
        """Audio written but not yet played, by the device's own clock."""
        return max(0.0, self.written / self.rate - (self.stream.time - self._t0))

    def _send(self, tick: Tick) -> None:
        audio = np.zeros_like(tick.audio) if self.muted.is_set() else tick.audio
        chunk = self.corrector.adjust(audio, self.buffered_s(), tick.speaking)
        if self.stream.write(np.ascontiguousarray(chunk, dtype=np.float32).reshape(-1, 1)):
            self.underflows += 1
        self.written += chunk.size

    def write(self, tick: Tick) -> None:
        self.reopener.deliver(lambda: self._send(tick), self._start, self.close)

    def close(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            stream.stop()
            stream.close()

    def mute(self, muted: bool) -> None:
        (self.muted.set if muted else self.muted.clear)()

    def request_reopen(self) -> bool:
        self.reopener.request()
        return True

    def status(self) -> dict[str, object]:
        return {"device": self.device_name or "default", "muted": self.muted.is_set(), "underflows": self.underflows,
                "latency_ms": round(self.buffered_s() * 1000, 1) if self.stream is not None else None,
                "drift_dropped": self.corrector.dropped, "drift_inserted": self.corrector.inserted,
                **self.reopener.status()}
