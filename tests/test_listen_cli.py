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
