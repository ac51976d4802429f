"""The scripted persona: offline answers from the product catalogue, no LLM needed, in Chinese or English.

Questions are matched to FAQ keywords of the current product (longest keyword wins), then to the
shopper intents every show gets (price, shipping, stock, usage, discounts); greetings get greetings;
gifts, follows and likes get templated thanks with random variants. The lines themselves are data:
``templates_en.toml`` and ``templates_zh.toml`` beside this module, chosen by the persona's language.
Replies are yielded sentence by sentence, like a streaming LLM, so voice can start on the first one.

``name`` is the host's display name (what viewers type to address them: the director counts it as a
mention); ``names`` adds the persona's aliases.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from streamer.events import ChatEvent, EventKind
from streamer.guard.inbound import WITHHELD_NAME, safe_name
from streamer.persona.base import Turn
from streamer.persona.catalogue import Catalogue
from streamer.persona.memory import Memory
from streamer.persona.sentences import split_text
from streamer.voice.normalize import base_language

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_HERE = Path(__file__).resolve().parent
_KEEP_CAPITAL = {"I", "I'm", "I'll", "I've", "I'd"}


@dataclass(frozen=True)
class Intent:
    topic: str
    keywords: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Templates:
    language: str
    lines: dict[str, Any]
    intents: tuple[Intent, ...]

    def __getitem__(self, key: str) -> Any:
        return self.lines[key]


@cache
def templates(language: str) -> Templates:
    """The persona's lines for ``language`` ("zh" or "en"), read once from the TOML beside this module."""
    lang = base_language(language)
    data = tomllib.loads((_HERE / f"templates_{lang}.toml").read_text(encoding="utf-8"))
    intents = tuple(Intent(i["topic"], tuple(k.lower() for k in i["keywords"]), i["answer"])
                    for i in data.pop("intent", []))
    return Templates(lang, data, intents)


def join_names(names: Sequence[str], t: Templates) -> str:
    uniq = list(dict.fromkeys(names))
    if len(uniq) > 3:
        return t["more"].format(names=t["list_sep"].join(uniq[:3]), n=len(uniq) - 3)
    return uniq[0] if len(uniq) == 1 else f"{t['list_sep'].join(uniq[:-1])}{t['and']}{uniq[-1]}"


def continue_sentence(text: str, keep: Sequence[str] = ()) -> str:
    """A sentence made to follow "Sam, ": its first word loses its capital unless it is a name
    ("The AeroBrew is..." -> "the AeroBrew is..."; "AeroBrew is..." and "I think..." stay)."""
    m = re.match(r"([A-Z][a-z']*)\b", text)
    if not m or m[1] in _KEEP_CAPITAL or any(k.startswith(m[1]) for k in keep):
        return text
    return m[1].lower() + text[len(m[1]):]


