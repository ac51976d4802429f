"""Director overhead and its moderation/queue path under a chat flood.

1. Overhead, excluding the LLM's own time: chat event submitted -> persona request, and the persona's
   first sentence -> voice request, through the real director (moderation, injection guard, merging,
   memory, output filter) with an instant persona. Target: under 5 ms each.
2. A 2 000 messages/s burst for 5 s through moderation and the queue, while the output clock runs:
   CPU per message, and the clock's frame timing compared with no burst.

Usage: python benchmarks/bench_director.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatars import load_avatar  # noqa: E402
from avatars.procedural import ProceduralRenderer  # noqa: E402
from benchmarks._common import TimingSink, percentiles, report  # noqa: E402
from overlays import draw_chat, draw_subtitle  # noqa: E402
from streamer.build import build_moderator  # noqa: E402
from streamer.cli import tune_process_for_realtime  # noqa: E402
from streamer.clock import OutputClock  # noqa: E402
from streamer.config import DirectorSettings, load_settings  # noqa: E402
from streamer.director import Director  # noqa: E402
from streamer.events import ChatEvent, EventKind, User  # noqa: E402
from streamer.persona import ScriptedPersona, load_catalogue  # noqa: E402
from streamer.persona.factory import build_cast, build_output_filter  # noqa: E402
from streamer.persona.memory import Memory  # noqa: E402
from streamer.sinks.base import SinkWorker  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = ["how much is it?", "is shipping free?", "does it need a battery?", "is it easy to clean?",
             "what colors do you have?", "warranty?", "how much does it weigh?", "can I use capsules?"]


class TimedPersona:
    def __init__(self, inner: ScriptedPersona) -> None:
        self.inner, self.name, self.names = inner, inner.host_name, inner.names
        self.requests: list[float] = []

    async def reply(self, turn):
        self.requests.append(time.perf_counter())
        async for s in self.inner.reply(turn):
            yield s

    def topic(self, text):
        return self.inner.topic(text)

    async def aclose(self):
        return None


class TimedSpeaker:
    """The speaker's contract, recording when the first sentence of each reply reaches it."""

    def __init__(self) -> None:
        self.voice_requests: list[float] = []
        self.on_playback: list = []
        self.spoke = asyncio.Event()

    async def push(self, reply, segments=None):
        first = True
        async for _ in reply.sentences:
            if first:
                self.voice_requests.append(time.perf_counter())
                self.spoke.set()
                first = False
        return []

    def interrupt(self):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(0)
        return fut


def build(settings, persona_wrapper=True):
    catalogue = load_catalogue(settings.resolve(settings.persona.catalogue))
    memory = Memory()
    scripted = ScriptedPersona(catalogue, "Joe", memory=memory, seed=1)
    persona = TimedPersona(scripted) if persona_wrapper else scripted
    out = build_output_filter(settings, build_cast(settings, catalogue, memory))
    speaker = TimedSpeaker()
    director = Director(persona=persona, speaker=speaker, settings=DirectorSettings(max_queue=200),  # type: ignore[arg-type]
                        idle_after_s=600.0, moderator=build_moderator(settings), output_filter=out, memory=memory)
    return director, persona, speaker


async def overhead(settings, n: int = 300) -> dict:
    director, persona, speaker = build(settings)
    await director.start()
    submit_t, request_lat, voice_lat = [], [], []
    try:
        for i in range(n):
            event = ChatEvent("bench", "r", EventKind.DANMAKU, User(f"u{i}", f"viewer{i}"), QUESTIONS[i % len(QUESTIONS)] + f" #{i}")
            t0 = time.perf_counter()
            director.push(event)
            submit_t.append(t0)
            await speaker.spoke.wait()
            speaker.spoke.clear()
            request_lat.append(persona.requests[-1] - t0)
            voice_lat.append(speaker.voice_requests[-1] - persona.requests[-1])
    finally:
        await director.stop()
    return {"event_to_persona_request_ms": percentiles(np.array(request_lat) * 1000),
            "first_sentence_to_voice_request_ms": percentiles(np.array(voice_lat) * 1000)}



async def flood(settings, rate: int = 2000, seconds: float = 5.0) -> dict:
    renderer = ProceduralRenderer(load_avatar("", 1280, 720), 25)
    out = {}
    for label, burst in (("baseline", False), ("flood", True)):
        director, _, _ = build(settings, persona_wrapper=False)
        await director.start()  # takes the flood in slices, as in the app
        sink = TimingSink()
        clock = OutputClock(25, 48000, renderer, [SinkWorker(sink, 64)], [draw_chat, draw_subtitle])
        tune_process_for_realtime()  # as the entry point does once everything is built
        clock.start()
        await asyncio.sleep(0.5)
        cpu0 = time.process_time()
        n = 0
        t_start = time.perf_counter()
        step = 0.01
        texts = QUESTIONS + ["哈哈哈", "主播好", "666", "nice stream", "buy followers cheap", "[热][热]", "你是沙比"]
        while time.perf_counter() - t_start < seconds:
            if burst:
                due = int(rate * (time.perf_counter() - t_start))
                for _ in range(max(0, due - n)):
                    director.push(ChatEvent("bench", "r", EventKind.DANMAKU, User(f"u{n % 3000}", f"v{n % 3000}"),
                                              f"{texts[n % len(texts)]} {n % 97}"))
                    n += 1
            await asyncio.sleep(step)
        cpu = time.process_time() - cpu0
        await director.stop()
        clock.stop()
        gaps = np.abs(np.diff(np.array(sink.times)) - 0.04) * 1000
        out[label] = {"messages": n, "rate_per_s": round(n / seconds), "queue_len": director.stats()["queued"],
                      "blocked": dict(director.moderator.stats) if director.moderator else {},
                      "process_cpu_s": round(cpu, 2),
                      "clock_interval_error_ms": percentiles(gaps), "clock_lateness_ms": percentiles(np.array(clock.lateness) * 1000)}
    f = out["flood"]
    f["cpu_us_per_message"] = round(1e6 * (f["process_cpu_s"] - out["baseline"]["process_cpu_s"]) / max(1, f["messages"]), 1)
    return out


def main() -> None:
    settings = load_settings(REPO / "config" / "default.toml", environ={})
    res = {"benchmark": "director", "overhead": asyncio.run(overhead(settings)), "flood_2000_per_s": asyncio.run(flood(settings))}
    o, f = res["overhead"], res["flood_2000_per_s"]
    res["headline"] = {
        "event_to_persona_request_ms_p50": o["event_to_persona_request_ms"]["p50"],
        "event_to_persona_request_ms_p99": o["event_to_persona_request_ms"]["p99"],
        "first_sentence_to_voice_request_ms_p50": o["first_sentence_to_voice_request_ms"]["p50"],
        "first_sentence_to_voice_request_ms_p99": o["first_sentence_to_voice_request_ms"]["p99"],
        "flood_cpu_us_per_message": f["flood"]["cpu_us_per_message"],
        "clock_interval_error_ms_p99_baseline": f["baseline"]["clock_interval_error_ms"]["p99"],
        "clock_interval_error_ms_p99_flood": f["flood"]["clock_interval_error_ms"]["p99"],
        "clock_interval_error_ms_max_flood": f["flood"]["clock_interval_error_ms"]["max"],
    }
    report(res)


if __name__ == "__main__":
    main()
