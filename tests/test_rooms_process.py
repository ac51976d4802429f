"""A room is a real ``streamer run`` process: a crash, a stall or memory growth restarts that room,
and its neighbour never notices; too many restarts leave it failed, with the reason."""

import asyncio
import os
import signal

import pytest

from streamer.rooms.model import load_rooms
from streamer.rooms.process import RoomProcess
from tests.rooms_fixtures import alive, wait_for, write_profile

START_S = 240  # a room's start-up (imports, voice) on a loaded 2-core machine


def plan_for(tmp_path, **limits):
    profile = write_profile(tmp_path)
    extra = "".join(f"{k} = {v}\n" for k, v in limits.items())
    rooms = tmp_path / "rooms.toml"
    rooms.write_text(f"""
[supervisor]
dir = "{tmp_path / 'rooms'}"
[defaults]
stall_s = 6
start_timeout_s = {START_S}
{extra}
[[room]]
name = "coffee"
profile = "{profile}"
[[room]]
name = "咖啡店"
profile = "{profile}"
set = {{ "persona.name" = "小乔" }}
""", encoding="utf-8")
    return load_rooms(rooms)


async def running(room: RoomProcess, restarts: int = 0):
    return await wait_for(lambda: room.state == "running" and room.restarts >= restarts and room.live.get("ticks"),
                          START_S, f"{room.spec.name} running after {restarts} restart(s)")


@pytest.mark.slow
async def test_a_crash_a_stall_and_memory_growth_restart_one_room_and_never_its_neighbour(tmp_path):
    plan = plan_for(tmp_path)
    victim, neighbour = RoomProcess(plan.get("coffee"), poll_s=0.5), RoomProcess(plan.get("咖啡店"), poll_s=0.5)
    try:
        await asyncio.gather(victim.start(), neighbour.start())
        await asyncio.gather(running(victim), running(neighbour))
        calm_pid = neighbour.proc.pid
        assert neighbour.status()["health"] in ("ok", "degraded") and neighbour.live["persona"] == "小乔"
        assert victim.live["persona"] == "Joe"
        token = (tmp_path / "rooms" / "coffee" / "control.token").read_text().strip()
        assert len(token) > 16 and oct((tmp_path / "rooms" / "coffee" / "control.token").stat().st_mode)[-3:] == "600"

        # 1. a crash in native code: the process dies by a signal
        os.kill(victim.proc.pid, signal.SIGSEGV)
        await running(victim, restarts=1)
        assert victim.last_reason == "killed by SIGSEGV"

        # 2. a stall: the process is alive but its clock does not tick
        frozen = victim.proc.pid
        os.kill(frozen, signal.SIGSTOP)
        await running(victim, restarts=2)
        assert victim.last_reason.startswith("stalled") and not alive(frozen)

        # 3. memory growth past the room's limit
        victim.limits["memory_mb"] = 1.0
        await wait_for(lambda: victim.restarts >= 3, START_S, "a restart for memory")
        assert victim.last_reason == "memory above 1 MB"
        victim.limits["memory_mb"] = 0.0
        await running(victim, restarts=3)
        assert (tmp_path / "rooms" / "coffee" / "room.log.1").is_file()  # the previous run's log is kept

        # the neighbour never noticed: same process, no restart, its clock ticking all along
        before = neighbour.live["ticks"]
        await wait_for(lambda: neighbour.live.get("ticks", 0) > before, 30, "the neighbour still ticking")
        assert neighbour.proc.pid == calm_pid and neighbour.restarts == 0 and neighbour.state == "running"
    finally:
        await asyncio.gather(victim.stop(), neighbour.stop())
    assert victim.state == neighbour.state == "stopped"
    assert not alive(victim.status()["pid"]) and victim.status()["pid"] is None


async def test_a_room_that_keeps_failing_is_left_failed_with_the_reason(tmp_path):
    plan = plan_for(tmp_path, max_restarts=2)
    spec = plan.get("coffee")
    room = RoomProcess(spec, poll_s=0.2, command=[os.sys.executable, "-c", "import sys; sys.exit(3)"])
    try:
        await room.start()
        await wait_for(lambda: room.state == "failed", 60, "the room to be given up")
        st = room.status()
        assert st["state"] == "failed" and st["restarts"] == 2 and st["last_exit"] == "exited with status 3"
        await room.start()  # the operator starts it again (streamer rooms start): a fresh allowance
        await wait_for(lambda: room.restarts == 4 and room.state == "failed", 60, "a second round of restarts")
    finally:
        await room.stop()
    assert room.status()["state"] == "failed"


async def test_a_room_with_an_invalid_profile_never_starts(tmp_path):
    profile = write_profile(tmp_path, '\n[director]\nmax_queue = "lots"\n')
    rooms = tmp_path / "rooms.toml"
    rooms.write_text(f'[supervisor]\ndir = "{tmp_path}"\n[[room]]\nname = "x"\nprofile = "{profile}"\n', encoding="utf-8")
    room = RoomProcess(load_rooms(rooms).get("x"))
    await room.start()
    assert room.proc is None and room.state == "failed" and "director.max_queue" in room.status()["error"]
    await room.stop()
