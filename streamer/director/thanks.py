"""Thanks in batches: gifts, memberships, follows, likes and entries are collected for ``batch_s`` and thanked
in one line each kind, not one line per viewer. A batch worth at least ``paid_threshold_cny`` (and any
membership) is thanked in the paid class, ahead of chat; cheaper ones wait with the chat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamer.director.queue import DANMAKU, PAID, event_view
from streamer.events import ChatEvent, EventKind
from streamer.persona.base import Turn

BATCHED = (EventKind.GIFT, EventKind.FOLLOW, EventKind.LIKE, EventKind.ENTER, EventKind.MEMBERSHIP)


@dataclass
class ThanksBatcher:
    batch_s: float = 3.0
    paid_threshold_cny: float = 1.0
    max_events: int = 200
    """Names kept per batch (a like storm is thanked by count, not by every name)."""
    _events: dict[EventKind, list[ChatEvent]] = field(default_factory=dict)
    _since: dict[EventKind, float] = field(default_factory=dict)
    _others: dict[EventKind, int] = field(default_factory=dict)

    def add(self, event: ChatEvent, now: float) -> None:
        batch = self._events.setdefault(event.kind, [])
        self._since.setdefault(event.kind, now)
        if len(batch) < self.max_events:
            batch.append(event)
        else:
            self._others[event.kind] = self._others.get(event.kind, 0) + 1

    def due(self, now: float) -> list[Turn]:
        """The batches whose time has come, as thanks turns."""
        turns = []
        for kind in [k for k, since in self._since.items() if now - since >= self.batch_s]:
            events = self._events.pop(kind)
            del self._since[kind]
            value = sum(e.value for e in events)
            paid = kind is EventKind.MEMBERSHIP or (kind is EventKind.GIFT and value >= self.paid_threshold_cny)
            turns.append(Turn("thanks", PAID if paid else DANMAKU, events, others=self._others.pop(kind, 0)))
        return turns

    def next_due(self) -> float | None:
        return min(self._since.values()) + self.batch_s if self._since else None

    def remove(self, match: Callable[[ChatEvent], bool]) -> list[ChatEvent]:
        removed = []
        for kind in list(self._events):
            removed += [e for e in self._events[kind] if match(e)]
            left = [e for e in self._events[kind] if not match(e)]
            if left:
                self._events[kind] = left
            else:
                del self._events[kind], self._since[kind]
        return removed

    def view(self) -> list[dict[str, Any]]:
        return [{"class": "thanks (collecting)", "kind": "thanks", "priority": -1, "text": "",
                 "others": self._others.get(kind, 0),
                 "events": [event_view(e) for e in events]}
                for kind, events in self._events.items()]

    def __len__(self) -> int:
        return len(self._events)
