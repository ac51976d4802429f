"""GPT-SoVITS voice cloning through its HTTP API v2 (``api_v2.py``): reference audio + its transcript +
the text to say, streamed back.

``GET /tts?text=...&text_lang=...&ref_audio_path=...&prompt_text=...&prompt_lang=...&streaming_mode=...``.
The reference audio is a path on the server's disk (the persona file names it; the server usually runs
on this machine). With ``streaming_mode`` the server sends a WAV header (with the sample rate) and
then raw 16-bit PCM as it synthesises; a refused request is HTTP 400 with a JSON ``message``.
``text_lang = "auto"`` lets GPT-SoVITS read mixed Chinese and English itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np

from streamer.voice.base import TTS, TTSError, WordBoundary, register
from streamer.voice.cache import SynthesisCache
from streamer.voice.http_audio import PcmStream, reference_file, stream_response

_LANGS = {"zh": "zh", "en": "en", "ja": "ja", "ko": "ko", "yue": "yue", "auto": "auto"}


@register("gptsovits")
class GPTSoVITS(TTS):
    name = "gptsovits"
    streams = True
    remote = True

    def __init__(self, output_rate: int, url: str = "http://127.0.0.1:9880", reference_audio: str = "",
                 reference_text: str = "", reference_language: str = "zh", text_language: str = "auto",
                 streaming_mode: int = 2, speed: float = 1.0, timeout_s: float = 30.0, volume: float = 1.0,
                 loudness_lufs: float | None = None, cache: SynthesisCache | None = None, **_: object) -> None:
        super().__init__(output_rate, volume, languages=("zh", "en"), loudness_lufs=loudness_lufs, cache=cache)
        self.reference = reference_file(reference_audio, "GPT-SoVITS")
        for key, lang in (("reference_language", reference_language), ("text_language", text_language)):
            if lang not in _LANGS:
                raise TTSError(f"GPT-SoVITS {key} {lang!r}: expected one of {', '.join(_LANGS)}")
        self.url = url.rstrip("/")
        self.reference_text, self.reference_language = reference_text, reference_language
        self.text_language, self.streaming_mode, self.speed, self.timeout_s = (
            text_language, streaming_mode, speed, timeout_s)

    def describe(self) -> str:
        return f"GPT-SoVITS ({self.reference.name})"

    def cache_key(self) -> str:
        return f"gptsovits:{self.url}:{self.reference}:{self.reference_text}:{self.speed:g}"

    def params(self, text: str) -> dict[str, str]:
        return {"text": text, "text_lang": self.text_language, "ref_audio_path": str(self.reference.resolve()),
                "prompt_text": self.reference_text, "prompt_lang": self.reference_language,
                "text_split_method": "cut5", "media_type": "wav", "speed_factor": f"{self.speed:g}",
                "streaming_mode": str(self.streaming_mode)}

    async def _stream_native(self, text: str) -> AsyncIterator[tuple[np.ndarray, int, list[WordBoundary]]]:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(f"{self.url}/tts", params=self.params(text)) as response:
            async for pcm, rate in stream_response(response, PcmStream(32000, wav=True)):
                yield pcm, rate, []
