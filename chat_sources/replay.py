"""Replay a JSON Lines chat file at its original pace (or scaled), optionally looping.

Each line is a chat message in the generic schema plus ``t``: seconds from the start of the file.
Lines that do not parse are reported once at load and skipped. A missing, unreadable or empty file
is reported through the source's state and retried slowly (the operator may fix it while live).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chat_sources.base import ChatSource, EmitFn, SourceError, backoff
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

    def __init__(self, path: str | Path, speed: float = 1.0, loop: bool = True, room: str = "replay", *,
                 reconnect: Callable[[int], float] = backoff, time_fn: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        super().__init__(reconnect=reconnect)
        self.path, self.speed, self.loop, self.room = Path(path), speed, loop, room
        self.emitted = 0
        self._time_fn = time_fn
        self._sleep = sleep
        """Pacing is injectable so a test can run it on virtual time."""

    def describe(self) -> str:
        return f"replay {self.path.name} x{self.speed}"

    async def session(self, emit: EmitFn) -> bool:
        items = await asyncio.to_thread(self._load)
        self.went_live()
        now = self._time_fn or asyncio.get_running_loop().time
        span = items[-1][0] + 5.0
        start = now()
        offset = 0.0
        while True:
            for t, obj in items:
                delay = start + (offset + t) / self.speed - now()
                if delay > 0:
                    await self._sleep(delay)
                event = event_from_json(obj, "replay", self.room)
                self.emitted += 1
                log.info("chat event received", extra={"event": event.id, "kind": event.kind.value, "source": "replay"})
                emit(event)
            if not self.loop:
                return True
            offset += span

    def _load(self) -> list[tuple[float, dict[str, Any]]]:
        try:
            items = load_replay(self.path)
        except FileNotFoundError:
            raise SourceError("replay file missing", f"replay file not found: {self.path}",
                              needs_operator=True) from None
        except (OSError, UnicodeDecodeError) as e:
            raise SourceError("replay file unreadable", f"cannot read replay file {self.path}: "
                              f"{getattr(e, 'strerror', None) or e}", needs_operator=True) from None
        if not items:
            raise SourceError("replay file empty", f"replay file {self.path} has no usable lines", needs_operator=True)
        return items
