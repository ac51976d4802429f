"""Many rooms on one machine, through the real rooms path (Ray actors, room processes, Ray Serve).

1. Procedural rooms: N rooms (1, 2, 3, ...) run by the supervisor as Ray actors, each a real App
   (1280x720 at 25 fps, piper or espeak-ng voice, drawn host) with a timing sink, all speaking at once
   (an operator line whenever a room goes quiet). A room holds real time when every tick of the
   measured window reached its sink on time (no re-anchor, no tick later than one frame) and its p99
   frame-interval error is <= 20 ms (half a frame: each frame lands in its own 40 ms slot; the
   single-process clock benchmark shows p99 6-7 ms at the sink on a quiet 2-core machine, and a room
   adds a process and Ray beside it). Headline ``rooms_realtime_cpu``: the largest N where every room
   does; ``cpu_share_per_room``: the rooms' own CPU time over the window (of one core).
2. Shared Wav2Lip: the Ray Serve deployment (random weights in the official format: speed does not
   depend on the values) on ``--device`` (cpu here, cuda on a GPU machine, unchanged), and N
   simulated rooms, each the real room-side client (avatars/wav2lip/remote.py) rendering sentence
   after sentence on a real-time schedule with every room speaking. A room is at 25 fps when the
   deployment covered >= 99 % of its speaking frames in time (the rest fall back, counted).
   Reported per N: that fraction, first-frame latency (a sentence's first batch) p50/p95, batch
   latency, and the replica's mean batch; on CUDA also GPU memory per room.

Usage:
  python benchmarks/bench_rooms.py --quick                  # a short check (about 3 min here)
  python benchmarks/bench_rooms.py                          # for the record (quiet machine: ~10 min)
  python benchmarks/bench_rooms.py --device cuda --lipsync-rooms 25,50,100,150,200,300 --skip-procedural
Last line: one JSON object with a "headline".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import cpu_model, percentiles, report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FPS, RATE = 25, 48000
LINES = ["Welcome to the coffee corner, today the grinder is on sale for a very good price.",
         "欢迎来到直播间，今天的咖啡研磨机特价，数量有限，喜欢的朋友赶紧下单。"]




def speech_like(seconds: float) -> np.ndarray:
    """Voiced, syllable-modulated sound: every frame speaks (the worst case for lip-sync)."""
    t = np.arange(int(seconds * RATE)) / RATE
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t)
    return (0.4 * env * np.sin(2 * np.pi * 160 * t) * (1 + 0.3 * np.sin(2 * np.pi * 900 * t))).astype(np.float32)


# ================================================================================ the instrumented room
async def room_worker(profile: str, seconds_hint: float) -> None:
    """One room: the real App and control API, plus a timing sink; measures the window the benchmark
    writes into ``bench-window.json`` in the room's folder, answers in ``bench-result.json``."""
    import signal

    from benchmarks._common import TimingSink
    from streamer.app import App
    from streamer.config import load_settings
    from streamer.control import ControlServer, control_token

    settings = load_settings(profile)
    sink = TimingSink()
    app = App(settings, extra_sinks=[sink])
    token, _ = control_token()
    control = ControlServer(app, settings.control.host, settings.control.port, token)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await app.start()
    await control.start()
    line = LINES[1] if settings.persona.name != "Joe" else LINES[0]
    measured = False
    try:
        while not stop.is_set():
            assert app.speaker is not None and app.director is not None
            if app.speaker.now_playing is None and not app.director.busy:
                app.say_now(line)  # every room speaks all the time
            window = None if measured else await asyncio.to_thread(_read_json, Path("bench-window.json"))
            if window:
                await measure(app, sink, window["start"], window["end"])
                measured = True
            await asyncio.sleep(0.2)
    finally:
        await control.stop()
        await app.stop()


async def measure(app: Any, sink: Any, start: float, end: float) -> None:
    clock = app.clock
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    cpu0, reanchors0, ticks0 = time.process_time(), clock.reanchors, clock.ticks
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    cpu = (time.process_time() - cpu0) / (end - start)
    times = np.array([t for t in list(sink.times) if start <= t <= end])
    err_ms = np.abs(np.diff(times) - 1.0 / FPS) * 1000 if times.size > 1 else np.zeros(0)
    ticked = clock.ticks - ticks0
    late = list(clock.lateness)[-ticked:] if ticked else []
    result = {"ticks": clock.ticks - ticks0, "expected_ticks": round((end - start) * FPS), "delivered": int(times.size),
              "reanchors": clock.reanchors - reanchors0, "interval_error_ms": percentiles(err_ms),
              "lateness_ms_max": round(1000 * max(late, default=0.0), 2), "cpu_share_of_one_core": round(cpu, 3)}
    await asyncio.to_thread(Path("bench-result.json").write_text, json.dumps(result))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def holds_realtime(r: dict[str, Any]) -> bool:
    on_time = r["reanchors"] == 0 and r["lateness_ms_max"] < 1000.0 / FPS and r["delivered"] >= r["expected_ticks"] - 2
    return bool(on_time and r["interval_error_ms"]["p99"] <= 1000.0 / FPS / 2)


