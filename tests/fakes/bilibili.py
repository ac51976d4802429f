"""A fake Bilibili: the HTTP bootstrap endpoints (buvid3, room info, nav, wbi-signed getDanmuInfo)
and the /sub danmaku websocket with 16-byte packets, auth within 5 s and heartbeat replies."""

from __future__ import annotations

import asyncio
import json

from aiohttp import WSMsgType, web

from chat_sources.bilibili import mixin_key, wbi_sign
from chat_sources.bilibili_codec import (
    HEADER,
    OP_AUTH,
    OP_AUTH_REPLY,
    OP_HEARTBEAT,
    OP_HEARTBEAT_REPLY,
    pack,
    split_packets,
)
from tests.fakes.base import FakeServer

IMG, SUB = "7cd084941338484aae1ad9425b84077c", "4932caff0ff746eab6f01bf08b70ac45"
REAL_ROOM = 22608112


class FakeBilibili(FakeServer):
    def __init__(self, short_room: int = 5) -> None:
        super().__init__()
        self.short_room = short_room
        self.token_serial = 0
        self.risk_control_answers = 0
        self.reject_auth_times = 0
        self.danmu_info_requests: list[float] = []
        self.auth_bodies: list[dict] = []
        self.heartbeats = 0
        self.app.router.add_get("/", self.home)
        self.app.router.add_get("/room/v1/Room/get_info", self.room_info)
        self.app.router.add_get("/x/web-interface/nav", self.nav)
        self.app.router.add_get("/xlive/web-room/v1/index/getDanmuInfo", self.danmu_info)
        self.app.router.add_get("/sub", self.sub)

    @property
    def token(self) -> str:
        return f"TOKEN-{self.token_serial}"

    async def home(self, request: web.Request) -> web.Response:
        resp = web.Response(text="<html></html>")
        resp.set_cookie("buvid3", "FAKE-BUVID3-infoc")
        return resp

    async def room_info(self, request: web.Request) -> web.Response:
        if request.query.get("room_id") not in (str(self.short_room), str(REAL_ROOM)):
            return web.json_response({"code": 1, "message": "room not found"})
        return web.json_response({"code": 0, "data": {"room_id": REAL_ROOM, "short_id": self.short_room, "uid": 1}})

    async def nav(self, request: web.Request) -> web.Response:
        return web.json_response({"code": -101, "data": {"isLogin": False, "wbi_img": {
            "img_url": f"https://i0.hdslb.com/bfs/wbi/{IMG}.png", "sub_url": f"https://i0.hdslb.com/bfs/wbi/{SUB}.png"}}})

    async def danmu_info(self, request: web.Request) -> web.Response:
        self.danmu_info_requests.append(asyncio.get_running_loop().time())
        q = dict(request.query)
        w_rid, wts = q.pop("w_rid", None), q.pop("wts", None)
        signed_ok = wts is not None and w_rid == wbi_sign(q, mixin_key(IMG, SUB), int(wts))["w_rid"]
        if self.risk_control_answers > 0 or not signed_ok or "buvid3" not in request.cookies:
            self.risk_control_answers = max(0, self.risk_control_answers - 1)
            return web.json_response({"code": -352, "message": "-352", "data": {"v_voucher": "x"}})
        self.token_serial += 1
        return web.json_response({"code": 0, "data": {"token": self.token, "host_list": [
            {"host": "127.0.0.1", "port": 2243, "wss_port": self.port, "ws_port": self.port}]}})

    async def sub(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        scenario = self.next_scenario()
        try:
            msg = await ws.receive(timeout=5)
        except asyncio.TimeoutError:
            await ws.close()
            return ws
        [(op, _, body)] = split_packets(msg.data)
        assert op == OP_AUTH, op
        auth = json.loads(body)
        self.auth_bodies.append(auth)
        ok = auth.get("roomid") == REAL_ROOM and auth.get("key") == self.token and auth.get("protover") == 3
        if self.reject_auth_times > 0:
            self.reject_auth_times -= 1
            ok = False
        await ws.send_bytes(pack(OP_AUTH_REPLY, json.dumps({"code": 0 if ok else -101}).encode()))
        if not ok:
            await ws.close()
            return ws
        stalled = asyncio.Event()
        await self.play(ws, scenario, stalled, asyncio.create_task(self._read(ws, stalled)))
        return ws

    async def _read(self, ws: web.WebSocketResponse, stalled: asyncio.Event) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            for op, _, _ in split_packets(msg.data):
                if op == OP_HEARTBEAT:
                    self.heartbeats += 1
                    if not stalled.is_set():
                        # as captured: pack_len covers the popularity only, the echo trails outside it
                        await ws.send_bytes(HEADER.pack(20, 16, 1, OP_HEARTBEAT_REPLY, 0) + (1234).to_bytes(4, "big")
                                            + b"[object Object]")
