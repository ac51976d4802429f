"""``streamer avatar describe``: a spoken description (synthesised here: piper for English, espeak-ng for
Chinese) through faster-whisper base, a prompt (the template, or an LLM behind a fake OpenAI-compatible
server), then create, with every intermediate kept beside the result."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest

from avatars.studio import StudioError
from avatars.studio.make import PromptOptions, hear, make_from_description
from avatars.studio.progress import ConsoleReport
from avatars.studio.prompt_writer import write_prompt
from avatars.studio.recording import read_audio, write_wav
from tests.conftest import wait_until_recording
from tests.fakes.drawn_portraits import DrawnPortraits
from tests.fakes.openai import Behaviour, FakeOpenAI

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EN_DESCRIPTION = "A young woman with long black hair, smiling, wearing a white blouse."
ZH_DESCRIPTION = "年轻的女主播，长头发，在微笑。"
ZH_KEYWORDS = {"年轻": "young", "女": "woman", "长头发": "long hair", "微笑": "smiling"}


@pytest.fixture(scope="module")
def english_wav(tmp_path_factory):
    piper = pytest.importorskip("piper", reason="needs the piper extra")
    del piper
    from streamer.voice.piper import PiperTTS

    pcm = PiperTTS(22050).synthesize_blocking(EN_DESCRIPTION)
    path = tmp_path_factory.mktemp("wav") / "describe_en.wav"
    write_wav(path, pcm, 22050)
    return path


@pytest.fixture(scope="module")
def chinese_wav(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    from streamer.voice.espeak import EspeakTTS

    pcm = EspeakTTS(16000, voice="cmn-latn-pinyin", speed=0.8).synthesize_blocking(ZH_DESCRIPTION)
    path = tmp_path_factory.mktemp("wav") / "describe_zh.wav"
    write_wav(path, pcm, 16000)
    return path


def opts(**kw):
    return PromptOptions("", seed=kw.pop("seed", 2), candidates=kw.pop("candidates", 1), steps=1, **kw)


@pytest.mark.slow
def test_english_description_becomes_a_prepared_avatar_with_every_intermediate(english_wav, transcriber, tmp_path):
    pcm, rate = read_audio(english_wav)
    heard = hear(pcm, rate, transcriber, None, "the recording")
    assert heard.language == "en"
    assert "long black hair" in heard.transcript.lower() and "smiling" in heard.transcript.lower()
    draft = write_prompt(heard.transcript, "template")
    assert draft.prompt.startswith("portrait of a young woman with long black hair")
    drawn = DrawnPortraits()
    made = make_from_description(heard, draft, drawn, opts(seed=4, candidates=2), tmp_path / "mia",
                                 report=ConsoleReport(io.StringIO()))
    work = tmp_path / "mia" / "studio"
    assert (work / "transcript.txt").read_text(encoding="utf-8").strip() == heard.transcript
    saved = json.loads((work / "prompt.json").read_text(encoding="utf-8"))
    assert saved["prompt"] == draft.prompt and saved["writer"] == "template"
    kept, rate_kept = read_audio(work / "recording.wav")
    assert rate_kept == rate and abs(len(kept) - len(pcm)) <= 1
    assert sorted(p.name for p in (work / "candidates").iterdir()) == ["01-seed4.png", "02-seed5.png"]
    src = tomllib.loads((tmp_path / "mia" / "avatar.toml").read_text(encoding="utf-8"))["source"]
    assert src["kind"] == "describe" and src["transcript"] == heard.transcript and src["seed"] == 5
    assert drawn.requests[0][0].description == draft.prompt  # the heard prompt is what was generated from
    assert made.prepared.detected == 1


@pytest.mark.slow
def test_chinese_description_is_heard_and_turned_into_an_english_prompt(chinese_wav, transcriber, tmp_path):
    """espeak-ng's Mandarin is robotic, so this checks what survives it honestly: whisper writes Chinese,
    at least two of the four described features are recognised (in simplified or traditional script),
    and each one recognised reaches the prompt in English; the prompt has no Chinese left."""
    from avatars.studio import zh_keywords

    pcm, rate = read_audio(chinese_wav)
    heard = hear(pcm, rate, transcriber, "zh", "the recording")
    simplified = heard.transcript.translate(zh_keywords.TRADITIONAL)
    assert any("\u4e00" <= c <= "\u9fff" for c in heard.transcript), heard.transcript
    found = {zh: en for zh, en in ZH_KEYWORDS.items() if zh in simplified}
    assert len(found) >= 2, f"whisper heard {heard.transcript!r}"
    draft = write_prompt(heard.transcript, "template")
    assert draft.language == "zh" and not any("\u4e00" <= c <= "\u9fff" for c in draft.prompt)
    for en in found.values():
        assert en in draft.prompt, (heard.transcript, draft.prompt)
    make_from_description(heard, draft, DrawnPortraits(), opts(), tmp_path / "xiaoqiao",
                          report=ConsoleReport(io.StringIO()))
    src = tomllib.loads((tmp_path / "xiaoqiao" / "avatar.toml").read_text(encoding="utf-8"))["source"]
    assert src["transcript"] == heard.transcript and src["language"] == "zh"


@pytest.mark.parametrize("level", [0.0, 0.002])
def test_a_silent_recording_is_refused_before_speech_recognition(level, tmp_path):
    class NeverCalled:
        def transcribe(self, *a, **k):
            raise AssertionError("silence must not reach whisper (it invents sentences)")

    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal(16000 * 3) * level).astype(np.float32)
    with pytest.raises(StudioError, match=r"the recording is silent .*3.0 s long.*microphone.*--wav FILE"):
        hear(pcm, 16000, NeverCalled(), None, "the recording")


def test_green_screen_said_in_the_description_is_honoured(tmp_path):
    from avatars.studio.make import Heard

    draft = write_prompt("一个短发的男主播，穿西装，绿幕背景", "template")
    assert draft.green_screen and draft.prompt == "portrait of a man, short hair, suit"
    drawn = DrawnPortraits()
    heard = Heard(np.zeros(16000, np.float32), 16000, "一个短发的男主播，穿西装，绿幕背景", "zh")
    make_from_description(heard, draft, drawn, opts(), tmp_path / "g", report=ConsoleReport(io.StringIO()))
    assert "green screen" in drawn.requests[0][0].prompt
    assert tomllib.loads((tmp_path / "g" / "avatar.toml").read_text(encoding="utf-8"))["green_screen"] is True


def test_the_zh_template_reports_what_it_did_not_understand():
    draft = write_prompt("我想要一个戴眼镜的年轻女生，黑色长发，穿着蓝色的毛衣，打网球", "template")
    assert draft.prompt == "portrait of a young woman, wearing glasses, black long hair, blue sweater"
    assert draft.not_understood == "打网球"


# --- the LLM prompt writer -------------------------------------------------------------------------

async def test_llm_writes_the_prompt_from_a_chinese_description():
    answer = "young woman, long black hair, warm smile, white blouse"
    async with FakeOpenAI(Behaviour(answer=answer)) as server:
        draft = await asyncio.to_thread(write_prompt, ZH_DESCRIPTION, "auto", base_url=server.url, kind="llm",
                                        model="qwen-plus", api_key="sk-test")
    assert draft.prompt == f"portrait of {answer}" and draft.writer == "llm:qwen-plus" and draft.language == "zh"
    body = server.requests[0]
    assert body["model"] == "qwen-plus"
    assert f"<description>{ZH_DESCRIPTION}</description>" in body["messages"][-1]["content"]
    assert "English" in body["messages"][0]["content"]
    assert server.auth == ["Bearer sk-test"]


async def test_a_failing_or_unusable_llm_falls_back_to_the_template():
    async with FakeOpenAI(Behaviour(errors=[500, 500])) as server:
        draft = await asyncio.to_thread(write_prompt, EN_DESCRIPTION, "auto", base_url=server.url, kind="llm")
    assert draft.writer == "template" and "LLM endpoint failed" in draft.note
    assert draft.prompt.startswith("portrait of a young woman with long black hair")
    async with FakeOpenAI(Behaviour(answer="一个年轻的女孩")) as server:  # not English: refused
        draft = await asyncio.to_thread(write_prompt, ZH_DESCRIPTION, "auto", base_url=server.url, kind="llm")
    assert draft.writer == "template" and "not one line of English" in draft.note
    assert draft.prompt == "portrait of a young woman, long hair, smiling"


async def test_an_llm_asked_for_by_name_that_fails_is_an_error():
    async with FakeOpenAI(Behaviour(errors=[503, 503])) as server:
        with pytest.raises(StudioError, match="LLM endpoint failed.*--prompt-writer template"):
            await asyncio.to_thread(write_prompt, EN_DESCRIPTION, "llm", base_url=server.url, kind="llm")


def test_without_an_llm_configured_the_template_is_used(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    draft = write_prompt(EN_DESCRIPTION, "auto", base_url="", kind="scripted")
    assert draft.writer == "template"


# --- the command line and the microphone -----------------------------------------------------------

@pytest.mark.slow
def test_cli_describe_from_a_wav_runs_speech_prompt_and_pipeline(english_wav, whisper_dir, tiny_sd, tmp_path,
                                                                   capsys, monkeypatch):
    from streamer.cli import main

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["avatar", "describe", "--wav", str(english_wav), "--whisper-model", str(whisper_dir),
               "--model", str(tiny_sd), "--size", "64x64", "--steps", "2", "--candidates", "1", "--device", "cpu",
               "-o", str(out / "host.png")])
    err = capsys.readouterr().err
    assert rc == 1  # the tiny random model draws no face: the run stops there, cleanly
    assert "heard (en):" in err and "long black hair" in err.lower()
    assert "prompt (template): portrait of a young woman with long black hair" in err
    assert "avatar describe: none of the 1 candidates has a face" in err
    assert list(out.iterdir()) == []


def test_cli_describe_refuses_a_silent_wav(tmp_path, tiny_sd, capsys):
    from streamer.cli import main

    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16000 * 2, np.float32), 16000)
    rc = main(["avatar", "describe", "--wav", str(silent), "--model", str(tiny_sd), "-o", str(tmp_path / "h")])
    assert rc == 1
    assert "avatar describe: " in (err := capsys.readouterr().err) and "is silent" in err
    assert not (tmp_path / "h").exists()


@pytest.mark.slow
def test_recording_from_a_pulseaudio_source(english_wav, transcriber):
    """Play the description into a private null sink and record its monitor, as from a microphone."""
    if not (shutil.which("pactl") and shutil.which("paplay") and shutil.which("parecord")):
        pytest.skip("needs PulseAudio tools")
    if subprocess.run(["pactl", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no PulseAudio server")
    from avatars.studio.recording import record

    sink = f"studio_test_{uuid.uuid4().hex[:8]}"
    module = subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={sink}"], capture_output=True,
                            text=True, check=True).stdout.strip()
    try:
        def play() -> None:  # once the recorder is connected (parecord takes a moment to start)
            wait_until_recording(f"{sink}.monitor")
            subprocess.run(["paplay", f"--device={sink}", str(english_wav)], check=False, timeout=30)

        player = threading.Thread(target=play)
        player.start()
        pcm = record(12.0, f"{sink}.monitor")
        player.join(timeout=30)
    finally:
        subprocess.run(["pactl", "unload-module", module], check=False)
    heard = hear(pcm, 16000, transcriber, "en", "the recording")
    assert "long black hair" in heard.transcript.lower()
