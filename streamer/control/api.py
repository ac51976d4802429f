"""The control API: HTTP on 127.0.0.1, every /api request carrying the operator token.

    GET  /                                 the control panel (static files; it asks for the token)
    GET  /stage                            the stage page: the stream over WebRTC (no token: it is the show)
    POST /stage/offer {"sdp","type"}       WebRTC signalling for the stage page
    GET  /healthz                          200 while the clock ticks, 503 otherwise (no token, no data)
    GET  /metrics                          Prometheus text format (token)
    GET  /api/status                       now speaking, queue length, fps, A/V offset, sinks
    GET  /api/events                       the status stream (server-sent events, newest snapshot only)
    GET  /api/panel                        the panel's settings (shortcuts)
    GET  /api/preview.jpg                  the latest output frame, small
    POST /api/interrupt                    stop the current line now -> {"faded_at_tick": N}
    POST /api/pause | /api/resume          stop/restart talking (the stream itself never stops)
    POST /api/say    {"text": "..."}       say this next, ahead of chat
    POST /api/chat   {chat message JSON}   inject a viewer message (schema of the websocket source)
    GET  /api/queue                        what waits (and what is held for approval)
    DELETE /api/queue/{event_id}           drop a queued message
    POST /api/clear  {"include_paid"?}     drop every queued viewer message (paid ones stay unless asked)
    POST /api/ban    {"user": id, "platform"?}   ban a viewer and drop their queued messages
    POST /api/unban  {"user": id, "platform"?}
    POST /api/ban_current                  ban the author of the line being spoken and cut it
    POST /api/approve | /api/reject {"id": event_id}   release or drop a held message
    POST /api/approval {"enabled": bool}   approve-before-speak for new viewers
    POST /api/persona {"name": "..."}      switch persona (voice and avatar follow) at the next line
    POST /api/product {"id"?, "price"?, "stock"?, "original_price"?, "sale_ends_in_s"?}
    POST /api/action {"name": "wave"}      play an action clip
    POST /api/mute   {"muted": bool}       silence the microphone outputs
    POST /api/talk   {"down": bool}        push-to-talk on the operator microphone: down, speak, up
    POST /api/overlay {"name", "enabled"}  toggle an overlay (subtitles, chat, product, banner)
    GET  /api/guard                       the output guard's recent decisions and state
    POST/DELETE /api/guard/allow {"phrase"}   allow (or no longer allow) a phrase for this show
    POST /api/sinks/{name}/reopen          reopen one output's device
    POST /api/obs/source {"source", "visible", "scene"?}   show or hide an OBS source

Bodies are parsed strictly (``streamer.control.bodies``): wrong types and non-finite numbers get a
422 naming the field, malformed or deeply nested JSON a 400; nothing is coerced.

Token: ``Authorization: Bearer <token>`` (or ``X-Streamer-Token``). It comes from the environment
(``STREAMER_CONTROL_TOKEN``) or is generated at start and printed once to the console (never logged).
The panel, hotkeys and OBS only send these commands and read the status stream; no pipeline logic
lives here.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from importlib import resources
from typing import Any

from aiohttp import web

from chat_sources.schema import ChatMessageError, event_from_json
from streamer.control import bodies as b
from streamer.control.feed import StatusFeed
from streamer.control.metrics import CONTENT_TYPE, render
from streamer.events import clean_text

log = logging.getLogger(__name__)

TOKEN_ENV = "STREAMER_CONTROL_TOKEN"
PUBLIC = ("/", "/healthz", "/stage", "/stage/offer", "/favicon.ico")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def control_token() -> tuple[str, bool]:
    """The token and whether it was generated (so the caller prints it once)."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, False
    return secrets.token_urlsafe(18), True


