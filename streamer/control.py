"""The local control API: HTTP on 127.0.0.1, every request carrying the operator token.

    GET  /api/status                      now speaking, queue length, fps, A/V offset, sinks
    POST /api/interrupt                   stop the current line now -> {"faded_at_tick": N}
    POST /api/pause | /api/resume         stop/restart talking (the stream itself never stops)
    POST /api/say    {"text": "..."}      say this next, ahead of chat
    POST /api/chat   {chat message JSON}  inject a viewer message (schema of the websocket source)

Token: ``Authorization: Bearer <token>`` (or ``X-Streamer-Token``). It comes from the environment
(``STREAMER_CONTROL_TOKEN``) or is generated at start and printed once to the console (never logged).
The panel and hotkeys only send these commands; no pipeline logic lives here.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
from typing import Any

from aiohttp import web

from chat_sources.schema import ChatMessageError, event_from_json
from streamer.events import clean_text

log = logging.getLogger(__name__)

TOKEN_ENV = "STREAMER_CONTROL_TOKEN"


def control_token() -> tuple[str, bool]:
    """The token and whether it was generated (so the caller prints it once)."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, False
    return secrets.token_urlsafe(18), True


class ControlServer:
    def __init__(self, app: Any, host: str, port: int, token: str) -> None:
        self.app = app
        self.host, self.port, self.token = host, port, token
        self.bound_port: int | None = None
        self._runner: web.AppRunner | None = None

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("X-Streamer-Token", "")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"ok": False, "error": "missing or wrong token"}, status=401)
        return await handler(request)

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text='{"ok": false, "error": "body is not JSON"}', content_type="application/json") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"ok": false, "error": "expected a JSON object"}', content_type="application/json")
        return body

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, **self.app.status()})

    async def interrupt(self, request: web.Request) -> web.Response:
        tick = await self.app.interrupt()
        log.info("operator interrupt", extra={"tick": tick})
        return web.json_response({"ok": True, "faded_at_tick": tick})

    async def pause(self, request: web.Request) -> web.Response:
        tick = await self.app.pause()
        return web.json_response({"ok": True, "paused": True, "faded_at_tick": tick})

    async def resume(self, request: web.Request) -> web.Response:
        self.app.resume()
        return web.json_response({"ok": True, "paused": False})

    async def say(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        text = clean_text(str(body.get("text", "")), 1000)
        if not text:
            return web.json_response({"ok": False, "error": "text: required"}, status=400)
        self.app.say_now(text)
        return web.json_response({"ok": True})

    async def chat(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            event = event_from_json(body, "control", "local")
        except ChatMessageError as e:
            return web.json_response({"ok": False, "error": str(e)}, status=400)
        self.app.inject(event)
        return web.json_response({"ok": True, "id": event.id})

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth], client_max_size=64 * 1024)
        app.router.add_get("/api/status", self.status)
        app.router.add_post("/api/interrupt", self.interrupt)
        app.router.add_post("/api/pause", self.pause)
        app.router.add_post("/api/resume", self.resume)
        app.router.add_post("/api/say", self.say)
        app.router.add_post("/api/chat", self.chat)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        socks = getattr(server, "sockets", None) or []
        self.bound_port = socks[0].getsockname()[1] if socks else self.port
        log.info("control API listening", extra={"url": f"http://{self.host}:{self.bound_port}/api/status"})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
