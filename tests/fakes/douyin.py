"""A fake Douyin: ttwid cookie, the room page, and the webcast push websocket that checks the signed
query and cookie (answering HTTP 200 with a handshake-msg header when they are missing, as Douyin
does), sends gzip PushFrames, requires ACKs and counts heartbeats."""

from __future__ import annotations

import asyncio
import gzip
import urllib.parse

from aiohttp import WSMsgType, web

from chat_sources.douyin_codec import HEARTBEAT, build_push_frame, parse_push_frame
from chat_sources.protobuf import field_bytes, field_varint, message
from tests.fakes.base import FakeServer

ROOM_ID = "7382522869470808883"
WEB_RID = "123456789"
REQUIRED = ("room_id", "user_unique_id", "signature", "cursor", "internal_ext", "app_name", "im_path", "tz_name")


def chat(msg_id: int, uid: int, name: str, text: str) -> bytes:
    user = message(field_varint(1, uid), field_bytes(3, name))
    payload = message(field_bytes(2, user), field_bytes(3, text))
    return field_bytes(1, message(field_bytes(1, "WebcastChatMessage"), field_bytes(2, payload), field_varint(3, msg_id)))


def frame(*messages: bytes, log_id: int = 0, need_ack: bool = False, ext: str = "internal_src:dim|seq:1") -> bytes:
    body = message(*messages, field_bytes(2, "c1"), field_bytes(5, ext), *( [field_varint(9, 1)] if need_ack else []))
    return build_push_frame(gzip.compress(body), log_id=log_id)


class FakeDouyin(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.reject_handshakes = 0
        self.rejected = 0
        self.heartbeats = 0
        self.acks: list[tuple[int, str]] = []
        self.queries: list[dict[str, str]] = []
        self.app.router.add_get("/", self.home)
        self.app.router.add_get(f"/{WEB_RID}", self.room_page)
        self.app.router.add_get("/webcast/im/push/v2/", self.push)

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}/webcast/im/push/v2/"

    async def home(self, request: web.Request) -> web.Response:
        resp = web.Response(text="<html></html>")
        resp.set_cookie("ttwid", "1%7Cfake-ttwid")
        return resp

    async def room_page(self, request: web.Request) -> web.Response:
        assert request.cookies.get("ttwid") and request.cookies.get("msToken")
        return web.Response(text=f'<script>self.__pace_f.push([1,"{{\\"roomId\\":\\"{ROOM_ID}\\",\\"status\\":2}}"])</script>',
                            content_type="text/html")

    async def push(self, request: web.Request) -> web.StreamResponse:
        q = dict(request.query)
        self.queries.append(q)
        sig = urllib.parse.unquote(q.get("signature", ""))
        valid = all(q.get(k) for k in REQUIRED) and len(sig) == 16 and "ttwid" in request.cookies
        valid = valid and q["room_id"] == ROOM_ID and q["user_unique_id"] in q["internal_ext"]
        if not valid or self.reject_handshakes > 0:
            self.reject_handshakes = max(0, self.reject_handshakes - 1)
            self.rejected += 1
            return web.Response(status=200, text="", headers={"handshake-msg": "DEVICE_BLOCKED", "handshake-status": "415"})
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        scenario = self.next_scenario()
        stalled = asyncio.Event()
        await self.play(ws, scenario, stalled, asyncio.create_task(self._read(ws, stalled)))
        return ws

    async def _read(self, ws: web.WebSocketResponse, stalled: asyncio.Event) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            if msg.data == HEARTBEAT:
                self.heartbeats += 1
                if not stalled.is_set():  # the server answers heartbeats with its own hb frame
                    await ws.send_bytes(build_push_frame(b"", payload_type="hb", gzip_header=False))
                continue
            f = parse_push_frame(msg.data)
            if f.payload_type == "ack":
                self.acks.append((f.log_id, f.payload.decode()))
