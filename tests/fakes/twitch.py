"""A fake Twitch IRC-over-websocket server: CAP ACK, anonymous justinfan or PASS logins, welcome
numerics, JOIN echo + ROOMSTATE, server PINGs that must be PONGed, RECONNECT, replies to client PINGs;
scenario actions ("ping",) and ("joined",) besides the common ones."""

from __future__ import annotations

import asyncio
import re

from aiohttp import WSMsgType, web

from tests.fakes.base import FakeServer

WELCOME = [":tmi.twitch.tv 001 {nick} :Welcome, GLHF!", ":tmi.twitch.tv 002 {nick} :Your host is tmi.twitch.tv",
           ":tmi.twitch.tv 003 {nick} :This server is rather new", ":tmi.twitch.tv 004 {nick} :-",
           ":tmi.twitch.tv 375 {nick} :-", ":tmi.twitch.tv 372 {nick} :You are in a maze of twisty passages.",
           ":tmi.twitch.tv 376 {nick} :>"]


class FakeTwitch(FakeServer):
    def __init__(self, good_token: str = "goodtoken") -> None:
        super().__init__()
        self.good_token = good_token
        self.logins: list[tuple[str, str]] = []
        self.joins: list[str] = []
        self.pongs = 0
        self.client_pings = 0
        self.sent_by_client: list[str] = []
        self.app.router.add_get("/", self.irc)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def irc(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        lines = await self._login(ws)
        if lines is None:
            return ws
        scenario = [("joined",), *self.next_scenario()]  # like Twitch: no channel traffic before JOIN
        stalled = asyncio.Event()
        await self.play(ws, scenario, stalled, asyncio.create_task(self._read(ws, stalled, lines)), self._ping)
        return ws

    async def _ping(self, ws: web.WebSocketResponse, action: tuple) -> bool:
        """("ping",): a server PING that must be answered within a second, else the server hangs up.
        ("joined",): wait (up to 20 s) until this connection has joined its channel (every scenario starts
        with it: Twitch sends no channel traffic before JOIN, and a client still logging in drops it)."""
        if action[0] == "joined":
            for _ in range(2000):
                if len(self.joins) >= self.connections:
                    return True
                await asyncio.sleep(0.01)
            return False
        if action[0] != "ping":
            return True
        before = self.pongs
        await ws.send_str(":tmi.twitch.tv PING :tmi.twitch.tv")
        for _ in range(100):
            if self.pongs > before:
                return True
            await asyncio.sleep(0.01)
        await ws.close()
        return False

    async def _login(self, ws: web.WebSocketResponse) -> list[str] | None:
        password = nick = ""
        cap = False
        while not nick:
            msg = await ws.receive(timeout=5)
            if msg.type != WSMsgType.TEXT:
                return None
            for line in msg.data.split("\r\n"):
                if line.startswith("CAP REQ"):
                    cap = "twitch.tv/tags" in line and "twitch.tv/commands" in line
                    await ws.send_str(":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands")
                elif line.startswith("PASS "):
                    password = line[5:]
                elif line.startswith("NICK "):
                    nick = line[5:].strip()
        self.logins.append((nick, password))
        anonymous = not password and re.fullmatch(r"justinfan\d+", nick)
        if not cap or not (anonymous or password == f"oauth:{self.good_token}"):
            await ws.send_str(":tmi.twitch.tv NOTICE * :Login authentication failed")
            await ws.close()
            return None
        await ws.send_str("\r\n".join(line.format(nick=nick) for line in WELCOME) + "\r\n")
        return []

    async def _read(self, ws: web.WebSocketResponse, stalled: asyncio.Event, lines: list[str]) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            for line in filter(None, msg.data.split("\r\n")):
                self.sent_by_client.append(line)
                if line.startswith("JOIN #"):
                    chan = line[5:].strip()
                    self.joins.append(chan)
                    await ws.send_str(f":justinfan!justinfan@justinfan.tmi.twitch.tv JOIN {chan}\r\n"
                                      f"@emote-only=0;room-id=1;slow=0 :tmi.twitch.tv ROOMSTATE {chan}\r\n")
                elif line.startswith("PONG"):
                    self.pongs += 1
                elif line.startswith("PING") and not stalled.is_set():
                    self.client_pings += 1
                    await ws.send_str(f":tmi.twitch.tv PONG tmi.twitch.tv :{line.split(':', 1)[-1]}")
