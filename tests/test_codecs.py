"""Platform codecs against the real sample frames of shared/protocols.md (copied to tests/data)."""

import base64
import gzip
import json
import zlib
from pathlib import Path

import brotli
import pytest

from chat_sources.base import CodecError
from chat_sources.bilibili import mixin_key, wbi_sign
from chat_sources.bilibili_codec import (
    OP_MESSAGE,
    BilibiliCodec,
    auth_packet,
    heartbeat_packet,
    pack,
    split_packets,
)
from chat_sources.douyin import find_room_id
from chat_sources.douyin_codec import HEARTBEAT, DouyinCodec, build_push_frame
from chat_sources.douyin_sign import sign_stub, x_ms_stub
from chat_sources.protobuf import field_bytes, field_varint, message, varint
from chat_sources.twitch_codec import TwitchCodec, emote_names, parse_line, unescape
from streamer.events import EventKind

DATA = Path(__file__).parent / "data"
FRAMES = {k: bytes.fromhex(v) for k, v in json.loads((DATA / "bilibili_frames.json").read_text()).items()}
COMMANDS = {c["cmd"]: c for c in json.loads((DATA / "bilibili_commands.json").read_text(encoding="utf-8"))}
TWITCH = (DATA / "twitch_lines.txt").read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------------------------------------- Bilibili
def test_bilibili_packets_match_the_captured_frames():
    auth = json.loads(split_packets(FRAMES["auth"])[0][2])
    assert auth["roomid"] == 22608112 and auth["protover"] == 3
    assert auth_packet(22608112, 160148624, key=auth["key"]) == FRAMES["auth"]
    assert heartbeat_packet() == FRAMES["heartbeat"]
    c = BilibiliCodec("22608112")
    assert c.decode(FRAMES["auth_reply"]).signals == ["auth_ok"]
    assert c.decode(pack(8, b'{"code":-101}')).signals == ["auth_failed"]
    assert c.decode(FRAMES["heartbeat_reply"]).signals == ["heartbeat_ack"] and c.popularity == 2466
    [ev] = c.decode(FRAMES["brotli_watched_change"]).events
    assert (ev.kind, ev.action, ev.count, ev.text) == (EventKind.SYSTEM, "viewer_count", 22097, "2.2万人看过")


def test_bilibili_nested_zlib_and_brotli_with_several_packets_per_message():
    inner = pack(OP_MESSAGE, json.dumps(COMMANDS["LIVE"]).encode(), ver=0) + pack(
        OP_MESSAGE, json.dumps(COMMANDS["DANMU_MSG"], ensure_ascii=False).encode(), ver=0)
    c = BilibiliCodec("1")
    for ver, comp in ((2, zlib.compress), (3, brotli.compress)):
        msg = pack(OP_MESSAGE, comp(inner), ver=ver) + pack(OP_MESSAGE, json.dumps(COMMANDS["CUT_OFF"]).encode(), ver=0)
        kinds = [e.kind for e in c.decode(msg).events]
        assert kinds == [EventKind.SYSTEM, EventKind.DANMAKU, EventKind.STREAM_END]


def test_bilibili_commands_become_exact_events():
    c = BilibiliCodec("31180317")
    [dm] = c.command({**COMMANDS["DANMU_MSG"], "cmd": "DANMU_MSG:4:0:2:2:2:0"})
    assert (dm.kind, dm.text, dm.user.id, dm.user.name, dm.user.level) == (
        EventKind.DANMAKU, "白花300块[热]", "6088969", "tim1997", 29)
    assert dm.msg_id == "364b06e3c561af3d5921f1253d66c1d575" and dm.emotes == ("[热]",)
    assert dm.timestamp == pytest.approx(1723979200.649)
    [gift] = c.command(COMMANDS["SEND_GIFT"])
    assert (gift.kind, gift.gift_name, gift.count, gift.user.name) == (EventKind.GIFT, "小花花", 1, "12138额83121")
    assert gift.amount.value == 100 and gift.amount.unit == "gold_coin" and gift.amount.common == pytest.approx(0.1)
    [delete] = c.command(COMMANDS["SUPER_CHAT_MESSAGE_DELETE"])
    assert (delete.action, delete.target) == ("delete_message", "sc:3897503")
    [enter] = c.command(COMMANDS["INTERACT_WORD"])
    assert (enter.kind, enter.user.name, enter.user.id) == (EventKind.ENTER, "TIM_Init", "335979315")
    follow = {**COMMANDS["INTERACT_WORD"], "data": {**COMMANDS["INTERACT_WORD"]["data"], "msg_type": 2}}
    assert c.command(follow)[0].kind is EventKind.FOLLOW
    [like] = c.command(COMMANDS["LIKE_INFO_V3_CLICK"])
    assert (like.kind, like.user.name) == (EventKind.LIKE, "MeiDngS")
    assert c.command(COMMANDS["PREPARING"])[0].kind is EventKind.STREAM_END
    [cut] = c.command(COMMANDS["CUT_OFF"])
    assert cut.kind is EventKind.STREAM_END and cut.text == "违反直播言论规范，请立即调整"
    [block] = c.command(COMMANDS["ROOM_BLOCK_MSG"])
    assert (block.action, block.target) == ("clear_user", "37903025")
    assert c.command(COMMANDS["LIKE_INFO_V3_UPDATE"]) == [] and c.command({"cmd": "ONLINE_RANK_V2"}) == []
    assert not c.names_masked
    c.command(COMMANDS["LOG_IN_NOTICE"])
    assert c.names_masked


