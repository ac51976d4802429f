"""Intelligibility scores for a voice heard back through speech recognition: word error for English,
pinyin-syllable error for Chinese (whisper may write traditional characters, digits or homophones;
what matters is whether the syllables a viewer hears are the ones the host meant)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from streamer.voice.normalize import normalize_en, normalize_zh


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def english_words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", normalize_en(text).lower().replace("-", " ")).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate after normalising both sides the same way ("$49" and "forty-nine dollars" agree)."""
    ref, hyp = english_words(reference), english_words(hypothesis)
    return edit_distance(ref, hyp) / max(1, len(ref))


def pinyin_syllables(text: str) -> list[str]:
    from pypinyin import lazy_pinyin

    zh = normalize_zh(text)
    return [s for s in lazy_pinyin(re.sub(r"[^\u3400-\u9fff]", " ", zh)) if s.strip()]


def syllable_error_rate(reference: str, hypothesis: str) -> float:
    """Pinyin-syllable error rate (tones ignored) of Chinese speech heard back."""
    ref, hyp = pinyin_syllables(reference), pinyin_syllables(hypothesis)
    return edit_distance(ref, hyp) / max(1, len(ref))
