"""The OBS bridge against a fake obs-websocket v5 server that performs the real authentication."""

import asyncio
import logging

import pytest

from streamer.config import ObsSettings
from streamer.control.feed import StatusFeed
from streamer.control.obs import ObsAuthError, ObsClient, auth_response
from tests.fakes.obs import FakeObs

PASSWORD = "hunter2-密码"


def test_auth_response_matches_the_v5_formula():
    # base64(sha256(base64(sha256(password + salt)) + challenge)), the example values of the protocol notes
    assert auth_response("supersecretpassword", "lM1GncleQOaCu9lT1yeUZhFYnqhsLLP1G5lAGo3ixaI=",
                         "+IxH4CnCiqpX1rM9scsNynZzbOe4KhDeYcTNS3PDaeY=") == "1Ct943GAT+6YQUUX47Ia/ncufilbe6+oD6lY+5kaCu4="


async def _wait(cond, timeout=15):
    for _ in range(int(timeout / 0.02)):
        if cond():
            return True
        await asyncio.sleep(0.02)
    return False


class Status:
    """Stands in for the app's snapshot: what the status stream would carry."""

    def __init__(self):
        self.snap = {"paused": False, "speaking": None, "obs_sources": {}}

    def __call__(self):
        return dict(self.snap)


async def test_bridge_follows_pause_subtitle_and_sources_and_reconnects():
    async with FakeObs(PASSWORD) as obs:
        status = Status()
        feed = StatusFeed(status, interval_s=0.05)
        feed.start()
        from streamer.control.obs import ObsBridge

        settings = ObsSettings(enabled=True, url=obs.url, brb_scene="BRB", subtitle_source="Subtitle")
        bridge = ObsBridge(settings, feed.subscribe, password=PASSWORD, first_backoff_s=0.05, max_backoff_s=0.2)
        bridge.start()
        try:
            assert await _wait(lambda: bridge.state == "connected")
            status.snap["speaking"] = "欢迎来到直播间！"
            assert await _wait(lambda: obs.texts.get("Subtitle") == "欢迎来到直播间！")
            status.snap["paused"] = True
            assert await _wait(lambda: obs.program == "BRB")
            status.snap["paused"] = False
            assert await _wait(lambda: obs.program == "Live")  # back to the scene it was on
            status.snap["obs_sources"] = {"Promo": {"visible": False, "scene": None}}
            assert await _wait(lambda: obs.enabled[("Live", "Promo")] is False)

            await obs.drop_clients()  # OBS restarted
            assert await _wait(lambda: bridge.connections == 2 and bridge.state == "connected")
            status.snap["speaking"] = "Flash sale in five minutes!"
            assert await _wait(lambda: obs.texts.get("Subtitle") == "Flash sale in five minutes!")
            status.snap["obs_sources"] = {"Nope": {"visible": True, "scene": None}}  # refused, connection stays
            assert await _wait(lambda: any(r.get("requestData", {}).get("sourceName") == "Nope" for r in obs.requests))
            await asyncio.sleep(0.2)
            assert bridge.connections == 2 and bridge.state == "connected"
        finally:
            await bridge.aclose()
            await feed.aclose()
    assert obs.identified == 2 and obs.rejected == 0


async def test_wrong_password_is_one_clear_line_and_retried_slowly(caplog):
    caplog.set_level(logging.WARNING)
    async with FakeObs(PASSWORD) as obs:
        client = ObsClient(obs.url, "wrong")
        with pytest.raises(ObsAuthError, match="rejected the password"):
            await client.connect()
        from streamer.control.obs import ObsBridge

        feed = StatusFeed(Status(), interval_s=0.05)
        feed.start()
        bridge = ObsBridge(ObsSettings(enabled=True, url=obs.url, brb_scene="BRB"), feed.subscribe, password="wrong",
                           first_backoff_s=0.05, max_backoff_s=0.1)
        bridge.start()
        try:
            assert await _wait(lambda: obs.rejected >= 4)
        finally:
            await bridge.aclose()
            await feed.aclose()
    lines = [r for r in caplog.records if r.name == "streamer.control.obs"]
    assert len(lines) == 1 and "rejected the password" in lines[0].error  # one line, not one per retry
    assert bridge.state == "down" and "password" in bridge.error


async def test_no_password_when_obs_asks_for_one_says_which_variable():
    async with FakeObs(PASSWORD) as obs:
        with pytest.raises(ObsAuthError, match="OBS_WEBSOCKET_PASSWORD"):
            await ObsClient(obs.url, "").connect()
