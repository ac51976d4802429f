"""A tiny aiohttp host for fake platforms: HTTP endpoints and a websocket route on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


class FakeServer:
    def __init__(self) -> None:
        self.handlers: set[asyncio.Task[Any]] = set()
        self.app = web.Application(middlewares=[self._track])
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.connections = 0
        self.sessions: list[asyncio.Task[Any]] = []
        self.scenarios: list[list[tuple]] = []
        """One list of actions per websocket connection, in order: ("send", data), ("sleep", s),
        ("close",), ("stall",), ("expect", predicate, timeout)."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeServer:
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @web.middleware
    async def _track(self, request: web.Request, handler: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            return await handler(request)
        finally:
            self.handlers.discard(task)

    async def stop(self) -> None:
        if self.runner is None:
            return
        for site in list(self.runner.sites):  # stop accepting first: no handler may start after this
            await site.stop()
        for _ in range(5):
            pending = [t for t in self.handlers if not t.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
        try:
            await asyncio.wait_for(self.runner.cleanup(), timeout=5.0)
        except asyncio.TimeoutError:
            pass
        self.runner = None
        await asyncio.sleep(0.01)  # let aiohttp's connection tasks see their transports close

    async def __aenter__(self) -> FakeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def play(self, ws: web.WebSocketResponse, scenario: list[tuple], stalled: asyncio.Event,
                   reader: asyncio.Task[Any], extra: Any = None) -> None:
        """Run one connection's scenario, then wait for the client to go. ``extra(ws, action)`` handles
        platform-specific actions and returns False to end the scenario."""
        try:
            for action in scenario:
                if action[0] == "send":
                    data = action[1]
                    await (ws.send_str(data) if isinstance(data, str) else ws.send_bytes(data))
                elif action[0] == "sleep":
                    await asyncio.sleep(action[1])
                elif action[0] == "close":
                    await ws.close()
                    break
                elif action[0] == "stall":  # stop talking (and answering heartbeats) but keep the socket open
                    stalled.set()
                    break
                elif extra is not None and not await extra(ws, action):
                    break
            await reader
        finally:
            reader.cancel()

    def next_scenario(self) -> list[tuple]:
        i = self.connections
        self.connections += 1
        return self.scenarios[i] if i < len(self.scenarios) else [("stall",)]
