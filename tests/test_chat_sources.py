import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from chat_sources.replay import ReplayChatSource, load_replay
from chat_sources.schema import ChatMessageError, event_from_json
from chat_sources.websocket import WebsocketChatSource
from streamer.events import EventKind
from tests.conftest import REPO


def test_schema_parses_every_kind_and_normalises_amounts():
    ev = event_from_json({"kind": "super_chat", "user": {"id": "7", "name": "Ann", "member": True}, "text": "hi",
                          "amount": 5, "currency": "USD"}, "websocket", "r")
    assert ev.kind is EventKind.SUPER_CHAT and ev.user.member and ev.user.id == "7"
    assert ev.amount.value == 5 and ev.amount.unit == "USD" and ev.amount.common == pytest.approx(36.0)
    bits = event_from_json({"kind": "gift", "user": "b", "amount": 100, "currency": "bits"}, "x", "r")
    assert bits.amount.common < ev.amount.common  # rankable across units


def test_hostile_text_is_cleaned_and_capped():
    evil = "a\u202eb\u200bc\x00d\x1b[31m" + "x" * 5000
    ev = event_from_json({"user": "\u202emallory", "text": evil}, "websocket", "r")
    assert "\u202e" not in ev.text and "\u200b" not in ev.text and "\x00" not in ev.text and "\x1b" not in ev.text
    assert ev.text.startswith("abc d") and len(ev.text) == 500
    assert ev.user.name == "mallory"


@pytest.mark.parametrize("bad, reason", [
    ("{not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"text": "no user"}', "user"),
    ('{"user": "a", "kind": "teleport"}', "kind"),
    ('{"user": "a", "amount": -5}', "amount"),
    ('{"user": "a", "amount": 5, "currency": "doubloons"}', "currency"),
])
def test_malformed_messages_get_a_reason(bad, reason):
    with pytest.raises(ChatMessageError, match=reason):
        event_from_json(bad, "websocket", "r")


async def _start_ws():
    got = []
    src = WebsocketChatSource("127.0.0.1", 0)
    task = asyncio.create_task(src.run(got.append))
    await asyncio.wait_for(src.ready.wait(), 5)
    return src, task, got


async def test_websocket_source_rejects_garbage_and_stays_up(caplog):
    src, task, got = await _start_ws()
    try:
        async with connect(f"ws://127.0.0.1:{src.bound_port}") as ws:
            await ws.send("{garbage")
            reply = json.loads(await ws.recv())
            assert reply["ok"] is False and "not JSON" in reply["error"]
            await ws.send(b"\x00\x01binary")
            assert json.loads(await ws.recv())["ok"] is False
            await ws.send(json.dumps({"user": "x" * 10, "text": "y" * 200_000}))  # huge but under the frame cap
            assert json.loads(await ws.recv())["ok"] is False
            await ws.send(json.dumps({"user": "Ann", "text": "how much is it?"}))
            reply = json.loads(await ws.recv())
            assert reply["ok"] is True
        assert [e.text for e in got] == ["how much is it?"] and got[0].id == reply["id"]
        assert src.rejected == 3
        assert any("rejected chat message" in r.message for r in caplog.records)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_replay_file_shipped_with_default_has_every_kind():
    items = load_replay(REPO / "config" / "samples" / "commerce_en.jsonl")
    kinds = {obj.get("kind", "danmaku") for _, obj in items}
    assert {"danmaku", "gift", "super_chat", "follow", "like", "enter"} <= kinds
    assert items[-1][0] > 120  # a realistic pace, minutes not milliseconds


async def test_replay_keeps_pace_loops_and_skips_bad_lines(tmp_path):
    f = tmp_path / "chat.jsonl"
    f.write_text('{"t": 0.0, "user": "a", "text": "one"}\nnot json\n{"t": 0.2, "user": "b", "text": "two"}\n'
                 '{"t": 0.1}\n', encoding="utf-8")
    got, times = [], []
    loop = asyncio.get_running_loop()
    src = ReplayChatSource(f, speed=2.0, loop=True)
    task = asyncio.create_task(src.run(lambda e: (got.append(e.text), times.append(loop.time()))))
    try:
        await asyncio.wait_for(_until(lambda: len(got) >= 3), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert got[:3] == ["one", "two", "one"]
    assert times[1] - times[0] == pytest.approx(0.1, abs=0.05)  # 0.2 s at double speed
    assert times[2] - times[0] == pytest.approx((0.2 + 5.0) / 2, abs=0.1)  # loops after the last line + 5 s


async def _until(cond):
    while not cond():
        await asyncio.sleep(0.01)
