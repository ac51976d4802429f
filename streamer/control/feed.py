"""The status stream: the latest status snapshot, pushed to every subscriber when it changes.

One producer task samples ``snapshot()`` a few times a second and at once after every command
(``poke``). Subscribers always get the newest snapshot, never a backlog: a slow client (a browser
tab in the background, a stalled OBS connection) skips intermediate states instead of falling behind,
and costs the producer nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

log = logging.getLogger(__name__)


class StatusFeed:
    def __init__(self, snapshot: Callable[[], dict[str, Any]], interval_s: float = 0.25) -> None:
        self.snapshot = snapshot
        self.interval_s = interval_s
        self.latest: dict[str, Any] = {}
        self.version = 0
        self._text = ""
        self._changed = asyncio.Condition()
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-feed")

    async def aclose(self) -> None:
        """Stop publishing and end every subscription (their loops return)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    def poke(self) -> None:
        """Something changed (a command ran): publish a fresh snapshot now."""
        self._poke.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.publish()
            except Exception:
                log.exception("status snapshot failed")
            try:
                await asyncio.wait_for(self._poke.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass
            self._poke.clear()

    async def publish(self) -> None:
        snap = self.snapshot()
        text = json.dumps(snap, ensure_ascii=False, default=str, sort_keys=True)
        if text == self._text:
            return
        self._text, self.latest = text, snap
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def subscribe(self) -> AsyncGenerator[dict[str, Any], None]:
        """Yield the current snapshot, then each newer one (only the newest when several piled up)."""
        seen = 0
        while True:
            async with self._changed:
                while self.version == seen and not self.closed:
                    await self._changed.wait()
                if self.closed:
                    return
                seen, snap = self.version, self.latest
            yield snap
