"""Wav2Lip on this machine: the generator alone and the whole render path (mel + inference +
paste-back + idle motion), for float32, bfloat16 with channels-last, and ONNX Runtime, at batch 1, 8,
16 and 32; the real-time factor at 25 fps; first-frame latency for a 3 s utterance; peak memory.

The weights are random (the architecture and the work are those of the official checkpoints; the
speed does not depend on the values). Usage: python benchmarks/bench_wav2lip.py [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from avatars import load_avatar  # noqa: E402
from avatars.dsp import resample  # noqa: E402
from avatars.wav2lip.audio import mel_windows, melspectrogram  # noqa: E402
from avatars.wav2lip.checkpoint import load_wav2lip, save_official_format  # noqa: E402
from avatars.wav2lip.model import Wav2Lip  # noqa: E402
from avatars.wav2lip.renderer import Wav2LipRenderer  # noqa: E402
from benchmarks._common import report, rss_mb  # noqa: E402

FPS = 25


def speech(seconds: float, rate: int = 48000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 170 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t))).astype(np.float32)


def timed(fn, frames_per_call: int, min_frames: int) -> float:
    fn()  # warm-up
    done, t0 = 0, time.perf_counter()
    while done < min_frames:
        fn()
        done += frames_per_call
    return done / (time.perf_counter() - t0)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def generator_fps(model, precision: str, batch: int, min_frames: int, device: str = "cpu") -> dict:
    audio = torch.randn(batch, 1, 80, 16, device=device)
    faces = torch.rand(batch, 6, 96, 96, device=device)
    m = model.to(device)
    if precision == "float16":
        m, audio, faces = m.half(), audio.half(), faces.half()
    if precision == "bfloat16" and device == "cpu":
        m = m.to(memory_format=torch.channels_last)
        faces = faces.contiguous(memory_format=torch.channels_last)
    feats_one = None
    bf16 = precision == "bfloat16"

    def full():
        with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            m(audio, faces)
        _sync(device)

    def static_face():
        nonlocal feats_one
        with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            if feats_one is None:
                feats_one = m.encode_face(faces[:1])
            m.decode(audio, feats_one, broadcast=True)
        _sync(device)

    return {"generator_fps": round(timed(full, batch, min_frames), 1),
            "generator_static_face_fps": round(timed(static_face, batch, min_frames), 1)}


def onnx_fps(path: Path, batch: int, min_frames: int) -> float:
    from avatars.wav2lip.onnx import OnnxWav2Lip

    session = OnnxWav2Lip(path, threads=2)
    audio = np.random.randn(batch, 1, 80, 16).astype(np.float32)
    faces = np.random.rand(batch, 6, 96, 96).astype(np.float32)
    return timed(lambda: session(audio, faces), batch, min_frames)


def render_path(renderer: Wav2LipRenderer, pcm: np.ndarray) -> dict:
    t0 = time.perf_counter()
    first = None
    poses = []
    for batch in renderer.analyze_stream(pcm, 48000):
        if first is None:
            renderer.frame(0, batch[0])
            first = time.perf_counter() - t0
        poses.extend(batch)
    for i, p in enumerate(poses):
        renderer.frame(i, p)
    total = time.perf_counter() - t0
    return {"frames": len(poses), "fps": round(len(poses) / total, 1), "first_frame_latency_ms": round(first * 1000, 1)}


def onnx_render_path(session, renderer: Wav2LipRenderer, pcm: np.ndarray, batch: int) -> dict:
    t0 = time.perf_counter()
    base = renderer.__class__.__mro__[1].analyze(renderer, pcm, 48000)
    n = len(base)
    windows = mel_windows(melspectrogram(resample(pcm, 48000, 16000)), n, FPS)
    faces = np.repeat(renderer.face_input, batch, axis=0)
    first = None
    for s in range(0, n, batch):
        w = windows[s:s + batch]
        out = session(w[:, None], faces[:len(w)])
        patches = np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
        for j, patch in enumerate(patches):
            img = renderer.avatar.image.copy()
            renderer.paste.paste(img, patch)
            renderer._head_motion(img, s + j, base[s + j])
            if first is None:
                first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return {"frames": n, "fps": round(n / total, 1), "first_frame_latency_ms": round((first or 0) * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = ap.parse_args()
    from avatars.wav2lip.renderer import pick_device

    device = pick_device(args.device)
    if device == "mps":
        device = "cpu"
    if device == "cpu":
        torch.set_num_threads(2)
    min_frames = 32 if args.quick else 96
    tmp = Path(tempfile.mkdtemp())
    ckpt = tmp / "wav2lip_gan.pth"
    torch.manual_seed(0)
    save_official_format(Wav2Lip(), ckpt)
    # the renderer's own memory: one bf16 renderer rendering a 3 s line, before anything else is loaded
    fast = "float16" if device == "cuda" else "bfloat16"
    before = rss_mb()
    first = Wav2LipRenderer(load_avatar("", 1280, 720), FPS, ckpt, device=device, precision=fast, batch=16)
    render_path(first, speech(3.0))
    renderer_mb = rss_mb() - before
    del first
    model = load_wav2lip(ckpt)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results: dict = {"generator": {}, "render_path": {}, "renderer_rss_mb": round(renderer_mb, 1)}
    for precision in ("float32", fast):
        for batch in (1, 8, 16, 32):
            results["generator"][f"{precision}_b{batch}"] = generator_fps(load_wav2lip(ckpt), precision, batch,
                                                                          min_frames, device)
    onnx_path = None
    if device == "cpu":  # ONNX Runtime runs the CPU provider here
        try:
            from avatars.wav2lip.onnx import export_onnx

            onnx_path = export_onnx(model, tmp / "wav2lip.onnx")
            for batch in (1, 8, 16, 32):
                results["generator"][f"onnx_b{batch}"] = {"generator_fps": round(onnx_fps(onnx_path, batch, min_frames), 1)}
        except ImportError as e:
            results["generator"]["onnx"] = f"skipped: {e}"
    avatar = load_avatar("", 1280, 720)
    pcm = speech(3.0)
    for precision in ("float32", fast):
        for batch in ((8, 16) if args.quick else (1, 8, 16, 32)):
            r = Wav2LipRenderer(avatar, FPS, ckpt, device=device, precision=precision, batch=batch)
            results["render_path"][f"{precision}_b{batch}"] = render_path(r, pcm)
    if onnx_path is not None:
        from avatars.wav2lip.onnx import OnnxWav2Lip

        r = Wav2LipRenderer(avatar, FPS, ckpt, precision="float32", batch=16)
        results["render_path"]["onnx_b16"] = onnx_render_path(OnnxWav2Lip(onnx_path, threads=2), r, pcm, 16)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    short = {"bfloat16": "bf16", "float16": "fp16"}[fast]
    best = max(results["render_path"].items(), key=lambda kv: kv[1]["fps"])
    g = results["generator"]
    results.update({
        "benchmark": "wav2lip", "device": device, "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "bf16_native_cpu": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "peak_rss_mb": round(peak, 1), "rss_mb_after_model_load": round(rss0, 1),
        "headline": {
            f"generator_fps_{device}_fp32_b16": g["float32_b16"]["generator_fps"],
            f"generator_fps_{device}_{short}_b16": g[f"{fast}_b16"]["generator_fps"],
            f"generator_fps_{device}_{short}_static_face_b16": g[f"{fast}_b16"]["generator_static_face_fps"],
            f"render_fps_{device}_{short}_b16": results["render_path"][f"{fast}_b16"]["fps"],
            f"render_fps_{device}_fp32_b16": results["render_path"]["float32_b16"]["fps"],
            "render_times_realtime_best": round(best[1]["fps"] / FPS, 2),
            "best_render_config": best[0],
            f"first_frame_latency_ms_{short}_b16": results["render_path"][f"{fast}_b16"]["first_frame_latency_ms"],
            f"renderer_rss_mb_{short}_b16": round(renderer_mb, 1),
            "peak_rss_mb_benchmark_process": round(peak, 1),
        },
    })
    report(results)


if __name__ == "__main__":
    main()
