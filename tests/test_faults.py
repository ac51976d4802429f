"""The fault campaign: the running app (short form) with one stage failing at a time. For each fault the
stream is captured tick by tick at a sink and checked: no dead air over 3 s (idle talk, a filler line or the
fallback persona fills it), nothing lost (the question and the paid message are answered), and the failure
is named in the log with what was done about it.

Faults here: the LLM endpoint (429, 500, hang, garbage, a slow trickle), a voice failing for one sentence
and for every sentence, the chat server dropping the connection and sending garbage, the renderer raising
mid-sentence, the recording's disk filling up. Process faults (SIGKILL, SIGINT, SIGTERM) are in
tests/test_restart.py and tests/test_sigint.py; a PulseAudio sink that disappears in tests/test_microphone.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess

import numpy as np
import pytest
from websockets.asyncio.client import connect

from streamer.app import App
from streamer.config import load_settings
from streamer.sinks.base import Sink
from streamer.voice.base import TTS, TTSError, register
from tests.conftest import write_config
from tests.fakes.openai import Behaviour, FakeOpenAI
from tests.fakes.twitch import FakeTwitch

pytestmark = pytest.mark.slow

FPS = 25
TOKEN = "fault-token"
DEAD_AIR_S = 3.0

PROFILE = """
[stream]
width = 320
height = 180
[voice]
engine = "espeak"
chain = CHAIN
[director]
state_db = "{TMP}/s.db"
thanks_batch_s = 0.5
[persona]
kind = "KIND"
catalogue = "{REPO}/config/products/demo.toml"
idle_after_s = 1.5
base_url = "LLM"
model = "fake"
first_token_timeout_s = 2
answer_deadline_s = 4
[[chat]]
type = "websocket"
port = 0
EXTRA_CHAT
[outputs.camera]
enabled = "off"
[outputs.recording]
enabled = RECORDING
dir = "{TMP}/rec"
max_total_mb = 1
"""


class Peaks(Sink):
    """Each tick's audio peak, by tick index, as the clock hands it to every sink."""

    name = "peaks"

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}

    def write(self, tick) -> None:
        self.peaks[tick.index] = float(np.abs(tick.audio).max())

    def longest_silence_s(self, after: int) -> float:
        """The longest run of silent ticks after tick ``after`` (a tick the sink never got is not counted)."""
        run_start = None
        best = 0
        for i in sorted(k for k in self.peaks if k > after):
            if self.peaks[i] < 0.005:
                run_start = i if run_start is None else run_start
                best = max(best, i - run_start + 1)
            else:
                run_start = None
        return best / FPS


class FlakyVoice(TTS):
    """A voice that cannot say sentences containing a marker (``"*"``: any sentence)."""

    name = "flaky"
    retries = 0
    fail_on: tuple[str, ...] = ()

    def __init__(self, output_rate: int, **_: object) -> None:
        super().__init__(output_rate)

    def _synthesize(self, text: str):
        if "*" in self.fail_on or any(m in text for m in self.fail_on):
            raise TTSError("flaky voice: the synthesis server answered 503")
        t = np.arange(int(0.05 * self.output_rate * max(4, len(text))), dtype=np.float32) / self.output_rate
        return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), self.output_rate


register("flaky")(FlakyVoice)


