"""The shared lip-sync deployment on Ray Serve: one replica per GPU (or CPU replicas), batching
frames from every room.

Rooms reach it over HTTP through Serve's proxy on their own machine (``proxy_location =
EveryNode``), so a room process needs no Ray client at all; Serve routes each request to a replica
anywhere in the cluster. ``@serve.batch`` gathers concurrent requests for at most ``batch_wait_ms``
or until ``max_batch_frames`` frames (counted in frames, not requests: a room sends a batch of
frames per request), and the generator runs them in one pass. The batch size and the wait are the
two knobs that trade throughput for first-frame latency: on a GPU, 256 frames and 5 ms keep a
room's first frame well under 100 ms (see benchmarks/bench_rooms.py).

A replica that dies (a crash under load, a lost machine) is replaced by Serve; meanwhile rooms
cover their frames locally (avatars/wav2lip/remote.py), and the new replica learns each room's
face again from the room's next request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from avatars.wav2lip.wire import LipSyncRequest
from streamer.rooms.lipsync import LipSyncModel, answer
from streamer.rooms.model import LipSyncOptions

log = logging.getLogger(__name__)

APP_NAME = "lipsync"


def _frames(requests: list[LipSyncRequest]) -> int:
    return sum(len(r.keys) for r in requests)


@serve.deployment(name="LipSync", max_ongoing_requests=1024, health_check_period_s=2.0, health_check_timeout_s=30.0,
                  graceful_shutdown_timeout_s=2.0)
class LipSyncDeployment:
    def __init__(self, model_options: dict[str, Any], max_batch_frames: int, batch_wait_ms: float) -> None:
        self.model = LipSyncModel(**model_options)
        self.model.warm_up(max_batch_frames)
        self.max_frames = max_batch_frames
        self.infer_batch.set_max_batch_size(max_batch_frames)  # type: ignore[attr-defined]
        self.infer_batch.set_batch_wait_timeout_s(batch_wait_ms / 1000.0)  # type: ignore[attr-defined]

    @serve.batch(max_batch_size=256, batch_wait_timeout_s=0.005, batch_size_fn=_frames)
    async def infer_batch(self, requests: list[LipSyncRequest]) -> list[Any]:
        # in a worker thread: the replica keeps accepting (and batching) requests while the model runs
        return await asyncio.to_thread(self.model.infer_many, [(r.keys, r.mel) for r in requests])

    async def __call__(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"ok": True, **self.model.stats()})
        status, body = await answer(self.model, await request.body(), self.infer_batch, self.max_frames)  # type: ignore[arg-type]
        media = "application/octet-stream" if status == 200 else "application/json"
        return Response(body, status_code=status, media_type=media)


def model_options(opts: LipSyncOptions, checkpoint: str) -> dict[str, Any]:
    return {"checkpoint": checkpoint, "device": opts.device, "precision": opts.precision, "compile": opts.compile,
            "max_faces": opts.max_faces, "max_frames": opts.max_batch_frames, "threads": opts.threads}


def replica_gpus(opts: LipSyncOptions, cluster_gpus: float) -> float:
    if opts.num_gpus is not None:
        return opts.num_gpus
    if opts.device.startswith("cuda") or (opts.device == "auto" and cluster_gpus > 0):
        return 1.0
    return 0.0


def deploy(opts: LipSyncOptions, checkpoint: str, cluster_gpus: float = 0.0) -> None:
    """Start Serve's proxies and the deployment; returns once a replica answers (blocking)."""
    serve.start(proxy_location="EveryNode", http_options={"host": opts.http_host, "port": opts.http_port})
    gpus = replica_gpus(opts, cluster_gpus)
    app = LipSyncDeployment.options(  # type: ignore[attr-defined]
        num_replicas=opts.replicas, ray_actor_options={"num_cpus": opts.num_cpus, "num_gpus": gpus},
    ).bind(model_options(opts, checkpoint), opts.max_batch_frames, opts.batch_wait_ms)
    serve.run(app, name=APP_NAME, route_prefix=opts.route)
    log.info("lip-sync deployment ready", extra={"url": opts.url, "replicas": opts.replicas, "gpus_each": gpus})


def undeploy() -> None:
    serve.shutdown()
