"""The whole thing on a local Ray cluster: two rooms (English and Chinese) as Ray actors, one with its
lip-sync served by the shared Ray Serve deployment, one room with an invalid profile; the
deployment crashing under load while rooms stream; a room crashing; a room stopped; everything
gone after shutdown."""

import asyncio
import json
import os
import signal
import socket
import threading
import urllib.request

import numpy as np
import pytest

pytest.importorskip("ray", reason="needs the rooms extra: pip install 'streamer[rooms]'")
torch = pytest.importorskip("torch", reason="needs torch: pip install torch==2.13.0")

import ray  # noqa: E402

from avatars import load_avatar  # noqa: E402
from avatars.wav2lip.checkpoint import save_official_format  # noqa: E402
from avatars.wav2lip.model import Wav2Lip  # noqa: E402
from avatars.wav2lip.remote import LipSyncClient, RemoteWav2LipRenderer  # noqa: E402
from streamer.rooms.api import RoomsApi, call, supervisor_token  # noqa: E402
from streamer.rooms.model import load_rooms  # noqa: E402
from streamer.rooms.supervisor import Supervisor  # noqa: E402
from tests.rooms_fixtures import alive, wait_for, write_profile  # noqa: E402

# Ray Serve's own models still use pydantic-v1 style Field arguments (its warning, not ours)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500),
              pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")]

UP_S = 400  # Ray, Serve, a replica and two rooms starting on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rooms_file(tmp_path, checkpoint):
    profile = write_profile(tmp_path)
    path = tmp_path / "rooms.toml"
    path.write_text(f"""
[ray]
num_cpus = 4
object_store_mb = 100

[supervisor]
port = 0
dir = "{tmp_path / 'rooms'}"

[lipsync]
enabled = true
checkpoint = "{checkpoint}"
device = "cpu"
precision = "float32"
threads = 1
max_batch_frames = 32
http_port = {free_port()}
timeout_ms = 5000

[defaults]
num_cpus = 0.5
stall_s = 30
start_timeout_s = {UP_S}

[[room]]
name = "coffee"
profile = "{profile}"
set = {{ "avatar.renderer" = "wav2lip" }}

[[room]]
name = "咖啡店"
profile = "{profile}"
set = {{ "persona.name" = "小乔" }}

[[room]]
name = "broken"
profile = "{profile}"
set = {{ "stream.width" = 333 }}
""", encoding="utf-8")
    return path


def room_post(status, path, body):
    token = open(status["token_file"], encoding="utf-8").read().strip()
    url = status["control"].replace("/api/status", path)
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def replica_names():
    return [a for a in ray.util.list_named_actors(all_namespaces=True)
            if "SERVE_REPLICA" in a["name"] and "lipsync" in a["name"]]


class StreamingRoom(threading.Thread):
    """A room's renderer speaking sentence after sentence into the deployment, as a live room does."""

    def __init__(self, url):
        super().__init__(daemon=True)
        client = LipSyncClient(url, retry_after_s=1.0)
        self.renderer = RemoteWav2LipRenderer(load_avatar("", 320, 180), 25, url, first_batch=10, batch=10,
                                              timeout_s=20.0, client=client)
        t = np.arange(int(0.4 * 48000)) / 48000
        self.pcm = (0.4 * np.sin(2 * np.pi * 170 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3.5 * t))).astype(np.float32)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.renderer.analyze(self.pcm, 48000)
            self.halt.wait(0.05)

    def count(self, key):
        return self.renderer.status()[key]


