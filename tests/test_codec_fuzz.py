"""Fuzzing the binary decoders: thousands of mutated real frames; nothing but CodecError may escape."""

import gzip
import json
import zlib

import brotli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_sources.base import CodecError
from chat_sources.bilibili_codec import OP_MESSAGE, BilibiliCodec, pack
from chat_sources.douyin_codec import DouyinCodec, build_push_frame
from chat_sources.protobuf import field_bytes, field_varint, message
from chat_sources.twitch_codec import TwitchCodec
from tests.test_codecs import COMMANDS, FRAMES, RESPONSE, TWITCH, _msg, _user

SETTINGS = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _bilibili_seeds():
    cmds = [json.dumps(c, ensure_ascii=False).encode() for c in COMMANDS.values()]
    inner = b"".join(pack(OP_MESSAGE, c, ver=0) for c in cmds)
    return [*FRAMES.values(), pack(OP_MESSAGE, brotli.compress(inner), ver=3), pack(OP_MESSAGE, zlib.compress(inner), ver=2),
            *(pack(OP_MESSAGE, c, ver=0) for c in cmds)]


def _douyin_seeds():
    gift = message(field_varint(2, 1), field_varint(5, 3), field_bytes(7, _user(1, "a")),
                   field_bytes(15, message(field_varint(10, 1), field_varint(12, 1))))
    body = message(_msg("WebcastGiftMessage", gift, 5), _msg("WebcastLikeMessage", field_bytes(5, _user(2, "b")), 6))
    return [build_push_frame(gzip.compress(RESPONSE)), build_push_frame(gzip.compress(body)),
            build_push_frame(body, gzip_header=False)]


def mutated(seeds):
    @st.composite
    def strategy(draw):
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 8))):
            op = draw(st.integers(0, 3))
            pos = draw(st.integers(0, max(0, len(data) - 1)))
            if op == 0 and data:
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == 1:
                data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
            elif op == 2 and data:
                del data[pos:pos + draw(st.integers(1, 16))]
            else:
                data = data[:pos]
        return bytes(data)

    return strategy()


def _only_codec_errors(codec, data):
    try:
        codec.decode(data)
    except CodecError:
        pass


@SETTINGS
@given(mutated(_bilibili_seeds()))
def test_bilibili_decoder_survives_mutations(data):
    _only_codec_errors(BilibiliCodec("1"), data)


@SETTINGS
@given(mutated(_douyin_seeds()))
def test_douyin_decoder_survives_mutations(data):
    _only_codec_errors(DouyinCodec("1"), data)


@SETTINGS
@given(mutated([line.encode() for line in TWITCH]))
def test_twitch_decoder_survives_mutations(data):
    _only_codec_errors(TwitchCodec("c"), data)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_crash_any_decoder(data):
    for codec in (BilibiliCodec("1"), DouyinCodec("1"), TwitchCodec("c")):
        _only_codec_errors(codec, data)
