"""The chat source interface.

A source is started by its owner with ``await source.run(emit)`` (a task the owner cancels) and
calls ``emit(event)`` for every ChatEvent. Nothing starts in a constructor.
"""

from __future__ import annotations

from collections.abc import Callable

from streamer.events import ChatEvent

EmitFn = Callable[[ChatEvent], None]


class ChatSource:
    name = "source"

    async def run(self, emit: EmitFn) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return self.name
