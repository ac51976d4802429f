"""OpenAI-compatible speech (``audio.speech`` through the ``openai`` client): hosted voices from OpenAI
or any server that implements ``POST /v1/audio/speech`` (many local TTS servers do).

Asks for ``response_format = "pcm"`` (raw 16-bit mono at 24 kHz), streamed, so speech can start on the
first bytes. The key comes from the environment variable named by ``voice.openai_api_key_env``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from streamer.voice.base import TTS, TTSError, WordBoundary, register
from streamer.voice.cache import SynthesisCache
from streamer.voice.http_audio import PcmStream

INSTALL_HINT = "pip install 'streamer[llm]'  (the openai package)"
RATE = 24000


@register("openai")
class OpenAISpeech(TTS):
    name = "openai"
    streams = True
    remote = True

    def __init__(self, output_rate: int, base_url: str = "", model: str = "gpt-4o-mini-tts", openai_voice: str = "nova",
                 api_key_env: str = "OPENAI_API_KEY", speed: float = 1.0, instructions: str = "",
                 timeout_s: float = 30.0, volume: float = 1.0, loudness_lufs: float | None = None,
                 cache: SynthesisCache | None = None, **_: object) -> None:
        try:
            import openai
        except ImportError:
            raise TTSError(f"the openai package is not installed: {INSTALL_HINT}") from None
        super().__init__(output_rate, volume, languages=("zh", "en"), loudness_lufs=loudness_lufs, cache=cache)
        self._openai = openai
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL", "")
        self.api_key = os.environ.get(api_key_env, "")
        if not self.api_key and not self.base_url:
            raise TTSError(f"OpenAI speech needs a key: set {api_key_env} (or a base_url of a local server)")
        self.model, self.voice, self.speed, self.instructions, self.timeout_s = (
            model, openai_voice, speed, instructions, timeout_s)

    def describe(self) -> str:
        return f"OpenAI speech ({self.model}, {self.voice})"

    def cache_key(self) -> str:
        return f"openai:{self.base_url}:{self.model}:{self.voice}:{self.speed:g}:{self.instructions}"

    async def _stream_native(self, text: str) -> AsyncIterator[tuple[np.ndarray, int, list[WordBoundary]]]:
        client = self._openai.AsyncOpenAI(base_url=self.base_url or None, api_key=self.api_key or "not-needed",
                                          max_retries=0, timeout=self.timeout_s)
        extra: dict[str, Any] = {"instructions": self.instructions} if self.instructions else {}
        pcm = PcmStream(RATE)
        try:
            async with client.audio.speech.with_streaming_response.create(
                    model=self.model, voice=self.voice, input=text, response_format="pcm", speed=self.speed,
                    **extra) as response:
                async for data in response.iter_bytes(9600):
                    out = pcm.feed(data)
                    if out.size:
                        yield out, RATE, []
        except self._openai.APIStatusError as e:
            raise TTSError(f"OpenAI speech: HTTP {e.status_code}: {str(e)[:200]}") from None
        finally:
            await client.close()
