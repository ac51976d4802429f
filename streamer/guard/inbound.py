"""The input side: viewer content reaches the model only as data, and steering attempts are recognised.

- ``InjectionGuard.detect`` finds messages that try to steer the host (reveal the prompt or keys,
  change persona, make it say something); the director answers those with a deflection instead of
  the model. ``detect_name`` does the same for a viewer's name, and also flags names that carry
  delimiters (quotes, angle brackets, braces, line breaks): a name is a label, never markup.
- ``viewer_line`` is the one way viewer content is written into a prompt: one JSON object per
  viewer inside ``<viewer>`` tags. JSON encoding escapes quotes, backslashes and line breaks, and
  angle brackets become look-alikes, so no field (name, text, paid amount, the returning-viewer
  note) can end its string or the tag. A flagged name is replaced by a neutral label; a flagged
  earlier question is left out of the returning-viewer note.
- ``context_line`` is what the conversation memory keeps for a turn's viewer side: for a deflected
  message a neutral placeholder instead of its text, so a blocked message never reaches the model on
  a later turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from streamer.events import ChatEvent
from streamer.guard.text import normalise

# Phrases that try to turn viewer text into instructions (EN and ZH), matched on normalised text.
_INJECTION_PATTERNS = [
    r"ignore (all |any |the )?(previous|prior|above|earlier|your|those) (instructions|rules|prompts?|messages)",
    r"disregard (all |the |your )?(previous|prior|above)? ?(instructions|rules|prompt)",
    r"forget (all |everything|your )?(previous |prior )?(instructions|rules|you were told)",
    r"(system|initial|hidden|original|developer) (prompt|message|instructions)",
    r"(reveal|show|print|repeat|output|tell me|what is|what's|what are|leak|dump|list) .{0,20}\b(your|the (system|hidden|"
    r"initial|original|secret))\b.{0,15}(prompt|instructions|rules|configuration|config|settings|guidelines)",
    r"(api[ _-]?key|secret key|access token|credentials|base[ _]?url|endpoint|\.env|environment variables?)",
    r"\byour (own )?(password|passcode|login|token)",
    r"(you are|you're|act as|pretend (to be|you are)|roleplay as|from now on,? you( are)?|become) (now )?(a |an )?"
    r"(dan|evil|jailbroken|unfiltered|uncensored|developer mode|another|different|new)",
    r"(developer|god|admin|sudo|debug) mode",
    r"(summari[sz]e|list|explain|describe) .{0,25}(rules|instructions|guidelines) .{0,25}(given|told|received|have)",
    r"pretend (you are|you're|to be)|you are (no longer|not) (a |an )?(host|assistant|ai)",
    r"(repeat|say|read) (after me|exactly|verbatim|the following|this)",
    r"new (persona|personality|identity|character|role)",
    r"\[(system|inst)\]|<\|?(system|im_start|im_end)\|?>|### ?(instruction|system)|</?viewer\b",
    r"translate (the|your) (above|previous|system)",
    r"忽略(之前|以上|上面|前面|所有)?的?(指令|规则|设定|提示|要求)",
    r"(系统|初始|隐藏)?(提示词|系统提示|系统指令|prompt|设定)(是什么|发出来|告诉我|念出来|复述|输出|给我看)",
    r"(告诉我|说出|念出|输出|复述|打印|透露).{0,12}(提示词|设定|指令|规则|配置|密钥|key|令牌|密码)",
    r"(密钥|秘钥|api ?key|令牌|接口地址|配置文件|环境变量)",
    r"(从现在(开始|起)|现在)你(是|就是|扮演|变成)",
    r"你(现在|从此)?(是|变成|当)(一[只个])?(猫娘|女仆|奴隶|坏人|黑客)",
    r"(扮演|假装|切换成|变成)(一个|另一个)?(新的|别的|其他)?(角色|人格|身份|主播|ai)",
    r"(开发者|管理员|调试|越狱)模式",
    r"(跟我念|跟我说|重复(一遍|以下|下面)|照着念|大声说|说一句\s*[:：“\"])",
]
_INJECTION_RE = re.compile("|".join(f"(?:{p})" for p in _INJECTION_PATTERNS), re.IGNORECASE)

# A name is a label: markup or a role marker in it is an attempt to leave the quotes.
_NAME_MARKUP_RE = re.compile(r"[<>{}\[\]\"\\`]|\n|\r|\brole\s*[=:]|\b(system|assistant|user)\s*:|系统(消息|提示)?[:：]",
                             re.IGNORECASE)

WITHHELD_NAME = "a viewer"
WITHHELD_TEXT = "(a message the host's safety filter withheld)"
MAX_NAME = 40
MAX_TEXT = 300
MAX_NOTE = 160


class InjectionGuard:
    def detect(self, text: str) -> str | None:
        """The matched steering phrase, or None."""
        m = _INJECTION_RE.search(normalise(text))
        return m.group(0) if m else None

    def detect_name(self, name: str) -> str | None:
        """Why a viewer name cannot be quoted as it is (a steering phrase or markup), or None."""
        markup = _NAME_MARKUP_RE.search(name)
        if markup:
            return f"markup {markup.group(0)!r}"
        return self.detect(name)

    def detect_event(self, event: ChatEvent) -> str | None:
        """A steering attempt in the message text (names are masked, not deflected)."""
        return self.detect(event.text) if event.text else None


DEFAULT_GUARD = InjectionGuard()


def _clean(text: str, limit: int) -> str:
    """No control or bidi characters (line breaks become spaces), no angle brackets (look-alikes
    instead), bounded length."""
    out = "".join(ch if ch.isprintable() else " " if ch.isspace() else "" for ch in text)
    out = out.replace("<", "‹").replace(">", "›")
    return out[:limit]


def safe_name(name: str, guard: InjectionGuard = DEFAULT_GUARD) -> str:
    """A viewer name fit to be quoted or spoken: a neutral label if it steers or carries markup."""
    return WITHHELD_NAME if guard.detect_name(name) else _clean(name, MAX_NAME)


def viewer_fields(event: ChatEvent, *, withheld: bool = False, asked_before: Iterable[str] = (),
                  guard: InjectionGuard = DEFAULT_GUARD) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": safe_name(event.user.name, guard),
                              "text": WITHHELD_TEXT if withheld else _clean(event.text, MAX_TEXT)}
    if event.amount is not None:
        fields["paid"] = f"{event.amount.value:g} {_clean(event.amount.unit, 12)}"
    earlier = [_clean(t, 80) for t in asked_before if t and not guard.detect(t)]
    if earlier:
        fields["asked_before"] = _clean("; ".join(earlier), MAX_NOTE)
    return fields


def encode_viewer(fields: dict[str, Any]) -> str:
    """One viewer as a JSON object inside <viewer> tags; nothing in it can close the string or the tag."""
    body = json.dumps(fields, ensure_ascii=False, separators=(", ", ": "))
    return f"<viewer>{body.replace('<', '‹').replace('>', '›')}</viewer>"


def viewer_line(event: ChatEvent, *, withheld: bool = False, asked_before: Iterable[str] = (),
                guard: InjectionGuard = DEFAULT_GUARD) -> str:
    return encode_viewer(viewer_fields(event, withheld=withheld, asked_before=asked_before, guard=guard))


def quote_viewer(name: str, text: str) -> str:
    """A name and a text as a quoted viewer line (for callers without a ChatEvent)."""
    return encode_viewer({"name": WITHHELD_NAME if DEFAULT_GUARD.detect_name(name) else _clean(name, MAX_NAME),
                          "text": _clean(text, MAX_TEXT)})


def context_line(turn: Any, guard: InjectionGuard = DEFAULT_GUARD) -> str:
    """What the conversation memory keeps as the viewer side of ``turn`` (an answer or deflect turn).

    A deflected message, or any message the input guard flags, is kept as a neutral placeholder,
    never as its text: with a compliant model, a blocked scam link in the history would be spoken
    minutes later."""
    deflected = getattr(turn, "kind", "") == "deflect"
    return "\n".join(viewer_line(e, withheld=deflected or bool(guard.detect(e.text)), guard=guard)
                     for e in turn.events)
