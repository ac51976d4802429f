"""Cutting streamed text into speakable sentences, for Chinese and English punctuation.

Tokens arrive a few characters at a time; a sentence is released as soon as its end is certain, so
the first one reaches the voice while the model is still writing the second. A full stop between
digits ("4.99") or after a common abbreviation ("Mr.") is not an end. Sentences that run on without
punctuation are cut at a comma (or hard-cut) once they pass ``max_chars``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator

from streamer.voice.normalize import base_language

_HARD_ENDS = "。！？!?；;…\n"
_SOFT_BREAKS = "，,、：:"
_ABBREVIATIONS = ("mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "no")
MAX_CHARS = {"en": 120, "zh": 48}


FIRST_CLAUSE = {"en": (50, 12), "zh": (14, 4)}
"""A reply's first sentence longer than this (characters) is said clause by clause: the first clause, at
least the second figure long, ends at the first comma after it."""


def split_first_clause(sentence: str) -> list[str]:
    """The first sentence of a reply, cut after its first clause when it is long, so the voice can start on
    a few words instead of a whole sentence (the first audio comes sooner; a comma is a natural pause)."""
    language = "zh" if any(ord(ch) > 0x2E80 for ch in sentence) else "en"
    longest, shortest = FIRST_CLAUSE[language]
    if len(sentence) <= longest:
        return [sentence]
    for i in range(shortest, len(sentence) - shortest):
        ch = sentence[i]
        if ch in _SOFT_BREAKS and not (sentence[i - 1].isdigit() and sentence[i + 1:i + 2].isdigit()):
            head, tail = sentence[:i + 1].strip(), sentence[i + 1:].strip()
            return [head, tail] if head and tail else [sentence]
    return [sentence]


def max_chars_for(language: str) -> int:
    """Where a run-on sentence is cut, by language ("zh" / "en" or any setting base_language reads)."""
    return MAX_CHARS[base_language(language)]


class SentenceSplitter:
    def __init__(self, max_chars: int = 120) -> None:
        self.buf = ""
        self.max_chars = max_chars

    def feed(self, text: str) -> Iterator[str]:
        self.buf += text
        while True:
            cut = self._find_end()
            if cut is None:
                break
            sentence, self.buf = self.buf[:cut].strip(), self.buf[cut:]
            if sentence.strip(_HARD_ENDS + ". "):  # punctuation alone is not a sentence
                yield sentence

    def flush(self) -> Iterator[str]:
        rest, self.buf = self.buf.strip(), ""
        if rest.strip(_HARD_ENDS + ". "):
            yield rest

    def _find_end(self) -> int | None:
        buf = self.buf
        for i, ch in enumerate(buf):
            if i >= self.max_chars:
                break  # a run-on sentence: cut it below (the voice should not wait for its end)
            if ch in _HARD_ENDS:
                j = i + 1
                while j < len(buf) and buf[j] in _HARD_ENDS + "”\"'）)":
                    j += 1
                if j == len(buf) and ch not in "\n。！？；…":  # "?!" may still grow; wait for the next char
                    return None
                return j
            if ch == ".":
                if i + 1 >= len(buf):
                    return None  # could be a decimal point or "..." still arriving
                nxt = buf[i + 1]
                prev = buf[i - 1] if i else ""
                if prev.isdigit() and nxt.isdigit():
                    continue
                word = buf[:i].rsplit(None, 1)[-1].lower() if buf[:i].strip() else ""
                if word in _ABBREVIATIONS:
                    continue
                if nxt in " \n\"')”" or ord(nxt) > 0x2E80:
                    return i + 1
        if len(buf) > self.max_chars:
            soft = max((buf.rfind(c, 0, self.max_chars) for c in _SOFT_BREAKS), default=-1)
            return soft + 1 if soft > self.max_chars // 3 else self.max_chars
        return None


def split_text(text: str, max_chars: int | None = None, language: str = "en") -> list[str]:
    s = SentenceSplitter(max_chars or max_chars_for(language))
    return [*s.feed(text), *s.flush()]


async def split_stream(tokens: AsyncGenerator[str, None], max_chars: int | None = None,
                       language: str = "en") -> AsyncGenerator[str, None]:
    s = SentenceSplitter(max_chars or max_chars_for(language))
    async for t in tokens:
        for sentence in s.feed(t):
            yield sentence
    for sentence in s.flush():
        yield sentence
