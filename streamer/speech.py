"""Utterances and the playable segments the clock consumes.

An ``Utterance`` is what the director decides to say (text, the event it answers, priority). Voice
turns each sentence of it into PCM and the renderer into mouth poses; the result is a ``Segment``,
the clock's unit of playback. ``turn`` groups the segments of one reply so an interrupt can drop
exactly the reply it cuts.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from avatars.base import MouthPose

_utt_ids = itertools.count(1)


@dataclass(frozen=True)
class Utterance:
    text: str
    priority: int
    answers: str | None = None
    """The ChatEvent id this answers, if any."""
    source: str = "chat"
    """chat | idle | operator | thanks"""
    id: str = field(default_factory=lambda: f"utt{next(_utt_ids)}")


@dataclass
class Segment:
    utterance: Utterance
    turn: int
    text: str
    audio: np.ndarray
    """Mono float32 at the output rate, padded to a whole number of video frames."""
    poses: list[MouthPose]
    samples_per_frame: int
    created: float = 0.0
    picture: Callable[[int], np.ndarray] | None = None
    """When set (an action clip), the frames come from here instead of the avatar renderer."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        spf = self.samples_per_frame
        n = -(-len(self.audio) // spf)
        if len(self.audio) != n * spf:
            padded = np.zeros(n * spf, dtype=np.float32)
            padded[: len(self.audio)] = self.audio
            self.audio = padded

    @property
    def total_frames(self) -> int:
        return len(self.audio) // self.samples_per_frame

    def ready(self, prebuffer_frames: int) -> bool:
        """Enough is rendered to play through without stalling."""
        with self._lock:
            have = len(self.poses)
        return have >= self.total_frames or have >= prebuffer_frames

    def extend_poses(self, poses: list[MouthPose]) -> None:
        with self._lock:
            self.poses.extend(poses)

    def pose(self, i: int) -> MouthPose | None:
        with self._lock:
            return self.poses[i] if i < len(self.poses) else None

    def chunk(self, i: int) -> np.ndarray:
        spf = self.samples_per_frame
        return self.audio[i * spf:(i + 1) * spf]
