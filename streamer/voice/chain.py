"""The per-persona voice chain: engines in order of preference, decided per sentence.

Each sentence is normalised for its language, then spoken by the first engine that is up and can
read it; a mixed sentence (a brand name in a Chinese line, a viewer called 小明 in an English one) is
cut into runs by script when that engine cannot read every part, and each run goes to the first
engine of its language. An engine that fails (an exception, no first audio within
``first_chunk_timeout_s`` for a network voice, or audio that is silence or noise) is skipped for a cooldown that doubles
with each failure (``cooldown_s`` up to ``max_cooldown_s``), so a dead network voice costs one
failure, not one per sentence; after the cooldown it is tried again. The cache of every engine is
consulted first, even of one that is down: a product line edge-tts spoke yesterday is still its voice.

Logs: one line when the speaking engine changes, one when an engine goes down or comes back; never
one per sentence. When every engine failed, or the sentence has nothing speakable, a
:class:`TTSError` says why: the chain never returns silence as success. Network engines run on the
event loop, local ones in worker threads: nothing here blocks the clock.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from streamer.voice.base import TTS, NothingToSay, Speech, SpeechChunk, TTSError, WordBoundary
from streamer.voice.normalize import base_language, normalize, split_by_script

log = logging.getLogger(__name__)


@dataclass
class EngineState:
    engine: TTS
    failures: int = 0
    down_until: float = 0.0
    last_error: str = ""

    def up(self, now: float) -> bool:
        return now >= self.down_until


class VoiceChain(TTS):
    name = "chain"
    streams = True

    def __init__(self, engines: Sequence[TTS], language: str, output_rate: int, cooldown_s: float = 30.0,
                 max_cooldown_s: float = 300.0, first_chunk_timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not engines:
            raise TTSError("a voice chain needs at least one engine")
        langs = sorted({lang for e in engines for lang in e.languages})
        super().__init__(output_rate, languages=langs)
        self.states = [EngineState(e) for e in engines]
        self.language = base_language(language)
        self.cooldown_s, self.max_cooldown_s = cooldown_s, max_cooldown_s
        self.first_chunk_timeout_s = first_chunk_timeout_s
        self.clock = clock
        self.speaking: str | None = None
        self.failures_total: collections.Counter[str] = collections.Counter()
        """The engine that spoke the latest chunk (for the status API)."""
        self._skipped_runs: set[str] = set()
        self._sentence_engines: dict[str, None] = {}
        self._last_voice: str | None = None

    @property
    def engines(self) -> list[TTS]:
        return [s.engine for s in self.states]

    def describe(self) -> str:
        return " -> ".join(s.engine.describe() for s in self.states)

    def status(self) -> dict[str, object]:
        now = self.clock()
        return {"speaking": self.speaking, "language": self.language,
                "engines": [{"engine": s.engine.describe(), "up": s.up(now), "failures": s.failures,
                             "down_for_s": round(max(0.0, s.down_until - now), 1), "last_error": s.last_error}
                            for s in self.states]}

    def error_counts(self) -> dict[str, int]:
        """Failures per engine since the start (a sentence an engine could not say; the next one spoke)."""
        return dict(self.failures_total)

    def close(self) -> None:
        for s in self.states:
            s.engine.close()

    # ------------------------------------------------------------------ whole sentences
    def speak_blocking(self, text: str) -> Speech:
        return asyncio.run(self.speak(text))

    async def speak(self, text: str) -> Speech:
        parts: list[np.ndarray] = []
        words: list[WordBoundary] = []
        engines: list[str] = []
        async for chunk in self.stream(text):
            parts.append(chunk.pcm)
            words.extend(chunk.words)
            if chunk.engine not in engines:
                engines.append(chunk.engine)
        pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return Speech(text, pcm, self.output_rate, " + ".join(engines), words)

    # ------------------------------------------------------------------ streams
    async def stream(self, text: str) -> AsyncIterator[SpeechChunk]:
        self._sentence_engines = {}
        t0, audio = time.perf_counter(), 0
        async for chunk in self._stream_sentence(text):
            if audio == 0:
                self.first_chunk_s = time.perf_counter() - t0
            audio += chunk.pcm.size
            yield chunk
        self._account(time.perf_counter() - t0, audio / self.output_rate)
        self._sentence_done()

    async def _stream_sentence(self, text: str) -> AsyncIterator[SpeechChunk]:
        spoken = normalize(text, self.language)
        if not spoken:
            raise NothingToSay(f"nothing speakable in {text[:40]!r}")
        runs = split_by_script(spoken, self.language)
        langs = frozenset(lang for lang, _ in runs)
        order = self._order()
        offset = 0.0
        if len(runs) == 1 or langs <= order[0].engine.languages:
            yielded = False
            try:
                async for chunk in self._run(spoken, langs, order):
                    yielded = True
                    yield chunk
                return
            except TTSError:
                if yielded or len(runs) == 1:
                    raise
            order = self._order()
        heard = False
        for lang, run in runs:
            try:
                async for chunk in self._run(run, frozenset((lang,)), order, offset):
                    heard = True
                    offset = chunk.offset_s + chunk.pcm.size / self.output_rate
                    yield chunk
            except _NoVoiceFor as e:
                if e.key not in self._skipped_runs:
                    self._skipped_runs.add(e.key)
                    log.warning("no voice can read this part; skipping it", extra={"language": lang, "text": run[:40]})
        if not heard:
            raise TTSError(f"no voice in the chain can read {spoken[:40]!r}")

    def _order(self) -> list[EngineState]:
        """Engines that are up, in preference order, then the ones cooling down (a last resort)."""
        now = self.clock()
        return [s for s in self.states if s.up(now)] + [s for s in self.states if not s.up(now)]

    async def _run(self, text: str, langs: frozenset[str], order: list[EngineState], offset: float = 0.0
                   ) -> AsyncIterator[SpeechChunk]:
        candidates = [s for s in order if langs <= s.engine.languages]
        if not candidates:
            raise _NoVoiceFor(f"{','.join(sorted(langs))}")
        for state in candidates:  # the cache first, whoever's it is
            hit = state.engine.cached(text)
            if hit is not None:
                self._spoke(state)
                yield SpeechChunk(hit.pcm, offset, hit.engine, tuple(w.shifted(offset) for w in hit.words))
                return
        errors = []
        now = self.clock()
        for state in candidates:
            if not state.up(now) and any(s.up(now) for s in candidates):
                continue
            yielded = False
            try:
                async for chunk in self._attempt(state, text):
                    yielded = True
                    self._spoke(state)
                    yield SpeechChunk(chunk.pcm, offset + chunk.offset_s, chunk.engine,
                                      tuple(w.shifted(offset) for w in chunk.words))
                self._recovered(state)
                return
            except (TTSError, TimeoutError, asyncio.TimeoutError) as e:
                self._failed(state, e)
                errors.append(f"{state.engine.describe()}: {e or type(e).__name__}")
                if yielded:
                    raise TTSError(f"{state.engine.describe()} broke mid-sentence: {e}") from e
        raise TTSError("every voice failed: " + "; ".join(errors))

    async def _attempt(self, state: EngineState, text: str) -> AsyncIterator[SpeechChunk]:
        stream = state.engine.stream(text)
        try:
            timeout = self.first_chunk_timeout_s if state.engine.remote else None
            first = await asyncio.wait_for(stream.__anext__(), timeout)
            yield first
            async for chunk in stream:
                yield chunk
        except StopAsyncIteration:
            raise TTSError("the engine produced nothing") from None
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ state changes, logged once
    def _spoke(self, state: EngineState) -> None:
        self.speaking = state.engine.describe()
        self._sentence_engines.setdefault(self.speaking)

    def _sentence_done(self) -> None:
        """Log when the voice a sentence is spoken in differs from the previous sentence's."""
        voice = " + ".join(self._sentence_engines)
        self._sentence_engines = {}
        if voice and voice != self._last_voice:
            log.info("voice engine speaking", extra={"engine": voice, "previous": self._last_voice})
            self._last_voice = voice

    def _failed(self, state: EngineState, error: BaseException) -> None:
        was_up = state.failures == 0
        state.failures += 1
        self.failures_total[state.engine.name] += 1
        state.last_error = str(error) or type(error).__name__
        pause = min(self.max_cooldown_s, self.cooldown_s * 2 ** (state.failures - 1))
        state.down_until = self.clock() + pause
        if was_up:
            log.warning("voice engine failed; the next one in the chain speaks",
                        extra={"engine": state.engine.describe(), "error": state.last_error, "retry_in_s": pause})
        else:
            log.debug("voice engine still failing", extra={"engine": state.engine.describe(),
                                                           "error": state.last_error, "retry_in_s": pause})

    def _recovered(self, state: EngineState) -> None:
        if state.failures:
            log.info("voice engine recovered", extra={"engine": state.engine.describe(),
                                                      "after_failures": state.failures})
        state.failures, state.down_until, state.last_error = 0, 0.0, ""


class _NoVoiceFor(TTSError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no voice for {key}")
        self.key = key
