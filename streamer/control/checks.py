"""``streamer doctor`` lines for the operator's seat and the extra outputs: global hotkeys, OBS,
the stage page, RTMP and sound devices (what exists here, and how to turn each on)."""

from __future__ import annotations

import importlib.util
import os
import urllib.parse

from streamer.config import Settings
from streamer.doctor import Check, _reachable


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_hotkeys(settings: Settings) -> Check:
    from streamer.control.hotkeys import doctor_line

    ok, detail, fix = doctor_line(settings)
    return Check("global hotkeys", ok, detail, fix)


def check_obs(settings: Settings) -> list[Check]:
    obs = settings.control.obs
    if not obs.enabled:
        return [Check("OBS websocket", True, "off (optional)",
                      "set [control.obs] enabled = true, brb_scene, subtitle_source; password in "
                      f"${obs.password_env}")]
    reach = _reachable("OBS websocket", obs.url)
    has_pw = bool(os.environ.get(obs.password_env))
    reach.detail += "; password " + ("set" if has_pw else f"not set (${obs.password_env})")
    if not reach.ok:
        reach.fix = "start OBS Studio 28+ and enable Tools > WebSocket Server Settings"
    return [reach]


def check_stage(settings: Settings) -> Check:
    st = settings.outputs.stage
    if not _has("aiortc"):
        return Check("stage page (WebRTC)", not st.enabled, "aiortc not installed", "pip install 'streamer[stage]'")
    state = f"on: http://{settings.control.host}:{settings.control.port}/stage" if st.enabled else \
        "available (set [outputs.stage] enabled = true)"
    return Check("stage page (WebRTC)", True, state)


def check_rtmp(settings: Settings) -> Check:
    from streamer.sinks.base import SinkUnavailable
    from streamer.sinks.rtmp import redact, resolve_url

    r = settings.outputs.rtmp
    if not r.enabled:
        return Check("RTMP push", True, "off (set [outputs.rtmp] enabled = true and url)")
    try:
        url = resolve_url(r.url, r.key_env)
    except SinkUnavailable as e:
        return Check("RTMP push", False, str(e), f"export {r.key_env}=YOUR_STREAM_KEY")
    parts = urllib.parse.urlsplit(url)
    check = _reachable("RTMP push", f"tcp://{parts.hostname}:{parts.port or 1935}")
    check.detail = f"{redact(url)}: {check.detail}"
    return check


def check_audio_device(settings: Settings) -> Check:
    from streamer.sinks.base import SinkUnavailable

    a = settings.outputs.audio_device
    try:
        from streamer.sinks.audio_device import find_device, output_devices

        names = [name for _, name, _ in output_devices()]
        if a.enabled:
            find_device(a.device)
    except SinkUnavailable as e:
        return Check("sound output device", not a.enabled, str(e), "pip install 'streamer[audio]'")
    listing = ", ".join(names[:8]) or "none"
    state = f"using {a.device or 'the default output'}" if a.enabled else \
        "available for [outputs.audio_device] (VB-Cable on Windows, BlackHole on macOS)"
    return Check("sound output device", True, f"{state}; devices: {listing}")


def doctor_checks(settings: Settings) -> list[Check]:
    return [check_hotkeys(settings), *check_obs(settings), check_stage(settings), check_rtmp(settings),
            check_audio_device(settings)]
