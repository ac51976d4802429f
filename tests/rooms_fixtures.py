"""Small real rooms for the rooms tests: light profiles (320x180, espeak-ng, no camera, no recording)
that start as real ``streamer run`` processes, and helpers to wait on a room's state."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.conftest import REPO

ROOM_PROFILE = f"""
[stream]
width = 320
height = 180
[voice]
engine = "espeak"
[persona]
catalogue = "{REPO}/config/products/demo.toml"
profiles = ["{REPO}/config/personas/joe.toml", "{REPO}/config/personas/xiaoqiao.toml"]
idle_after_s = 2
[safety]
terms_file = "{REPO}/config/safety/terms.toml"
[[chat]]
type = "replay"
path = "{REPO}/config/samples/commerce_en.jsonl"
[[chat]]
type = "websocket"
[outputs.camera]
enabled = "off"
[outputs.recording]
enabled = false
"""


def write_profile(folder: Path, extra: str = "") -> Path:
    path = folder / "room.toml"
    path.write_text(ROOM_PROFILE + extra, encoding="utf-8")
    return path


async def wait_for(predicate, timeout: float, what: str, poll: float = 0.5):
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last}")


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:  # a zombie is not alive
        return f.read().split(") ")[1][0] != "Z"
