"""The rooms supervisor: one Ray actor per room, one shared lip-sync deployment, one status view.

``start()`` joins (or starts) Ray, asks it for one actor per valid room with the room's resources
(Ray places it on any machine that has them, so adding a machine adds capacity without a config
change), starts the shared lip-sync deployment beside them when enabled, and then keeps the rooms
as the operator wants them: a room actor that Ray restarted (its worker or machine died) is told to
start its room again, and every change of a room's restarts or state is logged here, in one place.

Rooms never wait for each other or for the deployment: a room that Ray cannot place yet shows as
pending, a deployment that is still loading (or failed: bad weights) leaves rooms covering their
frames locally, and a room whose profile is invalid shows its profile error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp

from streamer.rooms.actor import actor_class, actor_options
from streamer.rooms.model import RoomSpec, RoomsPlan

log = logging.getLogger(__name__)

NAMESPACE = "streamer-rooms"


class Supervisor:
    def __init__(self, plan: RoomsPlan, reconcile_s: float = 2.0, status_timeout_s: float = 3.0) -> None:
        self.plan = plan
        self.reconcile_s = reconcile_s
        self.status_timeout_s = status_timeout_s
        self.actors: dict[str, Any] = {}
        self.wanted: dict[str, bool] = {r.name: not r.error for r in plan.rooms}
        self.seen: dict[str, dict[str, Any]] = {}
        opts = plan.options.lipsync
        self.lipsync: dict[str, Any] = {"enabled": opts.enabled, "state": "off" if not opts.enabled else "starting",
                                        "url": opts.url if opts.enabled else "", "error": ""}
        self._tasks: list[asyncio.Task[None]] = []
        self._owns_ray = False
        self._deployed = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await asyncio.to_thread(self._init_ray)
        if self.plan.options.lipsync.enabled:
            self._tasks.append(asyncio.create_task(self._deploy(), name="lipsync-deploy"))
        for spec in self.plan.valid:
            self._create(spec)
        for r in self.plan.rooms:
            if r.error:
                log.error("room not started: invalid profile", extra={"room": r.name, "error": r.error})
        self._tasks.append(asyncio.create_task(self._reconcile(), name="rooms-reconcile"))

    def _init_ray(self) -> None:
        import ray

        if ray.is_initialized():
            return
        # Ray's native crash handler also catches SIGTERM and prints a stack dump before our clean stop
        os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
        o = self.plan.options.ray
        if o.address:
            ray.init(address=o.address, namespace=NAMESPACE, log_to_driver=False)
        else:
            resources: dict[str, Any] = {"num_cpus": o.num_cpus or None, "num_gpus": o.num_gpus}  # fractions are fine
            ray.init(**resources, object_store_memory=o.object_store_mb * 2**20, include_dashboard=o.dashboard,
                     namespace=NAMESPACE, log_to_driver=False)
        self._owns_ray = True

    def _create(self, spec: RoomSpec) -> None:
        actor = actor_class().options(**actor_options(spec, NAMESPACE)).remote(dataclasses.asdict(spec))
        self.actors[spec.name] = actor
        actor.start.remote()  # queued until Ray has placed the actor; never awaited here

    async def aclose(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(self._stop_actor(n) for n in list(self.actors)), return_exceptions=True)
        import ray

        for actor in self.actors.values():
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self.actors.clear()
        if self._deployed:
            from streamer.rooms.serve_app import undeploy

            with contextlib.suppress(Exception):
                await asyncio.to_thread(undeploy)
        if self._owns_ray:
            await asyncio.to_thread(ray.shutdown)

    # ------------------------------------------------------------------ the shared deployment
    async def _deploy(self) -> None:
        opts = self.plan.options.lipsync
        checkpoint, problem = await asyncio.to_thread(self._checkpoint)
        if problem:
            self._lipsync_failed(problem)
            return
        try:
            import ray

            from streamer.rooms.serve_app import deploy

            gpus = float(ray.cluster_resources().get("GPU", 0.0))
            self._deployed = True
            await asyncio.to_thread(deploy, opts, checkpoint, gpus)
        except ImportError as e:
            self._lipsync_failed(f"{e}: pip install 'streamer[rooms,wav2lip]'")
            return
        except Exception as e:  # a replica that cannot start: rooms keep their fallback
            self._lipsync_failed(f"{type(e).__name__}: {e}")
            return
        self.lipsync["state"] = "ready"

    def _checkpoint(self) -> tuple[str, str]:
        """The weights' path, and what is wrong with it when this machine can tell (local Ray only:
        on a cluster the file must be where the replicas run, not here)."""
        from avatars.renderers import default_checkpoint
        from avatars.wav2lip.checkpoint import WEIGHTS_HINT

        opts = self.plan.options.lipsync
        path = Path(opts.checkpoint).expanduser() if opts.checkpoint else default_checkpoint()
        if not self.plan.options.ray.address and not path.is_file():
            return str(path), f"Wav2Lip weights not found: {WEIGHTS_HINT.format(path=path)}"
        return str(path), ""

    def _lipsync_failed(self, error: str) -> None:
        self.lipsync.update(state="failed", error=error)
        log.error("lip-sync deployment unavailable; rooms use their fallback", extra={"error": error})

    async def lipsync_status(self) -> dict[str, Any]:
        out = dict(self.lipsync)
        if out["state"] == "ready":
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as s, \
                        s.get(out["url"]) as r:
                    out["replica"] = await r.json() if r.status == 200 else {"error": f"HTTP {r.status}"}
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
                out["replica"] = {"error": f"{type(e).__name__}: {e}"}
        return out

    # ------------------------------------------------------------------ rooms
    async def room_status(self, name: str) -> dict[str, Any]:
        spec = self.plan.get(name)
        if spec.error:
            return {"name": name, "state": "invalid", "health": "invalid", "restarts": 0, "error": spec.error}
        actor = self.actors.get(name)
        if actor is None:
            return {"name": name, "state": "lost", "health": "lost", "restarts": 0,
                    "error": "its actor is gone; start it again"}
        try:
            status = await asyncio.wait_for(_await(actor.status.remote()), self.status_timeout_s)
        except asyncio.TimeoutError:
            last = self.seen.get(name, {})
            if last.get("state") not in (None, "pending"):
                return {**last, "health": "unresponsive"}
            return {"name": name, "state": "pending", "health": "pending", "restarts": 0,
                    "error": f"waiting for Ray to place it ({_needs(spec)})"}
        except Exception as e:  # the actor died and Ray is restarting it, or gave up
            return {"name": name, "state": "lost", "health": "lost", "restarts": self.seen.get(name, {}).get("restarts", 0),
                    "error": f"{type(e).__name__}: {str(e)[:300]}"}
        return dict(status)

    async def status(self) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.room_status(r.name) for r in self.plan.rooms)))

    async def stop_room(self, name: str) -> dict[str, Any]:
        self.plan.get(name)
        self.wanted[name] = False
        await self._stop_actor(name)
        return await self.room_status(name)

    async def start_room(self, name: str) -> dict[str, Any]:
        spec = self.plan.get(name)
        if spec.error:
            return await self.room_status(name)
        self.wanted[name] = True
        actor = self.actors.get(name)
        if actor is None or self.seen.get(name, {}).get("state") == "lost":
            self._create(spec)
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_await(actor.start.remote()), 10.0)
        return await self.room_status(name)

    async def _stop_actor(self, name: str) -> None:
        actor = self.actors.get(name)
        if actor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_await(actor.stop.remote()), 20.0)

    async def _reconcile(self) -> None:
        while True:
            for st in await self.status():
                self._note(st)
                name = st["name"]
                if self.wanted.get(name) and st.get("state") == "idle" and st.get("reconstructed") and name in self.actors:
                    log.warning("room actor restarted by Ray; starting its room again", extra={"room": name})
                    self.actors[name].start.remote()
            await asyncio.sleep(self.reconcile_s)

    def _note(self, st: dict[str, Any]) -> None:
        """Log what changed for a room since the last look (one place to read a deployment's history)."""
        name = st["name"]
        before = self.seen.get(name, {})
        if st.get("restarts", 0) > before.get("restarts", 0):
            log.warning("room restarted", extra={"room": name, "restarts": st["restarts"], "reason": st.get("last_reason"),
                                                 "exit": st.get("last_exit")})
        if st.get("state") != before.get("state"):
            level = logging.ERROR if st.get("state") in ("failed", "lost") else logging.INFO
            log.log(level, "room state", extra={"room": name, "state": st.get("state"), "error": st.get("error") or
                                                st.get("last_reason")})
        self.seen[name] = st


def _needs(spec: RoomSpec) -> str:
    parts = [f"{spec.limits['num_cpus']:g} CPU"]
    if spec.limits["num_gpus"]:
        parts.append(f"{spec.limits['num_gpus']:g} GPU")
    parts += [f"{v:g} {k}" for k, v in spec.limits["resources"].items()]
    return ", ".join(parts)


async def _await(ref: Any) -> Any:
    return await ref
