"""A room as a Ray actor: Ray places it (CPU, GPU fraction, custom resources) on a machine of the
cluster and restarts it if that worker dies; the actor runs and watches the room's process there.

The actor is an async actor: its watcher (``RoomProcess``) polls and restarts on the actor's event
loop, and ``status`` answers from the same loop without waiting on anything slow. Ray is imported
only when the class is first asked for, so nothing in a room's own process (or ``streamer run``)
pulls it in.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from streamer.rooms.model import RoomSpec
from streamer.rooms.process import RoomProcess


class RoomActor:
    """The actor's body (plain Python; ``actor_class()`` makes it a Ray actor)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        fields = {f.name for f in dataclasses.fields(RoomSpec)}
        self.room = RoomProcess(RoomSpec(**{k: v for k, v in spec.items() if k in fields}))
        self.reconstructed = _reconstructed()
        """True when Ray restarted this actor (its worker or machine died): the room must start again."""

    async def start(self) -> dict[str, Any]:
        await self.room.start()
        return await self.status()

    async def stop(self) -> dict[str, Any]:
        await self.room.stop()
        return await self.status()

    async def status(self) -> dict[str, Any]:
        return {**self.room.status(), "reconstructed": self.reconstructed}


def _reconstructed() -> bool:
    try:
        import ray

        return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:  # not inside a Ray actor (tests drive the body directly)
        return False


@functools.cache
def actor_class() -> Any:
    import ray

    return ray.remote(RoomActor)


def actor_options(spec: RoomSpec, namespace: str) -> dict[str, Any]:
    limits = spec.limits
    return {"name": f"room:{spec.name}", "namespace": namespace, "num_cpus": limits["num_cpus"],
            "num_gpus": limits["num_gpus"], "resources": dict(limits["resources"]),
            "max_restarts": -1 if limits["max_restarts"] < 0 else max(1, limits["max_restarts"]),
            "max_task_retries": 0}