# ================================================================================ part 1: procedural rooms
def bench_profile(folder: Path, width: int, height: int, voice: str, record: bool) -> Path:
    path = folder / "bench-room.toml"
    base = (REPO / "config" / "default.toml").read_text(encoding="utf-8")
    base = base.replace('path = "samples/', f'path = "{REPO}/config/samples/')
    base = base.replace('"personas/', f'"{REPO}/config/personas/').replace('"products/', f'"{REPO}/config/products/')
    base = base.replace('"safety/', f'"{REPO}/config/safety/')
    base = base.replace("width = 1280", f"width = {width}").replace("height = 720", f"height = {height}")
    base = base.replace('engine = "auto"', f'engine = "{voice}"')
    base = base.replace('enabled = "auto"', 'enabled = "off"')
    if not record:
        base = base.replace("[outputs.recording]\nenabled = true", "[outputs.recording]\nenabled = false")
    path.write_text(base, encoding="utf-8")
    return path


def rooms_plan(folder: Path, profile: Path, n: int, extra_rooms: str = "") -> Any:
    from streamer.rooms.model import load_rooms

    body = f'[supervisor]\nport = 0\ndir = "{folder / "rooms"}"\n[defaults]\nnum_cpus = 0.1\nstart_timeout_s = 600\n'
    body += extra_rooms
    for i in range(n):
        zh = i % 2 == 1
        name = f"直播间-{i}" if zh else f"room-{i}"
        persona = '\nset = { "persona.name" = "小乔", "voice.engine" = "espeak", "voice.espeak_voice" = "cmn-latn-pinyin" }' \
            if zh else ""
        body += f'[[room]]\nname = "{name}"\nprofile = "{profile}"{persona}\n'
    path = folder / f"rooms-{n}.toml"
    path.write_text(body, encoding="utf-8")
    plan = load_rooms(path)
    for spec in plan.rooms:
        spec.argv = [sys.executable, str(Path(__file__).resolve()), "--room-worker", spec.profile]
    return plan


async def procedural_level(folder: Path, profile: Path, n: int, seconds: float, warmup: float) -> dict[str, Any]:
    from streamer.rooms.supervisor import Supervisor

    plan = rooms_plan(folder, profile, n)
    for spec in plan.rooms:
        for stale in ("bench-window.json", "bench-result.json"):
            (Path(spec.cwd) / stale).unlink(missing_ok=True)
    supervisor = Supervisor(plan, reconcile_s=1.0, status_timeout_s=10.0)
    await supervisor.start()
    try:
        t_up = time.monotonic()
        while True:
            rooms = await supervisor.status()
            if all(r["state"] == "running" for r in rooms):
                break
            if time.monotonic() - t_up > 600:
                raise RuntimeError(f"rooms did not come up: {rooms}")
            await asyncio.sleep(1.0)
        start = time.monotonic() + warmup
        for spec in plan.rooms:
            (Path(spec.cwd) / "bench-window.json").write_text(json.dumps({"start": start, "end": start + seconds}))
        results = {}
        deadline = start + seconds + 120
        while len(results) < n and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            for spec in plan.rooms:
                out = Path(spec.cwd) / "bench-result.json"
                if spec.name not in results and out.exists():
                    results[spec.name] = json.loads(out.read_text())
        restarts = {r["name"]: r["restarts"] for r in await supervisor.status()}
    finally:
        await supervisor.aclose()
    ok = len(results) == n and all(holds_realtime(r) for r in results.values()) and not any(restarts.values())
    return {"rooms": n, "realtime": ok, "per_room": results, "restarts": restarts,
            "cpu_share_per_room": round(float(np.mean([r["cpu_share_of_one_core"] for r in results.values()])), 3)
            if results else None}


