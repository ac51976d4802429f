"""Replay a JSON Lines chat file at its original pace (or scaled), optionally looping.

Each line is a chat message in the generic schema plus ``t``: seconds from the start of the file.
Lines that do not parse are reported once at load and skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from chat_sources.base import ChatSource, EmitFn
from chat_sources.schema import ChatMessageError, event_from_json

log = logging.getLogger(__name__)


def load_replay(path: Path) -> list[tuple[float, dict[str, Any]]]:
    items: list[tuple[float, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                t = float(obj.pop("t"))
                event_from_json(obj, "replay", "check")
            except (ValueError, KeyError, TypeError, AttributeError, ChatMessageError) as e:
                log.warning("skipping bad replay line", extra={"file": str(path), "line": lineno, "reason": str(e)})
                continue
            items.append((t, obj))
    items.sort(key=lambda x: x[0])
    return items


class ReplayChatSource(ChatSource):
    name = "replay"

    def __init__(self, path: str | Path, speed: float = 1.0, loop: bool = True, room: str = "replay") -> None:
        self.path, self.speed, self.loop, self.room = Path(path), speed, loop, room
        self.emitted = 0

    def describe(self) -> str:
        return f"replay {self.path.name} x{self.speed}"

    async def run(self, emit: EmitFn) -> None:
        items = load_replay(self.path)
        if not items:
            log.warning("replay file has no usable lines", extra={"file": str(self.path)})
            return
        span = items[-1][0] + 5.0
        loop = asyncio.get_running_loop()
        start = loop.time()
        offset = 0.0
        while True:
            for t, obj in items:
                due = start + (offset + t) / self.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                event = event_from_json(obj, "replay", self.room)
                self.emitted += 1
                log.info("chat event received", extra={"event": event.id, "kind": event.kind.value, "source": "replay"})
                emit(event)
            if not self.loop:
                return
            offset += span