def test_bilibili_super_chat_guard_and_masked_danmaku():
    c = BilibiliCodec("1")
    sc = {"cmd": "SUPER_CHAT_MESSAGE", "data": {"id": 3897503, "price": 30, "message": "主播好", "uid": 42,
                                                "start_time": 1700000000, "user_info": {"uname": "Olivia", "guard_level": 3}}}
    [ev] = c.command(sc)
    assert (ev.kind, ev.msg_id, ev.amount.common, ev.user.member) == (EventKind.SUPER_CHAT, "sc:3897503", 30.0, True)
    guard = {"cmd": "GUARD_BUY", "data": {"uid": 7, "username": "cap", "guard_level": 3, "num": 1, "price": 198000,
                                          "start_time": 1700000001}}
    toast = {"cmd": "USER_TOAST_MSG_V2", "data": {"sender_uinfo": {"uid": 7, "base": {"name": "cap"}},
                                                  "guard_info": {"guard_level": 3, "start_time": 1700000001},
                                                  "pay_info": {"num": 1, "price": 198000}, "option": {"source": 0}}}
    g1, g2 = c.command(guard)[0], c.command(toast)[0]
    assert g1.kind is EventKind.MEMBERSHIP and g1.amount.common == pytest.approx(198.0)
    assert g1.msg_id == g2.msg_id  # the same purchase, so the client de-duplicates it
    assert c.command({**toast, "data": {**toast["data"], "option": {"source": 2}}}) == []
    masked = json.loads(json.dumps(COMMANDS["DANMU_MSG"]))
    masked["info"][2] = [0, "提***", 0, 0, 0, 10000, 1, ""]
    [ev] = c.command(masked)
    assert ev.user.name == "提***" and ev.user.id == "crc32:0bc8acd0" and c.names_masked


def test_bilibili_protobuf_v2_commands():
    gift = message(field_varint(1, 42), field_bytes(2, "Bob"), field_varint(5, 3),
                   field_bytes(10, message(field_varint(1, 31036), field_bytes(2, "小花花"), field_varint(3, 5),
                                           field_varint(7, 500), field_bytes(8, "gold"), field_bytes(9, "tid-1"))),
                   field_bytes(10, message(field_varint(1, 1), field_bytes(2, "辣条"), field_varint(3, 2),
                                           field_bytes(8, "silver"), field_bytes(9, "tid-2"))))
    c = BilibiliCodec("1")
    events = c.command({"cmd": "SEND_GIFT_V2", "data": {"pb": base64.b64encode(gift).decode()}})
    assert [(e.gift_name, e.count, e.amount and e.amount.common, e.msg_id) for e in events] == [
        ("小花花", 5, 0.5, "gift:tid-1"), ("辣条", 2, None, "gift:tid-2")]
    assert events[0].user.member and events[0].user.name == "Bob"
    interact = message(field_varint(1, 439367700), field_bytes(2, "StarSea246"), field_varint(5, 1),
                       field_varint(7, 1751716524))
    [ev] = c.command({"cmd": "INTERACT_WORD_V2", "data": {"pb": base64.b64encode(interact).decode()}})
    assert (ev.kind, ev.user.id, ev.user.name, ev.timestamp) == (EventKind.ENTER, "439367700", "StarSea246", 1751716524.0)


def test_bilibili_bad_packets_raise_codec_errors_only():
    c = BilibiliCodec("1")
    for bad in (b"\x00\x01", pack(5, b"{nope", ver=0), pack(5, b"garbage", ver=3), FRAMES["auth"][:40],
                pack(5, json.dumps({"cmd": "DANMU_MSG", "info": []}).encode(), ver=0), "text"):
        with pytest.raises(CodecError):
            c.decode(bad)