# ================================================================================ part 2: shared Wav2Lip
class SimulatedRoom(threading.Thread):
    """The real room-side client on a real-time schedule: sentence k starts rendering at k * its length."""

    def __init__(self, url: str, pcm: np.ndarray, stop: threading.Event, size: tuple[int, int]) -> None:
        super().__init__(daemon=True)
        from avatars import load_avatar
        from avatars.wav2lip.remote import RemoteWav2LipRenderer

        self.renderer = RemoteWav2LipRenderer(load_avatar("", *size), FPS, url, timeout_s=0.5)
        self.pcm, self.stop = pcm, stop
        self.first_ms: list[float] = []
        """Time to a sentence's first batch (its first frame), for batches the deployment served."""
        self.batch_ms: list[float] = []
        self.sentences = 0

    def run(self) -> None:
        length = len(self.pcm) / RATE
        begin = time.monotonic()
        while not self.stop.is_set():
            t0 = time.monotonic()
            last = t0
            for i, batch in enumerate(self.renderer.analyze_stream(self.pcm, RATE)):
                now = time.monotonic()
                if any(p.patch is not None for p in batch):  # served by the deployment (no local cover here)
                    (self.first_ms if i == 0 else self.batch_ms).append(1000 * (now - last))
                last = now
            self.sentences += 1
            self.stop.wait(max(0.0, begin + self.sentences * length - time.monotonic()))


def replica_stats(url: str) -> dict[str, Any]:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return dict(json.loads(r.read()))
    except OSError as e:
        return {"error": str(e)}


def lipsync_level(url: str, n: int, seconds: float, warmup: float) -> dict[str, Any]:
    pcm = speech_like(3.0)
    stop = threading.Event()
    rooms = [SimulatedRoom(url, pcm, stop, (640, 360)) for _ in range(n)]
    for r in rooms:
        r.start()
    time.sleep(warmup)
    base = [dict(r.renderer.counters) for r in rooms]
    firsts0 = [len(r.first_ms) for r in rooms]
    batches0 = [len(r.batch_ms) for r in rooms]
    stats0 = replica_stats(url)
    time.sleep(seconds)
    counts = [{k: r.renderer.counters[k] - b[k] for k in b} for r, b in zip(rooms, base, strict=True)]
    firsts = [x for r, k in zip(rooms, firsts0, strict=True) for x in r.first_ms[k:]]
    batches = [x for r, k in zip(rooms, batches0, strict=True) for x in r.batch_ms[k:]]
    stats1 = replica_stats(url)
    stop.set()
    for r in rooms:
        r.join(30)
    remote = [c["remote_frames"] / max(1, c["remote_frames"] + c["procedural_frames"] + c["local_frames"]) for c in counts]
    frames = stats1.get("frames", 0) - stats0.get("frames", 0)
    batches_n = stats1.get("batches", 0) - stats0.get("batches", 0)
    out = {"rooms": n, "at_25fps": min(remote) >= 0.99, "remote_fraction_min": round(min(remote), 4),
           "remote_fraction_mean": round(float(np.mean(remote)), 4), "first_frame_ms": percentiles(firsts),
           "first_frame_ms_p95": round(float(np.percentile(firsts, 95)), 1) if firsts else None,
           "batch_ms": percentiles(batches), "replica_frames_per_s": round(frames / seconds, 1),
           "replica_mean_batch_frames": round(frames / batches_n, 1) if batches_n else 0.0}
    for key in ("gpu_memory_mb", "gpu_peak_memory_mb", "device", "precision", "compiled"):
        if key in stats1:
            out[key] = stats1[key]
    return out


