"""Avatar studio speed: seconds per denoising step and per picture, AnimeGANv2 per picture, face scoring,
and speech recognition of a spoken description, on this machine.

- The tiny random SD 1.5 (``avatars.studio.tiny_models``) at 64x64 measures the pipeline's own overhead
  (scheduler, callbacks, text encoding, decode) through the same code as a user's weights.
- AnimeGANv2 runs the real architecture (2.1 M parameters; speed does not depend on the weight values)
  at the 512x512 face size and over a whole 1024-pixel portrait, i.e. one ``stylize``.
- With ``--model PATH`` (or [studio] model / the cache's studio/sd), the user's real SD 1.5 / SDXL is
  timed at its native size: seconds per step and per picture, on CUDA with float16 when present.
- faster-whisper base transcribing a 6 s description (times faster than real time), when installed.

Usage: python benchmarks/bench_studio.py [--quick] [--model PATH] [--device auto|cpu|cuda]
(--quick: fewer steps and repeats, the portrait at 512 instead of 1024 pixels.)
The last line is one JSON object with a ``headline``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from avatars.default_host import draw_default_host  # noqa: E402
from avatars.studio.composition import compose  # noqa: E402
from avatars.studio.face_score import score_portrait  # noqa: E402
from benchmarks._common import cpu_model, report, rss_mb  # noqa: E402


def time_pipeline(portraits: Any, size: int, steps: int, reps: int) -> dict[str, float]:
    req = compose("portrait of a smiling young woman, short black hair", width=size, height=size, steps=steps,
                  guidance=7.0)
    est = portraits.estimate(req)  # also the warm-up
    per_image = []
    for seed in range(reps):
        t0 = time.perf_counter()
        portraits.generate(req, seed, lambda *_: None)
        per_image.append(time.perf_counter() - t0)
    img = statistics.median(per_image)
    return {"size": size, "steps": steps, "s_per_step": round(est.step_s, 4), "decode_s": round(est.decode_s, 4),
            "s_per_image": round(img, 3), "s_per_step_in_run": round((img - est.decode_s) / steps, 4)}


def time_animegan(device: str, reps: int, portrait_side: int) -> dict[str, float]:
    from avatars.studio.animegan import AnimeGANv2Generator
    from avatars.studio.stylize import Stylizer

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "random.pt"
        torch.save(AnimeGANv2Generator().state_dict(), weights)
        st = Stylizer(weights, device)
        face = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
        st.run(face)
        t0 = time.perf_counter()
        for _ in range(reps):
            st.run(face)
        face_s = (time.perf_counter() - t0) / reps
        portrait = draw_default_host(portrait_side, portrait_side).image
        t0 = time.perf_counter()
        try:
            st.stylize(portrait)
        except Exception:  # random weights: only the time matters here
            pass
        whole_s = time.perf_counter() - t0
    return {"face_512_s": round(face_s, 3), f"stylize_{portrait_side}_portrait_s": round(whole_s, 3)}


def time_face_score(reps: int) -> float:
    img = draw_default_host(512, 512).image
    score_portrait(img)
    t0 = time.perf_counter()
    for _ in range(reps):
        score_portrait(img)
    return (time.perf_counter() - t0) / reps * 1000


def time_asr() -> dict[str, float] | None:
    try:
        from streamer.voice.asr import WhisperTranscriber
        from streamer.voice.piper import PiperTTS

        pcm = PiperTTS(16000).synthesize_blocking("A young woman with long black hair, smiling, wearing a white "
                                                  "blouse and small silver earrings.")
        asr = WhisperTranscriber()
    except Exception as e:  # optional extras missing: say so in the result
        return {"skipped": str(e)[:120]}  # type: ignore[dict-item]
    asr.transcribe(pcm[:16000], 16000)
    t0 = time.perf_counter()
    asr.transcribe(pcm, 16000)
    took = time.perf_counter() - t0
    return {"audio_s": round(len(pcm) / 16000, 2), "transcribe_s": round(took, 3),
            "times_realtime": round(len(pcm) / 16000 / took, 2)}


def real_model(path: str | None, device: str, quick: bool) -> dict[str, Any] | None:
    from avatars.studio import StudioError
    from avatars.studio.portraits import DiffusersPortraits
    from avatars.studio.sd_model import default_model_path, locate_model

    if not path and not default_model_path().exists():
        return None
    try:
        source = locate_model(path)
        portraits = DiffusersPortraits(source, device)
    except StudioError as e:
        return {"skipped": str(e)[:200]}
    side = portraits.native_size[0]
    r = time_pipeline(portraits, side, 4 if quick else 25, 1 if quick else 2)
    return {"model": source.description, "family": source.family, "device": portraits.device, **r}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", help="a real SD 1.5 / SDXL folder or .safetensors to time as well")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    from avatars.studio.portraits import DiffusersPortraits
    from avatars.studio.sd_model import choose_device, locate_model
    from avatars.studio.tiny_models import build_tiny_sd

    device, _ = choose_device(args.device)
    reps = 1 if args.quick else 5
    steps = 8 if args.quick else 20
    side = 512 if args.quick else 1024
    with tempfile.TemporaryDirectory() as tmp:
        tiny = DiffusersPortraits(locate_model(build_tiny_sd(Path(tmp) / "tiny")), device)
        tiny64 = time_pipeline(tiny, 64, steps, reps + 1)
        tiny256 = time_pipeline(tiny, 256, steps // 2, reps)
        del tiny
    anime = time_animegan(device, reps, side)
    face_ms = time_face_score(reps * 4)
    asr = time_asr()
    real = real_model(args.model, device, args.quick)
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    headline: dict[str, Any] = {
        f"tiny_sd15_64px_s_per_step_{device}": tiny64["s_per_step_in_run"],
        f"tiny_sd15_64px_s_per_image_{steps}steps_{device}": tiny64["s_per_image"],
        f"tiny_sd15_256px_s_per_step_{device}": tiny256["s_per_step_in_run"],
        f"animegan_face_512px_s_{device}": anime["face_512_s"],
        f"stylize_{side}px_portrait_s_{device}": anime[f"stylize_{side}_portrait_s"],
        "face_score_512px_ms": round(face_ms, 2),
    }
    if asr and "times_realtime" in asr:
        headline["describe_asr_times_realtime"] = asr["times_realtime"]
    if real and "s_per_step" in real:
        headline[f"real_{real['family']}_{real['size']}px_s_per_step_{real['device']}"] = real["s_per_step_in_run"]
        headline[f"real_{real['family']}_{real['size']}px_s_per_image_{real['steps']}steps_{real['device']}"] = \
            real["s_per_image"]
    report({"benchmark": "studio", "device": device, "threads": torch.get_num_threads(), "cpu_model": cpu_model(),
            "gpu": gpu, "tiny_sd15_64px": tiny64, "tiny_sd15_256px": tiny256, "animegan": anime, "asr": asr,
            "real_model": real, "rss_mb": round(rss_mb(), 1), "headline": headline})


if __name__ == "__main__":
    main()
