"""Douyin webcast frames: PushFrame -> gzip -> Response -> Message -> typed payloads (pure, no I/O).

Frames that ask for it (``Response.needAck``) are answered with an ACK PushFrame carrying the
incoming logId and the Response's internalExt. Gift combos re-send the same gift with a growing
repeat count; each update is turned into an event for the *new* gifts only (so totals are exact
whether or not the combo's end marker ever arrives). Field numbers: shared/protocols.md section 2.

Amounts: Douyin diamonds (1 diamond = 0.1 CNY).
"""

from __future__ import annotations

import collections
import gzip
import zlib
from dataclasses import dataclass

from chat_sources.base import CodecError, Decoded
from chat_sources.protobuf import Msg, ProtobufError, field_bytes, field_varint, message
from streamer.events import Amount, ChatEvent, EventKind, User, clean_text

HEARTBEAT = bytes.fromhex("3a026862")  # PushFrame{payloadType: "hb"}
CNY_PER_DIAMOND = 0.1
MAX_INFLATED = 32 << 20


@dataclass
class PushFrame:
    seq_id: int
    log_id: int
    headers: dict[str, str]
    payload_encoding: str
    payload_type: str
    payload: bytes


def parse_push_frame(data: bytes) -> PushFrame:
    m = Msg(data)
    headers = {h.text(1): h.text(2) for h in m.msgs(5)}
    return PushFrame(m.num(1), m.num(2), headers, m.text(6), m.text(7), m.blob(8))


def build_push_frame(payload: bytes, log_id: int = 0, payload_type: str = "msg", gzip_header: bool = True,
                     seq_id: int = 0) -> bytes:
    parts = []
    if seq_id:
        parts.append(field_varint(1, seq_id))
    if log_id:
        parts.append(field_varint(2, log_id))
    if gzip_header:
        parts.append(field_bytes(5, message(field_bytes(1, "compress_type"), field_bytes(2, "gzip"))))
        parts.append(field_bytes(6, "pb"))
    parts.append(field_bytes(7, payload_type))
    if payload:
        parts.append(field_bytes(8, payload))
    return message(*parts)


def ack_frame(log_id: int, internal_ext: str) -> bytes:
    return message(field_varint(2, log_id), field_bytes(7, "ack"), field_bytes(8, internal_ext))


def _gunzip(data: bytes) -> bytes:
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data, MAX_INFLATED)
    except (zlib.error, EOFError, gzip.BadGzipFile) as e:
        raise CodecError("gzip", str(e)) from None
    if len(out) >= MAX_INFLATED:
        raise CodecError("gzip", "inflated payload too large")
    return out


def _user(m: Msg) -> User:
    uid = m.text(1028) or str(m.num(1))
    return User(uid, clean_text(m.text(3), 64) or "viewer", level=m.num(6))


