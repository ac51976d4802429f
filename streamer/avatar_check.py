"""``streamer avatar check``: does the configured Wav2Lip checkpoint really lip-sync this avatar?

It builds the avatar exactly as the live app does (``streamer.build.build_avatar``) and the Wav2Lip
renderer from the same settings (an error here is reported, not replaced by the procedural mouth),
speaks a test line in English and one in Chinese with the configured voice (a synthetic voiced
signal when no voice engine is installed), renders them as the live path does, writes the clip to
an MP4 you can watch, and reports what a viewer would notice: whether the mouth follows the voice
(correlation and lag), how sharp the mouth is against the portrait, and how fast it renders. Exit
code 0 when the checkpoint loads and the mouth is in sync and sharp enough, 1 otherwise.

Also the doctor's lip-sync line (``doctor_checks``): the checkpoint file is validated (every tensor's
name and shape) and the generator this machine would use is named, without rendering.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from avatars.renderers import default_checkpoint

log = logging.getLogger(__name__)

LINES = ("Hello everyone, welcome to the live room! Today we have a great deal for you.",
         "大家好，欢迎来到直播间！今天的优惠力度非常大，喜欢的朋友赶紧下单。")


def configured_checkpoint(settings: Any) -> Path:
    a = settings.avatar
    return Path(settings.resolve(a.wav2lip_checkpoint)) if a.wav2lip_checkpoint else default_checkpoint()


def test_speech(settings: Any, rate: int, lines: tuple[str, ...] = LINES) -> tuple[np.ndarray, str]:
    """The test lines in the configured voice, or a synthetic voice when none is installed."""
    try:
        from streamer.voice.base import create_tts

        v = settings.voice
        tts = create_tts(v.engine, rate, model=v.piper_model and str(settings.resolve(v.piper_model)),
                         voice=v.espeak_voice, speed=v.speed, volume=v.volume)
        try:
            parts = [tts.synthesize_blocking(line) for line in lines]
            return np.concatenate([p for p in parts if p.size]), tts.describe()
        finally:
            tts.close()
    except Exception as e:  # no engine here: syllables of a voiced tone with pauses still test sync
        log.warning("no voice for the check; using a synthetic voice", extra={"error": str(e)})
        t = np.arange(int(4.0 * rate)) / rate
        envelope = np.clip(np.sin(2 * np.pi * 2.7 * t), 0, None) ** 1.5 * (np.sin(2 * np.pi * 0.45 * t) > -0.6)
        voiced = np.sin(2 * np.pi * 150 * t) + 0.5 * np.sin(2 * np.pi * 300 * t) + 0.3 * np.sin(2 * np.pi * 900 * t)
        return (0.25 * envelope * voiced).astype(np.float32), "synthetic voice"


def run_check(settings: Any, checkpoint: str | None, image: str | None, out: Path | None,
              print_: Any = print, lines: tuple[str, ...] = LINES) -> int:
    from avatars.check import SHARPNESS_MIN, SYNC_MAX_OFFSET, SYNC_MIN_R, check_renderer
    from avatars.wav2lip.checkpoint import CheckpointError
    from streamer.build import build_avatar
    from streamer.config import ConfigError

    a, st = settings.avatar, settings.stream
    ckpt = Path(checkpoint) if checkpoint else configured_checkpoint(settings)
    try:
        from avatars.wav2lip.renderer import RenderError, Wav2LipRenderer

        avatar = build_avatar(settings, override=image)
        renderer = Wav2LipRenderer(avatar, st.fps, ckpt, device=a.device, precision=a.precision, batch=a.batch,
                                   backend=a.backend, pads=a.wav2lip_pads)
    except (CheckpointError, ConfigError, ImportError, ValueError, RuntimeError) as e:
        print_(f"avatar check: {e}")
        return 1
    rate = settings.stream.sample_rate
    pcm, voice = test_speech(settings, rate, lines)
    print_(f"checkpoint: {ckpt}: loads (every tensor of the Wav2Lip generator)")
    print_(f"avatar: {avatar.name} ({st.width}x{st.height}); voice: {voice}; generator: "
           f"{renderer.generator.label} on {renderer.device}")
    for line in measure_lossy(renderer, a.device):
        print_(line)
    try:
        report, poses = check_renderer(renderer, pcm, rate)
    except RenderError as e:
        print_(f"avatar check: {e}")
        return 1
    print_(f"speed: {report.frames} frames in {report.render_s:.1f} s ({report.times_realtime:.2f}x real time at "
           f"25 fps); first frame after {1000 * report.first_frame_s:.0f} ms")
    if not report.moves:
        sync = "NOT IN SYNC: the mouth does not move with the voice (random or wrong weights?)"
    elif report.in_sync:
        sync = "OK"
    else:
        sync = f"NOT IN SYNC (want r >= {SYNC_MIN_R} within {SYNC_MAX_OFFSET} frames)"
    print_(f"sync: over the {report.speech_frames} rendered frames the mouth opening follows the voice with r = "
           f"{report.sync_r:.2f}, lagging by {report.sync_offset} frame(s) (it varies by {report.movement:.1f} "
           f"grey levels): {sync}")
    sharp = "OK" if report.sharp else f"WASHED OUT (below {SHARPNESS_MIN})"
    print_(f"sharpness: the mouth region keeps {report.sharpness:.2f} of the portrait's detail: {sharp}")
    if out is not None:
        write_clip(renderer, poses, pcm, rate, settings.stream.fps, out)
        print_(f"wrote {out}: watch it to judge the lips yourself")
    return 0 if report.in_sync else 1


def measure_lossy(renderer: Any, device: str) -> list[str]:
    """Compare each faster, lossy generator with float32 on this checkpoint and record the verdict, so
    ``auto`` can use it from the next start (int8 is quantised here, once)."""
    from avatars.wav2lip.backends import (
        ACCEPTABLE_DB,
        candidates,
        measure_precision,
        record_verdict,
        verdicts,
    )
    from avatars.wav2lip.checkpoint import load_wav2lip

    lines = []
    model = None
    known = verdicts(renderer.checkpoint)
    for choice in candidates(device):
        if not choice.lossy:
            continue
        db = known.get(choice.label)
        if db is None:
            model = model if model is not None else load_wav2lip(renderer.checkpoint)
            db = measure_precision(model, renderer.checkpoint, choice, renderer.probe)
            record_verdict(renderer.checkpoint, choice.label, db)
        verdict = "acceptable: auto uses it" if db >= ACCEPTABLE_DB else f"below {ACCEPTABLE_DB:.0f} dB: auto skips it"
        lines.append(f"precision: {choice.label} is {db:.1f} dB from float32 on this avatar: {verdict}")
    return lines


def write_clip(renderer: Any, poses: list[Any], pcm: np.ndarray, rate: int, fps: int, out: Path) -> None:
    from streamer.sinks.recording import MP4Writer

    spf = rate // fps
    width, height = renderer.avatar.size
    writer = MP4Writer(out, width, height, fps, rate, fragmented=False)
    try:
        for i, pose in enumerate(poses):
            chunk = np.zeros(spf, np.float32)
            part = pcm[i * spf:(i + 1) * spf]
            chunk[: len(part)] = part
            writer.write(renderer.frame(i, pose), chunk)
    finally:
        writer.close()


def _cmd_check(args: argparse.Namespace) -> int:
    from streamer.cli import _settings

    t0 = time.monotonic()
    code = run_check(_settings(args.config), args.checkpoint, args.avatar, Path(args.output) if args.output else None,
                     lines=tuple(args.text) if args.text else LINES)
    print(f"(checked in {time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return code


def add_commands(sub: Any, avatar_sub: Any) -> None:
    p = avatar_sub.add_parser("check", help="render a test clip with the Wav2Lip checkpoint and report sync and sharpness")
    p.add_argument("-c", "--config", help="TOML profile (default: config/default.toml)")
    p.add_argument("--checkpoint", help="Wav2Lip weights (default: [avatar] wav2lip_checkpoint or the cache)")
    p.add_argument("--avatar", help="portrait, idle video or avatar folder (default: the config's)")
    p.add_argument("-o", "--output", help="also write the test clip to this MP4")
    p.add_argument("--text", action="append", help="a line to speak instead of the built-in English and Chinese ones")
    p.set_defaults(func=_cmd_check)


def doctor_checks(settings: Any) -> list[Any]:
    """The checkpoint validated (names and shapes of every tensor) and the generator this machine uses."""
    import importlib.util

    from streamer.doctor import Check

    a = settings.avatar
    ckpt = configured_checkpoint(settings)
    if not ckpt.is_file() or importlib.util.find_spec("torch") is None:
        return []  # the base lip-sync lines already say what is missing
    from avatars.wav2lip.backends import choose
    from avatars.wav2lip.checkpoint import CheckpointError, load_wav2lip

    try:
        load_wav2lip(ckpt)
    except CheckpointError as e:
        return [Check("lip-sync: checkpoint", False, str(e), "download wav2lip_gan.pth again, or point "
                      "[avatar] wav2lip_checkpoint at it", essential=a.renderer == "wav2lip")]
    choice = choose(a.device, a.backend, a.precision, ckpt)
    return [Check("lip-sync: checkpoint", True, f"{ckpt}: a valid Wav2Lip generator; `streamer avatar check` "
                  "renders a test clip and measures sync"),
            Check("lip-sync: generator", True, f"{choice.backend} {choice.precision} on {choice.device}")]
