"""Moderation before anything reaches the persona: blocklists, spam rules, bans and approval.

- user blocklist (config + operator bans, persisted by the director's store);
- word blocklists: plain, regex, and pinyin-aware for Chinese, so homophone spellings ("沙比") and
  typed pinyin ("shabi", "sha-bi") of a blocked word are caught too. Homophones are matched as
  toneless syllable runs, so an innocent phrase with the same syllables is caught as well: keep
  such words to clearly offensive ones;
- spam: the same text from a user again within ``repeat_window_s``, more than ``flood_messages``
  from one user within ``flood_window_s``, emote-only messages, links;
- length caps (viewer text is already cleaned of control, zero-width and bidi characters);
- approve-before-speak: first-time viewers' messages wait for the operator.
Each verdict carries a reason that is logged (with the event id, never the text).
"""

from __future__ import annotations

import collections
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamer.events import ChatEvent, EventKind
from streamer.guard.text import normalise

log = logging.getLogger(__name__)

_LINK_RE = re.compile(r"(https?://|www\.|\b[a-z0-9-]+\.(com|net|org|cn|io|xyz|top|cc|me|tv|gg|ly)\b)", re.IGNORECASE)
_EMOTE_RE = re.compile(r"\[[^\]]{1,12}\]|:[a-z0-9_]{2,30}:", re.IGNORECASE)


def _syllables(text: str) -> tuple[str, ...]:
    """Toneless pinyin syllables of the Chinese characters in ``text`` (other characters dropped)."""
    hanzi = "".join(ch for ch in text if ord(ch) > 0x2E80)
    return _hanzi_syllables(hanzi) if hanzi else ()


@functools.lru_cache(maxsize=8192)
def _hanzi_syllables(hanzi: str) -> tuple[str, ...]:
    """Chat repeats itself (the same 666 and 主播好 a thousand times): each distinct text is converted once."""
    try:
        from pypinyin import lazy_pinyin
    except ImportError:  # pragma: no cover - pypinyin is a dependency
        return ()
    return tuple(p.lower() for p in lazy_pinyin(hanzi))


