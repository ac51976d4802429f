"""The rooms file: which rooms run, where their state lives, and what each may use.

A rooms file lists rooms; each is an ordinary profile (``streamer run -c PROFILE``) plus what must
differ between rooms on one machine. Those things are derived from the room's name unless the
rooms file gives them, so two rooms cannot share one by accident:

- the room's folder ``<dir>/<name>/``: the room process runs there, so the profile's relative state
  database and recording folder land in it; its log and its control token file live there too;
- its listening ports, a block of ten from ``ports_from`` picked by a hash of the name (the control
  API, then one per websocket chat source). A profile's own ``[control] port`` and websocket ports
  are replaced: every room of a shop usually shares one profile, and they would all collide;
- its virtual-microphone sink (``streamer_mic_<name>``) when the profile's is the default one.

Whatever the rooms file or a room's ``set`` gives explicitly is used as given, and two rooms that
end up on one port, one database, one recording folder, one microphone sink or one camera device
are refused at start with both rooms named. A room whose profile is invalid is kept with its
profile error (it does not start; the others do).
"""

from __future__ import annotations

import json
import os
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streamer.config import ConfigError, Settings, WebsocketSource, load_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PORT_BLOCK = 10
PORT_SLOTS = 2000
DEFAULT_MIC_SINK = "streamer_mic"
NAME_PATTERN = r"^[^\W_][\w-]{0,39}$"
"""Letters (any script: 咖啡店 is a fine room name), digits, '_' and '-'; used as a folder name."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RayOptions(_Model):
    address: str = ""
    """Empty: start Ray inside this process's machine (nothing to set up). "auto": join the cluster
    this machine belongs to (``ray start --head`` / ``--address``). "ray://host:10001": Ray Client."""
    num_cpus: Annotated[float, Field(ge=0)] = 0
    """Local Ray only: CPUs Ray may hand out (0: every core)."""
    num_gpus: Annotated[float, Field(ge=0)] | None = None
    object_store_mb: Annotated[int, Field(ge=75)] = 256
    dashboard: bool = False


class SupervisorOptions(_Model):
    host: Literal["127.0.0.1", "::1", "localhost", "0.0.0.0"] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8760
    """The rooms control API (``streamer rooms status`` talks to it); token STREAMER_ROOMS_TOKEN."""
    dir: str = "rooms"
    """Per-room folders (relative to the current directory)."""
    ports_from: Annotated[int, Field(ge=1024, le=65535 - PORT_BLOCK * PORT_SLOTS)] = 18000


class LipSyncOptions(_Model):
    """One shared Wav2Lip deployment (Ray Serve) for every room whose profile uses ``wav2lip``."""

    enabled: bool = False
    checkpoint: str = ""
    """Empty: wav2lip_gan.pth in the cache folder; must exist on the machines that run replicas."""
    device: str = "auto"
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    compile: Literal["auto", "on", "off"] = "auto"
    replicas: Annotated[int, Field(ge=1)] = 1
    num_gpus: Annotated[float, Field(ge=0)] | None = None
    """Per replica; default 1 when ``device`` is cuda (or auto on a GPU cluster), else 0."""
    num_cpus: Annotated[float, Field(ge=0)] = 1.0
    threads: Annotated[int, Field(ge=0)] = 0
    """CPU replicas: inference threads (0: every core of the machine it runs on)."""
    max_batch_frames: Annotated[int, Field(ge=1, le=512)] = 256
    batch_wait_ms: Annotated[float, Field(ge=0, le=100)] = 5.0
    max_faces: Annotated[int, Field(ge=1)] = 1024
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    route: Annotated[str, Field(pattern=r"^/[\w/-]*$")] = "/lipsync"
    timeout_ms: Annotated[float, Field(gt=0)] = 250.0
    """A sentence's first batch waits this long at most; later batches must beat their frames."""
    fallback: Literal["procedural", "local"] = "procedural"
    """What covers frames the deployment misses: the procedural mouth, or a local Wav2Lip per room."""

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "") else self.http_host
        return f"http://{host}:{self.http_port}{self.route}"