async def run_app(tmp_path, *, kind="scripted", llm="", chain='["espeak"]', extra_chat="", recording="false",
                  seconds=12.0, messages=(), before=None):
    """Start the app, send ``messages`` over the websocket once it talks, run for ``seconds``, stop it."""
    body = (PROFILE.replace("{TMP}", str(tmp_path)).replace("KIND", kind).replace("LLM", llm)
            .replace("CHAIN", chain).replace("EXTRA_CHAT", extra_chat).replace("RECORDING", recording))
    peaks = Peaks()
    app = App(load_settings(write_config(tmp_path, body), environ={"OPENAI_API_KEY": "sk-fault-test-000000"}),
              extra_sinks=[peaks], control_token=TOKEN)
    await app.start()
    try:
        for _ in range(600):  # the host starts talking (idle) within idle_after_s
            if any(e["kind"] == "start" for e in app.playback_log):
                break
            await asyncio.sleep(0.05)
        first = next(e["tick"] for e in app.playback_log if e["kind"] == "start")
        if before is not None:
            before(app)
        ids = []
        if messages:
            ws_src = next(s for s in app.sources if s.name == "websocket")
            async with connect(f"ws://127.0.0.1:{ws_src.bound_port}",
                               additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                for m in messages:
                    await ws.send(json.dumps(m))
                    ids.append(json.loads(await ws.recv())["id"])
        await asyncio.sleep(seconds)  # the show goes on with the fault in place
        status = app.status()
    finally:
        await app.stop()
    return app, peaks, first, ids, status


def answered(app, event_id) -> list[str]:
    return [e["text"] for e in app.playback_log if e["kind"] == "start" and e["answers"] == event_id]


QUESTION = {"user": "Sam", "text": "how much is it?"}
PAID = {"kind": "super_chat", "user": "小明", "text": "包邮吗？", "amount": 30, "currency": "CNY"}


@pytest.mark.parametrize("behaviour", [
    Behaviour(errors=[429, 429, 429, 429]), Behaviour(errors=[500] * 6), Behaviour(hang=True),
    Behaviour(malformed=True), Behaviour(chunk_chars=1, chunk_delay_s=0.5)],
    ids=["429", "500", "hang", "garbage", "slow-trickle"])
async def test_a_failing_llm_never_leaves_dead_air_and_every_viewer_is_answered(tmp_path, behaviour, caplog):
    caplog.set_level(logging.INFO)
    async with FakeOpenAI(behaviour) as llm:
        app, peaks, first, (q, paid), status = await run_app(tmp_path, kind="llm", llm=llm.url,
                                                             messages=[QUESTION, PAID], seconds=16)
    assert answered(app, q) and "49" in " ".join(answered(app, q))  # the scripted fallback answered
    assert answered(app, paid) and status["paid_pending"] == 0
    assert peaks.longest_silence_s(first) <= DEAD_AIR_S
    assert "LLM unavailable; the scripted persona answers" in caplog.text
    assert status["errors"]["llm"]["fallbacks"] >= 1


@pytest.mark.parametrize("fail_on", ["AeroBrew", "*"], ids=["one-sentence", "every-sentence"])
async def test_a_failing_voice_is_covered_by_the_next_in_its_chain(tmp_path, fail_on, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))  # no line comes from an earlier run's cache
    FlakyVoice.fail_on = (fail_on,)
    try:
        app, peaks, first, (q, paid), status = await run_app(tmp_path, chain='["flaky", "espeak"]',
                                                             messages=[QUESTION, PAID], seconds=14)
    finally:
        FlakyVoice.fail_on = ()
    assert answered(app, q) and answered(app, paid) and status["paid_pending"] == 0
    assert peaks.longest_silence_s(first) <= DEAD_AIR_S
    assert status["errors"]["tts"].get("flaky", 0) >= 1
    named = [r for r in caplog.records if r.getMessage() == "voice engine failed; the next one in the chain speaks"]
    assert named and "503" in str(named[0].__dict__.get("error", ""))  # one line naming what failed


async def test_a_chat_server_that_drops_and_sends_garbage_is_reconnected_and_the_show_goes_on(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with FakeTwitch() as twitch:
        twitch.scenarios = [
            [("send", "@id=m1;user-id=1;display-name=Ann :ann!a@a PRIVMSG #chan :what colors do you have?"),
             ("send", "\x00\xff garbage that is no IRC line"), ("sleep", 0.3), ("close",)],
            [("send", "@id=m2;user-id=2;display-name=Bob :bob!b@b PRIVMSG #chan :is shipping free?"), ("stall",)],
        ]
        app, peaks, first, _, status = await run_app(
            tmp_path, extra_chat=f'[[chat]]\ntype = "twitch"\nchannel = "chan"\nurl = "{twitch.url}"', seconds=14)
    heard = " ".join(e["text"] for e in app.playback_log if e["kind"] == "start")
    assert "Ann" in heard and "Bob" in heard  # before and after the drop
    assert twitch.connections >= 2
    assert peaks.longest_silence_s(first) <= DEAD_AIR_S
    assert "connection" in caplog.text.lower()


async def test_a_renderer_that_raises_mid_sentence_keeps_the_voice_going(tmp_path, caplog):
    def break_renderer(app):
        renderer = app.speaker.renderer
        good = renderer.render_batches

        def broken(pcm, rate, start_tick=0, sizes=None, base=None):
            batches = good(pcm, rate, start_tick, sizes, base)
            yield next(batches)[:3]
            raise RuntimeError("the lip-sync model fell over")

        renderer.render_batches = broken

    app, peaks, first, (q,), status = await run_app(tmp_path, messages=[QUESTION], seconds=12, before=break_renderer)
    assert answered(app, q)
    assert peaks.longest_silence_s(first) <= DEAD_AIR_S
    assert caplog.text.count("lip-sync render failed") == 1  # logged once, not per sentence


@pytest.fixture
def small_disk(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", str(rec)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    yield rec
    subprocess.run(["umount", "-l", str(rec)], check=False)


async def test_a_full_disk_stops_the_recording_not_the_stream(tmp_path, small_disk, caplog):
    app, peaks, first, (q,), status = await run_app(tmp_path, recording="true", messages=[QUESTION], seconds=14)
    rec = status["sinks"]["recording"]
    assert rec["disk_full"] or rec.get("deleted_for_space", 0) > 0
    assert answered(app, q) and peaks.longest_silence_s(first) <= DEAD_AIR_S
    assert len(peaks.peaks) >= app.clock.ticks - 10  # the other sinks got every tick
