"""Persona files (TOML): who the host is, how they talk, which voice and avatar they use."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from streamer.config import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    language: str = "en"
    style: str = "Warm, upbeat and concise."
    greeting: str = ""
    rules: list[str] = []
    voice: str = ""
    espeak_voice: str = ""
    avatar: str = ""
    max_sentences: int = 3


@dataclass
class PersonaProfile:
    name: str
    language: str = "en"
    style: str = "Warm, upbeat and concise."
    greeting: str = ""
    rules: list[str] = field(default_factory=list)
    voice: str = ""
    espeak_voice: str = ""
    avatar: str = ""
    max_sentences: int = 3
    path: Path | None = None


def load_profile(path: Path) -> PersonaProfile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: persona file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    try:
        p = _ProfileIn.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
    return PersonaProfile(**p.model_dump(), path=path)
