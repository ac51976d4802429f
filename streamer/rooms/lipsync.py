"""One replica's share of the lip-sync work: the Wav2Lip generator serving many rooms at once.

A room's portrait gives the same face input on every frame, so the face encoder runs once per face
key and its features (the decoder's skip connections) stay cached here, in a bounded LRU. A batch
is whatever frames the rooms sent within the batching window: each frame is decoded against its
own room's face features (gathered by index, so one batch mixes any number of rooms), and the
answer is split back per request. Nothing here knows about Ray or HTTP: the Serve deployment
(``serve_app``) and the tests call it directly.

Precision and speed follow the local renderer: float16 weights on CUDA, bfloat16 autocast on CPUs
with native bf16, float32 elsewhere. ``torch.compile`` is on by default only on CUDA (on a CPU the
compile time outweighs its gain); compiled batches are padded to a few fixed sizes so the graph is
compiled once per size at start-up, never in the middle of a live batch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from avatars.wav2lip.wire import LipSyncRequest, WireError, decode_request, encode_missing, encode_patches

log = logging.getLogger(__name__)

BUCKETS = (8, 16, 32, 64, 128, 256, 512)

try:  # the official post-processing (BGR out, x255 truncated), where the local renderer defines it
    from avatars.wav2lip.official import faces_from_output  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    faces_from_output = None  # type: ignore[assignment]


def to_patches(out: Any) -> np.ndarray:
    """The generator's (N, 3, 96, 96) output -> (N, 96, 96, 3) uint8 RGB mouth patches, exactly as the
    room's local renderer converts it (so a patch is the same whichever side rendered it)."""
    if faces_from_output is not None:
        return np.asarray(faces_from_output(out.float().cpu().numpy()))
    return np.asarray(out.float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).contiguous().cpu().numpy())


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_precision(device: str, precision: str = "auto") -> str:
    """float16 on GPUs, bfloat16 on CPUs with native bf16 (AMX, AVX512-BF16), else float32: where bf16 is
    emulated it runs 3x slower than float32 (bench_wav2lip: 4.7 vs 14.0 frames/s on a Xeon without it)."""
    from avatars.wav2lip.backends import native_bf16

    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "float16"
    return "bfloat16" if device == "cpu" and native_bf16() else "float32"