class RoomLimits(_Model):
    num_cpus: Annotated[float, Field(ge=0)] = 0.5
    num_gpus: Annotated[float, Field(ge=0)] = 0.0
    resources: dict[str, float] = {}
    """Ray custom resources, e.g. {"shop_a" = 0.01} to pin a room to the machine started with them."""
    max_restarts: Annotated[int, Field(ge=-1)] = 10
    """Restarts allowed within ``restart_window_s`` before the room is left failed; -1: no limit."""
    restart_window_s: Annotated[float, Field(gt=0)] = 3600.0
    stall_s: Annotated[float, Field(gt=0)] = 15.0
    """No new clock tick (or no status answer) for this long: the room is killed and restarted."""
    start_timeout_s: Annotated[float, Field(gt=0)] = 120.0
    memory_mb: Annotated[float, Field(ge=0)] = 0.0
    """Restart the room when its memory (RSS) grows past this; 0: no limit."""


class RoomEntry(_Model):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    profile: str
    control_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    state_db: str = ""
    set: dict[str, Any] = {}
    """Profile keys to override for this room, dotted: {"persona.name" = "小乔", "chat.1.port" = 9001}."""
    num_cpus: Annotated[float, Field(ge=0)] | None = None
    num_gpus: Annotated[float, Field(ge=0)] | None = None
    resources: dict[str, float] | None = None
    max_restarts: Annotated[int, Field(ge=-1)] | None = None
    restart_window_s: Annotated[float, Field(gt=0)] | None = None
    stall_s: Annotated[float, Field(gt=0)] | None = None
    start_timeout_s: Annotated[float, Field(gt=0)] | None = None
    memory_mb: Annotated[float, Field(ge=0)] | None = None

    @field_validator("set")
    @classmethod
    def _scalar_overrides(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, v in value.items():
            if not re.fullmatch(r"[A-Za-z_][\w]*(\.[\w]+)*", key):
                raise ValueError(f"{key!r}: expected a dotted profile key such as persona.name or chat.1.port")
            if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict | list) for x in v)):
                raise ValueError(f"{key}: only plain values and lists of plain values can be set here")
        return value


class RoomsFile(_Model):
    ray: RayOptions = RayOptions()
    supervisor: SupervisorOptions = SupervisorOptions()
    lipsync: LipSyncOptions = LipSyncOptions()
    defaults: RoomLimits = RoomLimits()
    room: list[RoomEntry]

    @field_validator("room")
    @classmethod
    def _unique_names(cls, rooms: list[RoomEntry]) -> list[RoomEntry]:
        seen: set[str] = set()
        for r in rooms:
            if r.name.casefold() in seen:
                raise ValueError(f"two rooms are named {r.name!r}")
            seen.add(r.name.casefold())
        if not rooms:
            raise ValueError("list at least one [[room]]")
        return rooms


@dataclass
class RoomSpec:
    """Everything one room needs to run anywhere in the cluster (plain data: it travels to its actor)."""

    name: str
    profile: str
    cwd: str
    env: dict[str, str]
    """Environment for the room process, on top of the actor's: its token, ports and paths."""
    control_host: str
    control_port: int
    token_file: str
    log_file: str
    state_db: str
    recordings: str
    fps: int
    limits: dict[str, Any]
    listens: list[int] = field(default_factory=list)
    claims: list[tuple[str, str]] = field(default_factory=list)
    """What this room holds that no other room may: (kind, value) pairs."""
    lipsync: bool = False
    error: str = ""
    """The profile error of a room that cannot start; empty when valid."""
    argv: list[str] = field(default_factory=list)
    """Another program to run as the room (the benchmark's instrumented room); empty: streamer run."""

    def command(self) -> list[str]:
        return list(self.argv) or [sys.executable, "-m", "streamer", "run", "-c", self.profile]


@dataclass
class RoomsPlan:
    file: Path
    options: RoomsFile
    rooms: list[RoomSpec]

    @property
    def valid(self) -> list[RoomSpec]:
        return [r for r in self.rooms if not r.error]

    def get(self, name: str) -> RoomSpec:
        for r in self.rooms:
            if r.name == name:
                return r
        raise KeyError(f"no room {name!r}; rooms: {', '.join(r.name for r in self.rooms)}")


