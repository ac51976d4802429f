"""The TTS interface and the engine registry.

An engine implements ``_synthesize(text) -> (pcm, rate)`` (blocking, run in a worker thread); the
base class owns what every engine needs: running off the event loop, retries, resampling to the
output rate, volume, trimming and timing metrics. Engines are chosen by name from config through a
registry, never by an if/elif chain spread over the code base.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from streamer.voice.audio import resample, trim_silence

log = logging.getLogger(__name__)


class TTSError(RuntimeError):
    """An engine that cannot speak: missing package, model or binary, or a failed synthesis."""


class TTS:
    name: ClassVar[str] = "base"
    retries: ClassVar[int] = 1

    def __init__(self, output_rate: int, volume: float = 1.0) -> None:
        self.output_rate = output_rate
        self.volume = volume
        self.last_synthesis_s = 0.0
        self.total_audio_s = 0.0
        self.total_synthesis_s = 0.0

    def _synthesize(self, text: str) -> tuple[np.ndarray, int]:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def synthesize_blocking(self, text: str) -> np.ndarray:
        """Speak ``text``: mono float32 at ``output_rate``. Raises TTSError after retries."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            t0 = time.perf_counter()
            try:
                pcm, rate = self._synthesize(text)
            except TTSError:
                raise
            except Exception as e:  # engine-specific failures become TTSError after retries
                last = e
                log.warning("tts attempt failed", extra={"engine": self.name, "attempt": attempt, "error": str(e)})
                continue
            pcm = trim_silence(np.asarray(pcm, dtype=np.float32), rate)
            out = resample(pcm, rate, self.output_rate) * np.float32(self.volume)
            dt = time.perf_counter() - t0
            self.last_synthesis_s = dt
            self.total_synthesis_s += dt
            self.total_audio_s += out.size / self.output_rate
            return np.clip(out, -1.0, 1.0).astype(np.float32)
        raise TTSError(f"{self.name}: synthesis failed: {last}")

    async def synthesize(self, text: str) -> np.ndarray:
        return await asyncio.to_thread(self.synthesize_blocking, text)

    def close(self) -> None:
        """Release the engine's resources (models, processes)."""


_REGISTRY: dict[str, Callable[..., TTS]] = {}


def register(name: str) -> Callable[[Callable[..., TTS]], Callable[..., TTS]]:
    def deco(factory: Callable[..., TTS]) -> Callable[..., TTS]:
        _REGISTRY[name] = factory
        return factory

    return deco


def engines() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    from streamer.voice import espeak, piper  # noqa: F401  (registration side effect)


def create_tts(engine: str, output_rate: int, **options: object) -> TTS:
    """Build an engine by name. ``auto`` prefers piper (neural) and falls back to espeak-ng."""
    _load_builtin()
    if engine == "auto":
        errors = []
        for name in ("piper", "espeak"):
            try:
                return _REGISTRY[name](output_rate=output_rate, **options)
            except TTSError as e:
                errors.append(str(e))
                log.info("voice engine unavailable, trying next", extra={"engine": name, "reason": str(e)})
        raise TTSError("no voice engine available:\n  " + "\n  ".join(errors))
    if engine not in _REGISTRY:
        raise TTSError(f"unknown voice engine {engine!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[engine](output_rate=output_rate, **options)
