"""The director: who is answered, in what order, and never dead air.

Order: operator > paid (super chats, gifts, memberships, bits) > questions and mentions of the host >
plain danmaku > idle content, one FIFO per class (O(1) at any chat rate). Plain danmaku expire after
``danmaku_ttl_s``; paid items never expire and are persisted (SQLite) until their reply has been
spoken, so after a restart or a crash each is answered, once. Repeated questions merge into one item
("5 people asked about the price"). Gifts, likes, follows and entries are collected for
``thanks_batch_s`` and thanked in one line.

Before anything reaches the persona, moderation runs (blocklists, spam, bans, approval); platform
moderation (CLEARCHAT, CLEARMSG, a deleted super chat) removes queued messages; messages that try to
steer the host are answered with a deflection instead of reaching the LLM; every sentence passes the
output filter before the voice. What the audience heard (up to an interrupt) is what the memory
keeps. When nothing waits and the host has been quiet for ``idle_after_s``, one idle line is
prepared at a time, so idle content never piles up in front of a viewer's question.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from streamer.config import DirectorSettings
from streamer.events import ChatEvent, EventKind
from streamer.idle import IdleScheduler
from streamer.moderation import Moderator
from streamer.persona.base import Persona, Turn
from streamer.persona.memory import Memory
from streamer.safety import InjectionGuard, OutputFilter, normalise, quote_viewer
from streamer.speaker import Speaker
from streamer.speech import Utterance
from streamer.store import Store

log = logging.getLogger(__name__)

OPERATOR, PAID, QUESTION, DANMAKU, IDLE = range(5)
_BATCHED = (EventKind.GIFT, EventKind.FOLLOW, EventKind.LIKE, EventKind.ENTER, EventKind.MEMBERSHIP)
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


@dataclass
class QueueItem:
    priority: int
    created: float
    turn: Turn
    topic: str = ""

    @property
    def events(self) -> list[ChatEvent]:
        return self.turn.events

    @property
    def kind(self) -> str:
        return self.turn.kind


@dataclass
class _Spoken:
    turn: Turn
    idle_key: str = ""
    completed: list[bool] = field(default_factory=list)


class Director:
    def __init__(self, persona: Persona, speaker: Speaker, settings: DirectorSettings, idle_after_s: float, *,
                 idle: IdleScheduler | None = None, moderator: Moderator | None = None,
                 guard: InjectionGuard | None = None, output_filter: OutputFilter | None = None,
                 store: Store | None = None, memory: Memory | None = None,
                 topic_fn: Callable[[str], str | None] | None = None,
                 time_fn: Callable[[], float] = time.monotonic) -> None:
        self.persona = persona
        self.speaker = speaker
        self.settings = settings
        self.idle_after_s = idle_after_s
        self.idle = idle
        self.moderator = moderator
        self.guard = guard or InjectionGuard()
        self.output_filter = output_filter or OutputFilter()
        self.store = store
        self.memory = memory or Memory()
        self.topic_fn = topic_fn
        self.time_fn = time_fn
        self._classes: list[collections.deque[QueueItem]] = [collections.deque() for _ in range(IDLE + 1)]
        self._size = 0
        self._by_topic: dict[str, QueueItem] = {}
        self._batches: dict[EventKind, list[ChatEvent]] = {}
        self._batch_started: dict[EventKind, float] = {}
        self._wake = asyncio.Event()
        self._turn_task: asyncio.Task[None] | None = None
        self._current: _Spoken | None = None
        self._by_number: collections.OrderedDict[int, _Spoken] = collections.OrderedDict()
        self.paused = False
        self.quiet_since = time_fn()
        self.expired = self.dropped = self.merged = self.deflected = 0
        if self.store is not None:
            self._restore()

    # ------------------------------------------------------------------ input
    def submit(self, event: ChatEvent) -> None:
        if event.kind is EventKind.SYSTEM:
            if event.action == "viewer_count" and self.idle is not None:
                self.idle.viewers = event.count
            self._moderate(event)
            return
        if event.kind is EventKind.STREAM_END:
            log.info("platform notice", extra={"event": event.id, "kind": event.kind.value, "action": event.action})
            return
        if self.moderator is not None and not self.moderator.check(event).allowed:
            return
        self._accept(event)

    def _accept(self, event: ChatEvent) -> None:
        if event.kind.is_paid and self.store is not None:
            self.store.add_paid(event)
        if event.kind in _BATCHED:
            self._batches.setdefault(event.kind, []).append(event)
            self._batch_started.setdefault(event.kind, self.time_fn())
            if event.kind in (EventKind.GIFT, EventKind.MEMBERSHIP):
                self.memory.record_viewer(event)
        elif event.text:
            steering = self.guard.detect(event.text)
            priority = PAID if event.kind is EventKind.SUPER_CHAT else QUESTION if self._is_question(event) else DANMAKU
            if steering:
                self.deflected += 1
                log.warning("prompt injection attempt deflected", extra={"event": event.id, "matched": steering})
                self._push(Turn("deflect", priority, [event]))
            else:
                self._push(Turn("answer", priority, [event]), self._topic(event) if priority > PAID else "")
        self._wake.set()

    def _is_question(self, event: ChatEvent) -> bool:
        name = getattr(self.persona, "name", "")
        return event.is_question or (bool(name) and name.lower() in event.text.lower())

    def _topic(self, event: ChatEvent) -> str:
        topic = self.topic_fn(event.text) if self.topic_fn else None
        return f"faq:{topic}" if topic else "text:" + _PUNCT.sub("", normalise(event.text))

    def say_now(self, text: str) -> None:
        self._push(Turn("operator", OPERATOR, text=text))
        self._wake.set()

    def _push(self, turn: Turn, topic: str = "") -> None:
        if topic:
            existing = self._by_topic.get(topic)
            if existing is not None and existing.priority == turn.priority:
                existing.turn.events.extend(turn.events)
                self.merged += 1
                log.info("merged with a queued question", extra={"event": turn.events[0].id, "topic": topic,
                                                                 "askers": len(existing.turn.events)})
                return
        item = QueueItem(turn.priority, self.time_fn(), turn, topic)
        if topic:
            self._by_topic[topic] = item
        self._classes[turn.priority].append(item)
        self._size += 1
        if turn.events:
            log.info("queued", extra={"event": turn.events[0].id, "priority": turn.priority, "queue": self._size})
        while self._size > self.settings.max_queue:
            # the full queue drops the oldest item of the lowest class; paid and operator items are never dropped
            victim = next((q for q in reversed(self._classes[QUESTION:]) if q), None)
            if victim is None:
                break
            self._forget(victim.popleft())
            self.dropped += 1

    def _forget(self, item: QueueItem) -> None:
        self._size -= 1
        if item.topic and self._by_topic.get(item.topic) is item:
            del self._by_topic[item.topic]

    def __len__(self) -> int:
        return self._size + sum(1 for b in self._batches.values() if b)

    def _restore(self) -> None:
        assert self.store is not None
        pending = self.store.unanswered()
        for event in pending:
            if event.kind in (EventKind.GIFT, EventKind.MEMBERSHIP):
                self._batches.setdefault(event.kind, []).append(event)
                self._batch_started.setdefault(event.kind, float("-inf"))
            else:
                self._push(Turn("answer", PAID, [event]))
        if self.moderator is not None:
            for who in self.store.bans():
                self.moderator.ban(who)
        if pending:
            log.info("restored unanswered paid messages", extra={"count": len(pending)})

    # ------------------------------------------------------------------ moderation and operator actions
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
                    item.turn.events[:] = left
                    kept.append(item)
                else:
                    self._forget(item)
            q.clear()
            q.extend(kept)
        for kind, events in self._batches.items():
            left = [e for e in events if not match(e)]
            removed += len(events) - len(left)
            self._batches[kind] = left
            if not left:
                self._batch_started.pop(kind, None)
        return removed

    def ban(self, user_id: str, platform: str | None = None) -> int:
        """Ban a viewer (on one platform, or by id everywhere) and drop what they have queued."""
        who = f"{platform}:{user_id}" if platform else user_id
        if self.moderator is not None:
            self.moderator.ban(who)
        if self.store is not None:
            self.store.add_ban(who)
        return self.remove(lambda e: e.user.id == user_id and (platform is None or e.platform == platform))

    def unban(self, user_id: str, platform: str | None = None) -> None:
        who = f"{platform}:{user_id}" if platform else user_id
        if self.moderator is not None:
            self.moderator.unban(who)
        if self.store is not None:
            self.store.remove_ban(who)

    def delete(self, event_id: str) -> int:
        removed = self.remove(lambda e: e.id == event_id)
        if removed and self.store is not None:
            self.store.mark_answered([event_id])
        return removed

    def approve(self, event_id: str) -> bool:
        event = self.moderator.approve(event_id) if self.moderator else None
        if event is not None:
            self._accept(event)
        return event is not None

    def queue_view(self) -> list[dict[str, Any]]:
        out = []
        for q in self._classes:
            for item in q:
                out.append({"priority": item.priority, "kind": item.kind, "text": item.turn.text,
                            "events": [{"id": e.id, "user": e.user.name, "text": e.text, "kind": e.kind.value,
                                        "user_id": e.user.id, "platform": e.platform}  # issue 11: ban from the panel
                                       for e in item.events]})
        held = list(self.moderator.held.values()) if self.moderator else []
        return out + [{"priority": -1, "kind": "held", "events": [{"id": e.id, "user": e.user.name, "text": e.text,
                                                                    "kind": e.kind.value, "user_id": e.user.id,
                                                                    "platform": e.platform}]} for e in held]

    # ------------------------------------------------------------------ choosing
    def _flush_batches(self) -> None:
        now = self.time_fn()
        for kind, events in list(self._batches.items()):
            if events and now - self._batch_started[kind] >= self.settings.thanks_batch_s:
                value = sum(e.amount.common for e in events if e.amount is not None)
                paid = kind is EventKind.MEMBERSHIP or (kind is EventKind.GIFT and value >= self.settings.paid_threshold_cny)
                prio = PAID if paid else DANMAKU
                self._push(Turn("thanks", prio, list(events)))
                self._batches[kind] = []
                del self._batch_started[kind]

    def next_item(self) -> QueueItem | None:
        self._flush_batches()
        now = self.time_fn()
        for q in self._classes:
            while q:
                item = q.popleft()
                self._forget(item)
                if item.priority >= QUESTION and item.kind in ("answer", "deflect") \
                        and now - item.created > self.settings.danmaku_ttl_s:
                    self.expired += 1
                    continue
                return item
        return None

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        try:
            while True:
                item = None if self.paused else self.next_item()
                if item is not None:
                    await self._play(item.turn)
                    continue
                if not self.paused and self.time_fn() - self.quiet_since >= self.idle_after_s:
                    await self._play_idle()
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=0.2)
                except asyncio.TimeoutError:
                    pass
        finally:
            if self._turn_task is not None:
                self._turn_task.cancel()

    async def _play_idle(self) -> None:
        if self.idle is not None:
            text, key = self.idle.next_line()
        else:
            text, key = "", ""
        await self._play(Turn("idle", IDLE, text=text), key)

    async def _play(self, turn: Turn, idle_key: str = "") -> None:
        number = self.speaker.new_turn()
        spoken = _Spoken(turn, idle_key)
        self._current = spoken
        self._by_number[number] = spoken
        while len(self._by_number) > 64:
            self._by_number.popitem(last=False)
        if turn.kind in ("answer", "deflect"):
            self.memory.asked(turn.id, "\n".join(quote_viewer(e.user.name, e.text) for e in turn.events))
        answers = turn.events[0].id if turn.events else None
        log.info("turn started", extra={"turn": turn.id, "kind": turn.kind, "answers": answers, "number": number,
                                        "askers": len(turn.events)})
        utt = Utterance(turn.text or (turn.events[0].text if turn.events else ""), turn.priority, answers,
                        source={"answer": "chat", "deflect": "chat"}.get(turn.kind, turn.kind))
        task = asyncio.create_task(self._speak(utt, turn, number))
        self._turn_task = task
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():
                task.cancel()
            self._turn_task = None
            self._current = None
        if turn.kind in ("answer", "deflect"):  # after the reply, so "returning" means an earlier turn
            for e in turn.events:
                self.memory.record_viewer(e)
        self.quiet_since = self.time_fn()

    async def _speak(self, utt: Utterance, turn: Turn, number: int) -> None:
        try:
            await self.speaker.speak(utt, self._sentences(turn, number), number)
            await self.speaker.wait_played(number)
        except asyncio.CancelledError:
            log.info("turn interrupted", extra={"turn": turn.id, "number": number})
            raise
        except Exception:
            log.exception("turn failed; the stream continues", extra={"turn": turn.id})
            return
        self._answered(turn)

    async def _sentences(self, turn: Turn, number: int) -> AsyncGenerator[str, None]:
        first = True
        async with aclosing(self.output_filter.filter_stream(self.persona.reply(turn))) as stream:
            async for sentence in stream:
                if turn.kind == "idle" and not first:
                    # idle talk yields to viewers: before each further sentence, let the last one
                    # nearly finish, and stop if anyone is now waiting
                    await self.speaker.wait_played(number, tail_s=0.3)
                    if self._waiting():
                        log.info("idle talk yields to a waiting viewer", extra={"turn": turn.id})
                        return
                first = False
                yield sentence

    def _waiting(self) -> bool:
        now = self.time_fn()
        return any(self._classes[p] for p in range(IDLE)) or any(
            events and now - self._batch_started.get(kind, now) >= self.settings.thanks_batch_s
            for kind, events in self._batches.items())

    def _answered(self, turn: Turn) -> None:
        if self.store is not None:
            paid = [e.id for e in turn.events if e.kind.is_paid]
            if paid:
                self.store.mark_answered(paid)

    def on_playback(self, number: int, text: str, kind: str, completed: bool, fraction: float) -> None:
        """The clock's report (forwarded to the loop): a sentence started or ended, and how much was heard."""
        spoken = self._by_number.get(number)
        if spoken is None or kind != "end":
            return
        self.memory.heard(spoken.turn.id, text, completed, fraction)
        if spoken.idle_key and self.idle is not None:
            spoken.completed.append(completed)
            self.idle.heard(spoken.idle_key, completed)

    # ------------------------------------------------------------------ commands
    async def interrupt(self) -> int:
        """Cancel the reply in flight and silence the clock; returns the fade tick. An interrupted paid
        reply counts as answered: the operator chose to cut it."""
        current = self._current
        if self._turn_task is not None:
            self._turn_task.cancel()
        tick = await self.speaker.interrupt()
        if current is not None:
            self._answered(current.turn)
        self.quiet_since = self.time_fn()
        return tick

    async def pause(self) -> int:
        self.paused = True
        return await self.interrupt()

    def resume(self) -> None:
        self.paused = False
        self.quiet_since = self.time_fn()
        self._wake.set()

    def set_persona(self, persona: Persona) -> None:
        """Takes effect at the next turn; the one being spoken finishes with the old persona."""
        self.persona = persona
