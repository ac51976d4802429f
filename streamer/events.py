"""The one chat event type every source yields (shared/design.md, "ChatEvent").

Sources parse their platform's payloads into these frozen records at the boundary; nothing past a
source ever sees a platform-specific dict except through ``raw`` (kept for debugging only).
"""

from __future__ import annotations

import enum
import math
import secrets
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT_CHARS = 500
"""Viewer text is capped here at the boundary; longer messages are cut, not dropped."""


class EventKind(str, enum.Enum):
    DANMAKU = "danmaku"
    GIFT = "gift"
    SUPER_CHAT = "super_chat"
    MEMBERSHIP = "membership"
    FOLLOW = "follow"
    LIKE = "like"
    ENTER = "enter"
    STREAM_END = "stream_end"
    SYSTEM = "system"

    @property
    def is_paid(self) -> bool:
        return self in (EventKind.GIFT, EventKind.SUPER_CHAT, EventKind.MEMBERSHIP)


@dataclass(frozen=True)
class User:
    id: str
    name: str
    moderator: bool = False
    member: bool = False
    level: int = 0
    """Fan-medal or badge level, 0 when the platform gives none."""


@dataclass(frozen=True)
class Amount:
    """A price in the platform's own unit and in a common unit (CNY cents-free yuan as float)."""

    value: float
    unit: str
    """Platform unit, e.g. "CNY", "gold_coin", "bits", "douyin_diamond"."""
    common: float
    """The same price in the common currency unit (CNY), so paid events can be ranked."""


def new_event_id() -> str:
    """A unique, time-ordered id (milliseconds since the epoch, then 40 random bits), stable once given:
    ids from two processes or before and after a restart never collide."""
    return f"ev{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"

_BIDI_AND_ZERO_WIDTH = {
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
}


def clean_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Strip control, zero-width and bidi characters, collapse whitespace, cap the length."""
    out = []
    for ch in text:
        if ch in _BIDI_AND_ZERO_WIDTH:
            continue
        cat = unicodedata.category(ch)
        if cat.startswith("C"):
            out.append(" ")
            continue
        out.append(ch)
    cleaned = " ".join("".join(out).split())
    return cleaned[:limit]


@dataclass(frozen=True)
class ChatEvent:
    platform: str
    room: str
    kind: EventKind
    user: User
    text: str = ""
    amount: Amount | None = None
    gift_name: str = ""
    count: int = 1
    """Gifts in this event, likes in a like burst, months of a membership, viewers for a count."""
    timestamp: float = field(default_factory=time.time)
    id: str = ""
    """Unique across processes and restarts: the platform's message id where it has one, else a new
    time-ordered id. Whatever is persisted is keyed by (platform, id)."""
    msg_id: str = ""
    """The platform's own id for this message (dedupe across reconnects, deletion by moderators)."""
    action: str = ""
    """For SYSTEM events: delete_message, clear_user, clear_chat, delete_super_chat, viewer_count,
    live, preparing, cut_off, names_masked, raid, notice."""
    target: str = ""
    """What a SYSTEM action applies to: a msg_id (delete_message) or a user id (clear_user)."""
    emotes: tuple[str, ...] = ()
    """Emote codes found in ``text`` (Twitch emotes, Bilibili [emoticons])."""
    reply_to: str = ""
    """msg_id of the message this one replies to, if any."""
    raw: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.msg_id or new_event_id())

    @property
    def paid(self) -> bool:
        """Money was spent: a paid kind with a positive, finite price."""
        return self.kind.is_paid and self.amount is not None and math.isfinite(self.amount.common) \
            and self.amount.common > 0

    @property
    def value(self) -> float:
        """The price in the common unit (CNY), 0 when none."""
        return self.amount.common if self.paid and self.amount is not None else 0.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChatEvent:
        """The inverse of ``to_dict`` (events persisted by the director)."""
        u, a = d["user"], d.get("amount")
        return cls(platform=d["platform"], room=d["room"], kind=EventKind(d["kind"]),
                   user=User(u["id"], u["name"], u.get("moderator", False), u.get("member", False),
                             u.get("level", 0)),
                   text=d.get("text", ""), amount=Amount(a["value"], a["unit"], a["cny"]) if a else None,
                   gift_name=d.get("gift", ""), count=d.get("count", 1), timestamp=d.get("timestamp", 0.0),
                   id=d["id"], msg_id=d.get("msg_id", ""), action=d.get("action", ""), target=d.get("target", ""),
                   emotes=tuple(d.get("emotes", ())), reply_to=d.get("reply_to", ""))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (without the raw payload)."""
        return {
            "id": self.id, "platform": self.platform, "room": self.room, "kind": self.kind.value,
            "user": {"id": self.user.id, "name": self.user.name, "moderator": self.user.moderator,
                     "member": self.user.member, "level": self.user.level},
            "text": self.text, "gift": self.gift_name, "count": self.count,
            "amount": None if self.amount is None else {"value": self.amount.value, "unit": self.amount.unit,
                                                         "cny": self.amount.common},
            "timestamp": self.timestamp, "msg_id": self.msg_id, "action": self.action, "target": self.target,
            "emotes": list(self.emotes), "reply_to": self.reply_to,
        }

    @property
    def is_question(self) -> bool:
        t = self.text.strip().lower()
        return t.endswith(("?", "？")) or t.startswith(
            ("how", "what", "why", "when", "where", "which", "who", "can ", "is ", "are ", "do ", "does ")
        ) or any(w in t for w in ("吗", "多少", "怎么", "什么", "能不能", "有没有"))
