"""Choosing a renderer from config: Wav2Lip when asked for and possible, else the procedural mouth.

A missing torch install or weight file never stops the stream: the reason is logged once, with what
to install or where to put the file, and the procedural renderer takes over.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from avatars.base import Avatar
from avatars.procedural import ProceduralRenderer

log = logging.getLogger(__name__)


def default_checkpoint() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root) / "wav2lip_gan.pth"


def create_renderer(kind: str, avatar: Avatar, fps: int, checkpoint: str | Path = "", device: str = "auto",
                    precision: str = "auto", batch: int = 16, backend: str = "torch", lipsync_url: str = "",
                    lipsync_timeout_ms: float = 250.0, lipsync_fallback: str = "procedural") -> ProceduralRenderer:
    if kind == "wav2lip" and lipsync_url:  # a shared deployment renders (streamer rooms)
        from avatars.wav2lip.remote import create_remote_renderer

        return create_remote_renderer(avatar, fps, lipsync_url, lipsync_timeout_ms, lipsync_fallback, batch,
                                      lambda: create_renderer(kind, avatar, fps, checkpoint, device, precision, batch,
                                                              backend))
    if kind == "wav2lip":
        from avatars.wav2lip.checkpoint import CheckpointError

        try:
            from avatars.wav2lip.renderer import Wav2LipRenderer

            return Wav2LipRenderer(avatar, fps, checkpoint or default_checkpoint(), device=device,
                                   precision=precision, batch=batch, backend=backend)
        except (CheckpointError, ImportError) as e:
            log.warning("Wav2Lip unavailable, using the procedural renderer: %s", e)
    return ProceduralRenderer(avatar, fps)
