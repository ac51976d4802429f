"""Reopening a sink whose device or connection went away, with backoff, inside the sink's own thread.

A sink that loses its device (a camera unplugged, an RTMP server that dropped us, a sound card that
vanished) must not stop the stream nor touch the other sinks: it marks itself down, counts the ticks
it could not deliver, and tries again after a delay that doubles up to a ceiling. Every attempt
happens in the sink's worker thread, so the clock never waits for it. One log line per outage and
one when it is back, not one per tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Reopener:
    def __init__(self, sink_name: str, first_delay_s: float = 1.0, max_delay_s: float = 30.0,
                 time_fn: Callable[[], float] = time.monotonic) -> None:
        self.sink_name = sink_name
        self.first_delay_s, self.max_delay_s = first_delay_s, max_delay_s
        self.time_fn = time_fn
        self.state = "closed"
        self.error = ""
        self.outages = 0
        self.reopens = 0
        self.skipped = 0
        """Ticks not delivered because the device was down."""
        self._delay = first_delay_s
        self._next_try = 0.0
        self._requested = threading.Event()

    def up(self) -> None:
        if self.state in ("down", "reopening"):
            self.reopens += 1
            log.info("sink is back", extra={"sink": self.sink_name, "skipped": self.skipped})
        self.state, self.error = "live", ""
        self._delay = self.first_delay_s

    def down(self, error: BaseException | str) -> None:
        """The device failed: close it (the caller does), retry after the current backoff."""
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        if self.state != "down":
            self.outages += 1
            log.warning("sink lost its device; retrying with backoff",
                        extra={"sink": self.sink_name, "error": text, "retry_s": self._delay})
        self.state, self.error = "down", text
        self._next_try = self.time_fn() + self._delay
        self._delay = min(self._delay * 2, self.max_delay_s)

    def request(self) -> None:
        """An operator asked for a reopen now (any thread)."""
        self._requested.set()

    def deliver(self, send: Callable[[], None], open_device: Callable[[], None],
                close_device: Callable[[], None]) -> bool:
        """Send one tick through the device, (re)opening it when due. False when the tick was skipped."""
        if self._requested.is_set():
            self._requested.clear()
            self._quietly(close_device)
            self.state, self._next_try, self._delay = "reopening", 0.0, self.first_delay_s
        if self.state != "live":
            if self.time_fn() < self._next_try:
                self.skipped += 1
                return False
            try:
                open_device()
            except Exception as e:
                self._quietly(close_device)
                self.down(e)
                self.skipped += 1
                return False
            self.up()
        try:
            send()
        except Exception as e:
            self._quietly(close_device)
            self.down(e)
            self.skipped += 1
            return False
        return True

    def _quietly(self, close_device: Callable[[], None]) -> None:
        try:
            close_device()
        except Exception as e:
            log.debug("closing a failed device raised", extra={"sink": self.sink_name, "error": str(e)})

    def status(self) -> dict[str, object]:
        return {"state": self.state, "error": self.error, "outages": self.outages, "reopens": self.reopens,
                "skipped": self.skipped}
