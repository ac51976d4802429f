"""The scripted persona: offline answers from the product catalogue, no LLM needed.

Questions are matched to FAQ keywords of the current product (longest keyword wins); greetings get
greetings; gifts, follows and likes get templated thanks with random variants; idle talk rotates
through the product's idle lines and selling points, resuming where it left off. Replies are yielded
sentence by sentence, like a streaming LLM, so voice can start on the first one.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Sequence

from streamer.events import ChatEvent, EventKind
from streamer.persona.base import Turn
from streamer.persona.catalogue import Catalogue
from streamer.persona.memory import Memory
from streamer.persona.sentences import split_text

_GREETINGS = ("hi", "hello", "hey", "good morning", "good evening", "你好", "大家好")

GIFT_THANKS = [
    "Thank you {names} for the {gifts}! You are amazing.",
    "Wow, {names}, thank you so much for the {gifts}!",
    "Big thanks to {names} for the {gifts}, that means a lot.",
]
FOLLOW_THANKS = ["Thanks for the follow, {names}!", "Welcome to the family, {names}, thanks for following!"]
LIKE_THANKS = ["Thank you for all the likes, {names}!", "I see those likes, {names}, thank you!"]
ENTER_GREETING = ["Welcome in, {names}!", "Hi {names}, glad you are here!"]
BIG_GIFT_THANKS = [
    "Wow, {names}, thank you so much for the {gifts}! That is incredibly generous.",
    "{names}, what a gift! Thank you for the {gifts}, you made my day.",
]
DEFLECTIONS = [
    "Nice try, {user}! I am just here to talk about the {name}.",
    "Ha, {user}, I will stick to what I know best: the {name}. Ask me anything about it!",
]
MERGED = "{names} asked about this. {answer}"
FALLBACKS = [
    "Good question, {user}. Ask me about the price, shipping or how to use the {name}.",
    "Thanks for asking, {user}. I can tell you about the {name}: price, stock, shipping and more.",
]


def _join_names(names: Sequence[str]) -> str:
    uniq = list(dict.fromkeys(names))
    if len(uniq) > 3:
        return f"{', '.join(uniq[:3])} and {len(uniq) - 3} more"
    return uniq[0] if len(uniq) == 1 else f"{', '.join(uniq[:-1])} and {uniq[-1]}"


class ScriptedPersona:
    name = "scripted"

    def __init__(self, catalogue: Catalogue, host_name: str = "Joe", seed: int | None = None,
                 memory: Memory | None = None, big_gift_cny: float = 50.0) -> None:
        self.catalogue = catalogue
        self.host_name = host_name
        self.memory = memory
        self.big_gift_cny = big_gift_cny
        self._rng = random.Random(seed)

    def _fill(self, template: str, **extra: str) -> str:
        values = self.catalogue.product.values(self.catalogue.currency_word, self.host_name)
        values.update(extra)
        return template.format(**values)

    def topic(self, text: str) -> str | None:
        """The FAQ topic a message asks about (its first keyword), for merging repeated questions."""
        best: tuple[int, str] | None = None
        for keywords, _ in self.catalogue.product.faq:
            for k in keywords:
                if k in text.lower() and (best is None or len(k) > best[0]):
                    best = (len(k), keywords[0])
        return best[1] if best else None

    def answer_text(self, event: ChatEvent) -> str:
        text = event.text.lower()
        user = event.user.name
        returning = self.memory.returning(event) if self.memory else None
        if returning is not None and event.kind is EventKind.DANMAKU and not self._match_faq(text):
            return self._fill("Welcome back, {user}! " + self._rng.choice(FALLBACKS), user=user)
        if event.kind is EventKind.SUPER_CHAT:
            lead = f"Thank you so much for the super chat, {user}!"
            body = self._match_faq(text)
            return f"{lead} {self._fill(body)}" if body else f"{lead} {event.text}"
        body = self._match_faq(text)
        if body:
            return f"{user}, {self._fill(body)}" if len(user) < 30 else self._fill(body)
        if any(text.startswith(g) for g in _GREETINGS):
            return self._fill("Hi {user}! Welcome to the stream. Today it is all about the {name}.", user=user)
        return self._fill(self._rng.choice(FALLBACKS), user=user)

    def _match_faq(self, text: str) -> str | None:
        best: tuple[int, str] | None = None
        for keywords, answer in self.catalogue.product.faq:
            for k in keywords:
                if k in text and (best is None or len(k) > best[0]):
                    best = (len(k), answer)
        return best[1] if best else None

    def thanks_text(self, events: Sequence[ChatEvent]) -> str:
        kind = events[0].kind
        names = _join_names([e.user.name for e in events])
        if kind in (EventKind.GIFT, EventKind.MEMBERSHIP):
            gifts = list(dict.fromkeys(e.gift_name or "gift" for e in events))
            word = gifts[0] + "s" if len(gifts) == 1 and not gifts[0].endswith("s") else "gifts"
            total = sum(e.amount.common for e in events if e.amount)
            pool = BIG_GIFT_THANKS if total >= self.big_gift_cny else GIFT_THANKS
            return self._rng.choice(pool).format(names=names, gifts=word)
        pool = {EventKind.FOLLOW: FOLLOW_THANKS, EventKind.LIKE: LIKE_THANKS}.get(kind, ENTER_GREETING)
        return self._rng.choice(pool).format(names=names)

    def deflect_text(self, event: ChatEvent) -> str:
        return self._fill(self._rng.choice(DEFLECTIONS), user=event.user.name)

    def text_for(self, turn: Turn) -> str:
        if turn.kind in ("idle", "operator"):
            return turn.text
        if turn.kind == "thanks":
            return self.thanks_text(turn.events)
        if turn.kind == "deflect":
            return self.deflect_text(turn.events[0])
        answer = self.answer_text(turn.events[0])
        if len(turn.events) > 1:
            body = self._match_faq(turn.events[0].text.lower())
            answer = MERGED.format(names=_join_names(turn.names), answer=self._fill(body) if body else answer)
        return answer

    async def aclose(self) -> None:
        """Nothing to release."""

    async def reply(self, turn: Turn) -> AsyncGenerator[str, None]:
        """The reply sentence by sentence (the LLM persona streams real tokens the same way)."""
        for sentence in split_text(self.text_for(turn)):
            yield sentence
