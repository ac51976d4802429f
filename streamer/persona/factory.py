"""Building personas and the output filter from the config."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from streamer.config import Settings
from streamer.guard import OutputGuard
from streamer.guard.build import build_output_guard
from streamer.persona.catalogue import Catalogue
from streamer.persona.llm import LLMPersona, instructions
from streamer.persona.memory import Memory
from streamer.persona.profile import PersonaProfile, load_profile
from streamer.persona.scripted import ScriptedPersona

log = logging.getLogger(__name__)

SECRET_ENV = ("BILIBILI_COOKIE", "DOUYIN_COOKIE", "TWITCH_TOKEN", "STREAMER_CONTROL_TOKEN")


@dataclass
class Cast:
    """Every persona profile, the active one, and how to build its persona."""

    settings: Settings
    catalogue: Catalogue
    memory: Memory
    profiles: dict[str, PersonaProfile] = field(default_factory=dict)
    active: str = ""

    def build(self, name: str | None = None) -> ScriptedPersona | LLMPersona:
        name = name or self.active
        if name not in self.profiles:
            raise KeyError(f"no persona {name!r}; known: {', '.join(self.profiles)}")
        profile = self.profiles[name]
        p = self.settings.persona
        scripted = ScriptedPersona(self.catalogue, profile.name, memory=self.memory, big_gift_cny=p.big_gift_cny,
                                   language=profile.lang, aliases=profile.aliases)
        if p.kind == "scripted":
            return scripted
        return LLMPersona(profile, self.catalogue, self.memory, scripted,
                          base_url=p.base_url or os.environ.get("OPENAI_BASE_URL", ""), model=p.model,
                          api_key=os.environ.get(p.api_key_env, ""), first_token_timeout_s=p.first_token_timeout_s,
                          stall_timeout_s=p.stall_timeout_s, retries=p.retries, max_tokens=p.max_tokens,
                          answer_deadline_s=p.answer_deadline_s, sentence_deadline_s=p.sentence_deadline_s,
                          paraphrase_idle=p.paraphrase_idle)


def build_cast(settings: Settings, catalogue: Catalogue, memory: Memory) -> Cast:
    cast = Cast(settings, catalogue, memory)
    for path in settings.persona.profiles:
        profile = load_profile(settings.resolve(path))
        cast.profiles[profile.name] = profile
    if settings.persona.name not in cast.profiles:
        cast.profiles[settings.persona.name] = PersonaProfile(settings.persona.name, language=settings.stream.language)
    cast.active = settings.persona.name
    return cast


def build_output_filter(settings: Settings, cast: Cast) -> OutputGuard:
    """The output guard (streamer.guard.build): rules from the config, the live catalogue, and what
    must never be spoken (every persona's private instructions, the secrets in the environment)."""
    protected = [instructions(p) for p in cast.profiles.values()]  # the catalogue part is public
    secrets = [os.environ.get(settings.persona.api_key_env, ""), settings.persona.base_url,
               os.environ.get("OPENAI_BASE_URL", ""), *(os.environ.get(k, "") for k in SECRET_ENV)]
    return build_output_guard(settings, cast.catalogue, protected=protected, secrets=[s for s in secrets if s])
