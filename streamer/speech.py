"""What travels from the director to the clock, in one vocabulary.

- ``Turn`` (streamer.persona.base): one thing the director decided the host says: an answer, a thank-you,
  an idle line, an operator line. The persona turns it into sentences.
- ``Reply``: a turn on its way to the voice: its sentences as they stream from the persona. The
  speaker's one input.
- ``Utterance``: one sentence of a reply: the unit of speech.
- ``Segment``: an utterance voiced and rendered (PCM + mouth poses): the clock's unit of playback. The
  clock reports back on the segment itself, through futures it resolves from its own thread:
  ``started`` (the tick where its first frame left the clock to the sinks), ``near_end`` (``tail_frames``
  before its end) and ``ended`` (how much of it played). Nothing polls the clock.
- ``Heard``: what of a reply the audience actually heard. A paid message counts as answered only when its
  reply's ``Heard`` is not empty.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from avatars.base import MouthPose

_utt_ids = itertools.count(1)


class PoseSource(Protocol):
    """Poses rendered while a segment plays (``avatars.stream.RenderStream``)."""

    frames: int

    def ready(self) -> bool: ...

    def pose(self, i: int) -> MouthPose: ...

    @property
    def late_frames(self) -> int:
        """Frames shown with the procedural mouth because their render was not ready."""
        ...


@dataclass(frozen=True)
class Utterance:
    text: str
    turn: str = ""
    """Id of the turn this sentence belongs to."""
    answers: str | None = None
    """Id of the ChatEvent this answers, if any."""
    source: str = "chat"
    """chat | idle | operator | thanks | action"""
    priority: int = 0
    id: str = field(default_factory=lambda: f"utt{next(_utt_ids)}")


@dataclass(frozen=True)
class Played:
    """How a segment left the clock: frames played, whether to the end, and the tick where it ended."""

    frames: int
    completed: bool
    tick: int


@dataclass(eq=False)
class Segment:
    utterance: Utterance
    audio: np.ndarray
    """Mono float32 at the output rate, padded to a whole number of video frames."""
    poses: list[MouthPose]
    samples_per_frame: int
    picture: Callable[[int], np.ndarray] | None = None
    """When set (an action clip), the frames come from here instead of the avatar renderer."""
    tail_frames: int = 0
    """``near_end`` resolves this many frames before the end (0: with ``ended``)."""
    speech: Any = None
    """The voice's ``Speech`` (streamer.voice.base) when it gave word timings: subtitles follow them, and an
    interrupted sentence is remembered word by word."""
    render: PoseSource | None = None
    """When set (``avatars.stream.RenderStream``), poses and readiness come from it as it renders: the
    clock starts the segment once the render will keep ahead, and a frame not rendered in time gets the
    procedural mouth instead of waiting."""
    started: concurrent.futures.Future[int] = field(default_factory=concurrent.futures.Future, repr=False)
    near_end: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future, repr=False)
    ended: concurrent.futures.Future[Played] = field(default_factory=concurrent.futures.Future, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        spf = self.samples_per_frame
        n = -(-len(self.audio) // spf)
        if len(self.audio) != n * spf:
            padded = np.zeros(n * spf, dtype=np.float32)
            padded[: len(self.audio)] = self.audio
            self.audio = padded

    @property
    def text(self) -> str:
        return self.utterance.text

    @property
    def total_frames(self) -> int:
        return len(self.audio) // self.samples_per_frame

    def ready(self, prebuffer_frames: int) -> bool:
        """Enough is rendered to play through without stalling."""
        if self.render is not None:
            return self.render.ready()
        with self._lock:
            have = len(self.poses)
        return have >= self.total_frames or have >= prebuffer_frames

    def extend_poses(self, poses: list[MouthPose]) -> None:
        with self._lock:
            self.poses.extend(poses)

    def pose(self, i: int) -> MouthPose | None:
        if self.render is not None:
            return self.render.pose(min(i, self.render.frames - 1)) if self.render.frames else None
        with self._lock:
            return self.poses[i] if i < len(self.poses) else None

    def chunk(self, i: int) -> np.ndarray:
        spf = self.samples_per_frame
        return self.audio[i * spf:(i + 1) * spf]

    def report_start(self, tick: int) -> None:
        _settle(self.started, tick)

    def report_progress(self, played: int) -> None:
        if played >= self.total_frames - self.tail_frames:
            _settle(self.near_end, None)

    def report_end(self, played: int, completed: bool, tick: int) -> None:
        _settle(self.near_end, None)
        _settle(self.ended, Played(played, completed, tick))


def _settle(fut: concurrent.futures.Future, value: object) -> None:
    if not fut.done():
        fut.set_result(value)


T = TypeVar("T")


async def reported(fut: concurrent.futures.Future[T]) -> T:
    """Wait on the event loop for one of the clock's reports. Cancelling the waiter never cancels the
    report itself (others wait on it too, and the clock still fills it in)."""
    return await asyncio.shield(asyncio.wrap_future(fut))


@dataclass(frozen=True)
class HeardLine:
    text: str
    completed: bool
    fraction: float
    """How much of the sentence played (1.0 when completed)."""
    heard_text: str = ""
    """The words that were fully heard (the whole text when completed)."""


@dataclass
class Heard:
    """The sentences of one reply that reached the audience, in order (filled as they end)."""

    lines: list[HeardLine] = field(default_factory=list)
    started: int = 0
    """Sentences whose first frame left the clock (an interrupted one counts)."""

    def __bool__(self) -> bool:
        return self.started > 0


@dataclass
class Reply:
    """A turn on its way to the voice. ``paced``: ask the persona for each further sentence only when
    the previous one has nearly played (idle talk, which must give way to a viewer)."""

    turn: str
    sentences: AsyncGenerator[str, None]
    answers: str | None = None
    source: str = "chat"
    priority: int = 0
    paced: bool = False
