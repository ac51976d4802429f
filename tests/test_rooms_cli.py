"""``streamer rooms status | stop | start`` through the rooms control API, and ``streamer run`` never
importing Ray."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from streamer.cli import main
from streamer.rooms.api import RoomsApi, supervisor_token
from streamer.rooms.cli import _width
from streamer.rooms.model import load_rooms
from tests.rooms_fixtures import write_profile


class ScriptedSupervisor:
    """Stands in for the Ray supervisor behind the real API: rooms whose state the test sets."""

    def __init__(self):
        base = {"health": "ok", "fps": 25.0, "queue": 2, "restarts": 0, "node": "vm", "error": "", "last_reason": ""}
        self.rooms = {
            "coffee": {**base, "name": "coffee", "state": "running", "control": "http://127.0.0.1:18010/api/status"},
            "咖啡店": {**base, "name": "咖啡店", "state": "running", "restarts": 2, "last_reason": "killed by SIGSEGV",
                       "control": "http://127.0.0.1:18020/api/status",
                       "lipsync": {"remote_frames": 90, "procedural_frames": 12, "local_frames": 0}},
            "broken": {"name": "broken", "state": "invalid", "health": "invalid", "restarts": 0,
                       "error": "room.toml: stream.fps: Input should be a valid integer (got 'fast')"},
        }

    async def status(self):
        return list(self.rooms.values())

    async def room_status(self, name):
        return self.rooms[name]

    async def stop_room(self, name):
        self.rooms[name] = {**self.rooms[name], "state": "stopped", "health": "stopped", "fps": 0.0}
        return self.rooms[name]

    async def start_room(self, name):
        self.rooms[name] = {**self.rooms[name], "state": "starting", "health": "starting"}
        return self.rooms[name]

    async def lipsync_status(self):
        return {"enabled": True, "state": "ready", "url": "http://127.0.0.1:8000/lipsync", "error": ""}


@pytest.fixture
def rooms_plan(tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMER_ROOMS_TOKEN", raising=False)
    profile = write_profile(tmp_path)
    body = f'[supervisor]\nport = 0\ndir = "{tmp_path / "rooms"}"\n'
    for name in ("coffee", "咖啡店", "broken"):
        body += f'[[room]]\nname = "{name}"\nprofile = "{profile}"\n'
    path = tmp_path / "rooms.toml"
    path.write_text(body, encoding="utf-8")
    return load_rooms(path)


def cli(*args):
    return main(["rooms", *args])


async def test_status_stop_and_start_through_the_rooms_api(rooms_plan, capsys):
    fake = ScriptedSupervisor()
    api = RoomsApi(fake, rooms_plan, supervisor_token(rooms_plan))
    await api.start()
    try:
        file = str(rooms_plan.file)
        assert await asyncio.to_thread(cli, "status", "-c", file) == 0
        out = capsys.readouterr().out.splitlines()
        rows = {line.split()[0]: line for line in out if line.split() and line.split()[0] in fake.rooms}
        assert rows["coffee"].split()[1:6] == ["running", "ok", "25.0", "2", "0"]
        assert rows["咖啡店"].split()[5] == "2"
        # columns line up in a terminal even with Chinese names (two cells a character)
        at = {name: _width(line[: line.index(fake.rooms[name]["state"])]) for name, line in rows.items()}
        assert len(set(at.values())) == 1
        assert any("broken: room.toml: stream.fps" in line for line in out)
        assert any("咖啡店: last restart: killed by SIGSEGV" in line for line in out)
        assert any("咖啡店: lip-sync covered locally for 12 frames" in line for line in out)
        assert "lip-sync deployment: ready at http://127.0.0.1:8000/lipsync" in out

        assert await asyncio.to_thread(cli, "stop", "咖啡店", "-c", file) == 0
        assert fake.rooms["咖啡店"]["state"] == "stopped" and "stopped" in capsys.readouterr().out
        assert await asyncio.to_thread(cli, "start", "咖啡店", "-c", file) == 0
        assert fake.rooms["咖啡店"]["state"] == "starting"
        assert await asyncio.to_thread(cli, "stop", "nobody", "-c", file) == 1
        assert "no room 'nobody'" in capsys.readouterr().err

        assert await asyncio.to_thread(cli, "status", "--json", "-c", file) == 0
        answer = json.loads(capsys.readouterr().out)
        assert [r["name"] for r in answer["rooms"]] == ["coffee", "咖啡店", "broken"]

        def without_token():
            try:
                urllib.request.urlopen(f"{api.url}/api/rooms", timeout=30)
            except urllib.error.HTTPError as e:
                return e.code
        assert await asyncio.to_thread(without_token) == 401
    finally:
        await api.stop_server()
    assert await asyncio.to_thread(cli, "status", "-c", str(rooms_plan.file)) == 1
    assert "streamer rooms up -c" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NO_RAY = """
import sys

class RefuseRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("streamer run imported " + name)
        return None

sys.meta_path.insert(0, RefuseRay())
from streamer.cli import main
rc = main(["run", "-c", sys.argv[1]])
print("RAY_MODULES", [m for m in sys.modules if m == "ray" or m.startswith("ray.")], flush=True)
sys.exit(rc)
"""


@pytest.mark.slow
def test_streamer_run_never_imports_ray(tmp_path):
    profile = write_profile(tmp_path)
    port = free_port()
    env = {**os.environ, "STREAMER_CONTROL_TOKEN": "no-ray-test", "STREAMER__CONTROL__PORT": str(port),
           "STREAMER__CHAT__1__PORT": str(free_port()), "STREAMER__DIRECTOR__STATE_DB": str(tmp_path / "s.db")}
    proc = subprocess.Popen([sys.executable, "-c", NO_RAY, str(profile)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                         headers={"Authorization": "Bearer no-ray-test"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    status = json.loads(r.read())
                if status.get("ticks", 0) > 5:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if not (status and status["ticks"] > 5):
            proc.kill()
            raise AssertionError(f"the room never came up: {proc.communicate()[0][-3000:]}")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-2000:]
    assert "RAY_MODULES []" in out and "imported ray" not in out
