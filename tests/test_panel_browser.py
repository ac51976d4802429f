"""The control panel and the stage page in headless Chromium against a running app.

A user signs in (a wrong token shows a login error), presses the interrupt shortcut (the audio at a
sink goes silent within two frames), clicks "ban" on a queued message (it disappears); the stage page
plays the stream over WebRTC (video frames advance, audio arrives)."""

import asyncio

import numpy as np
import pytest

from streamer.app import App
from streamer.config import load_settings
from streamer.control import ControlServer
from streamer.sinks.base import Sink
from tests.conftest import write_config
from tests.fakes.browser import CHROMIUM, Browser
from tests.test_control_live import PROFILE, TOKEN, _wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="needs chromium")]

LONG_LINE = ("Welcome to the shop everyone, today we have a very special offer on the AeroBrew espresso maker, "
             "and I will tell you all about how it works, what it costs and why our regular viewers love it so much.")


class Peaks(Sink):
    name = "peaks"

    def __init__(self):
        self.peaks = {}

    def write(self, tick):
        self.peaks[tick.index] = float(np.abs(tick.audio).max())


async def _start(tmp_path, extra=""):
    body = PROFILE.replace("{TMP}", str(tmp_path)).replace("{KIND}", "scripted").replace("{LLM}", "") + extra
    peaks = Peaks()
    app = App(load_settings(write_config(tmp_path, body), environ={}), extra_sinks=[peaks])
    control = ControlServer(app, "127.0.0.1", 0, TOKEN)
    await app.start()
    await control.start()
    return app, control, peaks


async def test_login_with_a_wrong_token_then_the_right_one_kept_for_the_session(tmp_path):
    app, control, _ = await _start(tmp_path)
    try:
        async with Browser() as page:
            await page.goto(f"{control.url}/#token=wrong-token")
            error = await page.wait("!document.getElementById('login').hidden && "
                                    "document.getElementById('login-error').textContent")
            assert "Wrong token" in error and await page.js("document.getElementById('panel').hidden")
            assert "token" not in await page.js("location.href")  # taken out of the address bar
            await page.js(f"document.getElementById('token').value = {TOKEN!r}; "
                          "document.querySelector('#login-form button').click()")
            await page.wait("!document.getElementById('panel').hidden && "
                            "document.getElementById('conn').textContent.startsWith('live')")
            assert await page.js("sessionStorage.getItem('streamer-token')") == TOKEN
            assert int(await page.wait("Number(document.getElementById('ticks').textContent) > 0"))
            await page.js("location.reload()")
            await page.wait("document.readyState === 'complete' && !document.getElementById('panel').hidden")
            shown = await page.wait("document.querySelector('kbd[data-key=interrupt]').textContent")
            assert shown == "Escape"  # shortcuts are shown on the page
    finally:
        await control.stop()
        await app.stop()


async def test_interrupt_shortcut_silences_the_sink_within_two_frames(tmp_path):
    app, control, peaks = await _start(tmp_path)
    try:
        async with Browser() as page:
            await page.goto(f"{control.url}/#token={TOKEN}")
            await page.wait("document.getElementById('conn').textContent.startsWith('live')")
            app.say_now(LONG_LINE)
            assert await _wait_for(lambda: app.speaker.now_playing is not None, 60)
            await page.wait("document.getElementById('speaking').textContent.startsWith('Welcome')")
            await asyncio.sleep(1.0)  # well into the line
            assert not any(e["kind"] == "end" and not e["completed"] for e in app.playback_log)
            await page.press("Escape")
            assert await _wait_for(lambda: any(e["kind"] == "end" and not e["completed"] for e in app.playback_log), 15)
            fade = next(e["tick"] for e in app.playback_log if e["kind"] == "end" and not e["completed"])
            assert await _wait_for(lambda: max(peaks.peaks) > fade + 30, 15)
        before = [peaks.peaks[t] for t in range(fade - 12, fade)]
        assert max(before) > 0.05  # it was speaking
        after = [peaks.peaks[t] for t in range(fade + 1, fade + 30)]
        assert max(after) == 0.0, after[:5]  # silent from the frame after the fade frame on
    finally:
        await control.stop()
        await app.stop()


