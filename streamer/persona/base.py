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
    others: int = 0
    """Viewers who asked the same beyond those in ``events`` (merged askers are capped)."""
    id: str = field(default_factory=lambda: f"turn{next(_turn_ids)}")

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(e.user.name for e in self.events))

    @property
    def answers(self) -> str | None:
        """Id of the chat event this turn answers (the first asker's), if any."""
        return self.events[0].id if self.events else None


class Persona(Protocol):
    name: str
    """The display name viewers use to address the host."""
    names: list[str]
    """The name and its aliases: a message with any of them is a mention."""

    def reply(self, turn: Turn) -> AsyncGenerator[str, None]:
        """The reply, sentence by sentence, as soon as each one is complete."""
        ...

    def topic(self, text: str) -> str | None:
        """What a viewer message asks about (an FAQ topic), so repeated questions merge; None if unknown."""
        ...

    async def aclose(self) -> None:
        """Release the persona's resources (an HTTP client)."""
        ...

    def error_counts(self) -> dict[str, int]:
        """Failures by kind since the start (an LLM's failed attempts and fallbacks), for the metrics."""
        ...
