"""Conversation memory: what the audience actually heard, and short notes per viewer.

Only heard speech is remembered: a sentence the clock played to the end is stored as said; one cut by
an interrupt is stored as far as it got and marked interrupted; sentences never played are not
stored at all. The oldest turns are dropped to keep the context under a token budget. Viewer notes
(name, recent questions, gifts) let the host recognise a returning viewer.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

from streamer.events import ChatEvent


def estimate_tokens(text: str) -> int:
    cjk = sum(1 for ch in text if ord(ch) > 0x2E80)
    return cjk + (len(text) - cjk) // 4 + 1


@dataclass
class ViewerNote:
    name: str
    asked: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=3))
    gifts: collections.Counter[str] = field(default_factory=collections.Counter)
    turns: int = 0
    last_seen: float = 0.0


class Memory:
    def __init__(self, budget_tokens: int = 1500, max_viewers: int = 5000) -> None:
        self.budget_tokens = budget_tokens
        self.max_viewers = max_viewers
        self.turns: collections.deque[dict[str, str]] = collections.deque(maxlen=200)
        self.viewers: collections.OrderedDict[str, ViewerNote] = collections.OrderedDict()
        self._open: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ viewers
    def note(self, event: ChatEvent) -> ViewerNote:
        key = f"{event.platform}:{event.user.id}"
        note = self.viewers.get(key)
        if note is None:
            note = self.viewers[key] = ViewerNote(event.user.name)
            while len(self.viewers) > self.max_viewers:
                self.viewers.popitem(last=False)
        self.viewers.move_to_end(key)
        note.name = event.user.name
        return note

    def returning(self, event: ChatEvent) -> ViewerNote | None:
        note = self.viewers.get(f"{event.platform}:{event.user.id}")
        return note if note is not None and note.turns > 0 else None

    def record_viewer(self, event: ChatEvent) -> None:
        note = self.note(event)
        if event.text:
            note.asked.append(event.text[:80])
        if event.gift_name:
            note.gifts[event.gift_name] += event.count
        note.turns += 1
        note.last_seen = time.time()

    # ------------------------------------------------------------------ turns
    def asked(self, turn_id: str, content: str) -> None:
        """The user side of a turn (quoted viewer messages), when its reply starts."""
        self.turns.append({"role": "user", "content": content, "turn": turn_id})
        self._open[turn_id] = []
        while len(self._open) > 32:  # turns long over (a running host asks forever): keep memory flat
            del self._open[next(iter(self._open))]

    def heard(self, turn_id: str, sentence: str, completed: bool, fraction: float = 1.0, words: str | None = None) -> None:
        """A sentence of the reply reached the audience: all of it, or (interrupted) ``words`` when the voice
        timed its words, else the share ``fraction`` of it."""
        parts = self._open.setdefault(turn_id, [])
        if completed:
            parts.append(sentence)
        else:
            cut = (words if words is not None else
                   sentence[: max(0, int(len(sentence) * max(0.0, min(1.0, fraction))))]).rstrip()
            parts.append(f"{cut}… [interrupted]" if cut else "[interrupted]")
        self._close_or_update(turn_id)

    def _close_or_update(self, turn_id: str) -> None:
        text = " ".join(self._open.get(turn_id, []))
        for t in reversed(self.turns):
            if t.get("turn") == turn_id and t["role"] == "assistant":
                t["content"] = text
                return
        self.turns.append({"role": "assistant", "content": text, "turn": turn_id})

    def context(self, exclude_turn: str = "") -> list[dict[str, str]]:
        """Recent turns (oldest first) within the token budget, as chat messages; ``exclude_turn`` (the turn
        being answered, whose question the caller sends itself) is left out."""
        out: list[dict[str, str]] = []
        used = 0
        for t in reversed(self.turns):
            if exclude_turn and t.get("turn") == exclude_turn:
                continue
            cost = estimate_tokens(t["content"])
            if used + cost > self.budget_tokens:
                break
            used += cost
            out.append({"role": t["role"], "content": t["content"]})
        out.reverse()
        while out and out[0]["role"] == "assistant":  # a context starts with a user turn
            out.pop(0)
        return out

    def last_heard(self) -> str:
        for t in reversed(self.turns):
            if t["role"] == "assistant":
                return t["content"]
        return ""
