"""A local websocket server that accepts chat as JSON (schema: chat_sources/schema.py).

Any tool can feed the host by connecting to ``ws://127.0.0.1:8766`` and sending one JSON object per
text frame. Each message is answered ``{"ok": true, "id": ...}`` or ``{"ok": false, "error": ...}``;
a malformed message is rejected with its reason (and one log line) and the connection stays up.
"""

from __future__ import annotations

import asyncio
import json
import logging

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chat_sources.base import ChatSource, EmitFn
from chat_sources.schema import ChatMessageError, event_from_json

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20


class WebsocketChatSource(ChatSource):
    name = "websocket"

    def __init__(self, host: str = "127.0.0.1", port: int = 8766, room: str = "local") -> None:
        self.host, self.port, self.room = host, port, room
        self.bound_port: int | None = None
        self.ready = asyncio.Event()
        self.rejected = 0
        self.accepted = 0

    def describe(self) -> str:
        return f"websocket ws://{self.host}:{self.bound_port or self.port}"

    async def run(self, emit: EmitFn) -> None:
        async def handler(conn: ServerConnection) -> None:
            try:
                async for message in conn:
                    await conn.send(json.dumps(self._handle(message, emit)))
            except ConnectionClosed:
                pass

        server: Server
        async with serve(handler, self.host, self.port, max_size=MAX_MESSAGE_BYTES) as server:
            self.bound_port = server.sockets[0].getsockname()[1] if server.sockets else self.port
            log.info("websocket chat source listening", extra={"url": f"ws://{self.host}:{self.bound_port}"})
            self.ready.set()
            await asyncio.Future()  # until cancelled

    def _handle(self, message: str | bytes, emit: EmitFn) -> dict[str, object]:
        if isinstance(message, bytes):
            self.rejected += 1
            log.warning("rejected chat message", extra={"reason": "binary frame; send JSON text"})
            return {"ok": False, "error": "binary frame; send one JSON object per text frame"}
        try:
            event = event_from_json(message, "websocket", self.room)
        except ChatMessageError as e:
            self.rejected += 1
            log.warning("rejected chat message", extra={"reason": str(e)})
            return {"ok": False, "error": str(e)}
        self.accepted += 1
        log.info("chat event received", extra={"event": event.id, "kind": event.kind.value, "source": "websocket"})
        emit(event)
        return {"ok": True, "id": event.id}
