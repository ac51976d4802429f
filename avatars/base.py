"""Avatar types shared by the renderers and the clock.

An ``Avatar`` is a base picture at the output size plus the face hints a renderer needs (where the
mouth and eyes are, skin and lip colours). A renderer turns audio into one ``MouthPose`` per video
frame ahead of time (in a worker), and composes a frame for any clock tick from the base picture,
the tick index (blink, breathing) and the pose. Idle is simply "pose = None": the idle motion is a
function of the clock's tick index, so speech continues from the idle frame where it began and idle
resumes where speech ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    """A generated face (RGB) for this frame, from a neural renderer; None for the procedural mouth."""


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
