"""Choosing a renderer: Wav2Lip when asked for and possible, else the procedural mouth.

A missing torch install or weight file, a checkpoint of the wrong network or a truncated one never
stops the stream: the reason is logged once, naming the file and what to do, and the procedural
renderer takes over. The runtime calls this through ``streamer.build.build_renderer`` (one builder).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from avatars.base import Avatar
from avatars.procedural import ProceduralRenderer
from avatars.wav2lip.official import DEFAULT_PADS

log = logging.getLogger(__name__)


def default_checkpoint() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root) / "wav2lip_gan.pth"


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