def test_wbi_signature_vector():
    key = mixin_key("7cd084941338484aae1ad9425b84077c", "4932caff0ff746eab6f01bf08b70ac45")
    assert key == "ea1db124af3c7062474693fa704f4ff8"
    signed = wbi_sign({"foo": "114", "bar": "514", "zab": 1919810}, key, wts=1702204169)
    assert signed["w_rid"] == "8f6f2b5b3d485fe1886cec6a0be8c5d4"


# ---------------------------------------------------------------------------------------------- Douyin
RESPONSE = bytes.fromhex("0a2b0a1257656263617374436861744d6573736167651213120a087b1a067465737465721a0568656c6c6f18011202"
                         "63312a16696e7465726e616c5f7372633a64696d7c7365713a314801")
PREFIX = bytes.fromhex("0801102a2a150a0d636f6d70726573735f747970651204677a6970320270623a036d7367")


def test_douyin_vectors_chat_and_ack():
    assert HEARTBEAT == bytes.fromhex("3a026862")
    gz = gzip.compress(RESPONSE)
    frame = PREFIX + b"\x42" + varint(len(gz)) + gz
    d = DouyinCodec("7382522869470808883").decode(frame)
    [ev] = d.events
    assert (ev.kind, ev.text, ev.user.id, ev.user.name, ev.msg_id) == (EventKind.DANMAKU, "hello", "123", "tester", "1")
    assert d.replies == [bytes.fromhex("102a3a0361636b4216696e7465726e616c5f7372633a64696d7c7365713a31")]
    assert build_push_frame(gz, log_id=42, seq_id=1) == frame


def _msg(method, payload, msg_id):
    return field_bytes(1, message(field_bytes(1, method), field_bytes(2, payload), field_varint(3, msg_id)))


def _user(uid, name):
    return message(field_varint(1, uid), field_bytes(3, name))


def test_douyin_gift_combo_counts_only_new_gifts_and_other_kinds():
    gift_struct = message(field_varint(5, 463), field_varint(10, 1), field_varint(12, 10), field_bytes(16, "玫瑰"))

    def combo(repeat, end, msg_id):
        return _msg("WebcastGiftMessage", message(field_varint(2, 463), field_varint(4, 1), field_varint(5, repeat),
                                                   field_bytes(7, _user(9, "Ann")), field_varint(9, end),
                                                   field_varint(11, 777), field_bytes(15, gift_struct)), msg_id)

    body = message(combo(1, 0, 10), combo(3, 0, 11), combo(3, 0, 12), combo(5, 1, 13),
                   _msg("WebcastLikeMessage", message(field_varint(2, 15), field_bytes(5, _user(2, "Lee"))), 14),
                   _msg("WebcastMemberMessage", message(field_bytes(2, _user(3, "Mo"))), 15),
                   _msg("WebcastSocialMessage", message(field_bytes(2, _user(4, "Su")), field_varint(4, 1)), 16),
                   _msg("WebcastRoomUserSeqMessage", message(field_varint(3, 4321)), 17),
                   _msg("WebcastUnknownMessage", b"\x08\x01", 18),
                   _msg("WebcastControlMessage", bytes.fromhex("1003"), 19))
    events = DouyinCodec("r").decode(build_push_frame(gzip.compress(body))).events
    gifts = [e for e in events if e.kind is EventKind.GIFT]
    assert [g.count for g in gifts] == [1, 2, 2] and sum(g.count for g in gifts) == 5
    assert [g.amount.common for g in gifts] == [1.0, 2.0, 2.0] and gifts[0].gift_name == "玫瑰"
    rest = [(e.kind, e.count, e.user.name) for e in events if e.kind is not EventKind.GIFT]
    assert rest == [(EventKind.LIKE, 15, "Lee"), (EventKind.ENTER, 1, "Mo"), (EventKind.FOLLOW, 1, "Su"),
                    (EventKind.SYSTEM, 4321, "system"), (EventKind.STREAM_END, 1, "system")]


