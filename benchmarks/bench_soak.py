"""Soak: the default host under steady load for a long time, sampled every ``--sample-s``.

The real app (streamer.app.App) on the default profile with: the replay of config/samples at 10x pace, the
LLM persona against a local OpenAI-compatible stub (200 ms to first token), the local websocket under a
steady ``--rate`` messages/s (questions, chatter, spam, Chinese, a paid message now and then), the
recording on. Each sample: RSS, open file descriptors, threads, queue depths, paid pending, the microphone
latency (A/V offset at the virtual mic, when ``--mic``), frame-interval error at the output edge, dropped
ticks per sink. At the end the app is stopped as on SIGTERM and the stop is timed.

Headline: RSS growth in MB per hour (least squares over the samples after the first), dropped ticks,
p99 frame-interval error, how long the stop took.

Usage: python benchmarks/bench_soak.py [--minutes 10] [--sample-s 60] [--rate 50] [--mic]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import TimingSink, percentiles, report, rss_mb  # noqa: E402
from streamer.app import App  # noqa: E402
from streamer.config import load_settings  # noqa: E402
from tests.fakes.openai import Behaviour, FakeOpenAI  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHAT = ["how much is it?", "is shipping free?", "这个多少钱？", "包邮吗？", "nice stream", "哈哈哈", "666",
        "does it need a battery?", "what colors do you have?", "buy followers cheap", "主播好", "warranty?"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def profile(tmp: Path, mic: bool, base_url: str) -> Path:
    text = (REPO / "config" / "default.toml").read_text(encoding="utf-8")
    text = text.replace('path = "samples/commerce_en.jsonl"', f'path = "{REPO}/config/samples/commerce_en.jsonl"')
    text = text.replace("loop = true\nspeed = 1.0", "loop = true\nspeed = 10.0").replace("port = 8766", "port = 0").replace("port = 8765", "port = 0")
    text = text.replace('catalogue = "products/demo.toml"', f'catalogue = "{REPO}/config/products/demo.toml"')
    text = text.replace('"personas/', f'"{REPO}/config/personas/').replace('terms_file = "safety/',
                                                                         f'terms_file = "{REPO}/config/safety/')
    text = text.replace('kind = "scripted"', 'kind = "llm"').replace('base_url = ""', f'base_url = "{base_url}"')
    text = text.replace('state_db = "state/streamer.db"', f'state_db = "{tmp}/state.db"')
    text = text.replace('dir = "recordings"', f'dir = "{tmp}/rec"').replace('enabled = "auto"', 'enabled = "off"')
    if mic:
        text = text.replace("enabled = false         # true", "enabled = true         # true")
    path = tmp / "soak.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def load(app: App, rate: float, stop: asyncio.Event, sent: list[int]) -> None:
    from websockets.asyncio.client import connect

    src = next(s for s in app.sources if s.name == "websocket")
    rng = random.Random(1)
    headers = {"Authorization": f"Bearer {app.control_token}"}  # paid messages need the operator's token
    async with connect(f"ws://127.0.0.1:{src.bound_port}", additional_headers=headers) as ws:  # type: ignore[attr-defined]
        n = 0
        t0 = time.monotonic()
        while not stop.is_set():
            msg: dict[str, object] = {"user": f"viewer{rng.randrange(3000)}", "text": rng.choice(CHAT) + f" {n % 50}"}
            if n % 500 == 0:
                msg |= {"kind": "super_chat", "amount": 30, "currency": "CNY"}
            await ws.send(json.dumps(msg))
            await ws.recv()
            n += 1
            sent[0] = n
            await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))


def sample(app: App, timing: TimingSink, since: int) -> dict:
    status = app.status()
    times = np.array(timing.times[since:])
    err = np.abs(np.diff(times) - 1.0 / app.settings.stream.fps) * 1000 if times.size > 1 else np.zeros(0)
    return {"t_s": round(time.monotonic(), 1), "rss_mb": round(rss_mb(), 1), "fds": open_fds(),
            "threads": threading.active_count(), "queue": status["queue"], "paid_pending": status["paid_pending"],
            "intake": status["director"]["intake"], "mic_latency_ms": status["mic_latency_ms"],
            "ticks": status["ticks"], "frame_interval_error_ms": percentiles(err),
            "dropped": {name: s["dropped"] for name, s in status["sinks"].items()},
            "failed_sinks": [name for name, s in status["sinks"].items() if not s["ok"]]}


async def soak(minutes: float, sample_s: float, rate: float, mic: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    async with FakeOpenAI(Behaviour(first_token_delay_s=0.2)) as llm:
        settings = load_settings(profile(tmp, mic, llm.url), environ={"OPENAI_API_KEY": "sk-soak-stub"})
        timing = TimingSink()
        app = App(settings, extra_sinks=[timing], control_token="soak-token")
        await app.start()
        from streamer.cli import tune_process_for_realtime

        tune_process_for_realtime()
        stop, sent = asyncio.Event(), [0]
        feeder = asyncio.create_task(load(app, rate, stop, sent))
        samples = []
        t_end = time.monotonic() + minutes * 60
        try:
            mark = 0
            while time.monotonic() < t_end:
                await asyncio.sleep(min(sample_s, max(0.0, t_end - time.monotonic())))
                samples.append(sample(app, timing, mark))
                mark = len(timing.times)
        finally:
            stop.set()
            await asyncio.gather(feeder, return_exceptions=True)
            t_stop = time.monotonic()
            await app.stop()
            stop_s = time.monotonic() - t_stop
        answered = sum(1 for e in app.playback_log if e["kind"] == "start" and e["source"] == "chat")
    return {"samples": samples, "messages_sent": sent[0], "chat_lines_started_last_1000": answered,
            "llm_requests": len(llm.requests), "stop_s": round(stop_s, 3), "clock_reanchors": app.clock.reanchors,
            "clock_failed_ticks": app.clock.failed_ticks}


def rss_growth_mb_per_h(samples: list[dict]) -> float:
    pts = samples[1:] if len(samples) > 2 else samples
    if len(pts) < 2:
        return float("nan")
    t = np.array([s["t_s"] for s in pts]) / 3600.0
    r = np.array([s["rss_mb"] for s in pts])
    return round(float(np.polyfit(t - t[0], r, 1)[0]), 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--sample-s", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=50.0, help="websocket messages per second")
    ap.add_argument("--mic", action="store_true", help="also play into a PulseAudio virtual microphone")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    res = {"benchmark": "soak", "minutes": args.minutes, "rate_msgs_per_s": args.rate,
           **asyncio.run(soak(args.minutes, args.sample_s, args.rate, args.mic))}
    s = res["samples"]
    dropped = {k: max(x["dropped"].get(k, 0) for x in s) for k in (s[-1]["dropped"] if s else {})}
    res["headline"] = {
        "rss_growth_mb_per_h": rss_growth_mb_per_h(s),
        "rss_mb_end": s[-1]["rss_mb"] if s else float("nan"),
        "dropped_ticks": sum(dropped.values()),
        "frame_interval_error_ms_p99": max((x["frame_interval_error_ms"]["p99"] for x in s), default=float("nan")),
        "fds_growth": s[-1]["fds"] - s[0]["fds"] if s else 0,
        "threads_growth": s[-1]["threads"] - s[0]["threads"] if s else 0,
        "stop_s": res["stop_s"],
    }
    report(res)


if __name__ == "__main__":
    main()
