"""A local websocket server that accepts chat as JSON (schema: chat_sources/schema.py).

Any tool can feed the host by connecting to ``ws://127.0.0.1:8766`` and sending one JSON object per
text frame. Each message is answered ``{"ok": true, "id": ...}`` or ``{"ok": false, "error": ...}``;
a malformed message is rejected with its reason (and one log line) and the connection stays up.

Who may say what (a web page the operator happens to have open must not steer the host):

- A browser always sends ``Origin``; a connection with an ``Origin`` that is not listed in
  ``allowed_origins`` is refused at the handshake (HTTP 403). Tools that send no ``Origin``
  (scripts, bots, OBS plugins) are accepted.
- Claims that change how a message is treated need the control token, sent at the handshake the
  way the control API takes it (``Authorization: Bearer TOKEN`` or ``X-Streamer-Token: TOKEN``):
  without it a ``moderator`` flag is dropped (the message still arrives) and paid kinds (gift,
  super_chat, membership) are refused with the reason. A wrong token is refused at the handshake.
- It listens on loopback only, unless ``allow_remote`` is set and a token exists.
"""

from __future__ import annotations

import dataclasses
import errno
import hmac
import ipaddress
import json
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from chat_sources.base import ChatSource, EmitFn, Failure, backoff
from chat_sources.schema import ChatMessageError, event_from_json
from streamer.events import ChatEvent

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20
TOKEN_HOW = "send the control token when connecting: Authorization: Bearer TOKEN (or X-Streamer-Token: TOKEN)"


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_from(headers: Headers) -> str:
    """The token a client presented at the handshake (the control API's scheme), or ''."""
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("X-Streamer-Token", "").strip()


class WebsocketChatSource(ChatSource):
    name = "websocket"

    def __init__(self, host: str = "127.0.0.1", port: int = 8766, room: str = "local", *, token: str | None = None,
                 allowed_origins: Iterable[str] = (), allow_remote: bool = False,
                 reconnect: Callable[[int], float] = backoff) -> None:
        super().__init__(reconnect=reconnect)
        if not is_loopback(host) and not (allow_remote and token):
            raise ValueError(f"websocket chat on {host} would be reachable from the network: "
                             "set allow_remote = true and STREAMER_CONTROL_TOKEN, or listen on 127.0.0.1")
        self.host, self.port, self.room = host, port, room
        self.token = token or ""
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)
        self.bound_port: int | None = None
        self.rejected = 0
        self.accepted = 0
        self.refused_connections = 0
        self.moderator_claims_dropped = 0
        self._origins_logged: set[str] = set()

    @property
    def ready(self) -> Any:
        """Set while the server accepts connections (an asyncio.Event)."""
        return self.live

    def describe(self) -> str:
        return f"websocket ws://{self.host}:{self.bound_port or self.port}"

    # ---------------------------------------------------------------- one server lifetime
    async def session(self, emit: EmitFn) -> bool:
        async def handler(conn: ServerConnection) -> None:
            trusted = self._trusted(conn)
            try:
                async for message in conn:
                    await conn.send(json.dumps(self._handle(message, emit, trusted), ensure_ascii=False))
            except ConnectionClosed:
                pass

        async with serve(handler, self.host, self.port, max_size=MAX_MESSAGE_BYTES,
                         process_request=self._check_handshake) as server:
            self.bound_port = server.sockets[0].getsockname()[1] if server.sockets else self.port
            self.went_live()
            log.info("websocket chat source listening", extra={"url": f"ws://{self.host}:{self.bound_port}",
                                                               "allowed_origins": sorted(self.allowed_origins)})
            await server.wait_closed()  # until cancelled
        return False

    def failure(self, error: Exception) -> Failure:
        where = f"ws://{self.host}:{self.port}"
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            return Failure("port in use", f"cannot listen on {where}: port {self.port} is in use by another program "
                           "(stop it, or set another port in the websocket [[chat]] entry)", needs_operator=True)
        if isinstance(error, OSError):
            return Failure("cannot listen", f"cannot listen on {where}: {error.strerror or error}",
                           needs_operator=True)
        return super().failure(error)

    # ---------------------------------------------------------------- who is calling
    def _check_handshake(self, conn: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            return self._refuse(conn, HTTPStatus.FORBIDDEN, origin,
                                f"origin {origin} is not allowed; add it to allowed_origins in the websocket "
                                "[[chat]] entry to let that page send chat")
        given = token_from(request.headers)
        if given and not (self.token and hmac.compare_digest(given.encode(), self.token.encode())):
            return self._refuse(conn, HTTPStatus.UNAUTHORIZED, origin or "-", "wrong token")
        return None

    def _refuse(self, conn: ServerConnection, status: HTTPStatus, origin: str, reason: str) -> Response:
        self.refused_connections += 1
        if len(self._origins_logged) < 100 and origin not in self._origins_logged:  # once per origin: no log flood
            self._origins_logged.add(origin)
            log.warning("refused a websocket chat connection", extra={"origin": origin, "reason": reason,
                                                                      "status": int(status)})
        return conn.respond(status, reason + "\n")

    def _trusted(self, conn: ServerConnection) -> bool:
        given = token_from(conn.request.headers) if conn.request is not None else ""
        return bool(self.token and given) and hmac.compare_digest(given.encode(), self.token.encode())

    # ---------------------------------------------------------------- one message
    def _handle(self, message: str | bytes, emit: EmitFn, trusted: bool) -> dict[str, object]:
        if isinstance(message, bytes):
            return self._reject("binary frame; send one JSON object per text frame")
        try:
            event = event_from_json(message, "websocket", self.room)
        except ChatMessageError as e:
            return self._reject(str(e))
        reply: dict[str, object] = {"ok": True}
        if not trusted:
            if event.kind.is_paid:
                return self._reject(f"a {event.kind.value} needs the control token: {TOKEN_HOW}")
            if event.user.moderator:
                event = _without_moderator(event)
                self.moderator_claims_dropped += 1
                reply["note"] = f"moderator flag ignored: {TOKEN_HOW}"
        self.accepted += 1
        log.info("chat event received", extra={"event": event.id, "kind": event.kind.value, "source": "websocket"})
        emit(event)
        return reply | {"id": event.id}

    def _reject(self, reason: str) -> dict[str, object]:
        self.rejected += 1
        log.warning("rejected chat message", extra={"reason": reason})
        return {"ok": False, "error": reason}


def _without_moderator(event: ChatEvent) -> ChatEvent:
    return dataclasses.replace(event, user=dataclasses.replace(event.user, moderator=False))
