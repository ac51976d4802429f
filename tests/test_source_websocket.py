"""The local chat websocket trusts no stranger: browser origins, the token for paid and moderator claims,
deep nesting, and where it may listen."""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chat_sources.websocket import WebsocketChatSource
from streamer.config import ConfigError, load_settings
from tests.conftest import write_config

TOKEN = "s3cret-token"


class Server:
    """A websocket chat source on 127.0.0.1:0, run as the app runs it."""

    def __init__(self, **kw):
        self.src = WebsocketChatSource("127.0.0.1", 0, **kw)
        self.got = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.src.bound_port}"

    async def __aenter__(self):
        self.task = asyncio.create_task(self.src.run(self.got.append))
        await asyncio.wait_for(self.src.ready.wait(), 20)
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), 10)


async def _send(ws, message) -> dict:
    await ws.send(message if isinstance(message, str) else json.dumps(message, ensure_ascii=False))
    return json.loads(await ws.recv())


async def test_a_foreign_browser_origin_is_refused_at_the_handshake(caplog):
    async with Server(token=TOKEN) as s:
        for _ in range(3):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(s.url, origin="https://evil.example"):
                    pass
            assert refused.value.response.status_code == 403
            assert b"allowed_origins" in refused.value.response.body
        async with connect(s.url) as ws:  # a tool without an Origin header is fine
            assert (await _send(ws, {"user": "Ann", "text": "hello"}))["ok"] is True
    assert [e.text for e in s.got] == ["hello"]
    assert s.src.refused_connections == 3
    refusals = [r for r in caplog.records if r.getMessage() == "refused a websocket chat connection"]
    assert len(refusals) == 1 and refusals[0].origin == "https://evil.example"  # logged once, not flooded


async def test_a_configured_origin_is_accepted():
    async with Server(token=TOKEN, allowed_origins=["https://overlay.example"]) as s:
        async with connect(s.url, origin="https://overlay.example") as ws:
            assert (await _send(ws, {"user": "小明", "text": "主播好"}))["ok"] is True
        with pytest.raises(InvalidStatus):
            async with connect(s.url, origin="https://overlay.example.evil.com"):
                pass
    assert [e.text for e in s.got] == ["主播好"]


PAID = [
    {"kind": "super_chat", "user": "Carol", "text": "visit scam.example now", "amount": 30, "currency": "CNY"},
    {"kind": "gift", "user": "小红", "gift": "火箭", "count": 1, "amount": 50, "currency": "CNY"},
    {"kind": "membership", "user": "Dan", "amount": 5, "currency": "USD"},
]


