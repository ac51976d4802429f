"""Avatar studio: make the host instead of finding a photo of one.

Three ways in, one way out:

- ``create``: text-to-image with the user's own Stable Diffusion 1.5 / SDXL weights (diffusers), a
  portrait composed for lip-sync, several candidates, the best kept by the face detector's score;
- ``stylize``: a photo through AnimeGANv2's generator (the user's ``face_paint_512_v2.pt``), the
  face at full resolution, pasted back over a stylized whole picture;
- ``describe``: a spoken description (a WAV, or recorded) -> faster-whisper -> a prompt (the
  persona's LLM, or a zh/en template) -> create -> optional stylize.

Every result is an avatar folder (picture + ``avatar.toml`` with its ``[source]``, intermediates in
``studio/``), prepared (face boxes, crops, mask cached) so ``streamer run`` can use it at once. Work
happens in a hidden sibling folder that is moved into place only when everything succeeded.

Heavy imports (torch, diffusers) happen inside the functions that need them: ``pip install
'streamer[studio]'``. Nothing is ever downloaded from a model hub.
"""

from __future__ import annotations

INSTALL_HINT = "pip install 'streamer[studio]'  (diffusers, transformers, accelerate, safetensors, torch)"


class StudioError(RuntimeError):
    """A studio step that cannot go on; the message names the cause and what to do."""


__all__ = ["INSTALL_HINT", "StudioError"]
