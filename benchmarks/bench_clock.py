"""The output clock at 25 fps on this machine: frame-interval error idle and while speaking, CPU share,
and memory after 10 minutes of stream (run unpaced, so it takes about a minute).

Usage: python benchmarks/bench_clock.py [--seconds 60] [--width 1280 --height 720]
Last line: one JSON object with a "headline".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatars import load_avatar  # noqa: E402
from avatars.procedural import ProceduralRenderer  # noqa: E402
from benchmarks._common import TimingSink, percentiles, report, rss_mb  # noqa: E402
from overlays import draw_chat, draw_subtitle  # noqa: E402
from streamer.cli import tune_process_for_realtime  # noqa: E402
from streamer.clock import OutputClock  # noqa: E402
from streamer.sinks.base import SinkWorker  # noqa: E402
from streamer.speech import Segment, Utterance  # noqa: E402

FPS, RATE = 25, 48000



def speech_like(seconds: float) -> np.ndarray:
    """Syllable-rate modulated voiced sound: drives the mouth like speech (no TTS in this benchmark)."""
    t = np.arange(int(seconds * RATE)) / RATE
    env = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 0.5
    return (0.4 * env * np.sin(2 * np.pi * 160 * t) * (1 + 0.3 * np.sin(2 * np.pi * 900 * t))).astype(np.float32)


def feed(clock: OutputClock, renderer: ProceduralRenderer, seconds: float) -> Segment:
    pcm = speech_like(seconds)
    seg = Segment(Utterance("This is a benchmark subtitle line for the clock."), pcm, renderer.analyze(pcm, RATE),
                  clock.samples_per_frame)
    clock.push(seg)
    return seg


def paced_phase(renderer: ProceduralRenderer, seconds: float, speaking: bool) -> dict:
    sink = TimingSink()
    clock = OutputClock(FPS, RATE, renderer, [SinkWorker(sink, max_queue=64)], [draw_chat, draw_subtitle])
    clock.update_overlay(lambda state: state.chat.extend(["Mia: hi!", "Sam: how much is it?", "Leo: 这个多少钱？"]))
    if speaking:
        feed(clock, renderer, seconds + 5)
    tune_process_for_realtime()  # as the entry point does once everything is built
    cpu0, t0 = time.process_time(), time.monotonic()
    clock.start()
    time.sleep(seconds)
    clock.stop()
    cpu = (time.process_time() - cpu0) / (time.monotonic() - t0)
    intervals = np.diff(np.array(sink.times))
    err_ms = np.abs(intervals - 1.0 / FPS) * 1000
    lateness_ms = np.array(clock.lateness) * 1000
    return {"ticks": clock.ticks, "interval_error_ms": percentiles(err_ms), "deadline_lateness_ms": percentiles(lateness_ms),
            "cpu_share_of_one_core": round(cpu, 3), "fps": round(clock.ticks / seconds, 2)}


def unpaced_memory(renderer: ProceduralRenderer, stream_seconds: float) -> dict:
    clock = OutputClock(FPS, RATE, renderer, [], [draw_chat, draw_subtitle])
    rss0 = rss_mb()
    ticks = int(stream_seconds * FPS)
    t0 = time.perf_counter()
    done = 0
    seg: Segment | None = None
    while done < ticks:
        if (seg is None or seg.ended.done()) and (done // (FPS * 20)) % 2 == 0:  # 20 s speaking, 20 s idle
            seg = feed(clock, renderer, 8.0)
        n = min(FPS * 5, ticks - done)
        clock.run_offline(n, lambda tick: None)
        line = f"viewer{done}: message number {done}"
        clock.update_overlay(lambda state, line=line: state.chat.append(line))
        done += n
    wall = time.perf_counter() - t0
    return {"stream_seconds": stream_seconds, "rss_mb_start": round(rss0, 1), "rss_mb_end": round(rss_mb(), 1),
            "compose_ms_per_frame": round(1000 * wall / ticks, 3), "times_realtime": round(ticks / FPS / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--memory-minutes", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    args = ap.parse_args()
    renderer = ProceduralRenderer(load_avatar("", args.width, args.height), FPS)
    idle = paced_phase(renderer, args.seconds, speaking=False)
    speaking = paced_phase(renderer, args.seconds, speaking=True)
    memory = unpaced_memory(renderer, args.memory_minutes * 60)
    report({
        "benchmark": "clock",
        "frame": f"{args.width}x{args.height}@{FPS}",
        "idle": idle,
        "speaking": speaking,
        "memory": memory,
        "headline": {
            "interval_error_ms_p50_idle": idle["interval_error_ms"]["p50"],
            "interval_error_ms_p99_idle": idle["interval_error_ms"]["p99"],
            "interval_error_ms_max_idle": idle["interval_error_ms"]["max"],
            "interval_error_ms_p50_speaking": speaking["interval_error_ms"]["p50"],
            "interval_error_ms_p99_speaking": speaking["interval_error_ms"]["p99"],
            "interval_error_ms_max_speaking": speaking["interval_error_ms"]["max"],
            "idle_cpu_share_of_one_core": idle["cpu_share_of_one_core"],
            "compose_times_realtime": memory["times_realtime"],
            f"rss_mb_after_{args.memory_minutes:g}_min_stream": memory["rss_mb_end"],
        },
    })


if __name__ == "__main__":
    main()
