"""The operator's live controls over HTTP on a running app, and the LLM persona inside the app."""

import asyncio
import time

import aiohttp
import pytest

from streamer.app import App
from streamer.config import load_settings
from streamer.control import ControlServer
from tests.conftest import write_config, write_video
from tests.fakes.openai import Behaviour, FakeOpenAI

pytestmark = pytest.mark.slow
TOKEN = "tok-123"

PROFILE = """
[stream]
width = 320
height = 180
[voice]
engine = "espeak"
[director]
state_db = "{TMP}/s.db"
thanks_batch_s = 0.5
[persona]
kind = "{KIND}"
name = "Joe"
profiles = ["{REPO}/config/personas/joe.toml", "{REPO}/config/personas/xiaoqiao.toml"]
catalogue = "{REPO}/config/products/demo.toml"
idle_after_s = 600
base_url = "{LLM}"
model = "fake"
first_token_timeout_s = 2
[safety]
terms_file = "{REPO}/config/safety/terms.toml"
[moderation]
blocked_words = ["傻逼"]
[outputs.camera]
enabled = "off"
[outputs.recording]
enabled = false
"""


async def _wait_for(cond, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await asyncio.sleep(0.05)
    return False


async def start(tmp_path, kind="scripted", llm=""):
    cfg = write_config(tmp_path, PROFILE.replace("{TMP}", str(tmp_path)).replace("{KIND}", kind).replace("{LLM}", llm))
    app = App(load_settings(cfg, environ={}))
    control = ControlServer(app, "127.0.0.1", 0, TOKEN)
    await app.start()
    await control.start()
    return app, control, f"http://127.0.0.1:{control.bound_port}/api", {"Authorization": f"Bearer {TOKEN}"}


async def test_operator_controls_queue_ban_approval_product_and_persona(tmp_path):
    app, control, base, auth = await start(tmp_path)
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            await (await http.post(f"{base}/pause")).json()
            ids = {}
            for user, text in [("Sam", "how much is it?"), ("Troll", "你是沙比"), ("Ann", "is it easy to clean?")]:
                r = await (await http.post(f"{base}/chat", json={"user": user, "text": text})).json()
                ids[user] = r["id"]
            queue = (await (await http.get(f"{base}/queue")).json())["queue"]
            assert [e["user"] for item in queue for e in item["events"]] == ["Sam", "Ann"]  # the troll was blocked
            r = await http.delete(f"{base}/queue/{ids['Ann']}")
            assert r.status == 200
            assert (await (await http.post(f"{base}/ban", json={"user": "Sam"})).json())["removed"] == 1
            assert (await (await http.get(f"{base}/queue")).json())["queue"] == []

            await http.post(f"{base}/approval", json={"enabled": True})
            r = await (await http.post(f"{base}/chat", json={"user": "Newbie", "text": "how much is it?"})).json()
            held = (await (await http.get(f"{base}/queue")).json())["queue"]
            assert held[0]["kind"] == "held" and held[0]["events"][0]["id"] == r["id"]

            p = await (await http.post(f"{base}/product", json={"price": 39, "stock": 7})).json()
            assert p["product"]["price"] == 39
            assert (await http.post(f"{base}/product", json={"price": -1})).status == 422  # a negative price names the field
            assert (await http.post(f"{base}/approve", json={"id": r["id"]})).status == 200
            await http.post(f"{base}/resume")
            assert await _wait_for(lambda: any(e["answers"] == r["id"] for e in app.playback_log))
            said = " ".join(e["text"] for e in app.playback_log if e["answers"] == r["id"])
            assert "39 dollars" in said  # the live price, changed while streaming
            status = await (await http.get(f"{base}/status")).json()
            assert status["voice_engine"] == "espeak-ng (en-us)"  # which voice of the chain spoke

            r = await http.post(f"{base}/persona", json={"name": "Nobody"})
            assert r.status == 404
            assert (await (await http.post(f"{base}/persona", json={"name": "小乔"})).json())["persona"] == "小乔"
            status = await (await http.get(f"{base}/status")).json()
            assert status["persona"] == "小乔" and "espeak-ng (cmn+f3)" in app.tts.describe()
    finally:
        await control.stop()
        await app.stop()


async def test_llm_persona_answers_inside_the_app_and_filters_its_output(tmp_path):
    answer = "Hi Sam! The AeroBrew is the best espresso maker in the world. It costs 49 dollars."
    async with FakeOpenAI(Behaviour(answer=answer)) as llm:
        app, control, base, auth = await start(tmp_path, "llm", llm.url)
        try:
            async with aiohttp.ClientSession(headers=auth) as http:
                r = await (await http.post(f"{base}/chat", json={"user": "Sam", "text": "how much is it?"})).json()
                assert await _wait_for(lambda: sum(1 for e in app.playback_log
                                                   if e["answers"] == r["id"] and e["kind"] == "end") >= 3)
            said = [e["text"] for e in app.playback_log if e["answers"] == r["id"] and e["kind"] == "start"]
            assert said == ["Hi Sam!", "The AeroBrew is a great espresso maker in the world.", "It costs 49 dollars."]
            assert '<viewer>{"name": "Sam", "text": "how much is it?"}</viewer>' in llm.requests[0]["messages"][-1]["content"]
        finally:
            await control.stop()
            await app.stop()


def _make_clip(path, seconds=1.0):
    import numpy as np

    n = int(25 * seconds)
    frames = [np.full((90, 160, 3), (255, 0, 255), np.uint8)] * n
    t = np.arange(int(48000 * seconds)) / 48000
    write_video(path, frames, audio=0.5 * np.sin(2 * np.pi * 440 * t))


async def test_action_clip_plays_on_a_gift_and_on_command(tmp_path):
    import numpy as np

    from streamer.sinks.base import Sink

    class Capture(Sink):
        name = "capture"

        def __init__(self):
            self.ticks = {}

        def write(self, tick):
            self.ticks[tick.index] = (tick.frame[90, 160].copy(), float(np.abs(tick.audio).max()))

    _make_clip(tmp_path / "wave.mp4")
    profile = PROFILE + '\n[[avatar.actions]]\nname = "wave"\nfile = "' + str(tmp_path / "wave.mp4") + '"\non = "gift"\n'
    cfg = write_config(tmp_path, profile.replace("{TMP}", str(tmp_path)).replace("{KIND}", "scripted").replace("{LLM}", ""))
    capture = Capture()
    app = App(load_settings(cfg, environ={}), extra_sinks=[capture])
    control = ControlServer(app, "127.0.0.1", 0, TOKEN)
    await app.start()
    await control.start()
    base, auth = f"http://127.0.0.1:{control.bound_port}/api", {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            await http.post(f"{base}/chat", json={"kind": "gift", "user": "Gia", "gift": "rose", "amount": 1})
            assert await _wait_for(lambda: any(e["source"] == "action" and e["kind"] == "end" for e in app.playback_log))
            start = next(e["tick"] for e in app.playback_log if e["source"] == "action")
            clip_ticks = [capture.ticks[t] for t in range(start + 2, start + 22) if t in capture.ticks]
            assert clip_ticks and all(px[0] > 200 and px[1] < 60 and px[2] > 200 for px, _ in clip_ticks)  # magenta
            assert max(peak for _, peak in clip_ticks) > 0.3  # with its own audio
            r = await http.post(f"{base}/action", json={"name": "dance"})
            assert r.status == 404 and "wave" in (await r.json())["error"]
            r = await (await http.post(f"{base}/action", json={"name": "wave"})).json()
            assert r["ok"]
            assert await _wait_for(lambda: sum(1 for e in app.playback_log if e["source"] == "action"
                                               and e["kind"] == "start") == 2)
    finally:
        await control.stop()
        await app.stop()


async def test_push_to_talk_without_an_operator_microphone_says_how_to_get_one(tmp_path):
    app, control, base, auth = await start(tmp_path)
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            r = await http.post(f"{base}/talk", json={"down": True})
            assert r.status == 409 and "[voice.mic] enabled = true" in (await r.json())["error"]
            assert (await http.post(f"{base}/talk", json={"down": "yes please"})).status == 422
            assert (await (await http.get(f"{base}/status")).json())["operator_mic"] is None
    finally:
        await control.stop()
        await app.stop()
