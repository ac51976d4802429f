"""Chat codecs: decode throughput per platform (events/s on one core), and what a burst of 10 000
events through codec + director does to the output clock's frame times (it must add nothing).

Usage: python benchmarks/bench_chat.py
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import time
from pathlib import Path

import brotli
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatars import load_avatar  # noqa: E402
from avatars.procedural import ProceduralRenderer  # noqa: E402
from benchmarks._common import TimingSink, percentiles, report  # noqa: E402
from chat_sources.bilibili_codec import OP_MESSAGE, BilibiliCodec, pack  # noqa: E402
from chat_sources.douyin_codec import DouyinCodec, build_push_frame  # noqa: E402
from chat_sources.protobuf import field_bytes, field_varint, message  # noqa: E402
from chat_sources.twitch_codec import TwitchCodec  # noqa: E402
from overlays import draw_chat, draw_subtitle  # noqa: E402
from streamer.build import build_moderator  # noqa: E402
from streamer.cli import tune_process_for_realtime  # noqa: E402
from streamer.clock import OutputClock  # noqa: E402
from streamer.config import DirectorSettings, load_settings  # noqa: E402
from streamer.director import Director  # noqa: E402
from streamer.persona import ScriptedPersona, load_catalogue  # noqa: E402
from streamer.sinks.base import SinkWorker  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
PER_FRAME = 50


def bilibili_frames(n_frames: int) -> list[bytes]:
    dm = json.loads((DATA / "bilibili_commands.json").read_text(encoding="utf-8"))[0]
    frames = []
    for f in range(n_frames):
        packets = []
        for i in range(PER_FRAME):
            dm["info"][1] = f"弹幕 {f}-{i} 这个多少钱"
            packets.append(pack(OP_MESSAGE, json.dumps(dm, ensure_ascii=False).encode(), ver=0))
        frames.append(pack(OP_MESSAGE, brotli.compress(b"".join(packets)), ver=3))
    return frames


def douyin_frames(n_frames: int) -> list[bytes]:
    frames = []
    for f in range(n_frames):
        msgs = []
        for i in range(PER_FRAME):
            user = message(field_varint(1, 1000 + i), field_bytes(3, f"观众{i}"))
            chat = message(field_bytes(2, user), field_bytes(3, f"主播好 {f}-{i}"))
            msgs.append(field_bytes(1, message(field_bytes(1, "WebcastChatMessage"), field_bytes(2, chat),
                                               field_varint(3, f * PER_FRAME + i + 1))))
        frames.append(build_push_frame(gzip.compress(message(*msgs, field_bytes(5, "ext"))), log_id=f + 1))
    return frames


def twitch_frames(n_frames: int) -> list[str]:
    line = ("@badge-info=subscriber/22;badges=moderator/1,subscriber/12;color=#19E6E6;display-name=randers;"
            "emotes=25:0-4;id={id};mod=1;room-id=11148817;subscriber=1;tmi-sent-ts=1594556065407;user-id=40286300 "
            ":randers!randers@randers.tmi.twitch.tv PRIVMSG #pajlada :Kappa how much is it {n}?")
    return ["\r\n".join(line.format(id=f"{f}-{i}", n=i) for i in range(PER_FRAME)) for f in range(n_frames)]


def throughput(codec, frames) -> dict:
    t0 = time.process_time()
    events = sum(len(codec.decode(f).events) for f in frames)
    cpu = time.process_time() - t0
    return {"events": events, "cpu_s": round(cpu, 3), "events_per_s": round(events / cpu)}



async def burst_effect(seconds: float = 6.0) -> dict:
    renderer = ProceduralRenderer(load_avatar("", 1280, 720), 25)
    persona = ScriptedPersona(load_catalogue(REPO / "config" / "products" / "demo.toml"))
    frames = twitch_frames(10_000 // PER_FRAME)

    async def phase(burst: bool) -> dict:
        sink = TimingSink()
        clock = OutputClock(25, 48000, renderer, [SinkWorker(sink, 64)], [draw_chat, draw_subtitle])
        director = Director(persona=persona, speaker=NullSpeaker(), settings=DirectorSettings(max_queue=200),  # type: ignore[arg-type]
                            idle_after_s=600.0, moderator=build_moderator(load_settings(REPO / "config" / "default.toml",
                                                                                        environ={})))
        codec = TwitchCodec("pajlada")
        tune_process_for_realtime()  # as the entry point does once everything is built
        clock.start()
        await director.start()
        await asyncio.sleep(1.0)
        t0 = time.perf_counter()
        n = 0
        if burst:  # frames as a socket reader gets them: the loop turns between frames
            for f in frames:
                for e in codec.decode(f).events:
                    director.push(e)
                    n += 1
                await asyncio.sleep(0)
            for _ in range(100_000):  # until the director has taken the whole burst in
                if not director.stats()["intake"]:
                    break
                await asyncio.sleep(0.005)
        burst_s = time.perf_counter() - t0
        await asyncio.sleep(max(0.0, seconds - 1.0 - burst_s))
        await director.stop()
        clock.stop()
        gaps = np.abs(np.diff(np.array(sink.times)) - 0.04) * 1000
        return {"events": n, "burst_s": round(burst_s, 3), "interval_error_ms": percentiles(gaps),
                "lateness_ms": percentiles(np.array(clock.lateness) * 1000)}

    return {"baseline": await phase(False), "burst": await phase(True)}


class NullSpeaker:
    """The speaker's contract, saying nothing (this benchmark measures intake against the clock)."""

    def __init__(self) -> None:
        self.on_playback: list = []

    async def push(self, reply, segments=None):
        async for _ in reply.sentences:
            pass
        return []


def main() -> None:
    n = 200
    res = {
        "benchmark": "chat",
        "decode": {
            "bilibili_brotli": throughput(BilibiliCodec("1"), bilibili_frames(n)),
            "douyin_gzip_protobuf": throughput(DouyinCodec("1"), douyin_frames(n)),
            "twitch_irc": throughput(TwitchCodec("pajlada"), twitch_frames(n)),
        },
        "burst_10000": asyncio.run(burst_effect()),
    }
    d, b = res["decode"], res["burst_10000"]
    res["headline"] = {
        "bilibili_events_per_s": d["bilibili_brotli"]["events_per_s"],
        "douyin_events_per_s": d["douyin_gzip_protobuf"]["events_per_s"],
        "twitch_events_per_s": d["twitch_irc"]["events_per_s"],
        "burst_10000_s": b["burst"]["burst_s"],
        "clock_interval_error_ms_p99_baseline": b["baseline"]["interval_error_ms"]["p99"],
        "clock_interval_error_ms_p99_during_burst": b["burst"]["interval_error_ms"]["p99"],
        "clock_interval_error_ms_max_during_burst": b["burst"]["interval_error_ms"]["max"],
    }
    report(res)


if __name__ == "__main__":
    main()
