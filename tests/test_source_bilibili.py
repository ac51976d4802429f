"""The Bilibili client against a local fake Bilibili speaking the real protocol."""

import base64
import json
import zlib

import brotli

from chat_sources.bilibili import BilibiliChatSource
from chat_sources.bilibili_codec import OP_MESSAGE, pack
from chat_sources.protobuf import field_bytes, field_varint, message
from streamer.events import EventKind
from tests.conftest import run_until
from tests.fakes.bilibili import REAL_ROOM, FakeBilibili
from tests.test_codecs import COMMANDS, FRAMES


def plain(cmd):
    return pack(OP_MESSAGE, json.dumps(cmd, ensure_ascii=False).encode(), ver=0)


def danmaku(text, uid, name, msg_id):
    cmd = json.loads(json.dumps(COMMANDS["DANMU_MSG"]))
    cmd["info"][1] = text
    cmd["info"][2][0], cmd["info"][2][1] = uid, name
    extra = json.loads(cmd["info"][0][15]["extra"])
    extra["id_str"] = msg_id
    cmd["info"][0][15]["extra"] = json.dumps(extra)
    return cmd


SC = {"cmd": "SUPER_CHAT_MESSAGE", "data": {"id": 77, "price": 50, "message": "加油", "uid": 3, "start_time": 1,
                                            "user_info": {"uname": "Rich"}}}


def make_source(server, risk_delay=0.3, heartbeat_s=5.0):
    """heartbeat_s: short only where a test is about the stall watchdog (a loaded machine can miss 0.5 s)."""
    src = BilibiliChatSource(server.short_room, live_api=server.base, api=server.base, www=server.base, cookie="",
                             reconnect=lambda attempt: 0.05, heartbeat_s=heartbeat_s)
    src.risk_control_delay_s = risk_delay
    return src


async def test_bilibili_end_to_end_reconnect_stall_garbage_and_dedupe():
    v2 = message(field_varint(1, 439367700), field_bytes(2, "StarSea246"), field_varint(5, 2), field_varint(7, 1751716524))
    batch = pack(OP_MESSAGE, brotli.compress(plain(COMMANDS["SEND_GIFT"]) + plain(
        {"cmd": "INTERACT_WORD_V2", "data": {"pb": base64.b64encode(v2).decode()}})), ver=3)
    zbatch = pack(OP_MESSAGE, zlib.compress(plain(SC) + plain(COMMANDS["LIKE_INFO_V3_CLICK"])), ver=2)
    async with FakeBilibili() as server:
        server.scenarios = [
            [("send", plain(danmaku("第一条", 11, "Ann", "d1")) + plain({"cmd": "NOTICE_MSG"})), ("send", batch),
             ("send", zbatch), ("send", FRAMES["brotli_watched_change"]), ("send", b"\x00\x00garbage"),
             ("send", plain({"cmd": "DANMU_MSG", "info": "broken"})), ("sleep", 0.6), ("close",)],
            [("send", zbatch), ("send", plain(danmaku("第二条", 12, "Bo", "d2"))), ("stall",)],
            [("send", plain(danmaku("第三条", 13, "Cy", "d3"))), ("sleep", 0.3)],
        ]
        src = make_source(server, heartbeat_s=1.0)  # stall after 2 s: far from the 0.6 s pause, even under load
        got = await run_until(src, lambda g: any(e.text == "第三条" for e in g))
    summary = [(e.kind, e.user.name, e.text or e.gift_name or e.action) for e in got]
    assert summary == [
        (EventKind.DANMAKU, "Ann", "第一条"),
        (EventKind.GIFT, "12138额83121", "小花花"),
        (EventKind.FOLLOW, "StarSea246", ""),
        (EventKind.SUPER_CHAT, "Rich", "加油"),
        (EventKind.LIKE, "MeiDngS", ""),
        (EventKind.SYSTEM, "system", "2.2万人看过"),
        (EventKind.LIKE, "MeiDngS", ""),  # likes carry no id; the repeated super chat is dropped
        (EventKind.DANMAKU, "Bo", "第二条"),
        (EventKind.DANMAKU, "Cy", "第三条"),
    ]
    assert src.duplicates == 1 and src.skipped >= 2 and src.stalls == 1 and src.connects == 3
    assert server.connections == 3 and server.heartbeats >= 2
    assert all(a["roomid"] == REAL_ROOM and a["key"].startswith("TOKEN-") and a["buvid"] == "FAKE-BUVID3-infoc"
               for a in server.auth_bodies)
    sc = next(e for e in got if e.kind is EventKind.SUPER_CHAT)
    assert sc.amount.common == 50.0 and sc.msg_id == "sc:77"


async def test_bilibili_risk_control_is_reported_and_retried_slowly(caplog):
    async with FakeBilibili() as server:
        server.risk_control_answers = 1
        server.scenarios = [[("send", plain(danmaku("hi", 1, "A", "x1"))), ("sleep", 1)]]
        src = make_source(server, risk_delay=0.5)
        got = await run_until(src, lambda g: len(g) >= 1)
    assert got[0].text == "hi"
    first, second = server.danmu_info_requests[:2]
    assert second - first >= 0.5  # not hammered: the risk-control floor, not the 50 ms backoff
    msgs = [r for r in caplog.records if r.getMessage() == "risk control"]
    assert msgs and "-352" in msgs[0].error and "BILIBILI_COOKIE" in msgs[0].error


async def test_bilibili_rejected_auth_refetches_the_token():
    async with FakeBilibili() as server:
        server.reject_auth_times = 1
        server.scenarios = [[], [("send", plain(danmaku("after re-auth", 1, "A", "y1"))), ("sleep", 1)]]
        src = make_source(server)
        got = await run_until(src, lambda g: len(g) >= 1)
    assert got[0].text == "after re-auth"
    assert len(server.danmu_info_requests) == 2  # the bootstrap ran again for a fresh token
    assert server.auth_bodies[1]["key"] == "TOKEN-2"


async def test_bilibili_url_override_skips_the_http_bootstrap():
    async with FakeBilibili() as server:
        server.token_serial = 0
        server.scenarios = [[("send", plain(danmaku("direct", 1, "A", "z1"))), ("sleep", 1)]]
        src = BilibiliChatSource(REAL_ROOM, url=f"ws://127.0.0.1:{server.port}/sub", cookie="",
                                 reconnect=lambda a: 0.05)
        src.token = "TOKEN-0"
        got = await run_until(src, lambda g: len(g) >= 1)
    assert got[0].text == "direct" and server.danmu_info_requests == []
