"""Twitch chat over IRC (websocket text frames): line parser and event mapping (pure, no I/O).

Tags are unescaped as IRCv3 says (``\\s`` space, ``\\:`` semicolon, ...). Emote positions count Unicode
code points, which is what Python string indexing does. Bits (cheers) and subscriptions are paid:
100 bits = 1 USD; subscriptions at their tier price (Prime and Tier 1: 4.99 USD).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_sources.base import CodecError, Decoded
from chat_sources.schema import TO_CNY
from streamer.events import Amount, ChatEvent, EventKind, User, clean_text

PLAN_USD = {"Prime": 4.99, "1000": 4.99, "2000": 9.99, "3000": 24.99}
_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
MAX_LINE = 64 * 1024


def unescape(value: str) -> str:
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value):
                break  # a trailing lone backslash is dropped
            out.append(_ESCAPES.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass
class IrcMessage:
    command: str
    params: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    prefix: str = ""

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0]

    @property
    def trailing(self) -> str:
        return self.params[-1] if self.params else ""


def parse_line(line: str) -> IrcMessage:
    if len(line) > MAX_LINE:
        raise CodecError("line_too_long", f"{len(line)} characters")
    rest = line
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        for item in raw.split(";"):
            k, _, v = item.partition("=")
            if k:
                tags[k] = unescape(v)
    prefix = ""
    rest = rest.lstrip(" ")
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
    rest = rest.lstrip(" ")
    if not rest:
        raise CodecError("no_command", "line has no command")
    trailing = None
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
    parts = rest.split()
    command, params = parts[0].upper(), parts[1:]
    if trailing is not None:
        params.append(trailing)
    return IrcMessage(command, params, tags, prefix)


def emote_names(tag: str, text: str) -> tuple[str, ...]:
    """Emote codes from the ``emotes`` tag (``id:start-end,start-end/id:...``, code-point indices)."""
    names: list[str] = []
    for group in filter(None, tag.split("/")):
        _, _, spans = group.partition(":")
        for span in filter(None, spans.split(",")):
            start_s, _, end_s = span.partition("-")
            start, end = int(start_s), int(end_s)
            if 0 <= start <= end < len(text):
                names.append(text[start:end + 1])
    return tuple(names)


def _usd(value: float) -> Amount:
    return Amount(value, "USD", round(value * TO_CNY["USD"], 4))


class TwitchCodec:
    def __init__(self, channel: str) -> None:
        self.channel = channel.lstrip("#").lower()

    def decode(self, data: bytes | str) -> Decoded:
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise CodecError("encoding", "frame is not UTF-8") from None
        out = Decoded()
        for line in data.split("\r\n"):
            if line.strip():
                out.extend(self.line(parse_line(line.rstrip("\r\n"))))
        return out

    def line(self, m: IrcMessage) -> Decoded:
        handler = _HANDLERS.get(m.command)
        if handler is None:
            return Decoded()
        try:
            return handler(self, m)
        except (ValueError, KeyError, IndexError) as e:
            raise CodecError(f"cmd:{m.command}", f"{type(e).__name__}: {e}") from None

    def _user(self, m: IrcMessage) -> User:
        badges = m.tags.get("badges", "")
        login = m.tags.get("login") or m.nick
        name = clean_text(m.tags.get("display-name") or login, 64) or login
        months = 0
        for b in m.tags.get("badge-info", "").split(","):
            if b.startswith("subscriber/"):
                months = int(b.split("/", 1)[1] or 0)
        mod = m.tags.get("mod") == "1" or "broadcaster/" in badges or "moderator/" in badges
        return User(m.tags.get("user-id", login), name, moderator=mod, member=m.tags.get("subscriber") == "1",
                    level=months)

    def _event(self, kind: EventKind, user: User, m: IrcMessage, **kw: object) -> ChatEvent:
        ts = m.tags.get("tmi-sent-ts", "")
        extra = {"timestamp": int(ts) / 1000.0} if ts.isdigit() else {}
        return ChatEvent(platform="twitch", room=self.channel, kind=kind, user=user, raw=m.tags, **extra, **kw)  # type: ignore[arg-type]

    def _privmsg(self, m: IrcMessage) -> Decoded:
        text = m.trailing
        if text.startswith("\x01ACTION ") and text.endswith("\x01"):
            text = text[8:-1]
        emotes = emote_names(m.tags.get("emotes", ""), text)
        bits = int(m.tags.get("bits", "0") or 0)
        kind, amount = EventKind.DANMAKU, None
        if bits > 0:
            kind = EventKind.SUPER_CHAT
            amount = Amount(float(bits), "bits", round(bits * TO_CNY["bits"], 4))
        return Decoded(events=[self._event(kind, self._user(m), m, text=clean_text(text), amount=amount,
                                           msg_id=m.tags.get("id", ""), emotes=emotes,
                                           reply_to=m.tags.get("reply-parent-msg-id", ""))])

    def _usernotice(self, m: IrcMessage) -> Decoded:
        kind_tag = m.tags.get("msg-id", "")
        user = self._user(m)
        text = clean_text(m.params[1] if len(m.params) > 1 else m.tags.get("system-msg", ""))
        plan = m.tags.get("msg-param-sub-plan", "1000")
        price = PLAN_USD.get(plan, 4.99)
        common = {"msg_id": m.tags.get("id", "")}
        if kind_tag in ("sub", "resub"):
            months = int(m.tags.get("msg-param-cumulative-months", "1") or 1)
            ev = self._event(EventKind.MEMBERSHIP, user, m, text=text, amount=_usd(price), count=months,
                             gift_name=f"{'Prime' if plan == 'Prime' else 'Tier ' + plan[0]} sub", **common)
        elif kind_tag in ("subgift", "anonsubgift"):
            ev = self._event(EventKind.GIFT, user, m, text=clean_text(m.tags.get("system-msg", "")), amount=_usd(price),
                             gift_name=f"Tier {plan[0]} gift sub", count=1,
                             target=m.tags.get("msg-param-recipient-id", ""), **common)
        elif kind_tag in ("submysterygift", "anonsubmysterygift"):
            n = int(m.tags.get("msg-param-mass-gift-count", "1") or 1)
            ev = self._event(EventKind.GIFT, user, m, text=clean_text(m.tags.get("system-msg", "")),
                             amount=_usd(round(price * n, 2)), gift_name=f"Tier {plan[0]} gift sub", count=n, **common)
        elif kind_tag == "raid":
            ev = self._event(EventKind.SYSTEM, user, m, action="raid", text=clean_text(m.tags.get("system-msg", "")),
                             count=int(m.tags.get("msg-param-viewerCount", "0") or 0), **common)
        elif kind_tag == "announcement":
            ev = self._event(EventKind.SYSTEM, user, m, action="announcement", text=text, **common)
        else:
            ev = self._event(EventKind.SYSTEM, user, m, action=kind_tag or "notice",
                             text=clean_text(m.tags.get("system-msg", "")), **common)
        return Decoded(events=[ev])

    def _clearchat(self, m: IrcMessage) -> Decoded:
        system = User("system", "system")
        if len(m.params) > 1:
            return Decoded(events=[self._event(EventKind.SYSTEM, system, m, action="clear_user",
                                               target=m.tags.get("target-user-id", m.params[1]),
                                               text=m.params[1], count=int(m.tags.get("ban-duration", "0") or 0))])
        return Decoded(events=[self._event(EventKind.SYSTEM, system, m, action="clear_chat")])

    def _clearmsg(self, m: IrcMessage) -> Decoded:
        return Decoded(events=[self._event(EventKind.SYSTEM, User("system", "system"), m, action="delete_message",
                                           target=m.tags.get("target-msg-id", ""))])

    def _ping(self, m: IrcMessage) -> Decoded:
        return Decoded(replies=[f"PONG :{m.trailing or 'tmi.twitch.tv'}"])

    def _reconnect(self, m: IrcMessage) -> Decoded:
        return Decoded(signals=["reconnect"])

    def _welcome(self, m: IrcMessage) -> Decoded:
        return Decoded(signals=["auth_ok"])

    def _notice(self, m: IrcMessage) -> Decoded:
        text = m.trailing
        if m.params and m.params[0] == "*" and ("auth" in text.lower() or "login" in text.lower()):
            return Decoded(signals=["auth_failed"])
        return Decoded()

    def _pong(self, m: IrcMessage) -> Decoded:
        return Decoded(signals=["heartbeat_ack"])


_HANDLERS = {
    "PRIVMSG": TwitchCodec._privmsg,
    "USERNOTICE": TwitchCodec._usernotice,
    "CLEARCHAT": TwitchCodec._clearchat,
    "CLEARMSG": TwitchCodec._clearmsg,
    "PING": TwitchCodec._ping,
    "PONG": TwitchCodec._pong,
    "RECONNECT": TwitchCodec._reconnect,
    "001": TwitchCodec._welcome,
    "NOTICE": TwitchCodec._notice,
}
