"""The one chat event type every source yields (shared/design.md, "ChatEvent").

Sources parse their platform's payloads into these frozen records at the boundary; nothing past a
source ever sees a platform-specific dict except through ``raw`` (kept for debugging only).
"""

from __future__ import annotations

import enum
import itertools
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


_ids = itertools.count(1)

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
    id: str = field(default_factory=lambda: f"ev{next(_ids)}")
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