async def test_clicking_ban_removes_the_viewers_queued_message(tmp_path):
    app, control, _ = await _start(tmp_path)
    try:
        await app.pause()
        for user, text in [("Troll", "buy followers at spam dot com"), ("小明", "这个咖啡机多少钱？")]:
            from chat_sources.schema import event_from_json

            app.inject(event_from_json({"user": user, "text": text}, "control", "local"))
        async with Browser() as page:
            await page.goto(f"{control.url}/#token={TOKEN}")
            rows = await page.wait("[...document.querySelectorAll('#queue tbody tr')].length === 2 && "
                                   "[...document.querySelectorAll('#queue tbody tr td:nth-child(2)')].map(td => td.textContent)")
            assert sorted(rows) == sorted(["Troll", "小明"])
            await page.js("[...document.querySelectorAll('#queue tbody tr')].find(tr => tr.children[1].textContent "
                          "=== 'Troll').querySelector('button.ban').click()")
            left = await page.wait("[...document.querySelectorAll('#queue tbody tr')].length === 1 && "
                                   "document.querySelector('#queue tbody tr td:nth-child(2)').textContent")
            assert left == "小明"
            await page.js("document.getElementById('approval').click()")  # approve-before-speak on
            assert await _wait_for(lambda: app.director.moderator.approval, 15)
            app.inject(event_from_json({"user": "新人", "text": "第一次来，有优惠吗？"}, "control", "local"))
            await page.wait("[...document.querySelectorAll('#queue tbody tr.held')].length === 1")
            await page.js("document.querySelector('#queue tbody tr.held button.approve').click()")
            await page.wait("![...document.querySelectorAll('#queue tbody tr.held')].length && "
                            "[...document.querySelectorAll('#queue tbody tr td:nth-child(2)')].some(td => "
                            "td.textContent === '新人')")
        assert sorted(e["user"] for item in app.director.queue_view() for e in item["events"]) == ["小明", "新人"]
        assert not app.director.moderator.check(event_from_json({"user": "Troll", "text": "hi"}, "control", "local")).allowed
    finally:
        await control.stop()
        await app.stop()


async def test_stage_page_plays_video_and_audio_over_webrtc(tmp_path):
    app, control, _ = await _start(tmp_path, "\n[outputs.stage]\nenabled = true\n")
    try:
        app.say_now("Hello stage viewers, this is the live host speaking to you.")
        async with Browser() as page:
            await page.goto(f"{control.url}/stage")
            await page.wait("window.stageStats.connected && window.stageStats.frames > 10", 60)
            first = await page.js("window.stageStats.frames")
            await asyncio.sleep(2.0)
            stats = await page.wait("window.stageStats.audioSamples > 24000 && window.stageStats", 30)
            assert stats["frames"] > first + 10  # video frames advance
            assert stats["connections"] == 1
            status = app.status()["sinks"]["stage"]
            assert status["viewers"] == 1 and status["written"] > 0
            await page.js("location.reload()")  # the viewer leaves and comes back
            await page.wait("window.stageStats && window.stageStats.connected && window.stageStats.frames > 10", 60)
            assert await _wait_for(lambda: app.status()["sinks"]["stage"]["served"] == 2
                                   and app.status()["sinks"]["stage"]["viewers"] == 1, 30)
    finally:
        await control.stop()
        await app.stop()


async def test_holding_the_talk_key_records_the_operator_and_letting_go_stops(tmp_path, pulse_sink):
    """Push-to-talk from the panel: the button shows only with a push-to-talk microphone, the "t" key held
    down records (the button lights up), released it stops (what was said goes to the host)."""
    app, control, _ = await _start(tmp_path, f'[voice.mic]\nenabled = true\nsource = "{pulse_sink}.monitor"\n')
    try:
        await asyncio.wait_for(app.mic.listening.wait(), 60)
        async with Browser() as page:
            await page.goto(f"{control.url}/#token={TOKEN}")
            await page.wait("document.getElementById('conn').textContent.startsWith('live') && "
                            "!document.getElementById('talk-btn').hidden")
            assert await page.js("document.querySelector('kbd[data-key=talk]').textContent") == "t"
            await page.key("keyDown", "t")
            assert await _wait_for(lambda: app.mic.talking, 15)
            await page.wait("document.getElementById('talk-btn').classList.contains('active')")
            await page.key("keyUp", "t")
            assert await _wait_for(lambda: not app.mic.talking, 15)
    finally:
        await control.stop()
        await app.stop()