def test_douyin_signature_vectors_and_stub():
    stub = "704f436b2558b0d7a1c7e758527dd8f1"
    assert sign_stub(stub, 1, True, 63, 63) == "6pt0VC0aRZDP7n07"
    assert sign_stub(stub, 0, False, 0, 6) == "fD+evFuzasjOC8Uu"
    params = {"live_id": "1", "aid": "6383", "version_code": "180800", "webcast_sdk_version": "1.0.14-beta.0",
              "room_id": "7382522869470808883", "did_rule": "3", "user_unique_id": "7319483754668557238",
              "device_platform": "web", "identity": "audience"}
    import hashlib

    expect = hashlib.md5(b"live_id=1,aid=6383,version_code=180800,webcast_sdk_version=1.0.14-beta.0,"
                          b"room_id=7382522869470808883,sub_room_id=,sub_channel_id=,did_rule=3,"
                          b"user_unique_id=7319483754668557238,device_platform=web,device_type=,ac=,"
                          b"identity=audience").hexdigest()
    assert x_ms_stub(params) == expect


def test_douyin_room_id_scraping_formats():
    assert find_room_id('...{\\"roomId\\":\\"7382522869470808883\\",...') == "7382522869470808883"
    assert find_room_id('"id_str":"7392091211001140287"') == "7392091211001140287"
    assert find_room_id("x?room_id=7392091211001140287&y") == "7392091211001140287"
    assert find_room_id("<html>offline</html>") is None


# ---------------------------------------------------------------------------------------------- Twitch
def test_twitch_tag_unescaping_and_emotes_by_code_point():
    assert unescape(r"Riot\sGames") == "Riot Games" and unescape("a\\:b\\\\c\\") == "a;b\\c"
    assert unescape("\\x") == "x"
    text = "👉 Kappa 👈 Kappa"
    assert emote_names("25:2-6,10-14", text) == ("Kappa", "Kappa")
    m = parse_line(TWITCH[4])
    assert emote_names(m.tags["emotes"], m.trailing).count("Kappa") == 3


def test_twitch_verbatim_lines_become_exact_events():
    c = TwitchCodec("#pajlada")
    decoded = [c.decode(line) for line in TWITCH]
    ev = [d.events[0] if d.events else None for d in decoded]
    assert (ev[0].kind, ev[0].text, ev[0].user.name, ev[0].user.id, ev[0].msg_id) == (
        EventKind.DANMAKU, "dank cam", "JuN1oRRRR", "29803735", "e9d998c3-36f1-430f-89ec-6b887c28af36")
    assert ev[1].text == "-tags" and ev[1].user.moderator and ev[1].user.member and ev[1].user.level == 22
    assert ev[2].reply_to == "6b13e51b-7ecb-43b5-ba5b-2bb5288df696" and ev[2].text == "@Retoon yes"
    assert ev[3].user.name == "Riot Games"
    assert ev[0].timestamp == pytest.approx(1594545155.039)
    sub, resub, raid, gift = ev[5], ev[6], ev[7], ev[8]
    assert (sub.kind, sub.gift_name, sub.amount.value) == (EventKind.MEMBERSHIP, "Prime sub", 4.99)
    assert (resub.kind, resub.count, resub.text) == (EventKind.MEMBERSHIP, 2, "xqcL")
    assert (raid.action, raid.count, raid.user.name) == ("raid", 430, "iamelisabete")
    assert (gift.kind, gift.target, gift.user.name) == (EventKind.GIFT, "236653628", "AdamAtReflectStudios")
    timeout, ban, clear = ev[9], ev[10], ev[11]
    assert (timeout.action, timeout.target, timeout.count) == ("clear_user", "148973258", 1)
    assert (ban.action, ban.target) == ("clear_user", "70948394") and clear.action == "clear_chat"
    assert decoded[12].replies == ["PONG :tmi.twitch.tv"] and decoded[13].replies == ["PONG :abc def"]
    assert decoded[16].signals == ["reconnect"]
    assert decoded[18].signals == ["auth_failed"]
    assert all(not d.events for d in decoded[12:])


def test_twitch_bits_are_paid_and_clearmsg_targets_a_message():
    c = TwitchCodec("chan")
    [cheer] = c.decode("@bits=500;display-name=Ann;id=m1;user-id=9 :ann!ann@ann.tmi.twitch.tv PRIVMSG #chan :cheer500 hi").events
    assert cheer.kind is EventKind.SUPER_CHAT and cheer.amount.value == 500 and cheer.amount.common == pytest.approx(36.0)
    [clear] = c.decode("@login=ann;target-msg-id=m1 :tmi.twitch.tv CLEARMSG #chan :cheer500 hi").events
    assert (clear.action, clear.target) == ("delete_message", "m1")
    several = c.decode("PING :a\r\n@id=x;user-id=1 :b!b@b PRIVMSG #chan :one\r\n\r\n")
    assert several.replies == ["PONG :a"] and [e.text for e in several.events] == ["one"]
    with pytest.raises(CodecError):
        c.decode(b"\xff\xfe")
