"""Bilibili live danmaku: the binary packet codec and the business-command parser (pure, no I/O).

Packets: a 16-byte big-endian header (pack_len, header_len=16, ver, operation, seq) and a body.
ver 0 = JSON, 1 = heartbeat/auth, 2 = zlib and 3 = brotli of further packets. One websocket message
may hold several packets. The heartbeat reply (op 3) carries a 4-byte popularity and an echo that
is not counted in pack_len, so parsing stops after it. Wire facts: shared/protocols.md section 1.

Amounts: gifts and guards are priced in gold coins (1000 = 1 CNY); silver gifts are free; super
chats are priced in CNY.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import zlib
from typing import Any

import brotli

from chat_sources.base import CodecError, Decoded
from chat_sources.protobuf import Msg, ProtobufError
from streamer.events import Amount, ChatEvent, EventKind, User, clean_text

HEADER = struct.Struct(">IHHII")
OP_HEARTBEAT, OP_HEARTBEAT_REPLY, OP_MESSAGE, OP_AUTH, OP_AUTH_REPLY = 2, 3, 5, 7, 8
MAX_DEPTH = 4
MAX_INFLATED = 16 << 20
GOLD_PER_CNY = 1000.0


def pack(op: int, body: bytes, ver: int = 1, seq: int = 1) -> bytes:
    return HEADER.pack(HEADER.size + len(body), HEADER.size, ver, op, seq) + body


def auth_packet(room_id: int, uid: int = 0, buvid: str = "", key: str = "") -> bytes:
    body: dict[str, Any] = {"uid": uid, "roomid": room_id, "protover": 3, "platform": "web", "type": 2}
    if buvid:
        body["buvid"] = buvid
    if key:
        body["key"] = key
    return pack(OP_AUTH, json.dumps(body, separators=(",", ":")).encode())


def heartbeat_packet() -> bytes:
    return pack(OP_HEARTBEAT, b"[object Object]")


def split_packets(data: bytes, depth: int = 0) -> list[tuple[int, int, bytes]]:
    """(operation, ver, body) for every packet, decompressing nested ones. Raises CodecError."""
    if depth > MAX_DEPTH:
        raise CodecError("nesting", "compressed packets nested too deep")
    out: list[tuple[int, int, bytes]] = []
    offset, n = 0, len(data)
    while offset < n:
        if n - offset < HEADER.size:
            raise CodecError("truncated", f"{n - offset} bytes left, less than a header")
        pack_len, header_len, ver, op, _seq = HEADER.unpack_from(data, offset)
        if header_len != HEADER.size or pack_len < HEADER.size:
            raise CodecError("bad_header", f"pack_len={pack_len} header_len={header_len}")
        if op == OP_HEARTBEAT_REPLY:  # the echoed heartbeat body is outside pack_len
            out.append((op, ver, bytes(data[offset + HEADER.size: offset + HEADER.size + 4])))
            return out
        if offset + pack_len > n:
            raise CodecError("truncated", f"packet says {pack_len} bytes, {n - offset} available")
        body = bytes(data[offset + HEADER.size: offset + pack_len])
        offset += pack_len
        if op == OP_MESSAGE and ver in (2, 3):
            out.extend(split_packets(_inflate(body, ver), depth + 1))
        else:
            out.append((op, ver, body))
    return out


def _inflate(body: bytes, ver: int) -> bytes:
    try:
        if ver == 3:
            out = brotli.decompress(body)
        else:
            d = zlib.decompressobj()
            out = d.decompress(body, MAX_INFLATED)
    except (brotli.error, zlib.error) as e:
        raise CodecError("decompress", f"ver {ver}: {e}") from None
    if len(out) >= MAX_INFLATED:
        raise CodecError("decompress", "inflated body too large")
    return out


class BilibiliCodec:
    """Bytes from the danmaku websocket in, ChatEvents and control signals out."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.popularity = 0
        self.names_masked = False

    def decode(self, data: bytes | str) -> Decoded:
        if isinstance(data, str):
            raise CodecError("text_frame", "Bilibili sends binary frames only")
        result = Decoded()
        for op, _ver, body in split_packets(data):
            if op == OP_AUTH_REPLY:
                code = _json(body).get("code", 0) if body else 0
                result.signals.append("auth_ok" if code == 0 else "auth_failed")
            elif op == OP_HEARTBEAT_REPLY:
                if len(body) == 4:
                    self.popularity = int.from_bytes(body, "big")
                result.signals.append("heartbeat_ack")
            elif op == OP_MESSAGE and body:
                result.events.extend(self.command(_json(body)))
        return result

    def command(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        name = str(cmd.get("cmd", "")).split(":", 1)[0]
        handler = _HANDLERS.get(name)
        if handler is None:
            return []  # Bilibili sends dozens of other commands; unknown ones are ignored silently
        try:
            return handler(self, cmd)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ProtobufError) as e:
            raise CodecError(f"cmd:{name}", f"unexpected shape: {type(e).__name__}: {e}") from None

    def _event(self, kind: EventKind, user: User, **kw: Any) -> ChatEvent:
        return ChatEvent(platform="bilibili", room=self.room, kind=kind, user=user, **kw)

    # ------------------------------------------------------------------ commands
    def _danmaku(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        info = cmd["info"]
        meta, text, who = info[0], info[1], info[2]
        uid, name = int(who[0]), str(who[1])
        medal = info[3] if len(info) > 3 and info[3] else []
        guard = int(info[7]) if len(info) > 7 and info[7] else 0
        extra: dict[str, Any] = {}
        if len(meta) > 15 and isinstance(meta[15], dict) and meta[15].get("extra"):
            extra = json.loads(meta[15]["extra"])
        masked = uid == 0 and "***" in name
        if masked:
            self.names_masked = True
        user_id = str(uid) if uid else f"crc32:{meta[7]}" if len(meta) > 7 else ""
        msg_id = str(extra.get("id_str") or f"dm:{meta[4]}:{user_id}:{meta[5]}")
        emots = extra.get("emots")
        emotes = tuple(emots) if isinstance(emots, dict) else ()
        user = User(user_id, clean_text(name, 64), moderator=bool(who[2]), member=guard > 0,
                    level=int(medal[0]) if medal else 0)
        return [self._event(EventKind.DANMAKU, user, text=clean_text(str(text)), msg_id=msg_id, emotes=emotes,
                            timestamp=float(meta[4]) / 1000.0, raw=cmd)]

    def _gift(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        d = cmd["data"]
        count = int(d.get("num", 1))
        paid = d.get("coin_type") == "gold"
        coins = float(d.get("total_coin") or int(d.get("price", 0)) * count)
        amount = Amount(coins, "gold_coin", round(coins / GOLD_PER_CNY, 4)) if paid and coins > 0 else None
        medal = d.get("medal_info") or {}
        user = User(str(d["uid"]), clean_text(str(d["uname"]), 64), member=int(d.get("guard_level") or 0) > 0,
                    level=int(medal.get("medal_level") or 0))
        return [self._event(EventKind.GIFT, user, gift_name=clean_text(str(d["giftName"]), 64), count=count,
                            amount=amount, msg_id=f"gift:{d.get('tid') or d.get('rnd') or ''}",
                            timestamp=float(d.get("timestamp") or 0) or _now(), raw=cmd)]

    def _gift_v2(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        pb = Msg(base64.b64decode(cmd["data"]["pb"], validate=False))
        user = User(str(pb.num(1)), clean_text(pb.text(2), 64), member=pb.num(5) > 0, level=pb.msg(8).num(5))
        events = []
        for g in pb.msgs(10):
            count = g.num(3, 1)
            coins = float(g.num(7) or g.num(5) * count)
            paid = g.text(8) == "gold"
            amount = Amount(coins, "gold_coin", round(coins / GOLD_PER_CNY, 4)) if paid and coins > 0 else None
            events.append(self._event(EventKind.GIFT, user, gift_name=clean_text(g.text(2), 64), count=count,
                                      amount=amount, msg_id=f"gift:{g.label(9) or g.label(12)}",
                                      timestamp=float(g.num(10)) or _now(), raw=cmd))
        return events

    def _combo(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        d = cmd["data"]
        user = User(str(d["uid"]), clean_text(str(d["uname"]), 64))
        return [self._event(EventKind.SYSTEM, user, action="gift_combo", gift_name=clean_text(str(d["gift_name"]), 64),
                            count=int(d.get("total_num") or d.get("combo_num") or 1),
                            msg_id=f"combo:{d.get('batch_combo_id', '')}:{d.get('total_num', '')}", raw=cmd)]

    def _super_chat(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        d = cmd["data"]
        info = d.get("user_info") or {}
        price = float(d["price"])
        user = User(str(d["uid"]), clean_text(str(info.get("uname", "")), 64) or "viewer",
                    member=int(info.get("guard_level") or 0) > 0,
                    level=int((d.get("medal_info") or {}).get("medal_level") or 0))
        return [self._event(EventKind.SUPER_CHAT, user, text=clean_text(str(d["message"])),
                            amount=Amount(price, "CNY", price), msg_id=f"sc:{d['id']}",
                            timestamp=float(d.get("start_time") or 0) or _now(), raw=cmd)]

    def _super_chat_delete(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        return [self._event(EventKind.SYSTEM, _SYSTEM_USER, action="delete_message", target=f"sc:{i}",
                            msg_id=f"scdel:{i}", raw=cmd) for i in cmd["data"]["ids"]]

    def _guard(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        d = cmd["data"]
        num = int(d.get("num", 1))
        coins = float(d["price"]) * num
        user = User(str(d["uid"]), clean_text(str(d["username"]), 64), member=True)
        return [self._event(EventKind.MEMBERSHIP, user, gift_name=_GUARD.get(int(d["guard_level"]), "guard"),
                            count=num, amount=Amount(coins, "gold_coin", round(coins / GOLD_PER_CNY, 4)),
                            msg_id=f"guard:{d['uid']}:{d.get('start_time', '')}", raw=cmd)]

    def _toast_v2(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        d = cmd["data"]
        if int((d.get("option") or {}).get("source", 0)) == 2:
            return []  # every purchase is announced twice; the source-2 copy is skipped
        sender, guard, pay = d["sender_uinfo"], d["guard_info"], d["pay_info"]
        num = int(pay.get("num", 1))
        coins = float(pay["price"]) * num
        user = User(str(sender["uid"]), clean_text(str(sender["base"]["name"]), 64), member=True)
        return [self._event(EventKind.MEMBERSHIP, user, gift_name=_GUARD.get(int(guard["guard_level"]), "guard"),
                            count=num, amount=Amount(coins, "gold_coin", round(coins / GOLD_PER_CNY, 4)),
                            msg_id=f"guard:{sender['uid']}:{guard.get('start_time', '')}", raw=cmd)]

    def _interact(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        d = cmd["data"]
        name = d.get("uname") or ((d.get("uinfo") or {}).get("base") or {}).get("name", "")
        medal = d.get("fans_medal") or {}
        return self._interaction(int(d["uid"]), str(name), int(d["msg_type"]), float(d.get("timestamp") or 0),
                                 int(medal.get("medal_level") or 0), cmd)

    def _interact_v2(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        pb = Msg(base64.b64decode(cmd["data"]["pb"], validate=False))
        return self._interaction(pb.num(1), pb.text(2), pb.num(5), float(pb.num(7)), 0, cmd)

    def _interaction(self, uid: int, name: str, msg_type: int, ts: float, level: int, cmd: Any) -> list[ChatEvent]:
        kind = {1: EventKind.ENTER, 2: EventKind.FOLLOW, 4: EventKind.FOLLOW, 5: EventKind.FOLLOW}.get(msg_type)
        user = User(str(uid), clean_text(name, 64), level=level)
        if kind is None:
            if msg_type == 3:
                return [self._event(EventKind.SYSTEM, user, action="share", timestamp=ts or _now(), raw=cmd)]
            return []
        return [self._event(kind, user, timestamp=ts or _now(), raw=cmd)]

    def _like(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        d = cmd["data"]
        user = User(str(d["uid"]), clean_text(str(d["uname"]), 64),
                    level=int((d.get("fans_medal") or {}).get("medal_level") or 0))
        return [self._event(EventKind.LIKE, user, count=1, raw=cmd)]

    def _watched(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        return [self._event(EventKind.SYSTEM, _SYSTEM_USER, action="viewer_count", count=int(cmd["data"]["num"]),
                            text=str(cmd["data"].get("text_large", "")), raw=cmd)]

    def _live(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        return [self._event(EventKind.SYSTEM, _SYSTEM_USER, action="live", raw=cmd)]

    def _preparing(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        return [self._event(EventKind.STREAM_END, _SYSTEM_USER, action="preparing", raw=cmd)]

    def _cut_off(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        return [self._event(EventKind.STREAM_END, _SYSTEM_USER, action="cut_off",
                            text=clean_text(str(cmd.get("msg", ""))), raw=cmd)]

    def _room_block(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        d = cmd.get("data") or cmd
        return [self._event(EventKind.SYSTEM, User(str(d["uid"]), clean_text(str(d.get("uname", "")), 64)),
                            action="clear_user", target=str(d["uid"]), raw=cmd)]

    def _login_notice(self, cmd: dict[str, Any]) -> list[ChatEvent]:
        self.names_masked = True
        return [self._event(EventKind.SYSTEM, _SYSTEM_USER, action="names_masked",
                            text=clean_text(str(cmd["data"].get("notice_msg", ""))), raw=cmd)]


_SYSTEM_USER = User("system", "system")
_GUARD = {1: "governor (总督)", 2: "admiral (提督)", 3: "captain (舰长)"}


def _json(body: bytes) -> Any:
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CodecError("json", str(e)) from None
    if not isinstance(obj, dict):
        raise CodecError("json", f"expected an object, got {type(obj).__name__}")
    return obj


def _now() -> float:
    return time.time()


_HANDLERS = {
    "DANMU_MSG": BilibiliCodec._danmaku,
    "DANMU_MSG_MIRROR": BilibiliCodec._danmaku,
    "SEND_GIFT": BilibiliCodec._gift,
    "SEND_GIFT_V2": BilibiliCodec._gift_v2,
    "COMBO_SEND": BilibiliCodec._combo,
    "SUPER_CHAT_MESSAGE": BilibiliCodec._super_chat,
    "SUPER_CHAT_MESSAGE_JPN": BilibiliCodec._super_chat,
    "SUPER_CHAT_MESSAGE_DELETE": BilibiliCodec._super_chat_delete,
    "GUARD_BUY": BilibiliCodec._guard,
    "USER_TOAST_MSG_V2": BilibiliCodec._toast_v2,
    "INTERACT_WORD": BilibiliCodec._interact,
    "INTERACT_WORD_V2": BilibiliCodec._interact_v2,
    "LIKE_INFO_V3_CLICK": BilibiliCodec._like,
    "WATCHED_CHANGE": BilibiliCodec._watched,
    "LIVE": BilibiliCodec._live,
    "PREPARING": BilibiliCodec._preparing,
    "CUT_OFF": BilibiliCodec._cut_off,
    "ROOM_BLOCK_MSG": BilibiliCodec._room_block,
    "LOG_IN_NOTICE": BilibiliCodec._login_notice,
}
