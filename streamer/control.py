"""The local control API: HTTP on 127.0.0.1, every request carrying the operator token.

    GET  /api/status                      now speaking, queue length, fps, A/V offset, sinks
    POST /api/interrupt                   stop the current line now -> {"faded_at_tick": N}
    POST /api/pause | /api/resume         stop/restart talking (the stream itself never stops)
    POST /api/say    {"text": "..."}      say this next, ahead of chat
    POST /api/chat   {chat message JSON}  inject a viewer message (schema of the websocket source)
    GET  /api/queue                       what waits (and what is held for approval)
    DELETE /api/queue/{event_id}          drop a queued message
    POST /api/ban    {"user": id, "platform"?}   ban a viewer and drop their queued messages
    POST /api/unban  {"user": id, "platform"?}
    POST /api/approve | /api/reject {"id": event_id}   release or drop a held message
    POST /api/approval {"enabled": bool}  approve-before-speak for new viewers
    POST /api/persona {"name": "..."}     switch persona (voice and avatar follow) at the next line
    POST /api/product {"id"?, "price"?, "stock"?}   switch product or change its live values
    POST /api/action {"name": "wave"}     play an action clip

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

    async def queue(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "queue": self.app.director.queue_view()})

    async def delete(self, request: web.Request) -> web.Response:
        removed = self.app.director.delete(request.match_info["event_id"])
        return web.json_response({"ok": bool(removed), "removed": removed}, status=200 if removed else 404)

    async def ban(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        user = str(body.get("user", "")).strip()
        if not user:
            return web.json_response({"ok": False, "error": "user: required"}, status=400)
        removed = self.app.director.ban(user, body.get("platform") or None)
        log.info("operator ban", extra={"user": user, "removed": removed})
        return web.json_response({"ok": True, "removed": removed})

    async def unban(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        self.app.director.unban(str(body.get("user", "")), body.get("platform") or None)
        return web.json_response({"ok": True})

    async def approve(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        ok = self.app.director.approve(str(body.get("id", "")))
        return web.json_response({"ok": ok}, status=200 if ok else 404)

    async def reject(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        moderator = self.app.director.moderator
        ok = moderator is not None and moderator.reject(str(body.get("id", ""))) is not None
        return web.json_response({"ok": ok}, status=200 if ok else 404)

    async def approval(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        moderator = self.app.director.moderator
        if moderator is None:
            return web.json_response({"ok": False, "error": "moderation is off"}, status=409)
        moderator.approval = bool(body.get("enabled"))
        return web.json_response({"ok": True, "enabled": moderator.approval})

    async def persona(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            name = await self.app.set_persona(str(body.get("name", "")))
        except KeyError as e:
            return web.json_response({"ok": False, "error": str(e).strip("'\"")}, status=404)
        return web.json_response({"ok": True, "persona": name})

    async def product(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            price = None if body.get("price") is None else float(body["price"])
            stock = None if body.get("stock") is None else int(body["stock"])
            if (price is not None and price < 0) or (stock is not None and stock < 0):
                raise ValueError("price and stock must not be negative")
            product = self.app.update_product(body.get("id") or None, price, stock)
        except KeyError as e:
            return web.json_response({"ok": False, "error": str(e).strip("'\"")}, status=404)
        except (TypeError, ValueError) as e:
            return web.json_response({"ok": False, "error": str(e)}, status=400)
        return web.json_response({"ok": True, "product": product})

    async def action(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            turn = self.app.play_action(str(body.get("name", "")))
        except KeyError:
            return web.json_response({"ok": False, "error": f"no action {body.get('name')!r}; known: "
                                      f"{', '.join(self.app.actions) or 'none configured'}"}, status=404)
        return web.json_response({"ok": True, "turn": turn})

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth], client_max_size=64 * 1024)
        app.router.add_get("/api/status", self.status)
        app.router.add_post("/api/interrupt", self.interrupt)
        app.router.add_post("/api/pause", self.pause)
        app.router.add_post("/api/resume", self.resume)
        app.router.add_post("/api/say", self.say)
        app.router.add_post("/api/chat", self.chat)
        app.router.add_get("/api/queue", self.queue)
        app.router.add_delete("/api/queue/{event_id}", self.delete)
        app.router.add_post("/api/ban", self.ban)
        app.router.add_post("/api/unban", self.unban)
        app.router.add_post("/api/approve", self.approve)
        app.router.add_post("/api/reject", self.reject)
        app.router.add_post("/api/approval", self.approval)
        app.router.add_post("/api/persona", self.persona)
        app.router.add_post("/api/product", self.product)
        app.router.add_post("/api/action", self.action)
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
