"""The output guard: every sentence between the persona and the voice is spoken, rewritten or dropped.

It holds even when the model is fooled: it does not ask the model anything, it reads what the
model (or the script, or the paraphrased idle line, or the operator) is about to say.

- Rules come from data (streamer.guard.rules): links, contact diversion, claims, other brands,
  promises about the product. Two checks are built in and stay on even with ``guard = "off"``:
  secrets (the values of the API key and other secret variables, also split or spelled out) and
  the system prompt (long verbatim overlap with the persona's private instructions).
- Promises about the product (price, stock, discounts, coupons, gifts) are judged against the live
  catalogue (streamer.guard.live) at the moment of the check. A wrong price or stock figure in a
  plain statement is rewritten to the live value; a discount, coupon or gift the catalogue does
  not list drops the sentence.
- Streaming: a reply is judged with the tail of what the model already said in it, so a phrase
  split across sentences ("Visit cheap-tea." "Dot example!") is caught in the sentence that
  completes it. After a ``stop`` rule (a secret, a link, a contact) the rest of that reply is not
  spoken either: the model is following someone else's script.
- Each decision is logged with the rule id and reason (the sentence only as a short excerpt, and
  never for secrets), counted, and kept in a bounded list for the operator (``recent()``). The
  operator can allow a phrase for this show (``allow()``): it is then never a reason to change a
  sentence, and counts as an allowed brand.
"""

from __future__ import annotations

import collections
import logging
import re
import time
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from streamer.guard.live import Allowances, LiveValues
from streamer.guard.rules import Rule, RuleSet, semantic_name
from streamer.guard.text import Mapped, Views, normalise
from streamer.persona.catalogue import Catalogue

log = logging.getLogger(__name__)

SEVERITY = {"stop": 0, "drop": 1, "rewrite": 2}
_PRIVATE = ("secret", "leak")
"""Categories whose sentences are never quoted in logs or in the operator's list."""


@dataclass
class FilterResult:
    """The decision for one sentence: ``text`` is what to speak (None: nothing)."""

    text: str | None
    reason: str = ""
    rule: str = ""
    action: str = "speak"
    """speak | rewrite | drop | stop (dropped, and the rest of the reply too)"""


@dataclass
class _Finding:
    rule: Rule
    match: re.Match[str]
    view: Mapped


@dataclass
class GuardContext:
    """Optional per-check context: another catalogue than the guard's own (the live one is the default)."""

    catalogue: Catalogue | None = None
    kind: str = "answer"


