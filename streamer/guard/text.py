"""What the guard's rules look at: views of one piece of text, each mapped back to the original.

A rule is written against one *view* of a sentence, so it does not have to spell out every way a
phrase can be disguised:

- ``raw``: the text as the model wrote it;
- ``cased``: NFKC (full-width letters and digits become ASCII), look-alike letters (Cyrillic "а")
  folded, zero-width characters removed, whitespace collapsed; case kept (brand names);
- ``text``: ``cased`` in lower case (what ``normalise`` returns);
- ``spoken``: ``text`` with what is spelled out folded back: "dot com" and "点com" become ".com",
  "at" between an address's parts "@", "w w w" "www", runs of Chinese or English digit words digits
  ("幺三八", "seven seven eight"), and separators that split a Chinese word ("微 信", "微-信") removed;
- ``pinyin``: ``spoken`` with every Chinese character replaced by its toneless syllable, so a
  homophone ("威信" for 微信) or a word typed as pinyin ("weixin") reads the same;
- ``squashed``: letters and digits of ``spoken`` only (split or spelled secrets).

Every view keeps, for each of its characters, the index of the original character it came from:
a match in any view can be traced back (to rewrite a price in place, or to tell whether a phrase
split across two sentences ends in the newer one).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

# Latin look-alikes that NFKC leaves alone (Cyrillic and Greek letters used to dodge word lists).
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ο": "o", "α": "a", "ν": "v",
    "ι": "i", "κ": "k", "τ": "t", "ρ": "p", "ε": "e", "υ": "u", "χ": "x", "ℓ": "l",
})
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
                                    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CN_DIGITS = {"零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
              "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_EN_DIGITS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
              "seven": "7", "eight": "8", "nine": "9"}

_SPELLED: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # runs of three or more Chinese digits (a phone number read out); 十 and 百 are not digits
    (re.compile("[零〇洞一幺二两三四五六七八九]{3,}"), lambda m: "".join(_CN_DIGITS[c] for c in m.group(0))),
    # runs of three or more English digit words
    (re.compile(r"\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)(?:[\s,-]+(?:zero|oh|one|two|three|four"
                r"|five|six|seven|eight|nine)){2,}\b"),
     lambda m: "".join(_EN_DIGITS[w] for w in re.findall(r"[a-z]+", m.group(0)))),
    # a spelled-out or spaced dot between parts of an address: "cheap-tea dot example", "cha 点 com"
    (re.compile(r"(?<=[a-z0-9])\s*(?:\(dot\)|\[dot\]|\{dot\}|\bdot\b|点|點|句点|。|．)\s*(?=[a-z0-9])"), "."),
    (re.compile(r"(?<=[a-z0-9])\s+\.\s*(?=[a-z0-9])"), "."),
    (re.compile(r"(?<=[a-z0-9])\s*(?:\bdash\b|\bhyphen\b|横杠|杠)\s*(?=[a-z0-9])"), "-"),
    (re.compile(r"(?<=[a-z0-9])\s*(?:\bunderscore\b|下划线)\s*(?=[a-z0-9])"), "_"),
    (re.compile(r"(?<=[a-z0-9])\s*(?:\(at\)|\[at\]|\bat\b|艾特|圈a)\s*(?=[a-z0-9-]+\.[a-z])"), "@"),
    # letters or digits spelled one by one: "w w w", "c-o-m", "1 3 8"
    (re.compile(r"(?<![a-z0-9])[a-z0-9](?:[ \-_*]+[a-z0-9](?![a-z0-9])){2,}"),
     lambda m: re.sub(r"[ \-_*]+", "", m.group(0))),
    # separators that split a Chinese word: "微 信", "微-信", "私*信"
    (re.compile(f"(?<=[{CJK}])[\\s\\-_.·*~/\\\\|+]+(?=[{CJK}])"), ""),
    # a single letter or digit set apart inside Chinese: "加 V 拿", "V 信"
    (re.compile(f"(?<=[{CJK}])[\\s\\-_.·*~]+(?=[a-z0-9](?![a-z0-9]))"), ""),
    (re.compile(f"(?<![a-z0-9][a-z0-9])(?<=[a-z0-9])[\\s\\-_.·*~]+(?=[{CJK}])"), ""),
]


@dataclass(frozen=True)
class Mapped:
    """A text and, for each of its characters, the index of the original character it came from."""

    text: str
    src: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> Mapped:
        return cls(text, tuple(range(len(text))))

    def map_chars(self, fn: Callable[[str], str]) -> Mapped:
        out: list[str] = []
        src: list[int] = []
        for ch, i in zip(self.text, self.src, strict=True):
            new = fn(ch)
            out.append(new)
            src.extend([i] * len(new))
        return Mapped("".join(out), tuple(src))

    def sub(self, pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str]) -> Mapped:
        """``pattern.sub`` that keeps the map; replacement characters map to the start of their match."""
        pieces: list[str] = []
        src: list[int] = []
        last = 0
        for m in pattern.finditer(self.text):
            new = repl if isinstance(repl, str) else repl(m)
            pieces.append(self.text[last:m.start()])
            src.extend(self.src[last:m.start()])
            pieces.append(new)
            origin = self.src[m.start()] if m.start() < len(self.src) else (self.src[-1] if self.src else 0)
            src.extend([origin] * len(new))
            last = m.end()
        if not pieces:
            return self
        pieces.append(self.text[last:])
        src.extend(self.src[last:])
        return Mapped("".join(pieces), tuple(src))

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that view characters ``start:end`` came from."""
        if not self.src or start >= end:
            return (0, 0)
        return (self.src[start], self.src[end - 1] + 1)

    def first_at_or_after(self, raw_index: int) -> int:
        """The first view position whose original index is at least ``raw_index``."""
        for i, s in enumerate(self.src):
            if s >= raw_index:
                return i
        return len(self.src)


