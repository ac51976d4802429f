"""The rooms control API (what ``streamer rooms status | stop | start`` talk to), and its client.

    GET  /api/rooms                 every room: state, health, fps, queue, restarts, node, control URL;
                                    and the lip-sync deployment's state
    GET  /api/rooms/{name}          one room
    POST /api/rooms/{name}/stop     stop a room (not restarted until started again)
    POST /api/rooms/{name}/start    start a stopped or failed room

HTTP on the supervisor's host and port, every request with the token (``Authorization: Bearer`` or
``X-Streamer-Token``): STREAMER_ROOMS_TOKEN from the environment, or generated once and kept in
``<dir>/supervisor.token`` (owner-only) so the CLI on the same machine finds it. Each room's own
control API (its port and token file are in the status) stays the way to steer that room.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

from streamer.rooms.model import RoomsPlan
from streamer.rooms.process import room_token

log = logging.getLogger(__name__)

TOKEN_ENV = "STREAMER_ROOMS_TOKEN"


def rooms_dir(plan: RoomsPlan) -> Path:
    root = Path(plan.options.supervisor.dir).expanduser()
    return (root if root.is_absolute() else Path.cwd() / root).resolve()


def supervisor_token(plan: RoomsPlan) -> str:
    return os.environ.get(TOKEN_ENV, "").strip() or room_token(rooms_dir(plan) / "supervisor.token")


class RoomsApi:
    def __init__(self, supervisor: Any, plan: RoomsPlan, token: str) -> None:
        self.supervisor = supervisor
        self.plan = plan
        self.token = token
        self.url = ""
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("X-Streamer-Token", "")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not (given and hmac.compare_digest(given.encode(), self.token.encode())):
            return web.json_response({"ok": False, "error": "missing or wrong token"}, status=401)
        return await handler(request)

    def _known(self, request: web.Request) -> str:
        name = request.match_info["name"]
        if name not in {r.name for r in self.plan.rooms}:
            raise web.HTTPNotFound(text=json.dumps({"ok": False, "error": f"no room {name!r}"}, ensure_ascii=False),
                                   content_type="application/json")
        return name

    async def rooms(self, request: web.Request) -> web.Response:
        rooms = await self.supervisor.status()
        lipsync = await self.supervisor.lipsync_status()
        return web.json_response({"ok": True, "rooms": rooms, "lipsync": lipsync})

    async def room(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "room": await self.supervisor.room_status(self._known(request))})

    async def stop(self, request: web.Request) -> web.Response:
        name = self._known(request)
        log.info("operator stops a room", extra={"room": name})
        return web.json_response({"ok": True, "room": await self.supervisor.stop_room(name)})

    async def start_room(self, request: web.Request) -> web.Response:
        name = self._known(request)
        log.info("operator starts a room", extra={"room": name})
        return web.json_response({"ok": True, "room": await self.supervisor.start_room(name)})

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth], client_max_size=4096)
        app.router.add_get("/api/rooms", self.rooms)
        app.router.add_get("/api/rooms/{name}", self.room)
        app.router.add_post("/api/rooms/{name}/stop", self.stop)
        app.router.add_post("/api/rooms/{name}/start", self.start_room)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        opts = self.plan.options.supervisor
        site = web.TCPSite(self._runner, opts.host, opts.port)
        await site.start()
        server = getattr(site, "_server", None)
        socks = getattr(server, "sockets", None) or []
        port = socks[0].getsockname()[1] if socks else opts.port
        host = "127.0.0.1" if opts.host == "0.0.0.0" else opts.host
        self.url = f"http://{host}:{port}"
        where = rooms_dir(self.plan) / "supervisor.json"
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(json.dumps({"url": self.url, "pid": os.getpid()}), encoding="utf-8")
        log.info("rooms control API listening", extra={"url": f"{self.url}/api/rooms"})

    async def stop_server(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        (rooms_dir(self.plan) / "supervisor.json").unlink(missing_ok=True)


class SupervisorUnreachable(RuntimeError):
    pass


def supervisor_url(plan: RoomsPlan) -> str:
    """Where ``streamer rooms up`` for this rooms file listens (its note in the rooms folder, else the file)."""
    try:
        return str(json.loads((rooms_dir(plan) / "supervisor.json").read_text(encoding="utf-8"))["url"])
    except (OSError, ValueError, KeyError):
        opts = plan.options.supervisor
        host = "127.0.0.1" if opts.host == "0.0.0.0" else opts.host
        return f"http://{host}:{opts.port}"


def call(plan: RoomsPlan, method: str, path: str, timeout: float = 30.0) -> dict[str, Any]:
    """One request to the supervisor's API; SupervisorUnreachable says how to start one."""
    url = supervisor_url(plan) + path
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                 headers={"Authorization": f"Bearer {supervisor_token(plan)}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as e:
        try:
            body = json.loads(e.read())
        except ValueError:
            body = {}
        return {"ok": False, "status": e.code, "error": body.get("error", str(e))}
    except (urllib.error.URLError, OSError) as e:
        raise SupervisorUnreachable(f"no rooms supervisor at {supervisor_url(plan)} ({getattr(e, 'reason', e)}): "
                                    f"start one with: streamer rooms up -c {plan.file}") from None
