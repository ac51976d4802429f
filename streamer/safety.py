"""Safety between chat and voice: prompt-injection defence on the way in, compliance on the way out.

In: viewer text is only ever given to the LLM as quoted, escaped viewer content inside a block the
system prompt declares untrusted (``quote_viewer``), and messages that try to steer the host (reveal
the prompt or keys, change persona, make it say something) are recognised (``InjectionGuard``) and
answered with a deflection instead of reaching the model.

Out: every sentence passes ``OutputFilter`` before it is spoken. It drops sentences that leak the
system prompt (long verbatim overlap), secrets (API keys, tokens, the endpoint), or announce a new
persona, drops profanity and competitor names, and rewrites the absolute claims live-commerce
advertising rules forbid (最好, 第一, 国家级, 100% ...). Each decision is logged with its reason.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# Phrases that try to turn viewer text into instructions (EN and ZH), matched on normalised text.
_INJECTION_PATTERNS = [
    r"ignore (all |any |the )?(previous|prior|above|earlier|your) (instructions|rules|prompts?|messages)",
    r"disregard (all |the |your )?(previous|prior|above)? ?(instructions|rules|prompt)",
    r"forget (all |everything|your )?(previous |prior )?(instructions|rules|you were told)",
    r"(system|initial|hidden|original|developer) (prompt|message|instructions)",
    r"(reveal|show|print|repeat|output|tell me|what is|what's|leak|dump) .{0,30}(prompt|instructions|rules|configuration|config|settings)",
    r"(api[ _-]?key|secret key|access token|password|credentials|base[ _]?url|endpoint|\.env|environment variables?)",
    r"(you are|you're|act as|pretend (to be|you are)|roleplay as|from now on,? you( are)?|become) (now )?(a |an )?(dan|evil|jailbroken|unfiltered|uncensored|developer mode|another|different|new)",
    r"(developer|god|admin|sudo|debug) mode",
    r"(summari[sz]e|list|explain|describe) .{0,25}(rules|instructions|guidelines) .{0,25}(given|told|received|have)",
    r"pretend (you are|you're|to be)|you are (no longer|not) (a |an )?(host|assistant|ai)",
    r"(repeat|say|read) (after me|exactly|verbatim|the following|this)",
    r"new (persona|personality|identity|character|role)",
    r"\[(system|inst)\]|<\|?(system|im_start|im_end)\|?>|### ?(instruction|system)",
    r"translate (the|your) (above|previous|system)",
    r"忽略(之前|以上|上面|前面|所有)?的?(指令|规则|设定|提示|要求)",
    r"(系统|初始|隐藏)?(提示词|系统提示|系统指令|prompt|设定)(是什么|发出来|告诉我|念出来|复述|输出|给我看)",
    r"(告诉我|说出|念出|输出|复述|打印|透露).{0,12}(提示词|设定|指令|规则|配置|密钥|key|令牌|密码)",
    r"(密钥|秘钥|api ?key|令牌|接口地址|配置文件|环境变量)",
    r"(从现在(开始|起)|现在)你(是|就是|扮演|变成)",
    r"你(现在|从此)?(是|变成|当)(一[只个])?(猫娘|女仆|奴隶|坏人|黑客)",
    r"(扮演|假装|切换成|变成)(一个|另一个)?(新的|别的|其他)?(角色|人格|身份|主播|ai)",
    r"(开发者|管理员|调试|越狱)模式",
    r"(跟我念|跟我说|重复(一遍|以下|下面)|照着念|说一句|大声说)",
]
_INJECTION_RE = re.compile("|".join(f"(?:{p})" for p in _INJECTION_PATTERNS), re.IGNORECASE)

_SECRET_RE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{12,}|(?:api[_ -]?key|token|password|secret)\s*[:=]\s*\S{6,}|https?://[^\s]+/v1\b|Bearer\s+\S{8,})",
    re.IGNORECASE)
_PERSONA_SWITCH_RE = re.compile(
    r"\b(i am|i'm) now\b|\bmy new (name|persona|identity)\b|\bas (dan|an? unfiltered)\b|developer mode|"
    r"我现在是|我的新(身份|名字|人格)|我已(经)?切换|越狱", re.IGNORECASE)


def normalise(text: str) -> str:
    """NFKC (full-width to ASCII), lower case, collapsed spaces: what patterns and blocklists see."""
    t = unicodedata.normalize("NFKC", text).lower()
    return " ".join(t.split())


def quote_viewer(name: str, text: str, extra: str = "") -> str:
    """Viewer content as an escaped quote the model must not execute."""
    def esc(s: str) -> str:
        return s.replace("<", "‹").replace(">", "›").replace("\n", " ")

    attrs = f' name="{esc(name)[:40]}"' + (f" {extra}" if extra else "")
    return f"<viewer{attrs}>{esc(text)}</viewer>"


class InjectionGuard:
    def detect(self, text: str) -> str | None:
        """The matched steering phrase, or None."""
        m = _INJECTION_RE.search(normalise(text))
        return m.group(0) if m else None


@dataclass
class FilterResult:
    text: str | None
    reason: str = ""


@dataclass
class OutputFilter:
    """Sentence-level compliance. ``secrets`` and ``protected`` are texts that must never be spoken."""

    rewrites: dict[str, str] = field(default_factory=dict)
    dropped_terms: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    leak_chars: int = 24
    dropped: int = 0
    rewritten: int = 0

    def __post_init__(self) -> None:
        self._shingles: set[str] = set()
        for text in self.protected:
            t = _squash(text)
            self._shingles.update(t[i:i + self.leak_chars] for i in range(0, max(0, len(t) - self.leak_chars + 1)))
        self._secrets = [s for s in self.secrets if len(s) >= 6]
        if self.rewrites:
            self._rewrite_re: re.Pattern[str] | None = re.compile(
                "|".join(re.escape(k) for k in sorted(self.rewrites, key=len, reverse=True)), re.IGNORECASE)
        else:
            self._rewrite_re = None
        self._lower_rewrites = {k.lower(): v for k, v in self.rewrites.items()}

    def check(self, sentence: str) -> FilterResult:
        norm = normalise(sentence)
        squashed = _squash(sentence)
        if any(s in sentence or s.lower() in norm for s in self._secrets) or _SECRET_RE.search(sentence):
            return self._drop(sentence, "secret")
        if self._leaks(squashed):
            return self._drop(sentence, "system prompt leak")
        if _PERSONA_SWITCH_RE.search(sentence):
            return self._drop(sentence, "persona change")
        for term in self.dropped_terms:
            if normalise(term) in norm:
                return self._drop(sentence, f"banned term {term!r}")
        if self._rewrite_re is not None:
            new = self._rewrite_re.sub(lambda m: self._lower_rewrites[m.group(0).lower()], sentence)
            if new != sentence:
                self.rewritten += 1
                log.info("sentence rewritten for compliance", extra={"before": sentence[:80], "after": new[:80]})
                return FilterResult(new, "rewritten")
        return FilterResult(sentence)

    def _drop(self, sentence: str, reason: str) -> FilterResult:
        self.dropped += 1
        log.warning("sentence dropped before voice", extra={"reason": reason, "chars": len(sentence)})
        return FilterResult(None, reason)

    def _leaks(self, squashed: str) -> bool:
        n = self.leak_chars
        return bool(self._shingles) and any(squashed[i:i + n] in self._shingles
                                            for i in range(0, max(0, len(squashed) - n + 1)))

    async def filter_stream(self, sentences: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
        """Filter a reply. A leak can hide in short sentences that are harmless one by one, so the
        model's recent output (spoken or not) is checked as a whole too; once a reply has leaked
        anything, or tried to switch persona, the rest of it is not spoken."""
        window = ""
        async with aclosing(sentences):
            async for s in sentences:
                window = (window + _squash(s))[-4 * self.leak_chars:]
                r = self.check(s)
                if r.reason in ("secret", "system prompt leak", "persona change") or (r.text and self._leaks(window)):
                    if r.text:
                        self._drop(s, "system prompt leak (across sentences)")
                    log.warning("rest of the reply suppressed", extra={"reason": r.reason or "leak"})
                    return
                if r.text:
                    yield r.text


def _squash(text: str) -> str:
    return "".join(ch for ch in normalise(text) if ch.isalnum())


def load_terms(groups: Iterable[Iterable[str]]) -> list[str]:
    return [t for g in groups for t in g if t.strip()]
