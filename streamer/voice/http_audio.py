"""Shared by the HTTP voices (GPT-SoVITS, CosyVoice, OpenAI-compatible speech): one request, audio
streamed back as 16-bit PCM (raw, or behind a streaming WAV header), decoded chunk by chunk.

A session per request: the voice may be driven from the app's loop or from ``asyncio.run`` in a
worker (``streamer say``), and a session belongs to one loop. On loopback the cost is nil.
"""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from streamer.voice.audio import int16_to_float
from streamer.voice.base import TTSError


class PcmStream:
    """Bytes in, float32 out; keeps an odd trailing byte for the next chunk. ``wav=True`` first reads a
    RIFF header (a streaming one, with a zero or bogus data size) and takes the sample rate from it."""

    def __init__(self, rate: int, wav: bool = False) -> None:
        self.rate = rate
        self._header = wav
        self._buf = b""

    def feed(self, data: bytes) -> np.ndarray:
        self._buf += data
        if self._header:
            if len(self._buf) < 44:
                return np.zeros(0, dtype=np.float32)
            self._read_header()
            if self._header:
                return np.zeros(0, dtype=np.float32)
        n = len(self._buf) // 2 * 2
        out, self._buf = self._buf[:n], self._buf[n:]
        return int16_to_float(out) if n else np.zeros(0, dtype=np.float32)

    def _read_header(self) -> None:
        buf = self._buf
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise TTSError(f"expected WAV audio, got {buf[:16]!r}")
        pos = 12
        while pos + 8 <= len(buf):
            cid, size = buf[pos:pos + 4], struct.unpack("<I", buf[pos + 4:pos + 8])[0]
            if cid == b"fmt ":
                if pos + 8 + 16 > len(buf):
                    return
                channels, rate, _, _, bits = struct.unpack("<HIIHH", buf[pos + 10:pos + 24])
                if bits != 16 or channels != 1:
                    raise TTSError(f"expected 16-bit mono WAV, got {bits}-bit, {channels} channel(s)")
                self.rate = rate
            elif cid == b"data":
                self._buf = buf[pos + 8:]
                self._header = False
                return
            pos += 8 + size + (size & 1)


async def stream_response(response: Any, pcm: PcmStream, chunk_bytes: int = 9600
                          ) -> AsyncIterator[tuple[np.ndarray, int]]:
    """An aiohttp response's body as float32 chunks; an HTTP error becomes a TTSError with the server's reason."""
    if response.status != 200:
        raise TTSError(f"HTTP {response.status}: {await _reason(response)}")
    ctype = response.headers.get("Content-Type", "")
    if ctype.startswith(("application/json", "text/")):
        raise TTSError(f"expected audio, got {ctype}: {await _reason(response)}")
    async for data in response.content.iter_chunked(chunk_bytes):
        out = pcm.feed(data)
        if out.size:
            yield out, pcm.rate


async def _reason(response: Any) -> str:
    body = (await response.read())[:400]
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)[:300]
    except ValueError:
        return body.decode("utf-8", "replace")[:300]


def reference_file(path: str, what: str) -> Path:
    """A persona's reference audio: it must exist before the stream starts, not at the first sentence."""
    if not path:
        raise TTSError(f"{what} needs reference audio: set reference_audio in the persona's [voice] table")
    p = Path(path).expanduser()
    if not p.is_file():
        raise TTSError(f"{what}: reference audio not found: {p}")
    return p