async def test_rooms_on_ray_share_one_lipsync_deployment_and_survive_its_crash(tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / "wav2lip_gan.pth"
    save_official_format(Wav2Lip(), checkpoint)
    plan = load_rooms(rooms_file(tmp_path, checkpoint))
    supervisor = Supervisor(plan, reconcile_s=1.0, status_timeout_s=10.0)
    api = RoomsApi(supervisor, plan, supervisor_token(plan))
    streaming = None
    try:
        await supervisor.start()
        await api.start()

        async def states():
            return {r["name"]: r for r in await supervisor.status()}

        async def both_running():
            s = await states()
            return s if all(s[n]["state"] == "running" and s[n].get("ticks") for n in ("coffee", "咖啡店")) else None

        rooms = await wait_for(both_running, UP_S, "both rooms running", poll=2)
        assert rooms["broken"]["state"] == "invalid" and "stream.width" in rooms["broken"]["error"]
        assert rooms["coffee"]["pid"] != rooms["咖啡店"]["pid"]
        assert (await asyncio.to_thread(call, plan, "GET", "/api/rooms"))["rooms"][1]["name"] == "咖啡店"
        await wait_for(lambda: supervisor.lipsync["state"] in ("ready", "failed"), UP_S, "the deployment", poll=2)
        assert supervisor.lipsync["state"] == "ready", supervisor.lipsync["error"]

        # the wav2lip room speaks: its frames are rendered by the shared deployment
        await asyncio.to_thread(room_post, rooms["coffee"], "/api/say", {"text": "Welcome to the coffee shop"})

        async def deployment_frames():
            return (await supervisor.lipsync_status()).get("replica", {}).get("frames", 0)

        await wait_for(deployment_frames, 240, "the room's frames at the deployment", poll=2)

        async def room_counts_them():  # and the room's status (streamer rooms status) says so
            lip = (await states())["coffee"].get("lipsync") or {}
            return lip.get("remote_frames", 0) > 0 and lip.get("renderer") == "wav2lip-remote"

        await wait_for(room_counts_them, 60, "the room reporting its remote frames", poll=2)

        # the deployment crashes under load: rooms keep streaming, the room-side client covers its frames
        streaming = StreamingRoom(plan.options.lipsync.url)
        streaming.start()
        await wait_for(lambda: streaming.count("remote_frames") >= 10, 240, "remote frames before the crash")
        before = await states()
        victims = replica_names()
        assert len(victims) == 1
        ray.kill(ray.get_actor(victims[0]["name"], namespace=victims[0]["namespace"]), no_restart=True)
        await wait_for(lambda: streaming.count("procedural_frames") > 0, 240, "frames covered while it is down")
        covered = streaming.count("remote_frames")
        await wait_for(lambda: streaming.count("remote_frames") > covered, UP_S, "the restarted deployment answering")
        assert replica_names() and replica_names()[0]["name"] != victims[0]["name"]
        after = await states()
        for name in ("coffee", "咖啡店"):
            assert after[name]["state"] == "running" and after[name]["restarts"] == 0
            assert after[name]["pid"] == before[name]["pid"] and after[name]["ticks"] > before[name]["ticks"]
        streaming.halt.set()

        # a room crashes: Ray's actor restarts its process; the other room never notices
        os.kill(after["coffee"]["pid"], signal.SIGKILL)

        async def coffee_back():
            s = await states()
            return s if s["coffee"]["restarts"] == 1 and s["coffee"]["state"] == "running" else None

        back = await wait_for(coffee_back, UP_S, "coffee restarted", poll=2)
        assert back["coffee"]["last_reason"] == "killed by SIGKILL"
        assert back["咖啡店"]["pid"] == after["咖啡店"]["pid"] and back["咖啡店"]["restarts"] == 0

        # the operator stops one room
        stopped = await asyncio.to_thread(call, plan, "POST", "/api/rooms/%E5%92%96%E5%95%A1%E5%BA%97/stop")
        assert stopped["room"]["state"] == "stopped" and not alive(back["咖啡店"]["pid"])
        assert (await states())["coffee"]["state"] == "running"
    finally:
        if streaming is not None:
            streaming.halt.set()
            streaming.join(60)
        await api.stop_server()
        last = supervisor.seen
        await supervisor.aclose()
    assert not ray.is_initialized()
    assert not any(alive(r.get("pid")) for r in last.values())
