"""The director's one bounded queue of turns, by class.

Classes, highest first: operator > paid > questions and mentions > plain danmaku > idle. Paid turns are
ranked by value (then arrival); the other classes are FIFOs, O(1) at any chat rate. Plain danmaku and
questions expire after ``ttl_s``; paid and operator turns never expire and are never dropped. Repeated
questions merge into the queued turn of the same topic ("Sam, Ann and 3 more asked about this"), keeping
at most ``max_askers`` of them by name and counting the rest. When the queue is full, the oldest turn of
the lowest class goes. Paid turns beyond ``max_paid`` stay only in the ledger (SQLite) and are loaded
back as room frees up, so memory stays bounded however much is paid for at once.

"Queued" means one thing everywhere: the turns in this queue (``len``), each listed by ``view``.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamer.events import ChatEvent
from streamer.persona.base import Turn

log = logging.getLogger(__name__)

OPERATOR, PAID, QUESTION, DANMAKU, IDLE = range(5)
CLASS_NAMES = ("operator", "paid", "question", "danmaku", "idle")


@dataclass
class QueueItem:
    turn: Turn
    created: float
    topic: str = ""
    seq: int = 0

    @property
    def priority(self) -> int:
        return self.turn.priority

    @property
    def kind(self) -> str:
        return self.turn.kind

    @property
    def events(self) -> list[ChatEvent]:
        return self.turn.events

    def __lt__(self, other: QueueItem) -> bool:  # paid heap: most valuable first, then oldest
        return (-_value(self), self.seq) < (-_value(other), other.seq)


def _value(item: QueueItem) -> float:
    return sum(e.value for e in item.turn.events)


@dataclass
class ReplyQueue:
    max_size: int = 200
    ttl_s: float = 60.0
    max_askers: int = 20
    max_paid: int = 500
    dropped: int = 0
    expired: int = 0
    merged: int = 0
    _fifos: list[collections.deque[QueueItem]] = field(default_factory=lambda: [collections.deque() for _ in range(5)])
    _paid: list[QueueItem] = field(default_factory=list)
    _by_topic: dict[str, QueueItem] = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self._paid) + sum(len(q) for q in self._fifos)

    @property
    def paid_room(self) -> int:
        return self.max_paid - len(self._paid)

    def push(self, turn: Turn, now: float, topic: str = "") -> bool:
        """Queue a turn, or merge it into a queued one of the same topic (returns True when merged)."""
        existing = self._by_topic.get(topic) if topic else None
        if existing is not None and existing.priority == turn.priority:
            self._merge(existing, turn)
            return True
        item = QueueItem(turn, now, topic, next(self._seq))
        if topic:
            self._by_topic[topic] = item
        if turn.priority == PAID:
            heapq.heappush(self._paid, item)
        else:
            self._fifos[turn.priority].append(item)
        self._shed()
        return False

    def _merge(self, into: QueueItem, turn: Turn) -> None:
        self.merged += 1
        room = self.max_askers - len(into.turn.events)
        into.turn.events.extend(turn.events[:max(0, room)])
        into.turn.others += max(0, len(turn.events) - max(0, room)) + turn.others
        if self.merged in (1, 10, 100) or self.merged % 1000 == 0:
            log.info("merged with a queued question", extra={"topic": into.topic, "merged": self.merged,
                                                             "askers": len(into.turn.events) + into.turn.others})

    def _shed(self) -> None:
        while len(self) > self.max_size:
            victim = next((q for q in reversed(self._fifos[QUESTION:]) if q), None)
            if victim is None:
                return
            self._forget(victim.popleft())
            self.dropped += 1

    def _forget(self, item: QueueItem) -> None:
        if item.topic and self._by_topic.get(item.topic) is item:
            del self._by_topic[item.topic]

    def pop(self, now: float) -> QueueItem | None:
        """The next turn to say; expired danmaku and questions are skipped (counted)."""
        for priority in range(IDLE + 1):
            while True:
                item = self._pop_class(priority)
                if item is None:
                    break
                self._forget(item)
                if priority >= QUESTION and now - item.created > self.ttl_s:
                    self.expired += 1
                    continue
                return item
        return None

    def _pop_class(self, priority: int) -> QueueItem | None:
        if priority == PAID:
            return heapq.heappop(self._paid) if self._paid else None
        q = self._fifos[priority]
        return q.popleft() if q else None

    def waiting(self, below: int = IDLE) -> bool:
        """Anything queued in a class above ``below``."""
        return bool(self._paid and below > PAID) or any(self._fifos[p] for p in range(below) if p != PAID)

    def remove(self, match: Callable[[ChatEvent], bool]) -> list[ChatEvent]:
        """Drop queued events that ``match`` (a turn left with no events goes too); returns them."""
        removed: list[ChatEvent] = []
        for items, rebuild in ((self._paid, True), *((q, False) for q in self._fifos)):
            kept = []
            for item in items:
                left = [e for e in item.events if not match(e)]
                removed += [e for e in item.events if match(e)]
                if left or not item.events:
                    item.turn.events[:] = left
                    kept.append(item)
                else:
                    self._forget(item)
            items.clear()  # type: ignore[union-attr]
            items.extend(kept)  # type: ignore[union-attr]
            if rebuild:
                heapq.heapify(self._paid)
        return removed

    def items(self) -> list[QueueItem]:
        """Everything queued, in the order it would be said."""
        return [*sorted(self._fifos[OPERATOR], key=lambda i: i.seq), *sorted(self._paid),
                *(i for q in self._fifos[QUESTION:] for i in q)]

    def keys(self) -> set[tuple[str, str]]:
        return {(e.platform, e.id) for item in self._paid for e in item.events}

    @staticmethod
    def describe(item: QueueItem) -> dict[str, Any]:
        return {"class": CLASS_NAMES[item.priority], "priority": item.priority, "kind": item.kind,
                "turn": item.turn.id, "text": item.turn.text, "others": item.turn.others,
                "events": [event_view(e) for e in item.events]}


def event_view(e: ChatEvent) -> dict[str, Any]:
    return {"id": e.id, "platform": e.platform, "user": e.user.name, "user_id": e.user.id, "text": e.text,
            "kind": e.kind.value, "value_cny": e.value}
