"""``streamer listen`` prints a room's events as JSON Lines until Ctrl-C; example profiles load."""

import asyncio
import json
import signal
import sys

import pytest

from streamer.config import load_settings
from tests.conftest import REPO
from tests.fakes.twitch import FakeTwitch
from tests.test_codecs import TWITCH


async def test_listen_prints_json_lines_until_ctrl_c():
    async with FakeTwitch() as server:
        server.scenarios = [[("send", "\r\n".join(TWITCH[:2])), ("send", TWITCH[7]), ("sleep", 30)]]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamer", "listen", "twitch", "pajlada", "--url", server.url, "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            lines = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 20)) for _ in range(3)]
            proc.send_signal(signal.SIGINT)
            rc = await asyncio.wait_for(proc.wait(), 5)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert rc == 0
    assert [(e["kind"], e["user"]["name"], e["action"] or e["text"]) for e in lines] == [
        ("danmaku", "JuN1oRRRR", "dank cam"), ("danmaku", "randers", "-tags"), ("system", "iamelisabete", "raid")]
    assert lines[0]["platform"] == "twitch" and lines[0]["msg_id"] == "e9d998c3-36f1-430f-89ec-6b887c28af36"


@pytest.mark.parametrize("name", ["bilibili_commerce", "douyin_commerce", "twitch_vtuber"])
def test_example_profiles_load(name):
    s = load_settings(REPO / "config" / f"{name}.toml", environ={})
    assert s.chat and s.chat[0].type in ("bilibili", "douyin", "twitch")


async def _listen_stderr_until(args, marker: str, timeout: float = 60) -> str:
    """Run ``streamer listen`` until its stderr shows ``marker``; Ctrl-C it; return stderr."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "streamer", "listen", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    seen = []
    try:
        async def read() -> None:
            while marker not in "".join(seen):
                line = await proc.stderr.readline()
                assert line, "listen exited: " + "".join(seen)
                seen.append(line.decode())

        await asyncio.wait_for(read(), timeout)
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return "".join(seen)


@pytest.mark.slow
async def test_listen_without_network_names_the_host_and_suggests_the_network():
    err = await _listen_stderr_until(["twitch", "somechannel", "--url", "ws://nonexistent.invalid:1"],
                                     "check the network")
    failures = [line for line in err.splitlines() if "nonexistent.invalid" in line]
    assert failures and all("cannot resolve host nonexistent.invalid" in line for line in failures)
    assert "connection lost" not in err  # it never opened: nothing was lost
    assert "HTTPS_PROXY" in failures[-1]


@pytest.mark.slow
async def test_listen_to_a_refused_port_names_host_and_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = await _listen_stderr_until(["twitch", "somechannel", "--url", f"ws://127.0.0.1:{port}"],
                                     "refused the connection")
    assert f"127.0.0.1:{port} refused the connection" in err and "connection lost" not in err
