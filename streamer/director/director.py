"""The director: chat events in, one reply at a time out to the speaker, and never dead air.

Intake: ``push(event)`` is O(1) (a paid message is written to the ledger first, so "accepted" means it
survives a crash); a task takes events in slices of ``SLICE`` so a burst of thousands never holds the event
loop. Each event passes platform moderation, the moderator (blocklists, spam, bans, approval) and the
injection guard, exactly the same way whether it arrived live or was restored from the ledger after a
restart; only accepted events reach the queue and the ``on_accept`` listeners (the chat ticker).

Turns: the most urgent queued turn (streamer.director.queue) is handed to the persona and its sentences,
each through the output filter, to the speaker. A model slow to start its answer is covered by a short
filler line ("Good question, one moment."), so the stream never goes quiet while it thinks. When nothing waits and the host has been quiet for
``idle_after_s``, an idle line is said; idle talk asks for each further sentence only when the last one
has nearly played, and gives way as soon as a viewer is waiting.

"Answered" means heard: a paid message is closed in the ledger when a sentence of its reply has left the
clock (the speaker's playback report). A reply of which nothing was heard (every sentence failed in the
voice or was dropped by the output filter) is tried again, up to ``max_attempts``, then shown to the
operator as failed. An interrupt before anything was heard puts the message back in the queue.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import re
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from typing import Any

from streamer.config import DirectorSettings
from streamer.director.idle import IdleScheduler
from streamer.director.moderation import Moderator
from streamer.director.queue import DANMAKU, IDLE, OPERATOR, PAID, QUESTION, QueueItem, ReplyQueue
from streamer.director.state import StateStore
from streamer.director.thanks import BATCHED, ThanksBatcher
from streamer.events import ChatEvent, EventKind
from streamer.guard import InjectionGuard, OutputFilter, context_line, normalise
from streamer.persona.base import Persona, Turn
from streamer.persona.memory import Memory
from streamer.persona.sentences import split_first_clause
from streamer.speaker import PlaybackEvent, Speaker, heard_of
from streamer.speech import Heard, Reply, Segment, reported

log = logging.getLogger(__name__)

SLICE = 64
"""Events taken from the intake at most per slice before the event loop gets control back."""
SLICE_S = 0.002
"""...and at most this much time: then the intake sleeps as long, so the clock thread, which needs the GIL
for every frame, never waits behind a burst of chat (a busy loop thread would hold it for the whole burst)."""
MAX_INTAKE = 20_000
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
_SOURCE = {"answer": "chat", "deflect": "chat"}


class Director:
    def __init__(self, *, persona: Persona, speaker: Speaker, settings: DirectorSettings, idle_after_s: float,
                 idle: IdleScheduler | None = None, moderator: Moderator | None = None,
                 guard: InjectionGuard | None = None, output_filter: OutputFilter | None = None,
                 state: StateStore | None = None, memory: Memory | None = None,
                 fillers: Sequence[str] = (), filler_after_s: float = 1.5,
                 time_fn: Callable[[], float] = time.monotonic) -> None:
        self.persona = persona
        self.speaker = speaker
        self.settings = settings
        self.idle_after_s = idle_after_s
        self.idle = idle
        self.moderator = moderator
        self.guard = guard or InjectionGuard()
        self.output_filter = output_filter or OutputFilter()
        self.state = state
        self.memory = memory or Memory()
        self.fillers = list(fillers)
        self.filler_after_s = filler_after_s
        self.time_fn = time_fn
        self.queue = ReplyQueue(settings.max_queue, settings.danmaku_ttl_s, max_paid=settings.max_paid_in_memory)
        self.thanks = ThanksBatcher(settings.thanks_batch_s, settings.paid_threshold_cny)
        self.on_accept: list[Callable[[ChatEvent], None]] = []
        self.paused = False
        self.quiet_since = time_fn()
        self.deflected = self.intake_dropped = 0
        self._intake: collections.deque[tuple[ChatEvent, float]] = collections.deque()
        self._wake = asyncio.Event()
        self._paid_live: set[tuple[str, str]] = set()
        self._paid_overflow = False
        self._current: Turn | None = None
        self._turn_task: asyncio.Task[list[Segment]] | None = None
        self._yielded = False
        self._tasks: list[asyncio.Task[None]] = []
        speaker.on_playback.append(self._on_playback)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Restore the ledger (through the same guards as live chat), then take events and say turns."""
        self._restore()
        self._tasks = [asyncio.create_task(self._take_intake(), name="director-intake"),
                       asyncio.create_task(self._say_turns(), name="director-turns")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # ------------------------------------------------------------------ intake
    def push(self, event: ChatEvent) -> None:
        """The one input: a chat event from any source (or the operator's inject)."""
        if event.paid and self.state is not None and not self.state.add_paid(event):
            return  # re-delivered by the platform: already in the ledger
        if len(self._intake) >= MAX_INTAKE:
            dropped, _ = self._intake.popleft()
            self.intake_dropped += 1
            self._paid_overflow |= dropped.paid  # still in the ledger: loaded again when there is room
        self._intake.append((event, self.time_fn()))
        self._wake.set()

    def ingest(self, limit: int = SLICE, budget_s: float | None = None) -> int:
        """Take up to ``limit`` events from the intake (and for at most ``budget_s``); returns how many."""
        end = time.perf_counter() + budget_s if budget_s is not None else None
        n = 0
        while n < limit and self._intake and (end is None or time.perf_counter() < end):
            self._take(*self._intake.popleft())
            n += 1
        return n

    async def _take_intake(self) -> None:
        while True:
            if not self._intake:
                self._wake.clear()
                await self._wake.wait()
            self.ingest(limit=MAX_INTAKE, budget_s=SLICE_S)
            self._wake.set()  # the turn loop may have something new to say
            await asyncio.sleep(SLICE_S if self._intake else 0)

    def _take(self, event: ChatEvent, arrived: float | None = None) -> None:
        if event.kind is EventKind.SYSTEM:
            if event.action == "viewer_count" and self.idle is not None:
                self.idle.viewers = event.count
            self._platform_moderation(event)
            return
        if event.kind is EventKind.STREAM_END:
            log.info("platform notice", extra={"event": event.id, "kind": event.kind.value, "action": event.action})
            return
        if self.moderator is not None:
            verdict = self.moderator.check(event)
            if not verdict.allowed:
                if not verdict.held:
                    self._close_paid([event], "rejected", verdict.reason)
                return
        self._accept(event, arrived)

    def _accept(self, event: ChatEvent, arrived: float | None = None) -> None:
        now = self.time_fn() if arrived is None else arrived
        if event.paid:
            self._paid_live.add((event.platform, event.id))
        if event.kind in BATCHED:
            self.thanks.add(event, now)
            if event.kind in (EventKind.GIFT, EventKind.MEMBERSHIP):
                self.memory.record_viewer(event)
        elif event.text or event.paid:
            priority = PAID if event.paid else QUESTION if self._is_question(event) else DANMAKU
            steering = self.guard.detect(event.text)  # a name that steers is withheld from the model, not deflected
            if steering:
                self.deflected += 1
                log.warning("prompt injection attempt deflected", extra={"event": event.id, "matched": steering})
                self.queue.push(Turn("deflect", priority, [event]), now)
            else:
                self.queue.push(Turn("answer", priority, [event]), now, self._topic(event) if priority > PAID else "")
            log.info("queued", extra={"event": event.id, "priority": priority, "queue": len(self.queue)})
        for listener in self.on_accept:
            listener(event)

    def _is_question(self, event: ChatEvent) -> bool:
        """A question, or a message that addresses the host by any of its names (小乔, Joe)."""
        text = event.text.lower()
        return event.is_question or any(n and n.lower() in text for n in self.persona.names)

    def _topic(self, event: ChatEvent) -> str:
        topic = self.persona.topic(event.text)
        return f"faq:{topic}" if topic else "text:" + _PUNCT.sub("", normalise(event.text))

    def _restore(self) -> None:
        if self.state is None:
            return
        if self.moderator is not None:
            for who in self.state.bans():
                self.moderator.ban(who)
        pending = self.state.pending(limit=self.queue.max_paid)
        self._paid_overflow = len(pending) == self.queue.max_paid
        for event in pending:
            self._take(event)
        if pending:
            log.info("restored unanswered paid messages", extra={"count": len(pending)})

    def _refill_paid(self) -> None:
        """Load paid messages that waited only in the ledger once half the room is free."""
        if not self._paid_overflow or self.state is None or self.queue.paid_room < self.queue.max_paid // 2:
            return
        events = self.state.pending(limit=self.queue.paid_room, exclude=self._paid_live)
        self._paid_overflow = len(events) == self.queue.paid_room
        for event in events:
            self._take(event)

    # ------------------------------------------------------------------ choosing
    def next_item(self) -> QueueItem | None:
        """The next turn to say, or None."""
        self.ingest()
        now = self.time_fn()
        for turn in self.thanks.due(now):
            self.queue.push(turn, now)
        item = self.queue.pop(now)
        self._refill_paid()
        return item

    def _viewer_waiting(self) -> bool:
        self.ingest()
        due = self.thanks.next_due()
        return self.queue.waiting(IDLE) or (due is not None and due <= self.time_fn())

    def _quiet_for(self) -> float:
        return self.time_fn() - self.quiet_since

    async def _say_turns(self) -> None:
        while True:
            item = None if self.paused else self.next_item()
            if item is not None:
                await self._play(item.turn)
            elif not self.paused and self._quiet_for() >= self.idle_after_s:
                await self._play_idle()
            else:
                await self._sleep_until_something_is_due()

    def wake(self) -> None:
        """Look again at what is due (after the time source moved, in tests on virtual time)."""
        self._wake.set()

    async def _sleep_until_something_is_due(self) -> None:
        now = self.time_fn()
        deadlines = [self.quiet_since + self.idle_after_s] if not self.paused else []
        due = self.thanks.next_due()
        if due is not None:
            deadlines.append(due)
        timeout = max(0.01, min(deadlines) - now) if deadlines else None
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except asyncio.TimeoutError:
            pass

    # ------------------------------------------------------------------ saying a turn
    async def _play_idle(self) -> None:
        text, key = self.idle.next_line() if self.idle is not None else ("", "")
        await self._play(Turn("idle", IDLE, text=text), key)

    async def _play(self, turn: Turn, idle_key: str = "") -> None:
        self._current, self._yielded = turn, False
        if turn.kind in ("answer", "deflect"):  # a deflected message enters the context only as a placeholder
            self.memory.asked(turn.id, context_line(turn, self.guard))
        log.info("turn started", extra={"turn": turn.id, "kind": turn.kind, "answers": turn.answers,
                                        "askers": len(turn.events) + turn.others})
        segments: list[Segment] = []
        reply = Reply(turn.id, self._sentences(turn), turn.answers, _SOURCE.get(turn.kind, turn.kind), turn.priority,
                      paced=turn.kind == "idle")
        task = self._turn_task = asyncio.create_task(self.speaker.push(reply, segments))
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():  # the director itself is stopping: book what was heard so far
                task.cancel()
                self._after(turn, heard_of(segments), True, idle_key)
            self._turn_task = None
        if task.cancelled():
            await _settled(segments)  # the interrupt's fade report, so memory knows how far it got
        elif task.exception() is not None:
            log.error("turn failed; the stream continues", extra={"turn": turn.id}, exc_info=task.exception())
        self._after(turn, heard_of(segments), task.cancelled(), idle_key)

    async def _sentences(self, turn: Turn) -> AsyncGenerator[str, None]:
        first = True
        reply = self.persona.reply(turn)
        if turn.kind in ("answer", "deflect") and self.fillers:
            reply = self._thinking_aloud(reply)
        async with aclosing(self.output_filter.filter_stream(reply, kind=turn.kind)) as stream:
            async for sentence in stream:
                if turn.kind == "idle" and not first and self._viewer_waiting():
                    self._yielded = True
                    log.info("idle talk yields to a waiting viewer", extra={"turn": turn.id})
                    return
                for part in split_first_clause(sentence) if first and turn.kind != "idle" else [sentence]:
                    yield part  # a long first sentence starts on its first clause: the voice starts sooner
                first = False

    async def _thinking_aloud(self, sentences: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
        """While a model is slow to start an answer, say a short filler, so the stream never goes quiet."""
        first = asyncio.ensure_future(anext(sentences))
        try:
            done, _ = await asyncio.wait({first}, timeout=self.filler_after_s)
            if not done:
                yield random.choice(self.fillers)
            try:
                yield await first
            except StopAsyncIteration:
                return
            async for s in sentences:
                yield s
        finally:
            if not first.done():
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
            await sentences.aclose()

    def _on_playback(self, ev: PlaybackEvent) -> None:
        """A sentence left the clock: the paid messages of its turn are answered (heard) from now on."""
        turn = self._current
        if ev.kind == "start" and turn is not None and ev.utterance.turn == turn.id:
            self._close_paid(turn.events, "answered")

    def _after(self, turn: Turn, heard: Heard, interrupted: bool, idle_key: str) -> None:
        if self._current is not turn:
            return  # booked already
        self._current = None
        for line in heard.lines:
            self.memory.heard(turn.id, line.text, line.completed, line.fraction, line.heard_text)
        if idle_key and self.idle is not None:
            self.idle.heard(idle_key, bool(heard) and not self._yielded and all(x.completed for x in heard.lines))
        if turn.kind in ("answer", "deflect"):  # after the reply, so "returning" means an earlier turn
            for e in turn.events:
                self.memory.record_viewer(e)
        if not heard and any((e.platform, e.id) in self._paid_live for e in turn.events):
            self._not_heard(turn, interrupted)
        self.quiet_since = self.time_fn()

    def _not_heard(self, turn: Turn, interrupted: bool) -> None:
        """Nothing of a paid reply reached the audience: try again later, or give up and tell the operator."""
        if not interrupted and self.state is not None:
            attempts = max(self.state.attempt(e) for e in turn.events if e.paid)
            if attempts >= self.settings.max_attempts:
                log.error("paid message could not be answered; shown to the operator as failed",
                          extra={"turn": turn.id, "answers": turn.answers, "attempts": attempts})
                self._close_paid(turn.events, "failed", "nothing of the reply could be said")
                return
            log.warning("nothing of a paid reply was heard; it will be tried again",
                        extra={"turn": turn.id, "answers": turn.answers, "attempts": attempts})
        self.queue.push(turn, self.time_fn())

    def _close_paid(self, events: list[ChatEvent], state: str, reason: str = "") -> None:
        live = [e for e in events if (e.platform, e.id) in self._paid_live or (e.paid and state == "rejected")]
        if not live:
            return
        self._paid_live.difference_update((e.platform, e.id) for e in live)
        if self.state is not None:
            self.state.close_paid(live, state, reason)

    # ------------------------------------------------------------------ moderation and operator commands
    def _platform_moderation(self, event: ChatEvent) -> None:
        """A deleted message, a banned/timed-out user or a cleared chat leaves the queue."""
        if event.action == "delete_message" and event.target:
            removed = self.remove(lambda e: e.msg_id == event.target and e.platform == event.platform)
        elif event.action == "clear_user" and event.target:
            removed = self.remove(lambda e: e.user.id == event.target and e.platform == event.platform)
        elif event.action == "clear_chat":  # paid items stay: money was spent, and a targeted delete removes one
            removed = self.remove(lambda e: e.platform == event.platform and not e.paid)
        else:
            return
        log.info("moderation applied", extra={"event": event.id, "action": event.action, "removed": removed})

    def remove(self, match: Callable[[ChatEvent], bool], reason: str = "removed by moderation") -> int:
        """Drop queued and batched events that ``match``; paid ones are closed as skipped. Returns the count."""
        removed = self.queue.remove(match) + self.thanks.remove(match)
        waiting = [e for e, _ in self._intake if match(e)]
        if waiting:
            self._intake = collections.deque(x for x in self._intake if not match(x[0]))
            self._paid_live.update((e.platform, e.id) for e in waiting if e.paid)
            removed += waiting
        self._close_paid(removed, "skipped", reason)
        return len(removed)

    def ban(self, user_id: str, platform: str | None = None) -> int:
        """Ban a viewer (on one platform, or by id everywhere) and drop what they have queued."""
        who = f"{platform}:{user_id}" if platform else user_id
        if self.moderator is not None:
            self.moderator.ban(who)
        if self.state is not None:
            self.state.add_ban(who)
        return self.remove(lambda e: e.user.id == user_id and (platform is None or e.platform == platform),
                           "viewer banned by the operator")

    def unban(self, user_id: str, platform: str | None = None) -> None:
        who = f"{platform}:{user_id}" if platform else user_id
        if self.moderator is not None:
            self.moderator.unban(who)
        if self.state is not None:
            self.state.remove_ban(who)

    def delete(self, event_id: str) -> int:
        return self.remove(lambda e: e.id == event_id, "deleted by the operator")

    def clear(self) -> int:
        """Drop everything queued but operator lines and paid messages."""
        return self.remove(lambda e: not e.paid, "queue cleared by the operator")

    def approve(self, event_id: str) -> bool:
        event = self.moderator.approve(event_id) if self.moderator else None
        if event is not None:
            self._accept(event)
        return event is not None

    def reject(self, event_id: str) -> bool:
        return self.moderator is not None and self.moderator.reject(event_id) is not None

    @property
    def busy(self) -> bool:
        """A turn is being said or one waits in the queue (paused or not)."""
        return self._turn_task is not None or len(self.queue) > 0

    def say_now(self, text: str) -> None:
        self.queue.push(Turn("operator", OPERATOR, text=text), self.time_fn())
        self._wake.set()

    async def interrupt(self) -> int:
        """Cancel the reply in flight and silence the clock; returns the tick where the audio faded."""
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

    def set_persona(self, persona: Persona) -> None:
        """Takes effect at the next turn; the one being spoken finishes with the old persona."""
        self.persona = persona

    # ------------------------------------------------------------------ what the operator sees
    @property
    def now(self) -> Turn | None:
        """The turn being said."""
        return self._current

    def queue_view(self) -> list[dict[str, Any]]:
        """Everything that waits, in the order it would be said, then what is held for approval."""
        held = list(self.moderator.held.values()) if self.moderator else []
        return [*(self.queue.describe(i) for i in self.queue.items()), *self.thanks.view(),
                *({"class": "held", "priority": -1, "kind": "held", "text": "", "others": 0,
                   "events": [{"id": e.id, "platform": e.platform, "user": e.user.name, "user_id": e.user.id,
                               "text": e.text, "kind": e.kind.value, "value_cny": e.value}]} for e in held)]

    def stats(self) -> dict[str, Any]:
        by_class = collections.Counter(i["class"] for i in self.queue_view())
        ledger = self.state.counts() if self.state is not None else {}
        return {"queued": len(self.queue) + len(self.thanks), "held": by_class.pop("held", 0),
                "by_class": dict(by_class), "paid_pending": ledger.get("pending", 0),
                "paid_failed": ledger.get("failed", 0), "intake": len(self._intake), "expired": self.queue.expired,
                "dropped": self.queue.dropped + self.intake_dropped, "merged": self.queue.merged,
                "deflected": self.deflected}

    def failed(self) -> list[dict[str, Any]]:
        return self.state.failed() if self.state is not None else []


async def _settled(segments: list[Segment], timeout: float = 2.0) -> None:
    """Wait (bounded) until the clock reported how far each segment got."""
    pending = [asyncio.ensure_future(reported(s.ended)) for s in segments if not s.ended.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout)
        for f in late:
            f.cancel()
