"""The chat source interface, and the decode result every platform codec returns.

A source is started by its owner with ``await source.run(emit)`` (a task the owner cancels) and
calls ``emit(event)`` for every ChatEvent. Nothing starts in a constructor.

Codecs are pure: bytes (or text) in, ``Decoded`` out: the events, the frames to send back (an ACK,
a PONG) and control signals for the client (reconnect now, authentication failed, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from streamer.events import ChatEvent

EmitFn = Callable[[ChatEvent], None]


class CodecError(ValueError):
    """A frame that cannot be decoded; the client skips it with one log line per kind."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class Decoded:
    events: list[ChatEvent] = field(default_factory=list)
    replies: list[bytes | str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    """auth_ok, auth_failed, reconnect, heartbeat_ack"""

    def extend(self, other: Decoded) -> None:
        self.events.extend(other.events)
        self.replies.extend(other.replies)
        self.signals.extend(other.signals)


class ChatSource:
    name = "source"

    async def run(self, emit: EmitFn) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return self.name
