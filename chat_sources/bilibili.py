"""Bilibili live danmaku client (web protocol).

Bootstrap over HTTP: the buvid3 cookie, the real room id (short ids are resolved: a short id gets
heartbeats but no messages), the wbi key from ``nav``, and a wbi-signed ``getDanmuInfo`` for the
token and host list (falling back to the public host without a token). Then the websocket: auth
within 5 s, a heartbeat every 30 s, hosts rotated on every reconnect. Anonymous by default; names
then arrive masked (``X***``) and we say so once. ``BILIBILI_COOKIE`` (a browser cookie string with
SESSDATA and buvid3) restores them; it is never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import urllib.parse
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection

from chat_sources.base import Decoded
from chat_sources.bilibili_codec import BilibiliCodec, auth_packet, heartbeat_packet
from chat_sources.client import BROWSER_UA, AuthFailed, RiskControl, Target, WebsocketClientSource

log = logging.getLogger(__name__)

MIXIN_KEY_ENC_TAB = [46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35, 27, 43, 5, 49, 33, 9, 42, 19, 29,
                     28, 14, 39, 12, 38, 41, 13, 37, 48, 7, 16, 24, 55, 40, 61, 26, 17, 0, 1, 60, 51, 30, 4, 22, 25,
                     54, 21, 56, 59, 6, 63, 57, 62, 11, 36, 20, 34, 44, 52]
DEFAULT_HOSTS = [("broadcastlv.chat.bilibili.com", 443)]
RISK_HINT = ("Bilibili risk control: wait a few minutes, keep one instance per machine, and set BILIBILI_COOKIE "
             "(SESSDATA and buvid3 from a logged-in browser) if it persists")


def mixin_key(img_key: str, sub_key: str) -> str:
    raw = img_key + sub_key
    return "".join(raw[i] for i in MIXIN_KEY_ENC_TAB if i < len(raw))[:32]


def wbi_sign(params: dict[str, Any], key: str, wts: int | None = None) -> dict[str, str]:
    """Add ``wts`` and ``w_rid`` (the wbi signature) to query parameters."""
    signed = {**{k: str(v) for k, v in params.items()}, "wts": str(int(time.time()) if wts is None else wts)}
    signed = {k: "".join(c for c in v if c not in "!'()*") for k, v in sorted(signed.items())}
    query = urllib.parse.urlencode(signed, quote_via=urllib.parse.quote)
    signed["w_rid"] = hashlib.md5((query + key).encode()).hexdigest()
    return signed


def _stem(url: str) -> str:
    return url.rsplit("/", 1)[-1].split(".", 1)[0]


def parse_cookie(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


class BilibiliChatSource(WebsocketClientSource):
    platform = "bilibili"
    heartbeat_s = 30.0
    name = "bilibili"

    def __init__(self, room: str | int, *, url: str | None = None, live_api: str = "https://api.live.bilibili.com",
                 api: str = "https://api.bilibili.com", www: str = "https://www.bilibili.com",
                 cookie: str | None = None, **kw: Any) -> None:
        super().__init__(str(room), **kw)
        self.url = url
        self.live_api, self.api, self.www = live_api.rstrip("/"), api.rstrip("/"), www.rstrip("/")
        self.cookies = parse_cookie(cookie if cookie is not None else os.environ.get("BILIBILI_COOKIE", ""))
        self.codec = BilibiliCodec(str(room))
        self.real_room: int = int(room)
        self.uid = 0
        self.token = ""
        self.hosts: list[tuple[str, int]] = []
        self._host_turn = 0
        self._masked_warned = False

    # ---------------------------------------------------------------- HTTP bootstrap
    async def bootstrap(self, fresh: bool) -> Target:
        headers = {"User-Agent": BROWSER_UA}
        if self.url:
            return Target(self.url, headers)
        if fresh or not self.hosts:
            await self._http_bootstrap()
        host, port = self.hosts[self._host_turn % len(self.hosts)]
        self._host_turn += 1
        scheme = "ws" if host in ("127.0.0.1", "localhost") else "wss"
        return Target(f"{scheme}://{host}:{port}/sub", headers)

    async def _get(self, session: aiohttp.ClientSession, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=10)) as r:
            if r.status == 412:
                raise RiskControl(f"HTTP 412 from {urllib.parse.urlsplit(url).path}. {RISK_HINT}")
            if r.status != 200:
                raise OSError(f"HTTP {r.status} from {urllib.parse.urlsplit(url).path}")
            data = await r.json(content_type=None)
        if not isinstance(data, dict):
            raise OSError(f"unexpected answer from {urllib.parse.urlsplit(url).path}")
        if data.get("code") in (-352, -412):
            raise RiskControl(f"code {data['code']} from {urllib.parse.urlsplit(url).path}. {RISK_HINT}")
        return data

    async def _http_bootstrap(self) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(headers={"User-Agent": BROWSER_UA}, cookie_jar=jar,
                                         cookies=self.cookies) as s:
            if "buvid3" not in self.cookies:
                async with s.get(f"{self.www}/", timeout=aiohttp.ClientTimeout(total=10)) as r:
                    await r.read()
            buvid = self.cookies.get("buvid3") or next((c.value for c in jar if c.key == "buvid3"), "")
            room = await self._get(s, f"{self.live_api}/room/v1/Room/get_info", {"room_id": self.room})
            if room.get("code") != 0:
                raise OSError(f"room {self.room} not found: {room.get('message') or room.get('code')}")
            self.real_room = int(room["data"]["room_id"])
            nav = await self._get(s, f"{self.api}/x/web-interface/nav")
            nav_data = nav.get("data") or {}
            self.uid = int(nav_data.get("mid") or 0) if nav_data.get("isLogin") else 0
            wbi = nav_data.get("wbi_img") or {}
            key = mixin_key(_stem(wbi.get("img_url", "")), _stem(wbi.get("sub_url", "")))
            params = wbi_sign({"id": self.real_room, "type": 0, "web_location": "444.8"}, key)
            try:
                info = await self._get(s, f"{self.live_api}/xlive/web-room/v1/index/getDanmuInfo", params)
            except RiskControl:
                raise
            except OSError as e:
                info = {"code": -1, "message": str(e)}
        self.buvid = buvid
        if info.get("code") == 0 and info["data"].get("host_list"):
            self.token = info["data"].get("token", "")
            self.hosts = [(h["host"], int(h["wss_port"])) for h in info["data"]["host_list"]]
        else:
            log.warning("getDanmuInfo failed; using the public host without a token",
                        extra={"source": self.describe(), "reason": str(info.get("message") or info.get("code"))})
            self.token, self.hosts = "", list(DEFAULT_HOSTS)
        log.info("bilibili room resolved", extra={"room": self.room, "real_room": self.real_room,
                                                  "logged_in": bool(self.uid), "hosts": len(self.hosts)})

    # ---------------------------------------------------------------- websocket
    async def on_open(self, ws: ClientConnection) -> None:
        await ws.send(auth_packet(self.real_room, self.uid, getattr(self, "buvid", ""), self.token))
        try:
            data = await asyncio.wait_for(ws.recv(), timeout=5.0)
        except asyncio.TimeoutError:
            raise AuthFailed("no auth reply within 5 s") from None
        decoded = self.decode_safely(data)
        if "auth_ok" not in decoded.signals:
            raise AuthFailed("auth rejected (token expired or bound to another login)")
        await ws.send(heartbeat_packet())

    def heartbeat_frame(self) -> bytes:
        return heartbeat_packet()

    def decode(self, data: bytes | str) -> Decoded:
        decoded = self.codec.decode(data)
        if self.codec.names_masked and not self._masked_warned:
            self._masked_warned = True
            log.warning("viewer names arrive masked (X***) for anonymous connections: set BILIBILI_COOKIE "
                        "to a logged-in browser cookie (SESSDATA, buvid3) to see them", extra={"source": self.describe()})
        return decoded
