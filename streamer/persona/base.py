"""What the director hands a persona (a ``Turn``) and what every persona implements."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from streamer.events import ChatEvent

_turn_ids = itertools.count(1)


@dataclass
class Turn:
    kind: str
    """answer | thanks | idle | operator | deflect"""
    priority: int
    events: list[ChatEvent] = field(default_factory=list)
    text: str = ""
    """The line itself for idle and operator turns."""
    topic: str = ""
    """What merged questions share (an FAQ topic or the normalised text)."""
    id: str = field(default_factory=lambda: f"turn{next(_turn_ids)}")

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(e.user.name for e in self.events))


class Persona(Protocol):
    name: str

    def reply(self, turn: Turn) -> AsyncGenerator[str, None]:
        """The reply, sentence by sentence, as soon as each one is complete."""
        ...
