"""Douyin (抖音) webcast live chat client.

Bootstrap: a ``ttwid`` cookie from the live site, the numeric room id scraped from the room page
(``live.douyin.com/<web_rid>`` is not the room id), a random ``user_unique_id``, and the native
``signature``. Then the websocket: binary PushFrames, ACKs when asked, a ``hb`` frame every 10 s.
When Douyin changes its signing and answers the handshake with HTTP 200 instead of 101, we say so
and retry slowly; a user can paste the full websocket URL copied from the browser (``url=``).
``DOUYIN_COOKIE`` (a browser cookie string) is sent when set and never logged.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import urllib.parse
from typing import Any

import aiohttp

from chat_sources.base import Decoded
from chat_sources.client import BROWSER_UA, RiskControl, Target, WebsocketClientSource
from chat_sources.douyin_codec import HEARTBEAT, DouyinCodec
from chat_sources.douyin_sign import Signer

log = logging.getLogger(__name__)

WS_BASE = "wss://webcast100-ws-web-lq.douyin.com/webcast/im/push/v2/"
_ROOM_ID_PATTERNS = (re.compile(r'roomId\\?":\\?"(\d{10,})'), re.compile(r'"id_str\\?":\\?"(\d{10,})'),
                     re.compile(r"room_id=(\d{10,})"))


def find_room_id(html: str) -> str | None:
    for pattern in _ROOM_ID_PATTERNS:
        m = pattern.search(html)
        if m:
            return m.group(1)
    return None


def websocket_params(room_id: str, user_unique_id: str, now_ms: int) -> dict[str, str]:
    return {
        "app_name": "douyin_web", "version_code": "180800", "webcast_sdk_version": "1.0.14-beta.0",
        "update_version_code": "1.0.14-beta.0", "compress": "gzip", "device_platform": "web",
        "cookie_enabled": "true", "screen_width": "1536", "screen_height": "864", "browser_language": "zh-CN",
        "browser_platform": "Win32", "browser_name": "Mozilla", "browser_version": BROWSER_UA.split("/", 1)[1],
        "browser_online": "true", "tz_name": "Asia/Shanghai",
        "cursor": f"d-1_u-1_fh-{user_unique_id}_t-{now_ms}_r-1",
        "internal_ext": f"internal_src:dim|wss_push_room_id:{room_id}|wss_push_did:{user_unique_id}",
        "host": "https://live.douyin.com", "aid": "6383", "live_id": "1", "did_rule": "3", "endpoint": "live_pc",
        "support_wrds": "1", "user_unique_id": user_unique_id, "im_path": "/webcast/im/fetch/",
        "identity": "audience", "need_persist_msg_count": "15", "insert_task_id": "", "live_reason": "",
        "room_id": room_id, "heartbeatDuration": "0", "sub_room_id": "", "sub_channel_id": "", "device_type": "",
        "ac": "",
    }


class DouyinChatSource(WebsocketClientSource):
    platform = "douyin"
    name = "douyin"
    heartbeat_s = 10.0
    max_size = 16 << 20

    def __init__(self, room: str, *, url: str | None = None, live_base: str = "https://live.douyin.com",
                 ws_base: str = WS_BASE, cookie: str | None = None, **kw: Any) -> None:
        super().__init__(str(room), **kw)
        self.url = url
        self.live_base = live_base.rstrip("/")
        self.ws_base = ws_base
        self.cookie = cookie if cookie is not None else os.environ.get("DOUYIN_COOKIE", "")
        self.codec = DouyinCodec(str(room))
        self.signer = Signer()
        self.room_id = str(room) if len(str(room)) >= 16 else ""
        self.ttwid = ""

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": BROWSER_UA, "Referer": "https://live.douyin.com/"}
        cookie = self.cookie or (f"ttwid={self.ttwid}" if self.ttwid else "")
        if cookie:
            headers["Cookie"] = cookie
        return headers

    async def bootstrap(self, fresh: bool) -> Target:
        if self.url:
            return Target(self.url, self._headers())
        if fresh or not self.ttwid or not self.room_id:
            await self._http_bootstrap()
        uid = str(random.randint(7300000000000000000, 7999999999999999999))
        params = websocket_params(self.room_id, uid, int(time.time() * 1000))
        params["signature"] = self.signer.sign(params)
        return Target(f"{self.ws_base}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}", self._headers())

    async def _http_bootstrap(self) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(headers={"User-Agent": BROWSER_UA}, cookie_jar=jar) as s:
            async with s.get(f"{self.live_base}/", timeout=timeout) as r:
                await r.read()
            self.ttwid = next((c.value for c in jar if c.key == "ttwid"), "") or self.ttwid
            if not self.ttwid and "ttwid=" not in self.cookie:
                raise RiskControl("Douyin gave no ttwid cookie; retrying slowly (set DOUYIN_COOKIE from a browser "
                                  "if it persists)")
            if not self.room_id:
                ms_token = "".join(random.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=107))
                async with s.get(f"{self.live_base}/{self.room}", timeout=timeout,
                                 cookies={"ttwid": self.ttwid, "msToken": ms_token}) as r:
                    html = await r.text()
                room_id = find_room_id(html)
                if room_id is None:
                    raise OSError(f"no room id found on the page of {self.room} (offline, or the page changed)")
                self.room_id = room_id
        log.info("douyin room resolved", extra={"web_rid": self.room, "room_id": self.room_id})

    def handshake_rejected(self, status: int, headers: dict[str, str]) -> Exception:
        msg = headers.get("handshake-msg", "")
        return RiskControl(
            f"Douyin rejected the websocket handshake (HTTP {status} instead of 101; handshake-msg={msg or '-'}): "
            "the signature, cookie or parameters were refused. Retrying slowly with a fresh ttwid; if it persists, "
            "copy the webcast websocket URL from your browser's developer tools and pass it with --url")

    def heartbeat_frame(self) -> bytes:
        return HEARTBEAT

    def decode(self, data: bytes | str) -> Decoded:
        return self.codec.decode(data)