class MissingFaces(Exception):
    """Frames name faces this replica has not cached (evicted, or a fresh replica)."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"unknown face keys: {', '.join(keys)}")
        self.keys = keys


def bucket(n: int, limit: int) -> int:
    for size in BUCKETS:
        if n <= size <= max(limit, BUCKETS[0]):
            return size
    return n


class LipSyncModel:
    def __init__(self, checkpoint: str | Path, device: str = "auto", precision: str = "auto",
                 compile: str = "auto", max_faces: int = 512, max_frames: int = 256, threads: int = 0) -> None:
        import torch

        from avatars.wav2lip.checkpoint import load_wav2lip

        self.device = pick_device(device)
        self.precision = pick_precision(self.device, precision)
        if self.device == "cpu":  # Ray sets OMP_NUM_THREADS to the actor's CPUs (often 1): say what we want
            torch.set_num_threads(threads or os.cpu_count() or 1)
        self.max_faces = max_faces
        self.max_frames = max_frames
        model = load_wav2lip(checkpoint, self.device)
        if self.precision == "float16":
            model = model.half()
        self.channels_last = self.device == "cpu" and self.precision == "bfloat16"
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.compiled = compile == "on" or (compile == "auto" and self.device.startswith("cuda"))
        self._decode = torch.compile(model.decode, dynamic=False) if self.compiled else model.decode
        self._faces: collections.OrderedDict[str, list[Any]] = collections.OrderedDict()
        self._lock = threading.Lock()
        """Guards the face cache."""
        self._run = threading.Lock()
        """One forward pass at a time: concurrent passes only fight over the same cores."""
        self.counters = {"batches": 0, "frames": 0, "requests": 0, "faces_encoded": 0, "faces_evicted": 0,
                         "infer_s": 0.0}
        self.started = time.monotonic()
        log.info("lip-sync model ready", extra={"device": self.device, "precision": self.precision,
                                                "compiled": self.compiled})

    # ------------------------------------------------------------------ tensors
    def _tensor(self, array: np.ndarray) -> Any:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        if self.precision == "float16":
            t = t.half()
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _inference(self) -> contextlib.ExitStack:
        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.precision == "bfloat16":
            stack.enter_context(torch.autocast(self.device if self.device != "mps" else "cpu", dtype=torch.bfloat16))
        return stack

    # ------------------------------------------------------------------ faces
    def missing(self, keys: list[str]) -> list[str]:
        with self._lock:
            return sorted({k for k in keys if k not in self._faces})

    def add_faces(self, faces: dict[str, np.ndarray]) -> None:
        """Encode and cache faces ((6, 96, 96) uint8 each); the least recently used are evicted."""
        new = {k: f for k, f in faces.items() if k not in self._faces}
        if not new:
            return
        batch = np.stack([f.astype(np.float32) / 255.0 for f in new.values()])
        with self._run, self._inference():
            feats = self.model.encode_face(self._tensor(batch))
        with self._lock:
            for i, key in enumerate(new):
                self._faces[key] = [level[i:i + 1] for level in feats]
            self.counters["faces_encoded"] += len(new)
            while len(self._faces) > self.max_faces:
                self._faces.popitem(last=False)
                self.counters["faces_evicted"] += 1

    # ------------------------------------------------------------------ frames
    def infer_many(self, requests: list[tuple[list[str], np.ndarray]]) -> list[np.ndarray | MissingFaces]:
        """Each request (face keys, (n, 80, 16) mel windows) -> (n, 96, 96, 3) uint8 mouth patches,
        or MissingFaces for a request naming a face no longer cached. One forward pass per
        ``max_frames`` frames, whichever rooms they come from."""
        results: list[np.ndarray | MissingFaces] = []
        live: list[int] = []
        feats: dict[str, list[Any]] = {}
        with self._lock:  # hold the features now: an eviction meanwhile cannot pull them away
            for i, (keys, _mel) in enumerate(requests):
                gone = sorted({k for k in keys if k not in self._faces})
                results.append(MissingFaces(gone) if gone else np.zeros(0, np.uint8))
                if not gone:
                    live.append(i)
                    for k in set(keys):
                        self._faces.move_to_end(k)
                        feats[k] = self._faces[k]
        if live:
            keys = [k for i in live for k in requests[i][0]]
            mel = np.concatenate([requests[i][1] for i in live])
            out = np.concatenate([self._decode_frames(keys[s:s + self.max_frames], mel[s:s + self.max_frames], feats)
                                  for s in range(0, len(keys), self.max_frames)])
            at = 0
            for i in live:
                n = len(requests[i][0])
                results[i] = out[at:at + n]
                at += n
        self.counters["requests"] += len(requests)
        return results

    def _decode_frames(self, keys: list[str], mel: np.ndarray, feats: dict[str, list[Any]]) -> np.ndarray:
        import torch

        t0 = time.perf_counter()
        n = len(keys)
        size = bucket(n, self.max_frames) if self.compiled else n
        if size > n:  # pad to a compiled size with copies of the last frame
            keys = keys + [keys[-1]] * (size - n)
            mel = np.concatenate([mel, np.repeat(mel[-1:], size - n, axis=0)])
        unique = list(dict.fromkeys(keys))
        position = {k: i for i, k in enumerate(unique)}
        index = torch.tensor([position[k] for k in keys], device=self.device)
        with self._run, self._inference():
            stacked = [torch.cat(level) for level in zip(*(feats[k] for k in unique), strict=True)]
            skips = [level.index_select(0, index) for level in stacked]
            out = self._decode(self._tensor(mel[:, None].astype(np.float32)), skips)
            patches = to_patches(out[:n])
        self.counters["batches"] += 1
        self.counters["frames"] += n
        self.counters["infer_s"] += time.perf_counter() - t0
        return patches

    def warm_up(self, limit: int | None = None) -> None:
        """Run the batch sizes rooms will send once, so compilation (and, on a CPU, kernel selection)
        happens before the first room speaks, not in its first sentence."""
        rng = np.random.default_rng(0)
        key = "warm-up"
        before = dict(self.counters)
        self.add_faces({key: rng.integers(0, 255, (6, 96, 96), dtype=np.uint8)})
        with self._lock:
            feats = {key: self._faces.pop(key)}
        # compiled: every padded size once; eager: the sizes rooms send, so kernels are built before them
        sizes = [b for b in BUCKETS if b <= (limit or self.max_frames)] if self.compiled else [1, 10, 16]
        for size in sizes:
            self._decode_frames([key] * size, rng.uniform(-4, 4, (size, 80, 16)).astype(np.float32), feats)
        self.counters = before

    def stats(self) -> dict[str, Any]:
        c = dict(self.counters)
        out: dict[str, Any] = {**c, "infer_s": round(c["infer_s"], 3), "faces_cached": len(self._faces),
                               "device": self.device, "precision": self.precision, "compiled": self.compiled,
                               "mean_batch_frames": round(c["frames"] / c["batches"], 1) if c["batches"] else 0.0}
        if self.device == "cuda":
            import torch

            out["gpu_memory_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
            out["gpu_peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return out


Infer = Callable[[LipSyncRequest], Awaitable["np.ndarray | MissingFaces"]]


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"ok": False, "error": message}).encode()


async def answer(model: LipSyncModel, body: bytes, infer: Infer, max_frames: int = 512) -> tuple[int, bytes]:
    """One HTTP request's answer (status, body): the same for the Serve deployment and a bare server.

    ``infer`` runs the request's frames, batched with other rooms' by the caller."""
    try:
        request = decode_request(body)
    except WireError as e:
        return _error(400, str(e))
    if len(request.keys) > max_frames:
        return _error(413, f"at most {max_frames} frames per request, got {len(request.keys)}")
    if request.faces:
        await asyncio.to_thread(model.add_faces, request.faces)
    missing = model.missing(request.keys)
    if missing:
        return 409, encode_missing(missing)
    result = await infer(request)
    if isinstance(result, MissingFaces):
        return 409, encode_missing(result.keys)
    return 200, encode_patches(result)
