"""The operator's microphone: what the operator says becomes something the host does.

A source-like component (``await mic.run(emit)``, like a chat source's ``run(callback)``) that records
a PulseAudio source with ``parec`` (a subprocess, no audio library), finds speech with a voice-activity
detector (WebRTC's when ``webrtcvad`` is installed, else an adaptive energy detector), transcribes each
utterance with faster-whisper in a worker thread, and emits :class:`OperatorSpeech`:

- ``kind = "barge_in"`` the moment the operator starts speaking while the host talks (``barge_in``
  on, and ``is_host_speaking()`` true): the app interrupts the host now, before the transcript exists;
- ``kind = "operator_line"`` (role ``operator``): the host says the text next, ahead of chat;
- ``kind = "question"`` (role ``conversation``): the persona answers it, a voice chat with the host.

Modes: ``open_mic`` (the detector decides where utterances start and end) and ``push_to_talk``
(:meth:`press` / :meth:`release`, called by a hotkey or the control API: nothing is heard between a
release and the next press). Use headphones with open mic, or the host's own voice is heard as the
operator's.

How the app wires it (``App.start``)::

    mic = build_operator_mic(settings, language, is_host_speaking=lambda: app.clock.speaking is not None)
    task = asyncio.create_task(mic.run(app.on_operator_speech))   # owned and cancelled like a source

    def on_operator_speech(self, ev):                                # in App
        if ev.kind == "barge_in": asyncio.create_task(self.interrupt())
        elif ev.kind == "operator_line": self.say_now(ev.text)
        else: self.inject(ev.to_chat_event())                        # a question from the operator
"""

from __future__ import annotations

import asyncio
import collections
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from streamer.voice.audio import int16_to_float

log = logging.getLogger(__name__)

RATE = 16000
FRAME_MS = 30
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
Kind = Literal["barge_in", "operator_line", "question"]


@dataclass(frozen=True)
class OperatorSpeech:
    kind: Kind
    text: str = ""
    language: str = ""
    duration_s: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def to_chat_event(self, name: str = "operator") -> Any:
        """A question for the persona, as the chat event the director queues (platform "operator")."""
        from streamer.events import ChatEvent, EventKind, User

        return ChatEvent("operator", "local", EventKind.DANMAKU, User("operator", name, moderator=True), self.text)


class Vad(Protocol):
    def is_speech(self, frame: bytes) -> bool: ...


class EnergyVad:
    """Speech when a frame is 10 dB above the tracked noise floor and above -50 dBFS."""

    def __init__(self) -> None:
        self.floor_db = -60.0

    def is_speech(self, frame: bytes) -> bool:
        pcm = int16_to_float(frame)
        db = 20 * np.log10(max(float(np.sqrt(np.mean(pcm * pcm))), 1e-6))
        speech = db > max(self.floor_db + 10.0, -50.0)
        rate = 0.05 if not speech else 0.002
        self.floor_db += rate * (min(db, self.floor_db + 20) - self.floor_db)
        return speech


def default_vad(aggressiveness: int = 2) -> Vad:
    try:
        import webrtcvad
    except ImportError:
        log.info("webrtcvad not installed; using the energy detector", extra={"extra": "pip install 'streamer[asr]'"})
        return EnergyVad()

    vad = webrtcvad.Vad(aggressiveness)

    class _WebRtc:
        def is_speech(self, frame: bytes) -> bool:
            return bool(vad.is_speech(frame, RATE))

    return _WebRtc()


class Segmenter:
    """Open-mic utterances from voiced/unvoiced frames: starts when most of the last ``min_speech_s``
    is voiced (with a pre-roll so the first syllable is kept), ends after ``end_silence_s`` of mostly
    silence or at ``max_utterance_s``. Pure: frames in, events out; tested without audio devices."""

    def __init__(self, min_speech_s: float = 0.3, end_silence_s: float = 0.7, max_utterance_s: float = 15.0) -> None:
        self.start_frames = max(1, int(min_speech_s * 1000 / FRAME_MS))
        self.end_frames = max(1, int(end_silence_s * 1000 / FRAME_MS))
        self.max_frames = int(max_utterance_s * 1000 / FRAME_MS)
        self.recent: collections.deque[tuple[bytes, bool]] = collections.deque(maxlen=self.start_frames + 10)
        self.frames: list[bytes] = []
        self.active = False
        self.silent = 0

    def push(self, frame: bytes, voiced: bool) -> tuple[str, bytes] | None:
        """("start", b"") when an utterance begins, ("end", pcm) when it ends, else None."""
        if not self.active:
            self.recent.append((frame, voiced))
            window = list(self.recent)[-self.start_frames:]
            if len(window) == self.start_frames and sum(v for _, v in window) >= 0.8 * self.start_frames:
                self.active, self.silent = True, 0
                self.frames = [f for f, _ in self.recent]
                self.recent.clear()
                return ("start", b"")
            return None
        self.frames.append(frame)
        self.silent = 0 if voiced else self.silent + 1
        if self.silent >= self.end_frames or len(self.frames) >= self.max_frames:
            pcm = b"".join(self.frames[: len(self.frames) - self.silent + 3])
            self.active, self.frames, self.silent = False, [], 0
            return ("end", pcm)
        return None


