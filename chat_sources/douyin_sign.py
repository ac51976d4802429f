"""Douyin's websocket ``signature`` parameter, computed natively (no JavaScript engine).

X-MS-STUB = md5 of the signed URL parameters (fixed key order); the 16-character signature is a
custom-alphabet base64 of [flags, rc4_key] + RC4(payload) where the 10-byte payload mixes a session
counter, md5 digests of the stub and of md5(""), a random byte and an XOR checksum. The algorithm is
described in shared/protocols.md section 2.3; the test vectors there are reproduced in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import random
import urllib.parse
from collections.abc import Callable

ALPHABET = "Dkdpgh4ZKsQB80/Mfvw36XI1R25+WUAlEi7NLboqYTOPuzmFjJnryx9HVGcaStCe"
_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
STUB_KEYS = ("live_id", "aid", "version_code", "webcast_sdk_version", "room_id", "sub_room_id", "sub_channel_id",
             "did_rule", "user_unique_id", "device_platform", "device_type", "ac", "identity")


def x_ms_stub(params: dict[str, str]) -> str:
    return hashlib.md5(",".join(f"{k}={params.get(k, '')}" for k in STUB_KEYS).encode()).hexdigest()


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 0xFF
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for b in data:
        i = (i + 1) & 0xFF
        j = (j + s[i]) & 0xFF
        s[i], s[j] = s[j], s[i]
        out.append(b ^ s[(s[i] + s[j]) & 0xFF])
    return bytes(out)


def _b64(raw: bytes) -> str:
    std = base64.b64encode(raw).decode().rstrip("=")
    return std.translate(str.maketrans(_STD, ALPHABET))


def sign_stub(stub_hex: str, counter: int, random_bit: bool, r_payload: int, r_key: int) -> str:
    stub = bytes.fromhex(stub_hex)
    if len(stub) != 16:
        raise ValueError("X-MS-STUB must be 16 bytes of hex")
    d1 = hashlib.md5(stub).digest()
    d0 = hashlib.md5(hashlib.md5(b"").digest()).digest()
    payload = [counter & 0x3F, 0, 1, 14, d0[14], d0[15], d1[14], d1[15], r_payload & 0xFF]
    x = 0
    for b in payload:
        x ^= b
    payload.append(x)
    flags = 0x40 | (0x10 if random_bit else 0)
    raw = bytes([flags, r_key & 0xFF]) + _rc4(bytes([r_key & 0xFF]), bytes(payload))
    return _b64(raw)


class Signer:
    """Signs with a per-session counter and fresh random bytes."""

    def __init__(self, rng: Callable[[int, int], int] = random.randint) -> None:
        self.counter = 0
        self.rng = rng

    def sign(self, params: dict[str, str]) -> str:
        sig = sign_stub(x_ms_stub(params), self.counter, bool(self.rng(0, 1)), self.rng(0, 254), self.rng(0, 254))
        self.counter += 1
        return sig


def quote_signature(sig: str) -> str:
    return urllib.parse.quote(sig, safe="")
