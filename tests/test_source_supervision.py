"""One supervision loop for every chat source: its state and last error say, in words, what is wrong,
and the source recovers on its own once the port, the file or the host is back."""

import asyncio
import json
import logging
import socket

from websockets.asyncio.client import connect

from chat_sources.base import SourceState
from chat_sources.replay import ReplayChatSource
from chat_sources.twitch import TwitchChatSource
from chat_sources.websocket import WebsocketChatSource
from tests.fakes.twitch import FakeTwitch
from tests.test_codecs import TWITCH

FAST = {"reconnect": lambda attempt: 0.05}


async def _until(cond, timeout=20.0):
    """Wait for a condition; fails only when something is really stuck."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


class Running:
    """Run a source as its owner does (one task, cancelled at the end) and collect its events."""

    def __init__(self, src):
        self.src, self.got = src, []

    async def __aenter__(self):
        self.task = asyncio.create_task(self.src.run(self.got.append))
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), 10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_websocket_port_in_use_is_failed_with_the_port_named_then_recovers(caplog):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    src = WebsocketChatSource("127.0.0.1", port, **FAST)
    async with Running(src) as run:
        await _until(lambda: src.failures >= 1)
        assert src.state is SourceState.FAILED  # an operator must act: failed at once, not "starting"
        assert f"port {port} is in use" in src.last_error
        assert any(r.getMessage() == "port in use" and str(port) in r.error for r in caplog.records)
        blocker.close()  # the operator frees the port: the source comes up without a restart
        await asyncio.wait_for(src.ready.wait(), 20)
        assert src.state is SourceState.LIVE
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            await ws.send(json.dumps({"user": "小明", "text": "还在吗？"}))
            assert json.loads(await ws.recv())["ok"] is True
        assert [e.text for e in run.got] == ["还在吗？"]


async def test_missing_replay_file_is_reported_and_picked_up_once_it_exists(tmp_path):
    path = tmp_path / "chat.jsonl"
    src = ReplayChatSource(path, speed=100.0, loop=False, **FAST)
    async with Running(src) as run:
        await _until(lambda: src.failures >= 1)
        assert src.state is SourceState.FAILED and src.last_error == f"replay file not found: {path}"
        path.write_text('{"t": 0, "user": "Ann", "text": "is it in stock?"}\n'
                        '{"t": 0.01, "user": "小红", "text": "有货吗"}\n', encoding="utf-8")
        await _until(lambda: src.state is SourceState.FINISHED)
        assert [e.text for e in run.got] == ["is it in stock?", "有货吗"]
        assert src.failures == 0  # went live: the failure streak is over


async def test_empty_replay_file_says_so(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("not json\n", encoding="utf-8")
    src = ReplayChatSource(path, **FAST)
    async with Running(src):
        await _until(lambda: src.failures >= 1)
    assert src.state is SourceState.FAILED and "has no usable lines" in src.last_error


async def test_unresolvable_host_names_the_host_then_suggests_the_network(caplog):
    src = TwitchChatSource("somechannel", url="ws://nonexistent.invalid:1", **FAST)
    async with Running(src):
        await _until(lambda: src.failures >= 1)
        assert src.state is SourceState.STARTING  # it never connected: not "reconnecting", not "lost"
        assert "cannot resolve host nonexistent.invalid" in src.last_error
        assert "network" not in src.last_error.split("?", 1)[1]  # no hint yet after one failure
        await _until(lambda: src.failures >= src.failed_after)
        assert src.state is SourceState.FAILED
        assert "cannot resolve host nonexistent.invalid" in src.last_error
        assert "check the network connection, a proxy" in src.last_error
    messages = {r.getMessage() for r in caplog.records if r.name.startswith("chat_sources")}
    assert "cannot connect" in messages and "connection lost" not in messages


async def test_refused_port_names_host_and_port():
    port = _free_port()
    src = TwitchChatSource("somechannel", url=f"ws://127.0.0.1:{port}", **FAST)
    async with Running(src):
        await _until(lambda: src.failures >= 1)
    assert f"127.0.0.1:{port} refused the connection" in src.last_error
    assert src.state is SourceState.STARTING and src.connects == 0


async def test_live_then_lost_is_reconnecting_with_the_host_named():
    async with FakeTwitch() as server:
        server.scenarios = [[("send", TWITCH[0]), ("close",)]]
        src = TwitchChatSource("pajlada", url=server.url, **FAST)
        src.failed_after = 1000  # the server stays away below: we want the "reconnecting" state
        async with Running(src) as run:
            await _until(lambda: len(run.got) == 1)
            port = server.port
            await server.stop()  # the server goes away for good
            await _until(lambda: src.failures >= 2)
            assert src.state is SourceState.RECONNECTING and not src.connected.is_set()
            assert f"127.0.0.1:{port} refused the connection" in src.last_error


async def test_unexpected_bug_in_a_hook_is_logged_with_traceback_and_retried(caplog):
    class Broken(TwitchChatSource):
        async def bootstrap(self, fresh):
            raise KeyError("oops")

    src = Broken("x", **FAST)
    with caplog.at_level(logging.WARNING):
        async with Running(src):
            await _until(lambda: src.failures >= 2)
    assert "KeyError" in src.last_error
    assert any(r.exc_info for r in caplog.records if r.getMessage() == "chat source error")
