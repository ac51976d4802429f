"""Time from a chat message arriving to the first audible sample at a sink, split by stage.

Runs the real app (websocket source, director, scripted persona, piper or espeak-ng voice, procedural
or Wav2Lip renderer, clock) headless with a capturing sink, sends questions over the local websocket
one at a time, and reads each stage's time from the structured log records. ``--renderer wav2lip``
uses ``--checkpoint`` or, without one, random weights in the official format (the speed does not
depend on the values).

Usage: python benchmarks/bench_latency.py [--messages 10] [--renderer wav2lip [--checkpoint PATH]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import percentiles, report  # noqa: E402
from streamer.app import App  # noqa: E402
from streamer.config import load_settings  # noqa: E402
from streamer.sinks.base import Sink, Tick  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = ["how much is it?", "is shipping free?", "does it need a battery?", "is it easy to clean?",
             "what colors do you have?", "warranty?", "how much does it weigh?", "can I use capsules?",
             "how many are left in stock?", "what is that machine?"]
QUESTIONS_ZH = ["这个咖啡多少钱？", "包邮吗？", "还有货吗？", "怎么冲？", "有优惠吗？", "苦不苦？", "保质期多久？",
                "几天能到？", "一盒几包？", "好喝吗？"]
CHINESE = """
language = "zh"
[persona]
name = "小乔"
profiles = ["{REPO}/config/personas/xiaoqiao.toml"]
catalogue = "{REPO}/config/products/demo_zh.toml"
"""


class Stages(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def first(self, message: str, **match: object) -> float | None:
        for r in self.records:
            if r.getMessage() == message and all(getattr(r, k, None) == v for k, v in match.items()):
                return r.created
        return None


class FirstSound(Sink):
    name = "first-sound"

    def __init__(self) -> None:
        self.heard: list[float] = []

    def write(self, tick: Tick) -> None:
        if tick.speaking and np.abs(tick.audio).max() > 0.01:
            self.heard.append(time.time())


def random_checkpoint(path: Path) -> Path:
    import torch

    from avatars.wav2lip.checkpoint import save_official_format
    from avatars.wav2lip.model import Wav2Lip

    torch.manual_seed(0)
    save_official_format(Wav2Lip(), path)
    return path


async def run(n: int, engine: str, language: str = "en", renderer: str = "procedural", checkpoint: str = "") -> dict:
    tmp = Path(tempfile.mkdtemp())
    cfg = tmp / "bench.toml"
    avatar = ""
    if renderer == "wav2lip":
        checkpoint = checkpoint or str(random_checkpoint(tmp / "wav2lip_gan.pth"))
        avatar = f'[avatar]\nrenderer = "wav2lip"\nwav2lip_checkpoint = "{checkpoint}"\n'

    persona = (CHINESE.replace("{REPO}", str(REPO)) if language == "zh"
               else f'[persona]\ncatalogue = "{REPO}/config/products/demo.toml"')
    questions = QUESTIONS_ZH if language == "zh" else QUESTIONS
    cfg.write_text(f"""
[voice]
engine = "{engine}"
[stream]
width = 1280
height = 720
{persona}
idle_after_s = 600
[[chat]]
type = "websocket"
port = 0
[outputs.camera]
enabled = "off"
[outputs.recording]
enabled = false
[control]
port = 0
{avatar}""")
    stages = Stages()
    logging.getLogger().addHandler(stages)
    logging.getLogger().setLevel(logging.INFO)
    sink = FirstSound()
    app = App(load_settings(cfg, environ={}), extra_sinks=[sink])
    await app.start()
    from websockets.asyncio.client import connect

    rows = []
    try:
        async with connect(f"ws://127.0.0.1:{app.sources[0].bound_port}") as ws:
            await asyncio.sleep(1.0)
            for i in range(n):
                heard_before = len(sink.heard)
                t_send = time.time()
                await ws.send(json.dumps({"user": f"viewer{i}", "text": questions[i % len(questions)]}))
                event_id = json.loads(await ws.recv())["id"]
                for _ in range(6000):  # up to 30 s
                    if len(sink.heard) > heard_before:
                        break
                    await asyncio.sleep(0.005)
                t_heard = sink.heard[heard_before] if len(sink.heard) > heard_before else float("nan")
                t_rx = stages.first("chat event received", event=event_id)
                t_q = stages.first("queued", event=event_id)
                t_turn = stages.first("turn started", answers=event_id)
                t_seg = stages.first("segment voiced", answers=event_id)
                t_play = stages.first("speech started", answers=event_id)
                seg = next(r for r in stages.records if r.getMessage() == "segment voiced" and getattr(r, "answers", None) == event_id)
                poses = next((r for r in stages.records if r.getMessage() == "first poses rendered"
                              and getattr(r, "answers", None) == event_id), None)
                rows.append({
                    "source_ms": 1000 * (t_rx - t_send),
                    "director_ms": 1000 * (t_turn - t_rx),
                    "tts_ms": float(seg.tts_ms),
                    "render_first_batch_ms": float(poses.render_ms) if poses is not None else float("nan"),
                    "queue_to_clock_ms": 1000 * (t_play - t_seg),
                    "clock_to_sink_ms": 1000 * (t_heard - t_play),
                    "total_ms": 1000 * (t_heard - t_send),
                    "_check": (t_q is not None),
                })
                await app.interrupt()
                await asyncio.sleep(0.5)
    finally:
        await app.stop()
        logging.getLogger().removeHandler(stages)
    keys = [k for k in rows[0] if not k.startswith("_")]
    tts = app.tts
    rtf = round(tts.total_audio_s / tts.total_synthesis_s, 1) if tts and tts.total_synthesis_s else float("nan")
    return {"messages": n, "voice": tts.describe() if tts else engine, "tts_times_realtime": rtf, "renderer": renderer,
            "late_frames": app.speaker.late_frames if app.speaker else None,
            "stages_ms": {k: percentiles([r[k] for r in rows]) for k in keys}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--voice", default="auto")
    ap.add_argument("--language", choices=["en", "zh"], default="en", help="zh: the Chinese show (小乔, Chinese catalogue)")
    ap.add_argument("--renderer", choices=["procedural", "wav2lip"], default="procedural")
    ap.add_argument("--checkpoint", default="", help="Wav2Lip weights (default: random weights, official format)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for h in logging.getLogger().handlers:
        h.setLevel(logging.WARNING)  # the stage handler below still sees INFO records
    res = asyncio.run(run(args.messages, args.voice, args.language, args.renderer, args.checkpoint))
    res["language"] = args.language
    st = res["stages_ms"]
    res["benchmark"] = "latency"
    res["headline"] = {
        "chat_to_first_audio_ms_p50": st["total_ms"]["p50"],
        "render_first_batch_ms_p50": st["render_first_batch_ms"]["p50"],
        "chat_to_first_audio_ms_p99": st["total_ms"]["p99"],
        "tts_first_sentence_ms_p50": st["tts_ms"]["p50"],
        "director_ms_p50": st["director_ms"]["p50"],
        "clock_wait_ms_p50": st["queue_to_clock_ms"]["p50"],
        "tts_times_realtime": res["tts_times_realtime"],
    }
    report(res)


if __name__ == "__main__":
    main()
