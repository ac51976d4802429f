"""A ``PortraitSource`` that draws instead of diffusing: the stand-in for a model that makes faces.

The tiny random Stable Diffusion of the tests makes noise, never a face, so whatever happens after a
face is found (selection by score, the avatar folder, ``prepare``) is exercised with this source. It
implements the same interface as ``DiffusersPortraits`` and reports every step the same way. By
seed: ``seed % 3 == 0`` noise (no face), ``1`` the drawn host small at the left edge (a poor
portrait), ``2`` the drawn host centred and well sized (the one to keep).
"""

from __future__ import annotations

import numpy as np

from avatars.default_host import draw_default_host
from avatars.studio.composition import PortraitRequest
from avatars.studio.portraits import Estimate, Generated, StepCallback


class DrawnPortraits:
    model = "drawn stand-in"
    device = "cpu"
    native_size = (256, 256)

    def __init__(self) -> None:
        self.requests: list[tuple[PortraitRequest, int]] = []

    def estimate(self, request: PortraitRequest) -> Estimate:
        return Estimate(0.01, 0.02)

    def generate(self, request: PortraitRequest, seed: int, on_step: StepCallback) -> Generated:
        self.requests.append((request, seed))
        for step in range(request.steps):
            on_step(step + 1, request.steps)
        h, w = request.height, request.width
        rng = np.random.default_rng(seed)
        kind = seed % 3
        if kind == 0:
            return Generated(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        canvas = np.full((h, w, 3), (150, 150, 155), np.uint8)
        if kind == 1:
            side = w // 2
            canvas[h // 4:h // 4 + side, :side] = draw_default_host(side, side).image
        else:
            canvas[:] = draw_default_host(w, h).image
        return Generated(canvas)
