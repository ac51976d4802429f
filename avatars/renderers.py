"""One builder for the avatar and its renderer, used by every caller (live app, ``say``, persona switch,
``avatar check``, doctor), so they all render the same face the same way.

Wav2Lip when asked for and possible, else the procedural mouth: a missing torch install or weight
file, a checkpoint of the wrong network or a truncated one never stops the stream: the reason is
logged once, naming the file and what to do, and the procedural renderer takes over. A portrait in
which no face is found falls back to the bundled host the same way (``build(..., strict=False)``).

``AvatarSpec`` is a plain dataclass so ``avatars`` never imports the runtime's config; the runtime
fills it from its settings (``AvatarSpec(**fields)``; see the hand-off note for the mapping).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from avatars.base import Avatar
from avatars.procedural import ProceduralRenderer
from avatars.wav2lip.official import DEFAULT_PADS

log = logging.getLogger(__name__)


def default_checkpoint() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root) / "wav2lip_gan.pth"


@dataclass(frozen=True)
class AvatarSpec:
    """Everything that decides what the face looks like and how it moves (paths already resolved)."""

    width: int
    height: int
    fps: int
    image: str = ""
    """Portrait, idle-video loop or avatar folder; empty: the bundled drawn host."""
    renderer: str = "procedural"
    checkpoint: str = ""
    device: str = "auto"
    precision: str = "auto"
    batch: int = 16
    backend: str = "auto"
    pads: tuple[int, int, int, int] = DEFAULT_PADS
    mouth_x: float | None = None
    mouth_y: float | None = None
    mouth_width: float | None = None
    green_screen: bool = False
    background: str = ""

    def with_image(self, image: str) -> AvatarSpec:
        """The same look and renderer with another picture (a persona's own avatar)."""
        return replace(self, image=image)


def load_spec_avatar(spec: AvatarSpec, strict: bool = True) -> Avatar:
    """The avatar of ``spec``. ``strict=False``: a picture that cannot be used (no face found, not an
    image) is logged with its path and reason, and the bundled host stands in."""
    from avatars.portrait import AvatarError, load_avatar

    try:
        return load_avatar(spec.image or None, spec.width, spec.height, spec.mouth_x, spec.mouth_y, spec.mouth_width,
                           spec.green_screen, spec.background or None, spec.fps)
    except AvatarError as e:
        if strict or not spec.image:
            raise
        log.error("avatar unusable, showing the bundled host instead", extra={"avatar": spec.image, "error": str(e)})
        return load_avatar(None, spec.width, spec.height, fps=spec.fps)


def create_renderer(kind: str, avatar: Avatar, fps: int, checkpoint: str | Path = "", device: str = "auto",
                    precision: str = "auto", batch: int = 16, backend: str = "auto",
                    pads: tuple[int, int, int, int] = DEFAULT_PADS, lipsync_url: str = "",
                    lipsync_timeout_ms: float = 250.0, lipsync_fallback: str = "procedural") -> ProceduralRenderer:
    if kind == "wav2lip" and lipsync_url:  # a shared deployment renders (streamer rooms)
        from avatars.wav2lip.remote import create_remote_renderer

        return create_remote_renderer(avatar, fps, lipsync_url, lipsync_timeout_ms, lipsync_fallback, batch,
                                      lambda: create_renderer(kind, avatar, fps, checkpoint, device, precision, batch,
                                                              backend, pads))
    if kind == "wav2lip":
        from avatars.wav2lip.checkpoint import CheckpointError

        try:
            from avatars.wav2lip.renderer import Wav2LipRenderer

            return Wav2LipRenderer(avatar, fps, checkpoint or default_checkpoint(), device=device,
                                   precision=precision, batch=batch, backend=backend, pads=pads)
        except (CheckpointError, ImportError, ValueError) as e:
            log.warning("Wav2Lip unavailable, using the procedural renderer: %s", e)
    return ProceduralRenderer(avatar, fps)


def build(spec: AvatarSpec, strict: bool = False) -> ProceduralRenderer:
    """The avatar and renderer ``spec`` describes, falling back as the module docstring says."""
    avatar = load_spec_avatar(spec, strict)
    return create_renderer(spec.renderer, avatar, spec.fps, spec.checkpoint, spec.device, spec.precision, spec.batch,
                           spec.backend, spec.pads)