class RoomsError(ConfigError):
    """A rooms file that cannot be run as a whole (the message names the file and the rooms)."""


# ---------------------------------------------------------------------------------------------- loading
def read_rooms_file(path: str | Path) -> RoomsFile:
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RoomsError(f"{file}: rooms file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise RoomsError(f"{file}: not valid TOML: {e}") from None
    try:
        return RoomsFile.model_validate(data)
    except ValidationError as e:
        lines = [f"{file}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise RoomsError("\n".join(lines)) from None


def toml_value(value: Any) -> str:
    """A value as the TOML literal the profile's environment overrides read back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def env_name(dotted: str) -> str:
    return "STREAMER__" + "__".join(p.upper() for p in dotted.split("."))


def ascii_slug(name: str) -> str:
    """The name where only ASCII will do (PulseAudio sink names); non-ASCII names get a hash."""
    if name.isascii():
        return name.replace("-", "_")
    return f"room_{zlib.crc32(name.encode()):08x}"


def name_slot(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) % PORT_SLOTS


def load_rooms(path: str | Path, environ: dict[str, str] | None = None) -> RoomsPlan:
    """Read a rooms file and resolve every room; RoomsError when rooms would share a port or a file."""
    file = Path(path)
    options = read_rooms_file(file)
    base = file.resolve().parent
    environ = dict(os.environ if environ is None else environ)
    root = Path(options.supervisor.dir).expanduser()
    root = (root if root.is_absolute() else Path.cwd() / root).resolve()
    ports = _assign_ports(options, environ, base)
    rooms = [_resolve(entry, options, base, root, ports[entry.name], environ) for entry in options.room]
    _refuse_shared(file, options, rooms)
    return RoomsPlan(file, options, rooms)


def _websocket_indexes(entry: RoomEntry, base: Path, environ: dict[str, str]) -> tuple[list[int], Settings | None]:
    """Indexes of the profile's websocket chat sources (and the settings, when the profile loads)."""
    try:
        settings = load_settings(_profile_path(entry, base), environ={**environ, **_set_env(entry)})
    except ConfigError:
        return [], None
    return [i for i, s in enumerate(settings.chat) if isinstance(s, WebsocketSource)], settings


def _assign_ports(options: RoomsFile, environ: dict[str, str], base: Path) -> dict[str, list[int]]:
    """Each room's listening ports: [control, websocket 0, websocket 1, ...]. Explicit ports as given;
    the rest from a block picked by the name's hash, skipping blocks that hold a port already taken."""
    wanted: dict[str, list[int | None]] = {}
    taken: set[int] = {options.supervisor.port}
    if options.lipsync.enabled:
        taken.add(options.lipsync.http_port)
    for entry in options.room:
        sockets, _ = _websocket_indexes(entry, base, environ)
        explicit = [entry.control_port] + [_int(entry.set.get(f"chat.{i}.port")) for i in sockets]
        wanted[entry.name] = explicit
        taken.update(p for p in explicit if p)
    out: dict[str, list[int]] = {}
    for entry in sorted(options.room, key=lambda e: e.name):
        ports = wanted[entry.name]
        if all(ports):
            out[entry.name] = [p for p in ports if p]
            continue
        slot = name_slot(entry.name)
        for _ in range(PORT_SLOTS):
            block = [options.supervisor.ports_from + PORT_BLOCK * slot + k for k in range(PORT_BLOCK)]
            if not taken.intersection(block):
                break
            slot = (slot + 1) % PORT_SLOTS
        out[entry.name] = [p or block[k] for k, p in enumerate(ports)]
        taken.update(block)
    return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _profile_path(entry: RoomEntry, base: Path) -> Path:
    p = Path(entry.profile).expanduser()
    return p if p.is_absolute() else base / p


def _set_env(entry: RoomEntry) -> dict[str, str]:
    return {env_name(k): toml_value(v) for k, v in entry.set.items()}


def _limits(entry: RoomEntry, defaults: RoomLimits) -> dict[str, Any]:
    out = defaults.model_dump()
    for key in out:
        value = getattr(entry, key, None)
        if value is not None:
            out[key] = value
    return out


def _under(room_dir: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return (p if p.is_absolute() else room_dir / p).resolve()


def _resolve(entry: RoomEntry, options: RoomsFile, base: Path, root: Path, ports: list[int],
             environ: dict[str, str]) -> RoomSpec:
    room_dir = root / entry.name
    profile = _profile_path(entry, base).resolve()
    env = _set_env(entry)
    sockets, _ = _websocket_indexes(entry, base, environ)
    env[env_name("control.port")] = str(ports[0])
    for i, port in zip(sockets, ports[1:], strict=True):
        env[env_name(f"chat.{i}.port")] = str(port)
    spec = RoomSpec(entry.name, str(profile), str(room_dir), env, "127.0.0.1", ports[0],
                    str(room_dir / "control.token"), str(room_dir / "room.log"), "", "", 25,
                    _limits(entry, options.defaults), listens=list(ports))
    try:
        settings = load_settings(profile, environ={**environ, **env})
    except ConfigError as e:
        spec.error = str(e) + (f" (with the rooms file's set = {{{', '.join(entry.set)}}})" if entry.set else "")
        return spec
    state_db = _under(room_dir, entry.state_db) if entry.state_db else _under(room_dir, settings.director.state_db)
    recordings = _under(room_dir, settings.outputs.recording.dir)
    env[env_name("director.state_db")] = toml_value(str(state_db))
    env[env_name("outputs.recording.dir")] = toml_value(str(recordings))
    if settings.outputs.microphone.sink == DEFAULT_MIC_SINK and "outputs.microphone.sink" not in entry.set:
        env[env_name("outputs.microphone.sink")] = toml_value(f"{DEFAULT_MIC_SINK}_{ascii_slug(entry.name)}")
    spec.lipsync = options.lipsync.enabled and settings.avatar.renderer == "wav2lip"
    if spec.lipsync:
        env[env_name("avatar.lipsync_url")] = toml_value(options.lipsync.url)
        env[env_name("avatar.lipsync_timeout_ms")] = toml_value(options.lipsync.timeout_ms)
        env[env_name("avatar.lipsync_fallback")] = toml_value(options.lipsync.fallback)
    try:  # the final profile, exactly as the room process will read it
        settings = load_settings(profile, environ={**environ, **env})
    except ConfigError as e:
        spec.error = str(e)
        return spec
    spec.control_host = settings.control.host
    spec.state_db, spec.recordings, spec.fps = str(state_db), str(recordings), settings.stream.fps
    spec.env = env
    spec.claims = _claims(settings, spec)
    return spec


def _claims(settings: Settings, spec: RoomSpec) -> list[tuple[str, str]]:
    out = [("port", str(p)) for p in spec.listens]
    out += [("state database", spec.state_db), ("recording folder", spec.recordings)]
    if settings.outputs.microphone.enabled:
        out.append(("microphone sink", settings.outputs.microphone.sink))
    if settings.outputs.camera.enabled != "off" and settings.outputs.camera.device:
        out.append(("camera device", settings.outputs.camera.device))
    return out


def _refuse_shared(file: Path, options: RoomsFile, rooms: list[RoomSpec]) -> None:
    owner: dict[tuple[str, str], str] = {("port", str(options.supervisor.port)): "the rooms control API"}
    if options.lipsync.enabled:
        owner[("port", str(options.lipsync.http_port))] = "the lip-sync deployment"
    problems = []
    for room in rooms:
        for kind, value in room.claims or [("port", str(p)) for p in room.listens]:
            other = owner.setdefault((kind, value), f"room {room.name!r}")
            if other != f"room {room.name!r}":
                problems.append(f"{file}: room {room.name!r} and {other} would share {kind} {value}; "
                                f"give each its own (rooms file: control_port, state_db, or set = {{...}})")
    if problems:
        raise RoomsError("\n".join(problems))
