"""The RTMP sink: H.264 + AAC in FLV, pushed to a live platform's ingest (PyAV).

The push runs in the sink's own thread. A server that refuses or drops us never stalls the clock:
the failed write closes the connection, which is reopened with exponential backoff (``streamer.sinks.reopen``), and the ticks in between are skipped and counted;
a network slower than the stream fills the worker's small queue, which drops its oldest ticks
(counted as dropped). (PyAV opens the output without a timeout, so a server that keeps the
connection open but stops reading holds this sink, and only this sink, until TCP gives up.) Each connection is a fresh FLV stream whose timestamps start at zero and come
from tick and sample counts, so audio and video stay locked.

The stream key usually lives in the environment: ``url = "rtmp://host/app/{key}"`` with the key in
the variable named by ``key_env``. The URL with its key is never logged.
"""

from __future__ import annotations

import logging
import os
import re
import time
import urllib.parse
from fractions import Fraction
from typing import Any

import av
import numpy as np

from streamer.sinks.base import Sink, SinkUnavailable, Tick
from streamer.sinks.reopen import Reopener
from streamer.voice.audio import float_to_int16

log = logging.getLogger(__name__)


def resolve_url(url: str, key_env: str, environ: dict[str, str] | None = None) -> str:
    """The push URL with ``{key}`` filled from the environment; SinkUnavailable when it cannot be."""
    env = os.environ if environ is None else environ
    if not url:
        raise SinkUnavailable("[outputs.rtmp] url is empty: set it to rtmp://HOST/APP/{key}")
    if not url.startswith(("rtmp://", "rtmps://")):
        raise SinkUnavailable(f"[outputs.rtmp] url must start with rtmp:// or rtmps:// (got {redact(url)})")
    if "{key}" in url:
        key = env.get(key_env, "").strip()
        if not key:
            raise SinkUnavailable(f"[outputs.rtmp] url needs a stream key: set the environment variable {key_env}")
        url = url.replace("{key}", key)
    return url


def redact(url: str) -> str:
    """The URL without its stream key (the last path element) or credentials: safe to log."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    path = re.sub(r"/[^/]+$", "/***", parts.path) if parts.path.count("/") >= 2 else parts.path
    return f"{parts.scheme}://{host}{path}"


class FlvPush:
    """One connection: encoders and the FLV muxer writing to the server."""

    def __init__(self, url: str, width: int, height: int, fps: int, rate: int, preset: str, video_kbps: int,
                 audio_kbps: int) -> None:
        self.container: Any = av.open(url, mode="w", format="flv")
        v = self.container.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.bit_rate = video_kbps * 1000
        v.codec_context.time_base = Fraction(1, fps)
        v.options = {"preset": preset, "tune": "zerolatency", "g": str(2 * fps), "keyint_min": str(fps),
                     "maxrate": f"{video_kbps}k", "bufsize": f"{2 * video_kbps}k"}
        a = self.container.add_stream("aac", rate=rate, layout="mono")
        a.bit_rate = audio_kbps * 1000
        self.v, self.a, self.rate = v, a, rate
        self.frames = self.samples = 0
        self.container.start_encoding()  # connects now: a refusing server fails here, not at the first frame

    def write(self, frame: np.ndarray, audio: np.ndarray) -> None:
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts, vf.time_base = self.frames, self.v.codec_context.time_base
        self.frames += 1
        for packet in self.v.encode(vf):
            self.container.mux(packet)
        af = av.AudioFrame.from_ndarray(float_to_int16(audio).reshape(1, -1), format="s16", layout="mono")
        af.sample_rate, af.pts, af.time_base = self.rate, self.samples, Fraction(1, self.rate)
        self.samples += audio.size
        for packet in self.a.encode(af):
            self.container.mux(packet)

    def close(self) -> None:
        try:
            for stream in (self.v, self.a):
                for packet in stream.encode(None):
                    self.container.mux(packet)
        finally:
            self.container.close()


class RtmpSink(Sink):
    name = "rtmp"

    def __init__(self, url: str, width: int, height: int, fps: int, sample_rate: int, *, key_env: str = "",
                 preset: str = "ultrafast", video_kbps: int = 2500, audio_kbps: int = 128,
                 max_backoff_s: float = 30.0, first_backoff_s: float = 1.0) -> None:
        self.url_template, self.key_env = url, key_env
        self.size, self.fps, self.rate = (width, height), fps, sample_rate
        self.preset, self.video_kbps, self.audio_kbps = preset, video_kbps, audio_kbps
        self.push: FlvPush | None = None
        self.url = ""
        self.reopener = Reopener(self.name, first_backoff_s, max_backoff_s)
        self.connections = 0
        self._writing_since = 0.0

    def open(self) -> None:
        self.url = resolve_url(self.url_template, self.key_env)  # a config mistake: SinkUnavailable, said once
        try:
            self._connect()
        except Exception as e:  # the server is not there yet: keep streaming elsewhere, retry with backoff
            self.reopener.down(e)
            return
        self.reopener.up()

    def _connect(self) -> None:
        self.push = FlvPush(self.url, *self.size, self.fps, self.rate, self.preset, self.video_kbps,
                            self.audio_kbps)
        self.connections += 1
        log.info("RTMP connected", extra={"url": redact(self.url), "preset": self.preset,
                                          "connection": self.connections})

    def write(self, tick: Tick) -> None:
        self.reopener.deliver(lambda: self._send(tick), self._connect, self.close)

    def _send(self, tick: Tick) -> None:
        assert self.push is not None
        self._writing_since = time.monotonic()
        try:
            self.push.write(tick.frame, tick.audio)
        finally:
            self._writing_since = 0.0

    def close(self) -> None:
        if self.push is not None:
            push, self.push = self.push, None
            push.close()

    STALL_S = 5.0

    def request_reopen(self) -> bool:
        self.reopener.request()
        return True

    def status(self) -> dict[str, object]:
        state = self.reopener.status()
        since = self._writing_since
        if since and time.monotonic() - since > self.STALL_S:  # the server stopped reading: say so
            state |= {"state": "stalled", "error": f"the server has not accepted data for "
                                                   f"{time.monotonic() - since:.0f} s"}
        return {"url": redact(self.url) if self.url else "", "connections": self.connections, **state}
