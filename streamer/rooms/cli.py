"""``streamer rooms up | status | stop | start``: many rooms from one rooms file.

``up`` runs the supervisor in the foreground (Ctrl-C stops every room cleanly); the others are small
HTTP clients of its control API and never import Ray.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import signal
import sys
import unicodedata
from pathlib import Path
from typing import Any

from streamer.rooms.model import RoomsPlan, load_rooms

DEFAULT_ROOMS = Path(__file__).resolve().parent.parent.parent / "config" / "rooms.toml"


def add_commands(sub: Any, avatar_sub: Any) -> None:
    p = sub.add_parser("rooms", help="run many rooms (one profile each) under one supervisor, on Ray")
    rooms = p.add_subparsers(dest="rooms_command", required=True)
    up = rooms.add_parser("up", help="start every room of a rooms file and keep them running until Ctrl-C")
    up.add_argument("-c", "--config", help="rooms file (default: rooms.toml here, else config/rooms.toml)")
    up.set_defaults(func=cmd_up)
    st = rooms.add_parser("status", help="list the rooms: state, health, fps, queue, restarts")
    st.add_argument("-c", "--config")
    st.add_argument("--json", action="store_true", help="the API's JSON answer")
    st.set_defaults(func=cmd_status)
    for verb, text in (("stop", "stop one room (it stays stopped)"), ("start", "start a stopped or failed room")):
        c = rooms.add_parser(verb, help=text)
        c.add_argument("name")
        c.add_argument("-c", "--config")
        c.set_defaults(func=cmd_stop if verb == "stop" else cmd_start)


def _plan(path: str | None) -> RoomsPlan:
    if path is None:
        path = "rooms.toml" if Path("rooms.toml").is_file() else str(DEFAULT_ROOMS)
    return load_rooms(path)


# ---------------------------------------------------------------------------------------------- up
def cmd_up(args: argparse.Namespace) -> int:
    plan = _plan(args.config)
    if importlib.util.find_spec("ray") is None:
        print("rooms: Ray is not installed: pip install 'streamer[rooms]'", file=sys.stderr)
        return 2
    return asyncio.run(_up(plan))


async def _up(plan: RoomsPlan) -> int:
    from streamer.rooms.api import RoomsApi, supervisor_token
    from streamer.rooms.supervisor import Supervisor

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(plan)
    api = RoomsApi(supervisor, plan, supervisor_token(plan))
    try:
        await supervisor.start()
        await api.start()
        for room in plan.rooms:
            if room.error:
                print(f"room {room.name}: not started: {room.error}", file=sys.stderr)
            else:
                print(f"room {room.name}: control http://{room.control_host}:{room.control_port}/api/status "
                      f"(token in {room.token_file})", file=sys.stderr)
        print(f"rooms are up: status with `streamer rooms status -c {plan.file}` ({api.url}/api/rooms); "
              "Ctrl-C stops them all", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        print("stopping rooms…", file=sys.stderr, flush=True)
        await api.stop_server()
        await supervisor.aclose()
    return 0


# ---------------------------------------------------------------------------------------------- clients
def _call(args: argparse.Namespace, method: str, path: str) -> dict[str, Any] | None:
    from streamer.rooms.api import SupervisorUnreachable, call

    try:
        return call(_plan(args.config), method, path)
    except SupervisorUnreachable as e:
        print(f"rooms: {e}", file=sys.stderr)
        return None


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def format_rooms(answer: dict[str, Any]) -> str:
    """The status table: one line a room, then what went wrong where something did."""
    head = ["ROOM", "STATE", "HEALTH", "FPS", "QUEUE", "RESTARTS", "NODE", "CONTROL"]
    rows = [head]
    notes = []
    for r in answer.get("rooms", []):
        rows.append([r["name"], r.get("state", ""), r.get("health", ""), f"{r.get('fps') or 0:.1f}",
                     "" if r.get("queue") is None else str(r["queue"]), str(r.get("restarts", 0)),
                     r.get("node") or "", r.get("control") or ""])
        why = r.get("error") or (r.get("last_reason") and f"last restart: {r['last_reason']}")
        if why:
            notes.append(f"  {r['name']}: {why}")
        lip = r.get("lipsync")
        if isinstance(lip, dict) and lip.get("procedural_frames", 0) + lip.get("local_frames", 0):
            notes.append(f"  {r['name']}: lip-sync covered locally for "
                         f"{lip.get('procedural_frames', 0) + lip.get('local_frames', 0)} frames")
    widths = [max(_width(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lip = answer.get("lipsync") or {}
    if lip.get("enabled"):
        extra = f" ({lip['error']})" if lip.get("error") else ""
        lines.append(f"lip-sync deployment: {lip.get('state')} at {lip.get('url')}{extra}")
    return "\n".join(lines + notes)


def cmd_status(args: argparse.Namespace) -> int:
    answer = _call(args, "GET", "/api/rooms")
    if answer is None:
        return 1
    if not answer.get("ok"):
        print(f"rooms: {answer.get('error')}", file=sys.stderr)
        return 1
    print(json.dumps(answer, ensure_ascii=False, indent=2) if args.json else format_rooms(answer))
    return 0


def _one(args: argparse.Namespace, verb: str) -> int:
    from urllib.parse import quote

    answer = _call(args, "POST", f"/api/rooms/{quote(args.name)}/{verb}")
    if answer is None:
        return 1
    if not answer.get("ok"):
        print(f"rooms: {answer.get('error')}", file=sys.stderr)
        return 1
    print(format_rooms({"rooms": [answer["room"]]}))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    return _one(args, "stop")


def cmd_start(args: argparse.Namespace) -> int:
    return _one(args, "start")
