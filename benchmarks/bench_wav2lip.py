"""Wav2Lip on this machine: the generator alone against the whole render path, per backend and precision.

For each generator (torch float32, torch bfloat16 + channels-last, ONNX Runtime float32 and int8 on a
CPU; torch float16 on CUDA) at batch 16 on a 1280x720 portrait and a 3 s line:
- ``generator_fps``: the network alone (a still avatar's face features computed once, as the renderer does);
- ``path_fps``: everything the live path does per frame: mel, inference in a small first batch then full
  ones, paste-back, blinks and head motion, one composed frame per pose;
- ``path_vs_generator``: the ratio (the overhead of everything around the network);
- ``first_frame_ms``: from the audio to the first composed frame (first batch of 4);
- ``frame_ms``: composing one speaking frame, and one idle frame (the clock's cost per tick);
- ``psnr_db``: the face against float32 torch on the same input (random weights calibrated to realistic
  activations: see ``calibrate_random``; what a trained network's errors look like cannot be measured here).
Generator and path are measured alternately, twice, keeping the faster of each, so a loaded machine
skews both alike. On CUDA (``--device cuda``): the float16 generator at batch 1..512, the largest batch
whose first frame is ready within 100 ms, frames/s at that batch and how many 25 fps rooms that feeds,
the whole path with paste-back and motion on the GPU, and peak GPU memory.

The weights are random (the architecture and the work are those of the official checkpoints; speed
does not depend on the values). Usage: python benchmarks/bench_wav2lip.py [--quick] [--device cuda]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from avatars import load_avatar  # noqa: E402
from avatars.paste import wav2lip_box  # noqa: E402
from avatars.wav2lip.audio import mel_windows, melspectrogram  # noqa: E402
from avatars.wav2lip.backends import cpu_flags, native_bf16  # noqa: E402
from avatars.wav2lip.checkpoint import save_official_format  # noqa: E402
from avatars.wav2lip.model import Wav2Lip, calibrate_random  # noqa: E402
from avatars.wav2lip.official import face_input  # noqa: E402
from avatars.wav2lip.renderer import Wav2LipRenderer  # noqa: E402
from benchmarks._common import cpu_model, report, rss_mb  # noqa: E402

FPS = 25
RATE = 48000




def speech(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 170 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t))).astype(np.float32)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def make_checkpoint(path: Path, avatar: Any) -> Path:
    """Random weights with realistic activations, saved in the official format."""
    torch.manual_seed(0)
    face = face_input(avatar.image, wav2lip_box(avatar.hints.face_box, avatar.image.shape))
    windows = mel_windows(melspectrogram(speech(1.0, 16000)), 16, FPS)[:, None]
    model = calibrate_random(Wav2Lip(), torch.from_numpy(windows), torch.from_numpy(face).repeat(16, 1, 1, 1))
    save_official_format(model, path)
    return path


def generator_fps(r: Wav2LipRenderer, batch: int, min_frames: int) -> float:
    windows = mel_windows(melspectrogram(speech(2.0, 16000)), batch, FPS)
    r.infer(windows)  # warm-up
    done, t0 = 0, time.perf_counter()
    while done < min_frames:
        r.infer(windows)
        done += batch
    _sync()
    return done / (time.perf_counter() - t0)


def whole_path(r: Wav2LipRenderer, pcm: np.ndarray, first_batch: int = 4) -> dict[str, float]:
    """Audio to composed frames, as the live path does it (first batch small, then full batches)."""
    t0 = time.perf_counter()
    first = None
    n = 0
    sizes = itertools.chain([first_batch], itertools.repeat(r.batch))
    for batch in r.render_batches(pcm, RATE, 0, sizes):
        for pose in batch:
            r.frame(n, pose)
            n += 1
            if first is None:
                first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return {"frames": n, "fps": n / total, "first_frame_ms": 1000 * (first or 0.0)}


def frame_costs(r: Wav2LipRenderer, pcm: np.ndarray, n: int = 30) -> dict[str, float]:
    poses = [p for p in r.analyze(pcm[: RATE], RATE) if p.patch is not None][:n]
    t0 = time.perf_counter()
    for i, p in enumerate(poses):
        r.frame(i, p)
    speaking = (time.perf_counter() - t0) / max(1, len(poses))
    t0 = time.perf_counter()
    for i in range(n):
        r.frame(i, None)
    idle = (time.perf_counter() - t0) / n
    return {"frame_ms_speaking": round(1000 * speaking, 2), "frame_ms_idle": round(1000 * idle, 2)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def cpu_configs(quick: bool) -> list[tuple[str, str]]:
    configs = [("torch", "float32"), ("onnx", "float32"), ("onnx", "int8"), ("torch", "bfloat16")]
    if quick and not native_bf16():
        configs.remove(("torch", "bfloat16"))  # emulated here: several times slower, measured in the full run
    return configs


def measure_cpu(avatar: Any, ckpt: Path, quick: bool, threads: int) -> dict[str, Any]:
    pcm = speech(3.0)  # voiced throughout: every frame goes through the network
    probe = mel_windows(melspectrogram(speech(1.0, 16000)), 16, FPS)
    results: dict[str, Any] = {}
    reference = None
    for backend, precision in cpu_configs(quick):
        t0 = time.perf_counter()
        r = Wav2LipRenderer(avatar, FPS, ckpt, device="cpu", backend=backend, precision=precision, batch=16,
                            threads=threads)
        setup_s = time.perf_counter() - t0
        faces = r.infer(probe)
        reference = faces if reference is None else reference
        gens, paths = [], []
        for _ in range(1 if quick else 2):
            gens.append(generator_fps(r, 16, 16 if quick else 64))
            paths.append(whole_path(r, pcm))
        path = max(paths, key=lambda p: p["fps"])
        gen = max(gens)
        results[r.generator.label] = {
            "generator_fps": round(gen, 1), "path_fps": round(path["fps"], 1),
            "path_vs_generator": round(path["fps"] / gen, 3), "first_frame_ms": round(path["first_frame_ms"], 1),
            "times_realtime": round(path["fps"] / FPS, 2), "psnr_db": round(psnr(reference, faces), 1),
            "setup_s": round(setup_s, 1), **frame_costs(r, pcm)}
        del r
    return results


def measure_cuda(avatar: Any, ckpt: Path, quick: bool) -> dict[str, Any]:
    torch.cuda.reset_peak_memory_stats()
    r = Wav2LipRenderer(avatar, FPS, ckpt, device="cuda", backend="torch", precision="float16", batch=16)
    sweep: dict[str, dict[str, float]] = {}
    for batch in (1, 4, 16, 64, 128, 256, 512) if not quick else (1, 16, 128):
        windows = mel_windows(melspectrogram(speech(max(1.0, batch / FPS + 0.3), 16000)), batch, FPS)
        r.infer(windows)
        lat = []
        for _ in range(5):
            t0 = time.perf_counter()
            r.infer(windows)
            _sync()
            lat.append(time.perf_counter() - t0)
        best = min(lat)
        sweep[str(batch)] = {"batch_ms": round(1000 * best, 2), "fps": round(batch / best, 1)}
    fits = [int(b) for b, v in sweep.items() if v["batch_ms"] <= 100.0]
    batch = max(fits) if fits else 1
    r.batch = batch
    pcm = speech(max(3.0, 2 * batch / FPS))
    path = whole_path(r, pcm, first_batch=min(batch, 16))
    return {"gpu": torch.cuda.get_device_name(0), "sweep": sweep, "batch_within_100ms": batch,
            "generator_fps_at_that_batch": sweep[str(batch)]["fps"],
            "rooms_at_25fps": int(sweep[str(batch)]["fps"] // FPS),
            "path_fps_frames_on_gpu": round(path["fps"], 1), "first_frame_ms": round(path["first_frame_ms"], 1),
            "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1), **frame_costs(r, pcm)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer configurations and frames: checks it runs")
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("STREAMER_CACHE", tempfile.mkdtemp(prefix="bench-w2l-"))
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    avatar = load_avatar("", 1280, 720)
    ckpt = make_checkpoint(tmp / "wav2lip_gan.pth", avatar)
    started = time.perf_counter()
    before = rss_mb()
    out: dict[str, Any] = {"benchmark": "wav2lip", "device": args.device, "threads": args.threads,
                           "cpu_model": cpu_model(), "native_bf16": native_bf16(),
                           "avx512_vnni": "avx512_vnni" in cpu_flags(), "load_avg_1m": os.getloadavg()[0]}
    if args.device == "cuda":
        out["cuda"] = cuda = measure_cuda(avatar, ckpt, args.quick)
        headline = {"render_fps_cuda_fp16_path": cuda["path_fps_frames_on_gpu"],
                    "generator_fps_cuda_fp16_within_100ms": cuda["generator_fps_at_that_batch"],
                    "rooms_cuda_at_25fps": cuda["rooms_at_25fps"], "peak_gpu_mb": cuda["peak_gpu_mb"],
                    "first_frame_latency_ms_cuda": cuda["first_frame_ms"]}
    else:
        out["cpu"] = cpu = measure_cpu(avatar, ckpt, args.quick, args.threads)
        acceptable = {k: v for k, v in cpu.items() if v["psnr_db"] >= 35}
        best_label, best = max(acceptable.items(), key=lambda kv: kv[1]["path_fps"])
        tag = best_label.replace("-", "_").replace("float", "fp").replace("bfp16", "bf16")
        headline = {f"render_fps_cpu_{tag}": best["path_fps"], f"generator_fps_cpu_{tag}": best["generator_fps"],
                    "path_vs_generator_pct": round(100 * best["path_vs_generator"], 1),
                    "render_times_realtime": best["times_realtime"], "first_frame_latency_ms": best["first_frame_ms"],
                    "frame_ms_speaking": best["frame_ms_speaking"], "frame_ms_idle": best["frame_ms_idle"],
                    "fastest_acceptable": best_label,
                    "psnr_db_min": min(v["psnr_db"] for k, v in cpu.items() if k != "torch-float32")}
    out["renderer_rss_mb_growth"] = round(rss_mb() - before, 1)
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["note"] = "random weights calibrated to realistic activations; see the module docstring"
    out["headline"] = headline
    report(out)


if __name__ == "__main__":
    main()
