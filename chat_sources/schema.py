"""The generic JSON chat message (websocket source, replay files, control API "inject").

One JSON object per message::

    {"kind": "danmaku", "user": "Alice", "text": "how much is it?"}
    {"kind": "gift", "user": {"id": "42", "name": "Bob", "member": true}, "gift": "rose", "count": 3,
     "amount": 3.0, "currency": "CNY"}
    {"kind": "super_chat", "user": "Carol", "text": "love the show", "amount": 30, "currency": "CNY"}

``kind`` is one of danmaku, gift, super_chat, membership, follow, like, enter, stream_end, system
(default danmaku). ``user`` is a name or an object with id, name, moderator, member, level.
``amount`` is in ``currency`` (CNY, USD, EUR, JPY, bits); it is converted to the common unit (CNY).
Text is cleaned (control, zero-width and bidi characters removed) and capped at 500 characters.

Paid kinds (gift, super_chat, membership) must carry a positive, finite ``amount``: a "paid" message
worth nothing (0, none, NaN, Infinity) would outrank every question and never expire, so it is
refused here, at the one boundary replay files, the websocket and the control API share. Messages
nested deeper than ``MAX_DEPTH`` levels are refused with a reason instead of exhausting the
parser's recursion (a ``RecursionError`` would otherwise close a websocket or answer HTTP 500).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamer.events import Amount, ChatEvent, EventKind, User, clean_text

# Rough conversion to the common unit (CNY) so paid events of different platforms can be ranked.
TO_CNY = {"CNY": 1.0, "USD": 7.2, "EUR": 7.8, "JPY": 0.048, "bits": 0.072, "gold_coin": 0.001,
          "douyin_diamond": 0.1}

PAID_KINDS = frozenset({"gift", "super_chat", "membership"})
MAX_DEPTH = 16
"""Nesting levels a message may have (a real one has 2: the message and its user object)."""


class ChatMessageError(ValueError):
    """A message that does not follow the schema; the text says why."""


class _UserIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = ""
    name: Annotated[str, Field(min_length=1, max_length=200)]
    moderator: bool = False
    member: bool = False
    level: int = 0


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: Literal["danmaku", "gift", "super_chat", "membership", "follow", "like", "enter", "stream_end",
                  "system"] = "danmaku"
    user: _UserIn | Annotated[str, Field(min_length=1, max_length=200)]
    text: Annotated[str, Field(max_length=100_000)] = ""
    amount: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False, strict=True)] | None = None
    currency: str = "CNY"
    gift: Annotated[str, Field(max_length=200)] = ""
    count: Annotated[int, Field(ge=0, le=1_000_000)] = 1


def nesting_depth(data: Any) -> int:
    """How deeply lists and objects nest in parsed JSON (iterative: no recursion to exhaust)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_json_object(data: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Parse one JSON object with bounded nesting; ChatMessageError says what is wrong with it."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ChatMessageError(f"not JSON: {e}") from None
        except RecursionError:
            raise ChatMessageError(f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    if not isinstance(data, dict):
        raise ChatMessageError(f"expected a JSON object, got {type(data).__name__}")
    if nesting_depth(data) > MAX_DEPTH:
        raise ChatMessageError(f"nested too deeply (at most {MAX_DEPTH} levels)")
    return data


def _validate(data: dict[str, Any]) -> ChatMessageIn:
    try:
        msg = ChatMessageIn.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ChatMessageError(f"{where}: {first['msg']}") from None
    if msg.kind in PAID_KINDS and not (msg.amount is not None and math.isfinite(msg.amount) and msg.amount > 0):
        raise ChatMessageError(f"amount: a {msg.kind} must carry a positive amount (got {msg.amount!r})")
    return msg


def event_from_json(data: str | bytes | dict[str, Any], platform: str, room: str) -> ChatEvent:
    """Parse one message; raise ChatMessageError with a readable reason."""
    data = parse_json_object(data)
    msg = _validate(data)
    if isinstance(msg.user, str):
        name = clean_text(msg.user, 64) or "viewer"
        user = User(id=name, name=name)
    else:
        name = clean_text(msg.user.name, 64) or "viewer"
        user = User(id=msg.user.id or name, name=name, moderator=msg.user.moderator, member=msg.user.member,
                    level=msg.user.level)
    amount = None
    if msg.amount is not None:
        rate = TO_CNY.get(msg.currency)
        if rate is None:
            raise ChatMessageError(f"currency: unknown unit {msg.currency!r}; known: {', '.join(TO_CNY)}")
        amount = Amount(msg.amount, msg.currency, round(msg.amount * rate, 4))
    return ChatEvent(platform=platform, room=room, kind=EventKind(msg.kind), user=user, text=clean_text(msg.text),
                     amount=amount, gift_name=clean_text(msg.gift, 64), count=msg.count, raw=data)