@dataclass
class OutputGuard:
    rules: RuleSet = field(default_factory=RuleSet)
    catalogue: Catalogue | None = None
    allowances: Allowances = field(default_factory=Allowances)
    protected: list[str] = field(default_factory=list)
    """Private texts (the persona instructions) never to be spoken, even in pieces."""
    secrets: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    mode: str = "on"
    check_operator: bool = True
    """False: the operator's say-now lines are spoken as typed."""
    recent_max: int = 100
    leak_chars: int = 24
    secret_chars: int = 10
    window_chars: int = 80
    dropped: int = 0
    rewritten: int = 0

    def __post_init__(self) -> None:
        active = self.rules.for_platforms(self.platforms) if self.mode == "on" else []
        ordered = sorted(active, key=lambda r: SEVERITY[r.action])
        self._matchers = [r for r in ordered if not r.replacements]
        self._replacers = [r for r in ordered if r.replacements]
        terms = {t for r in self._replacers for t in r.replacements}
        self._terms_re = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)),
                                    re.IGNORECASE) if terms else None
        self._shingles: set[str] = set()
        for text in self.protected:
            t = Views(text).get("squashed").text
            n = self.leak_chars
            self._shingles.update(t[i:i + n] for i in range(0, max(0, len(t) - n + 1)))
        self._secret_chunks: set[str] = set()
        for s in self.secrets:
            t = Views(s).get("squashed").text
            n = min(self.secret_chars, len(t))
            if len(t) >= 8:
                self._secret_chunks.update(t[i:i + n] for i in range(0, len(t) - n + 1))
        self._allowed: list[str] = []
        self._allow_re: re.Pattern[str] | None = None
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.recent_max)
        self.by_rule: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------ operator
    def allow(self, phrase: str) -> list[str]:
        """Allow a phrase for this show (not persisted): it no longer changes a sentence. Returns the list."""
        p = normalise(phrase)
        if p and p not in self._allowed:
            self._allowed.append(p)
            self._rebuild_allow()
            log.info("guard phrase allowed by the operator", extra={"phrase": p[:60]})
        return list(self._allowed)

    def disallow(self, phrase: str) -> list[str]:
        p = normalise(phrase)
        if p in self._allowed:
            self._allowed.remove(p)
            self._rebuild_allow()
        return list(self._allowed)

    def allowed(self) -> list[str]:
        return list(self._allowed)

    def _rebuild_allow(self) -> None:
        self._allow_re = re.compile("|".join(re.escape(p) for p in sorted(self._allowed, key=len, reverse=True))) \
            if self._allowed else None

    def recent(self) -> list[dict[str, Any]]:
        """Recent decisions, newest last: time (epoch s), rule, action, reason, excerpt, kind."""
        return list(self._recent)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "rules": len(self._matchers) + len(self._replacers),
                               "files": list(self.rules.files), "platforms": list(self.platforms),
                               "dropped": self.dropped, "rewritten": self.rewritten, "by_rule": dict(self.by_rule),
                               "allowed": self.allowed(), "check_operator": self.check_operator}
        if self.mode == "off":
            out["warning"] = ("the output guard is off ([safety] guard = \"off\"): only secrets and the system "
                              "prompt are kept from the voice")
        return out

    # ------------------------------------------------------------------ checking
    def check(self, sentence: str, context: GuardContext | None = None) -> FilterResult:
        """One sentence on its own (no earlier sentences of the reply)."""
        return self._judge(sentence, "", context or GuardContext())

    async def filter_stream(self, sentences: AsyncGenerator[str, None], kind: str = "answer",
                            context: GuardContext | None = None) -> AsyncGenerator[str, None]:
        """A reply, sentence by sentence, as it streams; judged with the tail of what came before."""
        ctx = context or GuardContext(kind=kind)
        said = ""
        dropped: FilterResult | None = None
        async with aclosing(sentences) as stream:
            async for s in stream:
                if kind == "operator" and not self.check_operator:
                    yield s
                    continue
                if dropped is not None and _continues(s):
                    # "Golden Dragon Tea Co." | "sells expired stock.": the sentence splitter cut one
                    # sentence in two; the rest of a dropped sentence goes with it
                    r = self._record(s, FilterResult(None, f"continues a dropped sentence ({dropped.reason})",
                                                     dropped.rule, "drop"), ctx, dropped.rule.split(".", 1)[0])
                else:
                    r = self._judge(s, said, ctx)
                said = (said + " " + s)[-self.window_chars:] if said else s[-self.window_chars:]
                if r.action == "stop":
                    log.warning("rest of the reply suppressed", extra={"rule": r.rule, "reason": r.reason})
                    return
                dropped = r if r.text is None else None
                if r.text:
                    yield r.text

    def _judge(self, sentence: str, before: str, ctx: GuardContext) -> FilterResult:
        result, category = self.evaluate(sentence, before, ctx)
        if result.action != "speak":
            self._record(sentence, result, ctx, category)
        return result

    def evaluate(self, sentence: str, before: str = "", ctx: GuardContext | None = None) -> tuple[FilterResult, str]:
        """The decision for ``sentence`` said after ``before`` (same reply), and the rule's category;
        nothing is logged or counted."""
        ctx = ctx or GuardContext()
        joined = f"{before} {sentence}" if before else sentence
        offset = len(before) + 1 if before else 0
        views = Views(joined, self._mask_allowed)
        builtin = self._builtin(views, offset)
        if builtin is not None:
            return builtin, builtin.rule.split(".", 1)[0]
        live: LiveValues | None = None
        rewrites: list[_Finding] = []
        for rule in self._matchers:
            finding, live = self._find(rule, views, offset, live, ctx)
            if finding is None:
                continue
            if rule.action != "rewrite":
                return FilterResult(None, rule.reason, rule.id, rule.action), rule.category
            rewrites.append(finding)
        text = sentence
        if rewrites:
            assert live is not None
            fixed = self._rewrite_live(sentence, offset, rewrites, live)
            first = rewrites[0].rule
            if fixed is None:
                return FilterResult(None, f"{first.reason} (cannot be corrected)", first.id, "drop"), first.category
            text = fixed
        text, terms = self._replace_terms(text)
        if text != sentence:
            used = rewrites[0].rule if rewrites else terms
            assert used is not None
            return FilterResult(text, used.reason, used.id, "rewrite"), used.category
        return FilterResult(sentence), ""

    def _mask_allowed(self, view: Mapped) -> Mapped:
        if self._allow_re is None:
            return view
        return view.sub(self._allow_re, lambda m: " " * len(m.group(0)))

    def _builtin(self, views: Views, offset: int) -> FilterResult | None:
        squashed = views.get("squashed")
        boundary = squashed.first_at_or_after(offset)
        if self._secret_chunks:
            n = min(self.secret_chars, *(len(c) for c in self._secret_chunks))
            t = squashed.text
            for i in range(max(0, boundary - n + 1), max(0, len(t) - n + 1)):
                if t[i:i + n] in self._secret_chunks:
                    return FilterResult(None, "a secret value (API key, token or endpoint)", "secret.value", "stop")
        if self._shingles:
            n = self.leak_chars
            t = squashed.text
            for i in range(max(0, boundary - n + 1), max(0, len(t) - n + 1)):
                if t[i:i + n] in self._shingles:
                    return FilterResult(None, "the system prompt, verbatim", "leak.system_prompt", "stop")
        return None

    def _find(self, rule: Rule, views: Views, offset: int, live: LiveValues | None,
              ctx: GuardContext) -> tuple[_Finding | None, LiveValues | None]:
        view = views.get(rule.view)
        text = view.text
        if rule.only_if is not None and not rule.only_if.search(text):
            return None, live
        if rule.mask is not None:
            text = rule.mask.sub(lambda m: " " * len(m.group(0)), text)
        boundary = view.first_at_or_after(offset) if offset else 0
        for m in rule.regex.finditer(text):
            if m.end() <= boundary:
                continue
            if rule.semantic:
                if live is None:
                    live = LiveValues(ctx.catalogue or self.catalogue, self.allowances, self._allowed)
                if self._all_allowed(m, live, views.get("text").text):
                    continue
            return _Finding(rule, m, view), live
        return None, live

    @staticmethod
    def _all_allowed(m: re.Match[str], live: LiveValues, sentence: str) -> bool:
        present = [(semantic_name(g), v) for g, v in m.groupdict().items() if v is not None and semantic_name(g)]
        return bool(present) and all(live.allowed(g, v, sentence) for g, v in present if g)

    def _rewrite_live(self, sentence: str, offset: int, findings: list[_Finding], live: LiveValues) -> str | None:
        """Put live values in place of wrong prices and stock figures; None when that is not safe."""
        edits: list[tuple[int, int, str]] = []
        norm = normalise(sentence)
        for f in findings:
            if f.rule.drop_if is not None and f.rule.drop_if.search(f.view.text[f.view.first_at_or_after(offset):]):
                return None
            group = next((g for g, v in f.match.groupdict().items()
                          if v is not None and semantic_name(g) in ("price", "money", "stock")), None)
            value = live.live_value(semantic_name(group) or "", norm) if group else None
            if group is None or value is None:
                return None
            start, end = f.view.origin(*f.match.span(group))
            if start < offset:
                return None
            edits.append((start - offset, end - offset, value))
        edits.sort()
        for (_, e1, _), (s2, _, _) in zip(edits, edits[1:], strict=False):
            if s2 < e1:
                return None
        for start, end, value in reversed(edits):
            sentence = sentence[:start] + value + sentence[end:]
        return sentence

    def _replace_terms(self, text: str) -> tuple[str, Rule | None]:
        """Every rewrite table at once, longest term first across tables ("全网最低" before "最低价");
        a term goes to the first table whose ``only_if`` holds and whose ``mask`` leaves it free."""
        if self._terms_re is None:
            return text, None
        usable = [r for r in self._replacers if r.only_if is None or r.only_if.search(text)]
        masks = {r.id: [m.span() for m in r.mask.finditer(text)] if r.mask is not None else [] for r in usable}
        used: list[Rule] = []

        def swap(m: re.Match[str]) -> str:
            for rule in usable:
                new = rule.replacements.get(m.group(0).lower())
                if new is not None and not any(a < m.end() and m.start() < b for a, b in masks[rule.id]):
                    used.append(rule)
                    return new
            return m.group(0)

        new_text = self._terms_re.sub(swap, text)
        return new_text, (used[0] if used else None)

    def _record(self, sentence: str, result: FilterResult, ctx: GuardContext, category: str = "") -> FilterResult:
        private = category in _PRIVATE or result.rule.split(".", 1)[0] in _PRIVATE
        excerpt = "[withheld]" if private else sentence[:60]
        self.by_rule[result.rule] += 1
        if result.text is None:
            self.dropped += 1
            log.warning("sentence dropped before voice", extra={"rule": result.rule, "action": result.action,
                                                                "reason": result.reason, "excerpt": excerpt,
                                                                "kind": ctx.kind})
        else:
            self.rewritten += 1
            log.info("sentence rewritten before voice", extra={"rule": result.rule, "reason": result.reason,
                                                               "excerpt": excerpt, "kind": ctx.kind})
        self._recent.append({"time": round(time.time(), 3), "rule": result.rule, "action": result.action,
                             "reason": result.reason, "excerpt": excerpt, "kind": ctx.kind})
        return result


def _continues(sentence: str) -> bool:
    """Whether a sentence is the second half of one the splitter cut (it starts in lower case)."""
    head = sentence.lstrip(" \"'“‘(")
    return bool(head) and head[0].isascii() and head[0].islower()


def rule_matches(rule: Rule, text: str) -> bool:
    """Whether one rule alone catches ``text`` (no catalogue, no allowances): for rule examples."""
    guard = OutputGuard(RuleSet([rule]), platforms=sorted(rule.platforms))
    return guard.evaluate(text)[0].action != "speak"


def any_matches(rules: Iterable[Rule], text: str) -> bool:
    return any(rule_matches(r, text) for r in rules)
