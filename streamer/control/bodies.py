"""Strict parsing of control API bodies: JSON with a depth bound, then typed models.

Nothing is coerced: ``{"text": {"a": 1}}`` is not a string, ``"nan"`` is not a price, ``1.9`` is not
a stock count, ``Infinity`` and ``NaN`` are not JSON numbers. A bad body is answered 400 (not JSON,
too deeply nested) or 422 (a field of the wrong type or range) naming the field and the reason.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_DEPTH = 32
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")

B = TypeVar("B", bound=BaseModel)


class BodyError(ValueError):
    """A request body that cannot be used; ``status`` is 400 or 422, ``field`` names what was wrong."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.field = status, field


def json_depth(raw: bytes) -> int:
    """Nesting depth of a JSON text, counted without parsing (so a 5 000-level body costs no recursion)."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    if json_depth(raw) > MAX_DEPTH:
        raise BodyError(400, f"body is nested deeper than {MAX_DEPTH} levels")
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BodyError(400, f"body is not JSON: {e}") from None
    except (ValueError, RecursionError) as e:
        raise BodyError(400, f"body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise BodyError(400, f"expected a JSON object, got {type(body).__name__}")
    return body


def validate(model: type[B], body: dict[str, Any]) -> B:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise BodyError(422, f"{where}: {err['msg']}", where) from None


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


Text = Annotated[str, Field(min_length=1, max_length=1000)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
Money = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class SayBody(_Body):
    text: Text


class UserBody(_Body):
    user: Name
    platform: Name | None = None


class PhraseBody(_Body):
    phrase: Annotated[str, Field(min_length=1, max_length=200)]


class IdBody(_Body):
    id: Name


class NameBody(_Body):
    name: Name


class EnabledBody(_Body):
    enabled: bool


class MuteBody(_Body):
    muted: bool


class TalkBody(_Body):
    down: bool


class ClearBody(_Body):
    include_paid: bool = False
    """Paid messages stay unless this is true: money was spent on them."""


class ProductBody(_Body):
    id: Name | None = None
    price: Money | None = None
    original_price: Money | None = None
    """Shown crossed out on the product card; 0 removes it."""
    stock: Annotated[int, Field(ge=0, le=10**9)] | None = None
    sale_ends_in_s: Annotated[float, Field(ge=0, le=7 * 86400)] | None = None
    """Start a flash-sale countdown ending this many seconds from now; 0 ends it."""


class OverlayBody(_Body):
    name: Literal["subtitles", "chat", "product", "banner"]
    enabled: bool


class ObsSourceBody(_Body):
    source: Name
    visible: bool
    scene: Name | None = None


class ChatBody(BaseModel):
    """Type checks on the chat fields the control API forwards (the chat schema does the rest)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    kind: Name | None = None
    text: Annotated[str, Field(max_length=2000)] | None = None
    user: Name | dict[str, Any] | None = None
    amount: Money | None = None
    currency: Name | None = None
    gift: Name | None = None
    count: Annotated[int, Field(ge=0, le=10**6)] | None = None
