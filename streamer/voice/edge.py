"""edge-tts: Microsoft Edge's online neural voices (the usual choice of Chinese live hosts:
``zh-CN-XiaoxiaoNeural``, ``zh-CN-YunxiNeural``, ``en-US-AriaNeural``...).

Audio arrives as a 24 kHz MP3 stream over a websocket, decoded chunk by chunk, with a
``WordBoundary`` message per word (offset and duration in 100 ns ticks) that becomes a
:class:`WordBoundary` for subtitle timing and for "what was heard" after an interrupt. Rate, pitch and
volume are edge-tts's own prosody strings (``+10%``, ``-5Hz``).

It needs the internet; offline the name lookup fails within milliseconds and the chain moves on.
``voice.edge_url`` points the client at another endpoint that speaks the same protocol (a proxy, or
the local test server): it replaces the package's ``WSS_URL`` constant, the one place the package
reads it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import numpy as np

from streamer.voice.audio import Mp3Decoder
from streamer.voice.base import TTS, TTSError, WordBoundary, register
from streamer.voice.cache import SynthesisCache

INSTALL_HINT = "pip install 'streamer[edge]'  (edge-tts)"
DEFAULT_VOICES = {"zh": "zh-CN-XiaoxiaoNeural", "en": "en-US-AriaNeural"}
"""Female voices by default: the bundled drawn host is a woman."""
_VOICE_NAME = re.compile(r"^[a-z]{2,3}-[A-Z]{2,4}(?:-[A-Za-z]+)?-[A-Za-z]+(?:Multilingual)?Neural$")
_PROSODY = {"rate": re.compile(r"^[+-]\d+%$"), "volume": re.compile(r"^[+-]\d+%$"), "pitch": re.compile(r"^[+-]\d+Hz$")}
TICKS = 10_000_000


def voice_languages(voice: str) -> tuple[str, ...]:
    """Chinese voices (and the multilingual ones) read English words too; others their own language."""
    locale = voice.split("-")[0].lower()
    if locale == "zh" or "Multilingual" in voice:
        return ("zh", "en")
    return (locale,)


@register("edge")
class EdgeTTS(TTS):
    name = "edge"
    streams = True
    remote = True

    def __init__(self, output_rate: int, edge_voice: str = "", language: str = "en", rate: str = "+0%",
                 pitch: str = "+0Hz", edge_volume: str = "+0%", url: str = "", connect_timeout_s: int = 5,
                 receive_timeout_s: int = 20, volume: float = 1.0, loudness_lufs: float | None = None,
                 cache: SynthesisCache | None = None, **_: object) -> None:
        try:
            import edge_tts.communicate
        except ImportError:
            raise TTSError(f"edge-tts is not installed: {INSTALL_HINT}") from None
        voice = edge_voice or DEFAULT_VOICES.get(language[:2], DEFAULT_VOICES["en"])
        if not _VOICE_NAME.match(voice):
            raise TTSError(f"edge-tts voice {voice!r} is not a voice name (expected like zh-CN-XiaoxiaoNeural; "
                           "list them with: edge-tts --list-voices)")
        for key, value in (("rate", rate), ("volume", edge_volume), ("pitch", pitch)):
            if not _PROSODY[key].match(value):
                raise TTSError(f"edge-tts {key} {value!r} is not valid (expected like "
                               f"{'+10%' if key != 'pitch' else '+5Hz'})")
        super().__init__(output_rate, volume, languages=voice_languages(voice), loudness_lufs=loudness_lufs,
                         cache=cache)
        if url:
            edge_tts.communicate.WSS_URL = url
        self._edge = edge_tts
        self.voice, self.rate, self.pitch, self.edge_volume = voice, rate, pitch, edge_volume
        self.connect_timeout_s, self.receive_timeout_s = int(connect_timeout_s), int(receive_timeout_s)

    def describe(self) -> str:
        return f"edge-tts ({self.voice})"

    def cache_key(self) -> str:
        return f"edge:{self.voice}:{self.rate}:{self.pitch}:{self.edge_volume}"

    async def _stream_native(self, text: str) -> AsyncIterator[tuple[np.ndarray, int, list[WordBoundary]]]:
        comm = self._edge.Communicate(text, self.voice, rate=self.rate, volume=self.edge_volume, pitch=self.pitch,
                                      boundary="WordBoundary", connect_timeout=self.connect_timeout_s,
                                      receive_timeout=self.receive_timeout_s)
        decoder = Mp3Decoder()
        last_word = ""
        try:
            async for message in comm.stream():
                if message["type"] == "audio":
                    pcm = decoder.decode(message["data"])
                    if pcm.size:
                        yield pcm, decoder.rate, []
                elif message["type"] == "WordBoundary":
                    last_word = message["text"]
                    start = message["offset"] / TICKS
                    yield (np.zeros(0, dtype=np.float32), decoder.rate or 24000,
                           [WordBoundary(message["text"], start, start + message["duration"] / TICKS)])
        except self._edge.exceptions.NoAudioReceived:
            raise TTSError(f"edge-tts sent no audio (is {self.voice!r} a voice the service has?)") from None
        tail = decoder.flush()
        if tail.size:
            yield tail, decoder.rate, []
        if last_word and _ended_early(text, last_word):
            raise TTSError(f"edge-tts stream ended after {last_word!r}, before the end of the sentence")


def _ended_early(text: str, last_word: str) -> bool:
    """The service closed the socket without ``turn.end`` (edge-tts then just stops): the last word it
    timed lies well before the end of the text."""
    at = text.rfind(last_word)
    return 0 <= at and at + len(last_word) < 0.7 * len(text.rstrip())
