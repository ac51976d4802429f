"""Writing a created avatar: all or nothing.

Everything (picture, ``avatar.toml``, intermediates under ``studio/``, the ``prepare`` cache) is made
in a hidden sibling folder ``.NAME.studio-XXXX``; only when the last step succeeded is it renamed to
``NAME`` (one rename on the same file system). A failure, an exception or Ctrl-C removes the hidden
folder, so a half-made avatar is never where ``streamer run`` or the panel would find it. Replacing an
existing avatar (``--force``) moves the old one aside first and deletes it only after the new one is
in place.

``-o host.png`` names the picture: the folder is ``host/`` beside it, holding ``host.png``; ``-o mia``
names the folder, holding ``mia/host.png``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from avatars.prepare import IMAGE_EXT, Prepared, prepare
from avatars.studio import StudioError

WORK = "studio"
"""Subfolder for intermediates (candidates, transcript, prompt, recording, the picture before styling)."""


def output_paths(out: str | Path) -> tuple[Path, str]:
    """(avatar folder, picture file name) for ``-o``."""
    p = Path(out).expanduser()
    if p.suffix.lower() in IMAGE_EXT:
        return p.with_suffix(""), p.name
    return p, "host.png"


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("TOML floats here must be finite")
        return repr(round(v, 4))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def avatar_toml(name: str, media: str, green_screen: bool, source: dict[str, Any]) -> str:
    lines = [f"# Made by streamer avatar {source.get('kind', 'create')} on "
             f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; prepared for lip-sync.",
             f"name = {toml_value(name)}", f"media = {toml_value(media)}",
             f"green_screen = {toml_value(green_screen)}", "", "[source]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in source.items() if v is not None]
    return "\n".join(lines) + "\n"


def save_picture(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise StudioError(f"cannot write {path}: use a .png or .jpg name")


class Staging:
    """The hidden folder a new avatar is made in; ``commit`` puts it in place."""

    def __init__(self, out: str | Path, force: bool = False) -> None:
        self.dest, self.picture_name = output_paths(out)
        self.force = force
        self.dir = Path()
        self.made_parents: list[Path] = []
        self.committed = False

    def __enter__(self) -> Staging:
        if self.dest.exists() and not self.force:
            raise StudioError(f"{self.dest} already exists: choose another -o, or pass --force to replace it")
        self.made_parents = [p for p in (self.dest.parent, *self.dest.parent.parents) if not p.exists()]
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.studio-", dir=self.dest.parent))
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.committed:
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        for parent in self.made_parents:  # folders made for -o, innermost first, if still empty
            try:
                parent.rmdir()
            except OSError:
                break

    @property
    def picture(self) -> Path:
        return self.dir / self.picture_name

    def work(self, name: str) -> Path:
        path = self.dir / WORK / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def finish(self, rgb: np.ndarray, green_screen: bool, source: dict[str, Any]) -> Prepared:
        """Write the picture and avatar.toml, prepare them (face boxes, crops, mask), then commit."""
        save_picture(self.picture, rgb)
        (self.dir / "avatar.toml").write_text(avatar_toml(self.dest.name, self.picture_name, green_screen, source),
                                              encoding="utf-8")
        from avatars.portrait import AvatarError

        try:
            info = prepare(self.picture, progress=None)
        except AvatarError as e:
            raise StudioError(f"the result does not pass avatar prepare: {e}") from None
        self.commit()
        return dataclasses.replace(info, media=self.dest / self.picture_name)

    def commit(self) -> None:
        old = None
        if self.dest.exists():
            old = self.dest.with_name(f".{self.dest.name}.old-{os.getpid()}")
            os.replace(self.dest, old)
        os.replace(self.dir, self.dest)
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
