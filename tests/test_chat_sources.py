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


class VirtualTime:
    """A clock that jumps to each deadline at once: pacing is checked exactly, whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_replay_keeps_pace_loops_and_skips_bad_lines(tmp_path):
    f = tmp_path / "chat.jsonl"
    f.write_text('{"t": 0.0, "user": "a", "text": "one"}\nnot json\n{"t": 0.2, "user": "小明", "text": "二"}\n'
                 '{"t": 0.1}\n', encoding="utf-8")
    got, times = [], []
    three = asyncio.Event()
    vt = VirtualTime()

    def emit(event):
        got.append(event.text)
        times.append(vt.now)
        if len(got) >= 3:
            three.set()

    src = ReplayChatSource(f, speed=2.0, loop=True, time_fn=vt.time, sleep=vt.sleep)
    task = asyncio.create_task(src.run(emit))
    try:
        await asyncio.wait_for(three.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert got[:3] == ["one", "二", "one"]
    assert times[1] - times[0] == pytest.approx(0.1)  # 0.2 s at double speed
    assert times[2] - times[0] == pytest.approx((0.2 + 5.0) / 2)  # loops after the last line + 5 s


PAID_WITHOUT_VALUE = [
    ('{"kind": "super_chat", "user": "Ann", "text": "free?"}', "amount"),
    ('{"kind": "super_chat", "user": "Ann", "text": "free?", "amount": 0}', "positive amount"),
    ('{"kind": "super_chat", "user": "小明", "text": "免费吗", "amount": NaN}', "amount"),
    ('{"kind": "gift", "user": "小明", "gift": "火箭", "amount": Infinity}', "amount"),
    ('{"kind": "gift", "user": "Bob", "gift": "rose", "amount": -Infinity}', "amount"),
    ('{"kind": "gift", "user": "Bob", "gift": "rose", "amount": 1e999}', "amount"),
    ('{"kind": "membership", "user": "Bob", "amount": "nan"}', "amount"),
    ('{"kind": "membership", "user": "Bob", "amount": null}', "amount"),
]


@pytest.mark.parametrize("bad, reason", PAID_WITHOUT_VALUE)
def test_paid_kinds_need_a_positive_finite_amount(bad, reason):
    with pytest.raises(ChatMessageError, match=reason):
        event_from_json(bad, "websocket", "r")
    with pytest.raises(ChatMessageError, match=reason):  # the control API hands over parsed JSON
        event_from_json(json.loads(bad), "api", "r")


def test_free_kinds_still_need_no_amount():
    assert event_from_json('{"kind": "follow", "user": "小红"}', "websocket", "r").amount is None
    assert event_from_json('{"kind": "like", "user": "Ann", "count": 20}', "websocket", "r").count == 20


def test_readme_examples_and_shipped_samples_still_load():
    readme = [line for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
              if line.startswith('{"kind"')]
    assert len(readme) >= 3
    for line in readme:
        event_from_json(line, "websocket", "r")
    for sample in (REPO / "config" / "samples").glob("*.jsonl"):
        lines = [line for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert len(load_replay(sample)) == len(lines), f"{sample.name} has lines the schema refuses"


def _nested(levels: int) -> str:
    return '{"user": "a", "text": "x", "extra": ' + "[" * levels + "]" * levels + "}"


@pytest.mark.parametrize("levels", [40, 5000, 100_000])
def test_deeply_nested_json_is_refused_with_a_reason(levels):
    with pytest.raises(ChatMessageError, match="nested too deeply"):
        event_from_json(_nested(levels), "websocket", "r")


def test_deeply_nested_parsed_object_is_refused_without_recursion():
    deep: list = []
    node = deep
    for _ in range(50_000):  # built without recursion, as a JSON body parser hands it over
        node.append([])
        node = node[0]
    with pytest.raises(ChatMessageError, match="nested too deeply"):
        event_from_json({"user": "a", "text": "x", "extra": deep}, "api", "r")
