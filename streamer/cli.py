"""The command line: ``streamer run | say | listen | avatar prepare | doctor``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import signal
import socket
import sys
import time
from pathlib import Path

from streamer.config import DEFAULT_CONFIG, ConfigError, Settings, load_settings
from streamer.log import add_secret, setup_logging

log = logging.getLogger("streamer")

COMMAND_MODULES: tuple[str, ...] = ("avatars.studio.cli", "streamer.rooms.cli", "streamer.control.cli",
                                   "streamer.avatar_check")
"""Modules that add subcommands: each has ``add_commands(sub, avatar_sub)`` taking the top-level and the
``streamer avatar`` subparser collections (imports inside the command functions keep start-up light)."""


def _settings(path: str | None) -> Settings:
    if path is None and Path("config/default.toml").is_file():
        path = "config/default.toml"
    return load_settings(path or DEFAULT_CONFIG)


def tune_process_for_realtime() -> None:
    """Process-wide settings for a live stream, made once by the entry point (never by library classes).

    - Python hands the GIL to a waiting thread only every switch interval (5 ms by default): the clock and
      the sinks must not wait that long behind a burst of chat parsing on the event loop thread.
    - Everything built at start lives for the whole stream: moving it out of the cyclic GC's reach makes a
      full collection walk only what the stream allocates (a full collection stops every thread, the clock
      too: 50-110 ms over the ~340 k objects of a started app).
    """
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
    gc.collect()
    gc.freeze()


def _port_in_use(host: str, port: int) -> str | None:
    if port == 0:
        return None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError as e:
            return e.strerror or str(e)
    return None


async def _run(settings: Settings) -> int:
    from streamer.app import App
    from streamer.control import ControlServer, control_token

    busy = _port_in_use(settings.control.host, settings.control.port)
    if busy:
        print(f"control API: cannot listen on {settings.control.host}:{settings.control.port} ({busy}): another "
              "streamer may be running; stop it or set [control] port (STREAMER__CONTROL__PORT=...)", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    token, generated = control_token()
    add_secret(token)  # whatever might echo it (a request URL, an error), the log stream masks it
    app = App(settings, control_token=token)
    control = ControlServer(app, settings.control.host, settings.control.port, token)
    try:
        await app.start()
        await control.start()
        tune_process_for_realtime()
        if generated:  # once, to stdout: the log stream (stderr, often collected) never carries it
            print(f"control API token (set STREAMER_CONTROL_TOKEN to choose one): {token}", flush=True)
        print(f"streamer is live: control panel http://{control.host}:{control.bound_port}/ "
              "(or: streamer panel) ; Ctrl-C to stop", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await control.stop()
        await app.stop()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from streamer.guard.build import load_rule_set

    settings = _settings(args.config)
    load_rule_set(settings)  # a broken rules file stops the start before anything heavy is loaded
    return asyncio.run(_run(settings))


def cmd_say(args: argparse.Namespace) -> int:
    from streamer.events import clean_text

    if not clean_text(args.text):  # before anything heavy loads; invisible characters count as empty too
        print('say: nothing to say: the text is empty; give the words to speak, e.g. streamer say "Welcome in!" '
              "-o hello.mp4", file=sys.stderr)
        return 2
    from streamer.say import NothingToSay, render_say

    settings = _settings(args.config)
    if args.voice:
        settings = settings.model_copy(update={"voice": settings.voice.model_copy(update={"engine": args.voice})})
    try:
        info = render_say(settings, args.text, Path(args.output), args.avatar, subtitles=not args.no_subtitles,
                          language=args.language)
    except NothingToSay as e:
        print(f"say: {e}; give the words to speak, e.g. streamer say \"Welcome in!\" -o hello.mp4", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {info['seconds']:.2f} s at {settings.stream.fps} fps", file=sys.stderr)
    return 0


async def _listen(platform: str, room: str, url: str | None, as_json: bool) -> int:
    import json

    from streamer.build import platform_source
    from streamer.events import ChatEvent

    try:
        source = platform_source(platform, room, url)
    except ValueError as e:
        print(f"listen: {e}", file=sys.stderr)
        return 2

    def show(event: ChatEvent) -> None:
        if as_json:
            print(json.dumps(event.to_dict(), ensure_ascii=False), flush=True)
        else:
            paid = f" [{event.amount.value:g} {event.amount.unit}]" if event.amount else ""
            what = event.text or event.gift_name or event.action
            print(f"{event.kind.value:<10} {event.user.name}: {what}{paid}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(source.run(show))
    await asyncio.wait({task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    return asyncio.run(_listen(args.platform, args.room, args.url, args.json))


def cmd_avatar(args: argparse.Namespace) -> int:
    from avatars.portrait import AvatarError
    from avatars.prepare import prepare

    t0 = time.monotonic()
    try:
        info = prepare(args.path)
    except AvatarError as e:
        print(f"avatar: {e}", file=sys.stderr)
        return 1
    state = "cached already" if info.cached else f"prepared in {time.monotonic() - t0:.1f} s"
    print(f"{info.media}: {info.frames} frame(s), face found in {info.detected}; {state}; cache {info.cache}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from streamer.doctor import run_doctor

    return run_doctor(_settings(args.config))


def main(argv: list[str] | None = None) -> int:
    from streamer import __version__
    from streamer.voice.base import engines

    parser = argparse.ArgumentParser(prog="streamer", description="An AI live host that lives inside a webcam.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run 'streamer COMMAND --help' for each command's arguments and examples.")
    parser.add_argument("--version", action="version", version=f"streamer {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                        help="how much to log (default INFO), e.g. --log-level DEBUG")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="start the host and keep it live until Ctrl-C",
                       description="Start the live host and keep it running until Ctrl-C.",
                       epilog="example: streamer run -c config/bilibili_commerce.toml")
    p.add_argument("-c", "--config", metavar="FILE",
                   help="TOML profile (default: config/default.toml), e.g. -c config/douyin_commerce.toml")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("say", help="render one utterance to an MP4 file",
                       description="Render one utterance (voice, lip-synced face, subtitles) to an MP4 file.",
                       epilog='example: streamer say "欢迎来到直播间！" -o hello.mp4 --language zh')
    p.add_argument("text", help='what the host says, e.g. "欢迎来到直播间" or "Flash sale in five minutes!"')
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the MP4 file to write, e.g. -o hello.mp4")
    p.add_argument("-c", "--config", metavar="FILE", help="TOML profile for voice, avatar and size, e.g. -c my.toml")
    p.add_argument("--avatar", metavar="IMAGE",
                   help="portrait image (default: the config's avatar), e.g. --avatar host.jpg or drawn:male")
    p.add_argument("--voice", choices=["auto", *engines()],
                   help="voice engine (default: the config's chain), e.g. --voice piper")
    p.add_argument("--language", choices=["zh", "en"], help="zh or en (default: the text's own language), e.g. --language zh")
    p.add_argument("--no-subtitles", action="store_true", help="do not draw the sentence on the video")
    p.set_defaults(func=cmd_say)

    p = sub.add_parser("listen", help="print a live room's chat as normalised events until Ctrl-C",
                       description="Print a live room's chat as normalised events until Ctrl-C.",
                       epilog="example: streamer listen bilibili 22608112 --json")
    p.add_argument("platform", choices=["bilibili", "douyin", "twitch"], help="the platform, e.g. bilibili")
    p.add_argument("room", help="room id (bilibili, douyin: the number in live.douyin.com/<room>) or channel "
                                "(twitch), e.g. 22608112 or xqc")
    p.add_argument("--url", metavar="WS_URL",
                   help="connect to this websocket URL instead (skips the HTTP bootstrap), e.g. --url ws://127.0.0.1:9000")
    p.add_argument("--json", action="store_true", help="print one JSON object per line (JSON Lines)")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("avatar", help="prepare an avatar (face detection, cached)",
                       description="Avatar tools.", epilog="example: streamer avatar prepare host.jpg")
    avatar_sub = p.add_subparsers(dest="avatar_command", required=True)
    prep = avatar_sub.add_parser("prepare", help="detect and cache the face of a portrait or idle video",
                                 description="Detect and cache the face of a portrait, idle video or avatar folder.",
                                 epilog="example: streamer avatar prepare avatars/host_idle.mp4")
    prep.add_argument("path", help="a portrait image, an idle video or an avatar folder, e.g. host.jpg")
    prep.set_defaults(func=cmd_avatar)

    p = sub.add_parser("doctor", help="check every component and say how to fix what is missing",
                       description="Check every component and print the fix for what is missing.",
                       epilog="example: streamer doctor -c config/twitch_vtuber.toml")
    p.add_argument("-c", "--config", metavar="FILE",
                   help="TOML profile to check (default: config/default.toml), e.g. -c my.toml")
    p.set_defaults(func=cmd_doctor)

    for name in COMMAND_MODULES:  # subcommands that live beside their stage
        importlib.import_module(name).add_commands(sub, avatar_sub)

    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