def _contains_run(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""
    held: bool = False
    """True when the message waits for operator approval."""


@dataclass
class ModerationRules:
    blocked_users: list[str] = field(default_factory=list)
    blocked_words: list[str] = field(default_factory=list)
    blocked_patterns: list[str] = field(default_factory=list)
    pinyin: bool = True
    max_chars: int = 200
    repeat_window_s: float = 60.0
    flood_messages: int = 5
    flood_window_s: float = 10.0
    drop_links: bool = True
    drop_emote_only: bool = True
    approve_new_viewers: bool = False


class Moderator:
    def __init__(self, rules: ModerationRules, time_fn: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self.time_fn = time_fn
        self.banned: set[str] = {u.lower() for u in rules.blocked_users}
        self._words = [normalise(w) for w in rules.blocked_words if w.strip()]
        # blocked Chinese words as syllables: matched against homophones (as syllable runs) and typed pinyin
        self._word_syllables = [syl for syl in (_syllables(w) for w in rules.blocked_words) if len(syl) >= 2] \
            if rules.pinyin else []
        if self._word_syllables:
            _syllables("预热")  # load pypinyin's dictionary now, not on the first viewer message
        self._word_typed = [re.compile(r"\b" + r"[\s\-_.]*".join(syl) + r"\b") for syl in self._word_syllables]
        self._patterns = [re.compile(p, re.IGNORECASE) for p in rules.blocked_patterns]
        self._recent: dict[str, collections.deque[tuple[float, str]]] = {}
        self._swept = 0.0
        self._known_viewers: set[str] = set()
        self.approval = rules.approve_new_viewers
        self.held: collections.OrderedDict[str, ChatEvent] = collections.OrderedDict()
        self.stats: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------ operator actions
    def ban(self, user: str) -> None:
        self.banned.add(user.lower())

    def unban(self, user: str) -> None:
        self.banned.discard(user.lower())

    def approve(self, event_id: str) -> ChatEvent | None:
        event = self.held.pop(event_id, None)
        if event is not None:
            self._known_viewers.add(_who(event))
        return event

    def reject(self, event_id: str) -> ChatEvent | None:
        return self.held.pop(event_id, None)

    # ------------------------------------------------------------------ the verdict
    def check(self, event: ChatEvent) -> Verdict:
        verdict = self._check(event)
        if not verdict.allowed:
            self.stats[verdict.reason.split(":", 1)[0]] += 1
            log.info("message held" if verdict.held else "message blocked",
                     extra={"event": event.id, "reason": verdict.reason, "user": event.user.id})
        return verdict

    def _check(self, event: ChatEvent) -> Verdict:
        if _who(event) in self.banned or event.user.id.lower() in self.banned or event.user.name.lower() in self.banned:
            return Verdict(False, "banned user")
        if event.kind not in (EventKind.DANMAKU, EventKind.SUPER_CHAT) or not event.text:
            return Verdict(True)
        text = event.text
        if len(text) > self.rules.max_chars:
            return Verdict(False, f"too long: {len(text)} > {self.rules.max_chars} characters")
        norm = normalise(text)
        word = self._blocked_word(norm, text)
        if word:
            return Verdict(False, f"blocked word: {word}")
        paid = event.kind.is_paid
        if not paid:
            if self.rules.drop_links and _LINK_RE.search(norm):
                return Verdict(False, "link")
            if self.rules.drop_emote_only and _emote_only(event):
                return Verdict(False, "emote only")
            spam = self._spam(event, norm)
            if spam:
                return Verdict(False, spam)
        if self.approval and not paid and not event.user.moderator and _who(event) not in self._known_viewers:
            self.held[event.id] = event
            while len(self.held) > 500:
                self.held.popitem(last=False)
            return Verdict(False, "awaiting approval (new viewer)", held=True)
        self._known_viewers.add(_who(event))
        return Verdict(True)

    def _blocked_word(self, norm: str, text: str) -> str | None:
        for w in self._words:
            if w in norm:
                return w
        for p in self._patterns:
            if p.search(norm):
                return p.pattern
        if self._word_syllables:
            spoken = _syllables(text)
            latin = re.sub(r"[^a-z]+", " ", norm)
            for syl, typed in zip(self._word_syllables, self._word_typed, strict=True):
                if _contains_run(spoken, syl) or typed.search(latin):
                    return f"{''.join(syl)} (pinyin)"
        return None

    def _spam(self, event: ChatEvent, norm: str) -> str | None:
        now = self.time_fn()
        window = max(self.rules.repeat_window_s, self.rules.flood_window_s)
        recent = self._recent.setdefault(_who(event), collections.deque())
        while recent and now - recent[0][0] > window:
            recent.popleft()
        if any(t == norm and now - ts <= self.rules.repeat_window_s for ts, t in recent):
            recent.append((now, norm))
            return "repeat"
        in_flood = sum(1 for ts, _ in recent if now - ts <= self.rules.flood_window_s)
        recent.append((now, norm))
        if now - self._swept > window:  # forget viewers quiet for a whole window: 24/7, memory stays flat
            self._swept = now
            for key in [k for k, d in self._recent.items() if now - d[-1][0] > window]:
                del self._recent[key]
        if len(self._recent) > 50_000:  # a huge room within one window: forget the earliest
            for key in list(self._recent)[:10_000]:
                del self._recent[key]
        if in_flood >= self.rules.flood_messages:
            return f"flood: more than {self.rules.flood_messages} messages in {self.rules.flood_window_s:g} s"
        return None


def _who(event: ChatEvent) -> str:
    return f"{event.platform}:{event.user.id}".lower()


def _emote_only(event: ChatEvent) -> bool:
    text = _EMOTE_RE.sub(" ", event.text)
    for e in event.emotes:
        text = text.replace(e, " ")
    return not any(ch.isalnum() for ch in text)
