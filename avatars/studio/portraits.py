"""Where candidate pictures come from: one small interface, and diffusers behind it.

A ``PortraitSource`` turns a ``PortraitRequest`` and a seed into one RGB picture, calling back after
every denoising step. Each candidate is generated alone from its own seed (not as a batch) so that
``--seed S --candidates 1`` reproduces exactly the candidate that ``--seed S`` made in a larger run.
The noise is drawn on the CPU (``torch.Generator("cpu")``) so a seed means the same picture on the
CPU and on CUDA, up to floating point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from avatars.studio import StudioError
from avatars.studio.composition import PortraitRequest
from avatars.studio.sd_model import NATIVE_SIZE, ModelSource, load_pipeline

StepCallback = Callable[[int, int], None]
"""Called with (step done, steps in all) after each denoising step."""


@dataclass(frozen=True)
class Generated:
    image: np.ndarray
    """RGB uint8, height x width x 3."""
    flagged: bool = False
    """The model's own safety checker blacked the picture out."""


@dataclass(frozen=True)
class Estimate:
    step_s: float
    decode_s: float

    def total_s(self, steps: int, candidates: int) -> float:
        return candidates * (steps * self.step_s + self.decode_s)


class PortraitSource(Protocol):
    model: str
    """What made the pictures (written to avatar.toml)."""
    device: str
    native_size: tuple[int, int]

    def estimate(self, request: PortraitRequest) -> Estimate: ...

    def generate(self, request: PortraitRequest, seed: int, on_step: StepCallback) -> Generated: ...


class DiffusersPortraits:
    """Stable Diffusion 1.5 / SDXL through diffusers, with the user's weights."""

    def __init__(self, source: ModelSource, device: str = "auto") -> None:
        self.source = source
        self.pipe, self.device = load_pipeline(source, device)
        self.model = str(source.path)
        side = NATIVE_SIZE[source.family]
        self.native_size = (side, side)

    def _call(self, request: PortraitRequest, generator: Any, steps: int, output: str,
              on_step: StepCallback | None = None) -> Any:
        def step_end(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if on_step is not None:
                on_step(i + 1, steps)
            return kwargs

        try:
            return self.pipe(prompt=request.prompt, negative_prompt=request.negative, width=request.width,
                             height=request.height, num_inference_steps=steps, guidance_scale=request.guidance,
                             generator=generator, output_type=output, callback_on_step_end=step_end)
        except (RuntimeError, ValueError) as e:
            if "out of memory" in str(e).lower():
                raise StudioError(f"out of memory at {request.width}x{request.height}: use a smaller --size, or "
                                  "--device cpu") from None
            raise

    def estimate(self, request: PortraitRequest) -> Estimate:
        """Time one real denoising step and one VAE decode at the requested size (also warms up)."""
        import torch

        t0 = time.perf_counter()
        out = self._call(request, torch.Generator("cpu").manual_seed(0), 1, "latent")
        step_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with torch.inference_mode():
            latents = out.images.to(self.pipe.vae.dtype) / self.pipe.vae.config.scaling_factor
            self.pipe.vae.decode(latents)
        return Estimate(step_s, time.perf_counter() - t0)

    def generate(self, request: PortraitRequest, seed: int, on_step: StepCallback) -> Generated:
        import torch

        out = self._call(request, torch.Generator("cpu").manual_seed(seed), request.steps, "np", on_step)
        image = np.clip(np.rint(np.asarray(out.images[0], np.float32) * 255.0), 0, 255).astype(np.uint8)
        nsfw = getattr(out, "nsfw_content_detected", None)
        return Generated(image, bool(nsfw[0]) if nsfw else False)
