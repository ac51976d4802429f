"""The sink interface and the worker that isolates each sink from the clock.

The clock is the only thing that talks to sinks, and it never waits for one: each sink sits behind a
``SinkWorker`` (its own thread and a small bounded queue). A sink that falls behind loses its oldest
ticks (counted and logged), never the clock's pace nor the other sinks'. A sink that raises is
closed and reported, and the stream goes on with the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tick:
    index: int
    frame: np.ndarray
    """RGB uint8, H x W x 3 (shared: sinks must not modify it)."""
    audio: np.ndarray
    """Mono float32, exactly one frame's worth of samples."""
    speaking: bool
    """True while an utterance plays; idle ticks may be time-stretched by audio sinks."""
    time: float
    """The tick's deadline on the clock's monotonic timeline."""


class SinkUnavailable(RuntimeError):
    """The sink's device does not exist here; the message says how to get one."""


class Sink:
    name = "sink"

    def open(self) -> None:
        """Acquire the device or file. Called in the sink's own thread."""

    def write(self, tick: Tick) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release everything; called exactly once."""

    def status(self) -> dict[str, object]:
        return {}

    def mute(self, muted: bool) -> None:
        """Sinks that carry sound to an audience go silent (the stream itself goes on); others ignore it."""

    def request_reopen(self) -> bool:
        """Ask the sink to reopen its device at its next tick; False when it has no device to reopen."""
        return False


_STOP = object()


class SinkWorker:
    def __init__(self, sink: Sink, max_queue: int = 8) -> None:
        self.sink = sink
        self.dropped = 0
        self.written = 0
        self.failed: str | None = None
        self._q: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"sink-{self.sink.name}", daemon=True)
        self._thread.start()

    def push(self, tick: Tick) -> None:
        """Non-blocking: when full, the oldest queued tick is dropped."""
        if self.failed:
            return
        while True:
            try:
                self._q.put_nowait(tick)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()
                    self.dropped += 1
                    if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                        log.warning("sink is behind, dropping ticks", extra={"sink": self.sink.name, "dropped": self.dropped})
                except queue.Empty:
                    pass

    def _run(self) -> None:
        try:
            self.sink.open()
        except SinkUnavailable as e:
            self.failed = str(e)
            log.warning("%s", e, extra={"sink": self.sink.name})
            self._opened.set()
            return
        except Exception as e:
            self.failed = f"open failed: {e}"
            log.error("sink failed to open", extra={"sink": self.sink.name, "error": str(e)})
            self._opened.set()
            return
        self._opened.set()
        try:
            while True:
                item = self._q.get()
                if item is _STOP:
                    break
                assert isinstance(item, Tick)
                self.sink.write(item)
                self.written += 1
        except Exception as e:
            self.failed = f"write failed: {e}"
            log.exception("sink failed; the stream continues without it", extra={"sink": self.sink.name})
        finally:
            try:
                self.sink.close()
            except Exception:
                log.exception("sink close failed", extra={"sink": self.sink.name})

    def wait_open(self, timeout: float = 5.0) -> bool:
        """Wait until the sink opened (or failed to); True when it is usable."""
        return self._opened.wait(timeout) and self.failed is None

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread is None:
            return
        while True:
            try:
                self._q.put(_STOP, timeout=0.05)
                break
            except queue.Full:
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    pass
            if not self._thread.is_alive():
                break
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("sink did not stop in time", extra={"sink": self.sink.name})
