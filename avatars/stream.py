"""Rendering a sentence ahead of the clock, without the clock ever waiting for it.

A ``RenderStream`` is one sentence's mouth poses. The speaker creates it with the audio and the tick
where the sentence will start playing (so an idle-video avatar renders against the very frames it
will be shown on; passed per sentence, never through a shared attribute), hands it to the
``RenderWorker`` and awaits ``first_batch`` (a ``concurrent.futures.Future``: wrap it with
``asyncio.wrap_future``, no polling). The worker renders a small first batch, so playback can start
within a fraction of a second, then full batches while it plays.

The clock reads ``pose(i)`` for each frame. It never blocks: a frame that is not rendered yet gets
the procedural pose for that frame (the renderer draws a procedural mouth for it) and is counted in
``late_frames``; ``behind(i)`` says whether frame i is such a frame. A render that fails
mid-sentence (an exception in the model, the GPU out of memory) is logged once by the worker and the
procedural poses cover the rest of the sentence; the stream carries on.

``ready(now)`` is the clock's start condition: the first batch is there and, at the rate measured
so far, the rest will be rendered before the playhead needs it, or ``max_wait_s`` has passed since
the first batch (a quarter second by default: on a CPU too slow for real time, an answer that starts
now with some procedural frames beats one that starts a second later; the late frames are counted).
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from avatars.base import MouthPose, Renderer

log = logging.getLogger(__name__)

Listener = Callable[[list[MouthPose]], None]


class RenderStream:
    def __init__(self, renderer: Renderer, pcm: np.ndarray, rate: int, start_tick: int = 0, first_batch: int = 4,
                 batch: int | None = None, max_wait_s: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        from avatars.procedural import ProceduralRenderer

        self.renderer = renderer
        self.pcm, self.rate, self.start_tick = pcm, rate, start_tick
        caps = renderer.capabilities
        self.first_batch = max(1, first_batch) if caps.batched else 0
        self.batch = batch or caps.batch
        self.max_wait_s = max_wait_s
        self._clock = clock
        self.fallback = ProceduralRenderer.analyze(renderer, pcm, rate)  # type: ignore[arg-type]
        """The procedural pose of every frame: what a frame shows when its render is late."""
        self.frames = len(self.fallback)
        self._poses: list[MouthPose] = []
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._late: set[int] = set()
        self._first_at: float | None = None
        self._rate_fps = 0.0
        self.error: BaseException | None = None
        self.first_batch_done: concurrent.futures.Future[int] = concurrent.futures.Future()
        """Resolves to the number of frames rendered once the first batch is in (0: nothing will be)."""
        self.done: concurrent.futures.Future[int] = concurrent.futures.Future()
        """Resolves to the number of frames rendered when the stream stops (complete, cancelled or failed)."""
        if self.frames == 0:
            self._finish()

    # ------------------------------------------------------------------ the worker's side
    def run(self, on_batch: Listener | None = None) -> None:
        """Render every batch (blocking; a worker thread calls it). ``on_batch`` gets each batch too."""
        if self.done.done():
            return
        sizes = itertools.chain([self.first_batch] if self.first_batch else [], itertools.repeat(self.batch or self.frames))
        started = self._clock()
        try:
            for batch in self.renderer.render_batches(self.pcm, self.rate, self.start_tick, sizes, self.fallback):
                if self._cancelled.is_set():
                    break
                with self._lock:
                    self._poses.extend(batch)
                    have = len(self._poses)
                now = self._clock()
                self._rate_fps = have / max(1e-6, now - started)
                if on_batch is not None:
                    on_batch(batch)
                if self._first_at is None:
                    self._first_at = now
                    _resolve(self.first_batch_done, have)
        except Exception as e:  # the procedural poses cover the rest; the worker logs it
            self.error = e
            raise
        finally:
            self._finish()

    def _finish(self) -> None:
        with self._lock:
            have = len(self._poses)
        _resolve(self.first_batch_done, have)
        _resolve(self.done, have)

    def cancel(self) -> None:
        """Stop rendering after the current batch (an interrupt: these frames will never play)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # ------------------------------------------------------------------ the clock's side
    @property
    def rendered(self) -> int:
        with self._lock:
            return len(self._poses)

    def pose(self, i: int) -> MouthPose:
        """Frame i's pose now: rendered if it is, else the procedural one (counted late). Never blocks."""
        with self._lock:
            if i < len(self._poses):
                return self._poses[i]
            self._late.add(i)
        return self.fallback[i]

    def behind(self, i: int) -> bool:
        return self.rendered <= i

    @property
    def late_frames(self) -> int:
        """Frames shown with the procedural mouth because their render was not ready."""
        with self._lock:
            return len(self._late)

    def ready(self, now: float | None = None) -> bool:
        """Start playing now? (First batch in, and the rest will keep ahead, or waiting will not help.)"""
        if self.done.done():
            return True
        if self._first_at is None:
            return False
        have, need = self.rendered, self.frames
        fps = self.renderer.fps
        if self._rate_fps >= fps:
            return True
        # frames the playhead would catch up with: render at rate r while playing at fps
        needed = need * (1.0 - self._rate_fps / fps)
        now = self._clock() if now is None else now
        return have >= needed or now - self._first_at >= self.max_wait_s


def _resolve(fut: concurrent.futures.Future[int], value: int) -> None:
    if not fut.done():
        fut.set_result(value)


class RenderWorker:
    """One thread renders streams in the order they were submitted: one model, whole cores, and the
    next sentence renders while this one plays. The owner calls ``start`` and ``close``; ``cancel``
    stops everything submitted so far (an interrupt)."""

    def __init__(self, name: str = "render") -> None:
        self.name = name
        self._queue: collections.deque[tuple[RenderStream, Listener | None]] = collections.deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._current: RenderStream | None = None
        self.failures: collections.Counter[str] = collections.Counter()
        """Render failures by cause; each cause is logged once, with its traceback."""

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def submit(self, stream: RenderStream, on_batch: Listener | None = None) -> RenderStream:
        with self._wake:
            if self._closed:
                stream.cancel()
                stream._finish()
                return stream
            self._queue.append((stream, on_batch))
            self._wake.notify()
        return stream

    def cancel(self) -> None:
        with self._wake:
            pending = list(self._queue)
            self._queue.clear()
            current = self._current
        for stream, _ in pending:
            stream.cancel()
            stream._finish()
        if current is not None:
            current.cancel()

    def close(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self.cancel()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed and not self._queue:
                    return
                stream, on_batch = self._queue.popleft()
                self._current = stream
            try:
                stream.run(on_batch)
            except Exception as e:
                self._failed(e)
            finally:
                with self._wake:
                    self._current = None
                del stream, on_batch  # not held while waiting for the next one: a played sentence is freed

    def _failed(self, e: BaseException) -> None:
        cause = f"{type(e).__name__}: {e}"
        self.failures[cause] += 1
        if self.failures[cause] == 1:
            log.error("lip-sync render failed; the procedural mouth covers the sentence",
                      exc_info=e, extra={"cause": cause})
