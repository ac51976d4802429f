"""Scoring candidate portraits the way lip-sync will see them.

The detector is the one ``avatar prepare`` uses (OpenCV's Haar cascade, same scale step, neighbours
and minimum size as ``avatars.portrait.detect_face``), so a candidate that scores is one that
``prepare`` accepts. The score multiplies what matters for a talking host:

- confidence: the cascade's level weight for the best face (how face-like it is; a frontal, evenly
  lit, unobstructed face scores high);
- centring: 1 when the face is on the vertical centre line, falling to 0 at the picture's edge;
- size: a head-and-shoulders face is 20-60 % of the picture's width; smaller or larger halves the
  score at the extremes;
- a second, comparably confident face (two people) halves it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatars.portrait import detect_faces


@dataclass(frozen=True)
class FaceScore:
    box: tuple[int, int, int, int]
    confidence: float
    centred: float
    size: float
    """Face width as a fraction of the picture's width."""
    faces: int
    value: float

    def summary(self) -> str:
        return (f"score {self.value:.2f} (confidence {self.confidence:.2f}, centred {self.centred:.2f}, "
                f"face {self.size:.0%} of width{', ' + str(self.faces) + ' faces' if self.faces > 1 else ''})")


def _size_fit(frac: float) -> float:
    if 0.2 <= frac <= 0.6:
        return 1.0
    if frac < 0.2:
        return 0.5 + 0.5 * max(0.0, (frac - 0.05) / 0.15)
    return 0.5 + 0.5 * max(0.0, (0.9 - frac) / 0.3)


def score_portrait(rgb: np.ndarray) -> FaceScore | None:
    """The best face's score, or None when the detector finds no face."""
    faces, weights = detect_faces(rgb)
    if len(faces) == 0:
        return None
    best = max(range(len(faces)), key=lambda i: (float(weights[i]), int(faces[i][2])))
    x, y, w, h = (int(v) for v in faces[best])
    conf = max(0.0, float(weights[best]))
    width = rgb.shape[1]
    centred = max(0.0, 1.0 - abs(x + w / 2 - width / 2) / (width / 2))
    frac = w / width
    others = sum(1 for i in range(len(faces)) if i != best and weights[i] >= 0.5 * weights[best])
    value = conf * (0.5 + 0.5 * centred) * _size_fit(frac) * (0.5 if others else 1.0)
    return FaceScore((x, y, w, h), round(conf, 3), round(centred, 3), round(frac, 3), 1 + others, round(value, 3))