class ScriptedPersona:
    def __init__(self, catalogue: Catalogue, host_name: str = "Joe", seed: int | None = None,
                 memory: Memory | None = None, big_gift_cny: float = 50.0, language: str | None = None,
                 aliases: Sequence[str] = ()) -> None:
        self.catalogue = catalogue
        self.host_name = host_name
        self.name = host_name
        """The display name viewers address the host by (a mention for the director)."""
        self.names = [host_name, *aliases]
        self.memory = memory
        self.big_gift_cny = big_gift_cny
        self.language = base_language(language or ("zh" if re.search(r"[\u4e00-\u9fff]", host_name) else "en"))
        self.t = templates(self.language)
        self._rng = random.Random(seed)

    def _fill(self, template: str, **extra: str) -> str:
        values = self.catalogue.product.values(self.catalogue.currency_word, self.host_name)
        values.update(extra)
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            return template

    def _addressed(self, user: str, body: str) -> str:
        keep = [self.catalogue.product.name, self.host_name, user]
        return self._fill(self.t["addressed"], user=user, answer=continue_sentence(self._fill(body), keep))

    def topic(self, text: str) -> str | None:
        """The topic a message asks about (a FAQ's first keyword or an intent), for merging repeated questions."""
        best: tuple[int, str] | None = None
        low = text.lower()
        for keywords, _ in self.catalogue.product.faq:
            for k in keywords:
                if k in low and (best is None or len(k) > best[0]):
                    best = (len(k), keywords[0])
        if best:
            return best[1]
        intent = self._intent(low)
        return intent.topic if intent else None

    def _name(self, raw: str) -> str:
        """A viewer's name as the host may say it: one that steers or carries markup becomes a neutral label."""
        name = safe_name(raw)
        return ("这位朋友" if self.t.language == "zh" else "friend") if name == WITHHELD_NAME else name

    def answer_text(self, event: ChatEvent) -> str:
        text = event.text.lower()
        user = self._name(event.user.name)
        body = self._match(text)
        returning = self.memory.returning(event) if self.memory else None
        if returning is not None and event.kind is EventKind.DANMAKU and not body:
            return self._fill(self.t["welcome_back"], user=user) + self._fill(self._rng.choice(self.t["fallbacks"]),
                                                                             user=user)
        if event.kind is EventKind.SUPER_CHAT:
            lead = self._fill(self.t["super_chat"], user=user)
            return f"{lead} {self._fill(body)}" if body else f"{lead} {event.text}"
        if body:
            return self._addressed(user, body) if len(user) < 30 else self._fill(body)
        if any(text.startswith(g) for g in self.t["greetings"]):
            return self._fill(self.t["greeting_reply"], user=user)
        return self._fill(self._rng.choice(self.t["fallbacks"]), user=user)

    def _match(self, text: str) -> str | None:
        """The catalogue's FAQ answer (longest keyword wins), else the shopper intent's answer."""
        best: tuple[int, str] | None = None
        for keywords, answer in self.catalogue.product.faq:
            for k in keywords:
                if k in text and (best is None or len(k) > best[0]):
                    best = (len(k), answer)
        if best:
            return best[1]
        intent = self._intent(text)
        return intent.answer if intent else None

    def _intent(self, text: str) -> Intent | None:
        best: tuple[int, Intent] | None = None
        for intent in self.t.intents:
            for k in intent.keywords:
                if k in text and (best is None or len(k) > best[0]):
                    best = (len(k), intent)
        return best[1] if best else None

    def thanks_text(self, events: Sequence[ChatEvent]) -> str:
        kind = events[0].kind
        names = join_names([self._name(e.user.name) for e in events], self.t)
        if kind in (EventKind.GIFT, EventKind.MEMBERSHIP):
            gifts = list(dict.fromkeys(e.gift_name or self.t["gift_word"] for e in events))
            word = self._gift_word(gifts)
            total = sum(e.amount.common for e in events if e.amount)
            pool = self.t["big_gift_thanks"] if total >= self.big_gift_cny else self.t["gift_thanks"]
            return self._rng.choice(pool).format(names=names, gifts=word)
        pool = {EventKind.FOLLOW: self.t["follow_thanks"], EventKind.LIKE: self.t["like_thanks"]}.get(
            kind, self.t["enter_greeting"])
        return self._rng.choice(pool).format(names=names)

    def _gift_word(self, gifts: list[str]) -> str:
        if self.language == "zh":
            return self.t["list_sep"].join(gifts[:3]) if len(gifts) <= 3 else self.t["gifts_word"]
        if len(gifts) == 1:
            return gifts[0] if gifts[0].endswith("s") else gifts[0] + "s"
        return self.t["gifts_word"]

    def deflect_text(self, event: ChatEvent) -> str:
        return self._fill(self._rng.choice(self.t["deflections"]), user=self._name(event.user.name))

    def text_for(self, turn: Turn) -> str:
        if turn.kind in ("idle", "operator"):
            return turn.text
        if turn.kind == "thanks":
            return self.thanks_text(turn.events)
        if turn.kind == "deflect":
            return self.deflect_text(turn.events[0])
        answer = self.answer_text(turn.events[0])
        if len(turn.events) > 1:
            body = self._match(turn.events[0].text.lower())
            answer = self.t["merged"].format(names=join_names([self._name(n) for n in turn.names], self.t),
                                             answer=self._fill(body) if body else answer)
        return answer

    async def aclose(self) -> None:
        """Nothing to release."""

    def error_counts(self) -> dict[str, int]:
        return {}

    async def reply(self, turn: Turn) -> AsyncGenerator[str, None]:
        """The reply sentence by sentence (the LLM persona streams real tokens the same way)."""
        for sentence in split_text(self.text_for(turn), language=self.language):
            yield sentence
