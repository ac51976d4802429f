"""The Douyin client against a local fake Douyin speaking the real protocol."""

import asyncio
import gzip

from chat_sources.douyin import DouyinChatSource
from chat_sources.douyin_codec import build_push_frame
from chat_sources.protobuf import field_bytes, message
from streamer.events import EventKind
from tests.conftest import run_until
from tests.fakes.douyin import ROOM_ID, WEB_RID, FakeDouyin, chat, frame
from tests.test_codecs import _msg


def make_source(server, **kw):
    src = DouyinChatSource(WEB_RID, live_base=server.base, ws_base=server.ws_base, cookie="",
                           reconnect=lambda a: 0.05, heartbeat_s=kw.pop("heartbeat_s", 0.25), **kw)
    src.risk_control_delay_s = 0.3
    return src


async def test_douyin_end_to_end_acks_heartbeats_reconnect_stall_and_dedupe():
    control_end = _msg("WebcastControlMessage", bytes.fromhex("1003"), 99)
    async with FakeDouyin() as server:
        server.scenarios = [
            [("send", frame(chat(1, 7, "Ann", "你好"), chat(2, 8, "Bo", "多少钱"), log_id=42, need_ack=True,
                            ext="internal_src:dim|seq:7")),
             ("send", b"\x0a\xff\xff garbage"), ("send", build_push_frame(b"not gzip at all")),
             ("sleep", 0.6), ("close",)],
            [("send", frame(chat(2, 8, "Bo", "多少钱"), chat(3, 9, "Cy", "发货快吗"))), ("stall",)],
            [("send", frame(chat(4, 10, "Di", "拍了"), control_end)), ("sleep", 0.5)],
        ]
        src = make_source(server)
        got = await run_until(src, lambda g: any(e.kind is EventKind.STREAM_END for e in g))
    assert [(e.kind, e.user.name, e.text) for e in got] == [
        (EventKind.DANMAKU, "Ann", "你好"), (EventKind.DANMAKU, "Bo", "多少钱"),
        (EventKind.DANMAKU, "Cy", "发货快吗"), (EventKind.DANMAKU, "Di", "拍了"),
        (EventKind.STREAM_END, "system", "")]
    assert server.acks == [(42, "internal_src:dim|seq:7")]
    assert server.heartbeats >= 2 and src.duplicates == 1 and src.stalls == 1 and src.skipped >= 2
    q = server.queries[0]
    assert q["room_id"] == ROOM_ID and q["compress"] == "gzip" and len(q["signature"]) == 16


async def test_douyin_http_200_handshake_is_reported_as_rejected_signature(caplog):
    async with FakeDouyin() as server:
        server.reject_handshakes = 1
        server.scenarios = [[("send", frame(chat(1, 7, "Ann", "hi"))), ("sleep", 1)]]
        src = make_source(server)
        got = await run_until(src, lambda g: len(g) >= 1)
    assert got[0].text == "hi" and server.rejected == 1
    [rec] = [r for r in caplog.records if r.getMessage() == "handshake rejected"]
    assert "HTTP 200 instead of 101" in rec.error and "DEVICE_BLOCKED" in rec.error and "--url" in rec.error


async def test_douyin_pasted_url_is_used_as_is():
    async with FakeDouyin() as server:
        server.scenarios = [[("send", frame(chat(5, 7, "Ann", "direct"))), ("sleep", 1)]]
        probe = make_source(server)
        probe.room_id, probe.ttwid = ROOM_ID, "x"
        url = (await probe.bootstrap(False)).url
        src = DouyinChatSource("ignored", url=url, cookie="ttwid=pasted", reconnect=lambda a: 0.05)
        got = await run_until(src, lambda g: len(g) >= 1)
    assert got[0].text == "direct"


async def test_douyin_uncompressed_frames_and_gift_totals():
    gift = message(field_bytes(7, message(b"\x08\x01", field_bytes(3, "Gi"))),
                   field_bytes(15, message(b"\x60\x05", field_bytes(16, "小心心"))), b"\x28\x03")
    body = message(_msg("WebcastGiftMessage", gift, 11), field_bytes(5, "ext"))
    async with FakeDouyin() as server:
        server.scenarios = [[("send", build_push_frame(body, gzip_header=False)),
                             ("send", build_push_frame(gzip.compress(body))), ("sleep", 1)]]
        src = make_source(server)
        got = await run_until(src, lambda g: len(g) >= 1)
        await asyncio.sleep(0.2)
    [g] = got  # the same message id twice is one gift
    assert (g.kind, g.gift_name, g.count, g.amount.value) == (EventKind.GIFT, "小心心", 3, 15.0)
