"""The Twitch client against a local fake Twitch IRC-over-websocket server."""

import asyncio

from chat_sources.twitch import TwitchChatSource
from streamer.events import EventKind
from tests.conftest import run_until
from tests.fakes.twitch import FakeTwitch
from tests.test_codecs import TWITCH


async def test_twitch_anonymous_read_ping_reconnect_stall():
    async with FakeTwitch() as server:
        burst = "\r\n".join(TWITCH[:4]) + "\r\n"  # several lines in one frame
        server.scenarios = [
            [("send", burst), ("ping",), ("send", TWITCH[5]), ("send", "@garbage\r\n"), ("send", TWITCH[0]),
             ("send", ":tmi.twitch.tv RECONNECT")],
            [("send", "@login=x;target-msg-id=e9d998c3-36f1-430f-89ec-6b887c28af36 :tmi.twitch.tv CLEARMSG #pajlada :dank cam"),
             ("sleep", 0.7), ("stall",)],
            [("send", TWITCH[7]), ("sleep", 0.5)],
        ]
        src = TwitchChatSource("#PajLada", url=server.url, token="", reconnect=lambda a: 0.05, heartbeat_s=0.3)
        got = await run_until(src, lambda g: any(e.action == "raid" for e in g))
    assert [(e.kind, e.action or e.text) for e in got] == [
        (EventKind.DANMAKU, "dank cam"), (EventKind.DANMAKU, "-tags"), (EventKind.DANMAKU, "@Retoon yes"),
        (EventKind.DANMAKU, "test fake message"), (EventKind.MEMBERSHIP, "fallenseraphhh subscribed with Twitch Prime."),
        (EventKind.SYSTEM, "delete_message"), (EventKind.SYSTEM, "raid")]
    assert got[5].target == got[0].msg_id
    assert src.duplicates == 1  # the re-sent "dank cam" line
    assert all(nick.startswith("justinfan") and pw == "" for nick, pw in server.logins)
    assert server.joins == ["#pajlada"] * 3 and server.pongs >= 1 and server.client_pings >= 1
    assert src.stalls == 1 and src.skipped >= 1 and src.connects == 3


async def test_twitch_token_login_and_rejected_login():
    async with FakeTwitch(good_token="s3cret") as server:
        server.scenarios = [[("send", TWITCH[3]), ("sleep", 0.5)]]
        src = TwitchChatSource("riotgames", url=server.url, token="oauth:s3cret", nick="MyBot", reconnect=lambda a: 0.05)
        got = await run_until(src, lambda g: len(g) >= 1)
        assert got[0].user.name == "Riot Games" and server.logins[0] == ("mybot", "oauth:s3cret")

        bad = TwitchChatSource("riotgames", url=server.url, token="wrong", nick="MyBot", reconnect=lambda a: 0.05)
        task = asyncio.create_task(bad.run(lambda e: None))
        for _ in range(2000):  # until the first attempt is over (bounded: fails only if really stuck)
            if bad.failures:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert "authentication failed" in bad.last_error and "TWITCH_TOKEN" in bad.last_error and bad.connects == 0
