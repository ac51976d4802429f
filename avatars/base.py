"""Avatar types shared by the renderers and the clock, and the interface every renderer implements.

An ``Avatar`` is a base picture at the output size plus the face hints a renderer needs (where the
mouth and eyes are, skin and lip colours). A renderer turns audio into one ``MouthPose`` per video
frame ahead of time (in a worker), and composes a frame for any clock tick from the base picture,
the tick index (blink, breathing) and the pose. Idle is simply "pose = None": the idle motion is a
function of the clock's tick index, so speech continues from the idle frame where it began and idle
resumes where speech ended.

What differs between avatars and between renderers is declared, never discovered by probing
attributes: an avatar says whether its picture moves (``Avatar.animated``; an idle-video loop does)
and answers ``base_at(tick)`` and ``alpha_at(tick)`` either way; a renderer implements the
``Renderer`` protocol below in full and states its ``Capabilities``. A new renderer subclasses
``avatars.procedural.ProceduralRenderer`` (which implements all of it) or implements the protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class FaceHints:
    mouth: tuple[float, float]
    mouth_width: float
    eyes: tuple[tuple[float, float], ...]
    eye_size: tuple[float, float]
    """Half width and half height of one eye opening, pixels."""
    skin: tuple[int, int, int]
    lip: tuple[int, int, int]
    face_box: tuple[int, int, int, int]
    """x, y, w, h of the face in the base picture."""
    drawn: bool = False
    """True for the bundled drawn host: the mouth is a line and lips are drawn by the renderer."""


@dataclass(frozen=True)
class MouthPose:
    open: float
    """Jaw opening, 0 (closed) .. 1 (wide open)."""
    wide: float
    """Lip spread, 0 (rounded, "oo") .. 1 (spread, "ee"/"s")."""
    energy: float
    """Smoothed loudness 0..1 (drives a small head nod)."""
    patch: np.ndarray | None = field(default=None, compare=False, repr=False)
    """A generated face (RGB) for this frame, from a neural renderer; None for the procedural mouth
    (and for a neural renderer's frame that was not rendered in time: the procedural mouth covers it)."""

    @property
    def speaking(self) -> bool:
        return self.open > 0.02


REST = MouthPose(0.0, 0.5, 0.0)


@dataclass
class Avatar:
    name: str
    image: np.ndarray
    """RGB uint8, exactly the output size."""
    hints: FaceHints
    alpha: np.ndarray | None = field(default=None, repr=False)
    """Foreground alpha at output size, for a green-screen host over a moving ``backdrop``."""
    backdrop: Any = field(default=None, repr=False)
    """Something with ``picture(tick) -> RGB`` shown behind the keyed host (a background video)."""

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.image.shape[:2]
        return w, h

    @property
    def animated(self) -> bool:
        """True when the picture under a tick changes with the tick (an idle-video loop): a neural
        renderer must then render each frame against the picture it will be shown on."""
        return False

    def base_at(self, tick: int) -> tuple[np.ndarray, FaceHints]:
        """The picture and face hints shown at clock tick ``tick`` (never modified by callers)."""
        return self.image, self.hints

    def alpha_at(self, tick: int) -> np.ndarray | None:
        """The keyed foreground's alpha under tick ``tick`` (None: nothing to key over a backdrop)."""
        return self.alpha


@dataclass(frozen=True)
class Capabilities:
    """What a renderer does, declared so the speaker never probes for methods.

    ``batched``: poses come from a model in batches, slower than the procedural analysis; playback
    should start after a small first batch while the rest renders ahead of the clock. ``batch`` is
    the batch size it runs best at (0: everything in one go, as the procedural renderer does).
    ``start_tick``: each frame depends on the picture it will be shown on (a neural renderer on an
    idle-video avatar), so the speaker must say at which tick the sentence will start playing.
    """

    batched: bool = False
    batch: int = 0
    start_tick: bool = False


@runtime_checkable
class Renderer(Protocol):
    """Everything the speaker and the clock use from a renderer.

    ``frame`` runs on the clock thread and must be cheap (one warp of the picture plus a small face
    region); ``analyze`` and ``render_batches`` run in a worker. The speaker drives any renderer the
    same way through ``avatars.stream.RenderStream``, which reads ``capabilities`` for batch sizes."""

    name: str
    fps: int
    avatar: Avatar

    @property
    def capabilities(self) -> Capabilities: ...

    def analyze(self, pcm: np.ndarray, rate: int) -> list[MouthPose]:
        """Every pose of ``pcm`` (one per video frame, ``ceil(len / samples_per_frame)``), blocking."""
        ...

    def render_batches(self, pcm: np.ndarray, rate: int, start_tick: int = 0, sizes: Iterator[int] | None = None,
                       base: list[MouthPose] | None = None) -> Iterator[list[MouthPose]]:
        """The same poses in batches as they are rendered. ``sizes`` gives each batch's length in turn;
        ``base`` is the procedural analysis of ``pcm`` when the caller has it already; ``start_tick``
        is the clock tick of the first frame (used when ``capabilities.start_tick``)."""
        ...

    def frame(self, index: int, pose: MouthPose | None = None) -> np.ndarray:
        """A new output frame for clock tick ``index``: idle when ``pose`` is None."""
        ...
