"""Twitch chat over IRC-on-websocket.

Anonymous read-only login (``justinfan<digits>``) by default; with ``TWITCH_TOKEN`` (an OAuth user
token with chat:read and chat:edit) and ``TWITCH_NICK`` in the environment it logs in and can send.
We request tags and commands, answer PING, send our own PING every 30 s (the watchdog notices a
silent server within 60 s), and reconnect when the server says RECONNECT.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

from websockets.asyncio.client import ClientConnection

from chat_sources.base import Decoded
from chat_sources.client import AuthFailed, Target, WebsocketClientSource
from chat_sources.twitch_codec import TwitchCodec

IRC_URL = "wss://irc-ws.chat.twitch.tv:443"


class TwitchChatSource(WebsocketClientSource):
    platform = "twitch"
    name = "twitch"
    heartbeat_s = 30.0

    def __init__(self, channel: str, *, url: str | None = None, token: str | None = None, nick: str | None = None,
                 **kw: Any) -> None:
        super().__init__(channel.lstrip("#").lower(), **kw)
        self.url = url or IRC_URL
        token = token if token is not None else os.environ.get("TWITCH_TOKEN", "")
        self.token = token.removeprefix("oauth:")
        self.nick = (nick or os.environ.get("TWITCH_NICK", "")).lower() if self.token else ""
        self.codec = TwitchCodec(self.room)
        self._ws: ClientConnection | None = None

    async def bootstrap(self, fresh: bool) -> Target:
        return Target(self.url)

    async def on_open(self, ws: ClientConnection) -> None:
        await ws.send("CAP REQ :twitch.tv/tags twitch.tv/commands")
        if self.token:
            await ws.send(f"PASS oauth:{self.token}")
            await ws.send(f"NICK {self.nick}")
        else:
            await ws.send(f"NICK justinfan{random.randint(10000, 99999)}")
        try:
            await asyncio.wait_for(self._await_welcome(ws), timeout=10.0)
        except asyncio.TimeoutError:
            raise AuthFailed("no welcome from the server within 10 s") from None
        await ws.send(f"JOIN #{self.room}")
        self._ws = ws

    async def _await_welcome(self, ws: ClientConnection) -> None:
        while True:
            decoded = self.decode_safely(await ws.recv())
            for reply in decoded.replies:
                await ws.send(reply)
            if "auth_failed" in decoded.signals:
                raise AuthFailed("Twitch refused the login (check TWITCH_TOKEN and TWITCH_NICK)")
            if "auth_ok" in decoded.signals:
                return

    def heartbeat_frame(self) -> str:
        return "PING :tmi.twitch.tv"

    def decode(self, data: bytes | str) -> Decoded:
        return self.codec.decode(data)

    async def say(self, text: str) -> None:
        """Send a chat message (needs TWITCH_TOKEN; anonymous logins can only read)."""
        if not self.token:
            raise PermissionError("anonymous Twitch logins cannot send: set TWITCH_TOKEN and TWITCH_NICK")
        if self._ws is None:
            raise ConnectionError("not connected")
        await self._ws.send(f"PRIVMSG #{self.room} :{text.replace(chr(13), ' ').replace(chr(10), ' ')}")
