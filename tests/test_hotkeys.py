"""Global hotkeys under a real X server (Xvfb), pressed with xdotool while no panel is open."""

import asyncio
import os
import shutil
import subprocess

import pytest

from streamer.app import App
from streamer.config import load_settings
from streamer.control import ControlServer
from tests.conftest import write_config
from tests.test_control_live import PROFILE, TOKEN, _wait_for
from tests.test_panel_browser import LONG_LINE

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                                   reason="needs Xvfb and xdotool")]

HOTKEYS = """
[control.hotkeys]
enabled = true
interrupt = "<ctrl>+<alt>+i"
pause = "<ctrl>+<alt>+p"
ban_current = "<ctrl>+<alt>+b"
"""


@pytest.fixture
def xserver(monkeypatch):
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "+extension", "RECORD",
                             "-screen", "0", "640x480x24"], pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        display = f":{f.readline().strip()}"
    monkeypatch.setenv("DISPLAY", display)
    yield display
    proc.terminate()
    proc.wait(10)


async def _press(display, keys):
    await asyncio.to_thread(subprocess.run, ["xdotool", "key", keys], env={**os.environ, "DISPLAY": display},
                            check=True, timeout=10)


async def test_hotkeys_interrupt_pause_and_ban_the_author_of_the_current_line(tmp_path, xserver):
    pytest.importorskip("pynput")
    body = PROFILE.replace("{TMP}", str(tmp_path)).replace("{KIND}", "scripted").replace("{LLM}", "") + HOTKEYS
    app = App(load_settings(write_config(tmp_path, body), environ={}))
    control = ControlServer(app, "127.0.0.1", 0, TOKEN)
    await app.start()
    await control.start()
    try:
        hotkeys = control._clients[0]
        app.say_now(LONG_LINE)
        assert await _wait_for(lambda: app.speaker.now_playing is not None, 60)
        await asyncio.sleep(0.5)
        await _press(xserver, "ctrl+alt+i")
        assert await _wait_for(lambda: any(e["kind"] == "end" and not e["completed"] for e in app.playback_log), 15)

        await _press(xserver, "ctrl+alt+p")
        assert await _wait_for(lambda: app.director.paused, 15)
        from chat_sources.schema import event_from_json

        event = event_from_json({"user": {"id": "u-77", "name": "小王"}, "text": "how much is the AeroBrew and is "
                                 "shipping free to Shanghai? please tell me everything about it"}, "control", "local")
        app.inject(event)
        await _press(xserver, "ctrl+alt+p")  # resume: the question is answered
        assert await _wait_for(lambda: not app.director.paused, 15)
        assert await _wait_for(lambda: app.speaker.now_playing is not None
                               and app.speaker.now_playing.answers == event.id, 60)
        await _press(xserver, "ctrl+alt+b")
        assert await _wait_for(lambda: sum(1 for e in app.playback_log if e["kind"] == "end" and not e["completed"]) == 2, 15)
        banned = event_from_json({"user": {"id": "u-77", "name": "小王"}, "text": "hi again"}, "control", "local")
        assert not app.director.moderator.check(banned).allowed
        assert hotkeys.fired == ["interrupt", "pause", "pause", "ban_current"]
    finally:
        await control.stop()
        await app.stop()


def test_doctor_says_how_to_enable_hotkeys_and_why_they_cannot_run(monkeypatch, tmp_path):
    from streamer.control.hotkeys import doctor_line

    off = load_settings(write_config(tmp_path, ""), environ={})
    ok, detail, _ = doctor_line(off)
    assert ok and "to enable" in detail and "[control.hotkeys] enabled = true" in detail
