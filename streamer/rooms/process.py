"""One room as one operating-system process, watched and restarted.

A room runs as ``streamer run`` in its own process: a crash in native code (a codec, a driver, the
GPU runtime), a stall or a leak takes down that room only, and the process never imports Ray. This
watcher lives next to it (inside the room's Ray actor, or directly in tests) and:

- starts it in the room's folder with the room's ports, paths and control token in its environment,
  in a session of its own (Ctrl-C at the supervisor's terminal does not hit rooms directly) and
  tied to the watcher's life (Linux: the kernel sends it SIGTERM if the watcher dies);
- reads its control API (``/api/status``) every ``poll_s``: fps, queue, ticks;
- restarts it when it exits, when its clock has not ticked (or it has not answered) for ``stall_s``,
  when it has not come up within ``start_timeout_s``, or when its memory passes ``memory_mb``,
  with a growing pause after quick failures, and gives up (state ``failed``) after ``max_restarts``
  restarts within ``restart_window_s``.

The log of the current run is ``room.log`` in the room's folder; the previous run's is ``room.log.1``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from streamer.rooms.model import RoomSpec

log = logging.getLogger(__name__)

QUICK_FAILURE_S = 60.0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def room_token(path: Path) -> str:
    """The room's control token: kept in its folder (owner-only) so it survives restarts."""
    try:
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return 0.0


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class RoomProcess:
    def __init__(self, spec: RoomSpec, poll_s: float = 2.0, command: list[str] | None = None) -> None:
        self.spec = spec
        self.poll_s = poll_s
        self.command = command or spec.command()
        self.limits = spec.limits
        self.state = "idle"
        """idle | starting | running | restarting | stopped | failed"""
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._recent_restarts: collections.deque[float] = collections.deque()
        self.last_exit = ""
        self.last_reason = ""
        self.live: dict[str, Any] = {}
        """The room's last /api/status answer."""
        self.started_at = 0.0
        self._last_progress = 0.0
        self._last_ticks = -1
        self._answered = False
        self._quick_failures = 0
        self._watch: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._token = ""

    # ------------------------------------------------------------------ control
    async def start(self) -> None:
        if self._watch is not None and not self._watch.done():
            return
        if self.spec.error:
            self.state, self.last_reason = "failed", self.spec.error
            return
        self._recent_restarts.clear()
        self._quick_failures = 0
        if self._session is not None:  # a room left failed, started again
            await self._session.close()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max(1.0, self.poll_s * 1.5)))
        await self._spawn()
        self._watch = asyncio.create_task(self._watch_loop(), name=f"room-{self.spec.name}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the room (SIGTERM, then SIGKILL after ``timeout``); it is not restarted."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        await self._terminate(timeout)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.state != "failed":
            self.state = "stopped"

    # ------------------------------------------------------------------ the process
    def _prepare(self) -> tuple[str, BinaryIO]:
        """The room's folder, its token, and a fresh log (the previous run's kept as room.log.1)."""
        Path(self.spec.cwd).mkdir(parents=True, exist_ok=True)
        token = room_token(Path(self.spec.token_file))
        logfile = Path(self.spec.log_file)
        if logfile.exists():
            logfile.replace(logfile.with_name(logfile.name + ".1"))
        return token, open(logfile, "ab")  # handed to the child, closed after the spawn

    async def _spawn(self) -> None:
        spec = self.spec
        self._token, out = await asyncio.to_thread(self._prepare)
        env = {**os.environ, **spec.env, "STREAMER_CONTROL_TOKEN": self._token, "PYTHONUNBUFFERED": "1"}
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, cwd=spec.cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            out.close()
        self.state = "starting"
        self.started_at = self._last_progress = time.monotonic()
        self._last_ticks, self._answered, self.live = -1, False, {}
        log.info("room started", extra={"room": spec.name, "pid": self.proc.pid, "port": spec.control_port})

    async def _terminate(self, timeout: float) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("room did not stop in time; killing it", extra={"room": self.spec.name, "pid": proc.pid})
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    # ------------------------------------------------------------------ watching
    async def _watch_loop(self) -> None:
        while self.state != "failed":
            try:
                await self._watch_once()
            except Exception:  # the watcher must outlive any surprise (a /proc read, a signal race)
                log.exception("room watcher error; watching on", extra={"room": self.spec.name})
                await asyncio.sleep(self.poll_s)

    async def _watch_once(self) -> None:
        assert self.proc is not None
        while True:
            exited = asyncio.ensure_future(self.proc.wait())
            await asyncio.wait({exited}, timeout=self.poll_s)
            if exited.done():
                await self._restart(describe_exit(self.proc.returncode or 0), kill=False)
                if self.state == "failed":
                    return
                continue
            exited.cancel()
            await self._poll()
            reason = self._unhealthy()
            if reason:
                await self._restart(reason, kill=True)
                if self.state == "failed":
                    return

    async def _poll(self) -> None:
        assert self._session is not None
        url = f"http://{self.spec.control_host}:{self.spec.control_port}/api/status"
        try:
            async with self._session.get(url, headers={"Authorization": f"Bearer {self._token}"}) as r:
                body = await r.json() if r.status == 200 else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            body = {}
        if not body:
            return
        self.live = body
        self._answered = True
        ticks = int(body.get("ticks", 0))
        if ticks > self._last_ticks:
            self._last_ticks, self._last_progress = ticks, time.monotonic()
            self.state = "running"

    def _unhealthy(self) -> str:
        now = time.monotonic()
        memory = float(self.limits.get("memory_mb") or 0)
        if memory and self.proc is not None and rss_mb(self.proc.pid) > memory:
            return f"memory above {memory:g} MB"
        if not self._answered:
            timeout = float(self.limits.get("start_timeout_s", 120))
            return f"not up within {timeout:g} s" if now - self.started_at > timeout else ""
        stall = float(self.limits.get("stall_s", 15))
        return f"stalled: no clock tick for {stall:g} s" if now - self._last_progress > stall else ""

    async def _restart(self, reason: str, kill: bool) -> None:
        name = self.spec.name
        if kill:
            await self._kill()
        assert self.proc is not None
        ran_s = time.monotonic() - self.started_at
        self.last_exit = describe_exit(self.proc.returncode or 0)
        self.last_reason = reason
        now = time.monotonic()
        window = float(self.limits.get("restart_window_s", 3600))
        while self._recent_restarts and now - self._recent_restarts[0] > window:
            self._recent_restarts.popleft()
        allowed = int(self.limits.get("max_restarts", 10))
        if 0 <= allowed <= len(self._recent_restarts):
            self.state = "failed"
            log.error("room failed too often; leaving it stopped", extra={"room": name, "reason": reason,
                                                                         "restarts": self.restarts})
            return
        self._quick_failures = self._quick_failures + 1 if ran_s < QUICK_FAILURE_S else 0
        pause = min(30.0, 0.5 * 2 ** max(0, self._quick_failures - 1)) if self._quick_failures else 0.0
        log.warning("room down; restarting", extra={"room": name, "reason": reason, "exit": self.last_exit,
                                                     "pause_s": pause})
        self.state = "restarting"
        await asyncio.sleep(pause)
        self.restarts += 1
        self._recent_restarts.append(time.monotonic())
        try:
            await self._spawn()
        except OSError as e:  # the interpreter or the room folder vanished: nothing to retry into
            self.state, self.last_reason = "failed", f"cannot start the room process: {e}"
            log.error("room cannot be started", extra={"room": name, "error": str(e)})

    # ------------------------------------------------------------------ reporting
    def status(self) -> dict[str, Any]:
        live = self.live
        fps = float(live.get("fps", 0.0) or 0.0)
        running = self.state == "running"
        health = ("ok" if fps >= 0.9 * self.spec.fps else "degraded") if running else self.state
        pid = self.proc.pid if self.proc is not None and self.proc.returncode is None else None
        return {
            "name": self.spec.name, "state": self.state, "health": health, "pid": pid,
            "node": os.uname().nodename, "restarts": self.restarts, "last_exit": self.last_exit,
            "last_reason": self.last_reason, "fps": round(fps, 2) if running else 0.0, "ticks": live.get("ticks"),
            "queue": live.get("queue"), "speaking": live.get("speaking"), "lipsync": live.get("renderer"),
            "uptime_s": round(time.monotonic() - self.started_at, 1) if pid else 0.0,
            "rss_mb": round(rss_mb(pid), 1) if pid else 0.0,
            "control": f"http://{self.spec.control_host}:{self.spec.control_port}/api/status",
            "token_file": self.spec.token_file, "log": self.spec.log_file, "error": self.spec.error,
        }
