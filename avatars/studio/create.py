"""``create``: several candidate portraits from one prompt, the best kept by face score.

Candidate ``i`` is made from seed ``seed + i``. Each is scored by the lip-sync face detector
(``face_score``); the best score wins, and a run in which no candidate has a detectable face fails
with what to change, rather than handing ``prepare`` a picture it will reject.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from avatars.studio import StudioError
from avatars.studio.composition import PortraitRequest
from avatars.studio.face_score import FaceScore, score_portrait
from avatars.studio.portraits import PortraitSource

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    index: int
    seed: int
    image: np.ndarray
    score: FaceScore | None
    flagged: bool = False

    def summary(self) -> str:
        what = self.score.summary() if self.score else "no face found"
        return f"candidate {self.index + 1} (seed {self.seed}): {what}{' [blocked by safety checker]' if self.flagged else ''}"


@dataclass
class Creation:
    request: PortraitRequest
    model: str
    candidates: list[Candidate] = field(default_factory=list)
    best: Candidate | None = None


class NoFaceError(StudioError):
    """No candidate has a face the lip-sync detector finds."""

    def __init__(self, message: str, candidates: list[Candidate]) -> None:
        super().__init__(message)
        self.candidates = candidates


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31 - 1)


def pick_best(candidates: list[Candidate]) -> Candidate | None:
    scored = [c for c in candidates if c.score is not None and not c.flagged]
    return max(scored, key=lambda c: c.score.value if c.score else 0.0, default=None)


def no_face_message(request: PortraitRequest, candidates: list[Candidate]) -> str:
    flagged = sum(c.flagged for c in candidates)
    why = f" ({flagged} blocked by the model's safety checker)" if flagged else ""
    return (f"none of the {len(candidates)} candidates has a face the lip-sync detector finds{why} "
            f"(prompt: {request.description!r}, seeds {candidates[0].seed}-{candidates[-1].seed}). Describe one "
            "person's face and shoulders (e.g. \"portrait of a smiling young man, short hair\"), try another --seed or "
            "more --candidates, or check that --model makes pictures of people")


def create_candidates(source: PortraitSource, request: PortraitRequest, seed: int, count: int,
                      on_step: Callable[[int, int, int], None] | None = None,
                      on_candidate: Callable[[Candidate], None] | None = None) -> Creation:
    """Generate ``count`` candidates from seeds ``seed .. seed+count-1`` and keep the best face.

    ``on_step(candidate_index, step, steps)`` after every denoising step; ``on_candidate`` after each
    candidate is scored. Raises NoFaceError when no candidate has a face.
    """
    creation = Creation(request, source.model)
    for i in range(count):
        s = seed + i

        def step_done(step: int, steps: int, i: int = i) -> None:
            if on_step is not None:
                on_step(i, step, steps)

        made = source.generate(request, s, step_done)
        cand = Candidate(i, s, made.image, None if made.flagged else score_portrait(made.image), made.flagged)
        creation.candidates.append(cand)
        log.debug("candidate scored", extra={"candidate": i + 1, "seed": s,
                                            "score": cand.score.value if cand.score else None})
        if on_candidate:
            on_candidate(cand)
    creation.best = pick_best(creation.candidates)
    if creation.best is None:
        raise NoFaceError(no_face_message(request, creation.candidates), creation.candidates)
    return creation
