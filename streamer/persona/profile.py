"""Persona files (TOML): who the host is, how they talk, which voice and avatar they use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from streamer.config import read_toml_model


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
    p = read_toml_model(path, _ProfileIn, "persona file")
    return PersonaProfile(**p.model_dump(), path=path)
