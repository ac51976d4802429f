"""Avatar folders: the picture or idle loop plus a small ``avatar.toml`` that travels with it.

    name = "Mia"
    media = "mia_idle.mp4"        # optional: else the first image or video in the folder
    green_screen = true
    background = "studio.mp4"     # image or video, relative to the folder
    mouth_x = 512                 # optional face hints, pixels of the source
    mouth_y = 610
    mouth_width = 120

    [[actions]]
    name = "wave"
    file = "wave.mp4"
    on = "gift"

Values in the folder's TOML fill in what the profile's [avatar] section leaves at its default.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from avatars.portrait import AvatarError
from avatars.prepare import IMAGE_EXT, VIDEO_EXT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    file: str
    on: str = ""
    volume: float = 1.0


class _AvatarToml(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    media: str = ""
    fps: float | None = None
    green_screen: bool = False
    background: str = ""
    mouth_x: float | None = None
    mouth_y: float | None = None
    mouth_width: float | None = None
    actions: list[_Action] = []
    source: dict[str, Any] = {}
    """How a created avatar was made (streamer avatar create/stylize/describe: prompt, seed, model, style)."""


@dataclass
class AvatarFolder:
    media: Path
    name: str
    green_screen: bool = False
    background: Path | None = None
    mouth_x: float | None = None
    mouth_y: float | None = None
    mouth_width: float | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)


def read_folder(folder: Path) -> AvatarFolder:
    spec = _AvatarToml()
    toml = folder / "avatar.toml"
    if toml.is_file():
        try:
            spec = _AvatarToml.model_validate(tomllib.loads(toml.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as e:
            raise AvatarError(f"{toml}: not valid TOML: {e}") from None
        except ValidationError as e:
            err = e.errors()[0]
            raise AvatarError(f"{toml}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
    if spec.media:
        media = folder / spec.media
    else:
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT | VIDEO_EXT
                       and p.name != spec.background)
        if not found:
            raise AvatarError(f"{folder}: no image or video in this avatar folder")
        media = found[0]
    return AvatarFolder(media, spec.name or folder.name, spec.green_screen,
                        folder / spec.background if spec.background else None, spec.mouth_x, spec.mouth_y,
                        spec.mouth_width, [{**a.model_dump(), "file": str(folder / a.file)} for a in spec.actions])
