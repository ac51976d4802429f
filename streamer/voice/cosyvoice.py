"""CosyVoice through its FastAPI server (``runtime/python/fastapi/server.py``): zero-shot cloning from a
reference clip, or one of the model's built-in speakers.

Routes (multipart form, GET or POST): ``/inference_zero_shot`` (tts_text, prompt_text, prompt_wav
file), ``/inference_cross_lingual`` (tts_text, prompt_wav), ``/inference_sft`` (tts_text, spk_id),
``/inference_instruct2`` (tts_text, instruct_text, prompt_wav). The answer is raw 16-bit PCM at the
model's rate, streamed as it is produced; the rate is not in the response, so it is configured
(24000 for CosyVoice2/3, 22050 for CosyVoice-300M). The reference clip is uploaded with each request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from streamer.voice.base import TTS, TTSError, WordBoundary, register
from streamer.voice.cache import SynthesisCache
from streamer.voice.http_audio import PcmStream, reference_file, stream_response

MODES = ("zero_shot", "cross_lingual", "sft", "instruct2")


@register("cosyvoice")
class CosyVoice(TTS):
    name = "cosyvoice"
    streams = True
    remote = True

    def __init__(self, output_rate: int, url: str = "http://127.0.0.1:50000", mode: str = "zero_shot",
                 reference_audio: str = "", reference_text: str = "", speaker: str = "中文女", instruct: str = "",
                 sample_rate: int = 24000, timeout_s: float = 30.0, volume: float = 1.0,
                 loudness_lufs: float | None = None, cache: SynthesisCache | None = None, **_: object) -> None:
        super().__init__(output_rate, volume, languages=("zh", "en"), loudness_lufs=loudness_lufs, cache=cache)
        if mode not in MODES:
            raise TTSError(f"CosyVoice mode {mode!r}: expected one of {', '.join(MODES)}")
        self.reference = reference_file(reference_audio, "CosyVoice") if mode != "sft" else None
        if mode == "zero_shot" and not reference_text:
            raise TTSError("CosyVoice zero_shot needs reference_text: what the reference clip says")
        self._prompt = self.reference.read_bytes() if self.reference else b""
        self.url, self.mode, self.reference_text = url.rstrip("/"), mode, reference_text
        self.speaker, self.instruct, self.sample_rate, self.timeout_s = speaker, instruct, sample_rate, timeout_s

    def describe(self) -> str:
        return f"CosyVoice ({self.reference.name if self.reference else self.speaker}, {self.mode})"

    def cache_key(self) -> str:
        return f"cosyvoice:{self.url}:{self.mode}:{self.reference}:{self.reference_text}:{self.speaker}:{self.instruct}"

    def form(self, text: str) -> Any:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("tts_text", text)
        if self.mode == "zero_shot":
            form.add_field("prompt_text", self.reference_text)
        if self.mode == "sft":
            form.add_field("spk_id", self.speaker)
        if self.mode == "instruct2":
            form.add_field("instruct_text", self.instruct)
        if self.mode != "sft":
            form.add_field("prompt_wav", self._prompt, filename="prompt_wav", content_type="application/octet-stream")
        return form

    async def _stream_native(self, text: str) -> AsyncIterator[tuple[np.ndarray, int, list[WordBoundary]]]:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.post(f"{self.url}/inference_{self.mode}", data=self.form(text)) as response:
            async for pcm, rate in stream_response(response, PcmStream(self.sample_rate)):
                yield pcm, rate, []