class OperatorMic:
    name = "operator-mic"

    def __init__(self, transcribe: Callable[[np.ndarray, int, str], str], source: str = "",
                 mode: Literal["open_mic", "push_to_talk"] = "push_to_talk",
                 role: Literal["operator", "conversation"] = "operator", barge_in: bool = True,
                 language: str = "zh", vad: Vad | None = None, is_host_speaking: Callable[[], bool] = lambda: False,
                 min_speech_s: float = 0.3, end_silence_s: float = 0.7, max_utterance_s: float = 15.0) -> None:
        self.transcribe, self.source, self.mode, self.role = transcribe, source, mode, role
        self.barge_in, self.language, self.is_host_speaking = barge_in, language, is_host_speaking
        self.vad = vad or default_vad()
        self.segmenter = Segmenter(min_speech_s, end_silence_s, max_utterance_s)
        self.max_frames = self.segmenter.max_frames
        self.listening = asyncio.Event()
        """Set once audio frames arrive from the device (parec takes a moment to start)."""
        self.heard = 0
        self._pressed = False
        self._ptt: list[bytes] = []
        self._emit: Callable[[OperatorSpeech], None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def describe(self) -> str:
        return f"operator microphone ({self.source or 'default source'}, {self.mode}, {self.role})"

    # ------------------------------------------------------------------ push-to-talk
    @property
    def talking(self) -> bool:
        """Push-to-talk is held down."""
        return self._pressed

    def press(self) -> None:
        """Start talking (push-to-talk): a barge-in if the host is speaking."""
        if self.mode != "push_to_talk" or self._pressed:
            return
        self._pressed, self._ptt = True, []
        self._maybe_barge_in()

    def release(self) -> None:
        """Stop talking: what was said since :meth:`press` is transcribed and emitted."""
        if not self._pressed:
            return
        self._pressed = False
        pcm, self._ptt = b"".join(self._ptt), []
        if pcm:
            self._finish(pcm)

    # ------------------------------------------------------------------ the loop
    async def run(self, emit: Callable[[OperatorSpeech], None]) -> None:
        """Record until cancelled; raises RuntimeError when the device cannot be opened."""
        self._emit = emit
        proc = await self._open()
        try:
            assert proc.stdout is not None
            while True:
                try:
                    frame = await proc.stdout.readexactly(FRAME_BYTES)
                except asyncio.IncompleteReadError:
                    err = (await proc.stderr.read()).decode(errors="replace").strip() if proc.stderr else ""
                    raise RuntimeError(f"the microphone stopped: {err or 'parec exited'}") from None
                self.listening.set()
                self._frame(frame)
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 2)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()
            for task in list(self._pending):
                task.cancel()
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _open(self) -> asyncio.subprocess.Process:
        exe = shutil.which("parec")
        if exe is None:
            raise RuntimeError("parec not found: sudo apt-get install pulseaudio-utils")
        args = [exe, "--format=s16le", f"--rate={RATE}", "--channels=1", "--raw", "--latency-msec=30"]
        if self.source:
            args.insert(1, f"--device={self.source}")
        return await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)

    def _frame(self, frame: bytes) -> None:
        if self.mode == "push_to_talk":
            if self._pressed and len(self._ptt) < self.max_frames:
                self._ptt.append(frame)
            return
        event = self.segmenter.push(frame, self.vad.is_speech(frame))
        if event is None:
            return
        if event[0] == "start":
            self._maybe_barge_in()
        else:
            self._finish(event[1])

    def _maybe_barge_in(self) -> None:
        if self.barge_in and self.is_host_speaking() and self._emit is not None:
            log.info("operator barge-in")
            self._emit(OperatorSpeech("barge_in", language=self.language))

    def _finish(self, pcm_bytes: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._transcribe(pcm_bytes))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _transcribe(self, pcm_bytes: bytes) -> None:
        pcm = int16_to_float(pcm_bytes)
        try:
            text = (await asyncio.to_thread(self.transcribe, pcm, RATE, self.language)).strip()
        except Exception as e:  # a failed transcription loses one utterance, never the microphone
            log.error("operator speech not transcribed", extra={"error": str(e)})
            return
        if not any(ch.isalnum() for ch in text) or self._emit is None:
            return
        self.heard += 1
        kind: Kind = "operator_line" if self.role == "operator" else "question"
        log.info("operator speech", extra={"kind": kind, "text": text, "seconds": round(pcm.size / RATE, 2)})
        self._emit(OperatorSpeech(kind, text, self.language, pcm.size / RATE))


def build_operator_mic(settings: Any, language: str, is_host_speaking: Callable[[], bool] = lambda: False,
                       transcriber: Any = None) -> OperatorMic:
    """The operator microphone from ``[voice.mic]`` (the transcriber loads the whisper model once)."""
    from streamer.voice.asr import WhisperTranscriber

    m = settings.voice.mic
    asr = transcriber or WhisperTranscriber(m.asr_model or None)
    return OperatorMic(asr.transcribe, m.source, m.mode, m.role, m.barge_in, m.language or language,
                       default_vad(m.vad_aggressiveness), is_host_speaking, m.min_speech_s, m.end_silence_s,
                       m.max_utterance_s)