class DouyinCodec:
    def __init__(self, room: str, combo_memory: int = 5000) -> None:
        self.room = room
        self._combo: collections.OrderedDict[tuple[str, int, int], int] = collections.OrderedDict()
        self._combo_memory = combo_memory
        self.viewers = 0

    def decode(self, data: bytes | str) -> Decoded:
        if isinstance(data, str):
            raise CodecError("text_frame", "Douyin sends binary frames only")
        try:
            frame = parse_push_frame(data)
            if frame.payload_type != "msg":
                return Decoded()
            gz = frame.headers.get("compress_type") == "gzip" or frame.payload[:2] == b"\x1f\x8b"
            body = _gunzip(frame.payload) if gz else frame.payload
            resp = Msg(body)
            out = Decoded()
            if resp.flag(9):
                out.replies.append(ack_frame(frame.log_id, resp.text(5)))
            for m in resp.msgs(1):
                out.events.extend(self.message(m.text(1), m.blob(2), m.num(3)))
            return out
        except ProtobufError as e:
            raise CodecError("protobuf", str(e)) from None

    def message(self, method: str, payload: bytes, msg_id: int) -> list[ChatEvent]:
        handler = _HANDLERS.get(method)
        if handler is None:
            return []
        try:
            return handler(self, Msg(payload), str(msg_id) if msg_id else "")
        except ProtobufError as e:
            raise CodecError(f"method:{method}", str(e)) from None

    def _event(self, kind: EventKind, user: User, msg_id: str, common: Msg | None = None, **kw: object) -> ChatEvent:
        ts = common.num(4) / 1000.0 if common is not None and common.num(4) > 1e11 else None
        extra = {"timestamp": ts} if ts else {}
        return ChatEvent(platform="douyin", room=self.room, kind=kind, user=user, msg_id=msg_id, **extra, **kw)  # type: ignore[arg-type]

    def _chat(self, m: Msg, msg_id: str) -> list[ChatEvent]:
        return [self._event(EventKind.DANMAKU, _user(m.msg(2)), msg_id, m.msg(1), text=clean_text(m.text(3)))]

    def _emoji_chat(self, m: Msg, msg_id: str) -> list[ChatEvent]:
        text = clean_text(m.msg(5).text(1) if m.has(5) else "")
        return [self._event(EventKind.DANMAKU, _user(m.msg(2)), msg_id, m.msg(1), text=text, emotes=(str(m.num(3)),))]

    def _gift(self, m: Msg, msg_id: str) -> list[ChatEvent]:
        user = _user(m.msg(7))
        gift = m.msg(15)
        gift_id = m.num(2) or gift.num(5)
        group = max(1, m.num(4))
        repeat = max(1, m.num(5))
        total = repeat * group
        if gift.flag(10):  # a combo gift: only the increase since the last update is new
            key = (user.id, gift_id, m.num(11))
            seen = self._combo.get(key, 0)
            self._combo[key] = max(seen, total)
            self._combo.move_to_end(key)
            while len(self._combo) > self._combo_memory:
                self._combo.popitem(last=False)
            new = total - seen
            if m.num(9) == 1:
                self._combo.pop(key, None)
            if new <= 0:
                return []
        else:
            new = total
        diamonds = gift.num(12) * new
        amount = Amount(float(diamonds), "douyin_diamond", round(diamonds * CNY_PER_DIAMOND, 4)) if diamonds else None
        return [self._event(EventKind.GIFT, user, msg_id, m.msg(1), gift_name=clean_text(gift.text(16), 64) or "gift",
                            count=new, amount=amount)]

    def _like(self, m: Msg, msg_id: str) -> list[ChatEvent]:
        return [self._event(EventKind.LIKE, _user(m.msg(5)), msg_id, m.msg(1), count=max(1, m.num(2)))]

    def _member(self, m: Msg, msg_id: str) -> list[ChatEvent]:
        return [self._event(EventKind.ENTER, _user(m.msg(2)), msg_id, m.msg(1))]

    def _social(self, m: Msg, msg_id: str) -> list[ChatEvent]:
        user = _user(m.msg(2))
        if m.num(4) == 1:
            return [self._event(EventKind.FOLLOW, user, msg_id, m.msg(1))]
        return [self._event(EventKind.SYSTEM, user, msg_id, m.msg(1), action="share")]

    def _room_user_seq(self, m: Msg, msg_id: str) -> list[ChatEvent]:
        self.viewers = m.num(3)
        return [self._event(EventKind.SYSTEM, _SYSTEM_USER, msg_id, m.msg(1), action="viewer_count", count=m.num(3))]

    def _control(self, m: Msg, msg_id: str) -> list[ChatEvent]:
        if m.num(2) == 3:
            return [self._event(EventKind.STREAM_END, _SYSTEM_USER, msg_id, m.msg(1), action="stream_end")]
        return []


_SYSTEM_USER = User("system", "system")
_HANDLERS = {
    "WebcastChatMessage": DouyinCodec._chat,
    "WebcastEmojiChatMessage": DouyinCodec._emoji_chat,
    "WebcastGiftMessage": DouyinCodec._gift,
    "WebcastLikeMessage": DouyinCodec._like,
    "WebcastMemberMessage": DouyinCodec._member,
    "WebcastSocialMessage": DouyinCodec._social,
    "WebcastRoomUserSeqMessage": DouyinCodec._room_user_seq,
    "WebcastControlMessage": DouyinCodec._control,
}
