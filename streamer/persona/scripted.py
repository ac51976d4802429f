"""The scripted persona: offline answers from the product catalogue, no LLM needed.

Questions are matched to FAQ keywords of the current product (longest keyword wins); greetings get
greetings; gifts, follows and likes get templated thanks with random variants; idle talk rotates
through the product's idle lines and selling points, resuming where it left off. Replies are yielded
sentence by sentence, like a streaming LLM, so voice can start on the first one.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Sequence

from streamer.events import ChatEvent, EventKind
from streamer.persona.catalogue import Catalogue

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_GREETINGS = ("hi", "hello", "hey", "good morning", "good evening", "你好", "大家好")

GIFT_THANKS = [
    "Thank you {names} for the {gifts}! You are amazing.",
    "Wow, {names}, thank you so much for the {gifts}!",
    "Big thanks to {names} for the {gifts}, that means a lot.",
]
FOLLOW_THANKS = ["Thanks for the follow, {names}!", "Welcome to the family, {names}, thanks for following!"]
LIKE_THANKS = ["Thank you for all the likes, {names}!", "I see those likes, {names}, thank you!"]
ENTER_GREETING = ["Welcome in, {names}!", "Hi {names}, glad you are here!"]
FALLBACKS = [
    "Good question, {user}. Ask me about the price, shipping or how to use the {name}.",
    "Thanks for asking, {user}. I can tell you about the {name}: price, stock, shipping and more.",
]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _join_names(names: Sequence[str]) -> str:
    uniq = list(dict.fromkeys(names))
    if len(uniq) > 3:
        return f"{', '.join(uniq[:3])} and {len(uniq) - 3} more"
    return uniq[0] if len(uniq) == 1 else f"{', '.join(uniq[:-1])} and {uniq[-1]}"


class ScriptedPersona:
    name = "scripted"

    def __init__(self, catalogue: Catalogue, host_name: str = "Joe", seed: int | None = None) -> None:
        self.catalogue = catalogue
        self.host_name = host_name
        self._rng = random.Random(seed)
        self._idle_cursor = 0

    def _fill(self, template: str, **extra: str) -> str:
        values = self.catalogue.product.values(self.catalogue.currency_word, self.host_name)
        values.update(extra)
        return template.format(**values)

    def answer_text(self, event: ChatEvent) -> str:
        text = event.text.lower()
        user = event.user.name
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
            return self._rng.choice(GIFT_THANKS).format(names=names, gifts=word)
        pool = {EventKind.FOLLOW: FOLLOW_THANKS, EventKind.LIKE: LIKE_THANKS}.get(kind, ENTER_GREETING)
        return self._rng.choice(pool).format(names=names)

    def idle_text(self) -> str:
        product = self.catalogue.product
        lines = product.idle + product.selling_points
        if not lines:
            return self._fill("Ask me anything about the {name}.")
        line = lines[self._idle_cursor % len(lines)]
        self._idle_cursor += 1
        return self._fill(line)

    async def respond(self, text: str) -> AsyncIterator[str]:
        """Stream a prepared reply sentence by sentence (the LLM persona streams real tokens)."""
        for sentence in split_sentences(text):
            yield sentence