def _error(status: int, message: str, field: str = "") -> web.Response:
    body: dict[str, Any] = {"ok": False, "error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


def panel_file(name: str) -> bytes:
    return resources.files("streamer.control").joinpath("panel", name).read_bytes()


class ControlServer:
    def __init__(self, app: Any, host: str, port: int, token: str, settings: Any = None) -> None:
        self.app = app
        self.host, self.port, self.token = host, port, token
        self.settings = settings if settings is not None else getattr(getattr(app, "settings", None), "control", None)
        self.bound_port: int | None = None
        self.feed = StatusFeed(self._snapshot)
        self.obs_sources: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self._clients: list[Any] = []

    # ------------------------------------------------------------------ plumbing
    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("X-Streamer-Token", "")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        public = request.path in PUBLIC or request.path.startswith("/panel/")
        if not public and not self._authorized(request):
            return _error(401, "missing or wrong token")
        try:
            return await handler(request)
        except b.BodyError as e:
            return _error(e.status, str(e), e.field)

    async def _body(self, request: web.Request, model: type[b.B]) -> b.B:
        return b.validate(model, b.parse_json_object(await request.read()))

    def _ok(self, **fields: Any) -> web.Response:
        self.feed.poke()
        return web.json_response({"ok": True, **fields})

    def _snapshot(self) -> dict[str, Any]:
        snap = getattr(self.app, "operator_status", self.app.status)()
        return {**snap, "obs_sources": self.obs_sources}

    # ------------------------------------------------------------------ pages and health
    async def index(self, request: web.Request) -> web.Response:
        # viewer text is drawn with textContent; the policy is the second wall: only this server's own
        # scripts run, and the page talks to nothing else
        return web.Response(body=panel_file("index.html"), content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                     "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
                                                                "frame-ancestors 'none'",
                                     "X-Frame-Options": "DENY"})

    async def stage_page(self, request: web.Request) -> web.Response:
        return web.Response(body=panel_file("stage.html"), content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        types = {"js": "text/javascript", "css": "text/css"}
        kind = types.get(name.rsplit(".", 1)[-1])
        if kind is None or "/" in name or name.startswith("."):
            raise web.HTTPNotFound()
        try:
            data = panel_file(name)
        except FileNotFoundError:
            raise web.HTTPNotFound() from None
        return web.Response(body=data, content_type=kind, charset="utf-8", headers={"Cache-Control": "no-store"})

    async def healthz(self, request: web.Request) -> web.Response:
        healthy = getattr(self.app, "healthy", lambda: True)()
        return web.Response(text="ok\n" if healthy else "unhealthy\n", status=200 if healthy else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=render(self._snapshot()), headers={"Content-Type": CONTENT_TYPE})

    async def panel_settings(self, request: web.Request) -> web.Response:
        shortcuts = self.settings.shortcuts.model_dump() if self.settings is not None else {}
        return web.json_response({"ok": True, "shortcuts": shortcuts})

    async def preview(self, request: web.Request) -> web.Response:
        data = await asyncio.to_thread(getattr(self.app, "preview_jpeg", lambda: None))
        if data is None:
            return _error(404, "no frame yet")
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: one ``status`` event per change, newest state only."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        try:
            async with aclosing(self.feed.subscribe()) as snapshots:
                async for snap in snapshots:
                    data = json.dumps(snap, ensure_ascii=False, default=str)
                    await resp.write(f"event: status\ndata: {data}\n\n".encode())
        except ConnectionResetError:
            pass
        return resp

    # ------------------------------------------------------------------ commands
    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, **self.app.status()})

    async def interrupt(self, request: web.Request) -> web.Response:
        tick = await self.app.interrupt()
        log.info("operator interrupt", extra={"tick": tick})
        return self._ok(faded_at_tick=tick)

    async def pause(self, request: web.Request) -> web.Response:
        tick = await self.app.pause()
        return self._ok(paused=True, faded_at_tick=tick)

    async def resume(self, request: web.Request) -> web.Response:
        self.app.resume()
        return self._ok(paused=False)

    async def say(self, request: web.Request) -> web.Response:
        text = clean_text((await self._body(request, b.SayBody)).text, 1000)
        if not text:
            return _error(422, "text: nothing left to say after removing control characters", "text")
        self.app.say_now(text)
        return self._ok()

    async def chat(self, request: web.Request) -> web.Response:
        body = b.parse_json_object(await request.read())
        b.validate(b.ChatBody, body)
        try:
            event = event_from_json(body, "control", "local")
        except ChatMessageError as e:
            return _error(422, str(e))
        self.app.inject(event)
        return self._ok(id=event.id)

    async def queue(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "queue": self.app.director.queue_view()})

    async def delete(self, request: web.Request) -> web.Response:
        removed = self.app.director.delete(request.match_info["event_id"])
        self.feed.poke()
        return web.json_response({"ok": bool(removed), "removed": removed}, status=200 if removed else 404)

    async def guard(self, request: web.Request) -> web.Response:
        """The output guard's recent decisions (rule, action, reason, excerpt) and its state."""
        g = self.app.director.output_filter
        return self._ok(guard=g.status(), recent=g.recent())

    async def guard_allow(self, request: web.Request) -> web.Response:
        """Allow a phrase the guard would stop, for this show only (a brand the shop may name, say)."""
        body = await self._body(request, b.PhraseBody)
        allowed = self.app.director.output_filter.allow(body.phrase)
        log.info("operator allowed a phrase for this show", extra={"phrase": body.phrase})
        return self._ok(allowed=allowed)

    async def guard_disallow(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.PhraseBody)
        return self._ok(allowed=self.app.director.output_filter.disallow(body.phrase))

    async def clear(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.ClearBody)
        removed = self.app.clear_queue(body.include_paid)
        log.info("operator cleared the queue", extra={"removed": removed})
        return self._ok(removed=removed)

    async def ban(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.UserBody)
        removed = self.app.director.ban(body.user, body.platform)
        log.info("operator ban", extra={"user": body.user, "removed": removed})
        return self._ok(removed=removed)

    async def unban(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.UserBody)
        self.app.director.unban(body.user, body.platform)
        return self._ok()

    async def ban_current(self, request: web.Request) -> web.Response:
        result = await self.app.ban_current()
        if not result["banned"]:
            return _error(409, "the line being spoken answers no viewer")
        log.info("operator banned the current line's author", extra={"users": [a["id"] for a in result["banned"]]})
        return self._ok(**result)

    async def approve(self, request: web.Request) -> web.Response:
        ok = self.app.director.approve((await self._body(request, b.IdBody)).id)
        self.feed.poke()
        return web.json_response({"ok": ok}, status=200 if ok else 404)

    async def reject(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.IdBody)
        moderator = self.app.director.moderator
        ok = moderator is not None and moderator.reject(body.id) is not None
        self.feed.poke()
        return web.json_response({"ok": ok}, status=200 if ok else 404)

    async def approval(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.EnabledBody)
        moderator = self.app.director.moderator
        if moderator is None:
            return _error(409, "moderation is off")
        moderator.approval = body.enabled
        return self._ok(enabled=moderator.approval)

    async def persona(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.NameBody)
        try:
            name = await self.app.set_persona(body.name)
        except KeyError as e:
            return _error(404, str(e).strip("'\""), "name")
        return self._ok(persona=name)

    async def product(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.ProductBody)
        try:
            product = self.app.update_product(body.id, body.price, body.stock)
        except KeyError as e:
            return _error(404, str(e).strip("'\""), "id")
        card = getattr(self.app, "set_product_card", None)
        if card is not None:
            card(body.original_price, body.sale_ends_in_s)
        return self._ok(product=product)

    async def action(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.NameBody)
        try:
            turn = self.app.play_action(body.name)
        except KeyError:
            return _error(404, f"no action {body.name!r}; known: {', '.join(self.app.actions) or 'none configured'}",
                          "name")
        return self._ok(turn=turn)

    async def mute(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.MuteBody)
        self.app.set_muted(body.muted)
        return self._ok(muted=body.muted)

    async def talk(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.TalkBody)
        try:
            self.app.talk(body.down)
        except (LookupError, ValueError) as e:
            return _error(409, str(e))
        return self._ok(talking=body.down)

    async def overlay(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.OverlayBody)
        return self._ok(overlays=self.app.set_overlay(body.name, body.enabled))

    async def reopen(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not self.app.reopen_sink(name):
            return _error(404, f"no output {name!r} that can be reopened")
        return self._ok(reopening=name)

    async def obs_source(self, request: web.Request) -> web.Response:
        body = await self._body(request, b.ObsSourceBody)
        self.obs_sources[body.source] = {"visible": body.visible, "scene": body.scene}
        return self._ok(obs_sources=self.obs_sources)

    async def stage_offer(self, request: web.Request) -> web.Response:
        hub = getattr(self.app, "stage_hub", lambda: None)()
        if hub is None:
            return _error(404, "the stage is off: set [outputs.stage] enabled = true")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            # no token on the stage (it is the public show), so no other site's page may open viewers here
            return _error(403, "the stage page must be loaded from this server")
        if request.content_type != "application/json":
            return _error(415, "expected Content-Type: application/json")
        body = b.parse_json_object(await request.read())
        sdp, kind = body.get("sdp"), body.get("type")
        if not isinstance(sdp, str) or kind != "offer":
            return _error(422, "expected {\"sdp\": \"...\", \"type\": \"offer\"}", "sdp")
        try:
            return web.json_response(await hub.answer(sdp, kind))
        except LookupError as e:
            return _error(503, str(e))
        except ValueError as e:
            return _error(400, str(e))

    # ------------------------------------------------------------------ life cycle
    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self.index)
        r.add_get("/stage", self.stage_page)
        r.add_post("/stage/offer", self.stage_offer)
        r.add_get("/panel/{name}", self.static)
        r.add_get("/healthz", self.healthz)
        r.add_get("/metrics", self.metrics)
        r.add_get("/api/status", self.status)
        r.add_get("/api/events", self.events)
        r.add_get("/api/panel", self.panel_settings)
        r.add_get("/api/preview.jpg", self.preview)
        r.add_get("/api/queue", self.queue)
        r.add_delete("/api/queue/{event_id}", self.delete)
        r.add_post("/api/sinks/{name}/reopen", self.reopen)
        r.add_get("/api/guard", self.guard)
        r.add_post("/api/guard/allow", self.guard_allow)
        r.add_delete("/api/guard/allow", self.guard_disallow)
        for path, handler in (("interrupt", self.interrupt), ("pause", self.pause), ("resume", self.resume),
                              ("say", self.say), ("chat", self.chat), ("clear", self.clear), ("ban", self.ban),
                              ("unban", self.unban), ("ban_current", self.ban_current), ("approve", self.approve),
                              ("reject", self.reject), ("approval", self.approval), ("persona", self.persona),
                              ("product", self.product), ("action", self.action), ("mute", self.mute), ("talk", self.talk),
                              ("overlay", self.overlay), ("obs/source", self.obs_source)):
            r.add_post(f"/api/{path}", handler)

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth], client_max_size=64 * 1024)
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        socks = getattr(server, "sockets", None) or []
        self.bound_port = socks[0].getsockname()[1] if socks else self.port
        self.feed.start()
        log.info("control API listening", extra={"url": f"http://{self.host}:{self.bound_port}/"})
        await self._start_clients()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.bound_port}"

    async def _start_clients(self) -> None:
        """Global hotkeys and the OBS bridge, when the profile turns them on: clients of this API."""
        s = self.settings
        if s is None:
            return
        if s.hotkeys.enabled:
            from streamer.control.hotkeys import GlobalHotkeys

            hotkeys = GlobalHotkeys(self.url, self.token, s.hotkeys)
            try:
                hotkeys.start()
                self._clients.append(hotkeys)
            except RuntimeError as e:
                log.warning("global hotkeys are off", extra={"reason": str(e)})
        if s.obs.enabled:
            from streamer.control.obs import ObsBridge

            bridge = ObsBridge(s.obs, self.feed.subscribe)
            bridge.start()
            self._clients.append(bridge)

    async def stop(self) -> None:
        for client in reversed(self._clients):
            await client.aclose()
        self._clients.clear()
        await self.feed.aclose()
        hub = getattr(self.app, "stage_hub", lambda: None)()
        if hub is not None:
            await hub.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
