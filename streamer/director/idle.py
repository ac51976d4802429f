"""Idle content: what the host says when nobody asks anything, so the stream is never quiet.

Timed announcements come first when due (a flash-sale countdown every few minutes, a follow
reminder), then the current product's script, line by line. Lines carry live values ({name},
{price}, {stock}, {viewers}, {time_left}); the script cursor only advances when a line was heard to
the end, so an interrupted line is said again next time rather than skipped.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from streamer.persona.catalogue import Catalogue


@dataclass
class Announcement:
    text: str
    every_s: float
    until: dt.datetime | None = None
    last_at: float = float("-inf")


def _time_left(until: dt.datetime | None, now: dt.datetime) -> str:
    if until is None:
        return "a short time"
    left = int((until - now).total_seconds())
    if left <= 0:
        return "no time"
    if left >= 3600:
        return f"{left // 3600} hours and {left % 3600 // 60} minutes"
    if left >= 120:
        return f"{left // 60} minutes"
    return f"{left} seconds"


class IdleScheduler:
    def __init__(self, catalogue: Catalogue, host_name: str, announcements: list[Announcement] | None = None,
                 time_fn: Callable[[], float] = time.monotonic,
                 clock_fn: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone()) -> None:
        self.catalogue = catalogue
        self.host_name = host_name
        self.announcements = announcements or []
        self.time_fn = time_fn
        self.clock_fn = clock_fn
        self.cursor = 0
        self.viewers: int | None = None
        self._greeting = ""

    def values(self, until: dt.datetime | None = None) -> dict[str, str]:
        v = self.catalogue.product.values(self.catalogue.currency_word, self.host_name)
        v["viewers"] = str(self.viewers) if self.viewers else "everyone"
        v["time_left"] = _time_left(until, self.clock_fn())
        return v

    def greet(self, text: str) -> None:
        """Say ``text`` (a persona's greeting) as the next idle line, once."""
        self._greeting = text.strip()

    def next_line(self) -> tuple[str, str]:
        """(text, key) of the next idle line; pass the key to ``heard`` once it was played."""
        if self._greeting:
            return _format(self._greeting, self.values()), "greeting:0"
        now = self.time_fn()
        wall = self.clock_fn()
        for i, a in enumerate(self.announcements):
            active = a.until is None or wall < a.until
            if active and now - a.last_at >= a.every_s:
                return _format(a.text, self.values(a.until)), f"announcement:{i}"
        product = self.catalogue.product
        lines = product.idle + product.selling_points or ["Ask me anything about the {name}."]
        return _format(lines[self.cursor % len(lines)], self.values()), f"script:{self.cursor}"

    def heard(self, key: str, completed: bool) -> None:
        """A line was said; only one heard to the end counts (an interrupted one comes again)."""
        kind, _, index = key.partition(":")
        if not completed:
            return
        if kind == "greeting":
            self._greeting = ""
        elif kind == "announcement":
            self.announcements[int(index)].last_at = self.time_fn()
        elif kind == "script" and int(index) == self.cursor:
            self.cursor += 1


def _format(template: str, values: dict[str, str]) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template