@pytest.mark.parametrize("paid", PAID, ids=lambda m: m["kind"])
async def test_paid_kinds_need_the_token(paid):
    async with Server(token=TOKEN) as s:
        async with connect(s.url) as ws:
            reply = await _send(ws, paid)
            assert reply["ok"] is False and "token" in reply["error"] and "Authorization: Bearer" in reply["error"]
            assert (await _send(ws, {"user": "Ann", "text": "still here"}))["ok"] is True  # connection stays up
        async with connect(s.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            assert (await _send(ws, paid))["ok"] is True
        async with connect(s.url, additional_headers={"X-Streamer-Token": TOKEN}) as ws:
            assert (await _send(ws, paid))["ok"] is True
    assert [e.kind.value for e in s.got] == ["danmaku", paid["kind"], paid["kind"]]
    assert s.got[1].amount.value == paid["amount"]


async def test_without_a_configured_token_nobody_can_claim_paid_kinds():
    async with Server(token=None) as s:
        async with connect(s.url) as ws:
            assert (await _send(ws, PAID[0]))["ok"] is False
        with pytest.raises(InvalidStatus) as refused:  # a token nobody configured is a wrong token
            async with connect(s.url, additional_headers={"Authorization": "Bearer guess"}):
                pass
        assert refused.value.response.status_code == 401
    assert s.got == []


async def test_moderator_flag_is_dropped_without_the_token():
    claim = {"user": {"id": "9", "name": "Mallory", "moderator": True}, "text": "approve me, I am a mod"}
    async with Server(token=TOKEN) as s:
        async with connect(s.url) as ws:
            reply = await _send(ws, claim)
            assert reply["ok"] is True and "moderator flag ignored" in reply["note"]
        async with connect(s.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            reply = await _send(ws, {**claim, "user": {"id": "1", "name": "房管", "moderator": True}})
            assert reply["ok"] is True and "note" not in reply
    assert [(e.user.name, e.user.moderator) for e in s.got] == [("Mallory", False), ("房管", True)]
    assert s.src.moderator_claims_dropped == 1


async def test_a_wrong_token_is_refused_at_the_handshake():
    async with Server(token=TOKEN) as s:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(s.url, additional_headers={"X-Streamer-Token": "guess"}):
                pass
    assert refused.value.response.status_code == 401


async def test_deeply_nested_json_is_rejected_and_the_connection_stays_open():
    deep = '{"user": "a", "text": "x", "extra": ' + "[" * 5000 + "]" * 5000 + "}"
    async with Server(token=TOKEN) as s:
        async with connect(s.url) as ws:
            reply = await _send(ws, deep)
            assert reply["ok"] is False and "nested too deeply" in reply["error"]
            assert (await _send(ws, {"user": "Ann", "text": "after the bomb"}))["ok"] is True
    assert [e.text for e in s.got] == ["after the bomb"]


def test_listening_beyond_loopback_needs_allow_remote_and_a_token():
    with pytest.raises(ValueError, match="allow_remote"):
        WebsocketChatSource("0.0.0.0", 0, token=TOKEN)
    with pytest.raises(ValueError, match="STREAMER_CONTROL_TOKEN"):
        WebsocketChatSource("0.0.0.0", 0, allow_remote=True)
    assert WebsocketChatSource("0.0.0.0", 0, token=TOKEN, allow_remote=True).host == "0.0.0.0"
    assert WebsocketChatSource("::1", 0).host == "::1"


@pytest.mark.parametrize("body, env, error", [
    ('host = "0.0.0.0"', {}, "chat.0.allow_remote: .*set allow_remote = true"),
    ('host = "192.168.1.20"', {"STREAMER_CONTROL_TOKEN": TOKEN}, "chat.0.allow_remote"),
    ('host = "0.0.0.0"\nallow_remote = true', {}, "chat.0.allow_remote: .*STREAMER_CONTROL_TOKEN"),
    ('allowed_origins = ["https://a.example/page"]', {}, "chat.0.allowed_origins.0"),
])
def test_config_names_the_key_for_unsafe_websocket_settings(tmp_path, body, env, error):
    path = write_config(tmp_path, f'[[chat]]\ntype = "websocket"\n{body}\n')
    with pytest.raises(ConfigError, match=error):
        load_settings(path, environ=env)


def test_config_accepts_remote_with_consent_and_token(tmp_path):
    path = write_config(tmp_path, '[[chat]]\ntype = "websocket"\nhost = "0.0.0.0"\nallow_remote = true\n'
                                  'allowed_origins = ["http://127.0.0.1:8080"]\n')
    src = load_settings(path, environ={"STREAMER_CONTROL_TOKEN": TOKEN}).chat[0]
    assert src.allow_remote and src.allowed_origins == ["http://127.0.0.1:8080"]


async def test_sources_built_from_the_profile_carry_origins_and_token(tmp_path):
    from streamer.build import build_sources

    path = write_config(tmp_path, '[[chat]]\ntype = "websocket"\nport = 0\nallowed_origins = ["https://overlay.example"]\n'
                                  '[[chat]]\ntype = "replay"\npath = "{REPO}/config/samples/commerce_en.jsonl"\n')
    ws_src, replay = build_sources(load_settings(path, environ={}), token=TOKEN)
    assert replay.describe() == "replay commerce_en.jsonl x1.0"
    got = []
    task = asyncio.create_task(ws_src.run(got.append))
    try:
        await asyncio.wait_for(ws_src.ready.wait(), 20)
        url = f"ws://127.0.0.1:{ws_src.bound_port}"
        with pytest.raises(InvalidStatus):
            async with connect(url, origin="https://evil.example"):
                pass
        async with connect(url, origin="https://overlay.example", additional_headers={"X-Streamer-Token": TOKEN}) as ws:
            assert (await _send(ws, PAID[1]))["ok"] is True
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [e.gift_name for e in got] == ["火箭"]
