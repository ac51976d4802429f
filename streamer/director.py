"""The director: one bounded priority queue of things to say, and never dead air.

Order: operator > paid (super chat, gifts, memberships) > questions > plain danmaku > idle talk.
Plain danmaku expire after ``danmaku_ttl_s``; paid items never expire. Gifts, follows, likes and
entries are collected for ``thanks_batch_s`` and thanked in one line. When nothing waits and the host
has been quiet for ``idle_after_s``, the persona's idle talk fills in, one line at a time, so idle
content never piles up in front of a viewer's question.

(This is the foundation's director; moderation, persistence and the LLM persona build on it.)
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamer.config import DirectorSettings
from streamer.events import ChatEvent, EventKind
from streamer.persona.scripted import ScriptedPersona
from streamer.speaker import Speaker
from streamer.speech import Utterance

log = logging.getLogger(__name__)

OPERATOR, PAID, QUESTION, DANMAKU, IDLE = range(5)
_BATCHED = (EventKind.GIFT, EventKind.FOLLOW, EventKind.LIKE, EventKind.ENTER, EventKind.MEMBERSHIP)


@dataclass(order=True)
class QueueItem:
    priority: int
    seq: int
    created: float = field(compare=False)
    kind: str = field(compare=False)  # answer | thanks | operator
    events: list[ChatEvent] = field(compare=False, default_factory=list)
    text: str = field(compare=False, default="")


class Director:
    def __init__(self, persona: ScriptedPersona, speaker: Speaker, settings: DirectorSettings,
                 idle_after_s: float, time_fn: Callable[[], float] = time.monotonic) -> None:
        self.persona = persona
        self.speaker = speaker
        self.settings = settings
        self.idle_after_s = idle_after_s
        self.time_fn = time_fn
        # one FIFO per priority class: O(1) push, pop and overflow drop, whatever the chat rate
        self._classes: list[collections.deque[QueueItem]] = [collections.deque() for _ in range(IDLE + 1)]
        self._size = 0
        self._seq = itertools.count()
        self._batches: dict[EventKind, list[ChatEvent]] = {}
        self._batch_started: dict[EventKind, float] = {}
        self._wake = asyncio.Event()
        self._turn_task: asyncio.Task[None] | None = None
        self.paused = False
        self.quiet_since = time_fn()
        self.expired = 0
        self.dropped = 0

    # ------------------------------------------------------------------ input
    def submit(self, event: ChatEvent) -> None:
        if event.kind is EventKind.SYSTEM:
            self._moderate(event)
            return
        if event.kind is EventKind.STREAM_END:
            log.info("platform notice", extra={"event": event.id, "kind": event.kind.value, "action": event.action})
            return
        if event.kind in _BATCHED:
            self._batches.setdefault(event.kind, []).append(event)
            self._batch_started.setdefault(event.kind, self.time_fn())
        elif event.kind is EventKind.SUPER_CHAT:
            self._push(PAID, "answer", [event])
        elif event.text:
            self._push(QUESTION if event.is_question else DANMAKU, "answer", [event])
        self._wake.set()

    def _moderate(self, event: ChatEvent) -> None:
        """Platform moderation: a deleted message, a banned/timed-out user or a cleared chat leaves the queue."""
        if event.action == "delete_message" and event.target:
            removed = self.remove(lambda e: e.msg_id == event.target and e.platform == event.platform)
        elif event.action == "clear_user" and event.target:
            removed = self.remove(lambda e: e.user.id == event.target and e.platform == event.platform)
        elif event.action == "clear_chat":  # paid items stay: money was spent, and a targeted delete removes one
            removed = self.remove(lambda e: e.platform == event.platform and not e.kind.is_paid)
        else:
            return
        log.info("moderation applied", extra={"event": event.id, "action": event.action, "removed": removed})

    def remove(self, match: Callable[[ChatEvent], bool]) -> int:
        """Drop queued and batched events that ``match``; returns how many were removed."""
        removed = 0
        for q in self._classes:
            kept: collections.deque[QueueItem] = collections.deque()
            for item in q:
                left = [e for e in item.events if not match(e)]
                removed += len(item.events) - len(left)
                if left or not item.events:
                    item.events = left
                    kept.append(item)
            self._size -= len(q) - len(kept)
            q.clear()
            q.extend(kept)
        for kind, events in self._batches.items():
            left = [e for e in events if not match(e)]
            removed += len(events) - len(left)
            self._batches[kind] = left
            if not left:
                self._batch_started.pop(kind, None)
        return removed

    def say_now(self, text: str) -> None:
        self._push(OPERATOR, "operator", text=text)
        self._wake.set()

    def _push(self, priority: int, kind: str, events: list[ChatEvent] | None = None, text: str = "") -> None:
        item = QueueItem(priority, next(self._seq), self.time_fn(), kind, events or [], text)
        self._classes[priority].append(item)
        self._size += 1
        if events:
            log.info("queued", extra={"event": events[0].id, "priority": priority, "queue": self._size})
        while self._size > self.settings.max_queue:
            # the full queue drops the oldest item of the lowest class; paid and operator items are never dropped
            victim = next((q for q in reversed(self._classes[QUESTION:]) if q), None)
            if victim is None:
                break
            victim.popleft()
            self._size -= 1
            self.dropped += 1

    def __len__(self) -> int:
        return self._size + sum(1 for b in self._batches.values() if b)

    # ------------------------------------------------------------------ choosing
    def _flush_batches(self, force: bool = False) -> None:
        now = self.time_fn()
        for kind, events in list(self._batches.items()):
            if events and (force or now - self._batch_started[kind] >= self.settings.thanks_batch_s):
                prio = PAID if kind in (EventKind.GIFT, EventKind.MEMBERSHIP) else DANMAKU
                self._push(prio, "thanks", list(events))
                self._batches[kind] = []
                del self._batch_started[kind]

    def next_item(self) -> QueueItem | None:
        self._flush_batches()
        now = self.time_fn()
        for q in self._classes:
            while q:
                item = q.popleft()
                self._size -= 1
                if item.priority >= QUESTION and item.kind == "answer" and now - item.created > self.settings.danmaku_ttl_s:
                    self.expired += 1
                    continue
                return item
        return None

    def _compose(self, item: QueueItem) -> Utterance:
        if item.kind == "operator":
            return Utterance(item.text, OPERATOR, source="operator")
        if item.kind == "thanks":
            return Utterance(self.persona.thanks_text(item.events), item.priority, item.events[0].id, source="thanks")
        event = item.events[0]
        return Utterance(self.persona.answer_text(event), item.priority, event.id, source="chat")

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        try:
            while True:
                item = None if self.paused else self.next_item()
                if item is not None:
                    await self._play(self._compose(item))
                    continue
                if not self.paused and self.time_fn() - self.quiet_since >= self.idle_after_s:
                    await self._play(Utterance(self.persona.idle_text(), IDLE, source="idle"))
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=0.2)
                except asyncio.TimeoutError:
                    pass
        finally:
            if self._turn_task is not None:
                self._turn_task.cancel()

    async def _play(self, utt: Utterance) -> None:
        turn = self.speaker.new_turn()
        log.info("turn started", extra={"utterance": utt.id, "answers": utt.answers, "source": utt.source, "turn": turn})
        task = asyncio.create_task(self._speak(utt, turn))
        self._turn_task = task
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():
                task.cancel()
            self._turn_task = None
        self.quiet_since = self.time_fn()

    async def _speak(self, utt: Utterance, turn: int) -> None:
        try:
            await self.speaker.speak(utt, self.persona.respond(utt.text), turn)
            await self.speaker.wait_played(turn)
        except asyncio.CancelledError:
            log.info("turn interrupted", extra={"utterance": utt.id, "turn": turn})
            raise
        except Exception:
            log.exception("turn failed; the stream continues", extra={"utterance": utt.id})

    # ------------------------------------------------------------------ commands
    async def interrupt(self) -> int:
        """Cancel the reply in flight and silence the clock; returns the fade tick."""
        if self._turn_task is not None:
            self._turn_task.cancel()
        tick = await self.speaker.interrupt()
        self.quiet_since = self.time_fn()
        return tick

    async def pause(self) -> int:
        self.paused = True
        return await self.interrupt()

    def resume(self) -> None:
        self.paused = False
        self.quiet_since = self.time_fn()
        self._wake.set()