def bench_lipsync(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    import torch

    from avatars.wav2lip.checkpoint import save_official_format
    from avatars.wav2lip.model import Wav2Lip
    from streamer.rooms.model import LipSyncOptions
    from streamer.rooms.serve_app import deploy, undeploy

    checkpoint = folder / "wav2lip_random.pth"
    torch.manual_seed(0)
    save_official_format(Wav2Lip(), checkpoint)
    opts = LipSyncOptions(enabled=True, device=args.device, replicas=1, http_port=args.http_port,
                          max_batch_frames=args.max_batch_frames, batch_wait_ms=args.batch_wait_ms,
                          num_cpus=1.0, num_gpus=1.0 if args.device.startswith("cuda") else 0.0)
    t0 = time.monotonic()
    deploy(opts, str(checkpoint), 1.0 if args.device.startswith("cuda") else 0.0)
    ready_s = time.monotonic() - t0
    levels = []
    try:
        for n in args.lipsync_rooms:
            level = lipsync_level(opts.url, n, args.seconds, args.warmup)
            levels.append(level)
            print(json.dumps({"lipsync_level": level}), flush=True)
            if not level["at_25fps"]:
                break
    finally:
        undeploy()
    ok = [lv for lv in levels if lv["at_25fps"]]
    best = ok[-1] if ok else None
    out: dict[str, Any] = {"deployment_ready_s": round(ready_s, 1), "levels": levels,
                           "rooms_at_25fps": best["rooms"] if best else 0,
                           "first_frame_ms_p95_at_max": best["first_frame_ms_p95"] if best else None,
                           "latency_growth": [{"rooms": lv["rooms"], "first_frame_ms_p50": lv["first_frame_ms"]["p50"],
                                               "first_frame_ms_p95": lv["first_frame_ms_p95"],
                                               "batch_ms_p50": lv["batch_ms"]["p50"]} for lv in levels]}
    if best and "gpu_peak_memory_mb" in best:
        out["gpu_memory_mb_per_room"] = round(best["gpu_peak_memory_mb"] / best["rooms"], 2)
    if levels:  # what one replica rendered at most, whether or not the rooms held 25 fps
        capacity = max(lv["replica_frames_per_s"] for lv in levels)
        out["replica_frames_per_s_max"] = capacity
        out["replica_times_realtime"] = round(capacity / FPS, 1)
    return out


# ================================================================================ main
async def bench_procedural(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    profile = bench_profile(folder, args.width, args.height, args.voice, args.record)
    levels = []
    for n in range(1, args.max_rooms + 1):
        level = await procedural_level(folder, profile, n, args.seconds, args.warmup)
        levels.append(level)
        print(json.dumps({"procedural_level": {k: v for k, v in level.items() if k != "per_room"}}), flush=True)
        if not level["realtime"]:
            break
    ok = [lv for lv in levels if lv["realtime"]]
    return {"levels": levels, "rooms_realtime": ok[-1]["rooms"] if ok else 0,
            "cpu_share_per_room": ok[-1]["cpu_share_per_room"] if ok else (levels[0]["cpu_share_per_room"] if levels else None)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--room-worker", metavar="PROFILE", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="short windows, small ramps: checks that it works")
    ap.add_argument("--device", default="cpu", help="where the lip-sync deployment runs: cpu | cuda")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per level")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--max-rooms", type=int, default=6, help="procedural rooms: ramp up to this many")
    ap.add_argument("--lipsync-rooms", default="1,2,3,4,6", help="simulated Wav2Lip rooms per level")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--voice", default="auto", choices=["auto", "piper", "espeak"])
    ap.add_argument("--record", action="store_true", help="rooms also record H.264 (as the default profile does)")
    ap.add_argument("--max-batch-frames", type=int, default=256)
    ap.add_argument("--batch-wait-ms", type=float, default=5.0)
    ap.add_argument("--http-port", type=int, default=0, help="Serve's proxy port (0: a free one)")
    ap.add_argument("--skip-procedural", action="store_true")
    ap.add_argument("--skip-lipsync", action="store_true")
    args = ap.parse_args()
    if args.room_worker:
        asyncio.run(room_worker(args.room_worker, args.seconds))
        return
    if args.quick:
        args.seconds, args.warmup, args.max_rooms = 6.0, 3.0, min(args.max_rooms, 2)
        args.lipsync_rooms = "1,2" if args.device == "cpu" else "25,50"
    args.lipsync_rooms = [int(x) for x in str(args.lipsync_rooms).split(",") if x]
    if not args.http_port:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.http_port = s.getsockname()[1]

    import ray

    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    ray.init(num_cpus=max(os.cpu_count() or 2, args.max_rooms) + 2, object_store_memory=128 * 2**20,
             include_dashboard=False, log_to_driver=False, namespace="streamer-rooms-bench")
    result: dict[str, Any] = {"benchmark": "rooms", "frame": f"{args.width}x{args.height}@{FPS}", "voice": args.voice,
                              "record": args.record, "device": args.device, "cpu_model": cpu_model(), "quick": args.quick}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-rooms-") as tmp:
            folder = Path(tmp)
            if not args.skip_procedural:
                result["procedural"] = asyncio.run(bench_procedural(args, folder))
            if not args.skip_lipsync:
                result["lipsync"] = bench_lipsync(args, folder)
    finally:
        ray.shutdown()
    if args.device.startswith("cuda"):
        import torch

        result["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    where = "cuda" if args.device.startswith("cuda") else "cpu"
    headline: dict[str, Any] = {}
    if "procedural" in result:
        headline["rooms_realtime_cpu"] = result["procedural"]["rooms_realtime"]
        headline["cpu_share_of_one_core_per_room"] = result["procedural"]["cpu_share_per_room"]
    if "lipsync" in result:
        lip = result["lipsync"]
        headline[f"lipsync_rooms_at_25fps_{where}"] = lip["rooms_at_25fps"]
        headline[f"lipsync_first_frame_ms_p95_{where}"] = lip["first_frame_ms_p95_at_max"]
        headline[f"lipsync_replica_times_realtime_{where}"] = lip.get("replica_times_realtime")
        if "gpu_memory_mb_per_room" in lip:
            headline["lipsync_gpu_memory_mb_per_room"] = lip["gpu_memory_mb_per_room"]
    result["headline"] = headline
    report(result)


if __name__ == "__main__":
    main()