def _fold(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch).translate(_CONFUSABLES).translate(_INVISIBLE)


_SPACES = re.compile(r"\s+")
_ODD_SPACES = re.compile(r"\s{2,}|[^\S ]")
_FOLDED = re.compile("[" + re.escape("".join(chr(c) if isinstance(c, int) else c for c in _CONFUSABLES))
                     + "".join(chr(c) for c in _INVISIBLE) + "]")


def cased(text: str) -> Mapped:
    m = Mapped.of(text)
    # most sentences are already NFKC with nothing to fold: skip the per-character pass
    if not (unicodedata.is_normalized("NFKC", text) and not _FOLDED.search(text)):
        m = m.map_chars(_fold)
    return m.sub(_ODD_SPACES, " ")


def normalise(text: str) -> str:
    """NFKC (full-width to ASCII), look-alike letters folded, lower case, collapsed spaces."""
    return cased(text).text.lower().strip()


def spoken(text_view: Mapped) -> Mapped:
    m = text_view
    for pattern, repl in _SPELLED:
        m = m.sub(pattern, repl)
    return m


@functools.lru_cache(maxsize=8192)
def syllable(ch: str) -> str:
    """The toneless pinyin of one Chinese character (its most common reading), or "" if unknown."""
    from pypinyin.pinyin_dict import pinyin_dict

    reading = pinyin_dict.get(ord(ch))
    if not reading:
        return ""
    first = reading.split(",", 1)[0].replace("ü", "v")
    return "".join(c for c in unicodedata.normalize("NFD", first) if not unicodedata.combining(c))


def pinyin(spoken_view: Mapped) -> Mapped:
    """Chinese characters as space-separated syllables; everything else kept."""
    if not _HAN.search(spoken_view.text):
        return spoken_view

    def one(ch: str) -> str:
        if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff":
            syl = syllable(ch)
            return f" {syl} " if syl else ch
        return ch

    return spoken_view.map_chars(one).sub(_ODD_SPACES, " ")


_HAN = re.compile(f"[{CJK}]")


_NOT_ALNUM = re.compile(r"[^0-9a-z" + CJK + "]+")


def squashed(spoken_view: Mapped) -> Mapped:
    return spoken_view.sub(_NOT_ALNUM, "")


class Views:
    """The views of one text, built on first use (most sentences never need the pinyin view)."""

    def __init__(self, text: str, mask: Callable[[Mapped], Mapped] | None = None) -> None:
        self.raw = Mapped.of(text)
        self.cased = cased(text)
        low = self.cased.text.lower()
        lower = Mapped(low, self.cased.src) if len(low) == len(self.cased.text) else self.cased.map_chars(str.lower)
        self.text = mask(lower) if mask is not None else lower
        self._cache: dict[str, Mapped] = {}

    def get(self, name: str) -> Mapped:
        if name == "raw":
            return self.raw
        if name == "cased":
            return self.cased
        if name == "text":
            return self.text
        view = self._cache.get(name)
        if view is None:
            if name == "spoken":
                view = spoken(self.text)
            elif name == "pinyin":
                view = pinyin(self.get("spoken"))
            elif name == "squashed":
                view = squashed(self.get("spoken"))
            else:
                raise KeyError(name)
            self._cache[name] = view
        return view


VIEWS = ("raw", "cased", "text", "spoken", "pinyin", "squashed")

# ---------------------------------------------------------------------- numbers

_CN_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_BIG = {"万": 10_000, "萬": 10_000, "亿": 100_000_000}
_EN_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}


def parse_number(text: str) -> float | None:
    """A number written in digits ("1,299.00"), Chinese ("一百二十九", "六十八点五", "六八") or English
    words ("sixty-eight", "a hundred and twenty"); None if ``text`` is not one."""
    t = text.strip().lower().replace(",", "").replace("，", "")
    if not t:
        return None
    try:
        return float(t)
    except ValueError:
        pass
    if all(c in _CN_DIGITS or c in _CN_UNITS or c in _CN_BIG or c in "点點" for c in t):
        return _parse_chinese(t)
    return _parse_english(t)


def _parse_chinese(t: str) -> float | None:
    whole, _, frac = t.replace("點", "点").partition("点")
    if frac and not all(c in _CN_DIGITS for c in frac):
        return None
    if whole and all(c in _CN_DIGITS for c in whole):  # digit by digit: 六八, 二零二四
        value = float("".join(_CN_DIGITS[c] for c in whole))
    else:
        total, section, digit = 0, 0, 0
        for c in whole:
            if c in _CN_DIGITS:
                digit = int(_CN_DIGITS[c])
            elif c in _CN_UNITS:
                section += (digit or 1) * _CN_UNITS[c]
                digit = 0
            elif c in _CN_BIG:
                total += (section + digit) * _CN_BIG[c]
                section, digit = 0, 0
        value = float(total + section + digit)
    if frac:
        value += float("0." + "".join(_CN_DIGITS[c] for c in frac))
    return value


def _parse_english(t: str) -> float | None:
    words = [w for w in re.split(r"[\s-]+", t) if w and w not in ("and", "a")]
    if not words:
        return None
    total, current = 0, 0
    for w in words:
        if w in _EN_WORDS:
            current += _EN_WORDS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w == "thousand":
            total += (current or 1) * 1000
            current = 0
        else:
            return None
    return float(total + current)
