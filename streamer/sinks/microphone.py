"""The virtual microphone sink: the host's voice into a PulseAudio (or PipeWire-pulse) sink.

Other programs (OBS, Zoom, a browser) record the sink's monitor as a microphone. If the configured
sink does not exist, a null sink of that name is created (and removed on close) together with a
remapped source ``<name>_input`` that apps list as an ordinary microphone. Audio goes through
libpulse-simple (ctypes, no extra package); its measured latency drives the drift corrector.

A sink that disappears (PulseAudio restarted, the module unloaded) would silently move our stream to the
default sink (the speakers): every ``check_every_s`` the sink's name and index are checked, and a sink that
is gone or was replaced is reconnected (re-created when we made it) with backoff, counted in status; the
other outputs are untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import shutil
import subprocess
import threading

import numpy as np

from streamer.sinks.base import Sink, SinkUnavailable, Tick
from streamer.sinks.drift import DriftCorrector
from streamer.sinks.reopen import Reopener
from streamer.voice.audio import float_to_int16

log = logging.getLogger(__name__)

PA_SAMPLE_S16LE = 3
PA_STREAM_PLAYBACK = 1


class _SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8)]


class _BufferAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("maxlength", "tlength", "prebuf", "minreq", "fragsize")]


def _libs() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    simple = ctypes.util.find_library("pulse-simple") or "libpulse-simple.so.0"
    pulse = ctypes.util.find_library("pulse") or "libpulse.so.0"
    try:
        s, p = ctypes.CDLL(simple), ctypes.CDLL(pulse)
    except OSError:
        raise SinkUnavailable("PulseAudio client library missing: sudo apt-get install pulseaudio") from None
    s.pa_simple_new.restype = ctypes.c_void_p
    s.pa_simple_new.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.POINTER(_SampleSpec), ctypes.c_void_p, ctypes.POINTER(_BufferAttr),
                                ctypes.POINTER(ctypes.c_int)]
    s.pa_simple_write.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]
    s.pa_simple_get_latency.restype = ctypes.c_uint64
    s.pa_simple_get_latency.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    s.pa_simple_drain.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    s.pa_simple_free.argtypes = [ctypes.c_void_p]
    p.pa_strerror.restype = ctypes.c_char_p
    p.pa_strerror.argtypes = [ctypes.c_int]
    return s, p


def _pactl(*args: str) -> str:
    exe = shutil.which("pactl")
    if exe is None:
        raise SinkUnavailable("pactl not found: sudo apt-get install pulseaudio-utils (or pipewire-pulse)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=10, check=False)
    if proc.returncode != 0:
        raise SinkUnavailable(f"pactl {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}"
                              " (is PulseAudio running? 'pulseaudio -D --exit-idle-time=-1')")
    return proc.stdout


class VirtualMicrophoneSink(Sink):
    name = "microphone"

    def __init__(self, sink_name: str, sample_rate: int, target_latency_ms: float = 150.0,
                 create: bool = True, check_every_s: float = 2.0) -> None:
        self.sink_name = sink_name
        self.rate = sample_rate
        self.target_s = target_latency_ms / 1000.0
        self.create = create
        self.corrector = DriftCorrector(sample_rate, self.target_s)
        self._modules: list[str] = []
        self._pa: int | None = None
        self._simple: ctypes.CDLL | None = None
        self._pulse: ctypes.CDLL | None = None
        self.latency_s = 0.0
        self.muted = threading.Event()
        """Set by the operator's mute command: silence goes out, the stream and its timing go on."""
        self.reopener = Reopener(self.name, first_delay_s=0.5, max_delay_s=10.0)
        self._check_samples = int(check_every_s * sample_rate)
        self._since_check = 0
        self._sink_index = ""

    def _index(self) -> str:
        """The PulseAudio index of our sink, "" when there is none of that name."""
        for line in _pactl("list", "short", "sinks").splitlines():
            parts = line.split("\t")
            if len(parts) > 1 and parts[1] == self.sink_name:
                return parts[0]
        return ""

    def _ensure_sink(self) -> None:
        if self._index():
            return
        if not self.create:
            raise SinkUnavailable(f"PulseAudio sink {self.sink_name!r} not found: pactl load-module "
                                  f"module-null-sink sink_name={self.sink_name}")
        mod = _pactl("load-module", "module-null-sink", f"sink_name={self.sink_name}",
                     f"sink_properties=device.description={self.sink_name}").strip()
        self._modules.append(mod)
        try:
            src = _pactl("load-module", "module-remap-source", f"master={self.sink_name}.monitor",
                         f"source_name={self.sink_name}_input",
                         f"source_properties=device.description={self.sink_name}_microphone").strip()
            self._modules.append(src)
        except SinkUnavailable as e:
            log.info("no remapped microphone source; use the sink's monitor", extra={"reason": str(e)})
        log.info("created virtual microphone", extra={"sink": self.sink_name})

    def open(self) -> None:
        self._connect()
        self.reopener.up()

    def _connect(self) -> None:
        self._simple, self._pulse = _libs()
        self._ensure_sink()
        self._sink_index = self._index()
        spec = _SampleSpec(PA_SAMPLE_S16LE, self.rate, 1)
        bytes_per_s = self.rate * 2
        attr = _BufferAttr(0xFFFFFFFF, int(bytes_per_s * self.target_s * 2), 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        err = ctypes.c_int(0)
        pa = self._simple.pa_simple_new(None, b"streamer", PA_STREAM_PLAYBACK, self.sink_name.encode(), b"host voice",
                                        ctypes.byref(spec), None, ctypes.byref(attr), ctypes.byref(err))
        if not pa:
            raise SinkUnavailable(f"cannot open PulseAudio sink {self.sink_name!r}: {self._strerror(err.value)}")
        self._pa = pa

    def _strerror(self, code: int) -> str:
        return self._pulse.pa_strerror(code).decode() if self._pulse else str(code)

    def write(self, tick: Tick) -> None:
        self.reopener.deliver(lambda: self._send(tick), self._connect, self._disconnect)

    def _send(self, tick: Tick) -> None:
        assert self._simple is not None and self._pa is not None
        self._since_check += tick.audio.size
        if self._since_check >= self._check_samples:
            self._since_check = 0
            if self._index() != self._sink_index:
                raise RuntimeError(f"PulseAudio sink {self.sink_name!r} was removed or replaced")
        err = ctypes.c_int(0)
        latency_us = self._simple.pa_simple_get_latency(self._pa, ctypes.byref(err))
        if latency_us != 2**64 - 1:
            self.latency_s = latency_us / 1e6
        audio = np.zeros_like(tick.audio) if self.muted.is_set() else tick.audio
        chunk = self.corrector.adjust(audio, self.latency_s, tick.speaking)
        data = float_to_int16(chunk).tobytes()
        if data and self._simple.pa_simple_write(self._pa, data, len(data), ctypes.byref(err)) < 0:
            raise RuntimeError(f"PulseAudio write failed: {self._strerror(err.value)}")

    def _disconnect(self) -> None:
        """Drop the stream (not the modules: a sink we created and lost is created again on reconnect)."""
        if self._pa is not None and self._simple is not None:
            self._simple.pa_simple_free(self._pa)
            self._pa = None
        self._modules = [m for m in self._modules if self._module_loaded(m)]

    @staticmethod
    def _module_loaded(module: str) -> bool:
        try:
            return any(line.split("\t")[0] == module for line in _pactl("list", "short", "modules").splitlines())
        except SinkUnavailable:
            return False

    def close(self) -> None:
        if self._pa is not None and self._simple is not None:
            err = ctypes.c_int(0)
            self._simple.pa_simple_drain(self._pa, ctypes.byref(err))
            self._simple.pa_simple_free(self._pa)
            self._pa = None
        for mod in reversed(self._modules):
            try:
                _pactl("unload-module", mod)
            except SinkUnavailable:
                pass
        self._modules.clear()

    def mute(self, muted: bool) -> None:
        (self.muted.set if muted else self.muted.clear)()

    def status(self) -> dict[str, object]:
        return {"sink": self.sink_name, "muted": self.muted.is_set(), "latency_ms": round(self.latency_s * 1000, 1),
                "drift_dropped": self.corrector.dropped, "drift_inserted": self.corrector.inserted,
                **self.reopener.status()}

    def request_reopen(self) -> bool:
        self.reopener.request()
        return True
